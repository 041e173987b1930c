// One tape cartridge as a TapeMedium (iscsi/device.ts): the index in the gateway's Level database,
// the record bytes in a data file of its own.
//
// Why record bytes are not Level values (measured on the 2-core VM, 4096 x 256 KiB records):
// LevelDB pushes every value through its WAL, its memtable and at least one table-file flush, on
// one writer thread; synced batches of 8 records reached ~100 MiB/s and even unsynced ones ~110
// MiB/s, while writev + fdatasync of the same batches to a plain file reached 350-1000 MiB/s.
// So each record is written once, in place, at its tape offset: the data file is the tape's
// linear byte stream (record N starts at the sum of the lengths of records 0..N-1), and Level
// holds what makes it a tape — object entries, the filemark index, EOD (tape-keys.ts).
//
// Durability (group commit, one writer): a write call changes the position at once and joins the
// open group; groups are written one after another: the group's records with one writev at their
// offset, fdatasync, then one synced Level batch with their object entries and the header (EOD).
// A call resolves only when its group's Level batch landed. While a group is in flight, new
// records collect in the next group.
//
// Crash safety: the data file is only ever written at offsets at or beyond the durable EOD's byte
// offset, so acknowledged bytes are never touched before Level records that they were discarded.
// An overwrite before EOD (and ERASE) first commits a header-only batch that moves EOD back
// (a barrier group), and only then writes records there. Entries beyond EOD are stale leftovers,
// never read, overwritten when the tape grows again — nothing is deleted eagerly.
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
import { encodeTapeHeader, type TapeHeader } from './tape-header.js';
import {
  decodeObjectEntry,
  decodeObjectId,
  encodeObjectEntry,
  encodeObjectId,
  TapeKeys,
  type ObjectEntry,
} from './tape-keys.js';

/** A group is closed at this many record bytes and the next one opened behind it. */
const MAX_GROUP_BYTES = 32 * 1024 * 1024;
/** pwritev takes at most IOV_MAX (1024) buffers. */
const MAX_WRITEV_BUFFERS = 512;

interface WriteGroup {
  /** File offset of buffers[0]. */
  fileOffsetBytes: number;
  buffers: Buffer[];
  fileBytes: number;
  ops: BatchOp[];
  /** The header as of the group's last change; set when the group is closed. */
  header: TapeHeader | null;
  /** Moves EOD back (overwrite, ERASE): must land before later groups write file bytes. */
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
  private readonly groups: WriteGroup[] = [];
  /** The object after the last one read, fetched ahead (dropped when EOD moves back). */
  private readAhead: { objectId: number; fetched: Promise<{ entry: ObjectEntry; data: Buffer | null }> } | null = null;
  private fileStageRunning = false;
  /** Level commits, chained in group order (never rejects). */
  private commitTail: Promise<void> = Promise.resolve();
  /** Bumped when writes fail: groups of an older generation are dropped. */
  private generation = 0;
  /** Serialises calls in call order. */
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  private closing: Promise<void> | null = null;

