// Volume snapshots (docs/storage-engine.md "Snapshots", docs/object-layout.md): point-in-time,
// incremental, content-addressed, and the account's: any gateway on the bucket lists them and
// restores volumes from them.
//
// create() captures the volume synchronously (LevelBlockStore.captureObjectChunks: a Level
// iterator snapshot plus a copy of the uploaded-chunk states), records the snapshot as pending,
// and returns; in the background every captured object chunk is hashed and, unless the previous
// snapshot of the volume already refers to the same content or the object exists already
// (uploaded by the uploader, or by another snapshot), put as a chunk object. The manifest
// `gateways/<gw>/snapshots/<snapId>.json` (self-describing: gateway, volume, size, block size,
// chunk list, time, description) is put last, create-only, after every object it refers to, and
// the snapshot becomes completed. Until then its chunk keys are held in the engine's
// ChunkObjectGuard, so garbage collection keeps them. A snapshot still pending when the gateway
// stops is marked error at the next start (its captured instant is gone).
//
// Snapshots of other gateways are found in the bucket (store/gateway-layout.ts); the local
// catalog holds this gateway's own, with their pending/error states. A volume restored from any
// snapshot (restoreInto) gets the manifest's chunks as evicted chunks whose objects are the
// snapshot's (in whichever gateway's prefix): readable at once, each chunk fetched on first use.
//
// Deleting a snapshot moves its manifest to `deleted/snapshots/<snapId>.json` (a tombstone with
// the deletion time): garbage collection keeps counting its chunks for a grace period, so a
// gateway that read the manifest just before (to restore a volume from it) has recorded its own
// reference by then.

