// SSC-4 stream commands of a sequential-access (tape) logical unit: decoders (parse) and handlers
// (execute) over the drive state of tape-drive.ts, and `sscOps()`, the tape op table (SPC-4
// commands included, with the tape-specific INQUIRY, TEST UNIT READY, REQUEST SENSE and MODE
// SELECT). Positions are logical object identifiers: records and filemarks counted from BOP.
//
// Sense conventions (SSC-4 4.2 and each command's clause): conditions that end a READ, SPACE or
// WRITE early are CHECK CONDITION with the stream bits (FILEMARK, EOM, ILI) and INFORMATION = the
// residual — bytes in variable-block mode, logical blocks in fixed-block mode, filemarks or
// blocks for SPACE (absolute value, as Linux st expects) — and whatever was read still returned.
//
// Buffered mode (SSC-4 8.3.3; tape-drive.ts): WRITE(6) passes the drive's BUFFERED MODE to the
// medium (TapeWriteOptions.sync); WRITE FILEMARKS with IMMED=0 and every command that moves the
// medium flush it first. A write or flush the store could not take (disk full, I/O error) is
// MEDIUM ERROR, WRITE ERROR (03/0C/00).

import { tapeFaultOf, type ScsiResponse, type TapeMedium } from '../device.js';
import { invalidFieldInCdb, invalidFieldInParameterList, truncateToAllocationLength, writeUInt64, asciiField } from './cdb.js';
import { Op } from './constants.js';
import { defineOp, good, type CommandContext, type OpEntry } from './dispatcher.js';
import { Sense, SenseError, buildSense, type SenseCode, type SenseDetails } from './sense.js';
import {
  decodeInquiry,
  decodeModeSelect10,
  decodeModeSelect6,
  decodeModeSense6,
  decodeRequestSense,
  spcInquiry,
  spcModeSelect,
  spcModeSense,
  spcOps,
} from './spc.js';
import { DEFAULT_BUFFERED_MODE, type BufferedMode, type TapeDrive } from './tape-drive.js';

type Ctx = CommandContext<TapeDrive>;

const CONTROL = 0x07;

/** CHECK CONDITION that still carries the Data-In read before the condition (READ(6)). */
function checkConditionWithData(ctx: Ctx, sense: SenseCode, details: SenseDetails, dataIn: Buffer): ScsiResponse {
  const response = ctx.lu.checkCondition(sense, details);
  return dataIn.length > 0 ? { ...response, dataIn } : response;
}

/** A TapeMedium fault as sense data (iscsi/device.ts TapeFault); anything else is rethrown.
 *  `information`: the command's residual (SSC-4 4.2.x: what was not written), when it has one. */
function faultToSenseError(err: unknown, information?: number): unknown {
  const residual: SenseDetails = information === undefined ? {} : { information };
  switch (tapeFaultOf(err)) {
    case 'write-protected':
      return new SenseError(Sense.WRITE_PROTECTED);
    case 'worm-overwrite':
      return new SenseError(Sense.WORM_MEDIUM_OVERWRITE_ATTEMPTED);
    case 'end-of-medium':
      return new SenseError(Sense.END_OF_PARTITION_MEDIUM_DETECTED, { endOfMedium: true, ...residual });
    case 'write-error':
      // SSC-4 4.2.x: data that cannot be written to the medium — MEDIUM ERROR, WRITE ERROR.
      return new SenseError(Sense.WRITE_ERROR, residual);
    default:
      return err;
  }
}

/** A command that moves the medium (or reads) first flushes buffered writes; a flush that failed
 *  is that command's WRITE ERROR. */
async function flushing<T>(operation: Promise<T>): Promise<T> {
  try {
    return await operation;
  } catch (err) {
    throw faultToSenseError(err);
  }
}

function requireWritable(medium: TapeMedium): void {
  if (medium.writeProtected()) throw new SenseError(Sense.WRITE_PROTECTED);
}

// ---- TEST UNIT READY (SPC-4 6.37, SSC-4 4.2.x ready state) / REQUEST SENSE (SPC-4 6.29) --------

export function sscTestUnitReady(ctx: Ctx): ScsiResponse {
  ctx.device.requireLoaded();
  return good();
}

interface RequestSenseCommand {
  descriptorFormat: boolean;
  allocationLength: number;
}

/** SPC-4 6.29.2: a pending unit attention, else the current not-ready condition, else NO SENSE. */
export function sscRequestSense(ctx: Ctx, cmd: RequestSenseCommand): ScsiResponse {
  const sense = ctx.lu.unitAttentions.take(ctx.nexus.id) ?? ctx.device.notReadySense() ?? Sense.NO_ADDITIONAL_SENSE_INFORMATION;
  return good(truncateToAllocationLength(buildSense(sense, {}, cmd.descriptorFormat), cmd.allocationLength));
}

// ---- INQUIRY (SPC-4 6.6): RMB = 1, a tape cartridge is removable ------------------------------

export function sscInquiry(ctx: Ctx, cmd: ReturnType<typeof decodeInquiry>): ScsiResponse {
  const response = spcInquiry(ctx, cmd);
  if (!cmd.evpd && response.dataIn && response.dataIn.length > 1) {
    const data = Buffer.from(response.dataIn);
    data[1] = 0x80; // SPC-4 6.6.2 RMB
    return good(data);
  }
  return response;
}

// ---- MODE SELECT(6/10) (SPC-4 6.10/6.11 + SSC-4 8.3.3 mode parameter header and block descriptor)

/** SSC-4 8.3.3 DEVICE-SPECIFIC PARAMETER in MODE SELECT data: WP is ignored (it reports the
 *  medium), BUFFERED MODE 0h or 1h, SPEED 0h (the default; LTO drives pick their own speed).
 *  Returns the BUFFERED MODE asked for. */
function decodeDeviceSpecificParameter(dsp: number, offset: number): BufferedMode {
  const bufferedMode = (dsp >> 4) & 0x07;
  if (bufferedMode !== 0 && bufferedMode !== 1) throw invalidFieldInParameterList(offset, 6);
  if ((dsp & 0x0f) !== 0) throw invalidFieldInParameterList(offset, 3);
  return bufferedMode;
}

