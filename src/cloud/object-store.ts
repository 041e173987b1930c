// The ObjectStore interface: what the storage engine needs from a bucket, and nothing more.
// Implementations: LocalObjectStore (a directory, the embedded default), S3ObjectStore
// (client-s3). Every implementation passes test/cloud/object-store-contract.ts, throws only
// CloudError, and shares the validation below so keys, metadata and ranges mean the same
// everywhere. Object layout: docs/object-layout.md.

import { CloudError } from './cloud-error.js';
import { isSha256Base64, sha256Base64, sha256Base64Async } from './checksum.js';

export interface ObjectRange {
  offsetBytes: number;
  lengthBytes: number;
}

export interface PutOptions {
  /** The caller's SHA-256 of body (base64). Checked against the body before sending, so data
   *  corrupted in memory after the caller hashed it is never stored under a good checksum. */
  checksumSha256?: string;
  /** User metadata: keys `[a-z0-9-]`, values printable ASCII, at most 2 KiB in all (S3's limit). */
  metadata?: Record<string, string>;
  /** Create only: refuse (CLOUD_EXISTS) when the key exists already, atomically on the server
   *  (S3 `If-None-Match: *`, RFC 9110 §13.1.2; the local store links instead of renaming). A
   *  server that ignores the condition replaces the object, as a plain put does. */
  createOnly?: boolean;
}

export interface PutResult {
  /** Opaque; changes when the content changes. */
  etag: string;
  /** SHA-256 of the whole body (base64), recorded with the object and verified by get. */
  checksumSha256: string;
}

export interface ObjectHead {
  sizeBytes: number;
  etag: string;
  /** Absent for objects not written through an ObjectStore. */
  checksumSha256?: string;
  metadata: Record<string, string>;
}

export interface ObjectListEntry {
  key: string;
  sizeBytes: number;
  /** When the object was written (S3 LastModified; the local store's file mtime). */
  lastModified?: Date;
}

export interface ListOptions {
  /** List keys strictly after this one (S3 StartAfter). */
  startAfter?: string;
  /** Stop after this many entries. */
  limit?: number;
}

export interface ObjectStore {
  /** 'local', 's3', … for logs and status. */
  readonly kind: string;
  /** Create or replace the object atomically: readers see the old or the new body, never a mix.
   *  With `createOnly`, a key that exists is refused with CLOUD_EXISTS. */
  put(key: string, body: Buffer, opts?: PutOptions): Promise<PutResult>;
  /** The whole object (checksum verified → CLOUD_INTEGRITY on mismatch), or the bytes
   *  [offsetBytes, offsetBytes + lengthBytes) clipped to the object's end (empty past the end).
   *  A missing key → CLOUD_NOT_FOUND. */
  get(key: string, range?: ObjectRange): Promise<Buffer>;
  /** null when the key does not exist. */
  head(key: string): Promise<ObjectHead | null>;
  /** Idempotent: deleting a missing key succeeds. */
  delete(key: string): Promise<void>;
  /** Idempotent, batched where the backend allows it. */
  deleteMany(keys: readonly string[]): Promise<void>;
  /** Keys starting with prefix, in ascending UTF-8 byte order (S3's order), paging internally. */
  list(prefix: string, opts?: ListOptions): AsyncIterable<ObjectListEntry>;
  close(): Promise<void>;
}

/** The metadata key under which the whole-object SHA-256 is stored (x-amz-meta-sha256 on S3). */
export const SHA256_METADATA_KEY = 'sha256';

const MAX_KEY_BYTES = 1024;
const MAX_METADATA_BYTES = 2048;
const METADATA_KEY = /^[a-z0-9][a-z0-9-]*$/;
const METADATA_VALUE = /^[\x20-\x7e]*$/;
// C0 controls and DEL cannot travel in S3's XML listings; forbid them everywhere.
const KEY_FORBIDDEN = /[\x00-\x1f\x7f]/;

