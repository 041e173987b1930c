// GlacierArchiveStore: an ArchiveStore on an Amazon S3 Glacier vault (the 2012-06-01 vault API)
// through @aws-sdk/client-glacier. AWS closed this API to new customers (NoLongerSupportedException);
// it remains for accounts that have vaults and for Glacier-compatible services.
//
// Upload: InitiateMultipartUpload (part size 1 MiB × 2^n), UploadMultipartPart with our own tree
// hash in x-amz-sha256-tree-hash (the SDK adds x-amz-content-sha256; it hashes Buffers, so parts
// are always Buffers), CompleteMultipartUpload with the archive's size and tree hash. resume
// reconciles the persisted state with ListParts: parts Glacier lacks or holds with another hash
// are dropped from the state so the caller sends them again.
//
// Retrieval: InitiateJob (archive-retrieval, Tier, RetrievalByteRange), DescribeJob polling,
// GetJobOutput with Range. The SDK does not verify what comes back, so every read is split into
// tree-hash aligned spans (tree-hash.ts) and each span's bytes are hashed and compared with the
// x-amz-sha256-tree-hash Glacier returns for aligned ranges → CLOUD_INTEGRITY. Glacier returns no
// hash for a job range that is not tree-hash aligned, so such jobs are refused up front (with the
// archive's size from DescribeJob): every byte this store returns has been verified.

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateVaultCommand,
  DeleteArchiveCommand,
  DescribeJobCommand,
  GetJobOutputCommand,
  GlacierClient,
  InitiateJobCommand,
  InitiateMultipartUploadCommand,
  ListPartsCommand,
  UploadMultipartPartCommand,
  type DescribeJobCommandOutput,
} from '@aws-sdk/client-glacier';
import {
  ArchiveUploadHandle,
  assembleParts,
  DEFAULT_ARCHIVE_PART_SIZE_BYTES,
  RETRIEVAL_TIERS,
  validateBeginArchive,
  validatePartSize,
  validateReadRange,
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
import { CloudError } from './cloud-error.js';
import { sdkRequestHandler, type SdkHttpLimits } from './sdk-request-handler.js';
import { DEFAULT_RETRY_POLICY, withRetry, type RetryPolicy } from './retry.js';
import { classifyS3Error } from './s3-object-store.js';
import { isTreeHashAligned, TREE_HASH_LEAF_BYTES, treeHashAlignedNodes, treeHashHex } from './tree-hash.js';

export interface GlacierArchiveStoreConfig extends SdkHttpLimits {
  vaultName: string;
  /** "-" (the default) is the credentials' own account. */
  accountId?: string;
  region?: string;
  /** For Glacier-compatible endpoints and tests; omit for AWS. */
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Send CreateVault (idempotent) before the first upload; otherwise the vault must exist. */
  createVault?: boolean;
  partSizeBytes?: number;
  retry?: RetryPolicy;
}

interface JobInfo {
  archiveId: string;
  archiveSizeBytes: number;
  firstByte: number;
  outputSizeBytes: number;
}

/** Glacier's 4xx codes that go away on retry. */
const TRANSIENT_GLACIER_CODES = new Set(['RequestTimeoutException', 'ServiceUnavailableException']);

export class GlacierArchiveStore implements ArchiveStore {
  readonly kind = 'glacier';
  readonly partSizeBytes: number;
  readonly vaultName: string;
  readonly accountId: string;
  readonly #client: GlacierClient;
  readonly #retry: RetryPolicy;
  readonly #createVault: boolean;
  #vaultReady: Promise<void> | null = null;
  /** Jobs seen Succeeded (their output no longer changes). */
  readonly #jobs = new Map<string, JobInfo>();

  constructor(config: GlacierArchiveStoreConfig) {
    this.vaultName = config.vaultName;
    this.accountId = config.accountId ?? '-';
    this.partSizeBytes = config.partSizeBytes ?? DEFAULT_ARCHIVE_PART_SIZE_BYTES;
    validatePartSize(this.partSizeBytes);
    this.#retry = config.retry ?? DEFAULT_RETRY_POLICY;
    this.#createVault = config.createVault ?? false;
    this.#client = new GlacierClient({
      region: config.region ?? 'us-east-1',
      endpoint: config.endpoint,
      credentials: config.credentials,
      maxAttempts: 1,
      requestHandler: sdkRequestHandler(config, { requestTimeoutMs: 600_000, socketIdleTimeoutMs: 60_000 }),
    });
  }

  async beginArchive(name: string, opts: BeginArchiveOptions): Promise<ArchiveUpload> {
    const partSizeBytes = validateBeginArchive(name, opts, this.partSizeBytes);
    await this.#ensureVault();
    const res = await this.#send(`initiate upload of ${name}`, () =>
      this.#client.send(
        new InitiateMultipartUploadCommand({
          accountId: this.accountId,
          vaultName: this.vaultName,
          archiveDescription: opts.description,
          partSize: String(partSizeBytes),
        }),
      ),
    );
    if (res.uploadId === undefined) {
      throw new CloudError('CLOUD_UNAVAILABLE', `InitiateMultipartUpload for ${name} returned no upload id`);
    }
    return new ArchiveUploadHandle(this, {
      kind: this.kind,
      name,
      description: opts.description,
      partSizeBytes,
      sizeBytes: opts.sizeBytes,
      uploadId: res.uploadId,
      parts: [],
    });
  }

  async resumeArchive(state: ArchiveUploadState): Promise<ArchiveUpload> {
    if (state.kind !== this.kind) {
      throw new CloudError('CLOUD_INVALID_REQUEST', `not a glacier archive upload: ${state.kind}`);
    }
    const held = new Map<number, string>();
    let marker: string | undefined;
    do {
      const page = await this.#send(`list parts of ${state.name}`, () =>
        this.#client.send(new ListPartsCommand({ accountId: this.accountId, vaultName: this.vaultName, uploadId: state.uploadId, marker })),
      );
      if (page.PartSizeInBytes !== undefined && page.PartSizeInBytes !== state.partSizeBytes) {
        throw new CloudError('CLOUD_INVALID_REQUEST', `upload ${state.uploadId} has part size ${page.PartSizeInBytes}, not ${state.partSizeBytes}`);
      }
      for (const part of page.Parts ?? []) {
        const first = Number(part.RangeInBytes?.split('-')[0]);
        held.set(first / state.partSizeBytes, part.SHA256TreeHash ?? '');
      }
      marker = page.Marker ?? undefined;
    } while (marker !== undefined);
    const resumed = structuredClone(state);
    resumed.parts = resumed.parts.filter((p) => held.get(p.index) === p.treeHash);
    return new ArchiveUploadHandle(this, resumed);
  }

  async requestRetrieval(archiveId: string, opts: RetrievalOptions): Promise<{ jobId: string }> {
    if (!RETRIEVAL_TIERS.includes(opts.tier)) {
      throw new CloudError('CLOUD_INVALID_REQUEST', `invalid tier ${String(opts.tier)}`);
    }
    // Glacier checks the range's end against the archive; the start must be MiB-aligned.
    const range = opts.range;
    if (range !== undefined && (!Number.isSafeInteger(range.offsetBytes) || range.offsetBytes % TREE_HASH_LEAF_BYTES !== 0 || !Number.isSafeInteger(range.lengthBytes) || range.lengthBytes <= 0)) {
      throw new CloudError('CLOUD_INVALID_REQUEST', `retrieval range ${range.offsetBytes}+${range.lengthBytes} is not 1 MiB-aligned`);
    }
    const res = await this.#send(`retrieve ${archiveId}`, () =>
      this.#client.send(
        new InitiateJobCommand({
          accountId: this.accountId,
          vaultName: this.vaultName,
          jobParameters: {
            Type: 'archive-retrieval',
            ArchiveId: archiveId,
            Tier: opts.tier,
            RetrievalByteRange: range && `${range.offsetBytes}-${range.offsetBytes + range.lengthBytes - 1}`,
          },
        }),
      ),
    );
    if (res.jobId === undefined) {
      throw new CloudError('CLOUD_UNAVAILABLE', `InitiateJob for ${archiveId} returned no job id`);
    }
    if (range !== undefined) {
      const status = await this.describeRetrieval(res.jobId);
      if (!isTreeHashAligned(range, status.archiveSizeBytes)) {
        throw new CloudError('CLOUD_INVALID_REQUEST', `range ${range.offsetBytes}+${range.lengthBytes} is not tree-hash aligned, so Glacier could not prove its bytes`);
      }
    }
    return { jobId: res.jobId };
  }

  async describeRetrieval(jobId: string): Promise<RetrievalStatus> {
    const job = await this.#describeJob(jobId);
    const info = jobInfo(job);
    const status = job.StatusCode ?? 'InProgress';
    if (status === 'Succeeded') {
      this.#jobs.set(jobId, info);
    }
    return {
      jobId,
      archiveId: info.archiveId,
      status,
      completed: job.Completed ?? false,
      tier: (job.Tier ?? 'Standard') as RetrievalTier,
      archiveSizeBytes: info.archiveSizeBytes,
      outputSizeBytes: info.outputSizeBytes,
      archiveSha256TreeHash: job.ArchiveSHA256TreeHash ?? '',
      statusMessage: job.StatusMessage ?? undefined,
    };
  }

  async readRetrieved(jobId: string, range: ArchiveRange): Promise<Buffer> {
    validateReadRange(range);
    let info = this.#jobs.get(jobId);
    if (info === undefined) {
      const status = await this.describeRetrieval(jobId);
      if (status.status !== 'Succeeded') {
        throw new CloudError(status.status === 'Failed' ? 'CLOUD_NOT_FOUND' : 'CLOUD_NOT_READY', `retrieval job ${jobId} is ${status.status}`);
      }
      info = this.#jobs.get(jobId)!;
    }
    const endBytes = Math.min(range.offsetBytes + range.lengthBytes, info.outputSizeBytes);
    if (endBytes <= range.offsetBytes) {
      return Buffer.alloc(0);
    }
    // Widen to MiB boundaries of the output (the job starts MiB-aligned), then split into nodes.
    const firstBytes = range.offsetBytes - (range.offsetBytes % TREE_HASH_LEAF_BYTES);
    const lastBytes = Math.min(Math.ceil(endBytes / TREE_HASH_LEAF_BYTES) * TREE_HASH_LEAF_BYTES, info.outputSizeBytes);
    const nodes = treeHashAlignedNodes({ offsetBytes: info.firstByte + firstBytes, lengthBytes: lastBytes - firstBytes }, info.archiveSizeBytes);
    const chunks: Buffer[] = [];
    for (const node of nodes) {
      chunks.push(await this.#readNode(jobId, node.offsetBytes - info.firstByte, node.lengthBytes));
    }
    const widened = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    return widened.subarray(range.offsetBytes - firstBytes, endBytes - firstBytes);
  }

  async deleteArchive(archiveId: string): Promise<void> {
    try {
      await this.#send(`delete ${archiveId}`, () =>
        this.#client.send(new DeleteArchiveCommand({ accountId: this.accountId, vaultName: this.vaultName, archiveId })),
      );
    } catch (err) {
      if (!(err instanceof CloudError && err.code === 'CLOUD_NOT_FOUND')) {
        throw err;
      }
    }
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  // Called by GlacierUpload. Content-Range aligned to the part (Glacier API, Upload Part).
  async sendPart(state: ArchiveUploadState, index: number, body: Buffer, treeHash: string): Promise<void> {
    const first = index * state.partSizeBytes;
    const res = await this.#send(`upload part ${index} of ${state.name}`, () =>
      this.#client.send(
        new UploadMultipartPartCommand({
          accountId: this.accountId,
          vaultName: this.vaultName,
          uploadId: state.uploadId,
          range: `bytes ${first}-${first + body.length - 1}/*`,
          checksum: treeHash,
          body,
        }),
      ),
    );
    if (res.checksum !== undefined && res.checksum !== treeHash) {
      throw new CloudError('CLOUD_INTEGRITY', `Glacier acknowledged part ${index} of ${state.name} with tree hash ${res.checksum}, not ${treeHash}`);
    }
  }

  async completeUpload(state: ArchiveUploadState): Promise<ArchiveResult> {
    const { sizeBytes, sha256TreeHash } = assembleParts(state);
    const res = await this.#send(`complete ${state.name}`, () =>
      this.#client.send(
        new CompleteMultipartUploadCommand({
          accountId: this.accountId,
          vaultName: this.vaultName,
          uploadId: state.uploadId,
          archiveSize: String(sizeBytes),
          checksum: sha256TreeHash,
        }),
      ),
    );
    if (res.archiveId === undefined || (res.checksum !== undefined && res.checksum !== sha256TreeHash)) {
      throw new CloudError('CLOUD_INTEGRITY', `CompleteMultipartUpload of ${state.name} answered archive ${res.archiveId} with tree hash ${res.checksum}`);
    }
    return { archiveId: res.archiveId, sha256TreeHash, sizeBytes };
  }

  async abortUpload(state: ArchiveUploadState): Promise<void> {
    try {
      await this.#send(`abort ${state.name}`, () =>
        this.#client.send(new AbortMultipartUploadCommand({ accountId: this.accountId, vaultName: this.vaultName, uploadId: state.uploadId })),
      );
    } catch (err) {
      if (!(err instanceof CloudError && err.code === 'CLOUD_NOT_FOUND')) {
        throw err;
      }
    }
  }

  /** One tree-hash aligned span of a job's output, checked against the returned tree hash. */
  async #readNode(jobId: string, offsetBytes: number, lengthBytes: number): Promise<Buffer> {
    return this.#send(`read job ${jobId}`, async () => {
      const res = await this.#client.send(
        new GetJobOutputCommand({
          accountId: this.accountId,
          vaultName: this.vaultName,
          jobId,
          range: `bytes=${offsetBytes}-${offsetBytes + lengthBytes - 1}`,
        }),
      );
      const bytes = res.body === undefined ? new Uint8Array(0) : await res.body.transformToByteArray();
      const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      if (body.length !== lengthBytes) {
        throw new CloudError('CLOUD_UNAVAILABLE', `short read of job ${jobId}: ${body.length} of ${lengthBytes} bytes`);
      }
      if (res.checksum === undefined) {
        throw new CloudError('CLOUD_INTEGRITY', `Glacier returned no tree hash for bytes ${offsetBytes}+${lengthBytes} of job ${jobId}`);
      }
      if (treeHashHex(body) !== res.checksum) {
        throw new CloudError('CLOUD_INTEGRITY', `bytes ${offsetBytes}+${lengthBytes} of job ${jobId} do not match Glacier's tree hash`);
      }
      return body;
    });
  }

  #describeJob(jobId: string): Promise<DescribeJobCommandOutput> {
    return this.#send(`describe job ${jobId}`, () =>
      this.#client.send(new DescribeJobCommand({ accountId: this.accountId, vaultName: this.vaultName, jobId })),
    );
  }

  #ensureVault(): Promise<void> {
    if (!this.#createVault) {
      return Promise.resolve();
    }
    this.#vaultReady ??= this.#send(`create vault ${this.vaultName}`, () =>
      this.#client.send(new CreateVaultCommand({ accountId: this.accountId, vaultName: this.vaultName })),
    ).then(
      () => undefined,
      (err: unknown) => {
        this.#vaultReady = null;
        throw err;
      },
    );
    return this.#vaultReady;
  }

  #send<T>(what: string, call: () => Promise<T>): Promise<T> {
    return withRetry(this.#retry, async () => {
      try {
        return await call();
      } catch (err) {
        throw classifyGlacierError(err, what);
      }
    });
  }
}

