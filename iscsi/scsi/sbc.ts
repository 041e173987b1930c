// SBC-3 block commands for a direct-access logical unit backed by a BlockBackend. `sbcOps()`
// returns the op table entries; disk.ts combines them with spcOps(). Each command is decoded and
// validated first (INVALID FIELD IN CDB with a field pointer), then range-checked against the
// current capacity (LOGICAL BLOCK ADDRESS OUT OF RANGE), then executed.

import { ScsiStatus, type BlockBackend, type ScsiResponse } from '../device.js';
import { invalidFieldInCdb, invalidFieldInParameterList, readUInt64, truncateToAllocationLength, writeUInt64 } from './cdb.js';
import { Op, ServiceActionIn16 } from './constants.js';
import { defineOp, good, type CommandContext, type OpEntry } from './dispatcher.js';
import { Sense, SenseError } from './sense.js';
import type { BlockLimits } from './vpd.js';

/** Serialises writes to overlapping LBA ranges so COMPARE AND WRITE and ORWRITE are atomic with
 *  respect to every other write (SBC-3 5.3). Non-overlapping writes run concurrently. */
export class LbaRangeLock {
  readonly #held = new Set<{ lba: number; end: number; done: Promise<void> }>();

  async acquire(lba: number, blockCount: number): Promise<() => void> {
    const end = lba + blockCount;
    for (let blocker = this.#overlapping(lba, end); blocker; blocker = this.#overlapping(lba, end)) {
      await blocker;
    }
    let release!: () => void;
    const entry = { lba, end, done: new Promise<void>((resolve) => (release = resolve)) };
    this.#held.add(entry);
    return () => {
      this.#held.delete(entry);
      release();
    };
  }

  #overlapping(lba: number, end: number): Promise<void> | undefined {
    for (const h of this.#held) if (h.lba < end && lba < h.end) return h.done;
    return undefined;
  }
}

/** Device-type state of a disk logical unit (the `D` of its op table). */
export interface DiskDevice {
  readonly backend: BlockBackend;
  readonly limits: BlockLimits;
  readonly writeLock: LbaRangeLock;
  /** Capacity last reported, to notice growth (CAPACITY DATA HAS CHANGED). */
  capacityBlocks: number;
  /** WCE last reported, to notice a change made outside MODE SELECT (MODE PARAMETERS CHANGED). */
  writeCacheEnabled: boolean;
}

type Ctx = CommandContext<DiskDevice>;

const CONTROL = 0x07;
/** Blocks per backend call when a command covers a long range with generated data. */
const CHUNK_BYTES = 1 << 20;

// ---- shared decoding and checks ---------------------------------------------------------------

/** Where the LBA and length fields sit in the 10/12/16-byte CDB layouts (SBC-3 4.2.2). */
interface CdbLayout {
  lbaOffset: number;
  lbaBytes: 4 | 8;
  lengthOffset: number;
  lengthBytes: 1 | 2 | 4;
}

const LAYOUT_10: CdbLayout = { lbaOffset: 2, lbaBytes: 4, lengthOffset: 7, lengthBytes: 2 };
const LAYOUT_12: CdbLayout = { lbaOffset: 2, lbaBytes: 4, lengthOffset: 6, lengthBytes: 4 };
const LAYOUT_16: CdbLayout = { lbaOffset: 2, lbaBytes: 8, lengthOffset: 10, lengthBytes: 4 };

interface BlockRange {
  lba: number;
  blockCount: number;
  /** CDB byte of the length field, for field pointers. */
  lengthField: number;
}

function decodeRange(cdb: Buffer, l: CdbLayout): BlockRange {
  const lba = l.lbaBytes === 8 ? readUInt64(cdb, l.lbaOffset) : cdb.readUInt32BE(l.lbaOffset);
  const blockCount =
    l.lengthBytes === 4 ? cdb.readUInt32BE(l.lengthOffset) : l.lengthBytes === 2 ? cdb.readUInt16BE(l.lengthOffset) : cdb[l.lengthOffset]!;
  return { lba, blockCount, lengthField: l.lengthOffset };
}

/** RDPROTECT / WRPROTECT / VRPROTECT / ORPROTECT must be 0: no protection information (SBC-3 4.22). */
function checkNoProtection(cdb: Buffer): void {
  if (cdb[1]! & 0xe0) throw invalidFieldInCdb(1, 7);
}

