// S3ArchiveStore: an ArchiveStore on S3 storage classes GLACIER (Glacier Flexible Retrieval) or
// DEEP_ARCHIVE, how Tape Gateway archives today, through @aws-sdk/client-s3.
//
// Layout: the archive is the object <prefix><name> in the archive class (multipart upload with a
// SHA-256 per part, like S3ObjectStore); next to it, in STANDARD so it can be read at any time,
// <prefix><name>.manifest.json (ArchiveManifest: per-part tree hashes). The archive id is <name>.
// The manifest is written before CompleteMultipartUpload, so a complete() retried after a crash
// that already completed finds the object and the manifest and succeeds.
//
// Retrieval: RestoreObject (Days, GlacierJobParameters.Tier); 409 RestoreAlreadyInProgress and
// 200 (already restored) are both fine. The "job id" encodes the key, tier, range and the ETag the
// restore was for; describeRetrieval reads HeadObject's x-amz-restore: ongoing-request="true" →
// InProgress, ongoing-request="false", expiry-date=… → Succeeded; no restore (expired, or the
// object replaced) → Failed. Reads are GetObject with Range, widened to whole parts and checked
// against the manifest's tree hashes (S3 verifies nothing on the way out).
//
// Servers without RestoreObject: S3-compatible servers such as Ceph RGW accept the GLACIER and
// DEEP_ARCHIVE storage classes as labels (the bytes stay readable at once) and answer RestoreObject
// with 501 NotImplemented. With the default `retrieval: 'restore'` that 501 is a permanent
// CLOUD_NOT_IMPLEMENTED naming the setting; with `retrieval: 'direct'` no restore is requested, a
// retrieval job succeeds at once (whatever the tier) and the object is read as it is — every part
// still verified against the manifest. docs/object-layout.md "S3 servers" lists what RGW does.
//
// Resume: ListParts tells which parts S3 holds; parts missing or with another ETag are dropped
// from the state (the caller sends them again). NoSuchUpload → CLOUD_NOT_FOUND.
// AWS requires parts of at least 5 MiB except the last: use partSizeBytes ≥ 8 MiB against AWS.

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  RestoreObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import {
  ArchiveUploadHandle,
  assembleParts,
  DEFAULT_ARCHIVE_PART_SIZE_BYTES,
  isArchiveManifest,
  readVerifiedByParts,
  RETRIEVAL_TIERS,
  validateBeginArchive,
  validatePartSize,
  validateReadRange,
  validateRetrievalRange,
  type ArchiveManifest,
  type ArchiveRange,
  type ArchiveResult,
  type ArchiveStore,
  type ArchiveUpload,
  type ArchiveUploadState,
  type BeginArchiveOptions,
  type RetrievalOptions,
  type RetrievalStatus,
  type RetrievalTier,
} from './archive-store.js';
import { sha256Base64 } from './checksum.js';
import { CloudError } from './cloud-error.js';
import { sdkRequestHandler, type SdkHttpLimits } from './sdk-request-handler.js';
import { sseRequestFields, type ServerSideEncryption } from './server-side-encryption.js';
import { DEFAULT_RETRY_POLICY, withRetry, type RetryPolicy } from './retry.js';
import { classifyS3Error } from './s3-object-store.js';

export type S3ArchiveStorageClass = 'GLACIER' | 'DEEP_ARCHIVE';
export type S3ArchiveRetrieval = 'restore' | 'direct';

export interface S3ArchiveStoreConfig extends SdkHttpLimits {
  bucket: string;
  prefix?: string;
  storageClass: S3ArchiveStorageClass;
  /** How long a restored copy stays readable (RestoreRequest.Days). */
  restoreDays?: number;
  /** 'restore' (default; AWS S3): RestoreObject, then wait for x-amz-restore. 'direct': the
   *  server's archive classes are readable labels (Ceph RGW, which answers RestoreObject 501):
   *  read without a restore. */
  retrieval?: S3ArchiveRetrieval;
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  partSizeBytes?: number;
  retry?: RetryPolicy;
  /** SSE-S3 / SSE-KMS on every write (server-side-encryption.ts). */
  serverSideEncryption?: ServerSideEncryption;
}

interface S3Job {
  /** Archive id (the name). */
  a: string;
  t: RetrievalTier;
  /** ETag of the object the restore was requested for. */
  e: string;
  r?: [number, number];
}

const MANIFEST_SUFFIX = '.manifest.json';

