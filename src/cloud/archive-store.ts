// The ArchiveStore interface: the virtual tape shelf's cold storage (issue 4). A tape of up to
// 15 TiB is streamed into an archive part by part, never buffered whole; retrieving it is an
// asynchronous job (minutes to hours on AWS) whose output is then read in ranges. Implementations:
// LocalArchiveStore (a directory, the embedded default, with a simulated retrieval delay),
// GlacierArchiveStore (the Glacier vault API, client-glacier) and S3ArchiveStore (S3 storage
// classes GLACIER / DEEP_ARCHIVE with RestoreObject, how Tape Gateway archives today). All pass
// test/cloud/archive-store-contract.ts and throw only CloudError. docs/archive.md has the details.
//
// Integrity: every part is tree-hashed (tree-hash.ts) before it is sent; the archive's tree hash
// is the root over the parts; every byte read back is verified against tree hashes recorded at
// upload time (Glacier: the x-amz-sha256-tree-hash the service returns; S3 and local: a manifest
// of per-part tree hashes stored next to the archive) → CLOUD_INTEGRITY on mismatch.
//
// Crash safety: an upload's progress is the plain-JSON ArchiveUploadState. The lifecycle code
// persists `upload.state` after each part and, after a restart, calls resumeArchive(state) and
// re-sends the parts that are missing from it (re-sending a part is idempotent everywhere).

import { CloudError } from './cloud-error.js';
import { combineTreeHashes, TREE_HASH_LEAF_BYTES, treeHash, treeHashHex } from './tree-hash.js';

export type RetrievalTier = 'Expedited' | 'Standard' | 'Bulk';

export const RETRIEVAL_TIERS: readonly RetrievalTier[] = ['Expedited', 'Standard', 'Bulk'];

export interface ArchiveRange {
  offsetBytes: number;
  lengthBytes: number;
}

export interface BeginArchiveOptions {
  /** ≤ 1,024 printable ASCII characters (Glacier's x-amz-archive-description). */
  description: string;
  /** Expected total size, when known; complete() refuses a different size. */
  sizeBytes?: number;
  /** Overrides the store's part size for this archive (see partSizeForArchive). */
  partSizeBytes?: number;
}

export interface ArchivePartState {
  index: number;
  sizeBytes: number;
  /** Hex SHA-256 tree hash of the part. */
  treeHash: string;
  /** S3 multipart ETag (CompleteMultipartUpload needs it). */
  etag?: string;
}

/** Everything needed to resume an upload after a crash; JSON-serializable. */
export interface ArchiveUploadState {
  /** The store kind that created it ('local', 'glacier', 's3-archive'). */
  kind: string;
  name: string;
  description: string;
  partSizeBytes: number;
  sizeBytes?: number;
  /** The backend's multipart upload id. */
  uploadId: string;
  /** Parts acknowledged by the backend, in index order. */
  parts: ArchivePartState[];
}

export interface ArchiveResult {
  archiveId: string;
  /** Hex SHA-256 tree hash of the whole archive. */
  sha256TreeHash: string;
  sizeBytes: number;
}

export interface ArchiveUpload {
  readonly partSizeBytes: number;
  /** A snapshot of the progress, to persist; see resumeArchive. */
  readonly state: ArchiveUploadState;
  /** Part `index` (0-based) is bytes [index × partSizeBytes, …): exactly partSizeBytes long except
   *  the last, which may be shorter but not empty (archives are 1 byte or more). Idempotent. */
  uploadPart(index: number, body: Buffer): Promise<void>;
  /** Parts 0..n-1 must all be present. */
  complete(): Promise<ArchiveResult>;
  /** Discards the parts; idempotent. */
  abort(): Promise<void>;
}

export interface RetrievalOptions {
  tier: RetrievalTier;
  /** Retrieve only these bytes; offset and length multiples of 1 MiB (the length may reach the
   *  archive's end). Glacier also needs the range tree-hash aligned to verify it. */
  range?: ArchiveRange;
}

export type RetrievalStatusCode = 'InProgress' | 'Succeeded' | 'Failed';

export interface RetrievalStatus {
  jobId: string;
  archiveId: string;
  status: RetrievalStatusCode;
  completed: boolean;
  tier: RetrievalTier;
  /** Size of the whole archive. */
  archiveSizeBytes: number;
  /** Size of the job's output (the range, or the archive). */
  outputSizeBytes: number;
  /** Hex tree hash of the whole archive. */
  archiveSha256TreeHash: string;
  statusMessage?: string;
}

