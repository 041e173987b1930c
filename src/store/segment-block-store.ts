// A volume's blocks: data in the volume's append-only segment log (segment-log.ts), the block map
// in Level (block-map.ts), docs/storage-engine.md "Segment store".
//
// WRITE: the data is appended to the log as one record (one pwritev); once it and every earlier
// record are written, the map points at it and the write is acknowledged. With the write cache on
// (SBC-3 6.4.5 WCE=1, the default) that is GOOD: the kernel has the bytes, so a crash of the
// process loses nothing. FUA, WCE=0 and SYNCHRONIZE CACHE add a group-committed fdatasync of the
// log before GOOD: a power cut loses nothing flushed. Level is written only by checkpoints (map
// pages, upload queue entries, object states and the replay marker in one synced batch, after the
// log is synced up to the marker), so after any crash: Level as of the last checkpoint + replay of
// the log from its marker = every acknowledged write (process crash) / every flushed one (power).
//
// A write that cannot be stored (file system full or below the reserve the index needs, EIO) is
// refused with CHECK CONDITION — DATA PROTECT / SPACE ALLOCATION FAILED WRITE PROTECT (SBC-3
// 4.7.3.6) for space, MEDIUM ERROR / WRITE ERROR for I/O — the log is cut back to before it, and
// nothing acknowledged is touched (StoreHealth reports the episode).
//
// Upload (storage-engine.ts): a WRITE or UNMAP dirties its 1 MiB object chunks in the upload queue
// when it is applied; the uploader reads a chunk with `readObjectChunk` (one pread per run, from
// the segments) and `markUploaded` records it through a checkpoint. Cached volumes keep only some
// chunks: an evicted chunk's map page is empty and its content is fetched back into the log (a
// FILL record) before use. The cleaner (`clean`, docs/storage-engine.md "Cleaning") moves live data out of mostly dead
// segments so their space comes back.

import { join } from 'node:path';
import { z } from 'zod';
import type { BlockBackend, WriteOptions } from '../../iscsi/device.js';
import { takeReadBuffer } from '../../iscsi/read-buffer-pool.js';
import { Sense, type SenseCode } from '../../iscsi/scsi/sense.js';
import { CloudError, isTransientCloudError } from '../cloud/cloud-error.js';
import { DEFAULT_RETRY_POLICY, withRetry } from '../cloud/retry.js';
import { BlockMap, type MapDelta } from './block-map.js';
import { captureVolume, isAllZeros } from './volume-capture.js';
import { upgradeLegacyBlocks } from './volume-upgrade.js';
import { ChunkRangeLocks } from './chunk-range-locks.js';
import type { Database } from './database.js';
import type { BatchOp } from './group-commit.js';
import { RECORD_HEADER_BYTES, RecordType } from './segment-record.js';
import { DEFAULT_SEGMENT_BYTES, SegmentLog, SegmentLogError, type AppendRequest, type LogRecord } from './segment-log.js';
import { getSetting, putSetting } from './settings-catalog.js';
import type { SpaceGuard } from './space-guard.js';
import {
  OBJECT_CHUNK_SIZE_BYTES,
  chunkObjectKey,
  sha256,
  stateOp,
  type EngineVolume,
  type ObjectChunkCapture,
  type ObjectChunkState,
  type StorageEngine,
} from './storage-engine.js';
import { nodeStoreFileSystem, type StoreFileSystem } from './store-file.js';
import { StoreError } from './store-error.js';
import type { StoreHealth } from './store-health.js';
import { putVolume, type VolumeRecord } from './volume-catalog.js';
import { VOLUME_FORMAT, deleteVolumeCheckpointOp, readVolumeCheckpoint, volumeCheckpointOp } from './volume-checkpoint.js';

/** What every volume store of a gateway shares (main.ts builds one, passed explicitly). */
export interface VolumeStoreContext {
  db: Database;
  /** Where volume logs live: <dataDir>/volumes/<volumeId>/segments/. */
  volumesDir: string;
  engine?: StorageEngine | null;
  fs?: StoreFileSystem;
  space?: SpaceGuard | null;
  health?: StoreHealth | null;
  segmentBytes?: number;
  /** A checkpoint is taken at least this often while anything changed (default 2 s). */
  checkpointIntervalMs?: number;
  log?: { info(message: string, fields?: Record<string, unknown>): void; warn(message: string, fields?: Record<string, unknown>): void };
}

/** Replay after a crash reads at most about this much of the log: a checkpoint starts beyond it. */
const CHECKPOINT_EVERY_BYTES = 64 * 1024 * 1024;
const CHECKPOINT_EVERY_DIRTY_PAGES = 4096;
/** Sequential reads of a cached volume fetch this many following object chunks ahead. */
const READ_AHEAD_OBJECT_CHUNKS = 2;

/** A write the store refused; `sense` is what the SCSI layer reports (dispatcher: errors carrying
 *  sense become CHECK CONDITION). */
export class VolumeWriteError extends StoreError {
  readonly sense: SenseCode;

  constructor(cause: SegmentLogError | StoreError, sense: SenseCode) {
    super(cause.code, cause.message, { cause });
    this.sense = sense;
  }
}

/** A read the store cannot answer with good data: a fetched chunk object that fails its checks
 *  (tampered, truncated, swapped, or the wrong key) → MEDIUM ERROR, UNRECOVERED READ ERROR
 *  (SBC-3 4.18, 03/11/00). */
export class VolumeReadError extends StoreError {
  readonly sense: SenseCode = Sense.UNRECOVERED_READ_ERROR;
}

export function volumeDir(volumesDir: string, volumeId: number): string {
  return join(volumesDir, String(volumeId));
}

interface Piece {
  bufferOffset: number;
  logOffset: number;
  bytes: number;
}

