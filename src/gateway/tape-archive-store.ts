// The archive store of the virtual tape shelf, from the configuration (tapeLibrary.archive): the
// embedded local store (default), a Glacier vault, or S3 objects in GLACIER / DEEP_ARCHIVE.

import { join, resolve } from 'node:path';
import type { ArchiveStore } from '../cloud/archive-store.js';
import { GlacierArchiveStore } from '../cloud/glacier-archive-store.js';
import { LocalArchiveStore } from '../cloud/local-archive-store.js';
import { S3ArchiveStore } from '../cloud/s3-archive-store.js';
import type { Config } from '../config.js';
import { serverSideEncryption } from './object-encryption.js';

export function createConfiguredArchiveStore(config: Pick<Config, 'tapeLibrary' | 'dataDir'>, caBundle?: string): ArchiveStore {
  const archive = config.tapeLibrary.archive;
  const credentials = (keys: { accessKeyId?: string | undefined; secretAccessKey?: string | undefined }) =>
    keys.accessKeyId !== undefined && keys.secretAccessKey !== undefined
      ? { credentials: { accessKeyId: keys.accessKeyId, secretAccessKey: keys.secretAccessKey } }
      : {};
  switch (archive.type) {
    case 'local':
      return new LocalArchiveStore({
        directory: resolve(archive.path ?? join(config.dataDir, 'archive')),
        retrievalDelayMs: archive.retrievalDelayMs,
      });
    case 'glacier':
      return new GlacierArchiveStore({
        vaultName: archive.vault,
        ...(caBundle !== undefined ? { caBundle } : {}),
        region: archive.region,
        createVault: true,
        ...(archive.endpoint !== undefined ? { endpoint: archive.endpoint } : {}),
        ...credentials(archive),
      });
    case 's3-archive':
      return new S3ArchiveStore({
        bucket: archive.bucket,
        region: archive.region,
        storageClass: archive.storageClass,
        ...serverSideEncryption(archive),
        ...(caBundle !== undefined ? { caBundle } : {}),
        retrieval: archive.retrieval,
        ...(archive.endpoint !== undefined ? { endpoint: archive.endpoint } : {}),
        ...(archive.prefix !== undefined ? { prefix: archive.prefix } : {}),
        ...(archive.forcePathStyle !== undefined ? { forcePathStyle: archive.forcePathStyle } : {}),
        ...credentials(archive),
      });
  }
}