/** The header's BUFFERED MODE and the block descriptor (checked by
 *  TapeDrive.checkBlockDescriptor) take effect only when the whole parameter list was valid. A
 *  change to unbuffered mode first flushes what buffered writes left (from then on every
 *  acknowledged write is on stable storage). */
export async function sscModeSelect(ctx: Ctx, cmd: ReturnType<typeof decodeModeSelect6>): Promise<ScsiResponse> {
  const drive = ctx.device;
  const list = ctx.req.dataOut;
  const headerLength = cmd.tenByte ? 8 : 4;
  const dspOffset = cmd.tenByte ? 3 : 2;
  const bufferedMode =
    cmd.parameterListLength >= headerLength && list !== null && list.length >= headerLength
      ? decodeDeviceSpecificParameter(list[dspOffset]!, dspOffset)
      : undefined;
  drive.pendingBlockLengthBytes = undefined;
  let response: ScsiResponse;
  let pending: number | undefined;
  try {
    response = await spcModeSelect(ctx, cmd);
    pending = drive.pendingBlockLengthBytes;
  } finally {
    drive.pendingBlockLengthBytes = undefined;
  }
  let changed = false;
  if (pending !== undefined && pending !== drive.blockLengthBytes) {
    drive.blockLengthBytes = pending;
    changed = true;
  }
  if (bufferedMode !== undefined && bufferedMode !== drive.bufferedMode) {
    if (bufferedMode === 0) {
      const medium = drive.loadedMedium();
      if (medium) await flushing(medium.flush());
    }
    drive.bufferedMode = bufferedMode;
    changed = true;
  }
  if (changed) ctx.lu.unitAttentions.establishForAll(Sense.MODE_PARAMETERS_CHANGED, ctx.nexus.id);
  return response;
}

// ---- MODE SENSE(6/10) (SPC-4 6.11/6.12 + SSC-4 8.3.3) ---------------------------------------------

/** SPC-4's MODE SENSE, with the mode parameter header and block descriptor of the page control
 *  asked for: changeable values (PC 01b) mark BUFFERED MODE (DEVICE-SPECIFIC PARAMETER 70h) and
 *  BLOCK LENGTH (FFFFFFh) — what MODE SELECT takes; default values (PC 10b) are BUFFERED MODE 1h
 *  and the personality's block length. WP always reports the medium. */
export async function sscModeSense(ctx: Ctx, cmd: ReturnType<typeof decodeModeSense6>): Promise<ScsiResponse> {
  const response = await spcModeSense(ctx, cmd);
  const pc = cmd.pc;
  if ((pc !== 1 && pc !== 2) || response.dataIn === undefined) return response;
  const drive = ctx.device;
  const data = Buffer.from(response.dataIn);
  const dspOffset = cmd.tenByte ? 3 : 2;
  if (data.length > dspOffset) {
    data[dspOffset] = pc === 1 ? 0x70 : (drive.deviceSpecificParameter() & 0x80) | (DEFAULT_BUFFERED_MODE << 4);
  }
  const headerLength = cmd.tenByte ? 8 : 4;
  if (data.length >= headerLength) {
    const blockDescriptorLength = cmd.tenByte ? data.readUInt16BE(6) : data[3]!;
    if (blockDescriptorLength >= 8) {
      const blockLength = Buffer.alloc(3);
      blockLength.writeUIntBE(pc === 1 ? 0xffffff : drive.personality.defaultBlockLengthBytes, 0, 3);
      if (pc === 1) data.fill(0, headerLength, Math.min(data.length, headerLength + 5)); // DENSITY CODE, NUMBER OF BLOCKS
      blockLength.copy(data, headerLength + 5, 0, Math.max(0, Math.min(3, data.length - headerLength - 5)));
    }
  }
  return { ...response, dataIn: data };
}

// ---- READ BLOCK LIMITS (SSC-4 6.x) ------------------------------------------------------------

export function decodeReadBlockLimits(cdb: Buffer): null {
  if (cdb[1]! & 0x01) throw invalidFieldInCdb(1, 0); // MLOI: not an LTO-5 (SSC-3) feature
  return null;
}

export function sscReadBlockLimits(ctx: Ctx): ScsiResponse {
  const limits = ctx.device.personality.blockLimits;
  const data = Buffer.alloc(6);
  data[0] = limits.granularity & 0x1f;
  data.writeUIntBE(limits.maximumBlockLengthBytes, 1, 3);
  data.writeUInt16BE(limits.minimumBlockLengthBytes, 4);
  return good(data);
}

// ---- READ(6) / WRITE(6) (SSC-4 6.x) -----------------------------------------------------------

interface ReadWrite6Command {
  fixed: boolean;
  sili: boolean;
  transferLength: number;
}

export function decodeRead6(cdb: Buffer): ReadWrite6Command {
  if (cdb[1]! & 0xfc) throw invalidFieldInCdb(1);
  const fixed = (cdb[1]! & 0x01) !== 0;
  const sili = (cdb[1]! & 0x02) !== 0;
  // SSC-4 READ(6): SILI and FIXED both one is an illegal combination.
  if (fixed && sili) throw invalidFieldInCdb(1, 1);
  return { fixed, sili, transferLength: cdb.readUIntBE(2, 3) };
}

export function decodeWrite6(cdb: Buffer): ReadWrite6Command {
  if (cdb[1]! & 0xfe) throw invalidFieldInCdb(1);
  return { fixed: (cdb[1]! & 0x01) !== 0, sili: false, transferLength: cdb.readUIntBE(2, 3) };
}

/** Fixed-block mode needs a block length set by MODE SELECT. */
function fixedBlockLength(drive: TapeDrive): number {
  if (drive.blockLengthBytes === 0) throw invalidFieldInCdb(1, 0);
  return drive.blockLengthBytes;
}