function jobInfo(job: DescribeJobCommandOutput): JobInfo {
  const archiveSizeBytes = job.ArchiveSizeInBytes ?? 0;
  const match = /^(\d+)-(\d+)$/.exec(job.RetrievalByteRange ?? '');
  const firstByte = match === null ? 0 : Number(match[1]);
  const outputSizeBytes = match === null ? archiveSizeBytes : Number(match[2]) - firstByte + 1;
  return { archiveId: job.ArchiveId ?? '', archiveSizeBytes, firstByte, outputSizeBytes };
}

/** Glacier errors are S3's families under other names; the rest is classifyS3Error. */
export function classifyGlacierError(err: unknown, what: string): CloudError {
  const name = (err as { name?: string } | null)?.name ?? '';
  if (TRANSIENT_GLACIER_CODES.has(name)) {
    return new CloudError('CLOUD_UNAVAILABLE', `${what}: ${name}: ${(err as Error).message}`, { cause: err });
  }
  if (name === 'InvalidSignatureException' || name === 'UnrecognizedClientException' || name === 'MissingAuthenticationTokenException') {
    return new CloudError('CLOUD_AUTH', `${what}: ${name}: ${(err as Error).message}`, { cause: err });
  }
  if (name === 'NoLongerSupportedException') {
    return new CloudError('CLOUD_AUTH', `${what}: the Glacier vault API is closed to this account: ${(err as Error).message}`, { cause: err });
  }
  return classifyS3Error(err, what);
}
