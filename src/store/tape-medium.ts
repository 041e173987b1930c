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
// ONE fdatasync of the data file makes a group of writes durable. Level holds what makes it a
// tape — object entries, the filemark index, the header with EOD (tape-keys.ts) — and is updated
// lazily behind the data file: the entries of groups made durable go into an unsynced Level batch
// (synced every INDEX_SYNC_BYTES, at barriers and on close). When a tape is opened, frames beyond
// the indexed EOD are re-indexed from the data file (tape-recovery.ts).
//
// Buffered mode (SSC-4 8.3.3 BUFFERED MODE; the drive passes TapeWriteOptions.sync per call):
// a write resolves once its group's frames are written to the data file (`written`: the OS has
// them, a kill -9 of the process loses nothing acknowledged — tape-recovery.ts finds them), or,
// with `sync`, once they are on stable storage (`durable`: one fdatasync, group-committed, for
// everything written so far). Written groups are made durable at the latest after
// SYNC_INTERVAL_BYTES (in the background), and before anything that is not a write: positioning,
// ERASE, flush, a barrier, close. Index entries are only ever written for durable groups, so
// Level never points at data a power loss could take away.
//
// Group commit (one writer): a write call changes the position at once and joins the open group;
// groups are written one after another with one writev at their offset, so a write never
// resolves before every earlier frame of the tape is in the file (recovery stops at the first bad
// frame). While a group is in flight, new writes collect in the next group. A group is either
// all `sync` or none, so a failed fdatasync never takes back an acknowledged write.
//
// Crash safety: a frame is valid only if its generation is the one in Level's durable header and
// it continues the chain of object ids from the indexed EOD. Anything that moves EOD back
// (overwrite before EOD, ERASE, a failed write) starts a new generation and commits the moved-back
// header with sync (a barrier: first everything written before it is made durable and indexed)
// before any frame of the new generation is written, so stale or torn frames beyond EOD are never
// taken for acknowledged ones; opening a tape starts a new generation too (tape-medium-store.ts),
// so frames of a group that was never acknowledged cannot be resurrected behind records written
// after the restart. Nothing is deleted eagerly: entries and bytes beyond EOD are dropped on
// unload.
//
// Disk full and I/O errors (ARCHITECTURE.md "Data path"): each group asks SpaceGuard for its bytes
// before it is appended. When that is refused, or the append fails (ENOSPC, EIO, a short write),
// the group and every group queued behind it are refused with a 'write-error' fault (MEDIUM ERROR,
// WRITE ERROR), the torn bytes are truncated away (the log stays a clean prefix), the position
// goes back to the end of the last stored group in a new generation (a barrier), and StoreHealth
// gets a condition until a later write succeeds. Nothing stored before is touched.
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
  TapeWriteOptions,
  TapeWriteResult,
} from '../../iscsi/device.js';
import type { Database } from './database.js';
import type { BatchOp } from './group-commit.js';
import type { SpaceGuard } from './space-guard.js';
import type { StoreHealth } from './store-health.js';
import { TapeStoreError, tapeWriteError } from './tape-error.js';
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
/** Written (acknowledged, buffered) groups are made durable in the background at least once per
 *  this many bytes: bounds what a power loss can take and what a restart after kill -9 re-indexes. */
const SYNC_INTERVAL_BYTES = 256 * MiB;