export async function sscRead6(ctx: Ctx, cmd: ReadWrite6Command): Promise<ScsiResponse> {
  const drive = ctx.device;
  const medium = drive.requireLoaded();
  if (cmd.transferLength === 0) return good();
  if (cmd.fixed) return readFixed(ctx, medium, fixedBlockLength(drive), cmd.transferLength);

  // Variable-block mode: one record, TRANSFER LENGTH bytes at most; its buffer (filled by pread)
  // is the Data-In.
  const result = await flushing(medium.read());
  const requested = cmd.transferLength;
  if (result.kind === 'filemark') {
    return ctx.lu.checkCondition(Sense.FILEMARK_DETECTED, { filemark: true, information: requested });
  }
  if (result.kind === 'end-of-data') {
    return ctx.lu.checkCondition(Sense.END_OF_DATA_DETECTED, { information: requested });
  }
  const actual = result.data.length;
  drive.counters.bytesRead += Math.min(actual, requested);
  if (actual === requested || (actual < requested && cmd.sili)) return good(result.data);
  // Incorrect length: INFORMATION = requested - actual, negative for an overlength record whose
  // excess is discarded; the position is after the record either way.
  const dataIn = actual > requested ? result.data.subarray(0, requested) : result.data;
  return checkConditionWithData(ctx, Sense.NO_ADDITIONAL_SENSE_INFORMATION, { incorrectLength: true, information: requested - actual }, dataIn);
}

/** Largest fixed-block READ (one Data-In buffer). */
const MAX_FIXED_READ_BYTES = 1024 * 1024 * 1024;

/** Fixed-block READ: each block is read (pread) straight into its place in the one Data-In
 *  buffer; nothing is copied or concatenated. */
async function readFixed(ctx: Ctx, medium: TapeMedium, blockLength: number, blockCount: number): Promise<ScsiResponse> {
  if (blockLength * blockCount > MAX_FIXED_READ_BYTES) throw invalidFieldInCdb(2);
  const dataIn = Buffer.allocUnsafe(blockLength * blockCount);
  let filledBytes = 0;
  const dataSoFar = (): Buffer => dataIn.subarray(0, filledBytes);
  for (let i = 0; i < blockCount; i++) {
    const slot = dataIn.subarray(filledBytes, filledBytes + blockLength);
    const result = await flushing(medium.read(slot));
    const residual = blockCount - i;
    if (result.kind === 'filemark') {
      return checkConditionWithData(ctx, Sense.FILEMARK_DETECTED, { filemark: true, information: residual }, dataSoFar());
    }
    if (result.kind === 'end-of-data') {
      return checkConditionWithData(ctx, Sense.END_OF_DATA_DETECTED, { information: residual }, dataSoFar());
    }
    if (result.data.length !== blockLength) {
      // The incorrect-length block is not counted as read (and not transferred).
      return checkConditionWithData(
        ctx,
        Sense.NO_ADDITIONAL_SENSE_INFORMATION,
        { incorrectLength: true, information: residual },
        dataSoFar(),
      );
    }
    // A medium that did not read into the slot (e.g. a test double) is copied.
    if (result.data.buffer !== slot.buffer || result.data.byteOffset !== slot.byteOffset) result.data.copy(slot);
    filledBytes += blockLength;
    ctx.device.counters.bytesRead += blockLength;
  }
  return good(dataSoFar());
}

export async function sscWrite6(ctx: Ctx, cmd: ReadWrite6Command): Promise<ScsiResponse> {
  const drive = ctx.device;
  const medium = drive.requireLoaded();
  if (cmd.transferLength === 0) return good();
  const limits = drive.personality.blockLimits;
  const data = ctx.req.dataOut ?? Buffer.alloc(0);
  if (!cmd.fixed && (cmd.transferLength > limits.maximumBlockLengthBytes || cmd.transferLength < limits.minimumBlockLengthBytes)) {
    throw invalidFieldInCdb(2);
  }
  // SSC-4 6.9: the TRANSFER LENGTH is what the command writes. Data-Out shorter than that (the
  // initiator's Expected Data Transfer Length does not cover it) is refused before anything is
  // written: INVALID FIELD IN CDB at TRANSFER LENGTH, and the SCSI Response reports the bytes the
  // command would have needed as a residual overflow (RFC 7143 11.4.5.1).
  const neededBytes = cmd.fixed ? cmd.transferLength * fixedBlockLength(drive) : cmd.transferLength;
  if (data.length < neededBytes) {
    return { ...ctx.lu.checkCondition(Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 2 }), dataOutOverflow: neededBytes - data.length };
  }
  let records: Buffer[];
  if (cmd.fixed) {
    const blockLength = fixedBlockLength(drive);
    records = [];
    for (let i = 0; i < cmd.transferLength; i++) records.push(data.subarray(i * blockLength, (i + 1) * blockLength));
  } else {
    records = [data.length === cmd.transferLength ? data : data.subarray(0, cmd.transferLength)];
  }
  requireWritable(medium);

  // Issue every record now, in command order, then let the next queued command start while these
  // become durable (group commit across commands; tape-drive.ts explains the queue).
  const writeOptions = drive.writeOptions();
  const writes = records.map((record) => drive.trackWrite(medium.writeRecord(record, writeOptions)));
  drive.releaseQueue();
  const settled = await Promise.allSettled(writes);

  const written = settled.findIndex((s) => s.status === 'rejected');
  const writtenCount = written === -1 ? settled.length : written;
  for (let i = 0; i < writtenCount; i++) drive.counters.bytesWritten += records[i]!.length;
  const dataOutResidual = Math.max(0, data.length - records.reduce((n, r) => n + r.length, 0));
  const residualFields = dataOutResidual > 0 ? { dataOutResidual } : {};
  if (written !== -1) {
    const failure = (settled[written] as PromiseRejectedResult).reason;
    const notWritten = cmd.fixed ? cmd.transferLength - writtenCount : cmd.transferLength;
    throw faultToSenseError(failure, notWritten);
  }
  const last = settled.at(-1) as PromiseFulfilledResult<{ beyondEarlyWarning: boolean }> | undefined;
  if (last?.value.beyondEarlyWarning) {
    // SSC-4 4.2.5 early warning: the data is written; EOM tells the application to finish up.
    return { ...ctx.lu.checkCondition(Sense.END_OF_PARTITION_MEDIUM_DETECTED_EARLY_WARNING, { endOfMedium: true, information: 0 }), ...residualFields };
  }
  return { ...good(), ...residualFields };
}

// ---- WRITE FILEMARKS(6) (SSC-4 6.x) -----------------------------------------------------------

/** Filemarks written per step of a large WRITE FILEMARKS (one write group each). */
const FILEMARKS_PER_STEP = 1024;