export class SegmentBlockStore implements BlockBackend, EngineVolume {
  readonly blockSize: number;
  readonly serial: string;
  readonly naaId: string;
  private record: VolumeRecord;
  private readonly ctx: VolumeStoreContext;
  private readonly db: Database;
  private readonly engine: StorageEngine | null;
  private readonly log: SegmentLog;
  private readonly map: BlockMap;
  private readonly blocksPerPage: number;
  private readonly states: Map<number, ObjectChunkState>;
  private readonly cached: boolean;
  private readonly lazy: boolean;
  private readonly locks = new ChunkRangeLocks();
  private readonly pins = new Map<number, number>();
  private nextSequentialObjectChunk = -1;
  /** Live bytes per segment start. */
  private readonly liveBytes = new Map<number, number>();
  private writeCache: boolean;
  private touchedQueue = new Set<number>();
  private touchedStates = new Set<number>();
  private checkpointDirty = false;
  private bytesSinceCheckpoint = 0;
  private checkpointRunning: Promise<void> | null = null;
  private checkpointNext: Promise<void> | null = null;
  private checkpointTimer: NodeJS.Timeout | null = null;
  private capturesOpen = 0;
  private closed = false;
  private crashed = false;
  private cleaning: Promise<void> | null = null;
  private readonly uncleanable = new Set<number>();
  /** Bytes initiators wrote (write amplification = bytes appended to the log / these). */
  clientWrittenBytes = 0;
  /** Bytes the cleaner moved. */
  relocatedBytes = 0;

  private constructor(ctx: VolumeStoreContext, record: VolumeRecord, log: SegmentLog, writeCache: boolean) {
    this.ctx = ctx;
    this.db = ctx.db;
    this.record = { ...record };
    this.blockSize = record.blockSize;
    this.serial = record.serial;
    this.naaId = record.naaId;
    if (OBJECT_CHUNK_SIZE_BYTES % record.blockSize !== 0) {
      throw new StoreError('STORE_CORRUPT', `volume ${record.name}: the block size does not divide the object chunk size`);
    }
    this.blocksPerPage = OBJECT_CHUNK_SIZE_BYTES / record.blockSize;
    this.engine = ctx.engine ?? null;
    this.log = log;
    this.map = new BlockMap(ctx.db, record.id, record.blockSize, this.blocksPerPage);
    this.cached = this.engine !== null && record.type === 'cached';
    this.states = this.engine?.statesOf(record.id) ?? new Map();
    this.lazy = this.cached || (this.engine !== null && [...this.states.values()].some((s) => !s.resident));
    this.writeCache = writeCache;
  }

  /** Opens a volume's store: replays its log from the last checkpoint, upgrades a data directory
   *  of the older format (blocks in Level) in place. `writeCache` given = the configuration's WCE. */
  static async open(ctx: VolumeStoreContext, record: VolumeRecord, opts: { writeCache?: boolean } = {}): Promise<SegmentBlockStore> {
    const fs = ctx.fs ?? nodeStoreFileSystem;
    const checkpoint = await readVolumeCheckpoint(ctx.db, record.id);
    const log = await SegmentLog.open({
      fs,
      dir: join(volumeDir(ctx.volumesDir, record.id), 'segments'),
      volumeId: record.id,
      blockSize: record.blockSize,
      ...(ctx.segmentBytes !== undefined ? { segmentBytes: ctx.segmentBytes } : {}),
    });
    const store = new SegmentBlockStore(ctx, record, log, opts.writeCache ?? checkpoint?.writeCache ?? true);
    for (const [start, bytes] of checkpoint?.liveBytes ?? []) store.liveBytes.set(start, bytes);
    let replayed = 0;
    await log.replay(checkpoint?.marker ?? 0, async (rec, data) => {
      replayed++;
      await store.prepareReplay(rec);
      store.apply(rec, data !== null ? data.length : 0);
      store.map.unpin(...store.pageRange(rec.header.lba, rec.header.blockCount));
    });
    store.engine?.attach(store);
    if (store.cached && store.engine !== null) {
      for (const [objectChunkIndex, state] of store.states) if (state.resident) store.engine.cache.touch(store, objectChunkIndex);
    }
    const upgraded = await upgradeLegacyBlocks(ctx.db, record, store.blockCount(), {
      fill: async (lba, blockCount, data) => {
        await store.append({ type: RecordType.FILL, lba, blockCount, data });
      },
      checkpoint: () => store.persist(),
      ...(ctx.log !== undefined ? { log: ctx.log } : {}),
    });
    if (replayed > 0 || upgraded > 0 || checkpoint === undefined || (opts.writeCache !== undefined && opts.writeCache !== checkpoint.writeCache)) {
      await store.persist();
    }
    if (replayed > 0) ctx.log?.info('volume log replayed', { volume: record.name, records: replayed });
    return store;
  }

  get volumeId(): number {
    return this.record.id;
  }

  get volume(): Readonly<VolumeRecord> {
    return this.record;
  }

  blockCount(): number {
    return Math.floor(this.record.sizeBytes / this.blockSize);
  }

  writeCacheEnabled(): boolean {
    return this.writeCache;
  }

  /** SBC-3 6.4.5: turning the cache off flushes it first; the setting is saved with a checkpoint. */
  async setWriteCacheEnabled(enabled: boolean): Promise<void> {
    if (!enabled) await this.flush();
    if (this.writeCache === enabled) return;
    this.writeCache = enabled;
    await this.persist();
  }

  /** Grows the volume (durably, in the catalog). Shrinking would lose data and is refused. */
  async grow(sizeBytes: number): Promise<void> {
    if (sizeBytes < this.record.sizeBytes) {
      throw new StoreError(
        'STORE_SHRINK_REFUSED',
        `volume ${this.record.name} is ${this.record.sizeBytes} bytes; shrinking to ${sizeBytes} bytes is not supported`,
      );
    }
    if (sizeBytes === this.record.sizeBytes) return;
    const next = { ...this.record, sizeBytes };
    await putVolume(this.db, next);
    this.record = next;
  }

