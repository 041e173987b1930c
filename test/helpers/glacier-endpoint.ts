// A protocol-faithful Amazon S3 Glacier (vault API, 2012-06-01, REST-JSON) endpoint for tests, on
// 127.0.0.1:0. No offline Glacier server exists, so this one enforces what the service enforces,
// per the Glacier API reference, and nothing test-specific: the real @aws-sdk/client-glacier talks
// to it with only the endpoint URL changed.
//   - every request: `x-amz-glacier-version: 2012-06-01`, a valid SigV4 signature for service
//     `glacier` (src/api/aws/sigv4.ts, known test credentials), x-amz-content-sha256 matching the body;
//   - CreateVault / DescribeVault / DeleteVault;
//   - multipart uploads: part size 1 MiB × 2^n ≤ 4 GiB; every part aligned to the part size by
//     Content-Range (bytes a-b/*), exactly the part size except the last; per-part tree hash
//     checked against the body; CompleteMultipartUpload checks the archive size and tree hash;
//     ListParts (paged, marker/limit), AbortMultipartUpload; UploadArchive (single request);
//   - jobs: archive-retrieval with Tier and RetrievalByteRange (MB-aligned); InProgress →
//     Succeeded after the tier's configured delay; DescribeJob; GetJobOutput with Range (MB-aligned,
//     or to the end), 206 + Content-Range, x-amz-sha256-tree-hash only when the job range and the
//     download range are tree-hash aligned — computed from the leaf hashes recorded at upload, so
//     bytes damaged at rest (corruptArchive) are returned with the hash of what was stored;
//   - DeleteArchive (idempotent as in AWS: 204; an unknown id is 404 ResourceNotFoundException);
//   - errors as Glacier sends them: JSON {code, message, type} and the x-amzn-ErrorType header.
// Archive and upload bytes live in files under a temporary directory (tapes are large).

import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AwsApiError } from '../../src/api/aws/aws-error.js';
import { verifySigV4 } from '../../src/api/aws/sigv4.js';
import { sha256Hex } from '../../src/cloud/checksum.js';
import type { GlacierArchiveStoreConfig } from '../../src/cloud/glacier-archive-store.js';
import type { RetryPolicy } from '../../src/cloud/retry.js';
import { combineTreeHashes, isTreeHashAligned, TREE_HASH_LEAF_BYTES, treeHash } from '../../src/cloud/tree-hash.js';

export const GLACIER_TEST_CREDENTIALS = { accessKeyId: 'AKIDGLACIERTEST', secretAccessKey: 'glacier-test-secret' };
export const GLACIER_TEST_REGION = 'us-east-1';

/** A GlacierArchiveStore configuration for a test endpoint at `url`: vault shelfgate-vts, 1 MiB
 *  parts, the test credentials; `retry` is the store's own per-call retry. */
export function glacierTestStoreConfig(url: string, retry: RetryPolicy): GlacierArchiveStoreConfig {
  return {
    vaultName: 'shelfgate-vts',
    createVault: true,
    endpoint: url,
    region: GLACIER_TEST_REGION,
    credentials: GLACIER_TEST_CREDENTIALS,
    partSizeBytes: 1024 * 1024,
    retry,
  };
}
const ACCOUNT_ID = '123456789012';
const MIB = 1024 * 1024;
const MAX_PART_BYTES = 4096 * MIB;
const MAX_PARTS = 10_000;
const TIERS = ['Expedited', 'Standard', 'Bulk'] as const;
type Tier = (typeof TIERS)[number];

export interface GlacierEndpointOptions {
  /** Time a job stays InProgress, per tier (AWS: minutes to hours; tests: milliseconds). */
  jobDelayMs?: Partial<Record<Tier, number>>;
  /** Vaults that exist from the start. */
  vaults?: string[];
}

interface Part {
  sizeBytes: number;
  leafHashes: Buffer[];
}

interface Upload {
  id: string;
  vault: string;
  description: string;
  partSizeBytes: number;
  createdAt: Date;
  path: string;
  parts: Map<number, Part>;
}