interface WriteFilemarksCommand {
  immed: boolean;
  count: number;
}

export function decodeWriteFilemarks6(cdb: Buffer): WriteFilemarksCommand {
  if (cdb[1]! & 0x02) throw invalidFieldInCdb(1, 1); // WSMK: set marks are not supported
  if (cdb[1]! & 0xfc) throw invalidFieldInCdb(1);
  return { immed: (cdb[1]! & 0x01) !== 0, count: cdb.readUIntBE(2, 3) };
}

/** SSC-4 WRITE FILEMARKS(6): with IMMED=0 the filemarks and every buffered object before them
 *  are on stable storage before GOOD (one fdatasync, shared with concurrent writers); a count of
 *  zero only does that flush. IMMED=1 (buffered mode only) answers once the filemarks are in the
 *  data file, like a buffered WRITE. */
export async function sscWriteFilemarks6(ctx: Ctx, cmd: WriteFilemarksCommand): Promise<ScsiResponse> {
  const drive = ctx.device;
  const medium = drive.requireLoaded();
  // SSC-4 WRITE FILEMARKS: IMMED set to one with BUFFERED MODE 0h is an invalid field.
  if (cmd.immed && drive.bufferedMode === 0) throw invalidFieldInCdb(1, 0);
  if (cmd.count > 0) requireWritable(medium);
  let result: { beyondEarlyWarning: boolean };
  let written = 0;
  if (cmd.count <= FILEMARKS_PER_STEP) {
    const pending = drive.trackWrite(medium.writeFilemarks(cmd.count, { sync: !cmd.immed }));
    drive.releaseQueue();
    try {
      result = await pending;
    } catch (err) {
      throw faultToSenseError(err, cmd.count);
    }
  } else {
    // A count up to 2^24 - 1 is written in bounded steps, each awaited and synced (the event loop
    // serves everyone else meanwhile, memory stays that of one step); the queue is released only after
    // the last step, so no later command lands between them. ABORT TASK / LUN RESET stop it
    // between steps (SAM-5 7.2: the filemarks already written stay).
    const steps = (async (): Promise<{ beyondEarlyWarning: boolean }> => {
      let last = { beyondEarlyWarning: false };
      while (written < cmd.count && ctx.req.signal?.aborted !== true) {
        const n = Math.min(FILEMARKS_PER_STEP, cmd.count - written);
        // Each step made durable: the medium then holds no index entries of earlier steps.
        last = await medium.writeFilemarks(n, { sync: true });
        written += n;
      }
      return last;
    })();
    const pending = drive.trackWrite(steps);
    try {
      result = await pending;
    } catch (err) {
      throw faultToSenseError(err, cmd.count - written);
    } finally {
      drive.releaseQueue();
    }
    if (written < cmd.count) throw new SenseError(Sense.ABORTED_COMMAND);
  }
  if (cmd.count > 0 && result.beyondEarlyWarning) {
    return ctx.lu.checkCondition(Sense.END_OF_PARTITION_MEDIUM_DETECTED_EARLY_WARNING, { endOfMedium: true, information: 0 });
  }
  return good();
}

// ---- SPACE(6) / SPACE(16) (SSC-4 6.x) ---------------------------------------------------------

/** SSC-4 SPACE CODE values. */
export const SpaceCode = {
  LOGICAL_BLOCKS: 0,
  FILEMARKS: 1,
  SEQUENTIAL_FILEMARKS: 2,
  END_OF_DATA: 3,
} as const;

interface SpaceCommand {
  code: number;
  count: number;
}

function checkSpaceCode(code: number): void {
  if (code !== SpaceCode.LOGICAL_BLOCKS && code !== SpaceCode.FILEMARKS && code !== SpaceCode.END_OF_DATA) {
    // Sequential filemarks and (obsolete) set marks are not supported.
    throw invalidFieldInCdb(1, 3);
  }
}

export function decodeSpace6(cdb: Buffer): SpaceCommand {
  if (cdb[1]! & 0xf0) throw invalidFieldInCdb(1);
  const code = cdb[1]! & 0x0f;
  checkSpaceCode(code);
  return { code, count: cdb.readIntBE(2, 3) };
}

export function decodeSpace16(cdb: Buffer): SpaceCommand {
  if (cdb[1]! & 0xf0) throw invalidFieldInCdb(1);
  const code = cdb[1]! & 0x0f;
  checkSpaceCode(code);
  // PARAMETER LENGTH: no position data is returned by this device.
  if (cdb.readUInt16BE(12) !== 0) throw invalidFieldInCdb(12);
  const count = cdb.readBigInt64BE(4);
  if (count > BigInt(Number.MAX_SAFE_INTEGER) || count < -BigInt(Number.MAX_SAFE_INTEGER)) throw invalidFieldInCdb(4);
  return { code, count: Number(count) };
}

export async function sscSpace(ctx: Ctx, cmd: SpaceCommand): Promise<ScsiResponse> {
  const medium = ctx.device.requireLoaded();
  if (cmd.code === SpaceCode.END_OF_DATA) {
    await flushing(medium.spaceToEndOfData());
    return good();
  }
  if (cmd.count === 0) {
    await flushing(medium.flush());
    return good();
  }
  const result = await flushing(cmd.code === SpaceCode.LOGICAL_BLOCKS ? medium.spaceRecords(cmd.count) : medium.spaceFilemarks(cmd.count));
  const information = Math.abs(cmd.count) - result.spaced;
  switch (result.stoppedAt) {
    case 'filemark':
      return ctx.lu.checkCondition(Sense.FILEMARK_DETECTED, { filemark: true, information });
    case 'end-of-data':
      return ctx.lu.checkCondition(Sense.END_OF_DATA_DETECTED, { information });
    case 'beginning-of-partition':
      return ctx.lu.checkCondition(Sense.BEGINNING_OF_PARTITION_MEDIUM_DETECTED, { endOfMedium: true, information });
    default:
      return good();
  }
}

// ---- REWIND (SSC-4 6.x) / ERASE(6) (SSC-4 6.x) --------------------------------------------------

/** IMMED is accepted; the operation completes before status either way (SSC-4 permits it). */
export function decodeRewind(cdb: Buffer): null {
  if (cdb[1]! & 0xfe) throw invalidFieldInCdb(1);
  return null;
}

