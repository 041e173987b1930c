// LocalArchiveStore: the embedded default ArchiveStore, a directory.
//   uploads/<uploadId>/data             parts written in place at index × partSizeBytes (fsynced)
//   archives/<archiveId>/data           renamed from the upload on complete (atomic)
//   archives/<archiveId>/manifest.json  per-part tree hashes (ArchiveManifest)
//   jobs/<jobId>.json                   retrieval jobs, durable across restarts
// A retrieval job succeeds `retrievalDelayMs` (per tier, configurable) after it was requested,
// imitating the hours a cold tier takes; reads re-hash every part they touch.

import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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
import { CloudError } from './cloud-error.js';

export interface LocalArchiveStoreConfig {
  directory: string;
  partSizeBytes?: number;
  /** Time from requestRetrieval until the job succeeds: one value for every tier or per tier.
   *  Default 0 (immediate). */
  retrievalDelayMs?: number | Partial<Record<RetrievalTier, number>>;
  /** The clock, for tests. */
  nowMs?: () => number;
}

interface LocalJob {
  jobId: string;
  archiveId: string;
  tier: RetrievalTier;
  range?: ArchiveRange;
  requestedAtMs: number;
  readyAtMs: number;
}

const ID = /^[0-9a-f]{32}$/;

export class LocalArchiveStore implements ArchiveStore {
  readonly kind = 'local';
  readonly partSizeBytes: number;
  readonly directory: string;
  readonly #delayMs: Record<RetrievalTier, number>;
  readonly #nowMs: () => number;