export interface ArchiveStore {
  /** 'local', 'glacier', 's3-archive' for logs and status. */
  readonly kind: string;
  readonly partSizeBytes: number;
  beginArchive(name: string, opts: BeginArchiveOptions): Promise<ArchiveUpload>;
  /** Continues an upload from a persisted state; CLOUD_NOT_FOUND when the backend no longer has
   *  the upload (aborted or expired): start again with beginArchive. */
  resumeArchive(state: ArchiveUploadState): Promise<ArchiveUpload>;
  /** Starts a retrieval job; CLOUD_NOT_FOUND for an unknown or deleted archive. */
  requestRetrieval(archiveId: string, opts: RetrievalOptions): Promise<{ jobId: string }>;
  describeRetrieval(jobId: string): Promise<RetrievalStatus>;
  /** Bytes of a Succeeded job's output (offsets relative to the job's range), clipped at its end,
   *  verified against the tree hashes recorded at upload (CLOUD_INTEGRITY). Before the job has
   *  succeeded: CLOUD_NOT_READY. */
  readRetrieved(jobId: string, range: ArchiveRange): Promise<Buffer>;
  /** Idempotent. */
  deleteArchive(archiveId: string): Promise<void>;
  close(): Promise<void>;
}

export const MIB = 1024 * 1024;
export const DEFAULT_ARCHIVE_PART_SIZE_BYTES = 64 * MIB;
/** Glacier: part size 1 MiB × 2^n, at most 4 GiB; at most 10,000 parts. */
export const MAX_ARCHIVE_PART_SIZE_BYTES = 4096 * MIB;
export const MAX_ARCHIVE_PARTS = 10_000;
const DESCRIPTION = /^[\x20-\x7e]{0,1024}$/;

export function validatePartSize(partSizeBytes: number): void {
  const mib = partSizeBytes / MIB;
  if (!Number.isSafeInteger(partSizeBytes) || !Number.isInteger(mib) || mib < 1 || partSizeBytes > MAX_ARCHIVE_PART_SIZE_BYTES || (mib & (mib - 1)) !== 0) {
    throw new CloudError('CLOUD_INVALID_REQUEST', `archive part size ${partSizeBytes} is not 1 MiB × 2^n up to 4 GiB`);
  }
}

/** The smallest part size (1 MiB × 2^n, at least minimumBytes) that fits sizeBytes in 10,000
 *  parts: 64 MiB parts reach 625 GiB; a 15 TiB tape needs 2 GiB parts. */
export function partSizeForArchive(sizeBytes: number, minimumBytes: number = DEFAULT_ARCHIVE_PART_SIZE_BYTES): number {
  let partSizeBytes = minimumBytes;
  while (partSizeBytes * MAX_ARCHIVE_PARTS < sizeBytes && partSizeBytes < MAX_ARCHIVE_PART_SIZE_BYTES) {
    partSizeBytes *= 2;
  }
  return partSizeBytes;
}

/** Validates the options and returns the part size for this archive. */
export function validateBeginArchive(name: string, opts: BeginArchiveOptions, storePartSizeBytes: number): number {
  const partSizeBytes = opts.partSizeBytes ?? storePartSizeBytes;
  validatePartSize(partSizeBytes);
  if (name.length === 0 || name.length > 255 || !/^[A-Za-z0-9._:/-]+$/.test(name)) {
    throw new CloudError('CLOUD_INVALID_REQUEST', `invalid archive name ${JSON.stringify(name)}`);
  }
  if (!DESCRIPTION.test(opts.description)) {
    throw new CloudError('CLOUD_INVALID_REQUEST', 'archive description must be ≤ 1,024 printable ASCII characters');
  }
  if (opts.sizeBytes !== undefined) {
    if (!Number.isSafeInteger(opts.sizeBytes) || opts.sizeBytes < 1) {
      throw new CloudError('CLOUD_INVALID_REQUEST', `invalid archive size ${opts.sizeBytes}`);
    }
    if (Math.ceil(opts.sizeBytes / partSizeBytes) > MAX_ARCHIVE_PARTS) {
      throw new CloudError('CLOUD_INVALID_REQUEST', `an archive of ${opts.sizeBytes} bytes needs more than ${MAX_ARCHIVE_PARTS} parts of ${partSizeBytes}`);
    }
  }
  return partSizeBytes;
}

