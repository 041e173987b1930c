// Client-side envelope encryption of every object (docs/encryption.md): an ObjectStore in front of
// another one (local or S3) that encrypts each body with AES-256-GCM under a fresh per-object key
// (object-envelope.ts) before it leaves the gateway, and authenticates it on every read: a changed
// byte, a truncation, or an object moved or copied to another key fails with CLOUD_INTEGRITY
// naming the object, never returns data.
//
// Names leak nothing: a content-addressed key (its last segment holds the 64-hex SHA-256 of the
// body, as volume chunks and tape data objects do, docs/object-layout.md) is stored under
// HMAC-SHA256(naming key, that hash) instead, so equal content still deduplicates within one
// bucket key while nobody without the key can test whether known content is stored. Callers keep
// using the plain-hash keys; head, get and delete map them the same way.
//
// Data written before encryption was enabled is plain text; it is read only when
// allowUnencryptedReads is set (then found under its plain-hash name too), never silently.

import { createHmac } from 'node:crypto';
import { CloudError } from './cloud-error.js';
import { DataKeyRing, KEY_OBJECT_PREFIX } from './data-key-ring.js';
import type { KeyProvider } from './key-provider.js';
import { ENVELOPE_OVERHEAD_BYTES, envelopeGroupId, isEnvelope, openObject, sealObject } from './object-envelope.js';
import {
  preparePut,
  validateKey,
  validateRange,
  type ListOptions,
  type ObjectHead,
  type ObjectListEntry,
  type ObjectRange,
  type ObjectStore,
  type PutOptions,
  type PutResult,
} from './object-store.js';

/** Metadata of every encrypted object (S3 x-amz-meta-encryption), so head reports the body size. */
const ENCRYPTION_METADATA_KEY = 'encryption';
const ENCRYPTION_METADATA_VALUE = 'sge1';
const CONTENT_HASH = /(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])/g;

export interface EncryptingObjectStoreOptions {
  inner: ObjectStore;
  provider: KeyProvider;
  /** Read objects stored in plain text (written before encryption was enabled). */
  allowUnencryptedReads?: boolean;
  warn?: (message: string, fields: Record<string, unknown>) => void;
}

export class EncryptingObjectStore implements ObjectStore {
  readonly kind: string;
  readonly keys: DataKeyRing;
  readonly #inner: ObjectStore;
  readonly #namingKey: Buffer;
  readonly #allowUnencryptedReads: boolean;
  readonly #warn: (message: string, fields: Record<string, unknown>) => void;
  #warnedUnencrypted = false;

  private constructor(opts: EncryptingObjectStoreOptions, keys: DataKeyRing, namingKey: Buffer) {
    this.#inner = opts.inner;
    this.kind = `${opts.inner.kind}+encrypted`;
    this.keys = keys;
    this.#namingKey = namingKey;
    this.#allowUnencryptedReads = opts.allowUnencryptedReads ?? false;
    this.#warn = opts.warn ?? (() => undefined);
  }

  /** Opens the bucket's keys: creates the naming key in a new bucket, and fails with CLOUD_KEY when
   *  the bucket was encrypted under a key this provider does not have. */
  static async open(opts: EncryptingObjectStoreOptions): Promise<EncryptingObjectStore> {
    const keys = new DataKeyRing(opts.inner, opts.provider);
    let namingKey: Buffer;
    try {
      namingKey = await keys.namingKey();
    } catch (err) {
      if (err instanceof CloudError && err.code === 'CLOUD_KEY') {
        throw new CloudError(
          'CLOUD_KEY',
          `the ${opts.inner.kind} object store is encrypted under a key this gateway does not have (${err.message}); ` +
            'configure the key it was written with (encryption.keyFile or encryption.kmsKeyId, docs/encryption.md)',
          { cause: err },
        );
      }
      throw err;
    }
    return new EncryptingObjectStore(opts, keys, namingKey);
  }

  /** The name a key is stored under: content hashes in its last segment become keyed hashes. */
  storedKey(key: string): string {
    const slash = key.lastIndexOf('/') + 1;
    const last = key.slice(slash);
    if (!CONTENT_HASH.test(last)) return key;
    CONTENT_HASH.lastIndex = 0;
    return key.slice(0, slash) + last.replace(CONTENT_HASH, (hex) => createHmac('sha256', this.#namingKey).update(Buffer.from(hex, 'hex')).digest('hex'));
  }

  async put(key: string, body: Buffer, opts: PutOptions = {}): Promise<PutResult> {
    this.#validateKey(key);
    // Checks the caller's checksum against the plain body (and the metadata) before encrypting.
    const { checksumSha256, metadata } = await preparePut(body, opts);
    if (ENCRYPTION_METADATA_KEY in metadata) {
      throw new CloudError('CLOUD_INVALID_REQUEST', `metadata ${JSON.stringify(ENCRYPTION_METADATA_KEY)} is reserved for encryption`);
    }
    const { groupId, dataKey } = await this.keys.writeGroup();
    const sealed = sealObject(key, body, groupId, dataKey);
    const result = await this.#inner.put(this.storedKey(key), sealed, {
      metadata: { ...metadata, [ENCRYPTION_METADATA_KEY]: ENCRYPTION_METADATA_VALUE },
    });
    return { etag: result.etag, checksumSha256 };
  }

