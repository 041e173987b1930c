// Volume snapshots (docs/storage-engine.md "Snapshots", docs/object-layout.md): point-in-time,
// incremental, content-addressed.
//
// create() captures the volume synchronously (LevelBlockStore.captureObjectChunks: a Level
// iterator snapshot plus a copy of the uploaded-chunk states), records the snapshot as pending,
// and returns; in the background every captured object chunk is hashed and, unless the previous
// snapshot of the volume already refers to the same content or the object exists already
// (uploaded by the uploader, or by another snapshot), put as a chunk object. The manifest
// `volumes/<volumeId>/snapshots/<snapId>.json` is put last, after every object it refers to,
// and the snapshot becomes completed. A snapshot still pending when the gateway stops is marked
// error at the next start (its captured instant is gone).
//
// A volume restored from a snapshot (restoreInto) gets the manifest's chunks as evicted chunks
// whose objects are the snapshot's: it is readable at once and fetches each chunk on first use.

import { randomBytes } from 'node:crypto';
import type { Logger } from '../../iscsi/log.js';
import type { Database } from '../store/database.js';
import {
  deleteSnapshotRecord,
  listSnapshots,
  putSnapshot,
  type SnapshotRecord,
} from '../store/snapshot-catalog.js';
import { parseSnapshotManifest, type SnapshotManifest } from '../store/snapshot-manifest.js';
import {
  OBJECT_CHUNK_SIZE_BYTES,
  chunkObjectKey,
  sha256,
  type EngineVolume,
  type ObjectChunkCapture,
  type StorageEngine,
} from '../store/storage-engine.js';
import { GatewayError } from './gateway-error.js';

/** docs/object-layout.md "Manifest", for a snapshot (store/snapshot-manifest.ts). */
export type { SnapshotManifest };

export interface SnapshotCounters {
  /** Chunk objects put by snapshots. */
  uploadedChunks: number;
  uploadedBytes: number;
  /** Chunks the previous snapshot of the volume already held (no request at all). */
  unchangedChunks: number;
  /** Chunks whose object already existed (a HEAD, no upload). */
  existingChunks: number;
}

export interface SnapshotServiceOptions {
  db: Database;
  engine: StorageEngine;
  log: Logger;
  /** Clock for snapshot times (tests). */
  now?: () => Date;
}

const SNAPSHOT_ID_PATTERN = /^snap-([0-9a-f]{8}|[0-9a-f]{17})$/;
const MAX_DESCRIPTION_LENGTH = 255;

export function snapshotManifestKey(volumeId: number, snapId: string): string {
  return `volumes/${volumeId}/snapshots/${snapId}.json`;
}

/** AWS snapshot ids: `snap-` + 17 lowercase hex digits. */
export function newSnapshotId(): string {
  return `snap-${randomBytes(9).toString('hex').slice(0, 17)}`;
}

export class SnapshotService {
  readonly counters: SnapshotCounters = { uploadedChunks: 0, uploadedBytes: 0, unchangedChunks: 0, existingChunks: 0 };
  private readonly db: Database;
  private readonly engine: StorageEngine;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly records = new Map<string, SnapshotRecord>();
  private readonly running = new Map<string, Promise<void>>();
  private closed = false;

  private constructor(opts: SnapshotServiceOptions) {
    this.db = opts.db;
    this.engine = opts.engine;
    this.log = opts.log;
    this.now = opts.now ?? (() => new Date());
  }

  /** Loads the catalog; snapshots left pending by a stop or crash become error. */
  static async open(opts: SnapshotServiceOptions): Promise<SnapshotService> {
    const service = new SnapshotService(opts);
    for (const record of await listSnapshots(opts.db)) {
      if (record.status === 'pending') {
        record.status = 'error';
        record.error = 'the gateway stopped before the snapshot completed';
        await putSnapshot(opts.db, record);
      }
      service.records.set(record.snapId, record);
    }
    return service;
  }