  /** Space and write-amplification counters (bench/write-amplification.ts, tests). */
  stats(): { logBytes: number; liveBytes: number; segments: number; appendedBytes: number; clientWrittenBytes: number; relocatedBytes: number } {
    const segments = this.log.segmentList();
    let live = 0;
    for (const bytes of this.liveBytes.values()) live += bytes;
    return {
      logBytes: segments.reduce((sum, s) => sum + s.sizeBytes, 0),
      liveBytes: live,
      segments: segments.length,
      appendedBytes: this.log.appendedBytes,
      clientWrittenBytes: this.clientWrittenBytes,
      relocatedBytes: this.relocatedBytes,
    };
  }

  // ---- reads ----

  async read(lba: number, blockCount: number): Promise<Buffer> {
    this.checkRange(lba, blockCount);
    if (this.engine !== null) this.engine.lastForegroundIoMs = Date.now();
    if (!this.lazy || blockCount === 0) return this.readLocal(lba, blockCount);
    const [firstObject, endObject] = this.pageRange(lba, blockCount);
    const objectChunks = range(firstObject, endObject);
    this.pin(objectChunks);
    try {
      const missing = objectChunks.filter((c) => !this.isResident(c));
      const cache = this.engine!.cache;
      if (missing.length === 0) {
        if (this.cached) cache.hits++;
      } else {
        await this.withObjectChunkLocks(missing[0]!, missing[missing.length - 1]! + 1, () => this.faultIn(missing));
      }
      if (this.cached) for (const c of objectChunks) if (this.states.has(c)) cache.touch(this, c);
      if (firstObject === this.nextSequentialObjectChunk || firstObject === this.nextSequentialObjectChunk - 1) this.readAhead(endObject);
      this.nextSequentialObjectChunk = endObject;
      return await this.readLocal(lba, blockCount);
    } finally {
      this.unpin(objectChunks);
    }
  }

  /** Reads from the log: one pread per run (adjacent runs on the log are one), straight into the
   *  buffer that goes to the initiator; unmapped blocks are zeros. */
  private async readLocal(lba: number, blockCount: number): Promise<Buffer> {
    const out = takeReadBuffer(blockCount * this.blockSize);
    if (blockCount === 0) return out;
    const [firstPage, endPage] = this.pageRange(lba, blockCount);
    await this.map.loadAndPin(firstPage, endPage);
    let pieces: Piece[];
    try {
      pieces = this.piecesOf(lba, blockCount, out);
    } finally {
      this.map.unpin(firstPage, endPage);
    }
    // Every pread is issued in this tick: the log counts them as readers of their segments before
    // the cleaner could delete one (segment-log.ts deleteSegment).
    await Promise.all(pieces.map((p) => this.log.read(out, p.bufferOffset, p.bytes, p.logOffset)));
    return out;
  }

  /** The mapped pieces of [lba, lba + blockCount) (pages loaded); zero-fills the holes of `out`. */
  private piecesOf(lba: number, blockCount: number, out: Buffer): Piece[] {
    const pieces: Piece[] = [];
    const bs = this.blockSize;
    let cursor = lba;
    const hole = (to: number): void => {
      if (to > cursor) out.fill(0, (cursor - lba) * bs, (to - lba) * bs);
    };
    this.forEachMapped(lba, blockCount, (from, to, logOffset) => {
      hole(from);
      const bufferOffset = (from - lba) * bs;
      const bytes = (to - from) * bs;
      const last = pieces[pieces.length - 1];
      if (last !== undefined && last.bufferOffset + last.bytes === bufferOffset && last.logOffset + last.bytes === logOffset) last.bytes += bytes;
      else pieces.push({ bufferOffset, logOffset, bytes });
      cursor = to;
    });
    hole(lba + blockCount);
    return pieces;
  }

  /** Calls `visit` for each mapped stretch [from, to) of [lba, lba + blockCount), in LBA order,
   *  with the log offset of block `from` (pages loaded). */
  private forEachMapped(lba: number, blockCount: number, visit: (from: number, to: number, logOffset: number) => void): void {
    const endLba = lba + blockCount;
    for (let page = Math.floor(lba / this.blocksPerPage); page * this.blocksPerPage < endLba; page++) {
      const pageLba = page * this.blocksPerPage;
      for (const run of this.map.runs(page)) {
        const from = Math.max(lba, pageLba + run.startBlock);
        const to = Math.min(endLba, pageLba + run.startBlock + run.blockCount);
        if (to > from) visit(from, to, run.logOffset + (from - pageLba - run.startBlock) * this.blockSize);
      }
    }
  }

  // ---- writes ----

  async write(lba: number, data: Buffer, opts: WriteOptions = {}): Promise<void> {
    if (data.length % this.blockSize !== 0) {
      throw new RangeError(`write of ${data.length} bytes is not a multiple of the ${this.blockSize}-byte block size`);
    }
    const blockCount = data.length / this.blockSize;
    this.checkRange(lba, blockCount);
    if (blockCount === 0) return;
    if (this.engine !== null) this.engine.lastForegroundIoMs = Date.now();
    await this.holdForUploadBuffer(lba, blockCount);
    const record = await this.appendUnderLocks({ type: RecordType.WRITE, lba, blockCount, data });
    this.clientWrittenBytes += data.length;
    if (opts.fua === true || !this.writeCache) await this.syncTo(record.end);
  }

  async unmap(lba: number, blockCount: number, opts: WriteOptions = {}): Promise<void> {
    this.checkRange(lba, blockCount);
    if (blockCount === 0) return;
    const record = await this.appendUnderLocks({ type: RecordType.UNMAP, lba, blockCount, data: null });
    if (opts.fua === true || !this.writeCache) await this.syncTo(record.end);
  }

