// The one sense table (SPC-4 4.5.6 table 28 ASC/ASCQ assignments) and the one SCSI error type.
// Handlers throw `new SenseError(Sense.X, …)`; the dispatcher is the only place that turns it
// into CHECK CONDITION sense data (fixed or descriptor format, SPC-4 4.5).

/** SPC-4 4.5.6 table 27 sense keys. */
export const SenseKey = {
  NO_SENSE: 0x0,
  RECOVERED_ERROR: 0x1,
  NOT_READY: 0x2,
  MEDIUM_ERROR: 0x3,
  HARDWARE_ERROR: 0x4,
  ILLEGAL_REQUEST: 0x5,
  UNIT_ATTENTION: 0x6,
  DATA_PROTECT: 0x7,
  BLANK_CHECK: 0x8,
  VENDOR_SPECIFIC: 0x9,
  COPY_ABORTED: 0xa,
  ABORTED_COMMAND: 0xb,
  VOLUME_OVERFLOW: 0xd,
  MISCOMPARE: 0xe,
} as const;

export interface SenseCode {
  readonly key: number;
  readonly asc: number;
  readonly ascq: number;
}

const s = (key: number, asc: number, ascq: number): SenseCode => ({ key, asc, ascq });

/** Every sense condition this library reports, by its T10 name. */
export const Sense = {
  NO_ADDITIONAL_SENSE_INFORMATION: s(SenseKey.NO_SENSE, 0x00, 0x00),
  /** SPC-4 4.5.6: a task ended by task management before it completed (never sent: SAM-5 7.2). */
  ABORTED_COMMAND: s(SenseKey.ABORTED_COMMAND, 0x00, 0x00),
  LOGICAL_UNIT_NOT_READY_CAUSE_NOT_REPORTABLE: s(SenseKey.NOT_READY, 0x04, 0x00),
  LOGICAL_UNIT_NOT_READY_BECOMING_READY: s(SenseKey.NOT_READY, 0x04, 0x01),
  LOGICAL_UNIT_NOT_READY_INITIALIZING_COMMAND_REQUIRED: s(SenseKey.NOT_READY, 0x04, 0x02),
  LOGICAL_UNIT_NOT_READY_MANUAL_INTERVENTION_REQUIRED: s(SenseKey.NOT_READY, 0x04, 0x03),
  LOGICAL_UNIT_NOT_READY_OPERATION_IN_PROGRESS: s(SenseKey.NOT_READY, 0x04, 0x07),
  MEDIUM_NOT_PRESENT: s(SenseKey.NOT_READY, 0x3a, 0x00),
  WRITE_ERROR: s(SenseKey.MEDIUM_ERROR, 0x0c, 0x00),
  UNRECOVERED_READ_ERROR: s(SenseKey.MEDIUM_ERROR, 0x11, 0x00),
  INTERNAL_TARGET_FAILURE: s(SenseKey.HARDWARE_ERROR, 0x44, 0x00),
  PARAMETER_LIST_LENGTH_ERROR: s(SenseKey.ILLEGAL_REQUEST, 0x1a, 0x00),
  INVALID_COMMAND_OPERATION_CODE: s(SenseKey.ILLEGAL_REQUEST, 0x20, 0x00),
  LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE: s(SenseKey.ILLEGAL_REQUEST, 0x21, 0x00),
  INVALID_FIELD_IN_CDB: s(SenseKey.ILLEGAL_REQUEST, 0x24, 0x00),
  LOGICAL_UNIT_NOT_SUPPORTED: s(SenseKey.ILLEGAL_REQUEST, 0x25, 0x00),
  INVALID_FIELD_IN_PARAMETER_LIST: s(SenseKey.ILLEGAL_REQUEST, 0x26, 0x00),
  INVALID_RELEASE_OF_PERSISTENT_RESERVATION: s(SenseKey.ILLEGAL_REQUEST, 0x26, 0x04),
  SAVING_PARAMETERS_NOT_SUPPORTED: s(SenseKey.ILLEGAL_REQUEST, 0x39, 0x00),
  INSUFFICIENT_REGISTRATION_RESOURCES: s(SenseKey.ILLEGAL_REQUEST, 0x55, 0x04),
  POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED: s(SenseKey.UNIT_ATTENTION, 0x29, 0x00),
  POWER_ON_OCCURRED: s(SenseKey.UNIT_ATTENTION, 0x29, 0x01),
  BUS_DEVICE_RESET_FUNCTION_OCCURRED: s(SenseKey.UNIT_ATTENTION, 0x29, 0x03),
  I_T_NEXUS_LOSS_OCCURRED: s(SenseKey.UNIT_ATTENTION, 0x29, 0x07),
  PARAMETERS_CHANGED: s(SenseKey.UNIT_ATTENTION, 0x2a, 0x00),
  MODE_PARAMETERS_CHANGED: s(SenseKey.UNIT_ATTENTION, 0x2a, 0x01),
  RESERVATIONS_PREEMPTED: s(SenseKey.UNIT_ATTENTION, 0x2a, 0x03),
  RESERVATIONS_RELEASED: s(SenseKey.UNIT_ATTENTION, 0x2a, 0x04),
  REGISTRATIONS_PREEMPTED: s(SenseKey.UNIT_ATTENTION, 0x2a, 0x05),
  CAPACITY_DATA_HAS_CHANGED: s(SenseKey.UNIT_ATTENTION, 0x2a, 0x09),
  REPORTED_LUNS_DATA_HAS_CHANGED: s(SenseKey.UNIT_ATTENTION, 0x3f, 0x0e),
  WRITE_PROTECTED: s(SenseKey.DATA_PROTECT, 0x27, 0x00),
  /** SBC-3 4.7.3.6: a thin-provisioned LU could not allocate space for a write. */
  SPACE_ALLOCATION_FAILED_WRITE_PROTECT: s(SenseKey.DATA_PROTECT, 0x27, 0x07),
  MISCOMPARE_DURING_VERIFY_OPERATION: s(SenseKey.MISCOMPARE, 0x1d, 0x00),
  // SMC-3 (media changer) move and element conditions.
  INVALID_ELEMENT_ADDRESS: s(SenseKey.ILLEGAL_REQUEST, 0x21, 0x01),
  MEDIUM_DESTINATION_ELEMENT_FULL: s(SenseKey.ILLEGAL_REQUEST, 0x3b, 0x0d),
  MEDIUM_SOURCE_ELEMENT_EMPTY: s(SenseKey.ILLEGAL_REQUEST, 0x3b, 0x0e),
  /** A MOVE MEDIUM from a drive whose cartridge is still loaded (IBM TS3310/3584: "A drive did not
   *  unload a cartridge", ILLEGAL REQUEST 53/01; T10 name UNLOAD TAPE FAILURE). */
  UNLOAD_TAPE_FAILURE: s(SenseKey.ILLEGAL_REQUEST, 0x53, 0x01),
  MEDIUM_REMOVAL_PREVENTED: s(SenseKey.ILLEGAL_REQUEST, 0x53, 0x02),
  IMPORT_OR_EXPORT_ELEMENT_ACCESSED: s(SenseKey.UNIT_ATTENTION, 0x28, 0x01),
  // SSC-4 (tape) conditions. The stream bits (FILEMARK, EOM, ILI) ride in SenseDetails.
  FILEMARK_DETECTED: s(SenseKey.NO_SENSE, 0x00, 0x01),
  /** Early warning: a write completed, EOM set (SSC-4 4.2.5). */
  END_OF_PARTITION_MEDIUM_DETECTED_EARLY_WARNING: s(SenseKey.NO_SENSE, 0x00, 0x02),
  /** The write did not fit before end-of-partition (VOLUME OVERFLOW). */
  END_OF_PARTITION_MEDIUM_DETECTED: s(SenseKey.VOLUME_OVERFLOW, 0x00, 0x02),
  BEGINNING_OF_PARTITION_MEDIUM_DETECTED: s(SenseKey.NO_SENSE, 0x00, 0x04),
  END_OF_DATA_DETECTED: s(SenseKey.BLANK_CHECK, 0x00, 0x05),
  END_OF_DATA_NOT_FOUND: s(SenseKey.MEDIUM_ERROR, 0x14, 0x03),
  NOT_READY_TO_READY_CHANGE_MEDIUM_MAY_HAVE_CHANGED: s(SenseKey.UNIT_ATTENTION, 0x28, 0x00),
  WORM_MEDIUM_OVERWRITE_ATTEMPTED: s(SenseKey.DATA_PROTECT, 0x30, 0x0c),
  SEQUENTIAL_POSITIONING_ERROR: s(SenseKey.MEDIUM_ERROR, 0x3b, 0x00),
} as const satisfies Record<string, SenseCode>;