export interface StoredTapeMediumOptions {
  /** Data space of the file system the data file is on; asked before every append. */
  space?: SpaceGuard | null;
  /** Where disk-full and I/O-error episodes are reported (component `tape <barcode>`). */
  health?: StoreHealth | null;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface WriteGroup {
  /** File offset of buffers[0]. */
  fileOffsetBytes: number;
  /** Frame headers and record bytes, in file order (dropped once written). */
  buffers: Buffer[];
  fileBytes: number;
  /** Index entries of the group's objects. */
  ops: BatchOp[];
  /** The header as of the group's last change; set when the group is closed. */
  header: TapeHeader | null;
  /** Writes no frames; its header is committed to Level with sync before later groups write
   *  frames (EOD moved back, a new generation, write protection). */
  barrier: boolean;
  /** Its callers wait for `durable` (buffered mode 0, WRITE FILEMARKS with IMMED=0): the file
   *  stage syncs right after writing it, before the next group. */
  sync: boolean;
  /** Taken by the file stage. */
  started: boolean;
  /** Order of writing (set when written). */
  seq: number;
  /** The frames are in the data file (a barrier: committed). */
  written: Deferred;
  /** The frames are on stable storage (a barrier: committed). */
  durable: Deferred;
}

export class StoredTapeMedium implements TapeMedium {
  readonly barcode: string;
  readonly capacityBytes: number;
  readonly earlyWarningBytes: number;
  readonly worm: boolean;
  private readonly db: Database;
  private readonly keys: TapeKeys;
  private readonly file: FileHandle;
  private readonly space: SpaceGuard | null;
  private readonly health: StoreHealth | null;
  /** Includes writes not yet stored. */
  private header: TapeHeader;
  /** The header of the last written group or committed barrier (where a failed group rolls back to). */
  private landedHeader: TapeHeader;
  /** The header of the last durable group or committed barrier. */
  private durableHeader: TapeHeader;
  private objectId = 0;
  private fileNumber = 0;
  private bytesBefore = 0;
  /** Offset of the position's frame in the data file. */
  private fileOffsetBytes = 0;
  /** Groups not yet written, in order. */
  private readonly groups: WriteGroup[] = [];
  /** Groups written, not yet durable, in order. */
  private unsynced: WriteGroup[] = [];
  private unsyncedBytes = 0;
  private writtenSeq = 0;
  private durableSeq = 0;
  /** The fdatasync in flight (group commit: callers arriving meanwhile take the next one). */
  private syncing: Promise<void> | null = null;
  /** The object after the last one read, looked up ahead (dropped when EOD moves back); its bytes
   *  too unless the reader passes its own buffers. */
  private readAhead: { objectId: number; entry: Promise<ObjectEntry>; data: Promise<Buffer | null> | null } | null = null;
  private fileStageRunning = false;
  /** Index commits, chained in order (never rejects). */
  private indexTail: Promise<void> = Promise.resolve();
  /** Data-file bytes indexed since the last synced index batch. */
  private unsyncedIndexBytes = 0;
  /** Bumped when writes fail: groups queued before are dropped by the file stage. */
  private epoch = 0;
  /** Set when the index or a sync fails: every later call fails (a reload recovers from the data file). */
  private failure: TapeStoreError | null = null;
  /** A StoreHealth condition this medium reported and has not cleared yet. */
  private degraded = false;
  /** Serialises calls in call order. */
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  private closing: Promise<void> | null = null;
  /** fdatasyncs of the data file so far (shows how well writes coalesce; buffered writes need none). */
  dataSyncCount = 0;