export async function sscRewind(ctx: Ctx): Promise<ScsiResponse> {
  await flushing(ctx.device.requireLoaded().rewind());
  return good();
}

export function decodeErase6(cdb: Buffer): null {
  if (cdb[1]! & 0xfc) throw invalidFieldInCdb(1);
  return null; // IMMED and LONG: either way everything from the position on is erased (new EOD).
}

export async function sscErase6(ctx: Ctx): Promise<ScsiResponse> {
  const medium = ctx.device.requireLoaded();
  requireWritable(medium);
  try {
    await medium.erase();
  } catch (err) {
    throw faultToSenseError(err);
  }
  return good();
}

// ---- LOAD UNLOAD (SSC-4 7.2) ------------------------------------------------------------------

interface LoadUnloadCommand {
  load: boolean;
}

export function decodeLoadUnload(cdb: Buffer): LoadUnloadCommand {
  if (cdb[1]! & 0xfe) throw invalidFieldInCdb(1);
  if (cdb[4]! & 0xf0) throw invalidFieldInCdb(4); // LLOAD and reserved bits
  const load = (cdb[4]! & 0x01) !== 0;
  const eot = (cdb[4]! & 0x04) !== 0;
  if (load && eot) throw invalidFieldInCdb(4, 2);
  // HOLD and RETEN change nothing for a virtual cartridge: HOLD=1 LOAD=0 also leaves it ready for
  // the changer to take; RETEN has no tape to re-tension.
  return { load };
}

export async function sscLoadUnload(ctx: Ctx, cmd: LoadUnloadCommand): Promise<ScsiResponse> {
  const drive = ctx.device;
  const state = drive.state;
  if (state.kind === 'empty') throw new SenseError(Sense.MEDIUM_NOT_PRESENT);
  if (cmd.load) {
    await flushing(state.medium.rewind());
    if (state.kind === 'unloaded') {
      drive.transition({ kind: 'load' });
      ctx.lu.unitAttentions.establishForAll(Sense.NOT_READY_TO_READY_CHANGE_MEDIUM_MAY_HAVE_CHANGED, ctx.nexus.id);
    }
    return good();
  }
  if (state.kind === 'unloaded') return good();
  if (drive.removalPrevented()) throw new SenseError(Sense.MEDIUM_REMOVAL_PREVENTED);
  await flushing(state.medium.flush());
  await flushing(state.medium.rewind());
  drive.transition({ kind: 'unload' });
  return good();
}

// ---- PREVENT ALLOW MEDIUM REMOVAL (SPC-4 6.13 / SSC-4) ------------------------------------------

interface PreventAllowCommand {
  prevent: boolean;
}

export function decodePreventAllow(cdb: Buffer): PreventAllowCommand {
  if (cdb[4]! & 0xfe) throw invalidFieldInCdb(4, 1); // PREVENT 1xb: obsolete
  return { prevent: (cdb[4]! & 0x01) !== 0 };
}

export function sscPreventAllow(ctx: Ctx, cmd: PreventAllowCommand): ScsiResponse {
  ctx.device.setPrevention(ctx.nexus.id, cmd.prevent);
  return good();
}

// ---- READ POSITION (SSC-4 6.x) ----------------------------------------------------------------

export const ReadPositionForm = {
  SHORT_FORM_BLOCK_ID: 0x00,
  SHORT_FORM_VENDOR_SPECIFIC: 0x01,
  LONG_FORM: 0x06,
  EXTENDED_FORM: 0x08,
} as const;

interface ReadPositionCommand {
  serviceAction: number;
  allocationLength: number;
}

export function decodeReadPosition(cdb: Buffer): ReadPositionCommand {
  // The op table already refused unknown service actions (forms).
  if (cdb[1]! & 0xe0) throw invalidFieldInCdb(1);
  return { serviceAction: cdb[1]! & 0x1f, allocationLength: cdb.readUInt16BE(7) };
}

export function sscReadPosition(ctx: Ctx, cmd: ReadPositionCommand): ScsiResponse {
  const position = ctx.device.requireLoaded().position();
  // SSC-4 READ POSITION with buffered data: a buffered WRITE is acknowledged once its record is in
  // the tape's data file — written to the medium as far as the drive can tell; the operating
  // system, not the drive, holds what is not on stable storage yet. So the object buffer is
  // always empty: NUMBER OF LOGICAL OBJECTS / BYTES IN OBJECT BUFFER are 0 and valid (LOCU and
  // BYCU 0), and the first and last logical object locations are both the current position.
  const location = position.logicalObjectId;
  const bop = position.bop ? 0x80 : 0;
  const eop = position.beyondEarlyWarning ? 0x40 : 0;
  if (cmd.serviceAction === ReadPositionForm.LONG_FORM) {
    const data = Buffer.alloc(32);
    data[0] = bop | eop; // PARTITION NUMBER (4–7) is 0
    writeUInt64(data, location, 8); // LOGICAL OBJECT NUMBER
    writeUInt64(data, position.fileNumber, 16); // LOGICAL FILE IDENTIFIER
    return good(data); // LOGICAL SET IDENTIFIER (24–31): set marks unsupported, 0
  }
  if (cmd.serviceAction === ReadPositionForm.EXTENDED_FORM) {
    const data = Buffer.alloc(32);
    data[0] = bop | eop;
    data.writeUInt16BE(0x1c, 2); // ADDITIONAL LENGTH
    writeUInt64(data, location, 8); // FIRST LOGICAL OBJECT LOCATION
    writeUInt64(data, location, 16); // LAST LOGICAL OBJECT LOCATION
    return good(truncateToAllocationLength(data, cmd.allocationLength));
  }
  const data = Buffer.alloc(20);
  const perr = location > 0xffffffff ? 0x02 : 0; // position does not fit the short form
  data[0] = bop | eop | perr;
  if (!perr) {
    data.writeUInt32BE(location, 4); // FIRST LOGICAL OBJECT LOCATION
    data.writeUInt32BE(location, 8); // LAST LOGICAL OBJECT LOCATION
  }
  return good(data);
}

// ---- LOCATE(10) / LOCATE(16) (SSC-4 6.x) ------------------------------------------------------

interface LocateCommand {
  destination: 'logical-object' | 'logical-file';
  identifier: number;
}

