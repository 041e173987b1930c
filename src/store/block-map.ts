// A volume's block map (ARCHITECTURE.md "Data path"): which log offset holds each logical block.
// One Level key per map page; a page covers one 1 MiB object chunk of logical blocks (so a page is
// also the unit of upload and of cached-volume residency). Its value is the page's runs, sorted and
// disjoint, 16 bytes each (keys.ts PAGE):
//   startBlock u32 (within the page) | blockCount u32 | logOffset u64 (data of startBlock)
// Blocks in no run are unmapped and read as zeros.
//
// Pages are loaded on demand and kept in memory (dirty ones until a checkpoint writes them; clean
// ones up to a bound, least recently used first out). Runs arrays are never mutated: an update
// builds a new array, so a snapshot capture can keep the arrays it copied.

import type { Database } from './database.js';
import type { BatchOp } from './group-commit.js';
import { KeySpace, decodePageKey, pageKey, volumePageRange } from './keys.js';
import { StoreError } from './store-error.js';

export interface Run {
  startBlock: number;
  blockCount: number;
  logOffset: number;
}

export type Runs = readonly Run[];

const RUN_BYTES = 16;
const EMPTY: Runs = Object.freeze([]);

/** Clean pages kept in memory beyond the dirty and pinned ones. */
const MAX_CLEAN_PAGES = 32 * 1024;

export function encodeRuns(runs: Runs): Buffer {
  const value = Buffer.allocUnsafe(runs.length * RUN_BYTES);
  runs.forEach((r, i) => {
    value.writeUInt32BE(r.startBlock, i * RUN_BYTES);
    value.writeUInt32BE(r.blockCount, i * RUN_BYTES + 4);
    value.writeBigUInt64BE(BigInt(r.logOffset), i * RUN_BYTES + 8);
  });
  return value;
}

export function decodeRuns(value: Buffer, blocksPerPage: number, where: string): Runs {
  if (value.length % RUN_BYTES !== 0) throw new StoreError('STORE_CORRUPT', `${where}: map page of ${value.length} bytes`);
  const runs: Run[] = [];
  let previousEnd = 0;
  for (let at = 0; at < value.length; at += RUN_BYTES) {
    const run = { startBlock: value.readUInt32BE(at), blockCount: value.readUInt32BE(at + 4), logOffset: Number(value.readBigUInt64BE(at + 8)) };
    if (run.blockCount === 0 || run.startBlock < previousEnd || run.startBlock + run.blockCount > blocksPerPage) {
      throw new StoreError('STORE_CORRUPT', `${where}: map page runs overlap or leave the page`);
    }
    previousEnd = run.startBlock + run.blockCount;
    runs.push(run);
  }
  return runs;
}

/** What an update took out of the map and put in (log offsets and byte counts), for the live-byte
 *  accounting of segments. */
export interface MapDelta {
  removed: Array<{ logOffset: number; bytes: number }>;
  added: Array<{ logOffset: number; bytes: number }>;
}

/** The runs of `runs` with [from, to) replaced by `replacement(piece)` for each mapped piece (or
 *  by a new run when `assign` is given), collecting what changed. */