  /** Use TapeMediumStore.open/create. Starts at BOP. `header` is durable in Level and covers every
   *  valid frame of the data file. */
  constructor(db: Database, header: TapeHeader, file: FileHandle, opts: StoredTapeMediumOptions = {}) {
    this.db = db;
    this.file = file;
    this.space = opts.space ?? null;
    this.health = opts.health ?? null;
    this.barcode = header.barcode;
    this.capacityBytes = header.capacityBytes;
    this.earlyWarningBytes = header.earlyWarningBytes;
    this.worm = header.worm;
    this.keys = new TapeKeys(header.barcode);
    this.header = { ...header };
    this.landedHeader = { ...header };
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

  async writeRecord(data: Buffer, opts: TapeWriteOptions = {}): Promise<TapeWriteResult> {
    const sync = opts.sync === true;
    const queued = await this.serial(() => this.enqueueRecord(data, sync));
    await queued.done;
    return queued.result;
  }

  async writeFilemarks(count: number, opts: TapeWriteOptions = {}): Promise<TapeWriteResult> {
    const sync = opts.sync === true;
    const queued = await this.serial(() => this.enqueueFilemarks(count, sync));
    await queued.done;
    return queued.result;
  }

  flush(): Promise<void> {
    return this.serial(() => this.drain());
  }

  read(into?: Buffer): Promise<TapeReadResult> {
    return this.serial(async () => {
      await this.drain();
      if (this.objectId >= this.header.eodObjectId) return { kind: 'end-of-data' };
      const ahead = this.readAhead?.objectId === this.objectId ? this.readAhead : null;
      this.readAhead = null;
      const entry = await (ahead?.entry ?? this.getObject(this.objectId));
      let data: Buffer | null = null;
      if (entry.lengthBytes > 0) {
        // A caller's buffer gets the bytes straight from the file (pread), even if they were
        // fetched ahead: Data-In is never assembled by copying.
        data = into === undefined && ahead?.data ? await ahead.data : await this.readRecord(entry, into);
        if (data === null) throw new TapeStoreError('TAPE_CORRUPT', `tape ${this.barcode}: object ${this.objectId} changed kind`);
      }
      this.objectId++;
      if (data === null) {
        this.fileNumber++;
      } else {
        this.bytesBefore = entry.bytesBefore + entry.lengthBytes;
      }
      this.fileOffsetBytes = entry.fileOffsetBytes + FRAME_HEADER_BYTES + entry.lengthBytes;
      // Sequential reads are the rule: look the next object up while the drive sends this one,
      // and read its bytes ahead too unless the reader brings its own buffers.
      if (this.objectId < this.header.eodObjectId) this.startReadAhead(this.objectId, into === undefined);
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

  /** Waits for pending writes (made durable), then closes the data file; the medium is unusable
   *  afterwards. */
  close(): Promise<void> {
    this.closing ??= this.serial(async () => {
      await this.drain().catch(() => undefined); // a failure is in this.failure
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

  private enqueueRecord(data: Buffer, sync: boolean): { done: Promise<void>; result: TapeWriteResult } {
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
    const group = this.appendFrame(frame, data, sync);
    this.bytesBefore = usedBytes;
    this.header.usedBytes = usedBytes;
    this.startWriting();
    return { done: stored(group, sync), result: { beyondEarlyWarning: this.isBeyondEarlyWarning(usedBytes) } };
  }

  private enqueueFilemarks(count: number, sync: boolean): { done: Promise<void>; result: TapeWriteResult } {
    if (!Number.isSafeInteger(count) || count < 0) {
      throw new TapeStoreError('TAPE_INVALID', `bad filemark count ${count}`);
    }
    if (count === 0) {
      // SSC-4 WRITE FILEMARKS with count 0 writes nothing; with IMMED=0 it flushes. Allowed on
      // protected media. A write refused before it (reported to its own command) does not fail it.
      const last = this.groups.at(-1);
      const written = last === undefined ? Promise.resolve() : last.written.promise.catch(() => undefined);
      return {
        done: sync ? written.then(() => this.syncData()) : written,
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
      group = this.appendFrame(frame, null, sync);
    }
    this.startWriting();
    return {
      done: stored(group as WriteGroup, sync),
      result: { beyondEarlyWarning: this.isBeyondEarlyWarning(this.bytesBefore) },
    };
  }

  /** Adds one object at the position (= EOD) to the open group and moves past it. */
  private appendFrame(frame: Buffer, data: Buffer | null, sync: boolean): WriteGroup {
    const group = this.openGroup(sync);
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
    const barrier = newGroup(false);
    barrier.barrier = true;
    this.groups.push(barrier);
    this.closeGroup(barrier);
    this.startWriting();
  }

  /** The group new writes join: the last one unless it is closed, full or of the other kind. */
  private openGroup(sync: boolean): WriteGroup {
    const last = this.groups.at(-1);
    if (last !== undefined && last.header === null && last.sync === sync && last.fileBytes < MAX_GROUP_BYTES) return last;
    if (last !== undefined) this.closeGroup(last);
    const group = newGroup(sync);
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

  /** One group at a time, in order: space, frames to the data file (written: buffered writes are
   *  acknowledged), and for a `sync` group the fdatasync before the next group. A barrier first
   *  makes everything written durable and indexed, then commits its header; frames behind it wait. */
  private async runFileStage(): Promise<void> {
    for (;;) {
      const group = this.groups.find((g) => !g.started);
      if (group === undefined) break;
      group.started = true;
      this.closeGroup(group);
      const epoch = this.epoch;
      if (group.barrier) {
        await this.landBarrier(group);
        continue;
      }
      try {
        if (this.space !== null && !(await this.space.reserve(group.fileBytes))) {
          throw new TapeStoreError(
            'TAPE_DISK_FULL',
            `tape ${this.barcode}: no data space left for ${group.fileBytes} bytes (the file system keeps its reserve for the index); free space and write again`,
          );
        }
        if (epoch !== this.epoch) continue;
        await this.writeFile(group.fileOffsetBytes, group.buffers);
      } catch (err) {
        if (epoch === this.epoch) await this.failFrom(group, err);
        continue;
      }
      if (epoch !== this.epoch) continue;
      this.groups.splice(this.groups.indexOf(group), 1);
      group.buffers = [];
      group.seq = ++this.writtenSeq;
      this.landedHeader = group.header as TapeHeader;
      this.unsynced.push(group);
      this.unsyncedBytes += group.fileBytes;
      this.wroteSuccessfully();
      group.written.resolve();
      if (group.sync) {
        await this.syncData().catch(() => undefined); // a failure rejected the group's waiters
      } else if (this.unsyncedBytes >= SYNC_INTERVAL_BYTES) {
        this.syncData().catch(() => undefined);
      }
    }
    this.fileStageRunning = false;
  }

  /** Resolves when every group written so far is durable (one fdatasync for all of them; a caller
   *  arriving while one is in flight waits for it and takes the next). Throws when it failed. */
  private async syncData(): Promise<void> {
    const target = this.writtenSeq;
    while (this.durableSeq < target) {
      if (this.failure !== null) throw this.failure;
      if (this.syncing === null) {
        const run = this.runSync();
        this.syncing = run;
        // Registered before any caller's await: the next caller finds no sync in flight.
        void run.finally(() => {
          if (this.syncing === run) this.syncing = null;
        });
      }
      await this.syncing;
    }
  }

  private async runSync(): Promise<void> {
    const batch = this.unsynced;
    this.unsynced = [];
    this.unsyncedBytes = 0;
    if (batch.length === 0) {
      this.durableSeq = this.writtenSeq;
      return;
    }
    try {
      await this.file.datasync();
      this.dataSyncCount++;
    } catch (err) {
      const error = tapeWriteError(this.barcode, err, 'fdatasync');
      for (const group of batch) group.durable.reject(error);
      this.reportCondition(error);
      // What the OS may have dropped cannot be told from what it kept: refuse everything until
      // the tape is loaded again (recovery re-indexes what the data file holds).
      this.failIndex(error);
      return;
    }
    const last = batch.at(-1) as WriteGroup;
    this.durableSeq = last.seq;
    this.durableHeader = last.header as TapeHeader;
    for (const group of batch) group.durable.resolve();
    const ops = batch.flatMap((group) => group.ops);
    const fileBytes = batch.reduce((n, group) => n + group.fileBytes, 0);
    this.indexTail = this.indexTail.then(async () => {
      await this.commitIndex(ops, last.header as TapeHeader, fileBytes, false);
    });
  }

  private async landBarrier(barrier: WriteGroup): Promise<void> {
    try {
      await this.syncData();
    } catch {
      return; // failIndex refused the barrier too
    }
    this.indexTail = this.indexTail.then(async () => {
      if (!(await this.commitIndex([], barrier.header as TapeHeader, 0, true))) return;
      const index = this.groups.indexOf(barrier);
      if (index >= 0) this.groups.splice(index, 1);
      this.landedHeader = barrier.header as TapeHeader;
      this.durableHeader = barrier.header as TapeHeader;
      barrier.written.resolve();
      barrier.durable.resolve();
    });
    await barrier.written.promise.catch(() => undefined);
  }

  /** In order: index entries of durable groups and their header in one Level batch — synced for
   *  a barrier and every INDEX_SYNC_BYTES, unsynced otherwise. False when the index failed. */
  private async commitIndex(entries: BatchOp[], header: TapeHeader, fileBytes: number, barrier: boolean): Promise<boolean> {
    if (this.failure !== null) {
      this.failIndex(this.failure);
      return false;
    }
    const ops: BatchOp[] = [...entries, { type: 'put', key: this.keys.header(), value: encodeTapeHeader(header) }];
    this.unsyncedIndexBytes += fileBytes;
    try {
      if (barrier || this.unsyncedIndexBytes >= INDEX_SYNC_BYTES) {
        await this.db.groupCommit.commit(ops);
        this.unsyncedIndexBytes = 0;
      } else {
        await this.db.level.batch(ops);
      }
    } catch (err) {
      const error = asTapeError(this.barcode, err);
      this.reportCondition(new TapeStoreError('TAPE_WRITE_FAILED', `tape ${this.barcode}: the index cannot be written: ${error.message}`));
      this.failIndex(error);
      return false;
    }
    return true;
  }

  /** A group could not be stored: it and every group behind it are refused (none of them was
   *  acknowledged), its torn bytes are cut off, and the medium is back at the EOD of the last
   *  written group (the drive reports the write error; the position is EOD) in a new generation:
   *  a barrier, so nothing of the old generation beyond that EOD is ever taken for current. */
  private async failFrom(group: WriteGroup, err: unknown): Promise<void> {
    const error = tapeWriteError(this.barcode, err);
    this.reportCondition(error);
    this.epoch++;
    const index = this.groups.indexOf(group);
    const refused = this.groups.splice(index);
    this.readAhead = null;
    this.header = { ...this.landedHeader };
    this.objectId = this.header.eodObjectId;
    this.fileNumber = this.header.filemarkCount;
    this.bytesBefore = this.header.usedBytes;
    this.fileOffsetBytes = this.header.dataEndBytes;
    this.header.generation++;
    this.pushBarrier();
    // Before the barrier (the next group of the file stage): the log ends with whole frames.
    try {
      if ((await this.file.stat()).size > this.header.dataEndBytes) await this.file.truncate(this.header.dataEndBytes);
    } catch {
      // Left in place they are frames of an older generation beyond EOD: never recovered.
    }
    this.space?.released();
    // Answered once the log is a clean prefix again.
    for (const failed of refused) {
      failed.written.reject(error);
      failed.durable.reject(error);
    }
  }

  /** The index cannot be written (or a sync failed): what is in the data file stays (a reload
   *  re-indexes it), but this medium refuses everything from now on. */
  private failIndex(err: unknown): void {
    this.failure ??= asTapeError(this.barcode, err);
    this.epoch++;
    for (const failed of this.groups.splice(0)) {
      failed.written.reject(this.failure);
      failed.durable.reject(this.failure);
    }
    for (const failed of this.unsynced.splice(0)) failed.durable.reject(this.failure);
  }

  private reportCondition(error: TapeStoreError): void {
    const kind = error.condition;
    if (kind === undefined || this.health === null) return;
    this.degraded = true;
    this.health.degrade(`tape ${this.barcode}`, kind, error.message);
  }

  private wroteSuccessfully(): void {
    if (!this.degraded) return;
    this.degraded = false;
    this.health?.recover(`tape ${this.barcode}`);
  }

  private async writeFile(offsetBytes: number, buffers: Buffer[]): Promise<void> {
    let offset = offsetBytes;
    for (let i = 0; i < buffers.length; i += MAX_WRITEV_BUFFERS) {
      let pending = buffers.slice(i, i + MAX_WRITEV_BUFFERS);
      while (pending.length > 0) {
        const { bytesWritten } = await this.file.writev(pending, offset);
        if (bytesWritten === 0) {
          throw new TapeStoreError('TAPE_WRITE_FAILED', `tape ${this.barcode}: short write at ${offset} (no byte written)`);
        }
        offset += bytesWritten;
        pending = skipBytes(pending, bytesWritten);
      }
    }
  }

  /** Resolves when every group queued so far is written (or failed), durable and indexed. Throws
   *  when the medium failed (a sync or the index). */
  private async drain(): Promise<void> {
    for (;;) {
      const last = this.groups.at(-1);
      if (last !== undefined) {
        await last.written.promise.catch(() => undefined);
        continue;
      }
      await this.syncData();
      const tail = this.indexTail;
      await tail;
      if (tail === this.indexTail && this.groups.length === 0 && this.unsynced.length === 0) {
        if (this.failure !== null) throw this.failure;
        return;
      }
    }
  }

  /** Drops what an overwrite or ERASE left beyond EOD: stale entries and data-file bytes. Only called with nothing pending and the header synced; if it is
   *  interrupted, the leftovers stay stale and harmless. */
  private async reclaimBeyondEod(): Promise<void> {
    const { eodObjectId, filemarkCount, dataEndBytes } = this.durableHeader;
    if ((await this.file.stat()).size > dataEndBytes) {
      await this.file.truncate(dataEndBytes);
      this.space?.released();
    }
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

  /** Looks object `objectId` up ahead, and reads its bytes too when `withData`. */
  private startReadAhead(objectId: number, withData: boolean): void {
    const entry = this.getObject(objectId);
    entry.catch(() => undefined);
    const data = withData ? entry.then((e) => (e.lengthBytes === 0 ? null : this.readRecord(e))) : null;
    data?.catch(() => undefined);
    this.readAhead = { objectId, entry, data };
  }

  /** A record's bytes: into `into`'s first bytes when it fits (pread straight into the caller's
   *  buffer), else into a buffer of its own. */
  private readRecord(entry: ObjectEntry, into?: Buffer): Promise<Buffer> {
    const target = into !== undefined && entry.lengthBytes <= into.length ? into.subarray(0, entry.lengthBytes) : Buffer.allocUnsafe(entry.lengthBytes);
    return this.readFile(target, entry.fileOffsetBytes + FRAME_HEADER_BYTES);
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

  /** Fills `data` from the data file at `offsetBytes` (pread). */
  private async readFile(data: Buffer, offsetBytes: number): Promise<Buffer> {
    const lengthBytes = data.length;
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

/** What a write call waits for: its group written (buffered) or durable (`sync`). */
function stored(group: WriteGroup, sync: boolean): Promise<void> {
  return sync ? group.durable.promise : group.written.promise;
}

function asTapeError(barcode: string, err: unknown): TapeStoreError {
  if (err instanceof TapeStoreError) return err;
  return new TapeStoreError('TAPE_IO', `tape ${barcode}: ${String(err)}`, {
    transient: (err as { transient?: unknown }).transient !== false,
    cause: err,
  });
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A group whose callers stopped waiting must not become an unhandled rejection.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

function newGroup(sync: boolean): WriteGroup {
  return {
    fileOffsetBytes: 0,
    buffers: [],
    fileBytes: 0,
    ops: [],
    header: null,
    barrier: false,
    sync,
    started: false,
    seq: 0,
    written: deferred(),
    durable: deferred(),
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
