// One tape cartridge as a TapeMedium (iscsi/device.ts): record bytes and filemarks in a data file of
// its own, the position index in the gateway's Level database.
//
// Why record bytes are not Level values (measured on the 2-core VM, 4096 x 256 KiB records):
// LevelDB pushes every value through its WAL, its memtable and at least one table-file flush, on
// one writer thread; synced batches of 8 records reached ~100 MiB/s and even unsynced ones ~110
// MiB/s, while writev + fdatasync of the same batches to a plain file reached 350-1000 MiB/s.
//
// The data file is the tape's log: every object (record or filemark) is appended as a
// self-describing frame (tape-frame.ts: kind, logical object id, length, CRC-32, generation), so
// ONE fdatasync of the data file makes a group of writes durable — that is when they are
// acknowledged. Level holds what makes it a tape — object entries, the filemark index, the header
// with EOD (tape-keys.ts) — and is updated lazily behind the data file: each landed group's
// entries go into an unsynced Level batch (synced every INDEX_SYNC_BYTES, at barriers and on
// close). When a tape is opened, frames beyond the indexed EOD are re-indexed from the data file
// (tape-recovery.ts). So at queue depth 1 a 256 KiB record costs one data-file sync, not two.
//
// Group commit (one writer): a write call changes the position at once and joins the open group;
// groups are written one after another with one writev at their offset and one fdatasync.
// While a group is in flight, new writes collect in the next group.
//
// Crash safety: a frame is valid only if its generation is the one in Level's durable header and
// it continues the chain of object ids from the indexed EOD. Anything that moves EOD back
// (overwrite before EOD, ERASE, a failed write) starts a new generation and commits the moved-back
// header with sync (a barrier) before any frame of the new generation is written, so stale or
// torn frames beyond EOD are never taken for acknowledged ones; opening a tape starts a new
// generation too (tape-medium-store.ts), so frames of a group that was never acknowledged cannot
// be resurrected behind records written after the restart. Nothing is deleted eagerly: entries
// and bytes beyond EOD are dropped on unload.
//
// No preallocation: fdatasync of an append also commits the file's new size and block allocation
// (an ext4 journal commit), and writing into blocks that exist is cheaper (dd oflag=dsync 256 KiB
// on the VM: ~130 MB/s appending, ~400-700 MB/s in place). But Node has no fallocate, and
// fallocate(1)'s unwritten extents did not help (~150 MB/s); extending the file with synced zeros
// doubles the bytes written. Measured with bench/tape-store.ts (2048 records, load 5-8, 3 runs):
// zero fills of 512 MiB ahead of one-record groups gave QD1 256 KiB 226-301 MiB/s vs 92-309
// appending, but QD8 126-225 vs 422-512 and QD1 64 KiB 18-56 vs 73-138. So the file is appended.
//
// O(log n) positioning: SPACE and LOCATE read one filemark-index entry and one object entry
// (Level gets), never scan.

import type { FileHandle } from 'node:fs/promises';
import type {
  TapeMedium,
  TapePosition,
  TapeReadResult,
  TapeSpaceResult,
  TapeWriteResult,
} from '../../iscsi/device.js';
import type { Database } from './database.js';
import type { BatchOp } from './group-commit.js';
import { TapeStoreError } from './tape-error.js';
import { encodeFrameHeader, FRAME_HEADER_BYTES, recordChecksum } from './tape-frame.js';
import { encodeTapeHeader, type TapeHeader } from './tape-header.js';
import {
  decodeObjectEntry,
  decodeObjectId,
  encodeObjectEntry,
  encodeObjectId,
  TapeKeys,
  type ObjectEntry,
} from './tape-keys.js';

const MiB = 1024 * 1024;
/** A group is closed at this many file bytes and the next one opened behind it. */
const MAX_GROUP_BYTES = 32 * MiB;
/** pwritev takes at most IOV_MAX (1024) buffers. */
const MAX_WRITEV_BUFFERS = 512;
/** The lazy index is synced at least once per this many data-file bytes: bounds what a restart
 *  after power loss re-indexes from the data file. */
const INDEX_SYNC_BYTES = 256 * MiB;