function rewrite(
  runs: Runs,
  from: number,
  to: number,
  blockSize: number,
  delta: MapDelta,
  mode: { kind: 'assign'; logOffset: number } | { kind: 'clear' } | { kind: 'relocate'; sourceOffset: number; logOffset: number },
): Runs {
  const out: Run[] = [];
  let inserted = false;
  const insertAssign = (): void => {
    if (mode.kind !== 'assign' || inserted) return;
    inserted = true;
    out.push({ startBlock: from, blockCount: to - from, logOffset: mode.logOffset });
    delta.added.push({ logOffset: mode.logOffset, bytes: (to - from) * blockSize });
  };
  for (const run of runs) {
    const runEnd = run.startBlock + run.blockCount;
    if (runEnd <= from || run.startBlock >= to) {
      if (run.startBlock >= to) insertAssign();
      out.push(run);
      continue;
    }
    if (run.startBlock < from) out.push({ startBlock: run.startBlock, blockCount: from - run.startBlock, logOffset: run.logOffset });
    const overlapStart = Math.max(run.startBlock, from);
    const overlapEnd = Math.min(runEnd, to);
    const overlapOffset = run.logOffset + (overlapStart - run.startBlock) * blockSize;
    if (mode.kind === 'relocate') {
      // Only the blocks still pointing where the cleaner copied them from move.
      const expected = mode.sourceOffset + (overlapStart - from) * blockSize;
      if (overlapOffset === expected) {
        out.push({ startBlock: overlapStart, blockCount: overlapEnd - overlapStart, logOffset: mode.logOffset + (overlapStart - from) * blockSize });
        delta.removed.push({ logOffset: overlapOffset, bytes: (overlapEnd - overlapStart) * blockSize });
        delta.added.push({ logOffset: mode.logOffset + (overlapStart - from) * blockSize, bytes: (overlapEnd - overlapStart) * blockSize });
      } else {
        out.push({ startBlock: overlapStart, blockCount: overlapEnd - overlapStart, logOffset: overlapOffset });
      }
    } else {
      delta.removed.push({ logOffset: overlapOffset, bytes: (overlapEnd - overlapStart) * blockSize });
      insertAssign();
    }
    if (runEnd > to) {
      insertAssign();
      out.push({ startBlock: to, blockCount: runEnd - to, logOffset: run.logOffset + (to - run.startBlock) * blockSize });
    }
  }
  insertAssign();
  return mergeAdjacent(out, blockSize);
}

/** Joins runs that continue each other on the log (sequential writes make one run per page). */
function mergeAdjacent(runs: Run[], blockSize: number): Runs {
  if (runs.length < 2) return runs;
  const out: Run[] = [runs[0]!];
  for (let i = 1; i < runs.length; i++) {
    const last = out[out.length - 1]!;
    const run = runs[i]!;
    if (last.startBlock + last.blockCount === run.startBlock && last.logOffset + last.blockCount * blockSize === run.logOffset) {
      out[out.length - 1] = { ...last, blockCount: last.blockCount + run.blockCount };
    } else {
      out.push(run);
    }
  }
  return out;
}

export class BlockMap {
  readonly volumeId: number;
  readonly blocksPerPage: number;
  private readonly db: Database;
  private readonly blockSize: number;
  private readonly pages = new Map<number, Runs>();
  private readonly dirty = new Set<number>();
  private readonly pins = new Map<number, number>();
  private readonly loading = new Map<number, Promise<void>>();
  /** Pages whose checkpoint batch is being written (not evictable, not clean yet). */
  private readonly writing = new Set<number>();

  constructor(db: Database, volumeId: number, blockSize: number, blocksPerPage: number) {
    this.db = db;
    this.volumeId = volumeId;
    this.blockSize = blockSize;
    this.blocksPerPage = blocksPerPage;
  }

  get dirtyPageCount(): number {
    return this.dirty.size;
  }

  /** Loads pages [first, end) and pins them in memory until `unpin`. */
  async loadAndPin(first: number, end: number): Promise<void> {
    for (let p = first; p < end; p++) this.pins.set(p, (this.pins.get(p) ?? 0) + 1);
    try {
      await this.load(first, end);
    } catch (err) {
      this.unpin(first, end);
      throw err;
    }
  }

  unpin(first: number, end: number): void {
    for (let p = first; p < end; p++) {
      const n = (this.pins.get(p) ?? 1) - 1;
      if (n === 0) this.pins.delete(p);
      else this.pins.set(p, n);
    }
  }

