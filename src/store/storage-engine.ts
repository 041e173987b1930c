// The storage engine behind the volumes' block stores (docs/storage-engine.md): the upload queue,
// the last uploaded state of every 1 MiB object chunk (key space OBJECT), the cache of cached
// volumes, and the object store that holds the uploaded copy (layout: docs/object-layout.md).
//
// main.ts opens one engine per database and passes it to every volume store it opens
// (VolumeStoreContext.engine); a store joins it with `attach`. A store without an engine (unit
// tests of the block store) keeps blocks locally only.

import { createHash, webcrypto } from 'node:crypto';
import type { ObjectStore } from '../cloud/object-store.js';
import { ChunkCache } from './chunk-cache.js';
import { ChunkObjectGuard } from './chunk-object-guard.js';
import type { Database } from './database.js';
import type { BatchOp } from './group-commit.js';
import { gatewayPrefix } from './gateway-layout.js';
import { KeySpace, decodeObjectChunkKey, keySpaceRange, objectChunkKey } from './keys.js';
import { UploadQueue } from './upload-queue.js';
import type { VolumeRecord } from './volume-catalog.js';

/** Object chunk size of the object layout (1 MiB = 64 Level chunks of 16 KiB). */
export const OBJECT_CHUNK_SIZE_BYTES = 1024 * 1024;

/** The last uploaded content of an object chunk, and whether its blocks are in Level. */
export interface ObjectChunkState {
  sha256: Buffer;
  resident: boolean;
  /** The volume whose chunk objects hold this content, when not this one (a volume restored from
   *  a snapshot reads the snapshot's objects until it rewrites the chunk). */
  sourceVolumeId?: number;
  /** The gateway whose prefix holds that volume's objects, when not this gateway (a snapshot of
   *  another gateway on the bucket, store/gateway-layout.ts). */
  sourceGatewayId?: string;
}

/** Where a chunk's object lives: a volume, of this gateway or of `gatewayId`. */
export interface ChunkSource {
  volumeId: number;
  gatewayId?: string;
}

/** Bandwidth limiting for transfers (rate-limiter.ts implements it in the gateway layer). */
export interface TransferLimiter {
  acquire(lengthBytes: number): Promise<void>;
}

/** What the uploader needs of a volume's block store (SegmentBlockStore). */
export interface EngineVolume {
  readonly volumeId: number;
  readonly volume: Readonly<VolumeRecord>;
  /** The chunk's current content (null = all zeros) and the dirty sequence noted BEFORE reading
   *  it (undefined = clean: nothing to upload). */
  readObjectChunk(objectChunkIndex: number): Promise<{ sequence: number | undefined; data: Buffer | null }>;
  /** The last uploaded content of the chunk. */
  uploadedState(objectChunkIndex: number): ObjectChunkState | undefined;
  /** After the object store confirmed `sha256` (null: the chunk is all zeros, nothing stored):
   *  if the chunk's sequence is still `sequence`, records it and removes the queue entry in one
   *  synced batch and answers true; otherwise (a newer write) changes nothing and answers false. */
  markUploaded(objectChunkIndex: number, sequence: number, sha256: Buffer | null): Promise<boolean>;
  /** Once per volume: queues chunks holding blocks that were never tracked; answers how many. */
  adoptUntrackedChunks(): Promise<number>;
  /** Every uploaded chunk: [objectChunkIndex, state], in index order. */
  uploadedChunks(): Array<[number, ObjectChunkState]>;
  /** The volume's content at the instant of the call (snapshots; SegmentBlockStore documents it). */
  captureObjectChunks(): ObjectChunkCapture;
}

/** A point-in-time capture: iterate it once; close() releases it (idempotent, also when it was
 *  never iterated). */
export interface ObjectChunkCapture extends AsyncIterable<CapturedObjectChunk> {
  close(): Promise<void>;
}

/** One object chunk of a point-in-time capture: its bytes, or the stored object holding them. */
export type CapturedObjectChunk =
  | { objectChunkIndex: number; data: Buffer }
  | { objectChunkIndex: number; sha256: Buffer; sourceVolumeId: number; sourceGatewayId?: string };

export interface StorageEngineOptions {
  /** This gateway's objects: its own prefix of the bucket (store/gateway-layout.ts). */
  objectStore: ObjectStore;
  /** The whole bucket, for chunks other gateways hold (default: objectStore, one gateway). */
  bucket?: ObjectStore;
  gatewayId?: string;
  uploadBufferSizeBytes: number;
  cacheSizeBytes: number;
  /** How long a write that needs a new dirty chunk waits for room in a full upload buffer. */
  bufferHoldMs: number;
  downloadLimiter?: TransferLimiter;
}

