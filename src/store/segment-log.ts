// A volume's append-only segment log (ARCHITECTURE.md "Data path"; format: segment-record.ts).
//
// Appends reserve their log offset synchronously, in call order, and write header + data with one
// pwritev. Writes may complete out of order on the thread pool, but a record is APPLIED (its
// `apply` callback runs: the block map points at it) and acknowledged only when every record
// before it is written too. So the log on disk after a crash of the process is a clean prefix of
// whole records followed at most by records nobody was told about; replay stops at the first
// record that does not check and truncates there.
//
// Durability: `syncTo(offset)` fdatasyncs every segment holding bytes below `offset` (and the
// directory after a segment was created), group-committed: callers arriving while one sync runs
// share the next. After a power cut, every record below the last completed sync is intact.
//
// Failure: when a write fails (ENOSPC, EIO, a short write) nothing at or after it has been applied.
// The log stops taking appends, waits for the writes in flight, fails them all, truncates the file
// back to the failed record and goes on from there. Nothing acknowledged is touched.

import { join } from 'node:path';
import { StoreError } from './store-error.js';
import { errnoOf, type StoreFile, type StoreFileSystem } from './store-file.js';
import {
  RECORD_HEADER_BYTES,
  RecordType,
  dataHashOf,
  dataHashOfAsync,
  decodeRecordHeader,
  encodeRecordHeader,
  parseSegmentFileName,
  segmentFileName,
  type RecordHeader,
  type RecordTypeValue,
} from './segment-record.js';

/** Segments are closed at this size (the cleaner's unit of reclaim). */
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

export interface AppendRequest {
  type: RecordTypeValue;
  lba: number;
  blockCount: number;
  /** WRITE / FILL / RELOCATE data; null for UNMAP. Kept (not copied) until the append settles. */
  data: Buffer | null;
  /** RELOCATE: the log offset of the data being moved. */
  sourceOffset?: number;
}

/** Where a record landed. */
export interface LogRecord {
  header: RecordHeader;
  /** Log offset of the record's header. */
  offset: number;
  /** Log offset of its first data byte. */
  dataOffset: number;
  /** Log offset just after it. */
  end: number;
}

interface Segment {
  start: number;
  /** Reserved end (log offset just after the last record placed in it). */
  end: number;
  file: Promise<StoreFile>;
  syncedEnd: number;
  /** Its directory entry is durable (the directory was synced after the file was created). */
  entryDurable: boolean;
}

interface InFlight {
  record: LogRecord;
  segment: Segment;
  settled: boolean;
  error: unknown;
  written: Promise<void>;
  apply: (record: LogRecord) => void;
  resolve: (record: LogRecord) => void;
  reject: (err: unknown) => void;
}

export interface SegmentLogOptions {
  fs: StoreFileSystem;
  /** Directory of this volume's segment files. */
  dir: string;
  volumeId: number;
  blockSize: number;
  segmentBytes?: number;
}

/** What went wrong writing the log, for the block store to turn into sense data. */
export class SegmentLogError extends StoreError {
  /** 'no-space': ENOSPC / EDQUOT / short write; 'io': anything else (EIO …). */
  readonly kind: 'no-space' | 'io';

  constructor(kind: 'no-space' | 'io', message: string, cause?: unknown) {
    super(kind === 'no-space' ? 'STORE_NO_SPACE' : 'STORE_IO', message, { cause });
    this.kind = kind;
  }
}

export class SegmentLog {
  readonly dir: string;
  private readonly fs: StoreFileSystem;
  private readonly volumeId: number;
  private readonly blockSize: number;
  private readonly segmentBytes: number;
  private readonly segments: Segment[] = [];
  private inFlight: InFlight[] = [];
  private reservedEnd = 0;
  private applied = 0;
  private synced = 0;
  private syncing: Promise<void> | null = null;
  private repairing: Promise<void> | null = null;
  private failedPermanently: Error | null = null;
  /** Reads in flight per segment start (a cleaned segment is deleted only when none are). */
  private readonly readers = new Map<number, number>();
  /** Bytes appended since open (write amplification accounting). */
  appendedBytes = 0;

  private constructor(opts: SegmentLogOptions) {
    this.fs = opts.fs;
    this.dir = opts.dir;
    this.volumeId = opts.volumeId;
    this.blockSize = opts.blockSize;
    this.segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  }