  /** Loads pages [first, end) into memory (a page never written loads as empty). */
  async load(first: number, end: number): Promise<void> {
    const missing: number[] = [];
    const waits: Array<Promise<void>> = [];
    for (let p = first; p < end; p++) {
      if (this.pages.has(p)) continue;
      const pending = this.loading.get(p);
      if (pending !== undefined) waits.push(pending);
      else missing.push(p);
    }
    if (missing.length > 0) {
      const fetch = (async () => {
        let values: Array<Buffer | undefined>;
        try {
          values = await this.db.level.getMany(missing.map((p) => pageKey(this.volumeId, p)));
        } catch (err) {
          throw new StoreError('STORE_IO', `volume ${this.volumeId}: reading the block map failed: ${String(err)}`, { transient: true, cause: err });
        }
        missing.forEach((p, i) => {
          // A page updated while it loaded (impossible: updates need it loaded) keeps its newer runs.
          if (!this.pages.has(p)) {
            const value = values[i];
            this.pages.set(p, value === undefined ? EMPTY : decodeRuns(value, this.blocksPerPage, `volume ${this.volumeId} page ${p}`));
          }
        });
      })();
      const settle = fetch.finally(() => {
        for (const p of missing) this.loading.delete(p);
      });
      for (const p of missing) this.loading.set(p, settle);
      waits.push(settle);
    }
    if (waits.length > 0) await Promise.all(waits);
  }

  /** The runs of a loaded page. */
  runs(page: number): Runs {
    const runs = this.pages.get(page);
    if (runs === undefined) throw new StoreError('STORE_CORRUPT', `volume ${this.volumeId}: map page ${page} used before it was loaded`);
    return runs;
  }

  /** Runs of a loaded page, or undefined. */
  peek(page: number): Runs | undefined {
    return this.pages.get(page);
  }

  /** Maps blocks [lba, lba + blockCount) to consecutive data at `logOffset`. Pages must be loaded. */
  assign(lba: number, blockCount: number, logOffset: number, delta: MapDelta): void {
    this.forEachPage(lba, blockCount, (page, from, to, skipped) => {
      this.set(page, rewrite(this.runs(page), from, to, this.blockSize, delta, { kind: 'assign', logOffset: logOffset + skipped * this.blockSize }));
    });
  }

  /** Unmaps blocks [lba, lba + blockCount) in the loaded pages (callers load every page of the
   *  range that holds runs); answers the pages that changed. */
  clear(lba: number, blockCount: number, delta: MapDelta): number[] {
    const changed: number[] = [];
    const firstPage = Math.floor(lba / this.blocksPerPage);
    const endPage = Math.floor((lba + blockCount - 1) / this.blocksPerPage) + 1;
    const visit = (page: number): void => {
      const runs = this.pages.get(page);
      if (runs === undefined || runs.length === 0) return;
      const pageLba = page * this.blocksPerPage;
      const from = Math.max(lba, pageLba) - pageLba;
      const to = Math.min(lba + blockCount, pageLba + this.blocksPerPage) - pageLba;
      const before = delta.removed.length;
      const next = rewrite(runs, from, to, this.blockSize, delta, { kind: 'clear' });
      if (delta.removed.length === before) return;
      this.set(page, next);
      changed.push(page);
    };
    // A whole-volume UNMAP must not walk 16 Mi page numbers: walk whichever is smaller.
    if (endPage - firstPage <= this.pages.size) {
      for (let p = firstPage; p < endPage; p++) visit(p);
    } else {
      for (const p of [...this.pages.keys()]) if (p >= firstPage && p < endPage) visit(p);
    }
    return changed;
  }

  /** Moves blocks whose data is still at `sourceOffset…` to `logOffset…` (the cleaner). */
  relocate(lba: number, blockCount: number, sourceOffset: number, logOffset: number, delta: MapDelta): void {
    this.forEachPage(lba, blockCount, (page, from, to, skipped) => {
      const runs = this.pages.get(page);
      if (runs === undefined || runs.length === 0) return;
      const s = sourceOffset + skipped * this.blockSize;
      const l = logOffset + skipped * this.blockSize;
      this.set(page, rewrite(runs, from, to, this.blockSize, delta, { kind: 'relocate', sourceOffset: s, logOffset: l }));
    });
  }

