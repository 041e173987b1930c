// The cloud layer's error family (ARCHITECTURE.md "One error family per layer"). Every ObjectStore
// implementation throws only CloudError, so the uploader decides on `transient` alone: transient
// errors (network, timeouts, 5xx, throttling) are retried and leave the data in the local buffer;
// permanent ones (credentials, missing bucket, bad request, integrity) need an operator.

export type CloudErrorCode =
  /** get of a key that does not exist (head answers null, delete succeeds). */
  | 'CLOUD_NOT_FOUND'
  /** The bytes read do not hash to the SHA-256 recorded at put time, or a supplied checksum is wrong. */
  | 'CLOUD_INTEGRITY'
  /** The endpoint could not be reached or did not answer in time, or answered 5xx. Transient. */
  | 'CLOUD_UNAVAILABLE'
  /** The endpoint asked us to slow down (503 SlowDown, 429, throttling codes). Transient. */
  | 'CLOUD_THROTTLED'
  /** Credentials missing, wrong or not allowed (401/403). Permanent. */
  | 'CLOUD_AUTH'
  /** The configured bucket does not exist. Permanent. */
  | 'CLOUD_NO_BUCKET'
  /** A request the store refuses: invalid key or metadata, other 4xx. Permanent. */
  | 'CLOUD_INVALID_REQUEST'
  /** A local filesystem failure in the directory-backed store. */
  | 'CLOUD_IO'
  /** An archive retrieval job whose output is not available yet: poll and read later. */
  | 'CLOUD_NOT_READY'
  /** A key-encryption key cannot be used: missing from the key file, unknown, disabled or denied
   *  in KMS, or a wrapped key that does not decrypt (docs/encryption.md). Permanent. */
  | 'CLOUD_KEY'
  /** The server does not implement the request (HTTP 501 NotImplemented, e.g. RestoreObject on
   *  Ceph RGW). Permanent: retrying cannot help; the message says which setting avoids it. */
  | 'CLOUD_NOT_IMPLEMENTED'
  /** A create-only put (`createOnly`, S3 `If-None-Match: *`) of a key that exists (HTTP 412). */
  | 'CLOUD_EXISTS';

export class CloudError extends Error {
  readonly code: CloudErrorCode;
  readonly transient: boolean;

  constructor(code: CloudErrorCode, message: string, opts: { transient?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'CloudError';
    this.code = code;
    this.transient = opts.transient ?? (code === 'CLOUD_UNAVAILABLE' || code === 'CLOUD_THROTTLED');
  }
}

export function isTransientCloudError(err: unknown): boolean {
  return err instanceof CloudError && err.transient;
}