const RESIDENT_FLAG = 0x01;

export class StorageEngine {
  readonly db: Database;
  readonly queue: UploadQueue;
  readonly objectStore: ObjectStore;
  readonly bucket: ObjectStore;
  readonly gatewayId: string | undefined;
  readonly cache: ChunkCache;
  /** Writers of chunk objects and the garbage collector meet here (chunk-object-guard.ts). */
  readonly chunkGuard = new ChunkObjectGuard();
  readonly bufferHoldMs: number;
  downloadLimiter: TransferLimiter | null;
  /** When an initiator last read or wrote a volume (the uploader yields to them). */
  lastForegroundIoMs = 0;
  private readonly states: Map<number, Map<number, ObjectChunkState>>;
  private readonly volumes = new Map<number, EngineVolume>();
  private readonly attachListeners = new Set<(volume: EngineVolume) => void>();

  private constructor(db: Database, queue: UploadQueue, states: Map<number, Map<number, ObjectChunkState>>, opts: StorageEngineOptions) {
    this.db = db;
    this.queue = queue;
    this.states = states;
    this.objectStore = opts.objectStore;
    this.bucket = opts.bucket ?? opts.objectStore;
    this.gatewayId = opts.gatewayId;
    this.bufferHoldMs = opts.bufferHoldMs;
    this.downloadLimiter = opts.downloadLimiter ?? null;
    this.cache = new ChunkCache({ capacityBytes: opts.cacheSizeBytes, objectChunkSizeBytes: OBJECT_CHUNK_SIZE_BYTES });
  }

  /** Loads the upload queue and the object chunk states left by the previous run. */
  static async open(db: Database, opts: StorageEngineOptions): Promise<StorageEngine> {
    const queue = await UploadQueue.open(db, {
      objectChunkSizeBytes: OBJECT_CHUNK_SIZE_BYTES,
      bufferSizeBytes: opts.uploadBufferSizeBytes,
    });
    const states = new Map<number, Map<number, ObjectChunkState>>();
    for await (const [key, value] of db.level.iterator(keySpaceRange(KeySpace.OBJECT))) {
      const { volumeId, objectChunkIndex } = decodeObjectChunkKey(key);
      let chunks = states.get(volumeId);
      if (chunks === undefined) states.set(volumeId, (chunks = new Map()));
      chunks.set(objectChunkIndex, decodeState(value));
    }
    return new StorageEngine(db, queue, states, opts);
  }

  /** The object chunk states of one volume (shared, mutable: the volume's block store owns it). */
  statesOf(volumeId: number): Map<number, ObjectChunkState> {
    let chunks = this.states.get(volumeId);
    if (chunks === undefined) this.states.set(volumeId, (chunks = new Map()));
    return chunks;
  }

  /** A block store joins the engine (the latest one built for a volume id wins). */
  attach(volume: EngineVolume): void {
    this.volumes.set(volume.volumeId, volume);
    for (const listener of this.attachListeners) listener(volume);
  }

  volumeOf(volumeId: number): EngineVolume | undefined {
    return this.volumes.get(volumeId);
  }

  attachedVolumes(): EngineVolume[] {
    return [...this.volumes.values()];
  }

  /** Every volume's uploaded chunk states (attached or not): what this gateway refers to now. */
  allUploadedStates(): Array<{ volumeId: number; states: Array<[number, ObjectChunkState]> }> {
    return [...this.states].map(([volumeId, chunks]) => ({ volumeId, states: [...chunks].map(([i, s]): [number, ObjectChunkState] => [i, { ...s }]) }));
  }

  /** A deleted volume: drops its queue entries, uploaded states and cached chunks (its objects
   *  stay in the object store for snapshots and garbage collection). */
  async forgetVolume(volumeId: number): Promise<void> {
    this.volumes.delete(volumeId);
    for (const chunk of this.queue.pending()) {
      if (chunk.volumeId !== volumeId) continue;
      this.queue.markClean(volumeId, chunk.objectChunkIndex, chunk.sequence);
      this.cache.forget(volumeId, chunk.objectChunkIndex);
    }
    for (const objectChunkIndex of this.states.get(volumeId)?.keys() ?? []) this.cache.forget(volumeId, objectChunkIndex);
    this.states.delete(volumeId);
    await this.db.groupCommit.drain();
    for (const space of [KeySpace.UPLOAD, KeySpace.OBJECT] as const) {
      await this.db.level.clear({
        gte: objectChunkKey(space, volumeId, 0),
        lte: objectChunkKey(space, volumeId, Number.MAX_SAFE_INTEGER),
      });
    }
  }