export function validatePart(state: ArchiveUploadState, index: number, body: Buffer): void {
  if (!Number.isSafeInteger(index) || index < 0 || index >= MAX_ARCHIVE_PARTS) {
    throw new CloudError('CLOUD_INVALID_REQUEST', `invalid part index ${index}`);
  }
  if (body.length > state.partSizeBytes || body.length === 0) {
    throw new CloudError('CLOUD_INVALID_REQUEST', `part ${index} of ${body.length} bytes does not fit part size ${state.partSizeBytes}`);
  }
  if (state.sizeBytes !== undefined) {
    const partCount = Math.max(1, Math.ceil(state.sizeBytes / state.partSizeBytes));
    const expected = index === partCount - 1 ? state.sizeBytes - index * state.partSizeBytes : state.partSizeBytes;
    if (index >= partCount || body.length !== expected) {
      throw new CloudError('CLOUD_INVALID_REQUEST', `part ${index} of ${body.length} bytes does not fit an archive of ${state.sizeBytes} bytes`);
    }
  }
}

/** Records a part acknowledged by the backend (replacing an earlier send of the same index). */
export function recordPart(state: ArchiveUploadState, part: ArchivePartState): void {
  const others = state.parts.filter((p) => p.index !== part.index);
  others.push(part);
  others.sort((a, b) => a.index - b.index);
  state.parts = others;
}

/** What a store does with one upload; ArchiveUploadHandle does the rest. */
export interface ArchiveUploadBackend {
  /** Stores part `index` (idempotent); returns the part's ETag where the backend has one. */
  sendPart(state: ArchiveUploadState, index: number, body: Buffer, treeHash: string): Promise<string | void>;
  completeUpload(state: ArchiveUploadState): Promise<ArchiveResult>;
  abortUpload(state: ArchiveUploadState): Promise<void>;
}

/** The one ArchiveUpload of every store: validates and tree-hashes each part, has the backend
 *  store it, and records it in the serializable state only once the backend acknowledged it. */
export class ArchiveUploadHandle implements ArchiveUpload {
  readonly #backend: ArchiveUploadBackend;
  readonly #state: ArchiveUploadState;

  constructor(backend: ArchiveUploadBackend, state: ArchiveUploadState) {
    this.#backend = backend;
    this.#state = state;
  }

  get partSizeBytes(): number {
    return this.#state.partSizeBytes;
  }