  /** SYNCHRONIZE CACHE: every acknowledged write is on stable storage. */
  async flush(): Promise<void> {
    await this.syncTo(this.log.appliedEnd);
  }

  private async syncTo(offset: number): Promise<void> {
    try {
      await this.log.syncTo(offset);
    } catch (err) {
      throw this.refused(err);
    }
  }

  /** Appends a WRITE or UNMAP: checks space, fetches evicted chunks it only partly covers (cached
   *  volumes, under their locks), loads and pins the map pages, appends and applies. */
  private async appendUnderLocks(req: AppendRequest): Promise<LogRecord> {
    const [firstObject, endObject] = this.pageRange(req.lba, req.blockCount);
    const release = this.lazy ? await this.locks.acquire(firstObject, endObject) : null;
    try {
      if (this.lazy) {
        const partial = range(firstObject, endObject).filter((c) => !this.isResident(c) && !this.covers(req.lba, req.blockCount, c));
        if (partial.length > 0) await this.faultIn(partial);
      }
      return await this.append(req);
    } finally {
      release?.();
    }
  }

  /** Appends one record with its pages pinned; maps log failures to the sense they report. */
  private async append(req: AppendRequest): Promise<LogRecord> {
    const bytes = (req.data?.length ?? 0) + RECORD_HEADER_BYTES;
    const space = this.ctx.space;
    if (space != null && req.data !== null && !(await space.reserve(bytes))) {
      throw this.refused(new SegmentLogError('no-space', `the file system of ${space.path} is full (below the reserve the index needs)`));
    }
    const [firstPage, endPage] = this.pageRange(req.lba, req.blockCount);
    const pinned = req.type === RecordType.UNMAP ? await this.pinMappedPages(firstPage, endPage) : (await this.map.loadAndPin(firstPage, endPage), null);
    let record: LogRecord;
    try {
      record = await this.log.append(req, (rec) => this.apply(rec, req.data?.length ?? 0));
    } catch (err) {
      throw this.refused(err);
    } finally {
      if (pinned === null) this.map.unpin(firstPage, endPage);
      else for (const p of pinned) this.map.unpin(p, p + 1);
    }
    this.ctx.health?.recover(this.component);
    return record;
  }

  private get component(): string {
    return `volume ${this.record.name}`;
  }

  private refused(err: unknown): Error {
    if (err instanceof VolumeWriteError) return err;
    if (err instanceof SegmentLogError) {
      const kind = err.kind === 'no-space' ? 'disk-full' : 'io-error';
      const advice = err.kind === 'no-space' ? 'free space in the data directory; writes resume by themselves' : 'check the disk; the gateway keeps serving reads';
      this.ctx.health?.degrade(this.component, kind, `${err.message}: writes are refused until ${advice}`);
      return new VolumeWriteError(err, err.kind === 'no-space' ? Sense.SPACE_ALLOCATION_FAILED_WRITE_PROTECT : Sense.WRITE_ERROR);
    }
    return err instanceof Error ? err : new Error(String(err));
  }

  /** UNMAP touches only pages that hold runs: a whole-volume UNMAP costs what was written. */
  private async pinMappedPages(firstPage: number, endPage: number): Promise<number[]> {
    const pages = await this.map.mappedPages(firstPage, endPage);
    for (const p of pages) await this.map.loadAndPin(p, p + 1);
    return pages;
  }

  /** Replay: loads what `apply` needs for a record (its pages; for UNMAP the mapped ones). */
  private async prepareReplay(rec: LogRecord): Promise<void> {
    const [firstPage, endPage] = this.pageRange(rec.header.lba, rec.header.blockCount);
    if (rec.header.type === RecordType.UNMAP) {
      const pages = await this.map.mappedPages(firstPage, endPage);
      for (const p of pages) await this.map.load(p, p + 1);
    }
    await this.map.loadAndPin(firstPage, endPage);
  }

  /** Makes a written record visible, in log order (synchronous: its pages are loaded). */
  private apply(rec: LogRecord, dataBytes: number): void {
    const { type, lba, blockCount } = rec.header;
    const delta: MapDelta = { removed: [], added: [] };
    const [firstObject, endObject] = this.pageRange(lba, blockCount);
    switch (type) {
      case RecordType.WRITE:
      case RecordType.FILL: {
        this.map.assign(lba, blockCount, rec.dataOffset, delta);
        for (let c = firstObject; c < endObject; c++) {
          const state = this.states.get(c);
          if (state !== undefined && !state.resident && (type === RecordType.FILL || this.covers(lba, blockCount, c))) {
            this.states.set(c, { ...state, resident: true });
            this.touchedStates.add(c);
          }
          if (type === RecordType.WRITE) this.markDirty(c);
        }
        break;
      }
      case RecordType.UNMAP: {
        const changed = this.map.clear(lba, blockCount, delta);
        for (let c = firstObject; c < endObject; c++) {
          const state = this.states.get(c);
          if (state !== undefined && !state.resident && this.covers(lba, blockCount, c)) {
            this.states.set(c, { ...state, resident: true });
            this.touchedStates.add(c);
            this.markDirty(c);
          }
        }
        for (const c of changed) this.markDirty(c);
        break;
      }
      case RecordType.RELOCATE:
        this.map.relocate(lba, blockCount, rec.header.sourceOffset, rec.dataOffset, delta);
        this.relocatedBytes += dataBytes;
        break;
    }
    for (const r of delta.removed) this.addLive(r.logOffset, -r.bytes);
    for (const a of delta.added) this.addLive(a.logOffset, a.bytes);
    this.noteChange(rec.end - rec.offset);
  }