  constructor(config: LocalArchiveStoreConfig) {
    this.directory = config.directory;
    this.partSizeBytes = config.partSizeBytes ?? DEFAULT_ARCHIVE_PART_SIZE_BYTES;
    validatePartSize(this.partSizeBytes);
    const delay = config.retrievalDelayMs ?? 0;
    this.#delayMs = Object.fromEntries(
      RETRIEVAL_TIERS.map((tier) => [tier, typeof delay === 'number' ? delay : (delay[tier] ?? 0)]),
    ) as Record<RetrievalTier, number>;
    this.#nowMs = config.nowMs ?? Date.now;
  }

  /** The archive's data file, for tests that corrupt it behind the store's back. */
  archiveDataPath(archiveId: string): string {
    return join(this.directory, 'archives', checkId(archiveId, 'archive'), 'data');
  }

  async beginArchive(name: string, opts: BeginArchiveOptions): Promise<ArchiveUpload> {
    const partSizeBytes = validateBeginArchive(name, opts, this.partSizeBytes);
    const uploadId = randomBytes(16).toString('hex');
    await io(`begin archive ${name}`, async () => {
      await mkdir(this.#uploadDir(uploadId), { recursive: true });
      await writeFile(join(this.#uploadDir(uploadId), 'data'), Buffer.alloc(0));
    });
    return new ArchiveUploadHandle(this, {
      kind: this.kind,
      name,
      description: opts.description,
      partSizeBytes,
      sizeBytes: opts.sizeBytes,
      uploadId,
      parts: [],
    });
  }

  async resumeArchive(state: ArchiveUploadState): Promise<ArchiveUpload> {
    if (state.kind !== this.kind || !ID.test(state.uploadId)) {
      throw new CloudError('CLOUD_INVALID_REQUEST', `not a local archive upload: ${state.kind}/${state.uploadId}`);
    }
    if (!(await exists(join(this.#uploadDir(state.uploadId), 'data')))) {
      throw new CloudError('CLOUD_NOT_FOUND', `no upload ${state.uploadId}`);
    }
    return new ArchiveUploadHandle(this, structuredClone(state));
  }

  async requestRetrieval(archiveId: string, opts: RetrievalOptions): Promise<{ jobId: string }> {
    const manifest = await this.#manifest(archiveId);
    if (!RETRIEVAL_TIERS.includes(opts.tier)) {
      throw new CloudError('CLOUD_INVALID_REQUEST', `invalid tier ${String(opts.tier)}`);
    }
    if (opts.range !== undefined) {
      validateRetrievalRange(opts.range, manifest.sizeBytes);
    }
    const requestedAtMs = this.#nowMs();
    const job: LocalJob = {
      jobId: randomBytes(16).toString('hex'),
      archiveId,
      tier: opts.tier,
      range: opts.range,
      requestedAtMs,
      readyAtMs: requestedAtMs + this.#delayMs[opts.tier],
    };
    await io(`request retrieval of ${archiveId}`, async () => {
      await mkdir(join(this.directory, 'jobs'), { recursive: true });
      await writeDurably(this.#jobPath(job.jobId), Buffer.from(JSON.stringify(job)));
    });
    return { jobId: job.jobId };
  }

  async describeRetrieval(jobId: string): Promise<RetrievalStatus> {
    const job = await this.#job(jobId);
    const manifest = await this.#manifest(job.archiveId).catch((err: unknown) => {
      if (err instanceof CloudError && err.code === 'CLOUD_NOT_FOUND') {
        return null;
      }
      throw err;
    });
    const ready = this.#nowMs() >= job.readyAtMs;
    const status = manifest === null ? 'Failed' : ready ? 'Succeeded' : 'InProgress';
    return {
      jobId,
      archiveId: job.archiveId,
      status,
      completed: status !== 'InProgress',
      tier: job.tier,
      archiveSizeBytes: manifest?.sizeBytes ?? 0,
      outputSizeBytes: job.range?.lengthBytes ?? manifest?.sizeBytes ?? 0,
      archiveSha256TreeHash: manifest?.sha256TreeHash ?? '',
      statusMessage: manifest === null ? 'the archive was deleted' : undefined,
    };
  }

  async readRetrieved(jobId: string, range: ArchiveRange): Promise<Buffer> {
    validateReadRange(range);
    const job = await this.#job(jobId);
    if (this.#nowMs() < job.readyAtMs) {
      throw new CloudError('CLOUD_NOT_READY', `retrieval job ${jobId} is still in progress`);
    }
    const manifest = await this.#manifest(job.archiveId);
    const base = job.range?.offsetBytes ?? 0;
    const outputBytes = job.range?.lengthBytes ?? manifest.sizeBytes;
    const lengthBytes = Math.max(0, Math.min(range.lengthBytes, outputBytes - range.offsetBytes));
    const dataPath = this.archiveDataPath(job.archiveId);
    return io(`read job ${jobId}`, async () => {
      const file = await open(dataPath, 'r');
      try {
        return await readVerifiedByParts(manifest, { offsetBytes: base + range.offsetBytes, lengthBytes }, async (offsetBytes, partBytes) => {
          const buf = Buffer.alloc(partBytes);
          const { bytesRead } = await file.read(buf, 0, partBytes, offsetBytes);
          return buf.subarray(0, bytesRead);
        });
      } finally {
        await file.close();
      }
    });
  }

  async deleteArchive(archiveId: string): Promise<void> {
    await io(`delete archive ${archiveId}`, () => rm(join(this.directory, 'archives', checkId(archiveId, 'archive')), { recursive: true, force: true }));
  }

  async close(): Promise<void> {}

  // Called by LocalUpload.
  async sendPart(state: ArchiveUploadState, index: number, body: Buffer): Promise<void> {
    const dataPath = join(this.#uploadDir(state.uploadId), 'data');
    await io(`upload part ${index} of ${state.name}`, async () => {
      if (!(await exists(dataPath))) {
        throw new CloudError('CLOUD_NOT_FOUND', `no upload ${state.uploadId}`);
      }
      const file = await open(dataPath, 'r+');
      try {
        await file.write(body, 0, body.length, index * state.partSizeBytes);
        await file.sync();
      } finally {
        await file.close();
      }
    });
  }

  async completeUpload(state: ArchiveUploadState): Promise<ArchiveResult> {
    const { sizeBytes, sha256TreeHash } = assembleParts(state);
    const uploadDir = this.#uploadDir(state.uploadId);
    const archiveId = randomBytes(16).toString('hex');
    const manifest: ArchiveManifest = {
      name: state.name,
      description: state.description,
      sizeBytes,
      partSizeBytes: state.partSizeBytes,
      sha256TreeHash,
      partTreeHashes: state.parts.map((p) => p.treeHash),
      createdAt: new Date(this.#nowMs()).toISOString(),
    };
    await io(`complete archive ${state.name}`, async () => {
      if (!(await exists(uploadDir))) {
        throw new CloudError('CLOUD_NOT_FOUND', `no upload ${state.uploadId}`);
      }
      const data = await open(join(uploadDir, 'data'), 'r+');
      try {
        await data.truncate(sizeBytes);
        await data.sync();
      } finally {
        await data.close();
      }
      await writeDurably(join(uploadDir, 'manifest.json'), Buffer.from(JSON.stringify(manifest)));
      await mkdir(join(this.directory, 'archives'), { recursive: true });
      await rename(uploadDir, join(this.directory, 'archives', archiveId));
    });
    return { archiveId, sha256TreeHash, sizeBytes };
  }

  async abortUpload(state: ArchiveUploadState): Promise<void> {
    await io(`abort upload ${state.uploadId}`, () => rm(this.#uploadDir(state.uploadId), { recursive: true, force: true }));
  }

  #uploadDir(uploadId: string): string {
    return join(this.directory, 'uploads', checkId(uploadId, 'upload'));
  }

  #jobPath(jobId: string): string {
    return join(this.directory, 'jobs', `${checkId(jobId, 'job')}.json`);
  }

  async #manifest(archiveId: string): Promise<ArchiveManifest> {
    const path = join(this.directory, 'archives', checkId(archiveId, 'archive'), 'manifest.json');
    const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        throw new CloudError('CLOUD_NOT_FOUND', `no archive ${archiveId}`);
      }
      throw new CloudError('CLOUD_IO', `read manifest of ${archiveId}: ${err.message}`, { cause: err });
    });
    const manifest: unknown = JSON.parse(text);
    if (!isArchiveManifest(manifest)) {
      throw new CloudError('CLOUD_INTEGRITY', `the manifest of archive ${archiveId} is damaged`);
    }
    return manifest;
  }

  async #job(jobId: string): Promise<LocalJob> {
    const text = await readFile(this.#jobPath(jobId), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        throw new CloudError('CLOUD_NOT_FOUND', `no retrieval job ${jobId}`);
      }
      throw new CloudError('CLOUD_IO', `read job ${jobId}: ${err.message}`, { cause: err });
    });
    return JSON.parse(text) as LocalJob;
  }
}

function checkId(id: string, what: string): string {
  if (!ID.test(id)) {
    throw new CloudError('CLOUD_NOT_FOUND', `no ${what} ${JSON.stringify(id)}`);
  }
  return id;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Write to a temporary name, fsync, rename: readers see the old file or the new one. */
async function writeDurably(path: string, body: Buffer): Promise<void> {
  const tmp = `${path}.tmp`;
  const file = await open(tmp, 'w');
  try {
    await file.write(body);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
}

/** Runs filesystem work; anything but a CloudError becomes CLOUD_IO. */
async function io<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof CloudError) {
      throw err;
    }
    throw new CloudError('CLOUD_IO', `${what}: ${(err as Error).message}`, { cause: err });
  }
}
