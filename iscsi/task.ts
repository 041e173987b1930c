// One SCSI task on the iSCSI side (RFC 7143 4.2.2, 11.3, 11.7, 11.8): Data-Out collection
// (immediate, unsolicited, solicited by R2T), Data-In planning and residuals, and the few
// commands the fabric answers itself (REPORT LUNS, INQUIRY to a LUN that does not exist).

import { Op } from './scsi/constants.js';
import { buildFixedSense, Sense, SenseKey, type SenseCode } from './scsi/sense.js';
import { RESERVED_TAG, type DataOut, type ScsiCommandPdu } from './pdu/types.js';
import type { OperationalParams } from './negotiation.js';
import type { LogicalUnit } from './device.js';
import { encodeLun } from './names.js';

/** SPC-4 4.5.6: ABORTED COMMAND / DATA OFFSET ERROR, for Data-Out outside what was asked for. */
export const DATA_OFFSET_ERROR: SenseCode = { key: SenseKey.ABORTED_COMMAND, asc: 0x4b, ascq: 0x05 };
/** SPC-4 4.5.6: ABORTED COMMAND / PROTOCOL SERVICE CRC ERROR, for Data-Out with a bad digest. */
export const PROTOCOL_SERVICE_CRC_ERROR: SenseCode = { key: SenseKey.ABORTED_COMMAND, asc: 0x47, ascq: 0x05 };

export interface R2TRequest {
  ttt: number;
  r2tSN: number;
  bufferOffset: number;
  desiredDataTransferLength: number;
}

interface OutstandingR2T {
  bufferOffset: number;
  lengthBytes: number;
  receivedBytes: number;
  /** RFC 7143 11.7.5: DataSN counts from 0 within each Data-Out sequence. */
  nextDataSN: number;
}

export type TaskState = 'waitingForCmdSN' | 'collecting' | 'executing' | 'done' | 'aborted';

export type DataOutResult = 'accepted' | 'burstComplete' | 'dataComplete' | { error: SenseCode; message: string };

export class ScsiTask {
  readonly itt: number;
  readonly cmd: ScsiCommandPdu;
  /** The LUN number, or null when the LUN field names no LUN of ours. */
  readonly lun: number | null;
  readonly lu: LogicalUnit | undefined;
  state: TaskState = 'waitingForCmdSN';
  /** Data-In PDUs and R2Ts sent, for the SCSI Response ExpDataSN (RFC 7143 11.4.8). */
  dataSN = 0;
  r2tSN = 0;
  /** Set when Data-Out went wrong before the command's CmdSN turn: it ends with this sense. */
  failure: SenseCode | undefined;
  /** Its CmdSN window slot was given back (once, on completion or abort). */
  slotReleased = false;
  /** The logical unit's work on it, while it runs (task management waits for it, SAM-5 7.1). */
  execution: Promise<unknown> | undefined;
  /** Tells the logical unit the task was aborted (ScsiRequest.signal). */
  readonly abortController = new AbortController();

  /** Bytes of the connection's write budget this task holds (its buffer), given back once. */
  writeBufferReserved = 0;
  /** Bytes of the connection's response budget this task holds while it runs and answers. */
  responseReserved = 0;
  /** When its last R2T went out or its last Data-Out came in (for the stall limit). */
  lastDataProgressMs = 0;

  private readonly params: OperationalParams;
  /** The write buffer of Expected Data Transfer Length bytes, once reserved (limits.ts): until
   *  then unsolicited data is held as it arrived, in `held`. */
  private buffer: Buffer | null = null;
  private held: Array<{ offset: number; data: Buffer }> = [];
  private receivedBytes = 0;
  /** Where unsolicited data ends (immediate + unsolicited Data-Out, RFC 7143 13.14). */
  private readonly unsolicitedLimit: number;
  private unsolicitedBytes = 0;
  private unsolicitedOpen: boolean;
  private unsolicitedDataSN = 0;
  private nextR2TOffset = 0;
  private readonly r2ts = new Map<number, OutstandingR2T>();

