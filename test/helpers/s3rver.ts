// A real S3 HTTP endpoint for tests: s3rver (npm, 3.7.1) on 127.0.0.1, behind a thin http.Server
// front that adds what s3rver lacks and the client needs:
//   - AbortMultipartUpload (DELETE /bucket/key?uploadId=…): s3rver answers 405; the front removes
//     the upload's parts from s3rver's directory and answers 204 (404 NoSuchUpload when unknown).
//     Aborts are recorded in `abortedUploadIds`. (ListParts is not used by S3ObjectStore.)
//   - ListObjectsV2 (GET /bucket?list-type=2 without delimiter): s3rver's continuation tokens use
//     DES, which OpenSSL 3 (Node ≥ 17) refuses (HTTP 500 on every truncated page), and its
//     filesystem walk does not return keys in S3's UTF-8 byte order. The front answers from
//     s3rver's store instead: byte-ordered, StartAfter, MaxKeys ≤ 1000, opaque tokens.
//   - a ranged GET of a 0-byte object: s3rver announces Content-Length 1 and sends nothing (the
//     client hangs); S3 answers 416 InvalidRange (RFC 9110 15.5.17), and so does the front.
//   - fault injection: `failUploadParts` makes the next n UploadPart requests fail with 400
//     InvalidPart, to drive the client's abort path.
// The front is also what stop()/start() control, so tests can take the endpoint away and bring it
// back on the same port with the same data. Credentials are S3RVER/S3RVER (s3rver's dummy account).

import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface S3rverApp {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  configureBuckets(): Promise<unknown>;
  store: {
    getResourcePath(bucket: string, key: string | undefined, resource: string): string;
    listObjects(bucket: string, opts: { prefix?: string }): Promise<{ objects: S3rverObject[] }>;
    getMetadata(bucket: string, key: string): Promise<Record<string, string | number>>;
  };
  logger: { close(): void };
}
interface S3rverObject {
  key: string;
  size: number;
  lastModifiedDate: Date;
  metadata: Record<string, string>;
}
type S3rverConstructor = new (opts: {
  directory: string;
  silent: boolean;
  configureBuckets: Array<{ name: string }>;
}) => S3rverApp;

const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;