  get state(): ArchiveUploadState {
    return structuredClone(this.#state);
  }

  async uploadPart(index: number, body: Buffer): Promise<void> {
    validatePart(this.#state, index, body);
    const treeHash = treeHashHex(body);
    const etag = await this.#backend.sendPart(this.#state, index, body, treeHash);
    recordPart(this.#state, { index, sizeBytes: body.length, treeHash, ...(typeof etag === 'string' ? { etag } : {}) });
  }

  complete(): Promise<ArchiveResult> {
    return this.#backend.completeUpload(this.#state);
  }

  abort(): Promise<void> {
    return this.#backend.abortUpload(this.#state);
  }
}

/** Checks that the parts make a whole archive; returns its size and tree hash. */
export function assembleParts(state: ArchiveUploadState): { sizeBytes: number; sha256TreeHash: string } {
  const parts = state.parts;
  if (parts.length === 0) {
    throw new CloudError('CLOUD_INVALID_REQUEST', `archive ${JSON.stringify(state.name)} has no parts`);
  }
  let sizeBytes = 0;
  parts.forEach((part, i) => {
    if (part.index !== i) {
      throw new CloudError('CLOUD_INVALID_REQUEST', `archive ${JSON.stringify(state.name)} is missing part ${i}`);
    }
    if (i < parts.length - 1 && part.sizeBytes !== state.partSizeBytes) {
      throw new CloudError('CLOUD_INVALID_REQUEST', `part ${i} of ${part.sizeBytes} bytes is short but not the last`);
    }
    sizeBytes += part.sizeBytes;
  });
  if (state.sizeBytes !== undefined && sizeBytes !== state.sizeBytes) {
    throw new CloudError('CLOUD_INVALID_REQUEST', `parts hold ${sizeBytes} bytes, ${state.sizeBytes} were announced`);
  }
  const sha256TreeHash = combineTreeHashes(parts.map((p) => Buffer.from(p.treeHash, 'hex'))).toString('hex');
  return { sizeBytes, sha256TreeHash };
}

/** A retrieval range must be MiB-aligned and inside the archive. */
export function validateRetrievalRange(range: ArchiveRange, archiveSizeBytes: number): void {
  const { offsetBytes, lengthBytes } = range;
  const endBytes = offsetBytes + lengthBytes;
  if (
    !Number.isSafeInteger(offsetBytes) ||
    !Number.isSafeInteger(lengthBytes) ||
    offsetBytes < 0 ||
    lengthBytes <= 0 ||
    offsetBytes % TREE_HASH_LEAF_BYTES !== 0 ||
    endBytes > archiveSizeBytes ||
    (endBytes % TREE_HASH_LEAF_BYTES !== 0 && endBytes !== archiveSizeBytes)
  ) {
    throw new CloudError('CLOUD_INVALID_REQUEST', `retrieval range ${offsetBytes}+${lengthBytes} is not 1 MiB-aligned inside ${archiveSizeBytes} bytes`);
  }
}

export function validateReadRange(range: ArchiveRange): void {
  const { offsetBytes, lengthBytes } = range;
  if (!Number.isSafeInteger(offsetBytes) || offsetBytes < 0 || !Number.isSafeInteger(lengthBytes) || lengthBytes < 0) {
    throw new CloudError('CLOUD_INVALID_REQUEST', `invalid range offset=${offsetBytes} length=${lengthBytes}`);
  }
}

/** The manifest kept next to an archive by the S3 and local stores: per-part tree hashes, so any
 *  range read back is verified by re-hashing the parts it touches. */
export interface ArchiveManifest {
  name: string;
  description: string;
  sizeBytes: number;
  partSizeBytes: number;
  sha256TreeHash: string;
  partTreeHashes: string[];
  createdAt: string;
}

export function isArchiveManifest(value: unknown): value is ArchiveManifest {
  const m = value as ArchiveManifest | null;
  return (
    typeof m === 'object' &&
    m !== null &&
    typeof m.name === 'string' &&
    Number.isSafeInteger(m.sizeBytes) &&
    Number.isSafeInteger(m.partSizeBytes) &&
    typeof m.sha256TreeHash === 'string' &&
    Array.isArray(m.partTreeHashes) &&
    combineTreeHashes(m.partTreeHashes.map((h) => Buffer.from(String(h), 'hex'))).toString('hex') === m.sha256TreeHash
  );
}

/** Reads archive bytes [range) clipped to sizeBytes through `fetch`, widened to whole parts so
 *  each part read is checked against the manifest's tree hash. */
export async function readVerifiedByParts(
  manifest: ArchiveManifest,
  range: ArchiveRange,
  fetch: (offsetBytes: number, lengthBytes: number) => Promise<Buffer>,
): Promise<Buffer> {
  const endBytes = Math.min(range.offsetBytes + range.lengthBytes, manifest.sizeBytes);
  if (endBytes <= range.offsetBytes) {
    return Buffer.alloc(0);
  }
  const firstPart = Math.floor(range.offsetBytes / manifest.partSizeBytes);
  const lastPart = Math.floor((endBytes - 1) / manifest.partSizeBytes);
  const chunks: Buffer[] = [];
  for (let index = firstPart; index <= lastPart; index++) {
    const partOffsetBytes = index * manifest.partSizeBytes;
    const partLengthBytes = Math.min(manifest.partSizeBytes, manifest.sizeBytes - partOffsetBytes);
    const body = await fetch(partOffsetBytes, partLengthBytes);
    if (body.length !== partLengthBytes || treeHash(body).toString('hex') !== manifest.partTreeHashes[index]) {
      throw new CloudError('CLOUD_INTEGRITY', `archive ${JSON.stringify(manifest.name)} part ${index} does not match its tree hash`);
    }
    const from = Math.max(range.offsetBytes - partOffsetBytes, 0);
    const to = Math.min(endBytes - partOffsetBytes, partLengthBytes);
    chunks.push(from === 0 && to === body.length ? body : body.subarray(from, to));
  }
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}
