import { createServer, type Socket } from 'node:net';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import t from 'tap';
import { sha256Base64 } from '../../src/cloud/checksum.js';
import { classifyS3Error, S3ObjectStore, type S3ObjectStoreConfig } from '../../src/cloud/s3-object-store.js';
import { S3RVER_CREDENTIALS, S3rverEndpoint } from '../helpers/s3rver.js';
import { objectStoreContract, patternBytes } from './object-store-contract.js';

const MIB = 1024 * 1024;

function storeConfig(endpoint: S3rverEndpoint, overrides: Partial<S3ObjectStoreConfig> = {}): S3ObjectStoreConfig {
  return {
    bucket: endpoint.bucket,
    endpoint: endpoint.url,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    connectionTimeoutMs: 1_000,
    requestTimeoutMs: 10_000,
    socketIdleTimeoutMs: 2_000,
    retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
    multipartThresholdBytes: MIB,
    partSizeBytes: MIB,
    ...overrides,
  };
}

/** A client that goes around the store, for changing objects behind its back. */
function rawClient(endpoint: S3rverEndpoint): S3Client {
  return new S3Client({
    endpoint: endpoint.url,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

async function startEndpoint(t: { teardown(fn: () => Promise<void>): void }): Promise<S3rverEndpoint> {
  const endpoint = await S3rverEndpoint.start();
  t.teardown(() => endpoint.close());
  return endpoint;
}

objectStoreContract(t, 'S3ObjectStore (s3rver)', async () => {
  const endpoint = await S3rverEndpoint.start();
  const store = new S3ObjectStore(storeConfig(endpoint));
  const raw = rawClient(endpoint);
  return {
    store,
    // Overwrite with a different body but the old x-amz-meta-sha256, as a bit flip at rest would.
    corrupt: async (key) => {
      const Bucket = endpoint.bucket;
      const head = await raw.send(new HeadObjectCommand({ Bucket, Key: key }));
      const res = await raw.send(new GetObjectCommand({ Bucket, Key: key }));
      const body = Buffer.from(await res.Body!.transformToByteArray());
      body[body.length - 1] ^= 0xff;
      await raw.send(new PutObjectCommand({ Bucket, Key: key, Body: body, Metadata: head.Metadata }));
    },
    outage: async () => {
      await endpoint.stop();
      return () => endpoint.start();
    },
    largeBodyBytes: 3 * MIB + 12345,
    bulkListKeys: 1100,
    noConditionalWrites: 's3rver 3.7.1 ignores If-None-Match on PUT (AWS S3 and Ceph RGW answer 412)',
    close: async () => {
      raw.destroy();
      await store.close();
      await endpoint.close();
    },
  };
});

t.test('S3ObjectStore.Wire: SHA-256 travels as x-amz-meta-sha256; prefix is applied and stripped', async (t) => {
  const endpoint = await startEndpoint(t);
  const store = new S3ObjectStore(storeConfig(endpoint, { prefix: 'gw-1/' }));
  t.teardown(() => store.close());
  const raw = rawClient(endpoint);
  t.teardown(() => raw.destroy());
  const body = Buffer.from('chunk bytes');
  await store.put('volumes/1/x', body, { metadata: { 'chunk-index': '5' } });
  const head = await raw.send(new HeadObjectCommand({ Bucket: endpoint.bucket, Key: 'gw-1/volumes/1/x' }));
  t.same(head.Metadata, { 'chunk-index': '5', sha256: sha256Base64(body) });
  const putRequest = endpoint.requests.find((r) => r.method === 'PUT');
  t.equal(putRequest?.headers['x-amz-checksum-sha256'], sha256Base64(body), 'S3 gets the checksum to verify on receipt');
  const large = patternBytes(2 * MIB + 7, 11);
  await store.put('large', large);
  const parts = endpoint.requests.filter((r) => r.method === 'PUT' && r.url.includes('partNumber='));
  t.same(
    parts.map((r) => r.headers['x-amz-checksum-sha256']),
    [0, 1, 2].map((i) => sha256Base64(large.subarray(i * MIB, (i + 1) * MIB))),
    'each part carries its own SHA-256',
  );
  const create = endpoint.requests.find((r) => r.method === 'POST' && r.url.includes('uploads'));
  t.equal(create?.headers['x-amz-checksum-algorithm'], 'SHA256');
  const keys: string[] = [];
  for await (const entry of store.list('volumes/')) {
    keys.push(entry.key);
  }
  t.same(keys, ['volumes/1/x']);
});

t.test('S3ObjectStore.Pagination: small pages give the same listing', async (t) => {
  const endpoint = await startEndpoint(t);
  const store = new S3ObjectStore(storeConfig(endpoint, { listPageSize: 4 }));
  t.teardown(() => store.close());
  const keys = Array.from({ length: 11 }, (_, i) => `p/${String(i).padStart(2, '0')}`);
  for (const key of keys) {
    await store.put(key, Buffer.from(key));
  }
  const listed: string[] = [];
  for await (const entry of store.list('p/', { startAfter: 'p/01', limit: 7 })) {
    listed.push(entry.key);
  }
  t.same(listed, keys.slice(2, 9));
});

t.test('S3ObjectStore.MultipartAbort: a failed part aborts the upload, nothing is left', async (t) => {
  const endpoint = await startEndpoint(t);
  const store = new S3ObjectStore(storeConfig(endpoint, { partSizeBytes: MIB / 2, partConcurrency: 2 }));
  t.teardown(() => store.close());
  endpoint.failUploadParts = 1;
  await t.rejects(store.put('big', patternBytes(3 * MIB, 9)), { code: 'CLOUD_INVALID_REQUEST', transient: false });
  t.equal(endpoint.abortedUploadIds.length, 1, 'AbortMultipartUpload sent');
  t.same(await endpoint.pendingUploadIds(), [], 'no parts left behind');
  t.equal(await store.head('big'), null);
  const body = patternBytes(3 * MIB, 10);
  await store.put('big', body);
  t.equal(sha256Base64(await store.get('big')), sha256Base64(body), 'a retry of the whole put succeeds');
});

t.test('S3ObjectStore.HungEndpoint: no answer → CLOUD_UNAVAILABLE (transient) after the idle timeout', async (t) => {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        sockets.forEach((s) => s.destroy());
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as { port: number };
  const store = new S3ObjectStore({
    bucket: 'b',
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    socketIdleTimeoutMs: 300,
    requestTimeoutMs: 600,
    retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
  });
  t.teardown(() => store.close());
  await t.rejects(store.put('k', Buffer.from('x')), { code: 'CLOUD_UNAVAILABLE', transient: true });
  await t.rejects(store.head('k'), { code: 'CLOUD_UNAVAILABLE', transient: true });
});

t.test('S3ObjectStore.Permanent: wrong credentials and a missing bucket are not transient', async (t) => {
  const endpoint = await startEndpoint(t);
  const wrongKey = new S3ObjectStore(storeConfig(endpoint, { credentials: { accessKeyId: 'NOPE', secretAccessKey: 'NOPE' } }));
  t.teardown(() => wrongKey.close());
  await t.rejects(wrongKey.put('k', Buffer.from('x')), { code: 'CLOUD_AUTH', transient: false });
  const noBucket = new S3ObjectStore(storeConfig(endpoint, { bucket: 'no-such-bucket' }));
  t.teardown(() => noBucket.close());
  await t.rejects(noBucket.put('k', Buffer.from('x')), { code: 'CLOUD_NO_BUCKET', transient: false });
  await t.rejects(noBucket.get('k'), { code: 'CLOUD_NO_BUCKET', transient: false });
});

t.test('S3ObjectStore.Classify: S3 error codes and socket errors', async (t) => {
  const http = (status: number, name: string): Error => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
  const errno = (code: string): Error => Object.assign(new Error(code), { code });
  const table: Array<[Error, string, boolean]> = [
    [http(503, 'SlowDown'), 'CLOUD_THROTTLED', true],
    [http(429, 'TooManyRequests'), 'CLOUD_THROTTLED', true],
    [http(500, 'InternalError'), 'CLOUD_UNAVAILABLE', true],
    [http(502, 'BadGateway'), 'CLOUD_UNAVAILABLE', true],
    [http(400, 'RequestTimeout'), 'CLOUD_UNAVAILABLE', true],
    [http(403, 'RequestTimeTooSkewed'), 'CLOUD_AUTH', true],
    [http(400, 'ExpiredToken'), 'CLOUD_AUTH', true],
    [http(403, 'AccessDenied'), 'CLOUD_AUTH', false],
    [http(403, 'SignatureDoesNotMatch'), 'CLOUD_AUTH', false],
    [http(404, 'NoSuchBucket'), 'CLOUD_NO_BUCKET', false],
    [http(404, 'NoSuchKey'), 'CLOUD_NOT_FOUND', false],
    [http(404, 'NotFound'), 'CLOUD_NOT_FOUND', false],
    [http(400, 'InvalidArgument'), 'CLOUD_INVALID_REQUEST', false],
    [http(501, 'NotImplemented'), 'CLOUD_NOT_IMPLEMENTED', false],
    [errno('ECONNREFUSED'), 'CLOUD_UNAVAILABLE', true],
    [errno('ECONNRESET'), 'CLOUD_UNAVAILABLE', true],
    [errno('EAI_AGAIN'), 'CLOUD_UNAVAILABLE', true],
    [Object.assign(new Error('timed out'), { name: 'TimeoutError' }), 'CLOUD_UNAVAILABLE', true],
    [Object.assign(new Error('no credentials'), { name: 'CredentialsProviderError' }), 'CLOUD_AUTH', false],
    [new TypeError('a bug'), 'CLOUD_INVALID_REQUEST', false],
  ];
  for (const [err, code, transient] of table) {
    t.match(classifyS3Error(err, 'op'), { code, transient, cause: err }, `${err.name} ${(err as { code?: string }).code ?? ''}`);
  }
});