  private markDirty(objectChunkIndex: number): void {
    const engine = this.engine;
    if (engine === null) return;
    engine.queue.markDirty(this.record.id, objectChunkIndex);
    this.touchedQueue.add(objectChunkIndex);
    if (this.cached) engine.cache.touch(this, objectChunkIndex);
  }

  private addLive(logOffset: number, bytes: number): void {
    const start = this.log.segmentStartOf(logOffset);
    if (start === undefined) return;
    const next = (this.liveBytes.get(start) ?? 0) + bytes;
    if (next <= 0) this.liveBytes.delete(start);
    else this.liveBytes.set(start, next);
  }

  private covers(lba: number, blockCount: number, objectChunkIndex: number): boolean {
    const first = objectChunkIndex * this.blocksPerPage;
    const end = Math.min(first + this.blocksPerPage, this.blockCount());
    return lba <= first && lba + blockCount >= end;
  }

  // ---- checkpoints ----

  private noteChange(bytes: number): void {
    this.checkpointDirty = true;
    this.bytesSinceCheckpoint += bytes;
    if (this.bytesSinceCheckpoint >= CHECKPOINT_EVERY_BYTES || this.map.dirtyPageCount >= CHECKPOINT_EVERY_DIRTY_PAGES) {
      if (this.checkpointRunning === null) this.checkpoint().catch(() => undefined);
    } else if (this.checkpointTimer === null && !this.closed) {
      this.checkpointTimer = setTimeout(() => {
        this.checkpointTimer = null;
        this.checkpoint().catch(() => undefined);
      }, this.ctx.checkpointIntervalMs ?? 2000);
      this.checkpointTimer.unref();
    }
  }

  /** A checkpoint that runs even when nothing was applied since the last one (a state change
   *  outside the log: WCE, an upload recorded, an eviction). */
  private persist(): Promise<void> {
    this.checkpointDirty = true;
    return this.checkpoint();
  }

  /** Writes everything changed so far to Level (after syncing the log up to the marker it records).
   *  Calls made while one runs share the next one. */
  checkpoint(): Promise<void> {
    if (this.checkpointRunning === null) {
      this.checkpointRunning = this.runCheckpoint().finally(() => {
        this.checkpointRunning = null;
      });
      return this.checkpointRunning;
    }
    this.checkpointNext ??= this.checkpointRunning
      .catch(() => undefined)
      .then(() => {
        this.checkpointNext = null;
        return this.checkpoint();
      });
    return this.checkpointNext;
  }

  private async runCheckpoint(): Promise<void> {
    if (!this.checkpointDirty || this.crashed) return;
    // A full disk: the log holds everything; the index waits rather than risk a torn Level log.
    if (this.ctx.space?.critical() === true) {
      await this.ctx.space.refresh();
      if (this.ctx.space.critical()) throw new StoreError('STORE_NO_SPACE', `volume ${this.record.name}: checkpoint postponed, the disk is full`, { transient: true });
    }
    this.checkpointDirty = false;
    const marker = this.log.appliedEnd;
    const bytesCovered = this.bytesSinceCheckpoint;
    this.bytesSinceCheckpoint = 0;
    const taken = this.map.takeDirty();
    const queueTouched = this.touchedQueue;
    const statesTouched = this.touchedStates;
    this.touchedQueue = new Set();
    this.touchedStates = new Set();
    const ops: BatchOp[] = [...taken.ops];
    if (this.engine !== null) for (const c of queueTouched) ops.push(this.engine.queue.entryOp(this.record.id, c));
    for (const c of statesTouched) ops.push(stateOp(this.record.id, c, this.states.get(c) ?? null));
    const liveAtMarker = [...this.liveBytes].sort((a, b) => a[0] - b[0]);
    ops.push(volumeCheckpointOp(this.record.id, { format: VOLUME_FORMAT, marker, liveBytes: liveAtMarker, writeCache: this.writeCache }));
    try {
      await this.log.syncTo(marker);
      if (this.crashed) throw new StoreError('STORE_CLOSED', `volume ${this.record.name}: stopped`);
      await this.db.groupCommit.commit(ops);
    } catch (err) {
      taken.failed();
      for (const c of queueTouched) this.touchedQueue.add(c);
      for (const c of statesTouched) this.touchedStates.add(c);
      this.checkpointDirty = true;
      this.bytesSinceCheckpoint += bytesCovered;
      throw err;
    }
    taken.written();
    if (!this.crashed) await this.reclaim(marker, new Set(liveAtMarker.map(([start]) => start)));
  }

  /** Deletes segments no map entry refers to — neither now nor in the map Level holds (as of the
   *  checkpoint at `marker`, whose live segments are `liveAtMarker`: a write that dropped the last
   *  reference after that checkpoint may be lost in a power cut, and the old reference with it) —
   *  and that replay never reads again; starts the cleaner when dead space dominates. */
  private async reclaim(marker: number, liveAtMarker: ReadonlySet<number>): Promise<void> {
    if (this.capturesOpen > 0) return;
    const active = this.log.activeSegmentStart();
    let freed = 0;
    for (const segment of this.log.segmentList()) {
      if (segment.start === active || segment.start + segment.sizeBytes > marker) continue;
      if ((this.liveBytes.get(segment.start) ?? 0) > 0 || liveAtMarker.has(segment.start)) continue;
      freed += await this.log.deleteSegment(segment.start);
    }
    if (freed > 0) this.ctx.space?.released();
    this.maybeClean();
  }