interface Archive {
  id: string;
  vault: string;
  description: string;
  sizeBytes: number;
  leafHashes: Buffer[];
  treeHash: string;
  createdAt: Date;
  path: string;
}

interface Job {
  id: string;
  vault: string;
  archive: Archive;
  tier: Tier;
  description: string | null;
  range: { first: number; last: number };
  createdAt: Date;
  readyAtMs: number;
}

class GlacierError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly type: 'Client' | 'Server' = 'Client',
  ) {
    super(message);
  }
}

const notFound = (message: string): GlacierError => new GlacierError(404, 'ResourceNotFoundException', message);
const invalid = (message: string): GlacierError => new GlacierError(400, 'InvalidParameterValueException', message);
const missing = (message: string): GlacierError => new GlacierError(400, 'MissingParameterValueException', message);

export class GlacierEndpoint {
  readonly directory: string;
  /** Every request received (method, url, headers), for asserting on what the client sent. */
  readonly requests: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }> = [];
  readonly #vaults = new Map<string, Date>();
  readonly #uploads = new Map<string, Upload>();
  readonly #archives = new Map<string, Archive>();
  readonly #jobs = new Map<string, Job>();
  readonly #jobDelayMs: Record<Tier, number>;
  #server: Server | null = null;
  #port = 0;

  private constructor(directory: string, opts: GlacierEndpointOptions) {
    this.directory = directory;
    this.#jobDelayMs = { Expedited: 0, Standard: 0, Bulk: 0, ...opts.jobDelayMs };
    for (const vault of opts.vaults ?? []) {
      this.#vaults.set(vault, new Date());
    }
  }

  static async start(opts: GlacierEndpointOptions = {}): Promise<GlacierEndpoint> {
    const endpoint = new GlacierEndpoint(await mkdtemp(join(tmpdir(), 'shelfgate-glacier-')), opts);
    const server = createServer((req, res) => {
      endpoint.#handle(req, res).catch((err: unknown) => sendError(res, new GlacierError(500, 'ServiceUnavailableException', String(err), 'Server')));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint.#port = (server.address() as { port: number }).port;
    endpoint.#server = server;
    return endpoint;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Archives currently stored, by id. */
  archiveIds(): string[] {
    return [...this.#archives.keys()];
  }

  /** Multipart uploads neither completed nor aborted. */
  pendingUploadIds(): string[] {
    return [...this.#uploads.keys()];
  }

  /** Flips one byte of a stored archive, as a fault at rest would; the recorded hashes stay. */
  async corruptArchive(archiveId: string, offsetBytes: number): Promise<void> {
    const archive = this.#archives.get(archiveId);
    if (archive === undefined) {
      throw new Error(`no archive ${archiveId}`);
    }
    const file = await open(archive.path, 'r+');
    try {
      const byte = Buffer.alloc(1);
      await file.read(byte, 0, 1, offsetBytes);
      byte[0] ^= 0xff;
      await file.write(byte, 0, 1, offsetBytes);
    } finally {
      await file.close();
    }
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (server !== null) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    }
    await rm(this.directory, { recursive: true, force: true });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    try {
      this.#authenticate(req, body);
      await this.#route(req, body, res);
    } catch (err) {
      if (err instanceof GlacierError) {
        sendError(res, err);
        return;
      }
      if (err instanceof AwsApiError) {
        sendError(res, new GlacierError(err.statusCode, err.type, err.message));
        return;
      }
      throw err;
    }
  }

  // Glacier API reference, "Common Request Headers" and "Signing Requests".
  #authenticate(req: IncomingMessage, body: Buffer): void {
    if (req.headers['x-amz-glacier-version'] !== '2012-06-01') {
      throw missing('Required header x-amz-glacier-version is missing or not 2012-06-01');
    }
    verifySigV4(
      { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body },
      { keys: [GLACIER_TEST_CREDENTIALS], region: GLACIER_TEST_REGION, service: 'glacier', nowMs: Date.now() },
    );
    const contentSha256 = header(req, 'x-amz-content-sha256');
    if (body.length > 0 && contentSha256 === undefined) {
      throw missing('Required header x-amz-content-sha256 is missing');
    }
    if (contentSha256 !== undefined && contentSha256 !== sha256Hex(body)) {
      throw invalid('x-amz-content-sha256 does not match the request body');
    }
  }

  async #route(req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const segments = url.pathname.split('/').slice(1).map(decodeURIComponent);
    const method = req.method ?? 'GET';
    // /{accountId}/vaults/{vaultName}/…; "-" means the signer's account.
    if (segments.length < 3 || segments[1] !== 'vaults' || (segments[0] !== '-' && segments[0] !== ACCOUNT_ID)) {
      throw new GlacierError(404, 'ResourceNotFoundException', `No resource at ${url.pathname}`);
    }
    const vault = segments[2];
    const rest = segments.slice(3);
    const route = `${method} ${rest.length > 0 ? rest[0] : ''}${rest.length > 1 ? '/{id}' : ''}${rest.length > 2 ? `/${rest[2]}` : ''}`;
    if (route === 'PUT ') {
      return this.#createVault(vault, res);
    }
    this.#vault(vault);
    switch (route) {
      case 'GET ':
        return sendJson(res, 200, this.#describeVault(vault));
      case 'DELETE ':
        this.#vaults.delete(vault);
        return sendEmpty(res, 204);
      case 'POST multipart-uploads':
        return this.#initiateMultipartUpload(vault, req, res);
      case 'PUT multipart-uploads/{id}':
        return this.#uploadMultipartPart(vault, rest[1], req, body, res);
      case 'POST multipart-uploads/{id}':
        return this.#completeMultipartUpload(vault, rest[1], req, res);
      case 'DELETE multipart-uploads/{id}':
        return this.#abortMultipartUpload(vault, rest[1], res);
      case 'GET multipart-uploads/{id}':
        return this.#listParts(vault, rest[1], url.searchParams, res);
      case 'POST archives':
        return this.#uploadArchive(vault, req, body, res);
      case 'DELETE archives/{id}':
        return this.#deleteArchive(vault, rest[1], res);
      case 'POST jobs':
        return this.#initiateJob(vault, body, res);
      case 'GET jobs/{id}':
        return sendJson(res, 200, this.#describeJob(this.#job(vault, rest[1])));
      case 'GET jobs/{id}/output':
        return this.#getJobOutput(vault, rest[1], req, res);
      default:
        throw new GlacierError(405, 'InvalidParameterValueException', `${method} is not supported on ${url.pathname}`);
    }
  }

  #vault(name: string): void {
    if (!this.#vaults.has(name)) {
      throw notFound(`Vault not found for ARN: ${this.#vaultArn(name)}`);
    }
  }

  #vaultArn(vault: string): string {
    return `arn:aws:glacier:${GLACIER_TEST_REGION}:${ACCOUNT_ID}:vaults/${vault}`;
  }

  // CreateVault: PUT /{accountId}/vaults/{vaultName} → 201 with Location; idempotent.
  #createVault(vault: string, res: ServerResponse): void {
    if (!/^[A-Za-z0-9._-]{1,255}$/.test(vault)) {
      throw invalid(`Invalid vault name: ${vault}`);
    }
    if (!this.#vaults.has(vault)) {
      this.#vaults.set(vault, new Date());
    }
    res.setHeader('location', `/${ACCOUNT_ID}/vaults/${vault}`);
    sendEmpty(res, 201);
  }

  #describeVault(vault: string): Record<string, unknown> {
    const archives = [...this.#archives.values()].filter((a) => a.vault === vault);
    return {
      CreationDate: this.#vaults.get(vault)!.toISOString(),
      LastInventoryDate: null,
      NumberOfArchives: archives.length,
      SizeInBytes: archives.reduce((sum, a) => sum + a.sizeBytes, 0),
      VaultARN: this.#vaultArn(vault),
      VaultName: vault,
    };
  }

  // InitiateMultipartUpload: x-amz-part-size = 1 MiB × 2^n, up to 4 GiB.
  async #initiateMultipartUpload(vault: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const partSizeText = header(req, 'x-amz-part-size');
    if (partSizeText === undefined) {
      throw missing('Required header x-amz-part-size is missing');
    }
    const partSizeBytes = Number(partSizeText);
    const mib = partSizeBytes / MIB;
    if (!/^\d+$/.test(partSizeText) || !Number.isInteger(mib) || mib < 1 || partSizeBytes > MAX_PART_BYTES || (mib & (mib - 1)) !== 0) {
      throw invalid(`Invalid part size: ${partSizeText}. Part size must not be null, must be a power of two and be between 1048576 and 4294967296 bytes.`);
    }
    const description = checkDescription(header(req, 'x-amz-archive-description') ?? '');
    const id = randomId(92);
    const path = join(this.directory, `upload-${id.slice(0, 32)}`);
    await (await open(path, 'w')).close();
    this.#uploads.set(id, { id, vault, description, partSizeBytes, createdAt: new Date(), path, parts: new Map() });
    res.setHeader('location', `/${ACCOUNT_ID}/vaults/${vault}/multipart-uploads/${id}`);
    res.setHeader('x-amz-multipart-upload-id', id);
    sendEmpty(res, 201);
  }

  #upload(vault: string, id: string): Upload {
    const upload = this.#uploads.get(id);
    if (upload === undefined || upload.vault !== vault) {
      throw notFound(`Multipart upload not found: ${id}`);
    }
    return upload;
  }

  // UploadMultipartPart: Content-Range bytes a-b/* on a part boundary; tree hash of the body.
  async #uploadMultipartPart(vault: string, id: string, req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> {
    const upload = this.#upload(vault, id);
    const rangeText = header(req, 'content-range');
    const match = rangeText === undefined ? null : /^bytes (\d+)-(\d+)\/\*$/.exec(rangeText);
    if (match === null) {
      throw missing(`Content-Range must be "bytes first-last/*", got ${String(rangeText)}`);
    }
    const first = Number(match[1]);
    const last = Number(match[2]);
    if (last < first || last - first + 1 !== body.length) {
      throw invalid(`Content-Range ${rangeText} does not match the body of ${body.length} bytes`);
    }
    if (first % upload.partSizeBytes !== 0 || body.length > upload.partSizeBytes) {
      throw invalid(`Content-Range ${rangeText} is not aligned to the part size ${upload.partSizeBytes}`);
    }
    const index = first / upload.partSizeBytes;
    if (index >= MAX_PARTS) {
      throw invalid(`Part ${index} exceeds the ${MAX_PARTS}-part limit`);
    }
    const expectedTreeHash = header(req, 'x-amz-sha256-tree-hash');
    if (expectedTreeHash === undefined) {
      throw missing('Required header x-amz-sha256-tree-hash is missing');
    }
    const leafHashes = leafHashesOf(body);
    const actual = combineTreeHashes(leafHashes).toString('hex');
    if (actual !== expectedTreeHash) {
      throw invalid(`Checksum mismatch: expected ${expectedTreeHash} but computed ${actual}`);
    }
    await withFile(upload.path, 'r+', (file) => file.write(body, 0, body.length, first));
    upload.parts.set(index, { sizeBytes: body.length, leafHashes });
    res.setHeader('x-amz-sha256-tree-hash', actual);
    sendEmpty(res, 204);
  }

  // CompleteMultipartUpload: every part but the last exactly the part size; size and tree hash match.
  async #completeMultipartUpload(vault: string, id: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const upload = this.#upload(vault, id);
    const sizeText = header(req, 'x-amz-archive-size');
    const expectedTreeHash = header(req, 'x-amz-sha256-tree-hash');
    if (sizeText === undefined || expectedTreeHash === undefined) {
      throw missing('Required headers x-amz-archive-size and x-amz-sha256-tree-hash');
    }
    const sizeBytes = Number(sizeText);
    const partCount = Math.ceil(sizeBytes / upload.partSizeBytes);
    if (!/^\d+$/.test(sizeText) || sizeBytes < 1 || partCount !== upload.parts.size) {
      throw invalid(`Archive size ${sizeText} does not match the ${upload.parts.size} parts uploaded`);
    }
    const leafHashes: Buffer[] = [];
    for (let index = 0; index < partCount; index++) {
      const part = upload.parts.get(index);
      const expectedBytes = index < partCount - 1 ? upload.partSizeBytes : sizeBytes - index * upload.partSizeBytes;
      if (part === undefined || part.sizeBytes !== expectedBytes) {
        throw invalid(`Part ${index} is missing or has the wrong size for an archive of ${sizeBytes} bytes`);
      }
      leafHashes.push(...part.leafHashes);
    }
    const treeHashHex = combineTreeHashes(leafHashes).toString('hex');
    if (treeHashHex !== expectedTreeHash) {
      throw invalid(`Checksum mismatch: expected ${expectedTreeHash} but computed ${treeHashHex}`);
    }
    await withFile(upload.path, 'r+', (file) => file.truncate(sizeBytes));
    this.#uploads.delete(id);
    const archive = this.#addArchive(vault, upload.description, sizeBytes, leafHashes, upload.path);
    res.setHeader('location', `/${ACCOUNT_ID}/vaults/${vault}/archives/${archive.id}`);
    res.setHeader('x-amz-archive-id', archive.id);
    res.setHeader('x-amz-sha256-tree-hash', archive.treeHash);
    sendEmpty(res, 201);
  }

  #addArchive(vault: string, description: string, sizeBytes: number, leafHashes: Buffer[], path: string): Archive {
    const id = randomId(138);
    const archive: Archive = { id, vault, description, sizeBytes, leafHashes, treeHash: combineTreeHashes(leafHashes).toString('hex'), createdAt: new Date(), path };
    this.#archives.set(id, archive);
    return archive;
  }

  async #abortMultipartUpload(vault: string, id: string, res: ServerResponse): Promise<void> {
    const upload = this.#upload(vault, id);
    this.#uploads.delete(id);
    await rm(upload.path, { force: true });
    sendEmpty(res, 204);
  }

  // ListParts: pages of up to 1,000 parts (limit), continued with marker.
  #listParts(vault: string, id: string, query: URLSearchParams, res: ServerResponse): void {
    const upload = this.#upload(vault, id);
    const limit = Number(query.get('limit') ?? 1000);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw invalid(`Invalid limit: ${query.get('limit')}`);
    }
    const start = Number(query.get('marker') ?? 0);
    const indexes = [...upload.parts.keys()].sort((a, b) => a - b).filter((i) => i >= start);
    const page = indexes.slice(0, limit);
    sendJson(res, 200, {
      ArchiveDescription: upload.description,
      CreationDate: upload.createdAt.toISOString(),
      Marker: indexes.length > limit ? String(indexes[limit]) : null,
      MultipartUploadId: upload.id,
      PartSizeInBytes: upload.partSizeBytes,
      Parts: page.map((index) => {
        const part = upload.parts.get(index)!;
        const first = index * upload.partSizeBytes;
        return { RangeInBytes: `${first}-${first + part.sizeBytes - 1}`, SHA256TreeHash: combineTreeHashes(part.leafHashes).toString('hex') };
      }),
      VaultARN: this.#vaultArn(vault),
    });
  }

  // UploadArchive: one request, 1 byte to 4 GiB, tree hash checked.
  async #uploadArchive(vault: string, req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> {
    const expectedTreeHash = header(req, 'x-amz-sha256-tree-hash');
    if (expectedTreeHash === undefined) {
      throw missing('Required header x-amz-sha256-tree-hash is missing');
    }
    if (body.length === 0 || body.length > MAX_PART_BYTES) {
      throw invalid(`Invalid archive size ${body.length}`);
    }
    const leafHashes = leafHashesOf(body);
    if (combineTreeHashes(leafHashes).toString('hex') !== expectedTreeHash) {
      throw invalid('Checksum mismatch');
    }
    const path = join(this.directory, `archive-${randomBytes(16).toString('hex')}`);
    await withFile(path, 'w', (file) => file.write(body));
    const archive = this.#addArchive(vault, checkDescription(header(req, 'x-amz-archive-description') ?? ''), body.length, leafHashes, path);
    res.setHeader('location', `/${ACCOUNT_ID}/vaults/${vault}/archives/${archive.id}`);
    res.setHeader('x-amz-archive-id', archive.id);
    res.setHeader('x-amz-sha256-tree-hash', archive.treeHash);
    sendEmpty(res, 201);
  }

  async #deleteArchive(vault: string, id: string, res: ServerResponse): Promise<void> {
    const archive = this.#archives.get(id);
    if (archive === undefined || archive.vault !== vault) {
      throw notFound(`Archive not found: ${id}`);
    }
    this.#archives.delete(id);
    await rm(archive.path, { force: true });
    sendEmpty(res, 204);
  }

  // InitiateJob: archive-retrieval only (inventory and select are not used by shelfgate).
  #initiateJob(vault: string, body: Buffer, res: ServerResponse): void {
    let params: Record<string, unknown>;
    try {
      params = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw invalid('Invalid JSON in the job parameters');
    }
    if (params.Type !== 'archive-retrieval') {
      throw invalid(`Invalid job type: ${String(params.Type)}; this endpoint implements archive-retrieval`);
    }
    const archive = typeof params.ArchiveId === 'string' ? this.#archives.get(params.ArchiveId) : undefined;
    if (archive === undefined || archive.vault !== vault) {
      throw notFound(`Archive not found: ${String(params.ArchiveId)}`);
    }
    const tier = (params.Tier ?? 'Standard') as Tier;
    if (!TIERS.includes(tier)) {
      throw invalid(`Invalid tier: ${String(params.Tier)}`);
    }
    let range = { first: 0, last: archive.sizeBytes - 1 };
    if (params.RetrievalByteRange !== undefined && params.RetrievalByteRange !== null) {
      const match = /^(\d+)-(\d+)$/.exec(String(params.RetrievalByteRange));
      const first = Number(match?.[1]);
      const last = Number(match?.[2]);
      if (match === null || first % MIB !== 0 || last < first || last >= archive.sizeBytes || ((last + 1) % MIB !== 0 && last !== archive.sizeBytes - 1)) {
        throw invalid(`Invalid RetrievalByteRange ${String(params.RetrievalByteRange)}: it must be megabyte aligned and inside the archive`);
      }
      range = { first, last };
    }
    const description = params.Description === undefined || params.Description === null ? null : checkDescription(String(params.Description));
    const id = randomId(92);
    const createdAt = new Date();
    this.#jobs.set(id, { id, vault, archive, tier, description, range, createdAt, readyAtMs: createdAt.getTime() + this.#jobDelayMs[tier] });
    res.setHeader('location', `/${ACCOUNT_ID}/vaults/${vault}/jobs/${id}`);
    res.setHeader('x-amz-job-id', id);
    sendEmpty(res, 202);
  }

  #job(vault: string, id: string): Job {
    const job = this.#jobs.get(id);
    if (job === undefined || job.vault !== vault) {
      throw notFound(`The job ID was not found: ${id}`);
    }
    return job;
  }

  #jobSucceeded(job: Job): boolean {
    return Date.now() >= job.readyAtMs;
  }

  /** The tree hash of archive bytes [first, last], from the recorded leaves; null unless aligned. */
  #rangeTreeHash(archive: Archive, first: number, last: number): string | null {
    if (!isTreeHashAligned({ offsetBytes: first, lengthBytes: last - first + 1 }, archive.sizeBytes)) {
      return null;
    }
    return combineTreeHashes(archive.leafHashes.slice(first / TREE_HASH_LEAF_BYTES, Math.ceil((last + 1) / TREE_HASH_LEAF_BYTES))).toString('hex');
  }

  // DescribeJob.
  #describeJob(job: Job): Record<string, unknown> {
    const succeeded = this.#jobSucceeded(job);
    const wholeArchive = job.range.first === 0 && job.range.last === job.archive.sizeBytes - 1;
    return {
      Action: 'ArchiveRetrieval',
      ArchiveId: job.archive.id,
      ArchiveSHA256TreeHash: job.archive.treeHash,
      ArchiveSizeInBytes: job.archive.sizeBytes,
      Completed: succeeded,
      CompletionDate: succeeded ? new Date(job.readyAtMs).toISOString() : null,
      CreationDate: job.createdAt.toISOString(),
      InventorySizeInBytes: null,
      JobDescription: job.description,
      JobId: job.id,
      RetrievalByteRange: `${job.range.first}-${job.range.last}`,
      SHA256TreeHash: wholeArchive ? job.archive.treeHash : this.#rangeTreeHash(job.archive, job.range.first, job.range.last),
      SNSTopic: null,
      StatusCode: succeeded ? 'Succeeded' : 'InProgress',
      StatusMessage: succeeded ? 'Succeeded' : null,
      Tier: job.tier,
      VaultARN: this.#vaultArn(job.vault),
    };
  }

  // GetJobOutput: Range relative to the job's output, MB-aligned (or to the end).
  async #getJobOutput(vault: string, id: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const job = this.#job(vault, id);
    if (!this.#jobSucceeded(job)) {
      throw invalid(`The job is not currently available for download: ${id}`);
    }
    const archive = job.archive;
    if (!this.#archives.has(archive.id)) {
      throw notFound(`Archive not found: ${archive.id}`);
    }
    const outputBytes = job.range.last - job.range.first + 1;
    let first = 0;
    let last = outputBytes - 1;
    const rangeText = header(req, 'range');
    if (rangeText !== undefined) {
      const match = /^bytes=(\d+)-(\d*)$/.exec(rangeText);
      if (match === null) {
        throw invalid(`Invalid range: ${rangeText}`);
      }
      first = Number(match[1]);
      last = match[2] === '' ? outputBytes - 1 : Math.min(Number(match[2]), outputBytes - 1);
      if (first > last || first % MIB !== 0 || ((last + 1) % MIB !== 0 && last !== outputBytes - 1)) {
        throw invalid(`The range ${rangeText} must be megabyte aligned`);
      }
    }
    const lengthBytes = last - first + 1;
    const data = Buffer.alloc(lengthBytes);
    await withFile(archive.path, 'r', (file) => file.read(data, 0, lengthBytes, job.range.first + first));
    const jobAligned = this.#rangeTreeHash(archive, job.range.first, job.range.last) !== null;
    const treeHashHex = jobAligned ? this.#rangeTreeHash(archive, job.range.first + first, job.range.first + last) : null;
    res.statusCode = rangeText !== undefined ? 206 : 200;
    res.setHeader('content-type', 'application/octet-stream');
    res.setHeader('content-length', lengthBytes);
    res.setHeader('accept-ranges', 'bytes');
    res.setHeader('x-amz-archive-description', archive.description);
    if (rangeText !== undefined) {
      res.setHeader('content-range', `bytes ${first}-${last}/${outputBytes}`);
    }
    if (treeHashHex !== null) {
      res.setHeader('x-amz-sha256-tree-hash', treeHashHex);
    }
    res.end(data);
  }
}

