// S3 archive storage classes for tests: an HTTP front on 127.0.0.1:0 before an S3rverEndpoint
// (s3rver stores x-amz-storage-class but ignores what it means). It enforces, per the S3 API
// reference, what the real service does for objects in GLACIER or DEEP_ARCHIVE:
//   - GetObject → 403 InvalidObjectState until a restore has completed (and after it expires);
//   - RestoreObject (POST ?restore, RestoreRequest{Days, GlacierJobParameters{Tier}}): 202 when
//     started, 409 RestoreAlreadyInProgress while ongoing, 200 when already restored (the expiry is
//     extended), 403 InvalidObjectState for other classes, 404 NoSuchKey;
//   - HeadObject → x-amz-restore: ongoing-request="true", then ongoing-request="false",
//     expiry-date="<RFC 1123 date>" once the tier's configured delay has passed;
//   - an overwrite (new ETag) forgets the restore.
// It also answers ListParts (GET ?uploadId=…), which s3rver lacks, from s3rver's upload directory.
// Everything else is forwarded unchanged (s3rver verifies those signatures); the requests the front
// answers itself are SigV4-verified here (service s3, S3RVER credentials). Clients only see an
// S3 endpoint URL.

import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { AwsApiError } from '../../src/api/aws/aws-error.js';
import { verifySigV4 } from '../../src/api/aws/sigv4.js';
import { S3RVER_CREDENTIALS, S3rverEndpoint } from './s3rver.js';

const ARCHIVE_CLASSES = new Set(['GLACIER', 'DEEP_ARCHIVE']);
/** Query names that make a GET another operation than GetObject (x-id and response-* do not). */
const SUBRESOURCES = new Set(['acl', 'tagging', 'uploadId', 'uploads', 'restore', 'versions', 'versionId', 'legal-hold', 'retention', 'torrent', 'attributes']);
const TIERS = ['Expedited', 'Standard', 'Bulk'] as const;
type Tier = (typeof TIERS)[number];
const DAY_MS = 24 * 3600 * 1000;

interface Restore {
  etag: string;
  readyAtMs: number;
  expiresAtMs: number;
}

export interface S3RestoreEndpointOptions {
  /** Time a restore stays ongoing, per tier. */
  restoreDelayMs?: Partial<Record<Tier, number>>;
  /** The clock (restores complete and expire by it). */
  nowMs?: () => number;
}