  /**
   * `writeBuffer`: the write buffer the connection already reserved and allocated (Expected Data
   * Transfer Length bytes) when it placed the immediate data into its start (see
   * writeBufferFor); else immediate data is held as it is until `provideBuffer`.
   */
  constructor(
    cmd: ScsiCommandPdu,
    params: OperationalParams,
    lun: number | null,
    lu: LogicalUnit | undefined,
    writeBuffer?: Buffer,
  ) {
    this.itt = cmd.itt;
    this.cmd = cmd;
    this.lun = lun;
    this.lu = lu;
    this.params = params;
    const edtl = cmd.write ? cmd.expectedDataTransferLength : 0;
    this.unsolicitedLimit = params.initialR2T ? Math.min(edtl, cmd.data.length) : Math.min(edtl, params.firstBurstLength);
    // RFC 7143 11.3.1: F=0 on a write means unsolicited Data-Out PDUs follow.
    this.unsolicitedOpen = cmd.write && !cmd.final && !params.initialR2T;
    // One buffer of EDTL bytes holds the whole Data-Out; every segment is copied into it once.
    // It is allocated only once reserved (the connection's budget), never from the EDTL alone.
    if (cmd.write && edtl > 0) {
      if (cmd.data.length === edtl) this.buffer = cmd.data;
      else if (writeBuffer !== undefined && writeBuffer.length === edtl && isSliceAt(cmd.data, writeBuffer, 0)) {
        this.buffer = writeBuffer;
      } else if (cmd.data.length > 0) this.held.push({ offset: 0, data: cmd.data });
    }
    this.receivedBytes = cmd.data.length;
    this.unsolicitedBytes = cmd.data.length;
    if (this.unsolicitedBytes >= this.unsolicitedLimit) this.unsolicitedOpen = false;
  }

  /**
   * RFC 7143 11.3 checks on the command PDU itself; a message when it must be rejected.
   * (Immediate data only when negotiated, never more than FirstBurstLength or the EDTL.)
   */
  static validate(cmd: ScsiCommandPdu, params: OperationalParams, maxWriteBytes: number): string | null {
    if (cmd.data.length > 0) {
      if (!cmd.write) return 'immediate data without the W bit';
      if (!params.immediateData) return 'immediate data but ImmediateData=No';
      if (cmd.data.length > params.firstBurstLength) return 'immediate data beyond FirstBurstLength';
      if (cmd.data.length > cmd.expectedDataTransferLength) return 'immediate data beyond the EDTL';
    }
    if (cmd.write && !cmd.final && params.initialR2T) return 'F=0 on a write with InitialR2T=Yes';
    if (cmd.write && cmd.expectedDataTransferLength > maxWriteBytes) {
      return `EDTL ${cmd.expectedDataTransferLength} above the write limit of ${maxWriteBytes} bytes`;
    }
    return null;
  }

  /** All Data-Out arrived (or none was expected). */
  get dataComplete(): boolean {
    return !this.cmd.write || this.receivedBytes >= this.cmd.expectedDataTransferLength;
  }

  /** Everything expected arrived: no unsolicited data pending, no R2T outstanding. */
  get allDataReceived(): boolean {
    return this.dataComplete && this.r2ts.size === 0 && !this.unsolicitedOpen;
  }

  get dataOut(): Buffer | null {
    if (!this.cmd.write) return null;
    return this.buffer ?? Buffer.alloc(0);
  }

  /** Bytes of write buffer this task still needs reserved before it may solicit data or run. */
  get writeBufferNeeded(): number {
    return this.cmd.write && this.buffer === null ? this.cmd.expectedDataTransferLength : 0;
  }

  /** R2Ts sent and not yet answered in full. */
  get awaitingSolicitedData(): boolean {
    return this.r2ts.size > 0;
  }

