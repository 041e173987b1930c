// The background uploader (docs/storage-engine.md): drains the upload queue to the object store
// with bounded concurrency, oldest dirty chunk first.
//
// One upload: note the chunk's dirty sequence, read its current content from Level, store it as a
// content-addressed object (docs/object-layout.md; skipped when the object already exists, so a
// re-upload after a crash or a rewrite of identical data costs a HEAD), then — only after the store
// confirmed — record the chunk's new SHA-256 and delete its queue entry in one synced batch, and
// only if no write changed the sequence meanwhile. The volume's `head.json` manifest is rewritten
// after its chunks, so the object store alone can reconstruct every volume at every moment.
// Transient CloudErrors are retried with capped exponential backoff and full jitter forever
// (permanent ones every permanentErrorDelayMs); writes keep landing in the buffer. The log says
// "failing" once when uploads start failing and "recovered" once when one succeeds again
// (cloud-outage.ts), not once per attempt.

import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../../iscsi/log.js';
import { CloudError, isTransientCloudError } from '../cloud/cloud-error.js';
import { CloudOutage } from '../cloud/cloud-outage.js';
import { backoffDelayMs, type RetryPolicy } from '../cloud/retry.js';
import type { DirtyChunk } from '../store/upload-queue.js';
import { chunkListOf, type HeadManifest } from '../store/snapshot-manifest.js';
import {
  OBJECT_CHUNK_SIZE_BYTES,
  chunkObjectKey,
  headManifestKey,
  sha256Async,
  type EngineVolume,
  type StorageEngine,
  type TransferLimiter,
} from '../store/storage-engine.js';

export interface UploaderOptions {
  engine: StorageEngine;
  log: Logger;
  /** Chunks uploaded at the same time. */
  concurrency?: number;
  uploadLimiter?: TransferLimiter;
  /** Backoff between attempts of one upload (attempts are unlimited). */
  retry?: Omit<RetryPolicy, 'maxAttempts'>;
  /** A permanent error (credentials, missing bucket) is retried after this long. */
  permanentErrorDelayMs?: number;
  /** While a volume keeps uploading, its head.json is rewritten at least this often. */
  headIntervalMs?: number;
  /** A chunk is uploaded once it has been dirty this long (writes still landing in it coalesce
   *  into one upload), or at once while the upload buffer is at least half full. */
  settleMs?: number;
}

/** docs/object-layout.md "Manifest" (store/snapshot-manifest.ts). */
export type { HeadManifest };

export interface UploaderCounters {
  /** Chunk objects put to the store. */
  uploadedChunks: number;
  uploadedBytes: number;
  /** Uploads that found the object already stored (content-addressed). */
  skippedExisting: number;
  /** Uploads whose chunk was rewritten meanwhile (uploaded again later). */
  superseded: number;
  manifestsWritten: number;
  failedAttempts: number;
}

const DEFAULT_CONCURRENCY = 4;
const DEFAULT_RETRY = { baseDelayMs: 200, maxDelayMs: 5_000 };
const DEFAULT_PERMANENT_ERROR_DELAY_MS = 30_000;
const DEFAULT_HEAD_INTERVAL_MS = 2_000;
const DEFAULT_SETTLE_MS = 1_000;
/** Initiators count as busy until this long after their last read or write. */
const FOREGROUND_QUIET_MS = 100;