/** False for strings with lone surrogates, which have no UTF-8 form (they round-trip as U+FFFD). */
function isWellFormedUtf16(s: string): boolean {
  return Buffer.from(s, 'utf8').toString('utf8') === s;
}

export function validateKey(key: string): void {
  if (key.length === 0 || !isWellFormedUtf16(key) || KEY_FORBIDDEN.test(key)) {
    throw new CloudError('CLOUD_INVALID_REQUEST', `invalid object key ${JSON.stringify(key)}`);
  }
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
    throw new CloudError('CLOUD_INVALID_REQUEST', `object key longer than ${MAX_KEY_BYTES} bytes`);
  }
}

export function validateRange(range: ObjectRange): void {
  const { offsetBytes, lengthBytes } = range;
  if (!Number.isSafeInteger(offsetBytes) || offsetBytes < 0 || !Number.isSafeInteger(lengthBytes) || lengthBytes < 0) {
    throw new CloudError('CLOUD_INVALID_REQUEST', `invalid range offset=${offsetBytes} length=${lengthBytes}`);
  }
}

export function validateListOptions(prefix: string, opts: ListOptions): void {
  if (!isWellFormedUtf16(prefix) || KEY_FORBIDDEN.test(prefix)) {
    throw new CloudError('CLOUD_INVALID_REQUEST', `invalid list prefix ${JSON.stringify(prefix)}`);
  }
  if (opts.limit !== undefined && (!Number.isSafeInteger(opts.limit) || opts.limit < 0)) {
    throw new CloudError('CLOUD_INVALID_REQUEST', `invalid list limit ${opts.limit}`);
  }
}

/** Validates put options and returns the checksum to record and the user metadata to store. The
 *  body is hashed on the thread pool: uploads hash whole 1 MiB chunks. */
export async function preparePut(body: Buffer, opts: PutOptions): Promise<{ checksumSha256: string; metadata: Record<string, string> }> {
  const metadata = opts.metadata ?? {};
  let totalBytes = 0;
  for (const [name, value] of Object.entries(metadata)) {
    if (!METADATA_KEY.test(name) || name === SHA256_METADATA_KEY || typeof value !== 'string' || !METADATA_VALUE.test(value)) {
      throw new CloudError('CLOUD_INVALID_REQUEST', `invalid metadata ${JSON.stringify(name)}`);
    }
    totalBytes += name.length + value.length;
  }
  if (totalBytes > MAX_METADATA_BYTES) {
    throw new CloudError('CLOUD_INVALID_REQUEST', `metadata larger than ${MAX_METADATA_BYTES} bytes`);
  }
  const checksumSha256 = await sha256Base64Async(body);
  if (opts.checksumSha256 !== undefined) {
    if (!isSha256Base64(opts.checksumSha256)) {
      throw new CloudError('CLOUD_INVALID_REQUEST', 'checksumSha256 is not a base64 SHA-256');
    }
    if (opts.checksumSha256 !== checksumSha256) {
      throw new CloudError('CLOUD_INTEGRITY', 'body does not match the supplied checksumSha256');
    }
  }
  return { checksumSha256, metadata: { ...metadata } };
}

/** The whole object, or null when the key does not exist. */
export async function getIfExists(store: Pick<ObjectStore, 'get'>, key: string): Promise<Buffer | null> {
  try {
    return await store.get(key);
  } catch (err) {
    if (err instanceof CloudError && err.code === 'CLOUD_NOT_FOUND') return null;
    throw err;
  }
}

/** Compares a whole object's bytes against the checksum recorded at put time. */
export function verifyWholeObject(key: string, body: Buffer, recordedSha256: string | undefined): void {
  if (recordedSha256 !== undefined && sha256Base64(body) !== recordedSha256) {
    throw new CloudError('CLOUD_INTEGRITY', `object ${JSON.stringify(key)} does not match its recorded SHA-256`);
  }
}
