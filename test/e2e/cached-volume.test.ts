// A cached volume end to end: the real CLI with s3rver as its object store and a 4 MiB cache.
// qemu-img writes 32 MiB of random bytes through iSCSI; the object store converges to them (head
// manifest + chunk objects); the cache is evicted down to its size, so qemu-img reading the same
// 32 MiB back must get them from s3rver (counted) — byte-identical.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import t from 'tap';
import { S3ObjectStore } from '../../src/cloud/s3-object-store.js';
import { startGateway } from '../helpers/gateway-process.js';
import { runTool } from '../helpers/libiscsi.js';
import { S3RVER_CREDENTIALS, S3rverEndpoint } from '../helpers/s3rver.js';
import { volumeFromObjects } from '../helpers/volume-from-objects.js';

/** A copy: the SDK marks the credentials object it was given (an extra `$source` key). */
const S3_KEYS = { accessKeyId: S3RVER_CREDENTIALS.accessKeyId, secretAccessKey: S3RVER_CREDENTIALS.secretAccessKey };

const VOLUME = 'cached';
const MiB = 1024 * 1024;
const DATA_BYTES = 32 * MiB;
const CACHE_BYTES = 4 * MiB;
/** The first volume of a fresh data directory. */
const VOLUME_ID = 1;
const CONVERGE_TIMEOUT_MS = 120_000;

const dir = await mkdtemp(join(tmpdir(), 'shelfgate-cached-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const endpoint = await S3rverEndpoint.start();
t.teardown(() => endpoint.close());
const s3 = new S3ObjectStore({
  bucket: endpoint.bucket,
  endpoint: endpoint.url,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: S3RVER_CREDENTIALS,
});
t.teardown(() => s3.close());

const configFile = join(dir, 'shelfgate.json');
await writeFile(
  configFile,
  JSON.stringify({
    objectStore: {
      type: 's3',
      bucket: endpoint.bucket,
      endpoint: endpoint.url,
      region: 'us-east-1',
      forcePathStyle: true,
      ...S3_KEYS,
    },
    cache: { sizeBytes: CACHE_BYTES },
    volumes: [{ name: VOLUME, type: 'cached', size: '1GiB' }],
  }),
);
const gateway = await startGateway({ configFile });
t.teardown(() => gateway.dispose());

const source = join(dir, 'source.raw');
const copy = join(dir, 'copy.raw');

t.test('CachedVolume.WriteThroughIscsi', async (t) => {
  t.equal((await runTool('sh', ['-c', `head -c ${DATA_BYTES} /dev/urandom > '${source}'`])).exitCode, 0);
  const result = await runTool('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', source, gateway.url(VOLUME)], {
    timeoutMs: 300_000,
  });
  t.equal(result.exitCode, 0, 'qemu-img convert to the cached volume', { stderr: result.stderr });
});

t.test('CachedVolume.ObjectStoreConverges', async (t) => {
  const expected = await readFile(source);
  const deadline = Date.now() + CONVERGE_TIMEOUT_MS;
  let matched = false;
  while (!matched && Date.now() < deadline) {
    matched = (await volumeFromObjects(s3, VOLUME_ID, 0, DATA_BYTES).catch(() => Buffer.alloc(0))).equals(expected);
    if (!matched) await delay(500);
  }
  t.ok(matched, 'head.json + chunk objects hold the 32 MiB written');
});

t.test('CachedVolume.ReadBackAfterEviction', async (t) => {
  // Eviction runs right after the uploads are confirmed; give the last pass a moment.
  await delay(1_000);
  endpoint.requests.length = 0;
  const result = await runTool(
    'qemu-img',
    ['dd', '-f', 'raw', '-O', 'raw', 'bs=1M', `count=${DATA_BYTES / MiB}`, `if=${gateway.url(VOLUME)}`, `of=${copy}`],
    { timeoutMs: 300_000 },
  );
  t.equal(result.exitCode, 0, 'qemu-img dd from the cached volume', { stderr: result.stderr });
  const chunkGets = endpoint.requests.filter((r) => r.method === 'GET' && r.url.includes('/chunks/')).length;
  t.ok(chunkGets >= (DATA_BYTES - CACHE_BYTES) / MiB, `${chunkGets} chunk objects fetched from s3rver`);
  t.ok((await readFile(copy)).equals(await readFile(source)), 'read back byte-identical');
});

t.test('CachedVolume.ConvertUsesBlockStatus', async (t) => {
  // qemu-img convert asks GET LBA STATUS which ranges are allocated; evicted chunks must count.
  const gateway2Copy = join(dir, 'convert.raw');
  const restarted = await gateway.stop();
  t.equal(restarted, 0);
  await gateway.restart(); // cache state (resident or evicted) comes back from Level
  const result = await runTool('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', gateway.url(VOLUME), gateway2Copy], {
    timeoutMs: 300_000,
  });
  t.equal(result.exitCode, 0, 'qemu-img convert from the cached volume', { stderr: result.stderr });
  const head = await runTool('cmp', ['-n', String(DATA_BYTES), source, gateway2Copy]);
  t.equal(head.exitCode, 0, 'first 32 MiB byte-identical', { stdout: head.stdout });
});

t.test('CachedVolume.CleanExit', async (t) => {
  t.equal(await gateway.stop(), 0);
});