  /** Opens the log's directory and segment files; call `replay` next. */
  static async open(opts: SegmentLogOptions): Promise<SegmentLog> {
    const log = new SegmentLog(opts);
    await log.fs.mkdir(log.dir);
    const starts = (await log.fs.list(log.dir))
      .map(parseSegmentFileName)
      .filter((s): s is number => s !== null)
      .sort((a, b) => a - b);
    for (const start of starts) {
      const file = await log.fs.open(join(log.dir, segmentFileName(start)), { create: false });
      const size = await file.sizeBytes();
      log.segments.push({ start, end: start + size, file: Promise.resolve(file), syncedEnd: start + size, entryDurable: true });
    }
    return log;
  }

  /** Replays the log from `fromOffset` (the last checkpoint): `onRecord` gets every valid record at
   *  or after it, in order. A torn or foreign record ends the log there: the file is truncated and
   *  later segments are removed (they hold only bytes never acknowledged, or acknowledged but never
   *  flushed and torn by a power cut). Appends start after the last valid record. */
  async replay(fromOffset: number, onRecord: (record: LogRecord, data: Buffer | null) => Promise<void> | void): Promise<void> {
    let end = Math.max(fromOffset, this.segments.at(-1)?.end ?? 0);
    const first = this.segments.findIndex((s) => s.end > fromOffset);
    if (first >= 0) end = await this.replayFrom(first, fromOffset, onRecord);
    this.reservedEnd = end;
    this.applied = end;
    this.synced = end;
  }

  /** The start of the segment holding log offset `offset`. */
  segmentStartOf(offset: number): number | undefined {
    return this.segmentAt(offset)?.start;
  }

  private async replayFrom(first: number, fromOffset: number, onRecord: (record: LogRecord, data: Buffer | null) => Promise<void> | void): Promise<number> {
    for (let i = first; i < this.segments.length; i++) {
      const segment = this.segments[i]!;
      const file = await segment.file;
      let at = Math.max(segment.start, fromOffset);
      while (at < segment.end) {
        const record = await this.readRecordHeader(file, segment, at, segment.end);
        let data: Buffer | null = null;
        if (record !== null && record.header.dataLength > 0) {
          data = Buffer.allocUnsafe(record.header.dataLength);
          const got = await file.read(data, 0, data.length, record.dataOffset - segment.start);
          if (got < data.length || !dataHashOf(data).equals(record.header.dataHash)) data = null;
        }
        if (record === null || (record.header.dataLength > 0 && data === null)) {
          // Torn: the log ends here.
          await file.truncate(at - segment.start);
          await file.datasync();
          segment.end = at;
          segment.syncedEnd = at;
          for (const later of this.segments.splice(i + 1)) await this.removeFile(later);
          if (this.segments.length > 0) await this.fs.syncDirectory(this.dir);
          return at;
        }
        await onRecord(record, data);
        at = record.end;
      }
    }
    return this.segments.at(-1)?.end ?? fromOffset;
  }

  /** The record whose header is at log offset `at` of `segment`, if it is valid and ends by `limit`. */
  private async readRecordHeader(file: StoreFile, segment: Segment, at: number, limit: number): Promise<LogRecord | null> {
    const bytes = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
    if ((await file.read(bytes, 0, RECORD_HEADER_BYTES, at - segment.start)) < RECORD_HEADER_BYTES) return null;
    const header = decodeRecordHeader(bytes, this.volumeId, this.blockSize);
    const end = at + RECORD_HEADER_BYTES + (header?.dataLength ?? 0);
    if (header === null || end > limit) return null;
    return { header, offset: at, dataOffset: at + RECORD_HEADER_BYTES, end };
  }

  /** Closes and deletes a segment's file (the caller took it out of `segments`). */
  private async removeFile(segment: Segment): Promise<void> {
    await (await segment.file).close();
    await this.fs.unlink(join(this.dir, segmentFileName(segment.start)));
  }

  /** Log offset just after the last applied (acknowledgeable) record. */
  get appliedEnd(): number {
    return this.applied;
  }

  /** Log offset up to which everything is on stable storage. */
  get syncedEnd(): number {
    return this.synced;
  }

  /** Segments, oldest first: start offset and bytes. */
  segmentList(): Array<{ start: number; sizeBytes: number }> {
    return this.segments.map((s) => ({ start: s.start, sizeBytes: s.end - s.start }));
  }

  /** Start of the segment being appended to (the cleaner leaves it alone). */
  activeSegmentStart(): number | undefined {
    return this.segments.at(-1)?.start;
  }