  /** The reserved write buffer arrived: the data held so far is copied into it. */
  provideBuffer(buffer: Buffer): void {
    if (buffer.length !== this.cmd.expectedDataTransferLength) throw new RangeError('write buffer of the wrong length');
    this.buffer = buffer;
    for (const h of this.held) h.data.copy(buffer, h.offset);
    this.held = [];
  }

  /**
   * Where the data segment of a Data-Out PDU for this task may land before the PDU is checked
   * (the framer's placement, see framer.ts): the slice of the write buffer at its Buffer Offset
   * when the TTT, offset and length fit what was asked (the same checks as acceptDataOut, without
   * taking effect), else undefined (the framer then hands up its own buffer and acceptDataOut
   * copies or refuses it). A placed PDU that acceptDataOut refuses fails the task, whose data is
   * then never used.
   */
  placeDataOut(ttt: number, offset: number, len: number): Buffer | undefined {
    if (!this.cmd.write || this.buffer === null || this.failure !== undefined) return undefined;
    if (this.state !== 'waitingForCmdSN' && this.state !== 'collecting') return undefined;
    if (offset + len > this.cmd.expectedDataTransferLength) return undefined;
    if (ttt === RESERVED_TAG) {
      if (!this.unsolicitedOpen || offset + len > this.unsolicitedLimit) return undefined;
    } else {
      const r2t = this.r2ts.get(ttt);
      if (r2t === undefined || offset < r2t.bufferOffset || offset + len > r2t.bufferOffset + r2t.lengthBytes) return undefined;
    }
    return this.buffer.subarray(offset, offset + len);
  }

  /** Whether `b` is (part of) this task's write buffer. */
  holdsBuffer(b: Buffer): boolean {
    const own = this.buffer;
    if (own === null || b.buffer !== own.buffer) return false;
    return b.byteOffset < own.byteOffset + own.length && own.byteOffset < b.byteOffset + b.length;
  }

  /** RFC 7143 11.7: place one Data-Out PDU, checking TTT, offset and length against what was asked. */
  acceptDataOut(pdu: DataOut): DataOutResult {
    const len = pdu.data.length;
    const offset = pdu.bufferOffset;
    const edtl = this.cmd.expectedDataTransferLength;
    if (!this.cmd.write || edtl === 0) return { error: DATA_OFFSET_ERROR, message: 'Data-Out for a command without data' };
    if (offset + len > edtl) return { error: DATA_OFFSET_ERROR, message: `Data-Out ${offset}+${len} beyond EDTL ${edtl}` };
    let burstComplete = false;
    if (pdu.ttt === RESERVED_TAG) {
      if (!this.unsolicitedOpen) return { error: DATA_OFFSET_ERROR, message: 'unsolicited Data-Out not allowed' };
      if (offset + len > this.unsolicitedLimit) {
        return { error: DATA_OFFSET_ERROR, message: `unsolicited Data-Out ${offset}+${len} beyond FirstBurstLength` };
      }
      if (this.params.dataPDUInOrder && pdu.dataSN !== this.unsolicitedDataSN) {
        return { error: DATA_OFFSET_ERROR, message: `unsolicited Data-Out DataSN ${pdu.dataSN}, expected ${this.unsolicitedDataSN}` };
      }
      this.unsolicitedDataSN++;
      this.unsolicitedBytes += len;
      if (pdu.final || this.unsolicitedBytes >= this.unsolicitedLimit) {
        this.unsolicitedOpen = false;
        burstComplete = true;
      }
    } else {
      const r2t = this.r2ts.get(pdu.ttt);
      if (r2t === undefined) return { error: DATA_OFFSET_ERROR, message: `Data-Out with unknown TTT 0x${pdu.ttt.toString(16)}` };
      if (offset < r2t.bufferOffset || offset + len > r2t.bufferOffset + r2t.lengthBytes) {
        return { error: DATA_OFFSET_ERROR, message: `Data-Out ${offset}+${len} outside R2T ${r2t.bufferOffset}+${r2t.lengthBytes}` };
      }
      if (this.params.dataPDUInOrder && pdu.dataSN !== r2t.nextDataSN) {
        return { error: DATA_OFFSET_ERROR, message: `Data-Out DataSN ${pdu.dataSN}, expected ${r2t.nextDataSN}` };
      }
      r2t.nextDataSN++;
      r2t.receivedBytes += len;
      if (r2t.receivedBytes >= r2t.lengthBytes) {
        this.r2ts.delete(pdu.ttt);
        burstComplete = true;
      }
    }
    // Placed by the framer already (placeDataOut): nothing to copy. Unsolicited data ahead of the
    // buffer's reservation is held as it came (at most FirstBurstLength).
    if (this.buffer === null) this.held.push({ offset, data: pdu.data });
    else if (!isSliceAt(pdu.data, this.buffer, offset)) pdu.data.copy(this.buffer, offset);
    this.receivedBytes += len;
    if (this.allDataReceived) return 'dataComplete';
    return burstComplete ? 'burstComplete' : 'accepted';
  }