/** One partition: CP with any partition but 0 is refused. BT selects a device-specific block
 *  address, which here is the logical object identifier too. */
function checkPartition(cdb: Buffer, partitionByte: number): void {
  if (cdb[1]! & 0x02 && cdb[partitionByte] !== 0) throw invalidFieldInCdb(partitionByte);
}

export function decodeLocate10(cdb: Buffer): LocateCommand {
  if (cdb[1]! & 0xf8) throw invalidFieldInCdb(1);
  checkPartition(cdb, 8);
  return { destination: 'logical-object', identifier: cdb.readUInt32BE(3) };
}

export function decodeLocate16(cdb: Buffer): LocateCommand {
  if (cdb[1]! & 0xc4) throw invalidFieldInCdb(1);
  const destType = (cdb[1]! >> 3) & 0x07;
  // DEST_TYPE 000b logical object identifier, 001b logical file identifier; 010b (set) obsolete.
  if (destType > 1) throw invalidFieldInCdb(1, 5);
  if (cdb[2]! & 0xfe) throw invalidFieldInCdb(2);
  checkPartition(cdb, 3);
  const identifier = cdb.readBigUInt64BE(4);
  if (identifier > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidFieldInCdb(4);
  return { destination: destType === 0 ? 'logical-object' : 'logical-file', identifier: Number(identifier) };
}

export async function sscLocate(ctx: Ctx, cmd: LocateCommand): Promise<ScsiResponse> {
  const medium = ctx.device.requireLoaded();
  const result = await flushing(cmd.destination === 'logical-object' ? medium.locate(cmd.identifier) : medium.locateFile(cmd.identifier));
  // Beyond EOD: positioned at EOD, BLANK CHECK (SSC-4 LOCATE).
  if (result.beyondEndOfData) throw new SenseError(Sense.END_OF_DATA_DETECTED);
  return good();
}

// ---- REPORT DENSITY SUPPORT (SSC-4 6.x) -------------------------------------------------------

interface ReportDensitySupportCommand {
  media: boolean;
  allocationLength: number;
}

export function decodeReportDensitySupport(cdb: Buffer): ReportDensitySupportCommand {
  if (cdb[1]! & 0x02) throw invalidFieldInCdb(1, 1); // MEDIUM TYPE descriptors are not offered
  if (cdb[1]! & 0xfc) throw invalidFieldInCdb(1);
  return { media: (cdb[1]! & 0x01) !== 0, allocationLength: cdb.readUInt16BE(7) };
}

export function sscReportDensitySupport(ctx: Ctx, cmd: ReportDensitySupportCommand): ScsiResponse {
  const drive = ctx.device;
  let densities = drive.personality.densities;
  if (cmd.media) {
    drive.requireLoaded();
    densities = densities.filter((d) => d.primaryDensityCode === drive.personality.mediumDensityCode);
  }
  const descriptors = densities.map((d) => {
    // Density support data block descriptor, 52 bytes, DESCRIPTOR LENGTH valid (DLV).
    const b = Buffer.alloc(52);
    b[0] = d.primaryDensityCode;
    b[1] = d.secondaryDensityCode;
    b[2] = (d.writable ? 0x80 : 0) | (d.isDefault ? 0x20 : 0) | 0x01;
    b.writeUInt16BE(b.length - 5, 3);
    b.writeUIntBE(d.bitsPerMm, 5, 3);
    b.writeUInt16BE(d.mediaWidthTenthsMm, 8);
    b.writeUInt16BE(d.tracks, 10);
    b.writeUInt32BE(d.capacityMegabytes, 12);
    asciiField(d.assigningOrganization, 8).copy(b, 16);
    asciiField(d.densityName, 8).copy(b, 24);
    asciiField(d.description, 20).copy(b, 32);
    return b;
  });
  const header = Buffer.alloc(4);
  header.writeUInt16BE(descriptors.length * 52 + 2, 0); // AVAILABLE DENSITY SUPPORT LENGTH
  return good(truncateToAllocationLength(Buffer.concat([header, ...descriptors]), cmd.allocationLength));
}

// ---- LOG SENSE / LOG SELECT (SPC-4 6.7, 6.8; SSC-4 8.2 log pages) ------------------------------

export const LogPage = {
  SUPPORTED_PAGES: 0x00,
  WRITE_ERROR_COUNTERS: 0x02,
  READ_ERROR_COUNTERS: 0x03,
  TAPE_ALERT: 0x2e,
  /** Vendor specific (IBM/HP LTO): remaining and maximum capacity per partition, MiB. */
  TAPE_CAPACITY: 0x31,
} as const;

interface LogParameter {
  code: number;
  control: number;
  value: Buffer;
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(Math.min(Math.max(0, Math.floor(n)), 0xffffffff));
  return b;
};
const u64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  writeUInt64(b, n, 0);
  return b;
};

/** Error counter pages (SPC-4 7.3.x, parameter codes 0000h–0006h): nothing is ever corrected;
 *  0005h TOTAL BYTES PROCESSED counts bytes since the cartridge was loaded. */
function errorCounterParameters(bytesProcessed: number): LogParameter[] {
  return [0, 1, 2, 3, 4, 5, 6].map((code) => ({ code, control: 0x02, value: code === 5 ? u64(bytesProcessed) : u32(0) }));
}

function logParameters(drive: TapeDrive, pageCode: number): LogParameter[] | null {
  switch (pageCode) {
    case LogPage.WRITE_ERROR_COUNTERS:
      return errorCounterParameters(drive.counters.bytesWritten);
    case LogPage.READ_ERROR_COUNTERS:
      return errorCounterParameters(drive.counters.bytesRead);
    case LogPage.TAPE_ALERT:
      // SSC-4 8.2.3 TapeAlert: 64 flags (0001h–0040h), none raised on a virtual drive.
      return Array.from({ length: 64 }, (_, i) => ({ code: i + 1, control: 0x03, value: Buffer.from([0]) }));
    case LogPage.TAPE_CAPACITY: {
      const medium = drive.loadedMedium();
      const mib = 1024 * 1024;
      const maximumMiB = medium ? medium.capacityBytes / mib : 0;
      const remainingMiB = medium ? Math.max(0, medium.capacityBytes - medium.usedBytes()) / mib : 0;
      return [
        { code: 1, control: 0x02, value: u32(remainingMiB) }, // partition 0 remaining
        { code: 2, control: 0x02, value: u32(0) }, // partition 1 remaining
        { code: 3, control: 0x02, value: u32(maximumMiB) }, // partition 0 maximum
        { code: 4, control: 0x02, value: u32(0) }, // partition 1 maximum
      ];
    }
    default:
      return null;
  }
}