export interface SenseDetails {
  /** SPC-4 4.5.2.4.2 field pointer: byte of the CDB (or parameter list) that is invalid. */
  fieldPointer?: number;
  /** Bit within that byte (0–7), sets BPV. */
  bitPointer?: number;
  /** INFORMATION field (sets VALID): e.g. the miscompare offset (SBC-3 5.3, 5.30). */
  information?: number;
  /** Stream commands bits (SSC-4 4.2.12 / SPC-4 4.5.2.6): FILEMARK, EOM, ILI. */
  filemark?: boolean;
  endOfMedium?: boolean;
  incorrectLength?: boolean;
}

/** A condition to report as CHECK CONDITION. The one SCSI error family (ARCHITECTURE.md). */
export class SenseError extends Error {
  readonly code = 'SCSI_SENSE';
  readonly sense: SenseCode;
  readonly details: SenseDetails;

  constructor(sense: SenseCode, details: SenseDetails = {}, message?: string) {
    super(message ?? `sense ${hex2(sense.key)}/${hex2(sense.asc)}/${hex2(sense.ascq)}`);
    this.name = 'SenseError';
    this.sense = sense;
    this.details = details;
  }
}

/** The command conflicts with a reservation (SPC-4 5.9.1): RESERVATION CONFLICT status, no sense. */
export class ReservationConflictError extends Error {
  readonly code = 'SCSI_RESERVATION_CONFLICT';