  /** Cleaning (docs/storage-engine.md "Cleaning"): when the log holds more than twice the live
   *  data, the emptiest closed segment's live data is moved to the end of the log. Bounded write
   *  amplification: a segment is cleaned only when at most half of it is live. */
  private maybeClean(): void {
    if (this.cleaning !== null || this.closed) return;
    const victim = this.cleaningVictim();
    if (victim === undefined) return;
    this.cleaning = this.clean(victim).then(
      () => {
        this.cleaning = null;
        // A segment still there after its cleaning (its live bytes could not all be found in its
        // records) is not picked again; otherwise go on with the next one.
        if (this.log.segmentList().some((s) => s.start === victim)) this.uncleanable.add(victim);
        else this.maybeClean();
      },
      (err: unknown) => {
        this.cleaning = null;
        this.ctx.log?.warn('segment cleaning failed; retried after the next checkpoint', { volume: this.record.name, err: String(err) });
      },
    );
  }

  private cleaningVictim(): number | undefined {
    const active = this.log.activeSegmentStart();
    let best: { start: number; ratio: number } | undefined;
    let total = 0;
    let live = 0;
    for (const segment of this.log.segmentList()) {
      total += segment.sizeBytes;
      const segmentLive = this.liveBytes.get(segment.start) ?? 0;
      live += segmentLive;
      if (segment.start === active || segment.sizeBytes === 0 || this.uncleanable.has(segment.start)) continue;
      const ratio = segmentLive / segment.sizeBytes;
      if (ratio <= 0.5 && (best === undefined || ratio < best.ratio)) best = { start: segment.start, ratio };
    }
    if (best === undefined || total < 2 * live || total < 2 * (this.ctx.segmentBytes ?? DEFAULT_SEGMENT_BYTES)) return undefined;
    return best.start;
  }

  /** Moves the live data of one segment to the end of the log (RELOCATE records). */
  private async clean(segmentStart: number): Promise<void> {
    for await (const rec of this.log.records(segmentStart)) {
      if (this.closed) return;
      const { type, lba, blockCount } = rec.header;
      if (type === RecordType.UNMAP) continue;
      const [firstPage, endPage] = this.pageRange(lba, blockCount);
      await this.map.loadAndPin(firstPage, endPage);
      let live: Array<{ lba: number; blockCount: number; logOffset: number }>;
      try {
        live = this.liveRunsOf(lba, blockCount, rec.dataOffset);
      } finally {
        this.map.unpin(firstPage, endPage);
      }
      for (const piece of live) {
        const data = Buffer.allocUnsafe(piece.blockCount * this.blockSize);
        await this.log.read(data, 0, data.length, piece.logOffset);
        await this.append({ type: RecordType.RELOCATE, lba: piece.lba, blockCount: piece.blockCount, data, sourceOffset: piece.logOffset });
      }
    }
    await this.persist();
  }

  /** Pieces of [lba, +blockCount) whose map still points into the record whose data is at
   *  `dataOffset`. */
  private liveRunsOf(lba: number, blockCount: number, dataOffset: number): Array<{ lba: number; blockCount: number; logOffset: number }> {
    const out: Array<{ lba: number; blockCount: number; logOffset: number }> = [];
    this.forEachMapped(lba, blockCount, (from, to, logOffset) => {
      if (logOffset === dataOffset + (from - lba) * this.blockSize) out.push({ lba: from, blockCount: to - from, logOffset });
    });
    return out;
  }

  // ---- mapping status ----

  async mapStatus(lba: number, blockCount: number): Promise<Array<{ lba: number; blockCount: number; mapped: boolean }>> {
    this.checkRange(lba, blockCount);
    const runs: Array<{ lba: number; blockCount: number; mapped: boolean }> = [];
    if (blockCount === 0) return runs;
    const endLba = lba + blockCount;
    const push = (from: number, to: number, mapped: boolean): void => {
      from = Math.max(from, lba);
      to = Math.min(to, endLba);
      if (to <= from) return;
      const previous = runs[runs.length - 1];
      if (previous !== undefined && previous.mapped === mapped && previous.lba + previous.blockCount === from) previous.blockCount += to - from;
      else runs.push({ lba: from, blockCount: to - from, mapped });
    };
    const [firstPage, endPage] = this.pageRange(lba, blockCount);
    const pages = new Set(await this.map.mappedPages(firstPage, endPage));
    // Cached volume: an evicted chunk is mapped (its data is in the object store) — GET LBA STATUS
    // must not tell an LBPRZ initiator that it reads as zeros.
    const evicted = new Set<number>();
    if (this.lazy) for (const [c, state] of this.states) if (!state.resident && c >= firstPage && c < endPage) evicted.add(c);
    let cursor = lba;
    for (const page of [...new Set([...pages, ...evicted])].sort((a, b) => a - b)) {
      const pageLba = page * this.blocksPerPage;
      if (evicted.has(page)) {
        push(cursor, pageLba, false);
        push(pageLba, pageLba + this.blocksPerPage, true);
        cursor = Math.max(cursor, pageLba + this.blocksPerPage);
        continue;
      }
      await this.map.load(page, page + 1);
      for (const run of this.map.peek(page) ?? []) {
        const from = pageLba + run.startBlock;
        push(cursor, from, false);
        push(from, from + run.blockCount, true);
        cursor = Math.max(cursor, from + run.blockCount);
      }
    }
    push(cursor, endLba, false);
    return runs;
  }

  // ---- upload pipeline (EngineVolume) ----

  async readObjectChunk(objectChunkIndex: number): Promise<{ sequence: number | undefined; data: Buffer | null }> {
    const sequence = this.engine?.queue.sequenceOf(this.record.id, objectChunkIndex);
    if (sequence === undefined) return { sequence, data: null };
    const firstLba = objectChunkIndex * this.blocksPerPage;
    const blockCount = Math.min(this.blocksPerPage, this.blockCount() - firstLba);
    if (blockCount <= 0) return { sequence, data: null };
    const data = await this.readLocal(firstLba, blockCount);
    return { sequence, data: isAllZeros(data) ? null : data };
  }

