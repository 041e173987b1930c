import { GlacierClient, InitiateMultipartUploadCommand, ListVaultsCommand, UploadMultipartPartCommand } from '@aws-sdk/client-glacier';
import t from 'tap';
import { GlacierArchiveStore, type GlacierArchiveStoreConfig } from '../../src/cloud/glacier-archive-store.js';
import { treeHashHex } from '../../src/cloud/tree-hash.js';
import { GLACIER_TEST_CREDENTIALS, GLACIER_TEST_REGION, GlacierEndpoint } from '../helpers/glacier-endpoint.js';
import { archiveStoreContract, waitForRetrieval } from './archive-store-contract.js';
import { patternBytes } from './object-store-contract.js';

const MIB = 1024 * 1024;
const JOB_DELAY_MS = { Expedited: 0, Standard: 200, Bulk: 3_600_000 };

function storeConfig(endpoint: GlacierEndpoint, overrides: Partial<GlacierArchiveStoreConfig> = {}): GlacierArchiveStoreConfig {
  return {
    vaultName: 'shelfgate-vts',
    createVault: true,
    endpoint: endpoint.url,
    region: GLACIER_TEST_REGION,
    credentials: GLACIER_TEST_CREDENTIALS,
    partSizeBytes: MIB,
    retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
    ...overrides,
  };
}

async function startEndpoint(t: { teardown(fn: () => Promise<void>): void }): Promise<GlacierEndpoint> {
  const endpoint = await GlacierEndpoint.start({ jobDelayMs: JOB_DELAY_MS, vaults: ['existing'] });
  t.teardown(() => endpoint.close());
  return endpoint;
}

archiveStoreContract(t, 'GlacierArchiveStore (glacier endpoint)', async () => {
  const endpoint = await GlacierEndpoint.start({ jobDelayMs: JOB_DELAY_MS });
  const store = new GlacierArchiveStore(storeConfig(endpoint));
  return {
    store,
    corrupt: (archiveId, offsetBytes) => endpoint.corruptArchive(archiveId, offsetBytes),
    close: async () => {
      await store.close();
      await endpoint.close();
    },
  };
});

t.test('Glacier.Wire: version header, SigV4 for glacier, tree hash and Content-Range per part', async (t) => {
  const endpoint = await startEndpoint(t);
  const store = new GlacierArchiveStore(storeConfig(endpoint, { vaultName: 'existing', createVault: false }));
  t.teardown(() => store.close());
  const body = patternBytes(2 * MIB + 9, 5);
  const upload = await store.beginArchive('tape-WI0001', { description: 'wire' });
  for (let i = 0; i < 3; i++) {
    await upload.uploadPart(i, body.subarray(i * MIB, (i + 1) * MIB));
  }
  const { archiveId, sha256TreeHash } = await upload.complete();
  t.equal(sha256TreeHash, treeHashHex(body));
  t.ok(endpoint.requests.every((r) => r.headers['x-amz-glacier-version'] === '2012-06-01'), 'x-amz-glacier-version on every request');
  t.ok(endpoint.requests.every((r) => /Credential=AKIDGLACIERTEST\/\d{8}\/us-east-1\/glacier\/aws4_request/.test(String(r.headers.authorization))), 'signed for glacier');
  const parts = endpoint.requests.filter((r) => r.method === 'PUT' && r.url.includes('/multipart-uploads/'));
  t.ok(parts.every((r) => /^[0-9a-f]{64}$/.test(String(r.headers['x-amz-content-sha256']))), 'x-amz-content-sha256 on every part');
  t.same(
    parts.map((r) => [r.headers['content-range'], r.headers['x-amz-sha256-tree-hash']]),
    [0, 1, 2].map((i) => [`bytes ${i * MIB}-${Math.min((i + 1) * MIB, body.length) - 1}/*`, treeHashHex(body.subarray(i * MIB, (i + 1) * MIB))]),
  );
  t.match(endpoint.requests.find((r) => r.method === 'POST' && r.url.endsWith('/multipart-uploads')), { url: '/-/vaults/existing/multipart-uploads', headers: { 'x-amz-part-size': String(MIB), 'x-amz-archive-description': 'wire' } });
  t.same(endpoint.archiveIds(), [archiveId]);
  t.same(endpoint.pendingUploadIds(), []);
});