  /** Use TapeMediumStore.open/create. Starts at BOP. */
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
      this.closeGroup(this.openGroup());
      this.startWriting();
      await this.drain();
    });
  }

  /** Waits for pending writes, then closes the data file; the medium is unusable afterwards. */
  close(): Promise<void> {
    this.closing ??= this.serial(async () => {
      await this.drain();
      this.closed = true;
      try {
        await this.reclaimBeyondEod();
      } finally {
        await this.file.close();
      }
    });
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
    const group = this.openGroup();
    if (group.buffers.length === 0) group.fileOffsetBytes = this.bytesBefore;
    group.buffers.push(data);
    group.fileBytes += data.length;
    group.ops.push({
      type: 'put',
      key: this.keys.object(this.objectId),
      value: encodeObjectEntry({ bytesBefore: this.bytesBefore, fileNumber: this.fileNumber, lengthBytes: data.length }),
    });
    this.objectId++;
    this.bytesBefore = usedBytes;
    this.header.eodObjectId = this.objectId;
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
    const group = this.openGroup();
    for (let i = 0; i < count; i++) {
      group.ops.push({
        type: 'put',
        key: this.keys.object(this.objectId),
        value: encodeObjectEntry({ bytesBefore: this.bytesBefore, fileNumber: this.fileNumber, lengthBytes: 0 }),
      });
      group.ops.push({ type: 'put', key: this.keys.filemark(this.fileNumber), value: encodeObjectId(this.objectId) });
      this.objectId++;
      this.fileNumber++;
    }
    this.header.eodObjectId = this.objectId;
    this.header.filemarkCount = this.fileNumber;
    this.startWriting();
    return { done: group.done, result: { beyondEarlyWarning: this.isBeyondEarlyWarning(this.bytesBefore) } };
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

  /** EOD moves to the position; a barrier group makes that durable before any record is written
   *  over the discarded bytes. */
  private truncateAtPosition(): void {
    const last = this.groups.at(-1);
    if (last !== undefined) this.closeGroup(last);
    this.readAhead = null;
    this.header.eodObjectId = this.objectId;
    this.header.filemarkCount = this.fileNumber;
    this.header.usedBytes = this.bytesBefore;
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

  /** Stage 1, one group at a time in order: records to the data file, fdatasync; then the group
   *  joins the commit chain (stage 2) and this stage moves on to the next group, so one group's
   *  file write overlaps the previous group's Level commit. Bytes are only written beyond the
   *  durable EOD's offset: a group after a barrier waits for the barrier to land first. */
  private async runFileStage(): Promise<void> {
    for (;;) {
      const group = this.groups.find((g) => !g.started);
      if (group === undefined) break;
      group.started = true;
      this.closeGroup(group);
      const generation = this.generation;
      if (group.fileBytes > 0) {
        for (const earlier of this.groups) {
          if (earlier === group) break;
          if (earlier.barrier) await earlier.done.catch(() => undefined);
        }
        if (generation !== this.generation) continue;
        try {
          await this.writeFile(group.fileOffsetBytes, group.buffers);
          await this.file.datasync();
        } catch (err) {
          if (generation === this.generation) this.failFrom(group, err);
          continue;
        }
        if (generation !== this.generation) continue;
      }
      this.commitTail = this.commitTail.then(() => this.commitGroup(group, generation));
    }
    this.fileStageRunning = false;
  }

  /** Stage 2, in group order: the group's object entries and header in one synced Level batch. */
  private async commitGroup(group: WriteGroup, generation: number): Promise<void> {
    if (generation !== this.generation) return;
    const header = group.header as TapeHeader;
    try {
      await this.db.groupCommit.commit([
        ...group.ops,
        { type: 'put', key: this.keys.header(), value: encodeTapeHeader(header) },
      ]);
    } catch (err) {
      this.failFrom(group, err);
      return;
    }
    this.groups.shift();
    this.durableHeader = header;
    group.resolve();
  }

  /** A group failed: it and every group behind it are refused, and the medium is back at the EOD
   *  the groups before it will leave (the drive reports the write error; the position is EOD).
   *  Groups already queued are dropped by the generation check. */
  private failFrom(group: WriteGroup, err: unknown): void {
    const error =
      err instanceof TapeStoreError
        ? err
        : new TapeStoreError('TAPE_IO', `tape ${this.barcode}: write failed: ${String(err)}`, {
            transient: (err as { transient?: unknown }).transient !== false,
            cause: err,
          });
    this.generation++;
    const index = this.groups.indexOf(group);
    const previous = index > 0 ? this.groups[index - 1].header : null;
    for (const failed of this.groups.splice(index)) failed.reject(error);
    this.header = { ...(previous ?? this.durableHeader) };
    this.objectId = this.header.eodObjectId;
    this.fileNumber = this.header.filemarkCount;
    this.bytesBefore = this.header.usedBytes;
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

  /** Resolves when every group queued so far has landed (or failed). */
  private async drain(): Promise<void> {
    let last = this.groups.at(-1);
    while (last !== undefined) {
      await last.done.catch(() => undefined);
      last = this.groups.at(-1);
    }
  }

  /** Drops what an overwrite or ERASE left beyond EOD: stale entries and data-file bytes. Only
   *  called with no write pending; if it is interrupted, the leftovers stay stale and harmless. */
  private async reclaimBeyondEod(): Promise<void> {
    const { eodObjectId, filemarkCount, usedBytes } = this.durableHeader;
    if ((await this.file.stat()).size > usedBytes) await this.file.truncate(usedBytes);
    await this.db.level.clear(this.keys.objectsFrom(eodObjectId));
    await this.db.level.clear(this.keys.filemarksFrom(filemarkCount));
  }

  // --- positioning -----------------------------------------------------------------------------

  private async moveTo(objectId: number): Promise<void> {
    if (objectId >= this.header.eodObjectId) {
      this.objectId = this.header.eodObjectId;
      this.fileNumber = this.header.filemarkCount;
      this.bytesBefore = this.header.usedBytes;
    } else if (objectId <= 0) {
      this.objectId = 0;
      this.fileNumber = 0;
      this.bytesBefore = 0;
    } else {
      const entry = await this.getObject(objectId);
      this.objectId = objectId;
      this.fileNumber = entry.fileNumber;
      this.bytesBefore = entry.bytesBefore;
    }
  }

  /** An object's entry and, for a record, its bytes (null for a filemark). */
  private async fetchObject(objectId: number): Promise<{ entry: ObjectEntry; data: Buffer | null }> {
    const entry = await this.getObject(objectId);
    if (entry.lengthBytes === 0) return { entry, data: null };
    return { entry, data: await this.readFile(entry.bytesBefore, entry.lengthBytes) };
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

  private serial<T>(step: () => T | Promise<T>): Promise<T> {
    const run = this.tail.then(() => {
      if (this.closed) throw new TapeStoreError('TAPE_IO', `tape ${this.barcode} is closed`);
      return step();
    });
    this.tail = run.catch(() => undefined);
    return run;
  }
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