interface WriteGroup {
  /** File offset of buffers[0]. */
  fileOffsetBytes: number;
  /** Frame headers and record bytes, in file order. */
  buffers: Buffer[];
  fileBytes: number;
  /** Index entries of the group's objects. */
  ops: BatchOp[];
  /** The header as of the group's last change; set when the group is closed. */
  header: TapeHeader | null;
  /** Writes no frames; its header is committed to Level with sync before later groups write
   *  frames (EOD moved back, a new generation, write protection). Resolves when committed. */
  barrier: boolean;
  /** Taken by the file stage. */
  started: boolean;
  done: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class StoredTapeMedium implements TapeMedium {
  readonly barcode: string;
  readonly capacityBytes: number;
  readonly earlyWarningBytes: number;
  readonly worm: boolean;
  private readonly db: Database;
  private readonly keys: TapeKeys;
  private readonly file: FileHandle;
  /** Includes writes not yet durable. */
  private header: TapeHeader;
  /** The header of the last landed batch (restored when a batch fails). */
  private durableHeader: TapeHeader;
  private objectId = 0;
  private fileNumber = 0;
  private bytesBefore = 0;
  /** Offset of the position's frame in the data file. */
  private fileOffsetBytes = 0;
  /** Groups not yet durable, in order. */
  private readonly groups: WriteGroup[] = [];
  /** The object after the last one read, fetched ahead (dropped when EOD moves back). */
  private readAhead: { objectId: number; fetched: Promise<{ entry: ObjectEntry; data: Buffer | null }> } | null = null;
  private fileStageRunning = false;
  /** Index commits, chained in group order (never rejects). */
  private indexTail: Promise<void> = Promise.resolve();
  /** Data-file bytes indexed since the last synced index batch. */
  private unsyncedIndexBytes = 0;
  /** Bumped when writes fail: groups queued before are dropped by the file stage. */
  private epoch = 0;
  /** Set when the index cannot be written: every later call fails (a reload recovers). */
  private failure: TapeStoreError | null = null;
  /** Serialises calls in call order. */
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  private closing: Promise<void> | null = null;
  /** Groups made durable so far, one fdatasync each (shows how well writes coalesce). */
  dataSyncCount = 0;

  /** Use TapeMediumStore.open/create. Starts at BOP. `header` is durable in Level and covers every
   *  valid frame of the data file. */
  constructor(db: Database, header: TapeHeader, file: FileHandle) {
    this.db = db;
    this.file = file;
    this.barcode = header.barcode;
    this.capacityBytes = header.capacityBytes;
    this.earlyWarningBytes = header.earlyWarningBytes;
    this.worm = header.worm;
    this.keys = new TapeKeys(header.barcode);
    this.header = { ...header };
    this.durableHeader = { ...header };
  }

  writeProtected(): boolean {
    return this.header.writeProtected;
  }

  usedBytes(): number {
    return this.header.usedBytes;
  }

  position(): TapePosition {
    return {
      logicalObjectId: this.objectId,
      fileNumber: this.fileNumber,
      bop: this.objectId === 0,
      eod: this.objectId === this.header.eodObjectId,
      beyondEarlyWarning: this.isBeyondEarlyWarning(this.bytesBefore),
    };
  }

  async writeRecord(data: Buffer): Promise<TapeWriteResult> {
    const queued = await this.serial(() => this.enqueueRecord(data));
    await queued.done;
    return queued.result;
  }

  async writeFilemarks(count: number): Promise<TapeWriteResult> {
    const queued = await this.serial(() => this.enqueueFilemarks(count));
    await queued.done;
    return queued.result;
  }

  flush(): Promise<void> {
    return this.serial(() => this.drain());
  }

  read(): Promise<TapeReadResult> {
    return this.serial(async () => {
      await this.drain();
      if (this.objectId >= this.header.eodObjectId) return { kind: 'end-of-data' };
      const ahead = this.readAhead;
      this.readAhead = null;
      const { entry, data } = await (ahead?.objectId === this.objectId ? ahead.fetched : this.fetchObject(this.objectId));
      this.objectId++;
      if (data === null) {
        this.fileNumber++;
      } else {
        this.bytesBefore = entry.bytesBefore + entry.lengthBytes;
      }
      this.fileOffsetBytes = entry.fileOffsetBytes + FRAME_HEADER_BYTES + entry.lengthBytes;
      // Sequential reads are the rule: fetch the next object while the drive sends this one.
      if (this.objectId < this.header.eodObjectId) {
        const fetched = this.fetchObject(this.objectId);
        fetched.catch(() => undefined);
        this.readAhead = { objectId: this.objectId, fetched };
      }
      return data === null ? { kind: 'filemark' } : { kind: 'record', data };
    });
  }

  spaceRecords(count: number): Promise<TapeSpaceResult> {
    return this.serial(async () => {
      await this.drain();
      const requested = Math.abs(count);
      if (count > 0) {
        // The next filemark at or after the position bounds the records we can cross.
        const boundary =
          this.fileNumber < this.header.filemarkCount ? await this.getFilemark(this.fileNumber) : this.header.eodObjectId;
        const available = boundary - this.objectId;
        if (requested <= available) {
          await this.moveTo(this.objectId + requested);
          return { spaced: requested, stoppedAt: null };
        }
        if (boundary < this.header.eodObjectId) {
          await this.moveTo(boundary + 1);
          return { spaced: available, stoppedAt: 'filemark' };
        }
        await this.moveTo(boundary);
        return { spaced: available, stoppedAt: 'end-of-data' };
      }
      if (count < 0) {
        const boundary = this.fileNumber > 0 ? await this.getFilemark(this.fileNumber - 1) : -1;
        const available = this.objectId - boundary - 1;
        if (requested <= available) {
          await this.moveTo(this.objectId - requested);
          return { spaced: requested, stoppedAt: null };
        }
        // Reverse: the BOP side of the filemark, i.e. the next READ returns it.
        await this.moveTo(Math.max(boundary, 0));
        return { spaced: available, stoppedAt: boundary >= 0 ? 'filemark' : 'beginning-of-partition' };
      }
      return { spaced: 0, stoppedAt: null };
    });
  }

  spaceFilemarks(count: number): Promise<TapeSpaceResult> {
    return this.serial(async () => {
      await this.drain();
      if (count > 0) {
        const target = this.fileNumber + count - 1;
        if (target < this.header.filemarkCount) {
          await this.moveTo((await this.getFilemark(target)) + 1);
          return { spaced: count, stoppedAt: null };
        }
        const spaced = this.header.filemarkCount - this.fileNumber;
        await this.moveTo(this.header.eodObjectId);
        return { spaced, stoppedAt: 'end-of-data' };
      }
      if (count < 0) {
        const target = this.fileNumber + count;
        if (target >= 0) {
          await this.moveTo(await this.getFilemark(target));
          return { spaced: -count, stoppedAt: null };
        }
        const spaced = this.fileNumber;
        await this.moveTo(0);
        return { spaced, stoppedAt: 'beginning-of-partition' };
      }
      return { spaced: 0, stoppedAt: null };
    });
  }

  spaceToEndOfData(): Promise<void> {
    return this.serial(async () => {
      await this.drain();
      await this.moveTo(this.header.eodObjectId);
    });
  }

  locate(logicalObjectId: number): Promise<{ beyondEndOfData: boolean }> {
    return this.serial(async () => {
      await this.drain();
      const beyondEndOfData = logicalObjectId > this.header.eodObjectId;
      await this.moveTo(Math.min(logicalObjectId, this.header.eodObjectId));
      return { beyondEndOfData };
    });
  }

  locateFile(fileNumber: number): Promise<{ beyondEndOfData: boolean }> {
    return this.serial(async () => {
      await this.drain();
      if (fileNumber === 0) {
        await this.moveTo(0);
        return { beyondEndOfData: false };
      }
      if (fileNumber > this.header.filemarkCount) {
        await this.moveTo(this.header.eodObjectId);
        return { beyondEndOfData: true };
      }
      await this.moveTo((await this.getFilemark(fileNumber - 1)) + 1);
      return { beyondEndOfData: false };
    });
  }

  rewind(): Promise<void> {
    return this.serial(async () => {
      await this.drain();
      await this.moveTo(0);
    });
  }

  erase(): Promise<void> {
    return this.serial(async () => {
      this.checkWritable();
      if (this.objectId < this.header.eodObjectId) this.truncateAtPosition();
      await this.drain();
      await this.reclaimBeyondEod();
    });
  }

  /** Sets or clears write protection (durably); e.g. the gateway protects an archived tape. */
  setWriteProtected(writeProtected: boolean): Promise<void> {
    return this.serial(async () => {
      this.header.writeProtected = writeProtected;
      this.pushBarrier();
      await this.drain();
      if (this.failure !== null) throw this.failure;
    });
  }

  /** Waits for pending writes, then closes the data file; the medium is unusable afterwards. */
  close(): Promise<void> {
    this.closing ??= this.serial(async () => {
      await this.drain();
      this.closed = true;
      try {
        if (this.failure === null) {
          // The lazy index's last batches become durable before the file is cut at EOD.
          const header = encodeTapeHeader(this.durableHeader);
          await this.db.groupCommit.commit([{ type: 'put', key: this.keys.header(), value: header }]);
          await this.reclaimBeyondEod();
        }
      } finally {
        await this.file.close();
      }
    }, { evenIfFailed: true });
    return this.closing;
  }

  // --- writing -------------------------------------------------------------------------------

  private enqueueRecord(data: Buffer): { done: Promise<void>; result: TapeWriteResult } {
    if (data.length === 0) throw new TapeStoreError('TAPE_INVALID', 'a tape record has at least one byte');
    this.checkWritable();
    const usedBytes = this.bytesBefore + data.length;
    if (usedBytes > this.capacityBytes) {
      throw new TapeStoreError(
        'TAPE_END_OF_MEDIUM',
        `tape ${this.barcode}: a ${data.length}-byte record does not fit (${this.capacityBytes - this.bytesBefore} bytes left)`,
      );
    }
    if (this.objectId < this.header.eodObjectId) this.truncateAtPosition();
    const frame = encodeFrameHeader({
      kind: 'record',
      generation: this.header.generation,
      objectId: this.objectId,
      lengthBytes: data.length,
      dataCrc: recordChecksum(data),
    });
    const group = this.appendFrame(frame, data);
    this.bytesBefore = usedBytes;
    this.header.usedBytes = usedBytes;
    this.startWriting();
    return { done: group.done, result: { beyondEarlyWarning: this.isBeyondEarlyWarning(usedBytes) } };
  }

  private enqueueFilemarks(count: number): { done: Promise<void>; result: TapeWriteResult } {
    if (!Number.isSafeInteger(count) || count < 0) {
      throw new TapeStoreError('TAPE_INVALID', `bad filemark count ${count}`);
    }
    if (count === 0) {
      // SSC-4 WRITE FILEMARKS with count 0 only flushes; allowed on protected media.
      const last = this.groups.at(-1);
      return {
        done: last?.done ?? Promise.resolve(),
        result: { beyondEarlyWarning: this.isBeyondEarlyWarning(this.bytesBefore) },
      };
    }
    this.checkWritable();
    if (this.objectId < this.header.eodObjectId) this.truncateAtPosition();
    let group: WriteGroup | undefined;
    for (let i = 0; i < count; i++) {
      const frame = encodeFrameHeader({
        kind: 'filemark',
        generation: this.header.generation,
        objectId: this.objectId,
        lengthBytes: 0,
        dataCrc: 0,
      });
      group = this.appendFrame(frame, null);
    }
    this.startWriting();
    return {
      done: (group as WriteGroup).done,
      result: { beyondEarlyWarning: this.isBeyondEarlyWarning(this.bytesBefore) },
    };
  }

  /** Adds one object at the position (= EOD) to the open group and moves past it. */
  private appendFrame(frame: Buffer, data: Buffer | null): WriteGroup {
    const group = this.openGroup();
    if (group.buffers.length === 0) group.fileOffsetBytes = this.fileOffsetBytes;
    const lengthBytes = data?.length ?? 0;
    group.buffers.push(frame);
    if (data !== null) group.buffers.push(data);
    group.fileBytes += FRAME_HEADER_BYTES + lengthBytes;
    const entry: ObjectEntry = {
      fileOffsetBytes: this.fileOffsetBytes,
      bytesBefore: this.bytesBefore,
      fileNumber: this.fileNumber,
      lengthBytes,
    };
    group.ops.push({ type: 'put', key: this.keys.object(this.objectId), value: encodeObjectEntry(entry) });
    if (data === null) {
      group.ops.push({ type: 'put', key: this.keys.filemark(this.fileNumber), value: encodeObjectId(this.objectId) });
      this.fileNumber++;
      this.header.filemarkCount = this.fileNumber;
    }
    this.objectId++;
    this.fileOffsetBytes += FRAME_HEADER_BYTES + lengthBytes;
    this.header.eodObjectId = this.objectId;
    this.header.dataEndBytes = this.fileOffsetBytes;
    return group;
  }

  private checkWritable(): void {
    if (this.closed) throw new TapeStoreError('TAPE_IO', `tape ${this.barcode} is closed`);
    if (this.header.writeProtected) {
      throw new TapeStoreError('TAPE_WRITE_PROTECTED', `tape ${this.barcode} is write-protected`);
    }
    if (this.worm && this.objectId < this.header.eodObjectId) {
      throw new TapeStoreError(
        'TAPE_WORM_OVERWRITE',
        `tape ${this.barcode} is WORM: cannot write at object ${this.objectId} before EOD ${this.header.eodObjectId}`,
      );
    }
  }

  /** EOD moves to the position in a new generation; a barrier makes that durable before any frame
   *  is written over the discarded objects. */
  private truncateAtPosition(): void {
    this.readAhead = null;
    this.header.eodObjectId = this.objectId;
    this.header.filemarkCount = this.fileNumber;
    this.header.usedBytes = this.bytesBefore;
    this.header.dataEndBytes = this.fileOffsetBytes;
    this.header.generation++;
    this.pushBarrier();
  }

  /** Closes the open group and queues a barrier with the header as it is now. */
  private pushBarrier(): void {
    const last = this.groups.at(-1);
    if (last !== undefined) this.closeGroup(last);
    const barrier = newGroup();
    barrier.barrier = true;
    this.groups.push(barrier);
    this.closeGroup(barrier);
    this.startWriting();
  }

  /** The group new writes join: the last one unless it is closed or full. */
  private openGroup(): WriteGroup {
    const last = this.groups.at(-1);
    if (last !== undefined && last.header === null && last.fileBytes < MAX_GROUP_BYTES) return last;
    if (last !== undefined) this.closeGroup(last);
    const group = newGroup();
    this.groups.push(group);
    return group;
  }

  private closeGroup(group: WriteGroup): void {
    group.header ??= { ...this.header };
  }

  private startWriting(): void {
    if (this.fileStageRunning) return;
    this.fileStageRunning = true;
    void this.runFileStage();
  }

  /** One group at a time, in order: frames to the data file, fdatasync, acknowledge; the group's
   *  index entries then join the index chain, so the next group's file write overlaps them. A
   *  barrier goes straight to the index chain, and frames behind it wait until it landed. */
  private async runFileStage(): Promise<void> {
    for (;;) {
      const group = this.groups.find((g) => !g.started);
      if (group === undefined) break;
      group.started = true;
      this.closeGroup(group);
      if (group.barrier) {
        this.indexTail = this.indexTail.then(() => this.commitIndex(group));
        continue;
      }
      const epoch = this.epoch;
      for (const earlier of this.groups) {
        if (earlier === group) break;
        if (earlier.barrier) await earlier.done.catch(() => undefined);
      }
      if (epoch !== this.epoch) continue;
      try {
        await this.writeFile(group.fileOffsetBytes, group.buffers);
        await this.file.datasync();
        this.dataSyncCount++;
      } catch (err) {
        if (epoch === this.epoch) this.failFrom(group, err);
        continue;
      }
      if (epoch !== this.epoch) continue;
      this.groups.splice(this.groups.indexOf(group), 1);
      this.durableHeader = group.header as TapeHeader;
      group.resolve();
      this.indexTail = this.indexTail.then(() => this.commitIndex(group));
    }
    this.fileStageRunning = false;
  }

  /** In group order: the group's index entries and header in one Level batch — synced for a
   *  barrier (which resolves then) and every INDEX_SYNC_BYTES, unsynced otherwise. */
  private async commitIndex(group: WriteGroup): Promise<void> {
    if (this.failure !== null) {
      this.failIndex(this.failure);
      return;
    }
    const ops: BatchOp[] = [
      ...group.ops,
      { type: 'put', key: this.keys.header(), value: encodeTapeHeader(group.header as TapeHeader) },
    ];
    this.unsyncedIndexBytes += group.fileBytes;
    try {
      if (group.barrier || this.unsyncedIndexBytes >= INDEX_SYNC_BYTES) {
        await this.db.groupCommit.commit(ops);
        this.unsyncedIndexBytes = 0;
      } else {
        await this.db.level.batch(ops);
      }
    } catch (err) {
      this.failIndex(err);
      return;
    }
    if (group.barrier) {
      this.groups.splice(this.groups.indexOf(group), 1);
      this.durableHeader = group.header as TapeHeader;
      group.resolve();
    }
  }

  /** A group's frames could not be made durable: it and every group behind it are refused, and
   *  the medium is back at the EOD the groups before it leave (the drive reports the write error;
   *  the position is EOD), in a new generation — its frames may be on disk, never acknowledged. */
  private failFrom(group: WriteGroup, err: unknown): void {
    const error = asTapeError(this.barcode, err);
    this.epoch++;
    const index = this.groups.indexOf(group);
    const previous = index > 0 ? this.groups[index - 1].header : null;
    for (const failed of this.groups.splice(index)) failed.reject(error);
    this.header = { ...(previous ?? this.durableHeader) };
    this.objectId = this.header.eodObjectId;
    this.fileNumber = this.header.filemarkCount;
    this.bytesBefore = this.header.usedBytes;
    this.fileOffsetBytes = this.header.dataEndBytes;
    this.header.generation++;
    this.pushBarrier();
  }

  /** The index cannot be written: what is durable stays in the data file (a reload re-indexes
   *  it), but this medium refuses everything from now on. */
  private failIndex(err: unknown): void {
    this.failure = asTapeError(this.barcode, err);
    this.epoch++;
    for (const failed of this.groups.splice(0)) failed.reject(this.failure);
  }

  private async writeFile(offsetBytes: number, buffers: Buffer[]): Promise<void> {
    let offset = offsetBytes;
    for (let i = 0; i < buffers.length; i += MAX_WRITEV_BUFFERS) {
      let pending = buffers.slice(i, i + MAX_WRITEV_BUFFERS);
      while (pending.length > 0) {
        const { bytesWritten } = await this.file.writev(pending, offset);
        offset += bytesWritten;
        pending = skipBytes(pending, bytesWritten);
      }
    }
  }

  /** Resolves when every group queued so far is durable (or failed) and indexed. */
  private async drain(): Promise<void> {
    for (;;) {
      const last = this.groups.at(-1);
      if (last !== undefined) {
        await last.done.catch(() => undefined);
        continue;
      }
      const tail = this.indexTail;
      await tail;
      if (tail === this.indexTail && this.groups.length === 0) return;
    }
  }

  /** Drops what an overwrite or ERASE left beyond EOD: stale entries and data-file bytes. Only called with nothing pending and the header synced; if it is
   *  interrupted, the leftovers stay stale and harmless. */
  private async reclaimBeyondEod(): Promise<void> {
    const { eodObjectId, filemarkCount, dataEndBytes } = this.durableHeader;
    if ((await this.file.stat()).size > dataEndBytes) await this.file.truncate(dataEndBytes);
    await this.db.level.clear(this.keys.objectsFrom(eodObjectId));
    await this.db.level.clear(this.keys.filemarksFrom(filemarkCount));
  }

  // --- positioning -----------------------------------------------------------------------------

  private async moveTo(objectId: number): Promise<void> {
    if (objectId >= this.header.eodObjectId) {
      this.objectId = this.header.eodObjectId;
      this.fileNumber = this.header.filemarkCount;
      this.bytesBefore = this.header.usedBytes;
      this.fileOffsetBytes = this.header.dataEndBytes;
    } else if (objectId <= 0) {
      this.objectId = 0;
      this.fileNumber = 0;
      this.bytesBefore = 0;
      this.fileOffsetBytes = 0;
    } else {
      const entry = await this.getObject(objectId);
      this.objectId = objectId;
      this.fileNumber = entry.fileNumber;
      this.bytesBefore = entry.bytesBefore;
      this.fileOffsetBytes = entry.fileOffsetBytes;
    }
  }

  /** An object's entry and, for a record, its bytes (null for a filemark). */
  private async fetchObject(objectId: number): Promise<{ entry: ObjectEntry; data: Buffer | null }> {
    const entry = await this.getObject(objectId);
    if (entry.lengthBytes === 0) return { entry, data: null };
    return { entry, data: await this.readFile(entry.fileOffsetBytes + FRAME_HEADER_BYTES, entry.lengthBytes) };
  }

  private async getObject(objectId: number): Promise<ObjectEntry> {
    const value = await this.db.level.get(this.keys.object(objectId));
    if (value === undefined) {
      throw new TapeStoreError('TAPE_CORRUPT', `tape ${this.barcode}: object ${objectId} before EOD is missing`);
    }
    return decodeObjectEntry(value);
  }

  /** Object id of filemark `fileNumber` (0-based, < filemarkCount). */
  private async getFilemark(fileNumber: number): Promise<number> {
    const value = await this.db.level.get(this.keys.filemark(fileNumber));
    if (value === undefined) {
      throw new TapeStoreError('TAPE_CORRUPT', `tape ${this.barcode}: filemark ${fileNumber} before EOD is missing`);
    }
    return decodeObjectId(value);
  }

  private async readFile(offsetBytes: number, lengthBytes: number): Promise<Buffer> {
    const data = Buffer.allocUnsafe(lengthBytes);
    let done = 0;
    while (done < lengthBytes) {
      const { bytesRead } = await this.file.read(data, done, lengthBytes - done, offsetBytes + done);
      if (bytesRead === 0) {
        throw new TapeStoreError('TAPE_CORRUPT', `tape ${this.barcode}: data file ends inside a record at ${offsetBytes}`);
      }
      done += bytesRead;
    }
    return data;
  }

  private isBeyondEarlyWarning(bytesBefore: number): boolean {
    return bytesBefore >= this.capacityBytes - this.earlyWarningBytes;
  }

  private serial<T>(step: () => T | Promise<T>, opts: { evenIfFailed?: boolean } = {}): Promise<T> {
    const run = this.tail.then(() => {
      if (this.closed) throw new TapeStoreError('TAPE_IO', `tape ${this.barcode} is closed`);
      if (this.failure !== null && opts.evenIfFailed !== true) throw this.failure;
      return step();
    });
    this.tail = run.catch(() => undefined);
    return run;
  }
}

function asTapeError(barcode: string, err: unknown): TapeStoreError {
  if (err instanceof TapeStoreError) return err;
  return new TapeStoreError('TAPE_IO', `tape ${barcode}: write failed: ${String(err)}`, {
    transient: (err as { transient?: unknown }).transient !== false,
    cause: err,
  });
}

function newGroup(): WriteGroup {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A group whose callers stopped waiting must not become an unhandled rejection.
  done.catch(() => undefined);
  return {
    fileOffsetBytes: 0,
    buffers: [],
    fileBytes: 0,
    ops: [],
    header: null,
    barrier: false,
    started: false,
    done,
    resolve,
    reject,
  };
}

/** The buffers after the first `bytes` bytes (a short write); no data is copied. */
function skipBytes(buffers: Buffer[], bytes: number): Buffer[] {
  let rest = bytes;
  let i = 0;
  while (i < buffers.length && rest >= buffers[i].length) {
    rest -= buffers[i].length;
    i++;
  }
  const remaining = buffers.slice(i);
  if (rest > 0 && remaining.length > 0) remaining[0] = remaining[0].subarray(rest);
  return remaining;
}
