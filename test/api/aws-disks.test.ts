// The local-disk operations (ListLocalDisks, AddCache, AddUploadBuffer, DescribeCache,
// DescribeUploadBuffer) driven by the real @aws-sdk/client-storage-gateway against the gateway as
// main.ts wires it (storage engine included), in process on 127.0.0.1 ephemeral ports. Added disks
// must grow the engine's cache / upload buffer at once and again after a restart on the same data
// directory; malformed, unknown, already allocated and over-the-limit disk ids are refused with
// AWS's error codes, naming the id, and change nothing.
import {
  AddCacheCommand,
  AddUploadBufferCommand,
  DescribeCacheCommand,
  DescribeUploadBufferCommand,
  InvalidGatewayRequestException,
  ListGatewaysCommand,
  ListLocalDisksCommand,
  StorageGatewayClient,
} from '@aws-sdk/client-storage-gateway';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { resolveConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { GiB } from '../../src/size.js';
import { TEST_ACCESS_KEY, TEST_ACCOUNT, TEST_REGION } from '../helpers/admin-gateway.js';

const CONFIGURED_CACHE_BYTES = 1 * GiB;
const CONFIGURED_UPLOAD_BUFFER_BYTES = 2 * GiB;

async function start(dataDir: string): Promise<{ gateway: RunningGateway; sgw: StorageGatewayClient; GatewayARN: string }> {
  const config = resolveConfig(
    {
      gateway: { region: TEST_REGION, accountId: TEST_ACCOUNT },
      api: { accessKeys: [{ accessKeyId: TEST_ACCESS_KEY.accessKeyId, secretAccessKey: TEST_ACCESS_KEY.secretAccessKey }] },
      cache: { sizeBytes: CONFIGURED_CACHE_BYTES },
      uploadBuffer: { sizeBytes: CONFIGURED_UPLOAD_BUFFER_BYTES },
    },
    { dataDir, iscsiListen: '127.0.0.1:0', apiListen: '127.0.0.1:0', volumes: ['stored1:1GiB'] },
  );
  const gateway = await startGateway(config, createLogger({ level: 'silent', format: 'human' }));
  const sgw = new StorageGatewayClient({
    endpoint: `http://127.0.0.1:${gateway.api.port}`,
    region: TEST_REGION,
    // A copy: the SDK marks the credentials object it is given.
    credentials: { ...TEST_ACCESS_KEY },
    maxAttempts: 1,
  });
  const { Gateways } = await sgw.send(new ListGatewaysCommand({}));
  return { gateway, sgw, GatewayARN: Gateways?.[0]?.GatewayARN ?? '' };
}

async function withDataDir(t: Test): Promise<string> {
  const dataDir = await mkdtemp(join(tmpdir(), 'shelfgate-disks-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  return dataDir;
}

async function rejectsWithCode(t: Test, promise: Promise<unknown>, errorCode: string, message: RegExp): Promise<void> {
  try {
    await promise;
    t.fail(`expected InvalidGatewayRequestException ${errorCode}`);
  } catch (err) {
    t.type(err, InvalidGatewayRequestException);
    t.equal((err as InvalidGatewayRequestException).error?.errorCode, errorCode);
    t.equal((err as InvalidGatewayRequestException).$metadata.httpStatusCode, 400);
    t.match((err as Error).message, message);
  }
}

t.test('AddCache.GrowsAndPersists', async (t) => {
  const dataDir = await withDataDir(t);
  let { gateway, sgw, GatewayARN } = await start(dataDir);
  t.teardown(() => gateway.close());

  t.match(await sgw.send(new DescribeCacheCommand({ GatewayARN })), {
    GatewayARN,
    DiskIds: ['cache-0'],
    CacheAllocatedInBytes: CONFIGURED_CACHE_BYTES,
    CacheUsedPercentage: 0,
    CacheDirtyPercentage: 0,
  });
  await sgw.send(new AddCacheCommand({ GatewayARN, DiskIds: ['local:3GiB', 'local:4GiB'] }));
  const grown = await sgw.send(new DescribeCacheCommand({ GatewayARN }));
  t.same(grown.DiskIds, ['cache-0', 'cache-1', 'cache-2']);
  t.equal(grown.CacheAllocatedInBytes, CONFIGURED_CACHE_BYTES + 7 * GiB);

  await gateway.close();
  ({ gateway, sgw, GatewayARN } = await start(dataDir));
  const restarted = await sgw.send(new DescribeCacheCommand({ GatewayARN }));
  t.same(restarted.DiskIds, ['cache-0', 'cache-1', 'cache-2'], 'added disks survive a restart');
  t.equal(restarted.CacheAllocatedInBytes, CONFIGURED_CACHE_BYTES + 7 * GiB);
});

t.test('AddCache.BadDiskIds', async (t) => {
  const { gateway, sgw, GatewayARN } = await start(await withDataDir(t));
  t.teardown(() => gateway.close());

  await rejectsWithCode(t, sgw.send(new AddCacheCommand({ GatewayARN, DiskIds: ['pci-0000:03:00.0-scsi-0:0:1:0'] })), 'DiskDoesNotExist', /pci-0000:03:00\.0-scsi-0:0:1:0/);
  await rejectsWithCode(t, sgw.send(new AddCacheCommand({ GatewayARN, DiskIds: ['local:lots'] })), 'InvalidParameters', /local:lots/);
  await rejectsWithCode(t, sgw.send(new AddCacheCommand({ GatewayARN, DiskIds: ['local:1500MiB'] })), 'InvalidParameters', /local:1500MiB.*GiB/);
  await rejectsWithCode(t, sgw.send(new AddCacheCommand({ GatewayARN, DiskIds: ['cache-0'] })), 'DiskAlreadyAllocated', /cache-0/);
  // 64 TiB total at most: the configured 1 GiB plus 64 TiB is one GiB too many.
  await rejectsWithCode(t, sgw.send(new AddCacheCommand({ GatewayARN, DiskIds: ['local:64TiB'] })), 'InvalidParameters', /local:64TiB.*maximum/);
  // All or nothing: a good id beside a bad one adds nothing.
  await rejectsWithCode(t, sgw.send(new AddCacheCommand({ GatewayARN, DiskIds: ['local:1GiB', 'sdb'] })), 'DiskDoesNotExist', /sdb/);
  t.match(await sgw.send(new DescribeCacheCommand({ GatewayARN })), { DiskIds: ['cache-0'], CacheAllocatedInBytes: CONFIGURED_CACHE_BYTES });
  await rejectsWithCode(t, sgw.send(new AddCacheCommand({ GatewayARN: GatewayARN.replace(/sgw-\w+$/, 'sgw-00000000'), DiskIds: ['local:1GiB'] })), 'GatewayNotFound', /GatewayARN/);
});

t.test('AddUploadBuffer.GrowsPersistsAndRefuses', async (t) => {
  const dataDir = await withDataDir(t);
  let { gateway, sgw, GatewayARN } = await start(dataDir);
  t.teardown(() => gateway.close());

  t.match(await sgw.send(new DescribeUploadBufferCommand({ GatewayARN })), {
    GatewayARN,
    DiskIds: ['upload-buffer-0'],
    UploadBufferUsedInBytes: 0,
    UploadBufferAllocatedInBytes: CONFIGURED_UPLOAD_BUFFER_BYTES,
  });
  await sgw.send(new AddUploadBufferCommand({ GatewayARN, DiskIds: ['local:150GiB'] }));
  t.match(await sgw.send(new DescribeUploadBufferCommand({ GatewayARN })), {
    DiskIds: ['upload-buffer-0', 'upload-buffer-1'],
    UploadBufferAllocatedInBytes: CONFIGURED_UPLOAD_BUFFER_BYTES + 150 * GiB,
  });
  // 2 TiB total at most.
  await rejectsWithCode(t, sgw.send(new AddUploadBufferCommand({ GatewayARN, DiskIds: ['local:2TiB'] })), 'InvalidParameters', /local:2TiB.*maximum/);
  await rejectsWithCode(t, sgw.send(new AddUploadBufferCommand({ GatewayARN, DiskIds: ['/dev/sdc'] })), 'DiskDoesNotExist', /\/dev\/sdc/);
  await rejectsWithCode(t, sgw.send(new AddUploadBufferCommand({ GatewayARN, DiskIds: ['upload-buffer-1'] })), 'DiskAlreadyAllocated', /upload-buffer-1/);

  await gateway.close();
  ({ gateway, sgw, GatewayARN } = await start(dataDir));
  t.match(await sgw.send(new DescribeUploadBufferCommand({ GatewayARN })), {
    DiskIds: ['upload-buffer-0', 'upload-buffer-1'],
    UploadBufferAllocatedInBytes: CONFIGURED_UPLOAD_BUFFER_BYTES + 150 * GiB,
  });
});

t.test('ListLocalDisks.ShowsAllocations', async (t) => {
  const { gateway, sgw, GatewayARN } = await start(await withDataDir(t));
  t.teardown(() => gateway.close());
  await sgw.send(new AddCacheCommand({ GatewayARN, DiskIds: ['local:5GiB'] }));
  await sgw.send(new AddUploadBufferCommand({ GatewayARN, DiskIds: ['local:6GiB'] }));

  const { GatewayARN: listedArn, Disks } = await sgw.send(new ListLocalDisksCommand({ GatewayARN }));
  t.equal(listedArn, GatewayARN);
  t.match(Disks, [
    { DiskId: 'cache-0', DiskStatus: 'present', DiskSizeInBytes: CONFIGURED_CACHE_BYTES, DiskAllocationType: 'CACHE STORAGE' },
    { DiskId: 'cache-1', DiskStatus: 'present', DiskSizeInBytes: 5 * GiB, DiskAllocationType: 'CACHE STORAGE' },
    { DiskId: 'upload-buffer-0', DiskStatus: 'present', DiskSizeInBytes: CONFIGURED_UPLOAD_BUFFER_BYTES, DiskAllocationType: 'UPLOAD BUFFER' },
    { DiskId: 'upload-buffer-1', DiskStatus: 'present', DiskSizeInBytes: 6 * GiB, DiskAllocationType: 'UPLOAD BUFFER' },
  ]);
  t.equal(Disks?.length, 5);
  const [storedDisk] = Disks?.slice(4) ?? [];
  t.match(storedDisk?.DiskId, /^volume-vol-/);
  t.equal(storedDisk?.DiskSizeInBytes, GiB);
  t.equal(storedDisk?.DiskAllocationType, 'STORED iSCSI VOLUME');
  t.equal(storedDisk?.DiskAllocationResource, `${GatewayARN}/target/iqn.2026-11.dev.shelfgate:shelfgate-stored1`);
});