export class S3RestoreEndpoint {
  readonly s3: S3rverEndpoint;
  /** Requests the front received (method, url, headers). */
  readonly requests: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }> = [];
  readonly #restores = new Map<string, Restore>();
  readonly #delayMs: Record<Tier, number>;
  readonly #nowMs: () => number;
  #server: Server | null = null;
  #port = 0;

  private constructor(s3: S3rverEndpoint, opts: S3RestoreEndpointOptions) {
    this.s3 = s3;
    this.#delayMs = { Expedited: 0, Standard: 0, Bulk: 0, ...opts.restoreDelayMs };
    this.#nowMs = opts.nowMs ?? Date.now;
  }

  static async start(opts: S3RestoreEndpointOptions = {}): Promise<S3RestoreEndpoint> {
    const endpoint = new S3RestoreEndpoint(await S3rverEndpoint.start(), opts);
    const server = createServer((req, res) => {
      endpoint.#handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) {
          sendError(res, 500, 'InternalError', String(err));
        } else {
          res.destroy();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint.#port = (server.address() as { port: number }).port;
    endpoint.#server = server;
    return endpoint;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get bucket(): string {
    return this.s3.bucket;
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (server !== null) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    }
    await this.s3.close();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const url = new URL(req.url ?? '/', 'http://localhost');
    const bucketPrefix = `/${this.bucket}/`;
    const key = url.pathname.startsWith(bucketPrefix) ? decodeURIComponent(url.pathname.slice(bucketPrefix.length)) : null;
    if (key !== null && req.method === 'POST' && url.searchParams.has('restore')) {
      const body = await readBody(req);
      if (this.#authenticate(req, body, res)) {
        await this.#restoreObject(key, body, res);
      }
      return;
    }
    if (key !== null && req.method === 'GET' && url.searchParams.has('uploadId') && !url.searchParams.has('partNumber')) {
      const body = await readBody(req);
      if (this.#authenticate(req, body, res)) {
        await this.#listParts(key, url.searchParams, res);
      }
      return;
    }
    if (key !== null && (req.method === 'GET' || req.method === 'HEAD') && ![...url.searchParams.keys()].some((name) => SUBRESOURCES.has(name))) {
      const metadata = await this.s3.objectMetadata(key);
      const restore = metadata === null ? null : this.#restoreOf(key, metadata);
      if (metadata !== null && ARCHIVE_CLASSES.has(String(metadata['x-amz-storage-class'])) && req.method === 'GET' && restore?.state !== 'done') {
        await readBody(req);
        sendError(res, 403, 'InvalidObjectState', "The operation is not valid for the object's storage class", `<StorageClass>${metadata['x-amz-storage-class']}</StorageClass>`);
        return;
      }
      this.#forward(req, res, restore === null ? {} : { 'x-amz-restore': restore.header });
      return;
    }
    this.#forward(req, res, {});
  }

  /** Requests the front answers itself are signed like any other S3 request. */
  #authenticate(req: IncomingMessage, body: Buffer, res: ServerResponse): boolean {
    try {
      verifySigV4(
        { method: req.method ?? 'POST', url: req.url ?? '/', headers: req.headers, body },
        { keys: [S3RVER_CREDENTIALS], region: 'us-east-1', service: 's3', nowMs: Date.now() },
      );
      return true;
    } catch (err) {
      if (err instanceof AwsApiError) {
        sendError(res, 403, 'SignatureDoesNotMatch', err.message);
        return false;
      }
      throw err;
    }
  }

  #restoreOf(key: string, metadata: Record<string, string | number>): { state: 'ongoing' | 'done'; header: string } | null {
    const restore = this.#restores.get(key);
    const nowMs = this.#nowMs();
    if (restore === undefined || restore.etag !== String(metadata.etag) || nowMs >= restore.expiresAtMs) {
      return null;
    }
    if (nowMs < restore.readyAtMs) {
      return { state: 'ongoing', header: 'ongoing-request="true"' };
    }
    return { state: 'done', header: `ongoing-request="false", expiry-date="${new Date(restore.expiresAtMs).toUTCString()}"` };
  }

  // S3 API reference, RestoreObject.
  async #restoreObject(key: string, body: Buffer, res: ServerResponse): Promise<void> {
    const metadata = await this.s3.objectMetadata(key);
    if (metadata === null) {
      sendError(res, 404, 'NoSuchKey', 'The specified key does not exist.');
      return;
    }
    const storageClass = String(metadata['x-amz-storage-class'] ?? 'STANDARD');
    if (!ARCHIVE_CLASSES.has(storageClass)) {
      sendError(res, 403, 'InvalidObjectState', 'Restore is not allowed for the object\'s current storage class');
      return;
    }
    const xml = body.toString('utf8');
    const days = Number(/<Days>(\d+)<\/Days>/.exec(xml)?.[1]);
    const tier = (/<Tier>([A-Za-z]+)<\/Tier>/.exec(xml)?.[1] ?? 'Standard') as Tier;
    if (!Number.isInteger(days) || days < 1) {
      sendError(res, 400, 'MalformedXML', 'RestoreRequest needs Days ≥ 1 for an archive restore');
      return;
    }
    if (!TIERS.includes(tier) || (tier === 'Expedited' && storageClass === 'DEEP_ARCHIVE')) {
      sendError(res, 400, 'InvalidArgument', `Tier ${tier} is not valid for storage class ${storageClass}`);
      return;
    }
    const current = this.#restoreOf(key, metadata);
    const nowMs = this.#nowMs();
    if (current?.state === 'ongoing') {
      sendError(res, 409, 'RestoreAlreadyInProgress', 'Object restore is already in progress');
      return;
    }
    // The restored copy expires at midnight UTC after `days` days (S3 rounds up to the next day).
    const expiresAtMs = (Math.floor((nowMs + days * DAY_MS) / DAY_MS) + 1) * DAY_MS;
    if (current?.state === 'done') {
      this.#restores.get(key)!.expiresAtMs = expiresAtMs;
      res.statusCode = 200;
      res.end();
      return;
    }
    this.#restores.set(key, { etag: String(metadata.etag), readyAtMs: nowMs + this.#delayMs[tier], expiresAtMs });
    res.statusCode = 202;
    res.end();
  }

  // S3 API reference, ListParts: pages of max-parts (≤ 1000), continued with part-number-marker.
  async #listParts(key: string, query: URLSearchParams, res: ServerResponse): Promise<void> {
    const uploadId = query.get('uploadId') ?? '';
    const dir = this.s3.uploadDirectory(uploadId);
    const storedKey = /^[0-9a-f]+$/.test(uploadId) ? await readFile(join(dir, 'key'), 'utf8').catch(() => null) : null;
    if (storedKey !== key) {
      sendError(res, 404, 'NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.');
      return;
    }
    const maxParts = Math.min(Number(query.get('max-parts') ?? 1000), 1000);
    const marker = Number(query.get('part-number-marker') ?? 0);
    const numbers = (await readdir(dir)).filter((name) => /^\d+$/.test(name)).map(Number).filter((n) => n > marker).sort((a, b) => a - b);
    const page = numbers.slice(0, maxParts);
    const parts: string[] = [];
    for (const number of page) {
      const path = join(dir, String(number));
      const [bytes, info] = await Promise.all([readFile(path), stat(path)]);
      parts.push(
        `<Part><PartNumber>${number}</PartNumber><LastModified>${info.mtime.toISOString()}</LastModified>` +
          `<ETag>"${createHash('md5').update(bytes).digest('hex')}"</ETag><Size>${bytes.length}</Size></Part>`,
      );
    }
    const truncated = numbers.length > page.length;
    res.statusCode = 200;
    res.setHeader('content-type', 'application/xml');
    res.end(
      '<?xml version="1.0" encoding="UTF-8"?>\n<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
        `<Bucket>${this.bucket}</Bucket><Key>${xmlEscape(key)}</Key><UploadId>${uploadId}</UploadId>` +
        `<PartNumberMarker>${marker}</PartNumberMarker>` +
        (truncated ? `<NextPartNumberMarker>${page[page.length - 1]}</NextPartNumberMarker>` : '') +
        `<MaxParts>${maxParts}</MaxParts><IsTruncated>${truncated}</IsTruncated>${parts.join('')}</ListPartsResult>`,
    );
  }

  /** Passes the request to s3rver unchanged (its Host header included, so signatures verify). */
  #forward(req: IncomingMessage, res: ServerResponse, extraHeaders: Record<string, string>): void {
    const upstream = request(
      { host: '127.0.0.1', port: this.s3.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, { ...answer.headers, ...extraHeaders });
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function sendError(res: ServerResponse, status: number, code: string, message: string, extra = ''): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/xml');
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message>${extra}</Error>`);
}