export class Uploader {
  readonly counters: UploaderCounters = {
    uploadedChunks: 0,
    uploadedBytes: 0,
    skippedExisting: 0,
    superseded: 0,
    manifestsWritten: 0,
    failedAttempts: 0,
  };
  /** Failing / recovered state of the uploads, for the log and /metrics. */
  readonly outage: CloudOutage;
  private readonly engine: StorageEngine;
  private readonly log: Logger;
  private readonly concurrency: number;
  private readonly limiter: TransferLimiter | undefined;
  private readonly retry: Omit<RetryPolicy, 'maxAttempts'>;
  private readonly permanentErrorDelayMs: number;
  private readonly headIntervalMs: number;
  private readonly settleMs: number;
  private settleTimer: NodeJS.Timeout | null = null;
  private quietTimer: NodeJS.Timeout | null = null;
  private headTimer: NodeJS.Timeout | null = null;
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Volumes whose head.json is older than their uploaded chunks, and the manifest writes running. */
  private readonly headsDirty = new Set<number>();
  private readonly headWrites = new Map<number, Promise<void>>();
  private readonly abort = new AbortController();
  private readonly unsubscribe: Array<() => void> = [];
  private started = false;
  private stopped = false;
  private lastError: CloudError | null = null;
  private idleWaiters: Array<() => void> = [];

  constructor(opts: UploaderOptions) {
    this.engine = opts.engine;
    this.log = opts.log;
    this.outage = new CloudOutage('upload', opts.log);
    this.concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
    this.limiter = opts.uploadLimiter;
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.permanentErrorDelayMs = opts.permanentErrorDelayMs ?? DEFAULT_PERMANENT_ERROR_DELAY_MS;
    this.headIntervalMs = opts.headIntervalMs ?? DEFAULT_HEAD_INTERVAL_MS;
    this.settleMs = opts.settleMs ?? DEFAULT_SETTLE_MS;
  }

  /** Resumes from the queue (entries left by a crash included) and rewrites every volume's head. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.unsubscribe.push(this.engine.queue.onChange(() => this.pump()));
    this.unsubscribe.push(
      this.engine.onAttach((volume) => {
        this.markHeadDirty(volume.volumeId);
        this.adopt(volume);
        this.pump();
      }),
    );
    for (const volume of this.engine.attachedVolumes()) {
      this.markHeadDirty(volume.volumeId);
      this.adopt(volume);
    }
    this.headTimer = setInterval(() => {
      for (const volumeId of [...this.headsDirty]) this.writeHead(volumeId);
    }, this.headIntervalMs);
    this.headTimer.unref();
    this.pump();
    for (const volumeId of [...this.headsDirty]) if (!this.volumeBusy(volumeId)) this.writeHead(volumeId);
  }

  /** Stops taking new work and waits for uploads in flight to settle; the queue keeps the rest. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    if (this.headTimer !== null) clearInterval(this.headTimer);
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
    if (this.quietTimer !== null) clearTimeout(this.quietTimer);
    for (const unsubscribe of this.unsubscribe) unsubscribe();
    await Promise.allSettled([...this.inFlight.values(), ...this.headWrites.values()]);
    this.wakeIdleWaiters();
  }

  /** The last upload error while it persists (null once an upload succeeds again). */
  get error(): CloudError | null {
    return this.lastError;
  }

  get uploadsInFlight(): number {
    return this.inFlight.size;
  }

  /** Resolves when the queue is empty, nothing is in flight and every head.json is current. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Uploads in parallel: all of them while initiators are quiet or the buffer is a quarter full,
   *  one while initiators are busy (uploads are background work: they trickle, not compete). */
  private concurrencyAt(nowMs: number): number {
    const queue = this.engine.queue;
    const busy = nowMs - this.engine.lastForegroundIoMs < FOREGROUND_QUIET_MS;
    if (!busy || queue.dirtyBytes * 4 >= queue.limitBytes) return this.concurrency;
    if (this.inFlight.size >= 1 && this.quietTimer === null) {
      // Widen again once the initiators pause.
      this.quietTimer = setTimeout(() => {
        this.quietTimer = null;
        this.pump();
      }, FOREGROUND_QUIET_MS);
    }
    return 1;
  }

  /** When the chunk may be uploaded (settle time, see UploaderOptions). */
  private settledAt(chunk: DirtyChunk, nowMs: number): number {
    const queue = this.engine.queue;
    if (this.settleMs === 0 || queue.dirtyBytes * 2 >= queue.limitBytes) return nowMs;
    return queue.dirtySinceMs(chunk.volumeId, chunk.objectChunkIndex) + this.settleMs;
  }

