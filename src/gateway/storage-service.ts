// The storage engine as the gateway runs it (docs/storage-engine.md): the configured object store,
// the engine every volume's block store joins, the bandwidth limiters fed by the gateway settings,
// the background uploader and the upload-buffer status. main.ts starts it right after opening
// the database, before the volume registry builds the block stores.

import { join, resolve } from 'node:path';
import { silentLogger, type Logger } from '../../iscsi/log.js';
import { LocalObjectStore } from '../cloud/local-object-store.js';
import type { ObjectStore } from '../cloud/object-store.js';
import { PrefixedObjectStore } from '../cloud/prefixed-object-store.js';
import { gatewayPrefix } from '../store/gateway-layout.js';
import { S3ObjectStore } from '../cloud/s3-object-store.js';
import type { Config } from '../config.js';
import type { Database } from '../store/database.js';
import { StorageEngine } from '../store/storage-engine.js';
import { LocalDisks } from './local-disks.js';
import { encryptConfiguredObjectStore, readCaBundle, serverSideEncryption } from './object-encryption.js';
import { RateLimiter, type RateLimitSource } from './rate-limiter.js';
import { Uploader, type UploaderCounters } from './uploader.js';
import { VolumeStatusTracker, type StorageCounters } from './volume-status.js';

type ObjectStoreConfig = Pick<Config, 'objectStore' | 'dataDir'> & Partial<Pick<Config, 'encryption' | 'caBundle'>>;

/** The configured object store, behind client-side encryption when encryption.keySource is set. */
export async function openConfiguredObjectStore(config: ObjectStoreConfig, log: Logger = silentLogger): Promise<ObjectStore> {
  const inner = await openPlainObjectStore(config);
  if (config.encryption === undefined) return inner;
  return encryptConfiguredObjectStore(inner, { encryption: config.encryption, dataDir: config.dataDir, caBundle: config.caBundle }, log);
}

async function openPlainObjectStore(config: ObjectStoreConfig): Promise<ObjectStore> {
  const objectStore = config.objectStore;
  if (objectStore.type === 'local') {
    return LocalObjectStore.open(resolve(objectStore.path ?? join(config.dataDir, 'objects')));
  }
  const caBundle = await readCaBundle(config);
  return new S3ObjectStore({
    ...serverSideEncryption(objectStore),
    ...(caBundle !== undefined ? { caBundle } : {}),
    bucket: objectStore.bucket,
    region: objectStore.region,
    ...(objectStore.endpoint !== undefined ? { endpoint: objectStore.endpoint } : {}),
    ...(objectStore.prefix !== undefined ? { prefix: objectStore.prefix } : {}),
    ...(objectStore.forcePathStyle !== undefined ? { forcePathStyle: objectStore.forcePathStyle } : {}),
    ...(objectStore.accessKeyId !== undefined && objectStore.secretAccessKey !== undefined
      ? { credentials: { accessKeyId: objectStore.accessKeyId, secretAccessKey: objectStore.secretAccessKey } }
      : {}),
  });
}

export class StorageService {
  readonly engine: StorageEngine;
  readonly uploader: Uploader;
  readonly status: VolumeStatusTracker;
  readonly uploadLimiter: RateLimiter;
  readonly downloadLimiter: RateLimiter;
  /** The cache and upload-buffer disks (configured size + disks added through the API). */
  readonly disks: LocalDisks;

  private constructor(engine: StorageEngine, uploader: Uploader, uploadLimiter: RateLimiter, downloadLimiter: RateLimiter, disks: LocalDisks) {
    this.engine = engine;
    this.disks = disks;
    this.uploader = uploader;
    this.uploadLimiter = uploadLimiter;
    this.downloadLimiter = downloadLimiter;
    this.status = new VolumeStatusTracker(engine);
    disks.attach({
      resize: (allocation, totalBytes) => {
        if (allocation === 'cache') engine.cache.setCapacityBytes(totalBytes);
        else engine.queue.setLimitBytes(totalBytes);
        this.status.observe();
      },
    });
  }

  /** `bucket`: the configured object store, opened by the caller (default: opened here).
   *  `identity`: the gateway's objects go under `gateways/<gatewayId>/` of it; 'root-fallback'
   *  also reads keys missing there at the root (data dirs from before the per-gateway layout).
   *  Without an identity the engine uses the bucket as it is (tests of one gateway). */
  static async start(opts: {
    db: Database;
    config: Pick<Config, 'objectStore' | 'dataDir' | 'cache' | 'uploadBuffer'> & Partial<Pick<Config, 'encryption' | 'caBundle'>>;
    settings: RateLimitSource;
    log: Logger;
    bucket?: ObjectStore;
    identity?: { gatewayId: string; objectLayout: 'gateway-prefix' | 'root-fallback' };
  }): Promise<StorageService> {
    const { config, log, identity } = opts;
    const bucket = opts.bucket ?? (await openConfiguredObjectStore(config, log));
    const objectStore =
      identity === undefined
        ? bucket
        : new PrefixedObjectStore(bucket, gatewayPrefix(identity.gatewayId), { fallbackToRoot: identity.objectLayout === 'root-fallback' });
    const uploadLimiter = RateLimiter.forDirection(opts.settings, 'upload');
    const downloadLimiter = RateLimiter.forDirection(opts.settings, 'download');
    const disks = await LocalDisks.open(opts.db, { cacheSizeBytes: config.cache.sizeBytes, uploadBufferSizeBytes: config.uploadBuffer.sizeBytes });
    const engine = await StorageEngine.open(opts.db, {
      objectStore,
      bucket,
      ...(identity !== undefined ? { gatewayId: identity.gatewayId } : {}),
      uploadBufferSizeBytes: disks.totalBytes('uploadBuffer'),
      cacheSizeBytes: disks.totalBytes('cache'),
      bufferHoldMs: config.uploadBuffer.holdMs,
      downloadLimiter,
    });
    const uploader = new Uploader({ engine, log, uploadLimiter });
    uploader.start();
    log.info('storage engine started', {
      objectStore: objectStore.kind,
      ...(identity !== undefined ? { keyPrefix: gatewayPrefix(identity.gatewayId), objectLayout: identity.objectLayout } : {}),
      uploadBufferBytes: disks.totalBytes('uploadBuffer'),
      cacheBytes: disks.totalBytes('cache'),
      uploadBacklogChunks: engine.queue.dirtyChunkCount,
    });
    return new StorageService(engine, uploader, uploadLimiter, downloadLimiter, disks);
  }

  counters(): StorageCounters & { uploader: UploaderCounters } {
    return { ...this.status.counters(), uploader: { ...this.uploader.counters } };
  }

  /** Stops uploading (the queue keeps what is left for the next start) and closes the store. */
  async close(): Promise<void> {
    this.status.close();
    await this.uploader.stop();
    await this.engine.cache.settled();
    await this.engine.bucket.close();
  }
}