  /** Appends one record. `apply` runs synchronously, in log order, once the record and every
   *  record before it are written; the promise resolves right after. Rejects with a
   *  SegmentLogError when the record could not be stored (nothing was applied). */
  async append(req: AppendRequest, apply: (record: LogRecord) => void): Promise<LogRecord> {
    while (this.repairing !== null) await this.repairing;
    if (this.failedPermanently !== null) throw this.failedPermanently;
    const dataLength = req.data?.length ?? 0;
    const header: RecordHeader = {
      type: req.type,
      lba: req.lba,
      blockCount: req.blockCount,
      dataLength,
      dataHash: Buffer.alloc(8),
      sourceOffset: req.sourceOffset ?? 0,
      volumeId: this.volumeId,
    };
    // The offset is taken now, in call order; the hash (thread pool for large data) and the write follow.
    const hashed = dataHashOfAsync(req.data);
    const total = RECORD_HEADER_BYTES + dataLength;
    const segment = this.segmentFor(total);
    const offset = this.reservedEnd;
    this.reservedEnd += total;
    segment.end = this.reservedEnd;
    this.appendedBytes += total;
    const record: LogRecord = { header, offset, dataOffset: offset + RECORD_HEADER_BYTES, end: offset + total };
    return new Promise<LogRecord>((resolve, reject) => {
      const entry: InFlight = {
        record,
        segment,
        settled: false,
        error: null,
        apply,
        resolve,
        reject,
        written: Promise.resolve(),
      };
      entry.written = Promise.all([segment.file, hashed])
        .then(([file, dataHash]) => {
          header.dataHash = dataHash;
          const bytes = encodeRecordHeader(header);
          return file.write(req.data === null ? [bytes] : [bytes, req.data], offset - segment.start);
        })
        .then(
          () => {
            entry.settled = true;
            this.advance();
          },
          (err: unknown) => {
            entry.settled = true;
            entry.error = err;
            this.advance();
          },
        );
      this.inFlight.push(entry);
    });
  }

  /** Applies and acknowledges written records in log order; starts a repair at the first failed one. */
  private advance(): void {
    if (this.repairing !== null) return;
    if (this.failedPermanently !== null) {
      for (const f of this.inFlight.splice(0)) f.reject(this.failedPermanently);
      return;
    }
    while (this.inFlight.length > 0 && this.inFlight[0]!.settled) {
      const head = this.inFlight[0]!;
      if (head.error !== null) {
        this.repairing = this.repair(head.error).finally(() => {
          this.repairing = null;
        });
        return;
      }
      this.inFlight.shift();
      try {
        head.apply(head.record);
      } catch (err) {
        head.reject(err);
        continue;
      }
      this.applied = head.record.end;
      head.resolve(head.record);
    }
  }

  private async repair(cause: unknown): Promise<void> {
    const failed = this.inFlight;
    this.inFlight = [];
    await Promise.all(failed.map((f) => f.written));
    const first = failed[0]!;
    const error = logError(cause, first.segment);
    for (const f of failed) f.reject(f === first ? error : new SegmentLogError(error.kind, `${error.message} (an earlier write failed)`, cause));
    const truncateAt = first.record.offset;
    try {
      const index = this.segments.indexOf(first.segment);
      for (const later of this.segments.splice(index + 1)) await this.removeFile(later);
      if (truncateAt === first.segment.start && this.segments.length > 1) {
        this.segments.pop();
        await this.removeFile(first.segment);
      } else {
        await (await first.segment.file).truncate(truncateAt - first.segment.start);
        first.segment.end = truncateAt;
        first.segment.syncedEnd = Math.min(first.segment.syncedEnd, truncateAt);
      }
      this.reservedEnd = truncateAt;
    } catch (err) {
      this.failedPermanently = new SegmentLogError('io', `the segment log of volume ${this.volumeId} could not be repaired after a failed write: ${String(err)}; restart the gateway`, err);
    }
  }

  private segmentFor(totalBytes: number): Segment {
    const last = this.segments.at(-1);
    if (last !== undefined && (last.end - last.start + totalBytes <= this.segmentBytes || last.end === last.start)) return last;
    const start = this.reservedEnd;
    const path = join(this.dir, segmentFileName(start));
    const segment: Segment = { start, end: start, file: this.fs.open(path, { create: true }), syncedEnd: start, entryDurable: false };
    segment.file.catch(() => undefined);
    this.segments.push(segment);
    return segment;
  }

  /** Resolves when every applied record below `offset` is on stable storage (group-committed). */
  async syncTo(offset: number = this.applied): Promise<void> {
    while (this.synced < offset) {
      if (this.failedPermanently !== null) throw this.failedPermanently;
      if (this.syncing === null) {
        this.syncing = this.syncOnce().finally(() => {
          this.syncing = null;
        });
      }
      await this.syncing;
    }
  }