export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export class S3rverEndpoint {
  readonly bucket: string;
  readonly directory: string;
  readonly abortedUploadIds: string[] = [];
  /** Every request received, for asserting on what the client sent. */
  readonly requests: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }> = [];
  /** The next this-many UploadPart requests fail with 400 InvalidPart. */
  failUploadParts = 0;
  #port = 0;
  #server: Server | null = null;
  readonly #app: S3rverApp;

  private constructor(directory: string, bucket: string) {
    this.directory = directory;
    this.bucket = bucket;
    this.#app = new S3rver({ directory, silent: true, configureBuckets: [{ name: bucket }] });
  }

  static async start(opts: { bucket?: string } = {}): Promise<S3rverEndpoint> {
    const directory = await mkdtemp(join(tmpdir(), 'shelfgate-s3rver-'));
    const endpoint = new S3rverEndpoint(directory, opts.bucket ?? 'shelfgate-test');
    await endpoint.#app.configureBuckets();
    await endpoint.start();
    return endpoint;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Listens again (on the same port after a stop). */
  async start(): Promise<void> {
    const handler = this.#app.callback();
    const server = createServer((req, res) => {
      this.#route(req, res, handler).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  /** Closes the listener and every open connection: clients see ECONNREFUSED / ECONNRESET. */
  async stop(): Promise<void> {
    const server = this.#server;
    if (server === null) {
      return;
    }
    this.#server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  /** stop() and remove the data directory. */
  async close(): Promise<void> {
    await this.stop();
    this.#app.logger.close();
    await rm(this.directory, { recursive: true, force: true });
  }

  async #route(req: IncomingMessage, res: ServerResponse, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const uploadId = url.searchParams.get('uploadId');
    if (uploadId !== null && req.method === 'DELETE') {
      await drain(req);
      await this.#abortMultipartUpload(uploadId, res);
      return;
    }
    if (req.method === 'GET' && url.searchParams.get('list-type') === '2' && !url.searchParams.has('delimiter') && url.pathname.replace(/\/$/, '') === `/${this.bucket}`) {
      await this.#listObjectsV2(url.searchParams, res);
      return;
    }
    const bucketPrefix = `/${this.bucket}/`;
    if (req.method === 'GET' && req.headers.range !== undefined && url.pathname.startsWith(bucketPrefix)) {
      const key = decodeURIComponent(url.pathname.slice(bucketPrefix.length));
      const metadata = await this.#app.store.getMetadata(this.bucket, key).catch(() => null);
      if (metadata !== null && Number(metadata['content-length']) === 0) {
        await drain(req);
        res.setHeader('content-range', 'bytes */0');
        sendError(res, 416, 'InvalidRange', 'The requested range is not satisfiable');
        return;
      }
    }
    if (uploadId !== null && req.method === 'PUT' && url.searchParams.has('partNumber') && this.failUploadParts > 0) {
      this.failUploadParts--;
      await drain(req);
      sendError(res, 400, 'InvalidPart', 'injected UploadPart failure');
      return;
    }
    handler(req, res);
  }

  // S3 API reference, AbortMultipartUpload: 204 on success, 404 NoSuchUpload when unknown.
  async #abortMultipartUpload(uploadId: string, res: ServerResponse): Promise<void> {
    if (!/^[0-9a-f]+$/.test(uploadId)) {
      sendError(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
      return;
    }
    const uploadDir = join(this.#app.store.getResourcePath(this.bucket, undefined, 'uploads'), uploadId);
    const exists = await stat(uploadDir).then(
      () => true,
      () => false,
    );
    if (!exists) {
      sendError(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
      return;
    }
    await rm(uploadDir, { recursive: true, force: true });
    this.abortedUploadIds.push(uploadId);
    res.statusCode = 204;
    res.end();
  }

  // S3 API reference, ListObjectsV2.
  async #listObjectsV2(query: URLSearchParams, res: ServerResponse): Promise<void> {
    const prefix = query.get('prefix') ?? '';
    const token = query.get('continuation-token');
    const startAfter = token !== null ? Buffer.from(token, 'base64url').toString('utf8') : (query.get('start-after') ?? '');
    const maxKeys = Math.min(Number(query.get('max-keys') ?? 1000), 1000);
    const { objects } = await this.#app.store.listObjects(this.bucket, { prefix });
    const utf8 = (key: string): Buffer => Buffer.from(key, 'utf8');
    const after = objects
      .filter((o) => Buffer.compare(utf8(o.key), utf8(startAfter)) > 0)
      .sort((a, b) => Buffer.compare(utf8(a.key), utf8(b.key)));
    const page = after.slice(0, maxKeys);
    const isTruncated = after.length > page.length;
    const element = (name: string, value: string | number): string => `<${name}>${xmlEscape(String(value))}</${name}>`;
    const xml = [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
      element('Name', this.bucket),
      element('Prefix', prefix),
      token !== null ? element('ContinuationToken', token) : query.has('start-after') ? element('StartAfter', startAfter) : '',
      element('KeyCount', page.length),
      element('MaxKeys', maxKeys),
      element('IsTruncated', String(isTruncated)),
      isTruncated ? element('NextContinuationToken', Buffer.from(page[page.length - 1].key, 'utf8').toString('base64url')) : '',
      ...page.map(
        (o) =>
          '<Contents>' +
          element('Key', o.key) +
          element('LastModified', o.lastModifiedDate.toISOString()) +
          element('ETag', o.metadata['etag'] ?? '') +
          element('Size', o.size) +
          element('StorageClass', 'STANDARD') +
          '</Contents>',
      ),
      '</ListBucketResult>',
    ].join('');
    res.statusCode = 200;
    res.setHeader('content-type', 'application/xml');
    res.end(xml);
  }

  /** An object's stored metadata (content-length, etag, x-amz-storage-class, x-amz-meta-*), or
   *  null when it does not exist; used by the restore front (s3-restore-endpoint.ts). */
  async objectMetadata(key: string): Promise<Record<string, string | number> | null> {
    return this.#app.store.getMetadata(this.bucket, key).catch(() => null);
  }

  /** The file holding an object's bytes, for tests that damage it behind the client's back. */
  objectPath(key: string): string {
    return this.#app.store.getResourcePath(this.bucket, key, 'object');
  }

  /** The directory holding an upload's part files (named by part number). */
  uploadDirectory(uploadId: string): string {
    return join(this.#app.store.getResourcePath(this.bucket, undefined, 'uploads'), uploadId);
  }

  /** Upload ids whose parts are still stored (started, neither completed nor aborted). */
  async pendingUploadIds(): Promise<string[]> {
    return readdir(this.#app.store.getResourcePath(this.bucket, undefined, 'uploads')).catch(() => []);
  }
}

function drain(req: IncomingMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    req.on('error', reject);
    req.on('end', resolve);
    req.resume();
  });
}

function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/xml');
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
}