interface LogSenseCommand {
  pageCode: number;
  subpageCode: number;
  parameterPointer: number;
  allocationLength: number;
}

export function decodeLogSense(cdb: Buffer): LogSenseCommand {
  if (cdb[1]! & 0x01) throw invalidFieldInCdb(1, 0); // SP: no saved parameters
  if (cdb[1]! & 0x02) throw invalidFieldInCdb(1, 1); // PPC: not supported
  return { pageCode: cdb[2]! & 0x3f, subpageCode: cdb[3]!, parameterPointer: cdb.readUInt16BE(5), allocationLength: cdb.readUInt16BE(7) };
}

export function sscLogSense(ctx: Ctx, cmd: LogSenseCommand): ScsiResponse {
  if (cmd.subpageCode !== 0) throw invalidFieldInCdb(3);
  let body: Buffer;
  if (cmd.pageCode === LogPage.SUPPORTED_PAGES) {
    body = Buffer.from(Object.values(LogPage));
  } else {
    const parameters = logParameters(ctx.device, cmd.pageCode);
    if (!parameters) throw invalidFieldInCdb(2, 5);
    const last = parameters.at(-1)!.code;
    if (cmd.parameterPointer > last) throw invalidFieldInCdb(5);
    body = Buffer.concat(
      parameters
        .filter((p) => p.code >= cmd.parameterPointer)
        .map((p) => {
          const head = Buffer.alloc(4);
          head.writeUInt16BE(p.code, 0);
          head[2] = p.control;
          head[3] = p.value.length;
          return Buffer.concat([head, p.value]);
        }),
    );
  }
  const header = Buffer.alloc(4);
  header[0] = cmd.pageCode;
  header.writeUInt16BE(body.length, 2);
  return good(truncateToAllocationLength(Buffer.concat([header, body]), cmd.allocationLength));
}

interface LogSelectCommand {
  parameterCodeReset: boolean;
}

export function decodeLogSelect(cdb: Buffer): LogSelectCommand {
  if (cdb[1]! & 0x01) throw invalidFieldInCdb(1, 0); // SP
  // Only the reset of all counters is offered; parameter lists are refused.
  if (cdb.readUInt16BE(7) !== 0) throw invalidFieldInCdb(7);
  return { parameterCodeReset: (cdb[1]! & 0x02) !== 0 };
}

export function sscLogSelect(ctx: Ctx, cmd: LogSelectCommand): ScsiResponse {
  if (cmd.parameterCodeReset) ctx.device.resetCounters();
  return good();
}

// ---- the op table ------------------------------------------------------------------------------

const none = (): null => null;

/** The tape drive's commands: SPC-4's, with INQUIRY, TEST UNIT READY, REQUEST SENSE and MODE
 *  SELECT replaced by their sequential-access versions, plus SSC-4's. */