  async get(key: string, range?: ObjectRange): Promise<Buffer> {
    this.#validateKey(key);
    if (range !== undefined) validateRange(range);
    const stored = this.storedKey(key);
    let sealed: Buffer;
    try {
      sealed = await this.#inner.get(stored);
    } catch (err) {
      if (err instanceof CloudError && err.code === 'CLOUD_INTEGRITY') {
        throw new CloudError('CLOUD_INTEGRITY', `object ${JSON.stringify(key)} (stored as ${JSON.stringify(stored)}) was changed in the store: ${err.message}`, { cause: err });
      }
      if (!(err instanceof CloudError && err.code === 'CLOUD_NOT_FOUND' && this.#allowUnencryptedReads && stored !== key)) throw err;
      sealed = await this.#inner.get(key); // plain text under its plain-hash name
    }
    const body = await this.#open(key, sealed);
    if (range === undefined) return body;
    return body.subarray(Math.min(range.offsetBytes, body.length), Math.min(range.offsetBytes + range.lengthBytes, body.length));
  }

  async head(key: string): Promise<ObjectHead | null> {
    this.#validateKey(key);
    const head = await this.#inner.head(this.storedKey(key));
    if (head === null) return null;
    const { [ENCRYPTION_METADATA_KEY]: marker, ...metadata } = head.metadata;
    const encrypted = marker === ENCRYPTION_METADATA_VALUE;
    return { sizeBytes: encrypted ? Math.max(0, head.sizeBytes - ENVELOPE_OVERHEAD_BYTES) : head.sizeBytes, etag: head.etag, metadata };
  }

  delete(key: string): Promise<void> {
    this.#validateKey(key);
    return this.#inner.delete(this.storedKey(key));
  }

  deleteMany(keys: readonly string[]): Promise<void> {
    keys.forEach((k) => this.#validateKey(k));
    return this.#inner.deleteMany(keys.map((k) => this.storedKey(k)));
  }

  /** Stored names (content-addressed ones as keyed hashes) and body sizes; the key objects of
   *  encryption/ are not listed. */
  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ObjectListEntry> {
    let count = 0;
    for await (const entry of this.#inner.list(prefix, { ...opts, ...(opts.limit !== undefined ? { limit: opts.limit + 1_000_000 } : {}) })) {
      if (entry.key.startsWith(KEY_OBJECT_PREFIX)) continue;
      if (opts.limit !== undefined && count >= opts.limit) return;
      count++;
      yield { key: entry.key, sizeBytes: Math.max(0, entry.sizeBytes - ENVELOPE_OVERHEAD_BYTES) };
    }
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  async #open(key: string, sealed: Buffer): Promise<Buffer> {
    if (!isEnvelope(sealed)) {
      if (!this.#allowUnencryptedReads) {
        throw new CloudError(
          'CLOUD_INTEGRITY',
          `object ${JSON.stringify(key)} is not encrypted: it was written before encryption was enabled, or replaced in the bucket; ` +
            'set encryption.allowUnencryptedReads: true to read data written before encryption (docs/encryption.md)',
        );
      }
      if (!this.#warnedUnencrypted) {
        this.#warnedUnencrypted = true;
        this.#warn('reading objects stored in plain text (written before encryption was enabled)', { key });
      }
      return sealed;
    }
    const groupId = envelopeGroupId(sealed);
    const dataKey = groupId === null ? null : await this.keys.dataKey(groupId);
    const body = dataKey === null ? null : openObject(key, sealed, dataKey);
    if (body === null) {
      throw new CloudError(
        'CLOUD_INTEGRITY',
        `object ${JSON.stringify(key)} failed authentication: it was changed, truncated or replaced by another object after it was written`,
      );
    }
    return body;
  }

  #validateKey(key: string): void {
    validateKey(key);
    if (key.startsWith(KEY_OBJECT_PREFIX)) {
      throw new CloudError('CLOUD_INVALID_REQUEST', `object keys under ${KEY_OBJECT_PREFIX} are reserved for the encryption keys`);
    }
  }
}