  private async syncOnce(): Promise<void> {
    const upTo = this.applied;
    // New segments holding bytes below upTo: their files exist once `work` awaited them, and the
    // directory is synced after that, so their names survive a power cut with their data.
    const newSegments = this.segments.filter((s) => !s.entryDurable && s.start < upTo);
    const work: Array<Promise<void>> = [];
    for (const segment of this.segments) {
      if (segment.syncedEnd >= Math.min(segment.end, upTo) || segment.start >= upTo) continue;
      const target = Math.min(segment.end, upTo);
      work.push(
        segment.file.then(async (file) => {
          await file.datasync();
          segment.syncedEnd = Math.max(segment.syncedEnd, target);
        }),
      );
    }
    try {
      await Promise.all(work);
      if (newSegments.length > 0) {
        await Promise.all(newSegments.map((s) => s.file));
        await this.fs.syncDirectory(this.dir);
        for (const s of newSegments) s.entryDurable = true;
      }
    } catch (err) {
      throw logError(err, null);
    }
    this.synced = Math.max(this.synced, upTo);
  }

  /** Reads `lengthBytes` of record data at log offset `offset` into `into` at `intoOffset`. */
  async read(into: Buffer, intoOffset: number, lengthBytes: number, offset: number): Promise<void> {
    const segment = this.segmentAt(offset);
    if (segment === undefined || offset + lengthBytes > segment.end) {
      throw new StoreError('STORE_CORRUPT', `volume ${this.volumeId}: no segment holds log bytes ${offset}..${offset + lengthBytes}`);
    }
    this.readers.set(segment.start, (this.readers.get(segment.start) ?? 0) + 1);
    try {
      const got = await (await segment.file).read(into, intoOffset, lengthBytes, offset - segment.start);
      if (got < lengthBytes) throw new StoreError('STORE_CORRUPT', `volume ${this.volumeId}: segment ${segmentFileName(segment.start)} is short`);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError('STORE_IO', `volume ${this.volumeId}: reading segment ${segmentFileName(segment.start)} failed: ${String(err)}`, { cause: err });
    } finally {
      const n = (this.readers.get(segment.start) ?? 1) - 1;
      if (n === 0) this.readers.delete(segment.start);
      else this.readers.set(segment.start, n);
    }
  }

  /** Reads whole records of one segment, oldest first (the cleaner). */
  async *records(segmentStart: number): AsyncGenerator<LogRecord> {
    const segment = this.segments.find((s) => s.start === segmentStart);
    if (segment === undefined) return;
    const file = await segment.file;
    const end = Math.min(segment.end, this.applied);
    for (let at = segment.start; at < end; ) {
      const record = await this.readRecordHeader(file, segment, at, end);
      if (record === null) return;
      yield record;
      at = record.end;
    }
  }

  private segmentAt(offset: number): Segment | undefined {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = this.segments[mid]!;
      if (offset < s.start) hi = mid - 1;
      else if (offset >= s.end) lo = mid + 1;
      else return s;
    }
    return undefined;
  }

  /** Removes a segment nothing refers to any more; waits for reads still in flight. */
  async deleteSegment(start: number): Promise<number> {
    const index = this.segments.findIndex((s) => s.start === start);
    if (index < 0 || index === this.segments.length - 1) return 0;
    while ((this.readers.get(start) ?? 0) > 0) await new Promise((r) => setTimeout(r, 1));
    const [segment] = this.segments.splice(index, 1);
    await this.removeFile(segment!);
    return segment!.end - segment!.start;
  }

  /** Waits for appends in flight, syncs, closes every file. */
  async close(): Promise<void> {
    while (this.inFlight.length > 0 || this.repairing !== null) {
      await Promise.all(this.inFlight.map((f) => f.written));
      if (this.repairing !== null) await this.repairing;
      await Promise.resolve();
    }
    if (this.failedPermanently === null) await this.syncTo(this.applied).catch(() => undefined);
    for (const segment of this.segments) await (await segment.file.catch(() => null))?.close();
    this.segments.length = 0;
  }

  /** Abandons the log without syncing (tests: a crash). Everything in flight or later fails. */
  async abandon(): Promise<void> {
    this.failedPermanently = new SegmentLogError('io', `the segment log of volume ${this.volumeId} was abandoned`);
    for (const segment of this.segments) await (await segment.file.catch(() => null))?.close().catch(() => undefined);
    this.segments.length = 0;
  }
}

function logError(err: unknown, segment: Segment | null): SegmentLogError {
  if (err instanceof SegmentLogError) return err;
  const code = errnoOf(err);
  const where = segment === null ? 'the segment log' : `segment ${segmentFileName(segment.start)}`;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new SegmentLogError('no-space', `${where}: the file system is full (${code})`, err);
  return new SegmentLogError('io', `${where}: ${code ?? 'I/O error'}: ${String(err)}`, err);
}

export { RecordType };
