// The upload queue (ARCHITECTURE.md "Data path"): one Level key per dirty 1 MiB object chunk
// (key space UPLOAD, keys.ts) whose value is the chunk's dirty sequence number. A block write puts
// the entry in the SAME synced batch as its blocks, so an acknowledged write is never without its
// queue entry, and a rewrite of a dirty chunk only replaces the sequence (coalescing: one entry,
// one upload, however many writes). The uploader deletes the entry only if the sequence is still
// the one it read before reading the chunk's content: an upload that raced with a newer write
// leaves the chunk dirty.
//
// The in-memory map mirrors Level plus what writes have published but not yet committed: it is
// updated synchronously in the same tick that builds the batch, and batches are written in commit
// order (group-commit.ts), so a "clean" decided here is ordered correctly against later writes.
//
// Upload buffer: dirty bytes are counted as whole object chunks. When they reach the configured
// limit, writes that would dirty ANOTHER chunk wait (back-pressure) for room; rewrites of chunks
// already dirty always pass, since they do not grow the backlog.

import type { Database } from './database.js';
import type { BatchOp } from './group-commit.js';
import { KeySpace, decodeObjectChunkKey, keySpaceRange, objectChunkKey } from './keys.js';

export interface DirtyChunk {
  volumeId: number;
  objectChunkIndex: number;
  sequence: number;
}

export class UploadQueue {
  readonly objectChunkSizeBytes: number;
  private bufferSizeBytes: number;
  private readonly dirty = new Map<number, Map<number, number>>();
  /** When each dirty chunk became dirty (ms since the epoch; absent for entries left by a previous run). */
  private readonly since = new Map<string, number>();
  private dirtyCount = 0;
  private nextSequence: number;
  private readonly roomWaiters = new Set<() => void>();
  private readonly changeListeners = new Set<() => void>();

  private constructor(objectChunkSizeBytes: number, bufferSizeBytes: number, nextSequence: number) {
    this.objectChunkSizeBytes = objectChunkSizeBytes;
    this.bufferSizeBytes = bufferSizeBytes;
    this.nextSequence = nextSequence;
  }

  /** Loads every entry left by the previous run (after a crash too: entries are durable). */
  static async open(db: Database, opts: { objectChunkSizeBytes: number; bufferSizeBytes: number }): Promise<UploadQueue> {
    const entries: DirtyChunk[] = [];
    let maxSequence = 0;
    for await (const [key, value] of db.level.iterator(keySpaceRange(KeySpace.UPLOAD))) {
      const { volumeId, objectChunkIndex } = decodeObjectChunkKey(key);
      const sequence = Number(value.readBigUInt64BE(0));
      entries.push({ volumeId, objectChunkIndex, sequence });
      maxSequence = Math.max(maxSequence, sequence);
    }
    const queue = new UploadQueue(opts.objectChunkSizeBytes, opts.bufferSizeBytes, maxSequence + 1);
    for (const entry of entries) queue.set(entry.volumeId, entry.objectChunkIndex, entry.sequence);
    return queue;
  }

  get dirtyChunkCount(): number {
    return this.dirtyCount;
  }

  get dirtyBytes(): number {
    return this.dirtyCount * this.objectChunkSizeBytes;
  }

  get limitBytes(): number {
    return this.bufferSizeBytes;
  }

  setLimitBytes(bufferSizeBytes: number): void {
    this.bufferSizeBytes = bufferSizeBytes;
    this.wakeRoomWaiters();
  }

  /** True when one more dirty chunk would exceed the upload buffer. */
  isFull(): boolean {
    return this.dirtyBytes + this.objectChunkSizeBytes > this.bufferSizeBytes;
  }

  sequenceOf(volumeId: number, objectChunkIndex: number): number | undefined {
    return this.dirty.get(volumeId)?.get(objectChunkIndex);
  }

  isDirty(volumeId: number, objectChunkIndex: number): boolean {
    return this.sequenceOf(volumeId, objectChunkIndex) !== undefined;
  }