  /** Once per volume: queues object chunks that hold data but are neither dirty nor uploaded. */
  async adoptUntrackedChunks(): Promise<number> {
    const engine = this.engine;
    const marker = `upload-adopted-${this.record.id}`;
    if (engine === null || (await getSetting(this.db, marker, z.boolean())) === true) return 0;
    let adopted = 0;
    for (const page of await this.map.mappedPages(0, Math.ceil(this.blockCount() / this.blocksPerPage))) {
      if (this.states.has(page) || engine.queue.isDirty(this.record.id, page)) continue;
      this.markDirty(page);
      adopted++;
    }
    if (adopted > 0) {
      await this.persist();
    }
    await putSetting(this.db, marker, true);
    return adopted;
  }

  uploadedState(objectChunkIndex: number): ObjectChunkState | undefined {
    return this.states.get(objectChunkIndex);
  }

  async markUploaded(objectChunkIndex: number, sequence: number, chunkSha256: Buffer | null): Promise<boolean> {
    const engine = this.engine;
    if (engine === null) return false;
    if (engine.queue.markClean(this.record.id, objectChunkIndex, sequence) === null) return false;
    this.touchedQueue.add(objectChunkIndex);
    this.touchedStates.add(objectChunkIndex);
    if (chunkSha256 === null) {
      this.states.delete(objectChunkIndex);
      if (this.cached) engine.cache.forget(this.record.id, objectChunkIndex);
    } else {
      // Unchanged content restored from a snapshot stays in the snapshot's objects (not re-uploaded).
      const previous = this.states.get(objectChunkIndex);
      const state: ObjectChunkState = { sha256: chunkSha256, resident: true };
      if (previous?.sourceVolumeId !== undefined && previous.sha256.equals(chunkSha256)) {
        state.sourceVolumeId = previous.sourceVolumeId;
        if (previous.sourceGatewayId !== undefined) state.sourceGatewayId = previous.sourceGatewayId;
      }
      this.states.set(objectChunkIndex, state);
    }
    // The checkpoint syncs the log first: the uploaded content is durable locally before its queue
    // entry leaves Level.
    await this.persist();
    if (this.cached) engine.cache.scheduleEviction();
    return true;
  }

  uploadedChunks(): Array<[number, ObjectChunkState]> {
    return [...this.states].map(([index, state]): [number, ObjectChunkState] => [index, { ...state }]).sort((a, b) => a[0] - b[0]);
  }

  // ---- snapshots ----

  /** The volume's content at this instant (docs/storage-engine.md "Snapshots"): the map pages in
   *  memory, a Level iterator (LevelDB snapshots it when created) and the object states are taken
   *  synchronously in this call, so every write acknowledged before it is included and none
   *  started after it. Segments are not deleted while a capture is open. Yields each object chunk
   *  holding data, in index order: its bytes, or — for a chunk not resident locally — the SHA-256
   *  of its stored object and the volume owning it. All-zero chunks are skipped. */
  captureObjectChunks(): ObjectChunkCapture {
    const { pages, iterator } = this.map.capture();
    this.capturesOpen++;
    return captureVolume({
      volumeId: this.record.id,
      blockSize: this.blockSize,
      blocksPerPage: this.blocksPerPage,
      blockCount: this.blockCount(),
      pages,
      iterator,
      states: new Map(this.states),
      read: (into, intoOffset, lengthBytes, logOffset) => this.log.read(into, intoOffset, lengthBytes, logOffset),
      release: () => {
        this.capturesOpen--;
      },
    });
  }

  // ---- cached volumes ----

  /** Cached volume: drops a clean, unpinned, resident object chunk from the map (its log space is
   *  reclaimed by the cleaner), durably (a checkpoint). */
  async evictObjectChunk(objectChunkIndex: number): Promise<boolean> {
    const engine = this.engine;
    if (!this.cached || engine === null) return false;
    return this.withObjectChunkLocks(objectChunkIndex, objectChunkIndex + 1, async () => {
      const state = this.states.get(objectChunkIndex);
      if (state === undefined || !state.resident || (this.pins.get(objectChunkIndex) ?? 0) > 0) return false;
      if (engine.queue.isDirty(this.record.id, objectChunkIndex)) return false;
      await this.map.loadAndPin(objectChunkIndex, objectChunkIndex + 1);
      try {
        const delta: MapDelta = { removed: [], added: [] };
        this.map.dropPage(objectChunkIndex, delta);
        for (const r of delta.removed) this.addLive(r.logOffset, -r.bytes);
      } finally {
        this.map.unpin(objectChunkIndex, objectChunkIndex + 1);
      }
      this.states.set(objectChunkIndex, { ...state, resident: false });
      this.touchedStates.add(objectChunkIndex);
      await this.persist();
      return true;
    });
  }

  private isResident(objectChunkIndex: number): boolean {
    return this.states.get(objectChunkIndex)?.resident !== false;
  }

