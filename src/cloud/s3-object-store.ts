// S3ObjectStore: an ObjectStore on an S3 bucket (AWS or any S3-compatible endpoint) through
// @aws-sdk/client-s3.
//
// Integrity, end to end: put computes the body's SHA-256 (or checks the caller's), sends it as
// x-amz-checksum-sha256 so S3 verifies what it received (per part for multipart uploads, with
// ChecksumAlgorithm SHA256), and records it as user metadata x-amz-meta-sha256, which every
// S3-compatible server keeps (flexible checksums are not universal: s3rver 3.7.1 ignores them).
// get of a whole object recomputes the hash and compares it with the metadata → CLOUD_INTEGRITY.
//
// Failure behaviour: the SDK's own retries are off (maxAttempts 1); every call goes through
// withRetry (retry.ts, backoff with full jitter) and every SDK or network error is classified into
// a CloudError (classifyS3Error) so the uploader can tell an outage from a misconfiguration.
// Connection, whole-request and idle-socket timeouts bound each attempt, so a stopped or hung
// endpoint fails as CLOUD_UNAVAILABLE instead of hanging.

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { sha256Base64 } from './checksum.js';
import { CloudError } from './cloud-error.js';
import { sdkRequestHandler, type SdkHttpLimits } from './sdk-request-handler.js';
import { sseRequestFields, type ServerSideEncryption } from './server-side-encryption.js';
import {
  preparePut,
  SHA256_METADATA_KEY,
  validateKey,
  validateListOptions,
  validateRange,
  verifyWholeObject,
  type ListOptions,
  type ObjectHead,
  type ObjectListEntry,
  type ObjectRange,
  type ObjectStore,
  type PutOptions,
  type PutResult,
} from './object-store.js';
import { DEFAULT_RETRY_POLICY, withRetry, type RetryPolicy } from './retry.js';

export interface S3ObjectStoreConfig extends SdkHttpLimits {
  bucket: string;
  /** Prepended to every key (e.g. "shelfgate/gw-1/"); list strips it again. */
  prefix?: string;
  region?: string;
  /** For S3-compatible servers (MinIO, Ceph RGW, s3rver); omit for AWS. */
  endpoint?: string;
  /** Path-style URLs (endpoint/bucket/key) instead of virtual-hosted bucket.endpoint/key. */
  forcePathStyle?: boolean;
  /** Omit to use the AWS default chain (environment, profile, SSO, container, instance metadata). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  retry?: RetryPolicy;
  /** Bodies larger than this use a multipart upload. */
  multipartThresholdBytes?: number;
  /** Multipart part size; S3 needs at least 5 MiB for every part but the last. */
  partSizeBytes?: number;
  /** Parts uploaded in parallel per multipart upload. */
  partConcurrency?: number;
  /** ListObjectsV2 MaxKeys (S3 caps it at 1000). */
  listPageSize?: number;
  /** SSE-S3 / SSE-KMS on every write (server-side-encryption.ts). */
  serverSideEncryption?: ServerSideEncryption;
}

const MIB = 1024 * 1024;
/** DeleteObjects takes at most 1000 keys (S3 API reference, DeleteObjects). */
const DELETE_BATCH_KEYS = 1000;
const THROTTLING_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'BandwidthLimitExceeded',
]);
/** Error codes S3 answers with a 4xx status that nevertheless go away on retry. */
const TRANSIENT_CODES = new Set(['RequestTimeout', 'RequestTimeTooSkewed', 'InternalError', 'ServiceUnavailable', 'ExpiredToken']);
const AUTH_CODES = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'CredentialsProviderError',
  'AccountProblem',
]);
/** Node socket and DNS errno codes: the request did not reach a server or its answer was lost. */
const NETWORK_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);
const NETWORK_ERROR_NAMES = new Set(['TimeoutError', 'AbortError', 'NetworkingError']);