t.test('Glacier.Endpoint: refuses what AWS refuses', async (t) => {
  const endpoint = await startEndpoint(t);
  const client = new GlacierClient({ endpoint: endpoint.url, region: GLACIER_TEST_REGION, credentials: GLACIER_TEST_CREDENTIALS, maxAttempts: 1 });
  t.teardown(() => client.destroy());
  const vaultName = 'existing';
  await t.rejects(client.send(new InitiateMultipartUploadCommand({ accountId: '-', vaultName, partSize: String(3 * MIB) })), { name: 'InvalidParameterValueException' }, 'part size not a power of two');
  await t.rejects(client.send(new InitiateMultipartUploadCommand({ accountId: '-', vaultName: 'nope', partSize: String(MIB) })), { name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 404 } }, 'unknown vault');
  const { uploadId } = await client.send(new InitiateMultipartUploadCommand({ accountId: '-', vaultName, partSize: String(MIB) }));
  const part = patternBytes(MIB, 3);
  const send = (range: string, body: Buffer, checksum?: string) =>
    client.send(new UploadMultipartPartCommand({ accountId: '-', vaultName, uploadId, range, body, checksum }));
  await t.rejects(send(`bytes 100-${MIB + 99}/*`, part), { name: 'InvalidParameterValueException' }, 'range not on a part boundary');
  await t.rejects(send(`bytes 0-${MIB - 2}/*`, part), { name: 'InvalidParameterValueException' }, 'range and body disagree');
  await t.rejects(send(`bytes 0-${MIB - 1}/*`, part, treeHashHex(Buffer.from('other'))), { name: 'InvalidParameterValueException' }, 'wrong tree hash');
  await send(`bytes 0-${MIB - 1}/*`, part);
  const wrongKey = new GlacierClient({ endpoint: endpoint.url, region: GLACIER_TEST_REGION, credentials: { ...GLACIER_TEST_CREDENTIALS, secretAccessKey: 'wrong' }, maxAttempts: 1 });
  t.teardown(() => wrongKey.destroy());
  await t.rejects(wrongKey.send(new ListVaultsCommand({ accountId: '-' })), { name: 'InvalidSignatureException' }, 'bad signature');
  const store = new GlacierArchiveStore(storeConfig(endpoint, { vaultName, createVault: false, credentials: { ...GLACIER_TEST_CREDENTIALS, secretAccessKey: 'wrong' } }));
  t.teardown(() => store.close());
  await t.rejects(store.beginArchive('tape-X', { description: '' }), { name: 'CloudError', code: 'CLOUD_AUTH', transient: false });
});

t.test('Glacier.RangeNotTreeHashAligned: refused, since Glacier would return no checksum', async (t) => {
  const endpoint = await startEndpoint(t);
  const store = new GlacierArchiveStore(storeConfig(endpoint));
  t.teardown(() => store.close());
  const body = patternBytes(4 * MIB, 6);
  const upload = await store.beginArchive('tape-RA0001', { description: '' });
  for (let i = 0; i < 4; i++) {
    await upload.uploadPart(i, body.subarray(i * MIB, (i + 1) * MIB));
  }
  const { archiveId } = await upload.complete();
  await t.rejects(store.requestRetrieval(archiveId, { tier: 'Expedited', range: { offsetBytes: MIB, lengthBytes: 2 * MIB } }), { code: 'CLOUD_INVALID_REQUEST' });
  const { jobId } = await store.requestRetrieval(archiveId, { tier: 'Expedited', range: { offsetBytes: 0, lengthBytes: 2 * MIB } });
  t.equal(await waitForRetrieval(store, jobId), 'Succeeded');
  t.equal((await store.readRetrieved(jobId, { offsetBytes: MIB + 1, lengthBytes: 3 })).toString('hex'), body.subarray(MIB + 1, MIB + 4).toString('hex'));
  const outputs = endpoint.requests.filter((r) => r.url.endsWith('/output'));
  t.same(outputs.map((r) => r.headers.range), [`bytes=${MIB}-${2 * MIB - 1}`], 'the read is widened to one MiB-aligned node');
});

t.test('Glacier.Outage: an unreachable endpoint is CLOUD_UNAVAILABLE (transient)', async (t) => {
  const endpoint = await GlacierEndpoint.start();
  const url = endpoint.url;
  await endpoint.close();
  const store = new GlacierArchiveStore({ ...storeConfig(endpoint), endpoint: url, retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 } });
  t.teardown(() => store.close());
  await t.rejects(store.beginArchive('tape-OU0001', { description: '' }), { name: 'CloudError', code: 'CLOUD_UNAVAILABLE', transient: true });
  await t.rejects(store.describeRetrieval('job'), { name: 'CloudError', code: 'CLOUD_UNAVAILABLE', transient: true });
});