  /** A volume created from a snapshot, before its block store is built: every chunk of the
   *  snapshot becomes an evicted (non-resident) chunk whose content the store fetches on first
   *  use from the snapshot's objects (docs/storage-engine.md "Snapshots"). Durable on return. */
  async seedVolume(
    volumeId: number,
    chunks: ReadonlyArray<{ objectChunkIndex: number; sha256: Buffer; sourceVolumeId: number; sourceGatewayId?: string | undefined }>,
  ): Promise<void> {
    const states = this.statesOf(volumeId);
    let ops: BatchOp[] = [];
    for (const chunk of chunks) {
      const state: ObjectChunkState = { sha256: chunk.sha256, resident: false };
      const foreign = chunk.sourceGatewayId !== undefined && chunk.sourceGatewayId !== this.gatewayId;
      if (foreign) state.sourceGatewayId = chunk.sourceGatewayId!;
      if (foreign || chunk.sourceVolumeId !== volumeId) state.sourceVolumeId = chunk.sourceVolumeId;
      states.set(chunk.objectChunkIndex, state);
      ops.push(stateOp(volumeId, chunk.objectChunkIndex, state));
      if (ops.length >= 1024) {
        await this.db.groupCommit.commit(ops);
        ops = [];
      }
    }
    if (ops.length > 0) await this.db.groupCommit.commit(ops);
  }

  /** The stored object of an uploaded chunk of volume `volumeId` in `state`: its key in the bucket
   *  (for messages) and its body (whole, SHA-256 verified by the store). */
  async getChunkObject(volumeId: number, objectChunkIndex: number, state: ObjectChunkState): Promise<{ key: string; data: Buffer }> {
    const key = chunkObjectKey(state.sourceVolumeId ?? volumeId, objectChunkIndex, state.sha256.toString('hex'));
    if (state.sourceGatewayId === undefined) return { key, data: await this.objectStore.get(key) };
    const bucketKey = gatewayPrefix(state.sourceGatewayId) + key;
    return { key: bucketKey, data: await this.bucket.get(bucketKey) };
  }

  onAttach(listener: (volume: EngineVolume) => void): () => void {
    this.attachListeners.add(listener);
    return () => {
      this.attachListeners.delete(listener);
    };
  }
}

export function stateOp(volumeId: number, objectChunkIndex: number, state: ObjectChunkState | null): BatchOp {
  const key = objectChunkKey(KeySpace.OBJECT, volumeId, objectChunkIndex);
  if (state === null) return { type: 'del', key };
  const parts = [state.sha256, Buffer.of(state.resident ? RESIDENT_FLAG : 0)];
  if (state.sourceVolumeId !== undefined) {
    const source = Buffer.alloc(4);
    source.writeUInt32BE(state.sourceVolumeId);
    parts.push(source);
    // The source gateway's id (ASCII) follows the volume id when the chunk is another gateway's.
    if (state.sourceGatewayId !== undefined) parts.push(Buffer.from(state.sourceGatewayId, 'latin1'));
  }
  return { type: 'put', key, value: Buffer.concat(parts) };
}

function decodeState(value: Buffer): ObjectChunkState {
  const state: ObjectChunkState = { sha256: Buffer.from(value.subarray(0, 32)), resident: ((value[32] ?? 0) & RESIDENT_FLAG) !== 0 };
  if (value.length >= 37) state.sourceVolumeId = value.readUInt32BE(33);
  if (value.length > 37) state.sourceGatewayId = value.subarray(37).toString('latin1');
  return state;
}

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

/** sha256 on the thread pool (WebCrypto digest): the uploader hashes whole 1 MiB chunks. */
export async function sha256Async(data: Buffer): Promise<Buffer> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', data));
}

/** docs/object-layout.md: volumes/<volumeId>/chunks/<chunkIndex hex, 8+ digits>/<sha256 hex>, under
 *  the gateway's prefix. The one place a chunk object is named: the name is the content's SHA-256
 *  (a keyed hash can replace it here and in the hashing callers, sha256/sha256Async). */
export function chunkObjectKey(volumeId: number, objectChunkIndex: number, sha256Hex: string): string {
  return `volumes/${volumeId}/chunks/${objectChunkIndex.toString(16).padStart(8, '0')}/${sha256Hex}`;
}

/** docs/object-layout.md: the manifest of the latest uploaded state of a volume. */
export function headManifestKey(volumeId: number): string {
  return `volumes/${volumeId}/head.json`;
}