function leafHashesOf(body: Buffer): Buffer[] {
  const leaves: Buffer[] = [];
  for (let offset = 0; offset < body.length || leaves.length === 0; offset += TREE_HASH_LEAF_BYTES) {
    leaves.push(treeHash(body.subarray(offset, offset + TREE_HASH_LEAF_BYTES)));
  }
  return leaves;
}

function checkDescription(description: string): string {
  if (!/^[\x20-\x7e]{0,1024}$/.test(description)) {
    throw invalid('Invalid archive description: at most 1,024 printable ASCII characters');
  }
  return description;
}

function randomId(length: number): string {
  return randomBytes(length).toString('base64url').slice(0, length);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function withFile<T>(path: string, flags: string, work: (file: FileHandle) => Promise<T>): Promise<T> {
  const file = await open(path, flags);
  try {
    return await work(file);
  } finally {
    await file.close();
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendEmpty(res: ServerResponse, status: number): void {
  res.statusCode = status;
  res.end();
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
}

// Glacier error responses: JSON {code, message, type} and x-amzn-ErrorType (API reference, "Error Responses").
function sendError(res: ServerResponse, err: GlacierError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.setHeader('x-amzn-errortype', `${err.code}:`);
  res.setHeader('x-amzn-requestid', randomBytes(16).toString('base64url'));
  sendJson(res, err.statusCode, { code: err.code, message: err.message, type: err.type });
}