  /** Publishes a new dirty sequence for the chunk and returns the op that must go into the SAME
   *  batch as the write's blocks (call it in the tick that commits that batch). */
  markDirty(volumeId: number, objectChunkIndex: number): BatchOp {
    const sequence = this.nextSequence++;
    const wasDirty = this.isDirty(volumeId, objectChunkIndex);
    this.set(volumeId, objectChunkIndex, sequence);
    if (!wasDirty) {
      this.since.set(`${volumeId}:${objectChunkIndex}`, Date.now());
      this.changed();
    }
    const value = Buffer.alloc(8);
    value.writeBigUInt64BE(BigInt(sequence));
    return { type: 'put', key: objectChunkKey(KeySpace.UPLOAD, volumeId, objectChunkIndex), value };
  }

  /** If the chunk's sequence is still `sequence` (no write since the uploader read it), forgets it
   *  and returns the op deleting its entry (commit it in this tick); otherwise null. */
  markClean(volumeId: number, objectChunkIndex: number, sequence: number): BatchOp | null {
    const chunks = this.dirty.get(volumeId);
    if (chunks?.get(objectChunkIndex) !== sequence) return null;
    chunks.delete(objectChunkIndex);
    this.since.delete(`${volumeId}:${objectChunkIndex}`);
    if (chunks.size === 0) this.dirty.delete(volumeId);
    this.dirtyCount--;
    this.wakeRoomWaiters();
    this.changed();
    return { type: 'del', key: objectChunkKey(KeySpace.UPLOAD, volumeId, objectChunkIndex) };
  }

  /** The op that makes Level hold the chunk's current entry (put its sequence, or delete it when
   *  clean): block-store checkpoints persist the queue this way. */
  entryOp(volumeId: number, objectChunkIndex: number): BatchOp {
    const key = objectChunkKey(KeySpace.UPLOAD, volumeId, objectChunkIndex);
    const sequence = this.sequenceOf(volumeId, objectChunkIndex);
    if (sequence === undefined) return { type: 'del', key };
    const value = Buffer.alloc(8);
    value.writeBigUInt64BE(BigInt(sequence));
    return { type: 'put', key, value };
  }

  /** When the chunk became dirty (0: it already was when the gateway started). */
  dirtySinceMs(volumeId: number, objectChunkIndex: number): number {
    return this.since.get(`${volumeId}:${objectChunkIndex}`) ?? 0;
  }

  /** A snapshot of the dirty chunks, lowest sequence (oldest write) first. */
  pending(): DirtyChunk[] {
    const out: DirtyChunk[] = [];
    for (const [volumeId, chunks] of this.dirty) {
      for (const [objectChunkIndex, sequence] of chunks) out.push({ volumeId, objectChunkIndex, sequence });
    }
    return out.sort((a, b) => a.sequence - b.sequence);
  }

  /** Resolves true once a new dirty chunk fits in the buffer, false after `timeoutMs`. */
  waitForRoom(timeoutMs: number): Promise<boolean> {
    if (!this.isFull()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = (): void => {
        if (this.isFull()) return;
        clearTimeout(timer);
        this.roomWaiters.delete(wake);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.roomWaiters.delete(wake);
        resolve(false);
      }, timeoutMs);
      this.roomWaiters.add(wake);
    });
  }

  /** Called whenever a clean chunk becomes dirty or a dirty one clean (the uploader's wake-up,
   *  the volume status). Returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => {
      this.changeListeners.delete(listener);
    };
  }

  private changed(): void {
    for (const listener of this.changeListeners) listener();
  }

  private set(volumeId: number, objectChunkIndex: number, sequence: number): void {
    let chunks = this.dirty.get(volumeId);
    if (chunks === undefined) this.dirty.set(volumeId, (chunks = new Map()));
    if (!chunks.has(objectChunkIndex)) this.dirtyCount++;
    chunks.set(objectChunkIndex, sequence);
  }

  private wakeRoomWaiters(): void {
    for (const wake of [...this.roomWaiters]) wake();
  }
}