  /** Drops every run of a page (cached-volume eviction). */
  dropPage(page: number, delta: MapDelta): void {
    const runs = this.runs(page);
    if (runs.length === 0) return;
    for (const r of runs) delta.removed.push({ logOffset: r.logOffset, bytes: r.blockCount * this.blockSize });
    this.set(page, EMPTY);
  }

  private set(page: number, runs: Runs): void {
    this.pages.delete(page);
    this.pages.set(page, runs);
    this.dirty.add(page);
  }

  private forEachPage(lba: number, blockCount: number, body: (page: number, from: number, to: number, skipped: number) => void): void {
    let at = lba;
    const end = lba + blockCount;
    while (at < end) {
      const page = Math.floor(at / this.blocksPerPage);
      const pageStart = page * this.blocksPerPage;
      const to = Math.min(end, pageStart + this.blocksPerPage);
      body(page, at - pageStart, to - pageStart, at - lba);
      at = to;
    }
  }

  /** Page indexes in [first, end) that hold runs: those in Level plus those changed in memory. */
  async mappedPages(first: number, end: number): Promise<number[]> {
    const inMemory = new Map<number, boolean>();
    for (const [page, runs] of this.pages) if (page >= first && page < end) inMemory.set(page, runs.length > 0);
    const out: number[] = [];
    for await (const key of this.db.level.keys({ gte: pageKey(this.volumeId, first), lt: pageKey(this.volumeId, end) })) {
      const { page } = decodePageKey(key);
      if (!inMemory.has(page)) out.push(page);
    }
    for (const [page, mapped] of inMemory) if (mapped) out.push(page);
    return out.sort((a, b) => a - b);
  }

  /** A point-in-time copy for a snapshot: every page in memory now (they are newer than Level) and
   *  a Level iterator opened in the same tick (LevelDB snapshots it). Pages not in memory are in
   *  Level as of now: a page leaves memory only when clean and not being written. */
  capture(): { pages: Map<number, Runs>; iterator: AsyncIterableIterator<[Buffer, Buffer]> & { close(): Promise<void> } } {
    const pages = new Map(this.pages);
    const iterator = this.db.level.iterator(volumePageRange(this.volumeId)) as unknown as AsyncIterableIterator<[Buffer, Buffer]> & {
      close(): Promise<void>;
    };
    return { pages, iterator };
  }

  /** Checkpoint: the Level ops of every dirty page, taken now. Call `written()` once they are in
   *  Level, or `failed()` to mark them dirty again. */
  takeDirty(): { ops: BatchOp[]; written(): void; failed(): void } {
    const taken = [...this.dirty];
    this.dirty.clear();
    const ops: BatchOp[] = taken.map((page) => {
      const runs = this.pages.get(page) ?? EMPTY;
      const key = pageKey(this.volumeId, page);
      return runs.length === 0 ? { type: 'del', key } : { type: 'put', key, value: encodeRuns(runs) };
    });
    for (const page of taken) this.writing.add(page);
    return {
      ops,
      written: () => {
        for (const page of taken) this.writing.delete(page);
        this.trim();
      },
      failed: () => {
        for (const page of taken) {
          this.writing.delete(page);
          this.dirty.add(page);
        }
      },
    };
  }

  /** Forgets clean, unpinned pages beyond the memory bound, least recently changed or loaded first. */
  private trim(): void {
    let excess = this.pages.size - this.dirty.size - this.pins.size - MAX_CLEAN_PAGES;
    if (excess <= 0) return;
    for (const page of this.pages.keys()) {
      if (excess <= 0) break;
      if (this.dirty.has(page) || this.pins.has(page) || this.writing.has(page) || this.loading.has(page)) continue;
      this.pages.delete(page);
      excess--;
    }
  }

  /** Ops deleting every page of the volume (volume deletion, upgrade). */
  static rangeOf(volumeId: number): { gte: Buffer; lt: Buffer } {
    return volumePageRange(volumeId);
  }
}

export { KeySpace };