  constructor(message = 'reservation conflict') {
    super(message);
    this.name = 'ReservationConflictError';
  }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** Sense-key specific bytes for a field pointer (SPC-4 4.5.2.4.2): SKSV, C/D, BPV, bit, field. */
function fieldPointerBytes(sense: SenseCode, details: SenseDetails): Buffer | null {
  if (details.fieldPointer === undefined) return null;
  const sks = Buffer.alloc(3);
  // C/D = 1 when the error is in the CDB, 0 when it is in the parameter data.
  const inCdb = sense !== Sense.INVALID_FIELD_IN_PARAMETER_LIST && sense !== Sense.PARAMETER_LIST_LENGTH_ERROR;
  sks[0] = 0x80 | (inCdb ? 0x40 : 0) | (details.bitPointer !== undefined ? 0x08 | (details.bitPointer & 0x7) : 0);
  sks.writeUInt16BE(details.fieldPointer & 0xffff, 1);
  return sks;
}

/** FILEMARK, EOM and ILI: byte 2 bits 7–5 of fixed format sense, byte 3 of the stream descriptor. */
function streamBits(details: SenseDetails): number {
  return (details.filemark ? 0x80 : 0) | (details.endOfMedium ? 0x40 : 0) | (details.incorrectLength ? 0x20 : 0);
}

/** SPC-4 4.5.3 fixed format sense data (response code 70h), 18 bytes. */
export function buildFixedSense(sense: SenseCode, details: SenseDetails = {}): Buffer {
  const buf = Buffer.alloc(18);
  buf[0] = 0x70;
  buf[2] = (sense.key & 0x0f) | streamBits(details);
  if (details.information !== undefined) {
    buf[0] |= 0x80; // VALID
    buf.writeUInt32BE(details.information >>> 0, 3);
  }
  buf[7] = 10; // ADDITIONAL SENSE LENGTH
  buf[12] = sense.asc;
  buf[13] = sense.ascq;
  const sks = fieldPointerBytes(sense, details);
  if (sks) sks.copy(buf, 15);
  return buf;
}

/** SPC-4 4.5.2 descriptor format sense data (response code 72h). */
export function buildDescriptorSense(sense: SenseCode, details: SenseDetails = {}): Buffer {
  const descriptors: Buffer[] = [];
  if (details.information !== undefined) {
    // SPC-4 4.5.2.2 information sense data descriptor
    const d = Buffer.alloc(12);
    d[0] = 0x00;
    d[1] = 0x0a;
    d[2] = 0x80; // VALID
    d.writeBigUInt64BE(BigInt.asUintN(64, BigInt(details.information)), 4); // negative: two's complement (SSC ILI)
    descriptors.push(d);
  }
  const stream = streamBits(details);
  if (stream !== 0) {
    // SPC-4 4.5.2.6 stream commands sense data descriptor
    descriptors.push(Buffer.from([0x04, 0x02, 0x00, stream]));
  }
  const sks = fieldPointerBytes(sense, details);
  if (sks) {
    // SPC-4 4.5.2.4 sense key specific sense data descriptor
    const d = Buffer.alloc(8);
    d[0] = 0x02;
    d[1] = 0x06;
    sks.copy(d, 4);
    descriptors.push(d);
  }
  const header = Buffer.alloc(8);
  header[0] = 0x72;
  header[1] = sense.key & 0x0f;
  header[2] = sense.asc;
  header[3] = sense.ascq;
  const body = Buffer.concat(descriptors);
  header[7] = body.length;
  return Buffer.concat([header, body]);
}

export function buildSense(sense: SenseCode, details: SenseDetails, descriptorFormat: boolean): Buffer {
  return descriptorFormat ? buildDescriptorSense(sense, details) : buildFixedSense(sense, details);
}