  /** Fetches evicted object chunks back into the log (FILL records). The caller holds their locks. */
  private async faultIn(objectChunks: number[]): Promise<void> {
    const engine = this.engine!;
    for (const objectChunkIndex of objectChunks) {
      const state = this.states.get(objectChunkIndex);
      if (state === undefined || state.resident) continue;
      let key = chunkObjectKey(state.sourceVolumeId ?? this.record.id, objectChunkIndex, state.sha256.toString('hex'));
      let data: Buffer;
      try {
        await engine.downloadLimiter?.acquire(OBJECT_CHUNK_SIZE_BYTES);
        ({ key, data } = await withRetry(DEFAULT_RETRY_POLICY, () => engine.getChunkObject(this.record.id, objectChunkIndex, state)));
      } catch (err) {
        if (err instanceof CloudError && (err.code === 'CLOUD_INTEGRITY' || err.code === 'CLOUD_KEY')) {
          throw new VolumeReadError('STORE_CORRUPT', `volume ${this.record.name}: ${err.message}`, { cause: err });
        }
        throw new StoreError('STORE_IO', `volume ${this.record.name}: fetching ${key} failed: ${String(err)}`, {
          transient: isTransientCloudError(err),
          cause: err,
        });
      }
      if (!sha256(data).equals(state.sha256)) {
        throw new VolumeReadError('STORE_CORRUPT', `volume ${this.record.name}: ${key} does not match its SHA-256`);
      }
      const firstLba = objectChunkIndex * this.blocksPerPage;
      const blockCount = Math.min(this.blocksPerPage, this.blockCount() - firstLba);
      const body = data.length === blockCount * this.blockSize ? data : Buffer.concat([data, Buffer.alloc(Math.max(0, blockCount * this.blockSize - data.length))]).subarray(0, blockCount * this.blockSize);
      await this.append({ type: RecordType.FILL, lba: firstLba, blockCount, data: body });
      if (this.cached) {
        engine.cache.misses++;
        engine.cache.touch(this, objectChunkIndex);
      }
    }
  }

  private readAhead(fromObjectChunk: number): void {
    const endObject = Math.ceil(this.blockCount() / this.blocksPerPage);
    const ahead = range(fromObjectChunk, Math.min(endObject, fromObjectChunk + READ_AHEAD_OBJECT_CHUNKS)).filter((c) => !this.isResident(c));
    if (ahead.length === 0) return;
    this.withObjectChunkLocks(ahead[0]!, ahead[ahead.length - 1]! + 1, () => this.faultIn(ahead)).catch(() => {
      // Read-ahead is a hint: the read that needs the chunk fetches it again and reports errors.
    });
  }

  private async withObjectChunkLocks<T>(firstObject: number, endObject: number, body: () => Promise<T>): Promise<T> {
    const release = await this.locks.acquire(firstObject, endObject);
    try {
      return await body();
    } finally {
      release();
    }
  }

  private pin(objectChunks: number[]): void {
    for (const c of objectChunks) this.pins.set(c, (this.pins.get(c) ?? 0) + 1);
  }

  private unpin(objectChunks: number[]): void {
    for (const c of objectChunks) {
      const count = (this.pins.get(c) ?? 1) - 1;
      if (count === 0) this.pins.delete(c);
      else this.pins.set(c, count);
    }
  }

  /** Back-pressure: a write that would dirty a new object chunk waits while the buffer is full. */
  private async holdForUploadBuffer(lba: number, blockCount: number): Promise<void> {
    const queue = this.engine?.queue;
    if (queue === undefined || !queue.isFull()) return;
    const [first, end] = this.pageRange(lba, blockCount);
    let growsBacklog = false;
    for (let c = first; c < end; c++) if (!queue.isDirty(this.record.id, c)) growsBacklog = true;
    if (!growsBacklog) return;
    if (!(await queue.waitForRoom(this.engine!.bufferHoldMs))) {
      throw new StoreError(
        'STORE_BUFFER_FULL',
        `volume ${this.record.name}: the upload buffer (${queue.limitBytes} bytes) is full; the write can be retried`,
        { transient: true },
      );
    }
  }

  /** [first, end) map pages (= object chunks) of a block range. */
  private pageRange(lba: number, blockCount: number): [number, number] {
    return [Math.floor(lba / this.blocksPerPage), Math.floor((lba + Math.max(blockCount, 1) - 1) / this.blocksPerPage) + 1];
  }

  private checkRange(lba: number, blockCount: number): void {
    if (!Number.isSafeInteger(lba) || !Number.isSafeInteger(blockCount) || lba < 0 || blockCount < 0) {
      throw new StoreError('STORE_OUT_OF_RANGE', `invalid block range ${lba}+${blockCount}`);
    }
    if (lba + blockCount > this.blockCount()) {
      throw new StoreError(
        'STORE_OUT_OF_RANGE',
        `blocks ${lba}..${lba + blockCount - 1} are beyond the end of volume ${this.record.name} (${this.blockCount()} blocks)`,
      );
    }
  }

  /** Final checkpoint; closes the log (the gateway's shutdown, a deleted volume). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.checkpointTimer !== null) clearTimeout(this.checkpointTimer);
    if (this.cleaning !== null) await this.cleaning;
    await this.persist().catch((err: unknown) => this.ctx.log?.warn('final checkpoint failed; the log is replayed at the next start', { volume: this.record.name, err: String(err) }));
    await this.log.close();
  }

  /** A deleted volume: closes the log, then removes its segments, map pages and checkpoint. */
  async destroy(): Promise<void> {
    this.closed = true;
    if (this.checkpointTimer !== null) clearTimeout(this.checkpointTimer);
    if (this.cleaning !== null) await this.cleaning;
    while (this.checkpointRunning !== null) await this.checkpointRunning.catch(() => undefined);
    await this.log.close();
    await SegmentBlockStore.clearVolumeData(this.ctx, this.record.id);
  }

  /** Removes whatever a volume id left on disk and in Level (also what a crash during a delete
   *  left behind, before the id could be used again). */
  static async clearVolumeData(ctx: VolumeStoreContext, volumeId: number): Promise<void> {
    await (ctx.fs ?? nodeStoreFileSystem).removeTree(volumeDir(ctx.volumesDir, volumeId));
    await ctx.db.groupCommit.drain();
    await ctx.db.level.clear(BlockMap.rangeOf(volumeId));
    await ctx.db.groupCommit.commit([deleteVolumeCheckpointOp(volumeId)]);
    ctx.space?.released();
  }

  /** Tests: stops as a killed process would (no sync, no checkpoint). */
  async crash(): Promise<void> {
    this.closed = true;
    this.crashed = true;
    if (this.checkpointTimer !== null) clearTimeout(this.checkpointTimer);
    await this.log.abandon();
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}