  /** Snapshots, oldest first; optionally of one volume. */
  list(volumeId?: number): SnapshotRecord[] {
    return [...this.records.values()]
      .filter((r) => volumeId === undefined || r.volumeId === volumeId)
      .sort((a, b) => (a.startTime < b.startTime ? -1 : a.startTime > b.startTime ? 1 : a.snapId < b.snapId ? -1 : 1))
      .map((r) => ({ ...r }));
  }

  get(snapId: string): SnapshotRecord {
    const record = this.records.get(snapId);
    if (record === undefined) throw new GatewayError('GW_SNAPSHOT_NOT_FOUND', `no snapshot ${snapId}`);
    return { ...record };
  }

  /** Captures the volume now and uploads the snapshot in the background (status pending). */
  async create(volumeId: number, description: string): Promise<SnapshotRecord> {
    if (description.length < 1 || description.length > MAX_DESCRIPTION_LENGTH) {
      throw new GatewayError('GW_SNAPSHOT_INVALID_ARGUMENT', `SnapshotDescription must be 1 to ${MAX_DESCRIPTION_LENGTH} characters`);
    }
    const volume = this.engine.volumeOf(volumeId);
    if (volume === undefined) throw new GatewayError('GW_VOLUME_NOT_FOUND', `no served volume with id ${volumeId}`);
    if (this.closed) throw new GatewayError('GW_SNAPSHOT_INVALID_STATE', 'the gateway is stopping');
    // The snapshot instant: nothing may be awaited between here and the capture.
    const capture = volume.captureObjectChunks();
    const startTime = this.now().toISOString();
    const previous = this.latestCompleted(volumeId);
    const record: SnapshotRecord = {
      snapId: this.uniqueId(),
      volumeId,
      volumeName: volume.volume.name,
      volumeSizeBytes: volume.volume.sizeBytes,
      description,
      status: 'pending',
      progress: 0,
      startTime,
      uploadedChunks: 0,
      chunkCount: 0,
    };
    this.records.set(record.snapId, record);
    const job = putSnapshot(this.db, record)
      .then(() => this.upload(volume, record, capture, previous))
      .catch(async (err: unknown) => {
        record.status = 'error';
        record.error = String(err);
        this.log.error('snapshot failed', { snapId: record.snapId, volumeId, err: String(err) });
        await putSnapshot(this.db, record).catch(() => undefined);
      })
      .finally(async () => {
        await capture.close(); // a job that failed before iterating never opened the generator
        this.running.delete(record.snapId);
      });
    this.running.set(record.snapId, job);
    return { ...record };
  }

  /** Resolves when the snapshot is no longer pending (completed or error). */
  async waitFor(snapId: string): Promise<SnapshotRecord> {
    await this.running.get(snapId);
    return this.get(snapId);
  }

  /** Deletes the snapshot's manifest and record. Its chunk objects stay: other snapshots and the
   *  volume's head may share them (garbage collection is future work, docs/object-layout.md). */
  async delete(snapId: string): Promise<void> {
    const record = this.get(snapId);
    if (record.status === 'pending') {
      throw new GatewayError('GW_SNAPSHOT_INVALID_STATE', `snapshot ${snapId} is still pending`);
    }
    await this.engine.objectStore.delete(snapshotManifestKey(record.volumeId, snapId));
    await deleteSnapshotRecord(this.db, snapId);
    this.records.delete(snapId);
  }

  /** A completed snapshot's manifest (from the object store: it is the snapshot). */
  async manifest(snapId: string): Promise<SnapshotManifest> {
    const record = this.get(snapId);
    if (record.status !== 'completed') {
      throw new GatewayError('GW_SNAPSHOT_INVALID_STATE', `snapshot ${snapId} is ${record.status}, not completed`);
    }
    const key = snapshotManifestKey(record.volumeId, snapId);
    return parseSnapshotManifest(await this.engine.objectStore.get(key), key);
  }

