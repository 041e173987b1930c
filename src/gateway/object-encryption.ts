// The configured encryption of the bucket (docs/encryption.md): the key provider of
// `encryption.keySource` wrapped around the configured object store, the CA bundle of private
// endpoints, and S3 server-side encryption settings. storage-service.ts opens the object store
// through here, so volume chunks, manifests, snapshots, tape data, indexes and catalogs are all
// encrypted by one layer.

import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from '../../iscsi/log.js';
import { CloudError } from '../cloud/cloud-error.js';
import { EncryptingObjectStore } from '../cloud/encrypting-object-store.js';
import type { KeyProvider } from '../cloud/key-provider.js';
import { KmsKeyProvider } from '../cloud/kms-key-provider.js';
import { LocalKeyProvider } from '../cloud/local-key-provider.js';
import type { ObjectStore } from '../cloud/object-store.js';
import type { ServerSideEncryption } from '../cloud/server-side-encryption.js';
import type { Config } from '../config.js';
import { GatewayError } from './gateway-error.js';

export type EncryptionConfig = Pick<Config, 'encryption' | 'dataDir' | 'caBundle'>;

/** The key file's path: encryption.keyFile or <dataDir>/encryption.key. */
export function keyFilePath(config: EncryptionConfig): string {
  return resolve(config.encryption.keyFile ?? join(config.dataDir, 'encryption.key'));
}

/** The PEM text of config.caBundle, or undefined. */
export async function readCaBundle(config: Pick<Config, 'caBundle'>): Promise<string | undefined> {
  if (config.caBundle === undefined) return undefined;
  try {
    return await readFile(config.caBundle, 'utf8');
  } catch (err) {
    throw new GatewayError('GW_INVALID_CONFIG', `cannot read caBundle ${config.caBundle}: ${(err as Error).message}`, { cause: err, configPath: 'caBundle' });
  }
}

/** null when encryption.keySource is none. */
export async function openConfiguredKeyProvider(config: EncryptionConfig, log: Logger): Promise<KeyProvider | null> {
  const e = config.encryption;
  switch (e.keySource) {
    case 'none':
      return null;
    case 'local':
      return LocalKeyProvider.open(keyFilePath(config), { create: true, warn: (message, fields) => log.warn(message, fields) });
    case 'kms': {
      const caBundle = await readCaBundle(config);
      return new KmsKeyProvider({
        keyId: e.kmsKeyId!,
        region: e.kmsRegion,
        ...(e.kmsEndpoint !== undefined ? { endpoint: e.kmsEndpoint } : {}),
        ...(e.accessKeyId !== undefined && e.secretAccessKey !== undefined ? { credentials: { accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey } } : {}),
        ...(caBundle !== undefined ? { caBundle } : {}),
      });
    }
  }
}

/** The object store every writer uses: `inner` itself, or encrypted in front of it. A bucket
 *  encrypted under another key stops the start with a message that says which key is needed. */
export async function encryptConfiguredObjectStore(inner: ObjectStore, config: EncryptionConfig, log: Logger): Promise<ObjectStore> {
  let provider: KeyProvider | null;
  try {
    provider = await openConfiguredKeyProvider(config, log);
    if (provider === null) return inner;
    const store = await EncryptingObjectStore.open({
      inner,
      provider,
      allowUnencryptedReads: config.encryption.allowUnencryptedReads,
      warn: (message, fields) => log.warn(message, fields),
    });
    log.info('client-side encryption on', { keySource: provider.kind, keyId: provider.keyId });
    return store;
  } catch (err) {
    await inner.close();
    if (err instanceof CloudError && err.code === 'CLOUD_KEY') {
      throw new GatewayError('GW_ENCRYPTION_KEY', err.message, { cause: err, configPath: 'encryption' });
    }
    throw err;
  }
}

/** objectStore / tapeLibrary.archive serverSideEncryption + sseKmsKeyId as the S3 stores take it. */
export function serverSideEncryption(section: { serverSideEncryption?: 'AES256' | 'aws:kms' | undefined; sseKmsKeyId?: string | undefined }): { serverSideEncryption?: ServerSideEncryption } {
  if (section.serverSideEncryption === undefined) return {};
  return { serverSideEncryption: { algorithm: section.serverSideEncryption, ...(section.sseKmsKeyId !== undefined ? { kmsKeyId: section.sseKmsKeyId } : {}) } };
}