import { randomBytes } from 'node:crypto';
import type { Logger } from '../../iscsi/log.js';
import type { Database } from '../store/database.js';
import {
  deleteSnapshotRecord,
  listSnapshots,
  putSnapshot,
  type SnapshotRecord,
} from '../store/snapshot-catalog.js';
import { CloudError } from '../cloud/cloud-error.js';
import { getIfExists, type ObjectStore } from '../cloud/object-store.js';
import { gatewayPrefix, listGatewayIds, LEGACY_GATEWAY_ID } from '../store/gateway-layout.js';
import { chunkListOf, manifestChunks, parseSnapshotManifest, type ChunkList, type HeadManifest, type SnapshotManifest } from '../store/snapshot-manifest.js';
import type { VolumeRecord } from '../store/volume-catalog.js';
import { tombstoneKey } from '../store/tombstone.js';
import {
  OBJECT_CHUNK_SIZE_BYTES,
  chunkObjectKey,
  headManifestKey,
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

/** Under the gateway's prefix (store/gateway-layout.ts). */
export function snapshotManifestKey(snapId: string): string {
  return `${SNAPSHOTS_PREFIX}${snapId}.json`;
}

export const SNAPSHOTS_PREFIX = 'snapshots/';

/** Where the layout before per-gateway prefixes put a snapshot's manifest. */
export function legacySnapshotManifestKey(volumeId: number, snapId: string): string {
  return `volumes/${volumeId}/snapshots/${snapId}.json`;
}

/** A snapshot as the account sees it: the record, and the gateway that took it. */
export type AccountSnapshot = SnapshotRecord & { gatewayId: string; volumeType?: 'cached' | 'stored' };

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

  /** This gateway's snapshots and every completed snapshot of the other gateways on the bucket,
   *  oldest first (one list request per gateway, one GET per foreign snapshot). */
  async listAccount(): Promise<AccountSnapshot[]> {
    const own = this.ownGatewayId();
    const out: AccountSnapshot[] = this.list().map((r) => ({ ...r, gatewayId: own }));
    for (const gatewayId of await listGatewayIds(this.engine.bucket)) {
      if (gatewayId === this.engine.gatewayId) continue;
      for (const snapId of await this.foreignSnapshotIds(gatewayId)) {
        const found = await this.foreignManifest(gatewayId, snapId);
        if (found !== null) out.push(accountSnapshotOf(found));
      }
    }
    return out.sort((a, b) => (a.startTime < b.startTime ? -1 : a.startTime > b.startTime ? 1 : a.snapId < b.snapId ? -1 : 1));
  }

  /** One snapshot of any gateway on the bucket. */
  async describe(snapId: string): Promise<AccountSnapshot> {
    const record = this.records.get(snapId);
    if (record !== undefined) return { ...record, gatewayId: this.ownGatewayId() };
    const found = await this.findForeign(snapId);
    if (found === null) throw new GatewayError('GW_SNAPSHOT_NOT_FOUND', `no snapshot ${snapId} on this gateway or any gateway of the bucket`);
    return accountSnapshotOf(found);
  }

  /** The completed snapshots in `gatewayId`'s prefix (recovery of a lost gateway), newest last. */
  async snapshotsOf(gatewayId: string): Promise<SnapshotManifest[]> {
    const out: SnapshotManifest[] = [];
    for (const snapId of await this.foreignSnapshotIds(gatewayId)) {
      const found = await this.foreignManifest(gatewayId, snapId);
      if (found !== null) out.push(found);
    }
    return out.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
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
    // The objects the volume refers to at this instant stay until the manifest names them.
    const pins: Array<Promise<() => void>> = volume
      .uploadedChunks()
      .filter(([, state]) => state.sourceGatewayId === undefined)
      .map(([index, state]) => this.engine.chunkGuard.use(chunkObjectKey(state.sourceVolumeId ?? volumeId, index, state.sha256.toString('hex'))));
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
      .then(() => this.upload(volume, record, capture, previous, pins))
      .catch(async (err: unknown) => {
        record.status = 'error';
        record.error = String(err);
        this.log.error('snapshot failed', { snapId: record.snapId, volumeId, err: String(err) });
        await putSnapshot(this.db, record).catch(() => undefined);
      })
      .finally(async () => {
        for (const release of await Promise.all(pins)) release();
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

  /** Deletes the snapshot's record and moves its manifest to a tombstone (chunk objects other
   *  snapshots and volumes do not share go at a garbage collection after the grace period). */
  async delete(snapId: string): Promise<void> {
    const record = this.get(snapId);
    if (record.status === 'pending') {
      throw new GatewayError('GW_SNAPSHOT_INVALID_STATE', `snapshot ${snapId} is still pending`);
    }
    const store = this.engine.objectStore;
    for (const key of [snapshotManifestKey(snapId), legacySnapshotManifestKey(record.volumeId, snapId)]) {
      const body = await getIfExists(store, key);
      if (body === null) continue;
      await store.put(tombstoneKey(key), body, { metadata: { 'deleted-at': this.now().toISOString() } });
      await store.delete(key);
    }
    await deleteSnapshotRecord(this.db, snapId);
    this.records.delete(snapId);
  }

  /** A completed snapshot's manifest, of this gateway or any other on the bucket (from the
   *  object store: it is the snapshot). */
  async manifest(snapId: string): Promise<SnapshotManifest> {
    const record = this.records.get(snapId);
    if (record === undefined) {
      const found = await this.findForeign(snapId);
      if (found === null) throw new GatewayError('GW_SNAPSHOT_NOT_FOUND', `no snapshot ${snapId} on this gateway or any gateway of the bucket`);
      return found;
    }
    if (record.status !== 'completed') {
      throw new GatewayError('GW_SNAPSHOT_INVALID_STATE', `snapshot ${snapId} is ${record.status}, not completed`);
    }
    for (const key of [snapshotManifestKey(snapId), legacySnapshotManifestKey(record.volumeId, snapId)]) {
      const body = await getIfExists(this.engine.objectStore, key);
      if (body !== null) return parseSnapshotManifest(body, key);
    }
    throw new GatewayError('GW_SNAPSHOT_NOT_FOUND', `snapshot ${snapId}: its manifest is missing from the object store`);
  }

  /** Makes the (new, not yet served) volume `record` hold the snapshot's content, from any
   *  gateway of the bucket: each chunk is fetched lazily from the snapshot's objects when first
   *  read or partially rewritten. */
  async restoreInto(snapId: string, record: Pick<VolumeRecord, 'id' | 'name' | 'type' | 'sizeBytes' | 'blockSize' | 'createdAt'>): Promise<void> {
    const manifest = await this.manifest(snapId);
    await this.restoreManifestInto({ ...manifest, what: `snapshot ${snapId}` }, record);
  }

  /** The same from any manifest with a chunk list (a snapshot, or a volume's head.json: its
   *  recovery point). The volume's own head.json is stored at once, naming the objects it now
   *  refers to, so garbage collection on the gateways that hold them keeps them from here on. */
  async restoreManifestInto(
    source: ChunkList & { volumeId: number; gatewayId?: string | undefined; sizeBytes: number; what: string },
    record: Pick<VolumeRecord, 'id' | 'name' | 'type' | 'sizeBytes' | 'blockSize' | 'createdAt'>,
  ): Promise<void> {
    if (record.sizeBytes < source.sizeBytes) {
      throw new GatewayError(
        'GW_SNAPSHOT_INVALID_ARGUMENT',
        `the volume (${record.sizeBytes} bytes) must be at least as large as ${source.what} (${source.sizeBytes} bytes)`,
      );
    }
    const own = this.engine.gatewayId;
    const chunks = manifestChunks(source).map((chunk) => (chunk.sourceGatewayId === own ? { ...chunk, sourceGatewayId: undefined } : chunk));
    await this.engine.seedVolume(record.id, chunks);
    const head: HeadManifest = {
      format: 2,
      ...(own !== undefined ? { gatewayId: own } : {}),
      volumeId: record.id,
      name: record.name,
      type: record.type,
      createdAt: record.createdAt,
      updatedAt: this.now().toISOString(),
      sizeBytes: record.sizeBytes,
      blockSize: record.blockSize,
      chunkSizeBytes: OBJECT_CHUNK_SIZE_BYTES,
      ...chunkListOf(
        chunks.map((c): [number, { sha256: Buffer; sourceVolumeId: number; sourceGatewayId?: string }] => [
          c.objectChunkIndex,
          { sha256: c.sha256, sourceVolumeId: c.sourceVolumeId, ...(c.sourceGatewayId !== undefined ? { sourceGatewayId: c.sourceGatewayId } : {}) },
        ]),
        record.id,
      ),
    };
    await this.engine.objectStore.put(headManifestKey(record.id), Buffer.from(JSON.stringify(head), 'utf8'), { metadata: { format: '2' } });
  }

  /** Waits for running snapshots; later create() calls are refused. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.running.values()]);
  }

  private ownGatewayId(): string {
    return this.engine.gatewayId ?? LEGACY_GATEWAY_ID;
  }

  private async foreignSnapshotIds(gatewayId: string): Promise<string[]> {
    const prefix = gatewayPrefix(gatewayId) + SNAPSHOTS_PREFIX;
    const ids: string[] = [];
    for await (const entry of this.engine.bucket.list(prefix)) {
      const name = entry.key.slice(prefix.length);
      if (name.endsWith('.json') && isSnapshotId(name.slice(0, -5))) ids.push(name.slice(0, -5));
    }
    return ids;
  }

  /** A format-2 manifest in another gateway's prefix (it names its gateway), or null. */
  private async foreignManifest(gatewayId: string, snapId: string): Promise<SnapshotManifest | null> {
    const key = gatewayPrefix(gatewayId) + snapshotManifestKey(snapId);
    const body = await getIfExists(this.engine.bucket, key);
    if (body === null) return null;
    const manifest = parseSnapshotManifest(body, key);
    return { ...manifest, gatewayId: manifest.gatewayId ?? gatewayId };
  }

  private async findForeign(snapId: string): Promise<SnapshotManifest | null> {
    if (!isSnapshotId(snapId)) return null;
    for (const gatewayId of await listGatewayIds(this.engine.bucket)) {
      if (gatewayId === this.engine.gatewayId) continue;
      const found = await this.foreignManifest(gatewayId, snapId);
      if (found !== null) return found;
    }
    return null;
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
    pins: Array<Promise<() => void>>,
  ): Promise<void> {
    const previousChunks = previous === undefined ? {} : (await this.manifest(previous.snapId)).chunks;
    const { objectStore } = this.engine;
    const totalObjectChunks = Math.max(1, Math.ceil(record.volumeSizeBytes / OBJECT_CHUNK_SIZE_BYTES));
    const states: Array<[number, { sha256: Buffer; sourceVolumeId?: number; sourceGatewayId?: string }]> = [];
    for await (const chunk of capture) {
      const indexHex = chunk.objectChunkIndex.toString(16);
      if ('data' in chunk) {
        const digest = sha256(chunk.data);
        const shaHex = digest.toString('hex');
        states.push([chunk.objectChunkIndex, { sha256: digest }]);
        const key = chunkObjectKey(record.volumeId, chunk.objectChunkIndex, shaHex);
        // Held until the manifest is stored (garbage collection keeps it meanwhile).
        pins.push(this.engine.chunkGuard.use(key));
        await pins[pins.length - 1];
        if (previousChunks[indexHex] === shaHex) {
          this.counters.unchangedChunks++;
        } else if ((await objectStore.head(key)) !== null || !(await putCreateOnly(objectStore, key, chunk.data, digest))) {
          this.counters.existingChunks++;
        } else {
          this.counters.uploadedChunks++;
          this.counters.uploadedBytes += chunk.data.length;
          record.uploadedChunks++;
        }
      } else {
        // Not resident: its object is stored already (the uploader evicts only uploaded chunks).
        states.push([
          chunk.objectChunkIndex,
          {
            sha256: chunk.sha256,
            sourceVolumeId: chunk.sourceVolumeId,
            ...(chunk.sourceGatewayId !== undefined ? { sourceGatewayId: chunk.sourceGatewayId } : {}),
          },
        ]);
        this.counters.unchangedChunks++;
      }
      record.chunkCount++;
      record.progress = Math.min(99, Math.floor(((chunk.objectChunkIndex + 1) * 100) / totalObjectChunks));
    }
    const manifest: SnapshotManifest = {
      format: 2,
      gatewayId: this.ownGatewayId(),
      volumeId: record.volumeId,
      volumeName: record.volumeName,
      volumeType: volume.volume.type,
      snapId: record.snapId,
      description: record.description,
      createdAt: record.startTime,
      sizeBytes: record.volumeSizeBytes,
      blockSize: volume.volume.blockSize,
      chunkSizeBytes: OBJECT_CHUNK_SIZE_BYTES,
      ...chunkListOf(states, record.volumeId),
    };
    await objectStore.put(snapshotManifestKey(record.snapId), Buffer.from(JSON.stringify(manifest), 'utf8'), {
      metadata: { format: '2' },
      createOnly: true,
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

function accountSnapshotOf(manifest: SnapshotManifest): AccountSnapshot {
  return {
    snapId: manifest.snapId,
    gatewayId: manifest.gatewayId ?? LEGACY_GATEWAY_ID,
    volumeId: manifest.volumeId,
    volumeName: manifest.volumeName ?? `volume ${manifest.volumeId}`,
    ...(manifest.volumeType !== undefined ? { volumeType: manifest.volumeType } : {}),
    volumeSizeBytes: manifest.sizeBytes,
    description: manifest.description ?? '',
    status: 'completed',
    progress: 100,
    startTime: manifest.createdAt,
    uploadedChunks: 0,
    chunkCount: Object.keys(manifest.chunks).length,
  };
}


/** Create-only put of a content-addressed chunk: false when it exists already. */
async function putCreateOnly(store: ObjectStore, key: string, data: Buffer, digest: Buffer): Promise<boolean> {
  try {
    await store.put(key, data, { checksumSha256: digest.toString('base64'), createOnly: true });
    return true;
  } catch (err) {
    if (err instanceof CloudError && err.code === 'CLOUD_EXISTS') return false;
    throw err;
  }
}