/** SBC-3 4.5: every block of [lba, lba + blockCount) must exist; with 0 blocks the LBA itself may
 *  be at most the capacity. */
function checkRange(ctx: Ctx, lba: number, blockCount: number): number {
  const capacity = ctx.device.backend.blockCount();
  if (lba > capacity || lba + blockCount > capacity) throw new SenseError(Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
  return capacity;
}

function checkTransferLength(ctx: Ctx, r: BlockRange): void {
  if (r.blockCount > ctx.device.limits.maximumTransferLengthBlocks) throw invalidFieldInCdb(r.lengthField);
}

/** The whole blocks of Data-Out actually received for a command that needs `neededBytes`, and
 *  the residual to report (RFC 7143 11.4.5.1: process what arrived, report the difference). */
function dataOutBlocks(ctx: Ctx, neededBytes: number): { data: Buffer; residual: Pick<ScsiResponse, 'dataOutResidual' | 'dataOutOverflow'> } {
  const received = ctx.req.dataOut ?? Buffer.alloc(0);
  const blockSize = ctx.device.backend.blockSize;
  const usable = Math.min(neededBytes, received.length - (received.length % blockSize));
  const residual: Pick<ScsiResponse, 'dataOutResidual' | 'dataOutOverflow'> = {};
  if (received.length > neededBytes) residual.dataOutResidual = received.length - neededBytes;
  if (received.length < neededBytes) residual.dataOutOverflow = neededBytes - received.length;
  return { data: received.subarray(0, usable), residual };
}

async function withWriteLock<T>(ctx: Ctx, lba: number, blockCount: number, fn: () => Promise<T>): Promise<T> {
  const release = await ctx.device.writeLock.acquire(lba, blockCount);
  try {
    return await fn();
  } finally {
    release();
  }
}

/** Index of the first differing byte, or -1. */
function firstMismatch(a: Buffer, b: Buffer): number {
  if (a.equals(b)) return -1;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return a.length;
}

// ---- READ / WRITE (SBC-3 5.8–5.11, 5.32–5.35) --------------------------------------------------

interface ReadWriteCommand extends BlockRange {
  fua: boolean;
  dpo: boolean;
}

/** READ(6) / WRITE(6): 21-bit LBA; TRANSFER LENGTH 0 means 256 blocks (SBC-3 5.8). */
export function decodeReadWrite6(cdb: Buffer): ReadWriteCommand {
  const lba = ((cdb[1]! & 0x1f) << 16) | cdb.readUInt16BE(2);
  return { lba, blockCount: cdb[4]! === 0 ? 256 : cdb[4]!, lengthField: 4, fua: false, dpo: false };
}

function decodeReadWrite(layout: CdbLayout): (cdb: Buffer) => ReadWriteCommand {
  return (cdb) => {
    checkNoProtection(cdb);
    return { ...decodeRange(cdb, layout), dpo: (cdb[1]! & 0x10) !== 0, fua: (cdb[1]! & 0x08) !== 0 };
  };
}

/**
 * READ(6/10/12/16). DPO is a hint with nothing to act on. FUA (SBC-3 5.11): the blocks are read
 * from the medium, and a more recent version in a volatile cache must first reach it — reads here
 * always see the latest data, so with the write cache enabled a FUA read flushes it first (the
 * whole cache: the backend has no per-range flush, and more than asked is allowed).
 */
export async function sbcRead(ctx: Ctx, cmd: ReadWriteCommand): Promise<ScsiResponse> {
  const { backend } = ctx.device;
  checkRange(ctx, cmd.lba, cmd.blockCount);
  checkTransferLength(ctx, cmd);
  if (cmd.blockCount === 0) return good();
  if (cmd.fua && backend.writeCacheEnabled()) await backend.flush();
  return good(await backend.read(cmd.lba, cmd.blockCount));
}

/** WRITE(6/10/12/16): FUA (SBC-3 5.35) goes to the backend, which then makes the data stable
 *  before resolving; WRITE(6) has no FUA bit. */
export async function sbcWrite(ctx: Ctx, cmd: ReadWriteCommand): Promise<ScsiResponse> {
  const { backend } = ctx.device;
  checkRange(ctx, cmd.lba, cmd.blockCount);
  checkTransferLength(ctx, cmd);
  const { data, residual } = dataOutBlocks(ctx, cmd.blockCount * backend.blockSize);
  if (data.length > 0) {
    const blocks = data.length / backend.blockSize;
    await withWriteLock(ctx, cmd.lba, blocks, () => backend.write(cmd.lba, data, { fua: cmd.fua }));
  }
  return { status: ScsiStatus.GOOD, ...residual };
}

/** WRITE AND VERIFY(10/12/16) (SBC-3 5.36–5.38): the data is verified on the medium after it is
 *  written, so it is written with FUA whatever byte 1 says (byte 1 bit 3 is reserved here); the
 *  verify itself cannot fail once the backend wrote what it was given. */
function decodeWriteAndVerify(layout: CdbLayout): (cdb: Buffer) => ReadWriteCommand {
  const decode = decodeReadWrite(layout);
  return (cdb) => ({ ...decode(cdb), fua: true });
}

// ---- VERIFY (SBC-3 5.26–5.28) -----------------------------------------------------------------

interface VerifyCommand extends BlockRange {
  /** BYTCHK: 0 medium check only, 1 compare with Data-Out, 3 compare every block with one block. */
  byteCheck: number;
}

function decodeVerify(layout: CdbLayout): (cdb: Buffer) => VerifyCommand {
  return (cdb) => {
    checkNoProtection(cdb);
    const byteCheck = (cdb[1]! >> 1) & 0x03;
    if (byteCheck === 2) throw invalidFieldInCdb(1, 2);
    return { ...decodeRange(cdb, layout), byteCheck };
  };
}

export async function sbcVerify(ctx: Ctx, cmd: VerifyCommand): Promise<ScsiResponse> {
  checkRange(ctx, cmd.lba, cmd.blockCount);
  checkTransferLength(ctx, cmd);
  const blockSize = ctx.device.backend.blockSize;
  if (cmd.byteCheck === 0 || cmd.blockCount === 0) return good();
  const neededBytes = cmd.byteCheck === 3 ? blockSize : cmd.blockCount * blockSize;
  const { data, residual } = dataOutBlocks(ctx, neededBytes);
  if (data.length < neededBytes) return { status: ScsiStatus.GOOD, ...residual };
  const medium = await ctx.device.backend.read(cmd.lba, cmd.blockCount);
  for (let block = 0; block < cmd.blockCount; block++) {
    const expected = cmd.byteCheck === 3 ? data : data.subarray(block * blockSize, (block + 1) * blockSize);
    const at = firstMismatch(medium.subarray(block * blockSize, (block + 1) * blockSize), expected);
    if (at >= 0) {
      // SBC-3 5.26: INFORMATION = offset of the first miscompare in the Data-Out buffer.
      throw new SenseError(Sense.MISCOMPARE_DURING_VERIFY_OPERATION, {
        information: (cmd.byteCheck === 3 ? 0 : block * blockSize) + at,
      });
    }
  }
  return { status: ScsiStatus.GOOD, ...residual };
}

// ---- WRITE SAME (SBC-3 5.42–5.43) -------------------------------------------------------------

interface WriteSameCommand extends BlockRange {
  unmap: boolean;
  ndob: boolean;
}

function decodeWriteSame(layout: CdbLayout, sixteen: boolean): (cdb: Buffer) => WriteSameCommand {
  return (cdb) => {
    checkNoProtection(cdb);
    if (cdb[1]! & 0x10) throw invalidFieldInCdb(1, 4); // ANCHOR: ANC_SUP = 0
    if (!sixteen && cdb[1]! & 0x06) throw invalidFieldInCdb(1, 2); // PBDATA / LBDATA (obsolete)
    const ndob = sixteen && (cdb[1]! & 0x01) !== 0;
    return { ...decodeRange(cdb, layout), unmap: (cdb[1]! & 0x08) !== 0, ndob };
  };
}

export async function sbcWriteSame(ctx: Ctx, cmd: WriteSameCommand): Promise<ScsiResponse> {
  const { backend, limits } = ctx.device;
  const capacity = checkRange(ctx, cmd.lba, cmd.blockCount);
  // SBC-3 5.42: NUMBER OF LOGICAL BLOCKS 0 = through the last LBA (WSNZ = 0 in VPD B0h).
  const blockCount = cmd.blockCount === 0 ? capacity - cmd.lba : cmd.blockCount;
  if (blockCount > limits.maximumWriteSameLengthBlocks) throw invalidFieldInCdb(cmd.lengthField);
  let block: Buffer;
  if (cmd.ndob) {
    block = Buffer.alloc(backend.blockSize);
  } else {
    // The Data-Out is exactly one logical block; any other size is refused (libiscsi
    // WriteSame10.InvalidDataOutSize) since the pattern would be ambiguous.
    const received = ctx.req.dataOut ?? Buffer.alloc(0);
    if (received.length !== backend.blockSize) throw invalidFieldInCdb(cmd.lengthField);
    block = received;
  }
  if (blockCount === 0) return good();
  await withWriteLock(ctx, cmd.lba, blockCount, async () => {
    // SBC-3 5.42 / 4.7.3.4: UNMAP set asks for the blocks to be deallocated; like LIO (and as
    // libiscsi WriteSame10.UnmapUntilEnd expects) we deallocate whatever the Data-Out holds, and
    // the blocks then read as zeros (LBPRZ = 1). WRITE SAME has no FUA bit (SBC-3 5.42, 5.43):
    // durability follows WCE alone, in the backend.
    if (cmd.unmap) {
      await backend.unmap(cmd.lba, blockCount);
      return;
    }
    const chunkBlocks = Math.max(1, Math.min(blockCount, Math.floor(CHUNK_BYTES / backend.blockSize)));
    const chunk = Buffer.alloc(chunkBlocks * backend.blockSize);
    for (let i = 0; i < chunkBlocks; i++) block.copy(chunk, i * backend.blockSize);
    for (let done = 0; done < blockCount; done += chunkBlocks) {
      const n = Math.min(chunkBlocks, blockCount - done);
      await backend.write(cmd.lba + done, chunk.subarray(0, n * backend.blockSize));
    }
  });
  return good();
}

// ---- UNMAP (SBC-3 5.28) -----------------------------------------------------------------------

interface UnmapCommand {
  parameterListLength: number;
}

export function decodeUnmap(cdb: Buffer): UnmapCommand {
  if (cdb[1]! & 0x01) throw invalidFieldInCdb(1, 0); // ANCHOR
  return { parameterListLength: cdb.readUInt16BE(7) };
}

export async function sbcUnmap(ctx: Ctx, cmd: UnmapCommand): Promise<ScsiResponse> {
  const { backend, limits } = ctx.device;
  if (cmd.parameterListLength === 0) return good();
  if (cmd.parameterListLength < 8) throw new SenseError(Sense.PARAMETER_LIST_LENGTH_ERROR);
  const received = ctx.req.dataOut ?? Buffer.alloc(0);
  if (received.length < 8) throw new SenseError(Sense.PARAMETER_LIST_LENGTH_ERROR);
  const list = received.subarray(0, Math.min(cmd.parameterListLength, received.length));
  const descriptorBytes = Math.min(list.readUInt16BE(2), list.length - 8);
  const count = Math.floor(descriptorBytes / 16); // a partial trailing descriptor is ignored
  if (count > limits.maximumUnmapBlockDescriptorCount) throw invalidFieldInParameterList(2);
  const capacity = backend.blockCount();
  const ranges: Array<{ lba: number; blockCount: number }> = [];
  for (let i = 0; i < count; i++) {
    const off = 8 + 16 * i;
    const lba = readUInt64(list, off);
    const blockCount = list.readUInt32BE(off + 8);
    if (blockCount > limits.maximumUnmapLbaCount) throw invalidFieldInParameterList(off + 8);
    if (lba > capacity || lba + blockCount > capacity) throw new SenseError(Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
    if (blockCount > 0) ranges.push({ lba, blockCount });
  }
  if (ranges.reduce((n, r) => n + r.blockCount, 0) > limits.maximumUnmapLbaCount) throw invalidFieldInParameterList(8 + 8);
  for (const r of ranges) {
    await withWriteLock(ctx, r.lba, r.blockCount, () => backend.unmap(r.lba, r.blockCount));
  }
  return good();
}

// ---- READ CAPACITY (SBC-3 5.15, 5.16) ---------------------------------------------------------

/** SBC-3 5.15: with PMI 0 the LOGICAL BLOCK ADDRESS must be 0; PMI 1 (obsolete in SBC-3) is
 *  answered with the last LBA too, as there is no delay point to report. */
export function decodeReadCapacity10(cdb: Buffer): null {
  const pmi = (cdb[8]! & 0x01) !== 0;
  if (!pmi && cdb.readUInt32BE(2) !== 0) throw invalidFieldInCdb(2);
  return null;
}

export function sbcReadCapacity10(ctx: Ctx): ScsiResponse {
  const { backend } = ctx.device;
  const lastLba = backend.blockCount() - 1;
  const data = Buffer.alloc(8);
  data.writeUInt32BE(lastLba > 0xfffffffe ? 0xffffffff : lastLba, 0);
  data.writeUInt32BE(backend.blockSize, 4);
  return good(data);
}

interface AllocationCommand {
  allocationLength: number;
}

export function sbcReadCapacity16(ctx: Ctx, cmd: AllocationCommand): ScsiResponse {
  const { backend } = ctx.device;
  const data = Buffer.alloc(32);
  writeUInt64(data, backend.blockCount() - 1, 0);
  data.writeUInt32BE(backend.blockSize, 8);
  data[13] = 0; // P_I_EXPONENT 0, LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT 0
  data[14] = 0x80 | 0x40; // LBPME, LBPRZ; LOWEST ALIGNED LBA 0
  return good(truncateToAllocationLength(data, cmd.allocationLength));
}

// ---- GET LBA STATUS (SBC-3 5.7) ---------------------------------------------------------------

interface GetLbaStatusCommand {
  lba: number;
  allocationLength: number;
}

export function decodeGetLbaStatus(cdb: Buffer): GetLbaStatusCommand {
  return { lba: readUInt64(cdb, 2), allocationLength: cdb.readUInt32BE(10) };
}

export async function sbcGetLbaStatus(ctx: Ctx, cmd: GetLbaStatusCommand): Promise<ScsiResponse> {
  const { backend, limits } = ctx.device;
  const capacity = backend.blockCount();
  if (cmd.lba >= capacity) throw new SenseError(Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
  if (cmd.allocationLength === 0) return good();
  const maxDescriptors = Math.max(1, Math.floor((cmd.allocationLength - 8) / 16));
  const span = Math.min(capacity - cmd.lba, limits.maximumUnmapLbaCount);
  const runs = (await backend.mapStatus(cmd.lba, span)).slice(0, maxDescriptors);
  const data = Buffer.alloc(8 + 16 * runs.length);
  data.writeUInt32BE(data.length - 4, 0); // PARAMETER DATA LENGTH
  runs.forEach((r, i) => {
    const off = 8 + 16 * i;
    writeUInt64(data, r.lba, off);
    data.writeUInt32BE(r.blockCount, off + 8);
    data[off + 12] = r.mapped ? 0x00 : 0x01; // PROVISIONING STATUS: mapped / deallocated
  });
  return good(truncateToAllocationLength(data, cmd.allocationLength));
}

// ---- SYNCHRONIZE CACHE (SBC-3 5.22, 5.23) / PRE-FETCH (SBC-3 5.13, 5.14) ----------------------

function decodeRangeOnly(layout: CdbLayout): (cdb: Buffer) => BlockRange {
  return (cdb) => decodeRange(cdb, layout);
}

/**
 * SBC-3 5.22, 5.23: everything acknowledged is on stable storage before GOOD. The whole cache is
 * flushed, not just the range (allowed: the range only says what must at least be synchronized).
 * IMMED = 1 allows GOOD as soon as the CDB is validated; it is supported (so not refused with
 * INVALID FIELD IN CDB) by the stronger behaviour of flushing first all the same: an initiator
 * that set IMMED may assume nothing about when the flush ends, and a flush that fails is then
 * still reported on this command rather than lost (no deferred errors here).
 */
export async function sbcSynchronizeCache(ctx: Ctx, cmd: BlockRange): Promise<ScsiResponse> {
  checkRange(ctx, cmd.lba, cmd.blockCount);
  await ctx.device.backend.flush();
  return good();
}

/** Nothing to fetch into (no cache); CONDITION MET when the range would fit in one transfer. */
export function sbcPreFetch(ctx: Ctx, cmd: BlockRange): ScsiResponse {
  const capacity = checkRange(ctx, cmd.lba, cmd.blockCount);
  const blockCount = cmd.blockCount === 0 ? capacity - cmd.lba : cmd.blockCount;
  return { status: blockCount <= ctx.device.limits.maximumTransferLengthBlocks ? ScsiStatus.CONDITION_MET : ScsiStatus.GOOD };
}

// ---- COMPARE AND WRITE (SBC-3 5.2) / ORWRITE (SBC-3 5.12) -------------------------------------

interface CompareAndWriteCommand extends BlockRange {
  fua: boolean;
}

export function decodeCompareAndWrite(cdb: Buffer): CompareAndWriteCommand {
  checkNoProtection(cdb);
  return { lba: readUInt64(cdb, 2), blockCount: cdb[13]!, lengthField: 13, fua: (cdb[1]! & 0x08) !== 0 };
}

export async function sbcCompareAndWrite(ctx: Ctx, cmd: CompareAndWriteCommand): Promise<ScsiResponse> {
  const { backend, limits } = ctx.device;
  if (cmd.blockCount > limits.maximumCompareAndWriteLengthBlocks) throw invalidFieldInCdb(13);
  checkRange(ctx, cmd.lba, cmd.blockCount);
  const halfBytes = cmd.blockCount * backend.blockSize;
  const received = ctx.req.dataOut ?? Buffer.alloc(0);
  // The verify and write instances cannot be split or padded: any other Data-Out size is an
  // error, not a residual (libiscsi CompareAndWrite.InvalidDataOutSize) — also for 0 blocks.
  if (received.length !== 2 * halfBytes) throw invalidFieldInCdb(13);
  if (cmd.blockCount === 0) return good();
  const verify = received.subarray(0, halfBytes);
  const write = received.subarray(halfBytes, 2 * halfBytes);
  await withWriteLock(ctx, cmd.lba, cmd.blockCount, async () => {
    const medium = await backend.read(cmd.lba, cmd.blockCount);
    const at = firstMismatch(medium, verify);
    if (at >= 0) throw new SenseError(Sense.MISCOMPARE_DURING_VERIFY_OPERATION, { information: at });
    await backend.write(cmd.lba, write, { fua: cmd.fua }); // SBC-3 5.2 FUA
  });
  return good();
}

export async function sbcOrWrite(ctx: Ctx, cmd: ReadWriteCommand): Promise<ScsiResponse> {
  const { backend } = ctx.device;
  checkRange(ctx, cmd.lba, cmd.blockCount);
  checkTransferLength(ctx, cmd);
  const { data, residual } = dataOutBlocks(ctx, cmd.blockCount * backend.blockSize);
  if (data.length > 0) {
    const blocks = data.length / backend.blockSize;
    await withWriteLock(ctx, cmd.lba, blocks, async () => {
      const merged = await backend.read(cmd.lba, blocks);
      for (let i = 0; i < merged.length; i++) merged[i]! |= data[i]!;
      await backend.write(cmd.lba, merged, { fua: cmd.fua }); // SBC-3 5.12 FUA
    });
  }
  return { status: ScsiStatus.GOOD, ...residual };
}

// ---- START STOP UNIT (SBC-3 5.20) / PREVENT ALLOW MEDIUM REMOVAL (SBC-3 5.5) -------------------

/** A fixed, always-spinning medium: power conditions and start/stop are accepted and ignored;
 *  LOEJ on a non-removable medium is refused. */
export function decodeStartStopUnit(cdb: Buffer): null {
  if (cdb[4]! & 0x02) throw invalidFieldInCdb(4, 1);
  return null;
}

export function decodePreventAllow(cdb: Buffer): null {
  if (cdb[4]! & 0x02) throw invalidFieldInCdb(4, 1); // PREVENT 1xb: obsolete
  return null;
}

// ---- the op table entries ---------------------------------------------------------------------

const rw10Usage = (op: number): number[] => [op, 0xfe, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, CONTROL];
const rw12Usage = (op: number): number[] => [op, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, CONTROL];
const rw16Usage = (op: number): number[] => [op, 0xfe, ...new Array<number>(12).fill(0xff), 0x1f, CONTROL];

export function sbcOps(): OpEntry<DiskDevice>[] {
  type D = DiskDevice;
  const read = (name: string, opcode: number, decode: (cdb: Buffer) => ReadWriteCommand, usage: number[]) =>
    defineOp<D, ReadWriteCommand>({ name, opcode, dataDirection: 'in', access: 'read', usage, decode, execute: sbcRead });
  const write = (name: string, opcode: number, decode: (cdb: Buffer) => ReadWriteCommand, usage: number[]) =>
    defineOp<D, ReadWriteCommand>({ name, opcode, dataDirection: 'out', access: 'write', usage, decode, execute: sbcWrite });
  const verify = (name: string, opcode: number, layout: CdbLayout, usage: number[]) =>
    defineOp<D, VerifyCommand>({ name, opcode, dataDirection: 'out', access: 'read', usage, decode: decodeVerify(layout), execute: sbcVerify });
  return [
    read('READ(6)', Op.READ_6, decodeReadWrite6, [Op.READ_6, 0x1f, 0xff, 0xff, 0xff, CONTROL]),
    read('READ(10)', Op.READ_10, decodeReadWrite(LAYOUT_10), rw10Usage(Op.READ_10)),
    read('READ(12)', Op.READ_12, decodeReadWrite(LAYOUT_12), rw12Usage(Op.READ_12)),
    read('READ(16)', Op.READ_16, decodeReadWrite(LAYOUT_16), rw16Usage(Op.READ_16)),
    write('WRITE(6)', Op.WRITE_6, decodeReadWrite6, [Op.WRITE_6, 0x1f, 0xff, 0xff, 0xff, CONTROL]),
    write('WRITE(10)', Op.WRITE_10, decodeReadWrite(LAYOUT_10), rw10Usage(Op.WRITE_10)),
    write('WRITE(12)', Op.WRITE_12, decodeReadWrite(LAYOUT_12), rw12Usage(Op.WRITE_12)),
    write('WRITE(16)', Op.WRITE_16, decodeReadWrite(LAYOUT_16), rw16Usage(Op.WRITE_16)),
    write('WRITE AND VERIFY(10)', Op.WRITE_AND_VERIFY_10, decodeWriteAndVerify(LAYOUT_10), rw10Usage(Op.WRITE_AND_VERIFY_10)),
    write('WRITE AND VERIFY(12)', Op.WRITE_AND_VERIFY_12, decodeWriteAndVerify(LAYOUT_12), rw12Usage(Op.WRITE_AND_VERIFY_12)),
    write('WRITE AND VERIFY(16)', Op.WRITE_AND_VERIFY_16, decodeWriteAndVerify(LAYOUT_16), rw16Usage(Op.WRITE_AND_VERIFY_16)),
    verify('VERIFY(10)', Op.VERIFY_10, LAYOUT_10, rw10Usage(Op.VERIFY_10)),
    verify('VERIFY(12)', Op.VERIFY_12, LAYOUT_12, rw12Usage(Op.VERIFY_12)),
    verify('VERIFY(16)', Op.VERIFY_16, LAYOUT_16, rw16Usage(Op.VERIFY_16)),
    defineOp<D, ReadWriteCommand>({
      name: 'ORWRITE(16)',
      opcode: Op.ORWRITE_16,
      dataDirection: 'out',
      access: 'write',
      usage: rw16Usage(Op.ORWRITE_16),
      decode: decodeReadWrite(LAYOUT_16),
      execute: sbcOrWrite,
    }),
    defineOp<D, CompareAndWriteCommand>({
      name: 'COMPARE AND WRITE',
      opcode: Op.COMPARE_AND_WRITE,
      dataDirection: 'out',
      access: 'write',
      usage: [Op.COMPARE_AND_WRITE, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0xff, 0x1f, CONTROL],
      decode: decodeCompareAndWrite,
      execute: sbcCompareAndWrite,
    }),
    defineOp<D, WriteSameCommand>({
      name: 'WRITE SAME(10)',
      opcode: Op.WRITE_SAME_10,
      dataDirection: 'out',
      access: 'write',
      usage: [Op.WRITE_SAME_10, 0xe8, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, CONTROL],
      decode: decodeWriteSame(LAYOUT_10, false),
      execute: sbcWriteSame,
    }),
    defineOp<D, WriteSameCommand>({
      name: 'WRITE SAME(16)',
      opcode: Op.WRITE_SAME_16,
      dataDirection: 'out',
      access: 'write',
      usage: [Op.WRITE_SAME_16, 0xe9, ...new Array<number>(12).fill(0xff), 0x1f, CONTROL],
      decode: decodeWriteSame(LAYOUT_16, true),
      execute: sbcWriteSame,
    }),
    defineOp<D, UnmapCommand>({
      name: 'UNMAP',
      opcode: Op.UNMAP,
      dataDirection: 'out',
      access: 'write',
      usage: [Op.UNMAP, 0x01, 0, 0, 0, 0, 0x1f, 0xff, 0xff, CONTROL],
      decode: decodeUnmap,
      execute: sbcUnmap,
    }),
    defineOp<D, null>({
      name: 'READ CAPACITY(10)',
      opcode: Op.READ_CAPACITY_10,
      dataDirection: 'in',
      access: 'allowed',
      usage: [Op.READ_CAPACITY_10, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x01, CONTROL],
      decode: decodeReadCapacity10,
      execute: sbcReadCapacity10,
    }),
    defineOp<D, AllocationCommand>({
      name: 'READ CAPACITY(16)',
      opcode: Op.SERVICE_ACTION_IN_16,
      serviceAction: ServiceActionIn16.READ_CAPACITY_16,
      dataDirection: 'in',
      access: 'allowed',
      usage: [Op.SERVICE_ACTION_IN_16, ServiceActionIn16.READ_CAPACITY_16, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, CONTROL],
      decode: (cdb) => ({ allocationLength: cdb.readUInt32BE(10) }),
      execute: sbcReadCapacity16,
    }),
    defineOp<D, GetLbaStatusCommand>({
      name: 'GET LBA STATUS',
      opcode: Op.SERVICE_ACTION_IN_16,
      serviceAction: ServiceActionIn16.GET_LBA_STATUS,
      dataDirection: 'in',
      access: 'read',
      usage: [Op.SERVICE_ACTION_IN_16, ServiceActionIn16.GET_LBA_STATUS, ...new Array<number>(12).fill(0xff), 0, CONTROL],
      decode: decodeGetLbaStatus,
      execute: sbcGetLbaStatus,
    }),
    defineOp<D, BlockRange>({
      name: 'SYNCHRONIZE CACHE(10)',
      opcode: Op.SYNCHRONIZE_CACHE_10,
      dataDirection: 'none',
      access: 'write',
      usage: [Op.SYNCHRONIZE_CACHE_10, 0x02, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, CONTROL],
      decode: decodeRangeOnly(LAYOUT_10),
      execute: sbcSynchronizeCache,
    }),
    defineOp<D, BlockRange>({
      name: 'SYNCHRONIZE CACHE(16)',
      opcode: Op.SYNCHRONIZE_CACHE_16,
      dataDirection: 'none',
      access: 'write',
      usage: [Op.SYNCHRONIZE_CACHE_16, 0x02, ...new Array<number>(12).fill(0xff), 0x1f, CONTROL],
      decode: decodeRangeOnly(LAYOUT_16),
      execute: sbcSynchronizeCache,
    }),
    defineOp<D, BlockRange>({
      name: 'PRE-FETCH(10)',
      opcode: Op.PRE_FETCH_10,
      dataDirection: 'none',
      access: 'read',
      usage: [Op.PRE_FETCH_10, 0x02, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, CONTROL],
      decode: decodeRangeOnly(LAYOUT_10),
      execute: sbcPreFetch,
    }),
    defineOp<D, BlockRange>({
      name: 'PRE-FETCH(16)',
      opcode: Op.PRE_FETCH_16,
      dataDirection: 'none',
      access: 'read',
      usage: [Op.PRE_FETCH_16, 0x02, ...new Array<number>(12).fill(0xff), 0x1f, CONTROL],
      decode: decodeRangeOnly(LAYOUT_16),
      execute: sbcPreFetch,
    }),
    defineOp<D, null>({
      name: 'START STOP UNIT',
      opcode: Op.START_STOP_UNIT,
      dataDirection: 'none',
      access: 'write',
      usage: [Op.START_STOP_UNIT, 0x01, 0, 0x0f, 0xf7, CONTROL],
      decode: decodeStartStopUnit,
      execute: () => good(),
    }),
    defineOp<D, null>({
      name: 'PREVENT ALLOW MEDIUM REMOVAL',
      opcode: Op.PREVENT_ALLOW_MEDIUM_REMOVAL,
      dataDirection: 'none',
      access: 'write',
      usage: [Op.PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 0x03, CONTROL],
      decode: decodePreventAllow,
      execute: () => good(),
    }),
  ];
}