export class S3ArchiveStore implements ArchiveStore {
  readonly kind = 's3-archive';
  readonly partSizeBytes: number;
  readonly bucket: string;
  readonly prefix: string;
  readonly storageClass: S3ArchiveStorageClass;
  readonly retrieval: S3ArchiveRetrieval;
  readonly #restoreDays: number;
  readonly #client: S3Client;
  readonly #sse: ReturnType<typeof sseRequestFields>;
  readonly #retry: RetryPolicy;
  readonly #manifests = new Map<string, ArchiveManifest>();

  constructor(config: S3ArchiveStoreConfig) {
    this.bucket = config.bucket;
    this.prefix = config.prefix ?? '';
    this.storageClass = config.storageClass;
    this.#restoreDays = config.restoreDays ?? 1;
    this.retrieval = config.retrieval ?? 'restore';
    this.partSizeBytes = config.partSizeBytes ?? DEFAULT_ARCHIVE_PART_SIZE_BYTES;
    validatePartSize(this.partSizeBytes);
    this.#retry = config.retry ?? DEFAULT_RETRY_POLICY;
    this.#sse = sseRequestFields(config.serverSideEncryption);
    this.#client = new S3Client({
      region: config.region ?? 'us-east-1',
      endpoint: config.endpoint,
      forcePathStyle: config.forcePathStyle ?? false,
      credentials: config.credentials,
      maxAttempts: 1,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: sdkRequestHandler(config, { requestTimeoutMs: 600_000, socketIdleTimeoutMs: 60_000 }),
    });
  }

  async beginArchive(name: string, opts: BeginArchiveOptions): Promise<ArchiveUpload> {
    const partSizeBytes = validateBeginArchive(name, opts, this.partSizeBytes);
    if (name.endsWith(MANIFEST_SUFFIX)) {
      throw new CloudError('CLOUD_INVALID_REQUEST', `archive names may not end in ${MANIFEST_SUFFIX}`);
    }
    const res = await this.#send(`create multipart ${name}`, () =>
      this.#client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.prefix + name,
          StorageClass: this.storageClass,
          ContentType: 'application/octet-stream',
          ChecksumAlgorithm: 'SHA256',
          Metadata: { description: opts.description },
          ...this.#sse,
        }),
      ),
    );
    if (res.UploadId === undefined) {
      throw new CloudError('CLOUD_UNAVAILABLE', `CreateMultipartUpload for ${name} returned no UploadId`);
    }
    return new ArchiveUploadHandle(this, {
      kind: this.kind,
      name,
      description: opts.description,
      partSizeBytes,
      sizeBytes: opts.sizeBytes,
      uploadId: res.UploadId,
      parts: [],
    });
  }

  async resumeArchive(state: ArchiveUploadState): Promise<ArchiveUpload> {
    if (state.kind !== this.kind) {
      throw new CloudError('CLOUD_INVALID_REQUEST', `not an s3-archive upload: ${state.kind}`);
    }
    const held = new Map<number, string>();
    let marker: string | undefined;
    for (;;) {
      const page = await this.#send(`list parts of ${state.name}`, () =>
        this.#client.send(new ListPartsCommand({ Bucket: this.bucket, Key: this.prefix + state.name, UploadId: state.uploadId, PartNumberMarker: marker })),
      );
      for (const part of page.Parts ?? []) {
        held.set((part.PartNumber ?? 0) - 1, part.ETag ?? '');
      }
      if (!page.IsTruncated || page.NextPartNumberMarker === undefined) {
        break;
      }
      marker = page.NextPartNumberMarker;
    }
    const resumed = structuredClone(state);
    resumed.parts = resumed.parts.filter((p) => p.etag !== undefined && held.get(p.index) === p.etag);
    return new ArchiveUploadHandle(this, resumed);
  }

  async requestRetrieval(archiveId: string, opts: RetrievalOptions): Promise<{ jobId: string }> {
    if (!RETRIEVAL_TIERS.includes(opts.tier)) {
      throw new CloudError('CLOUD_INVALID_REQUEST', `invalid tier ${String(opts.tier)}`);
    }
    const manifest = await this.#manifest(archiveId);
    if (opts.range !== undefined) {
      validateRetrievalRange(opts.range, manifest.sizeBytes);
    }
    const head = await this.#head(archiveId);
    if (this.retrieval === 'restore') {
      await this.#restore(archiveId, opts.tier);
    }
    const job: S3Job = { a: archiveId, t: opts.tier, e: head.ETag ?? '' };
    if (opts.range !== undefined) {
      job.r = [opts.range.offsetBytes, opts.range.lengthBytes];
    }
    return { jobId: Buffer.from(JSON.stringify(job)).toString('base64url') };
  }

  async describeRetrieval(jobId: string): Promise<RetrievalStatus> {
    const job = decodeJob(jobId);
    const manifest = await this.#manifest(job.a).catch((err: unknown) => {
      if (err instanceof CloudError && err.code === 'CLOUD_NOT_FOUND') {
        return null;
      }
      throw err;
    });
    const head = manifest === null ? null : await this.#head(job.a).catch(() => null);
    let status: RetrievalStatus['status'] = 'Failed';
    let statusMessage: string | undefined = 'the archive was deleted or replaced';
    if (head !== null && head.ETag === job.e) {
      const restore = head.Restore ?? '';
      if (this.retrieval === 'direct') {
        status = 'Succeeded';
        statusMessage = 'read directly, without a restore (retrieval: direct)';
      } else if (/ongoing-request="true"/.test(restore)) {
        status = 'InProgress';
        statusMessage = undefined;
      } else if (/ongoing-request="false"/.test(restore) || (head.StorageClass !== 'GLACIER' && head.StorageClass !== 'DEEP_ARCHIVE')) {
        status = 'Succeeded';
        statusMessage = restore === '' ? undefined : restore;
      } else {
        statusMessage = 'no restored copy (it expired, or the restore was never made)';
      }
    }
    return {
      jobId,
      archiveId: job.a,
      status,
      completed: status !== 'InProgress',
      tier: job.t,
      archiveSizeBytes: manifest?.sizeBytes ?? 0,
      outputSizeBytes: job.r?.[1] ?? manifest?.sizeBytes ?? 0,
      archiveSha256TreeHash: manifest?.sha256TreeHash ?? '',
      statusMessage,
    };
  }

  async readRetrieved(jobId: string, range: ArchiveRange): Promise<Buffer> {
    validateReadRange(range);
    const job = decodeJob(jobId);
    const manifest = await this.#manifest(job.a);
    const base = job.r?.[0] ?? 0;
    const outputBytes = job.r?.[1] ?? manifest.sizeBytes;
    const lengthBytes = Math.max(0, Math.min(range.lengthBytes, outputBytes - range.offsetBytes));
    return readVerifiedByParts(manifest, { offsetBytes: base + range.offsetBytes, lengthBytes }, (offsetBytes, partBytes) =>
      this.#send(`read ${job.a}`, async () => {
        try {
          const res = await this.#client.send(
            new GetObjectCommand({
              Bucket: this.bucket,
              Key: this.prefix + job.a,
              Range: `bytes=${offsetBytes}-${offsetBytes + partBytes - 1}`,
              IfMatch: job.e || undefined,
            }),
          );
          const bytes = res.Body === undefined ? new Uint8Array(0) : await res.Body.transformToByteArray();
          return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        } catch (err) {
          const name = (err as { name?: string }).name;
          if (name === 'InvalidObjectState') {
            throw new CloudError('CLOUD_NOT_READY', `${job.a} has no restored copy (yet): ${(err as Error).message}`, { cause: err });
          }
          if (name === 'PreconditionFailed') {
            throw new CloudError('CLOUD_NOT_FOUND', `${job.a} was replaced after the restore was requested`, { cause: err });
          }
          throw err;
        }
      }),
    );
  }

  async deleteArchive(archiveId: string): Promise<void> {
    this.#manifests.delete(archiveId);
    await this.#send(`delete ${archiveId}`, () =>
      this.#client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: [{ Key: this.prefix + archiveId }, { Key: this.prefix + archiveId + MANIFEST_SUFFIX }], Quiet: true },
        }),
      ),
    );
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  // Called by S3ArchiveUpload.
  async sendPart(state: ArchiveUploadState, index: number, body: Buffer): Promise<string> {
    const res = await this.#send(`upload part ${index} of ${state.name}`, () =>
      this.#client.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: this.prefix + state.name,
          UploadId: state.uploadId,
          PartNumber: index + 1,
          Body: body,
          ContentLength: body.length,
          ChecksumSHA256: sha256Base64(body),
        }),
      ),
    );
    if (res.ETag === undefined) {
      throw new CloudError('CLOUD_UNAVAILABLE', `UploadPart ${index} of ${state.name} returned no ETag`);
    }
    return res.ETag;
  }

  async completeUpload(state: ArchiveUploadState): Promise<ArchiveResult> {
    const { sizeBytes, sha256TreeHash } = assembleParts(state);
    const manifest: ArchiveManifest = {
      name: state.name,
      description: state.description,
      sizeBytes,
      partSizeBytes: state.partSizeBytes,
      sha256TreeHash,
      partTreeHashes: state.parts.map((p) => p.treeHash),
      createdAt: new Date().toISOString(),
    };
    const manifestBody = Buffer.from(JSON.stringify(manifest));
    await this.#send(`put manifest of ${state.name}`, () =>
      this.#client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.prefix + state.name + MANIFEST_SUFFIX,
          Body: manifestBody,
          ContentType: 'application/json',
          ChecksumSHA256: sha256Base64(manifestBody),
          ...this.#sse,
        }),
      ),
    );
    try {
      await this.#send(`complete ${state.name}`, () =>
        this.#client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key: this.prefix + state.name,
            UploadId: state.uploadId,
            MultipartUpload: { Parts: state.parts.map((p) => ({ PartNumber: p.index + 1, ETag: p.etag })) },
          }),
        ),
      );
    } catch (err) {
      // A retry after a crash that had already completed: the object is there with this size.
      const head = err instanceof CloudError && err.code === 'CLOUD_NOT_FOUND' ? await this.#head(state.name).catch(() => null) : null;
      if (head === null || head.ContentLength !== sizeBytes) {
        throw err;
      }
    }
    this.#manifests.set(state.name, manifest);
    return { archiveId: state.name, sha256TreeHash, sizeBytes };
  }

  async abortUpload(state: ArchiveUploadState): Promise<void> {
    try {
      await this.#send(`abort ${state.name}`, () =>
        this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.prefix + state.name, UploadId: state.uploadId })),
      );
    } catch (err) {
      if (!(err instanceof CloudError && err.code === 'CLOUD_NOT_FOUND')) {
        throw err;
      }
    }
  }

  /** RestoreObject; 409 RestoreAlreadyInProgress is fine (one restore serves every job on the
   *  object), 501 becomes CLOUD_NOT_IMPLEMENTED naming the `retrieval: direct` setting. */
  async #restore(archiveId: string, tier: RetrievalTier): Promise<void> {
    try {
      await this.#send(`restore ${archiveId}`, () =>
        this.#client.send(
          new RestoreObjectCommand({
            Bucket: this.bucket,
            Key: this.prefix + archiveId,
            RestoreRequest: { Days: this.#restoreDays, GlacierJobParameters: { Tier: tier } },
          }),
        ),
      );
    } catch (err) {
      if (err instanceof CloudError && err.code === 'CLOUD_NOT_IMPLEMENTED') {
        throw new CloudError(
          'CLOUD_NOT_IMPLEMENTED',
          `the S3 server at this endpoint does not implement RestoreObject (501 NotImplemented), so archive ${archiveId} cannot be restored; ` +
            `if its ${this.storageClass} storage class is a label whose bytes stay readable (Ceph RGW), set the archive store's "retrieval: direct"`,
          { cause: err },
        );
      }
      if (!(err instanceof CloudError && (err.cause as { name?: string } | undefined)?.name === 'RestoreAlreadyInProgress')) {
        throw err;
      }
    }
  }

  #head(archiveId: string) {
    return this.#send(`head ${archiveId}`, () => this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + archiveId })));
  }

  async #manifest(archiveId: string): Promise<ArchiveManifest> {
    const cached = this.#manifests.get(archiveId);
    if (cached !== undefined) {
      return cached;
    }
    const text = await this.#send(`get manifest of ${archiveId}`, async () => {
      const res = await this.#client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + archiveId + MANIFEST_SUFFIX }));
      return res.Body === undefined ? '' : res.Body.transformToString('utf8');
    });
    let manifest: unknown;
    try {
      manifest = JSON.parse(text);
    } catch {
      manifest = null;
    }
    if (!isArchiveManifest(manifest)) {
      throw new CloudError('CLOUD_INTEGRITY', `the manifest of archive ${archiveId} is damaged`);
    }
    this.#manifests.set(archiveId, manifest);
    return manifest;
  }

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

function decodeJob(jobId: string): S3Job {
  try {
    const job = JSON.parse(Buffer.from(jobId, 'base64url').toString('utf8')) as S3Job;
    if (typeof job.a === 'string' && typeof job.e === 'string' && RETRIEVAL_TIERS.includes(job.t)) {
      return job;
    }
  } catch {
    // fall through
  }
  throw new CloudError('CLOUD_NOT_FOUND', `no retrieval job ${JSON.stringify(jobId)}`);
}