export class S3ObjectStore implements ObjectStore {
  readonly kind = 's3';
  readonly bucket: string;
  readonly prefix: string;
  readonly #client: S3Client;
  readonly #sse: ReturnType<typeof sseRequestFields>;
  readonly #retry: RetryPolicy;
  readonly #multipartThresholdBytes: number;
  readonly #partSizeBytes: number;
  readonly #partConcurrency: number;
  readonly #listPageSize: number;

  constructor(config: S3ObjectStoreConfig) {
    this.bucket = config.bucket;
    this.prefix = config.prefix ?? '';
    this.#retry = config.retry ?? DEFAULT_RETRY_POLICY;
    this.#partSizeBytes = config.partSizeBytes ?? 8 * MIB;
    this.#multipartThresholdBytes = Math.max(config.multipartThresholdBytes ?? 16 * MIB, 1);
    this.#partConcurrency = Math.max(config.partConcurrency ?? 4, 1);
    this.#listPageSize = Math.min(Math.max(config.listPageSize ?? 1000, 1), 1000);
    if (!Number.isSafeInteger(this.#partSizeBytes) || this.#partSizeBytes < 1) {
      throw new CloudError('CLOUD_INVALID_REQUEST', `invalid partSizeBytes ${config.partSizeBytes}`);
    }
    this.#sse = sseRequestFields(config.serverSideEncryption);
    this.#client = new S3Client({
      region: config.region ?? 'us-east-1',
      endpoint: config.endpoint,
      forcePathStyle: config.forcePathStyle ?? false,
      credentials: config.credentials,
      maxAttempts: 1,
      // We send x-amz-checksum-sha256 ourselves; the SDK adds CRC32s only where S3 requires one.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: sdkRequestHandler(config, { requestTimeoutMs: 300_000, socketIdleTimeoutMs: 30_000 }),
    });
  }

  async put(key: string, body: Buffer, opts: PutOptions = {}): Promise<PutResult> {
    validateKey(key);
    const { checksumSha256, metadata } = await preparePut(body, opts);
    const Metadata = { ...metadata, [SHA256_METADATA_KEY]: checksumSha256 };
    if (body.length > this.#multipartThresholdBytes) {
      return this.#putMultipart(key, body, Metadata, checksumSha256, opts.createOnly === true);
    }
    const res = await this.#send(`put ${key}`, () =>
      this.#client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.prefix + key,
          Body: body,
          ContentLength: body.length,
          ContentType: 'application/octet-stream',
          ChecksumSHA256: checksumSha256,
          Metadata,
          ...this.#sse,
          ...(opts.createOnly === true ? { IfNoneMatch: '*' } : {}),
        }),
      ),
    );
    return { etag: res.ETag ?? '', checksumSha256 };
  }

  async get(key: string, range?: ObjectRange): Promise<Buffer> {
    validateKey(key);
    if (range !== undefined) {
      validateRange(range);
      if (range.lengthBytes === 0) {
        if ((await this.head(key)) === null) {
          throw new CloudError('CLOUD_NOT_FOUND', `no object ${JSON.stringify(key)}`);
        }
        return Buffer.alloc(0);
      }
    }
    return this.#send(`get ${key}`, async () => {
      let res;
      try {
        res = await this.#client.send(
          new GetObjectCommand({
            Bucket: this.bucket,
            Key: this.prefix + key,
            Range: range && `bytes=${range.offsetBytes}-${range.offsetBytes + range.lengthBytes - 1}`,
          }),
        );
      } catch (err) {
        // RFC 9110 15.5.17: a range starting at or past the end; the contract says empty.
        if (range !== undefined && httpStatusOf(err) === 416) {
          return Buffer.alloc(0);
        }
        throw err;
      }
      const bytes = res.Body === undefined ? new Uint8Array(0) : await res.Body.transformToByteArray();
      const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      if (res.ContentLength !== undefined && res.ContentLength !== body.length) {
        throw new CloudError('CLOUD_UNAVAILABLE', `short read of ${JSON.stringify(key)}: ${body.length} of ${res.ContentLength} bytes`);
      }
      if (range === undefined) {
        verifyWholeObject(key, body, res.Metadata?.[SHA256_METADATA_KEY]);
      }
      return body;
    });
  }

  async head(key: string): Promise<ObjectHead | null> {
    validateKey(key);
    try {
      const res = await this.#send(`head ${key}`, () =>
        this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key })),
      );
      const { [SHA256_METADATA_KEY]: checksumSha256, ...metadata } = res.Metadata ?? {};
      return { sizeBytes: res.ContentLength ?? 0, etag: res.ETag ?? '', checksumSha256, metadata };
    } catch (err) {
      if (err instanceof CloudError && err.code === 'CLOUD_NOT_FOUND') {
        return null;
      }
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    await this.#send(`delete ${key}`, () =>
      this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.prefix + key })),
    );
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    keys.forEach(validateKey);
    for (let i = 0; i < keys.length; i += DELETE_BATCH_KEYS) {
      const batch = keys.slice(i, i + DELETE_BATCH_KEYS);
      const res = await this.#send(`delete ${batch.length} objects`, () =>
        this.#client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((key) => ({ Key: this.prefix + key })), Quiet: true },
          }),
        ),
      );
      const failed = res.Errors?.find((e) => e.Code !== 'NoSuchKey');
      if (failed !== undefined) {
        throw classifyS3Error(Object.assign(new Error(failed.Message ?? failed.Code), { name: failed.Code ?? 'Unknown' }), `delete ${failed.Key}`);
      }
    }
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ObjectListEntry> {
    validateListOptions(prefix, opts);
    let remaining = opts.limit ?? Number.POSITIVE_INFINITY;
    let continuationToken: string | undefined;
    while (remaining > 0) {
      const token = continuationToken;
      const res = await this.#send(`list ${prefix}`, () =>
        this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.prefix + prefix,
            // S3 ignores StartAfter once a continuation token is given.
            StartAfter: token === undefined && opts.startAfter !== undefined ? this.prefix + opts.startAfter : undefined,
            ContinuationToken: token,
            MaxKeys: Math.min(this.#listPageSize, remaining),
          }),
        ),
      );
      for (const object of res.Contents ?? []) {
        if (object.Key === undefined || remaining <= 0) {
          continue;
        }
        remaining--;
        yield {
          key: object.Key.slice(this.prefix.length),
          sizeBytes: object.Size ?? 0,
          ...(object.LastModified !== undefined ? { lastModified: object.LastModified } : {}),
        };
      }
      if (!res.IsTruncated || res.NextContinuationToken === undefined) {
        return;
      }
      continuationToken = res.NextContinuationToken;
    }
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  // S3 multipart upload: CreateMultipartUpload, UploadPart × n (each with its own SHA-256),
  // CompleteMultipartUpload; any failure aborts the upload so no parts linger and bill.
  async #putMultipart(key: string, body: Buffer, Metadata: Record<string, string>, checksumSha256: string, createOnly: boolean): Promise<PutResult> {
    const Key = this.prefix + key;
    const created = await this.#send(`create multipart ${key}`, () =>
      this.#client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key,
          ContentType: 'application/octet-stream',
          ChecksumAlgorithm: 'SHA256',
          Metadata,
          ...this.#sse,
        }),
      ),
    );
    const uploadId = created.UploadId;
    if (uploadId === undefined) {
      throw new CloudError('CLOUD_UNAVAILABLE', `CreateMultipartUpload for ${JSON.stringify(key)} returned no UploadId`);
    }
    try {
      const partCount = Math.ceil(body.length / this.#partSizeBytes);
      const parts: CompletedPart[] = new Array(partCount);
      let next = 0;
      // On a part failure the other workers finish their current part and take no new one, so
      // nothing is still uploading when the abort below is sent.
      const failures: unknown[] = [];
      const uploadWorker = async (): Promise<void> => {
        while (failures.length === 0 && next < partCount) {
          const index = next++;
          const partBody = body.subarray(index * this.#partSizeBytes, (index + 1) * this.#partSizeBytes);
          const ChecksumSHA256 = sha256Base64(partBody);
          const PartNumber = index + 1;
          try {
            const res = await this.#send(`upload part ${PartNumber} of ${key}`, () =>
              this.#client.send(
                new UploadPartCommand({
                  Bucket: this.bucket,
                  Key,
                  UploadId: uploadId,
                  PartNumber,
                  Body: partBody,
                  ContentLength: partBody.length,
                  ChecksumSHA256,
                }),
              ),
            );
            parts[index] = { PartNumber, ETag: res.ETag, ChecksumSHA256 };
          } catch (err) {
            failures.push(err);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.#partConcurrency, partCount) }, uploadWorker));
      if (failures.length > 0) {
        throw failures[0];
      }
      const completed = await this.#send(`complete multipart ${key}`, () =>
        this.#client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
            ...(createOnly ? { IfNoneMatch: '*' } : {}),
          }),
        ),
      );
      return { etag: completed.ETag ?? '', checksumSha256 };
    } catch (err) {
      try {
        await this.#send(`abort multipart ${key}`, () =>
          this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: uploadId })),
        );
      } catch {
        // The upload's own error is the one to report; a bucket lifecycle rule
        // (AbortIncompleteMultipartUpload) reclaims an upload we could not abort.
      }
      throw err;
    }
  }

  /** One SDK call with retries; every failure leaves as a classified CloudError. */
  #send<T>(what: string, call: () => Promise<T>): Promise<T> {
    return withRetry(this.#retry, async () => {
      try {
        return await call();
      } catch (err) {
        throw classifyS3Error(err, what);
      }
    });
  }
}

function httpStatusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

/** Maps an SDK, HTTP or socket error to a CloudError with the right `transient` flag. */
export function classifyS3Error(err: unknown, what: string): CloudError {
  if (err instanceof CloudError) {
    return err;
  }
  const status = httpStatusOf(err);
  const name = (err as { name?: string } | null)?.name ?? '';
  const errno = (err as { code?: unknown } | null)?.code;
  const detail = `${what}: ${name || 'error'}${status !== undefined ? ` (HTTP ${status})` : ''}: ${(err as Error | null)?.message ?? String(err)}`;
  if (THROTTLING_CODES.has(name) || status === 429) {
    return new CloudError('CLOUD_THROTTLED', detail, { cause: err });
  }
  if (name === 'PreconditionFailed' || status === 412) {
    return new CloudError('CLOUD_EXISTS', detail, { cause: err });
  }
  if (name === 'NoSuchBucket') {
    return new CloudError('CLOUD_NO_BUCKET', detail, { cause: err });
  }
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
    return new CloudError('CLOUD_NOT_FOUND', detail, { cause: err });
  }
  if (AUTH_CODES.has(name) || status === 401 || status === 403) {
    return new CloudError('CLOUD_AUTH', detail, { cause: err, transient: TRANSIENT_CODES.has(name) });
  }
  // RFC 9110 15.6.2: 501 means the server does not support the request at all; S3-compatible
  // servers answer it for APIs they lack (Ceph RGW: RestoreObject). Not an outage: never retried.
  if (name === 'NotImplemented' || status === 501) {
    return new CloudError('CLOUD_NOT_IMPLEMENTED', detail, { cause: err });
  }
  if (TRANSIENT_CODES.has(name) || (status !== undefined && status >= 500)) {
    return new CloudError('CLOUD_UNAVAILABLE', detail, { cause: err });
  }
  if (status !== undefined && status >= 400) {
    return new CloudError('CLOUD_INVALID_REQUEST', detail, { cause: err });
  }
  if ((typeof errno === 'string' && NETWORK_ERRNO.has(errno)) || NETWORK_ERROR_NAMES.has(name)) {
    return new CloudError('CLOUD_UNAVAILABLE', detail, { cause: err });
  }
  return new CloudError('CLOUD_INVALID_REQUEST', detail, { cause: err });
}