  /**
   * RFC 7143 11.8: the R2Ts to send now — solicited bursts of at most MaxBurstLength after the
   * unsolicited part, at most MaxOutstandingR2T at a time.
   */
  nextR2Ts(allocateTtt: () => number): R2TRequest[] {
    if (!this.cmd.write || this.unsolicitedOpen) return [];
    const edtl = this.cmd.expectedDataTransferLength;
    if (this.nextR2TOffset === 0) this.nextR2TOffset = this.unsolicitedBytes;
    const out: R2TRequest[] = [];
    while (this.nextR2TOffset < edtl && this.r2ts.size < this.params.maxOutstandingR2T) {
      const lengthBytes = Math.min(this.params.maxBurstLength, edtl - this.nextR2TOffset);
      const ttt = allocateTtt();
      this.r2ts.set(ttt, { bufferOffset: this.nextR2TOffset, lengthBytes, receivedBytes: 0, nextDataSN: 0 });
      out.push({ ttt, r2tSN: this.r2tSN++, bufferOffset: this.nextR2TOffset, desiredDataTransferLength: lengthBytes });
      this.nextR2TOffset += lengthBytes;
    }
    return out;
  }
}

/** `part` is the slice of `whole` that starts at byte `offset` of it (same memory). */
function isSliceAt(part: Buffer, whole: Buffer, offset: number): boolean {
  return part.buffer === whole.buffer && part.byteOffset === whole.byteOffset + offset && offset + part.length <= whole.length;
}

/**
 * RFC 7143 11.3 immediate data: the write buffer for a SCSI Command PDU, from its BHS, when the
 * immediate data is only the start of the Expected Data Transfer Length (so the data segment can
 * land in it directly and ScsiTask takes it over); undefined when there is nothing to gain or the
 * command will be rejected anyway (see ScsiTask.validate).
 */
export function writeBufferFor(bhs: Buffer, dataLength: number, reserve: (bytes: number) => boolean): Buffer | undefined {
  const write = (bhs[1]! & 0x20) !== 0;
  const edtl = bhs.readUInt32BE(20);
  if (!write || dataLength >= edtl || !reserve(edtl)) return undefined;
  return Buffer.alloc(edtl);
}

/** One Data-In PDU of a read: its slice of the data and whether it ends a sequence or the command. */
export interface DataInSegment {
  offsetBytes: number;
  lengthBytes: number;
  /** F bit: last PDU of a MaxBurstLength sequence (RFC 7143 11.7.1). */
  final: boolean;
  /** Last PDU of the command. */
  last: boolean;
}

/** RFC 7143 11.7: split `lengthBytes` of Data-In into PDUs of at most the initiator's
 *  MaxRecvDataSegmentLength, in sequences of at most MaxBurstLength. */