export function sscOps(): OpEntry<TapeDrive>[] {
  type D = TapeDrive;
  const replaced = new Set<number>([Op.INQUIRY, Op.TEST_UNIT_READY, Op.REQUEST_SENSE, Op.MODE_SELECT_6, Op.MODE_SELECT_10]);
  // MODE SENSE keeps SPC-4's entry (decoder, usage data) with the SSC header and block descriptor.
  const spc = spcOps<D>()
    .filter((e) => !replaced.has(e.opcode))
    .map((e) => (e.opcode === Op.MODE_SENSE_6 || e.opcode === Op.MODE_SENSE_10 ? { ...e, execute: sscModeSense } : e));
  const locateBase = { dataDirection: 'none', access: 'read', needsMedium: true } as const;
  return [
    ...spc,
    defineOp<D, null>({
      name: 'TEST UNIT READY',
      opcode: Op.TEST_UNIT_READY,
      dataDirection: 'none',
      access: 'allowed',
      needsMedium: true,
      usage: [Op.TEST_UNIT_READY, 0, 0, 0, 0, CONTROL],
      decode: none,
      execute: sscTestUnitReady,
    }),
    defineOp<D, RequestSenseCommand>({
      name: 'REQUEST SENSE',
      opcode: Op.REQUEST_SENSE,
      dataDirection: 'in',
      access: 'allowed',
      allowedUnderSpc2Reservation: true,
      bypassesUnitAttention: true,
      usage: [Op.REQUEST_SENSE, 0x01, 0, 0, 0xff, CONTROL],
      decode: decodeRequestSense,
      execute: sscRequestSense,
    }),
    defineOp<D, ReturnType<typeof decodeInquiry>>({
      name: 'INQUIRY',
      opcode: Op.INQUIRY,
      dataDirection: 'in',
      access: 'allowed',
      allowedUnderSpc2Reservation: true,
      bypassesUnitAttention: true,
      usage: [Op.INQUIRY, 0x01, 0xff, 0xff, 0xff, CONTROL],
      decode: decodeInquiry,
      execute: sscInquiry,
    }),
    defineOp<D, ReturnType<typeof decodeModeSelect6>>({
      name: 'MODE SELECT(6)',
      opcode: Op.MODE_SELECT_6,
      dataDirection: 'out',
      access: 'write',
      usage: [Op.MODE_SELECT_6, 0x11, 0, 0, 0xff, CONTROL],
      decode: decodeModeSelect6,
      execute: sscModeSelect,
    }),
    defineOp<D, ReturnType<typeof decodeModeSelect10>>({
      name: 'MODE SELECT(10)',
      opcode: Op.MODE_SELECT_10,
      dataDirection: 'out',
      access: 'write',
      usage: [Op.MODE_SELECT_10, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, CONTROL],
      decode: decodeModeSelect10,
      execute: sscModeSelect,
    }),
    defineOp<D, null>({
      name: 'REWIND',
      opcode: Op.REWIND,
      dataDirection: 'none',
      access: 'read',
      needsMedium: true,
      usage: [Op.REWIND, 0x01, 0, 0, 0, CONTROL],
      decode: decodeRewind,
      execute: sscRewind,
      recommendedTimeoutSec: 600,
    }),
    defineOp<D, null>({
      name: 'READ BLOCK LIMITS',
      opcode: Op.READ_BLOCK_LIMITS,
      dataDirection: 'in',
      access: 'allowed',
      usage: [Op.READ_BLOCK_LIMITS, 0x01, 0, 0, 0, CONTROL],
      decode: decodeReadBlockLimits,
      execute: sscReadBlockLimits,
    }),
    defineOp<D, ReadWrite6Command>({
      name: 'READ(6)',
      opcode: Op.READ_6,
      dataDirection: 'in',
      access: 'read',
      needsMedium: true,
      usage: [Op.READ_6, 0x03, 0xff, 0xff, 0xff, CONTROL],
      decode: decodeRead6,
      execute: sscRead6,
    }),
    defineOp<D, ReadWrite6Command>({
      name: 'WRITE(6)',
      opcode: Op.WRITE_6,
      dataDirection: 'out',
      access: 'write',
      needsMedium: true,
      usage: [Op.WRITE_6, 0x01, 0xff, 0xff, 0xff, CONTROL],
      decode: decodeWrite6,
      execute: sscWrite6,
    }),
    defineOp<D, WriteFilemarksCommand>({
      name: 'WRITE FILEMARKS(6)',
      opcode: Op.WRITE_FILEMARKS_6,
      dataDirection: 'none',
      access: 'write',
      needsMedium: true,
      usage: [Op.WRITE_FILEMARKS_6, 0x01, 0xff, 0xff, 0xff, CONTROL],
      decode: decodeWriteFilemarks6,
      execute: sscWriteFilemarks6,
    }),
    defineOp<D, SpaceCommand>({
      name: 'SPACE(6)',
      opcode: Op.SPACE_6,
      ...locateBase,
      usage: [Op.SPACE_6, 0x0f, 0xff, 0xff, 0xff, CONTROL],
      decode: decodeSpace6,
      execute: sscSpace,
    }),
    defineOp<D, SpaceCommand>({
      name: 'SPACE(16)',
      opcode: Op.SPACE_16,
      ...locateBase,
      usage: [Op.SPACE_16, 0x0f, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, CONTROL],
      decode: decodeSpace16,
      execute: sscSpace,
    }),
    defineOp<D, null>({
      name: 'ERASE(6)',
      opcode: Op.ERASE_6,
      dataDirection: 'none',
      access: 'write',
      needsMedium: true,
      usage: [Op.ERASE_6, 0x03, 0, 0, 0, CONTROL],
      decode: decodeErase6,
      execute: sscErase6,
    }),
    defineOp<D, LoadUnloadCommand>({
      name: 'LOAD UNLOAD',
      opcode: Op.LOAD_UNLOAD,
      dataDirection: 'none',
      access: 'write',
      needsMedium: true,
      usage: [Op.LOAD_UNLOAD, 0x01, 0, 0, 0x0f, CONTROL],
      decode: decodeLoadUnload,
      execute: sscLoadUnload,
      recommendedTimeoutSec: 600,
    }),
    defineOp<D, PreventAllowCommand>({
      name: 'PREVENT ALLOW MEDIUM REMOVAL',
      opcode: Op.PREVENT_ALLOW_MEDIUM_REMOVAL,
      dataDirection: 'none',
      access: 'write',
      usage: [Op.PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 0x03, CONTROL],
      decode: decodePreventAllow,
      execute: sscPreventAllow,
    }),
    defineOp<D, LocateCommand>({
      name: 'LOCATE(10)',
      opcode: Op.LOCATE_10,
      ...locateBase,
      usage: [Op.LOCATE_10, 0x07, 0, 0xff, 0xff, 0xff, 0xff, 0, 0xff, CONTROL],
      decode: decodeLocate10,
      execute: sscLocate,
    }),
    defineOp<D, LocateCommand>({
      name: 'LOCATE(16)',
      opcode: Op.LOCATE_16,
      ...locateBase,
      usage: [Op.LOCATE_16, 0x3b, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, CONTROL],
      decode: decodeLocate16,
      execute: sscLocate,
    }),
    ...Object.values(ReadPositionForm).map((serviceAction) =>
      defineOp<D, ReadPositionCommand>({
        name: `READ POSITION / ${serviceAction === ReadPositionForm.LONG_FORM ? 'LONG FORM' : serviceAction === ReadPositionForm.EXTENDED_FORM ? 'EXTENDED FORM' : 'SHORT FORM'}`,
        opcode: Op.READ_POSITION,
        serviceAction,
        dataDirection: 'in',
        access: 'read',
        needsMedium: true,
        usage: [Op.READ_POSITION, serviceAction, 0, 0, 0, 0, 0, 0xff, 0xff, CONTROL],
        decode: decodeReadPosition,
        execute: sscReadPosition,
      }),
    ),
    defineOp<D, ReportDensitySupportCommand>({
      name: 'REPORT DENSITY SUPPORT',
      opcode: Op.REPORT_DENSITY_SUPPORT,
      dataDirection: 'in',
      access: 'allowed',
      usage: [Op.REPORT_DENSITY_SUPPORT, 0x01, 0, 0, 0, 0, 0, 0xff, 0xff, CONTROL],
      decode: decodeReportDensitySupport,
      execute: sscReportDensitySupport,
    }),
    defineOp<D, LogSenseCommand>({
      name: 'LOG SENSE',
      opcode: Op.LOG_SENSE,
      dataDirection: 'in',
      access: 'allowed',
      usage: [Op.LOG_SENSE, 0x03, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0xff, CONTROL],
      decode: decodeLogSense,
      execute: sscLogSense,
    }),
    defineOp<D, LogSelectCommand>({
      name: 'LOG SELECT',
      opcode: Op.LOG_SELECT,
      dataDirection: 'out',
      access: 'write',
      usage: [Op.LOG_SELECT, 0x03, 0xc0, 0, 0, 0, 0, 0xff, 0xff, CONTROL],
      decode: decodeLogSelect,
      execute: sscLogSelect,
    }),
  ];
}
