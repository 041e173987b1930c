// Upload-related volume status (reference §2.2, AWS "Managing local storage"): when the upload
// buffer fills, volumes go PASS THROUGH (writes are kept locally, no snapshots); once the buffer
// has room again they are BOOTSTRAPPING (re-syncing the backlog) and AVAILABLE when it is drained.
// The upload buffer is gateway-wide, so the status is the same for every volume; the tracker
// follows the upload queue and exposes counters for the API and metrics.

import type { StorageEngine } from '../store/storage-engine.js';

export type UploadVolumeStatus = 'AVAILABLE' | 'PASS THROUGH' | 'BOOTSTRAPPING';

export type UploadBufferEvent =
  /** A new dirty chunk no longer fits in the upload buffer. */
  | 'bufferFull'
  /** The buffer has room again. */
  | 'bufferHasRoom'
  /** Nothing is left to upload. */
  | 'backlogDrained';

export function transition(status: UploadVolumeStatus, event: UploadBufferEvent): UploadVolumeStatus {
  switch (event) {
    case 'bufferFull':
      return 'PASS THROUGH';
    case 'bufferHasRoom':
      return status === 'PASS THROUGH' ? 'BOOTSTRAPPING' : status;
    case 'backlogDrained':
      return status === 'BOOTSTRAPPING' ? 'AVAILABLE' : status;
  }
}

export interface StorageCounters {
  status: UploadVolumeStatus;
  /** VolumeProgress while BOOTSTRAPPING: share of the backlog (at the time the buffer had room) uploaded. */
  progressPercent?: number;
  uploadBufferUsedBytes: number;
  uploadBufferSizeBytes: number;
  /** Dirty object chunks waiting for upload. */
  uploadBacklogChunks: number;
  cacheUsedBytes: number;
  cacheSizeBytes: number;
  /** Reads served without a fetch from the object store / all reads of cached volumes. */
  cacheHitPercent: number;
}

export class VolumeStatusTracker {
  private readonly engine: StorageEngine;
  private current: UploadVolumeStatus = 'AVAILABLE';
  private backlogAtRoomChunks = 0;
  private readonly unsubscribe: () => void;

  constructor(engine: StorageEngine) {
    this.engine = engine;
    this.unsubscribe = engine.queue.onChange(() => this.observe());
    this.observe();
  }

  get status(): UploadVolumeStatus {
    return this.current;
  }

  /** Applies what the queue shows now. */
  observe(): void {
    const queue = this.engine.queue;
    const before = this.current;
    if (queue.isFull()) this.current = transition(this.current, 'bufferFull');
    else this.current = transition(this.current, 'bufferHasRoom');
    if (before === 'PASS THROUGH' && this.current === 'BOOTSTRAPPING') this.backlogAtRoomChunks = queue.dirtyChunkCount;
    if (queue.dirtyChunkCount === 0) this.current = transition(this.current, 'backlogDrained');
  }

  counters(): StorageCounters {
    const { queue, cache } = this.engine;
    const reads = cache.hits + cache.misses;
    const out: StorageCounters = {
      status: this.current,
      uploadBufferUsedBytes: queue.dirtyBytes,
      uploadBufferSizeBytes: queue.limitBytes,
      uploadBacklogChunks: queue.dirtyChunkCount,
      cacheUsedBytes: cache.residentBytes,
      cacheSizeBytes: cache.sizeBytes,
      cacheHitPercent: reads === 0 ? 100 : (100 * cache.hits) / reads,
    };
    if (this.current === 'BOOTSTRAPPING' && this.backlogAtRoomChunks > 0) {
      const done = Math.max(0, this.backlogAtRoomChunks - queue.dirtyChunkCount);
      out.progressPercent = Math.round((1000 * done) / this.backlogAtRoomChunks) / 10;
    }
    return out;
  }

  close(): void {
    this.unsubscribe();
  }
}