  /** Makes the (new, not yet served) volume `volumeId` hold the snapshot's content: each chunk is
   *  fetched lazily from the snapshot's objects when first read or partially rewritten. */
  async restoreInto(snapId: string, volumeId: number, sizeBytes: number): Promise<void> {
    const manifest = await this.manifest(snapId);
    if (sizeBytes < manifest.sizeBytes) {
      throw new GatewayError(
        'GW_SNAPSHOT_INVALID_ARGUMENT',
        `the volume (${sizeBytes} bytes) must be at least as large as snapshot ${snapId} (${manifest.sizeBytes} bytes)`,
      );
    }
    const chunks = Object.entries(manifest.chunks).map(([indexHex, shaHex]) => ({
      objectChunkIndex: Number.parseInt(indexHex, 16),
      sha256: Buffer.from(shaHex, 'hex'),
      sourceVolumeId: manifest.chunkVolumes?.[indexHex] ?? manifest.volumeId,
    }));
    await this.engine.seedVolume(volumeId, chunks);
  }

  /** Waits for running snapshots; later create() calls are refused. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.running.values()]);
  }

  private latestCompleted(volumeId: number): SnapshotRecord | undefined {
    return this.list(volumeId)
      .filter((r) => r.status === 'completed')
      .pop();
  }

  private uniqueId(): string {
    let id = newSnapshotId();
    while (this.records.has(id)) id = newSnapshotId();
    return id;
  }

  private async upload(
    volume: EngineVolume,
    record: SnapshotRecord,
    capture: ObjectChunkCapture,
    previous: SnapshotRecord | undefined,
  ): Promise<void> {
    const previousChunks = previous === undefined ? {} : (await this.manifest(previous.snapId)).chunks;
    const { objectStore } = this.engine;
    const totalObjectChunks = Math.max(1, Math.ceil(record.volumeSizeBytes / OBJECT_CHUNK_SIZE_BYTES));
    const chunks: Record<string, string> = {};
    const chunkVolumes: Record<string, number> = {};
    for await (const chunk of capture) {
      const indexHex = chunk.objectChunkIndex.toString(16);
      if ('data' in chunk) {
        const digest = sha256(chunk.data);
        const shaHex = digest.toString('hex');
        chunks[indexHex] = shaHex;
        if (previousChunks[indexHex] === shaHex) {
          this.counters.unchangedChunks++;
        } else {
          const key = chunkObjectKey(record.volumeId, chunk.objectChunkIndex, shaHex);
          if ((await objectStore.head(key)) !== null) {
            this.counters.existingChunks++;
          } else {
            await objectStore.put(key, chunk.data, { checksumSha256: digest.toString('base64') });
            this.counters.uploadedChunks++;
            this.counters.uploadedBytes += chunk.data.length;
            record.uploadedChunks++;
          }
        }
      } else {
        // Not resident: its object is stored already (the uploader evicts only uploaded chunks).
        chunks[indexHex] = chunk.sha256.toString('hex');
        if (chunk.sourceVolumeId !== record.volumeId) chunkVolumes[indexHex] = chunk.sourceVolumeId;
        this.counters.unchangedChunks++;
      }
      record.chunkCount++;
      record.progress = Math.min(99, Math.floor(((chunk.objectChunkIndex + 1) * 100) / totalObjectChunks));
    }
    const manifest: SnapshotManifest = {
      format: 1,
      volumeId: record.volumeId,
      snapId: record.snapId,
      createdAt: record.startTime,
      sizeBytes: record.volumeSizeBytes,
      blockSize: volume.volume.blockSize,
      chunkSizeBytes: OBJECT_CHUNK_SIZE_BYTES,
      chunks,
      ...(Object.keys(chunkVolumes).length > 0 ? { chunkVolumes } : {}),
    };
    await objectStore.put(snapshotManifestKey(record.volumeId, record.snapId), Buffer.from(JSON.stringify(manifest), 'utf8'), {
      metadata: { format: '1' },
    });
    record.status = 'completed';
    record.progress = 100;
    await putSnapshot(this.db, record);
    this.log.info('snapshot completed', { snapId: record.snapId, volumeId: record.volumeId, chunks: record.chunkCount, uploaded: record.uploadedChunks });
  }
}

export function isSnapshotId(value: string): boolean {
  return SNAPSHOT_ID_PATTERN.test(value);
}