export function* planDataIn(lengthBytes: number, maxSegmentBytes: number, maxBurstBytes: number): Generator<DataInSegment> {
  let offset = 0;
  while (offset < lengthBytes) {
    const burstEnd = Math.min(lengthBytes, offset + maxBurstBytes);
    while (offset < burstEnd) {
      const n = Math.min(maxSegmentBytes, burstEnd - offset);
      const end = offset + n;
      yield { offsetBytes: offset, lengthBytes: n, final: end === burstEnd, last: end === lengthBytes };
      offset = end;
    }
  }
}

/** RFC 7143 11.4.5 residuals: overflow when the device had more than the EDTL, underflow when less. */
export function residual(expectedBytes: number, actualBytes: number): { overflow: boolean; underflow: boolean; residualCount: number } {
  if (actualBytes > expectedBytes) return { overflow: true, underflow: false, residualCount: actualBytes - expectedBytes };
  if (actualBytes < expectedBytes) return { overflow: false, underflow: true, residualCount: expectedBytes - actualBytes };
  return { overflow: false, underflow: false, residualCount: 0 };
}

// ---- commands the fabric answers without a logical unit ------------------------------------------

export type FabricAnswer = { dataIn: Buffer } | { sense: Buffer };

/** SPC-4 6.33 REPORT LUNS from the target's LUN map (SAM-5 4.7 addressing). */
export function spcReportLuns(cdb: Buffer, luns: Iterable<number>): FabricAnswer {
  // SPC-4 6.33 table 284: bytes 1, 3-5 and 10 are reserved; nothing of the CONTROL byte (11) is
  // supported (no ACA, no linked commands). A bit set there is INVALID FIELD IN CDB at that bit.
  for (const byte of [1, 3, 4, 5, 10, 11]) {
    const stray = cdb[byte] ?? 0;
    if (stray !== 0) return { sense: buildFixedSense(Sense.INVALID_FIELD_IN_CDB, { fieldPointer: byte, bitPointer: 31 - Math.clz32(stray) }) };
  }
  const selectReport = cdb[2]!;
  const allocationLength = cdb.readUInt32BE(6);
  if (allocationLength < 16) return { sense: buildFixedSense(Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 6 }) };
  let list: number[];
  if (selectReport === 0x00 || selectReport === 0x02) list = [...luns].sort((a, b) => a - b);
  else if (selectReport === 0x01) list = []; // no well known logical units
  else return { sense: buildFixedSense(Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 2 }) };
  const data = Buffer.alloc(8 + 8 * list.length);
  data.writeUInt32BE(8 * list.length, 0);
  list.forEach((lun, i) => encodeLun(lun).copy(data, 8 + 8 * i));
  return { dataIn: data.subarray(0, Math.min(data.length, allocationLength)) };
}

/** SPC-4 6.4.2: INQUIRY to a LUN that does not exist: peripheral qualifier 011b, type 1Fh. */
export function spcInquiryNoLun(cdb: Buffer): FabricAnswer {
  const allocationLength = cdb.readUInt16BE(3);
  const evpd = (cdb[1]! & 0x01) !== 0;
  const data = Buffer.alloc(evpd ? 4 : 36);
  data[0] = 0x7f;
  if (evpd) data[1] = cdb[2]!;
  else {
    data[2] = 0x06; // SPC-4
    data[3] = 0x02; // response data format
    data[4] = 31;
  }
  return { dataIn: data.subarray(0, Math.min(data.length, allocationLength)) };
}

/** What the fabric answers itself for this CDB, or null to hand it to the logical unit. */
export function fabricCommand(cdb: Buffer, lu: LogicalUnit | undefined, luns: Iterable<number>): FabricAnswer | null {
  const op = cdb[0]!;
  if (op === Op.REPORT_LUNS) return spcReportLuns(cdb, luns);
  if (lu !== undefined) return null;
  if (op === Op.INQUIRY) return spcInquiryNoLun(cdb);
  return { sense: buildFixedSense(Sense.LOGICAL_UNIT_NOT_SUPPORTED) };
}