  private isIdle(): boolean {
    return (
      this.stopped ||
      (this.engine.queue.dirtyChunkCount === 0 && this.inFlight.size === 0 && this.headsDirty.size === 0 && this.headWrites.size === 0)
    );
  }

  private wakeIdleWaiters(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Queues blocks written before the storage engine existed (once per volume, in the background). */
  private adopt(volume: EngineVolume): void {
    volume.adoptUntrackedChunks().then(
      (count) => {
        if (count > 0) this.log.info('queued untracked chunks for upload', { volumeId: volume.volumeId, chunks: count });
      },
      (err: unknown) => this.log.warn('scan for untracked chunks failed', { volumeId: volume.volumeId, err: String(err) }),
    );
  }

  /** Starts uploads up to the concurrency limit. */
  private pump(): void {
    if (!this.started || this.stopped) return;
    const nowMs = Date.now();
    const limit = this.concurrencyAt(nowMs);
    if (this.inFlight.size < limit) {
      let nextMs = Number.POSITIVE_INFINITY;
      for (const chunk of this.engine.queue.pending()) {
        if (this.inFlight.size >= limit) break;
        const key = `${chunk.volumeId}:${chunk.objectChunkIndex}`;
        if (this.inFlight.has(key)) continue;
        const settledAt = this.settledAt(chunk, nowMs);
        if (settledAt > nowMs) {
          nextMs = Math.min(nextMs, settledAt);
          continue;
        }
        const volume = this.engine.volumeOf(chunk.volumeId);
        if (volume === undefined) continue; // not served (yet): its entries wait in the queue
        const task = this.uploadUntilDone(volume, chunk).finally(() => {
          this.inFlight.delete(key);
          this.afterUpload(chunk.volumeId);
        });
        this.inFlight.set(key, task);
      }
      if (nextMs !== Number.POSITIVE_INFINITY && this.settleTimer === null) {
        this.settleTimer = setTimeout(() => {
          this.settleTimer = null;
          this.pump();
        }, nextMs - nowMs);
      }
    }
    this.wakeIdleWaiters();
  }

  private afterUpload(volumeId: number): void {
    this.pump();
    if (!this.volumeBusy(volumeId)) this.writeHead(volumeId);
  }

  private volumeBusy(volumeId: number): boolean {
    for (const key of this.inFlight.keys()) if (key.startsWith(`${volumeId}:`)) return true;
    return false;
  }

  private async uploadUntilDone(volume: EngineVolume, chunk: DirtyChunk): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.uploadOnce(volume, chunk.objectChunkIndex);
        this.lastError = null;
        this.outage.succeeded();
        return;
      } catch (err) {
        this.counters.failedAttempts++;
        if (!isCloudError(err)) {
          this.log.error('upload failed', { volumeId: volume.volumeId, objectChunkIndex: chunk.objectChunkIndex, err: String(err) });
        } else {
          this.lastError = err;
          this.outage.failed(err, { volumeId: volume.volumeId, objectChunkIndex: chunk.objectChunkIndex });
        }
        const waitMs = isTransientCloudError(err)
          ? backoffDelayMs({ ...this.retry, maxAttempts: Infinity }, Math.min(attempt, 20))
          : this.permanentErrorDelayMs;
        await delay(waitMs, undefined, { signal: this.abort.signal }).catch(() => undefined);
      }
    }
  }

  private async uploadOnce(volume: EngineVolume, objectChunkIndex: number): Promise<void> {
    const { sequence, data } = await volume.readObjectChunk(objectChunkIndex);
    if (sequence === undefined) return; // cleaned by another upload of the same chunk
    let chunkSha256: Buffer | null = null;
    if (data !== null) {
      chunkSha256 = await sha256Async(data);
      const previous = volume.uploadedState(objectChunkIndex);
      if (previous === undefined || !previous.sha256.equals(chunkSha256)) {
        const key = chunkObjectKey(volume.volumeId, objectChunkIndex, chunkSha256.toString('hex'));
        const release = await this.engine.chunkGuard.use(key);
        try {
          if ((await this.engine.objectStore.head(key)) === null && (await this.putChunk(key, data, chunkSha256))) {
            this.counters.uploadedChunks++;
            this.counters.uploadedBytes += data.length;
          } else {
            this.counters.skippedExisting++;
          }
        } finally {
          release();
        }
      } else {
        this.counters.skippedExisting++;
      }
    }
    if (await volume.markUploaded(objectChunkIndex, sequence, chunkSha256)) {
      this.markHeadDirty(volume.volumeId);
    } else {
      this.counters.superseded++;
    }
  }

  /** Create-only put of a content-addressed chunk: false when it exists already (the same bytes,
   *  its name is their hash). */
  private async putChunk(key: string, data: Buffer, chunkSha256: Buffer): Promise<boolean> {
    await this.limiter?.acquire(data.length);
    try {
      await this.engine.objectStore.put(key, data, { checksumSha256: chunkSha256.toString('base64'), createOnly: true });
      return true;
    } catch (err) {
      if (err instanceof CloudError && err.code === 'CLOUD_EXISTS') return false;
      throw err;
    }
  }

  private markHeadDirty(volumeId: number): void {
    this.headsDirty.add(volumeId);
  }

  /** Puts the volume's head.json (after its chunks: it refers only to confirmed objects). */
  private writeHead(volumeId: number): void {
    if (this.stopped || !this.headsDirty.has(volumeId) || this.headWrites.has(volumeId)) return;
    const volume = this.engine.volumeOf(volumeId);
    if (volume === undefined) return;
    this.headsDirty.delete(volumeId);
    const write = this.putHeadUntilDone(volume).finally(() => {
      this.headWrites.delete(volumeId);
      this.writeHead(volumeId); // dirtied again while it was written
      this.wakeIdleWaiters();
    });
    this.headWrites.set(volumeId, write);
  }

  private async putHeadUntilDone(volume: EngineVolume): Promise<void> {
    const record = volume.volume;
    for (let attempt = 0; !this.stopped; attempt++) {
      // Built at each attempt: the chunk list is the uploaded state now (garbage collection marks
      // from it, so it must never name an object the volume no longer refers to for long).
      const manifest: HeadManifest = {
        format: 2,
        ...(this.engine.gatewayId !== undefined ? { gatewayId: this.engine.gatewayId } : {}),
        volumeId: record.id,
        name: record.name,
        type: record.type,
        createdAt: record.createdAt,
        updatedAt: new Date().toISOString(),
        sizeBytes: record.sizeBytes,
        blockSize: record.blockSize,
        chunkSizeBytes: OBJECT_CHUNK_SIZE_BYTES,
        ...chunkListOf(volume.uploadedChunks(), record.id),
      };
      const body = Buffer.from(JSON.stringify(manifest), 'utf8');
      try {
        await this.engine.objectStore.put(headManifestKey(record.id), body, { metadata: { format: '2' } });
        this.counters.manifestsWritten++;
        this.outage.succeeded();
        return;
      } catch (err) {
        this.counters.failedAttempts++;
        this.outage.failed(err, { volumeId: record.id, key: headManifestKey(record.id) });
        const waitMs = isTransientCloudError(err)
          ? backoffDelayMs({ ...this.retry, maxAttempts: Infinity }, Math.min(attempt, 20))
          : this.permanentErrorDelayMs;
        await delay(waitMs, undefined, { signal: this.abort.signal }).catch(() => undefined);
      }
    }
    this.headsDirty.add(record.id); // stopped before it was written: the next start writes it
  }
}

function isCloudError(err: unknown): err is CloudError {
  return err instanceof Error && err.name === 'CloudError';
}
