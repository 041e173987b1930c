// Upload drain rate against Ceph RGW (issue 10): 1 GiB written to a stored volume (straight at
// SegmentBlockStore, no iSCSI) with the uploader stopped, then the time the uploader takes to
// drain it to an RGW bucket (chunk objects and head.json, until idle), against `aws s3 cp` of
// the same 1 GiB, from a file, to the same RGW. Goal: drain / aws ≥ 1.0.
//   npm run build && node dist/bench/upload-drain.js [MiB=1024] [--aws /root/.pyenv/shims/aws]
// Needs Ceph (apt-get install --no-install-recommends ceph-mon ceph-osd radosgw ceph-common) and
// the AWS CLI. The cluster is the tests' (test/helpers/ceph-rgw.ts), memstore: data in RAM.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { silentLogger } from '../iscsi/log.js';
import { S3ObjectStore } from '../src/cloud/s3-object-store.js';
import { Uploader } from '../src/gateway/uploader.js';
import { openDatabase } from '../src/store/database.js';
import { SegmentBlockStore } from '../src/store/segment-block-store.js';
import { StorageEngine } from '../src/store/storage-engine.js';
import { putVolume } from '../src/store/volume-catalog.js';
import { startCephRgw } from '../test/helpers/ceph-rgw.js';
import { pattern } from '../test/helpers/pattern.js';

const MiB = 1024 * 1024;
const args = process.argv.slice(2);
const awsIndex = args.indexOf('--aws');
const aws = awsIndex >= 0 ? args.splice(awsIndex, 2)[1]! : '/root/.pyenv/shims/aws';
const totalMiB = Number(args[0] ?? 1024);
const totalBytes = totalMiB * MiB;
const BLOCK = 512;

const teardowns: Array<() => Promise<void> | void> = [];
const t = { teardown: (fn: () => Promise<void> | void) => void teardowns.push(fn) };
try {
  const rgw = await startCephRgw(t, { memstoreBytes: 3 * totalBytes + 512 * MiB });
  if ('skip' in rgw) throw new Error(rgw.skip);
  console.log(`Ceph RGW started in ${rgw.startSeconds.toFixed(1)} s at ${rgw.endpoint}`);
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-drain-'));
  teardowns.push(() => rm(dir, { recursive: true, force: true }));

  // The bytes: an incompressible pattern, the same for both sides.
  const data = pattern(totalBytes, 42);

  // 1. shelfgate: write with the uploader stopped, then time the drain.
  const objectStore = new S3ObjectStore({
    bucket: await rgw.bucket(),
    endpoint: rgw.endpoint,
    region: rgw.region,
    forcePathStyle: true,
    credentials: rgw.credentials,
  });
  teardowns.push(() => objectStore.close());
  const db = await openDatabase(join(dir, 'gw'));
  teardowns.push(() => db.close());
  const engine = await StorageEngine.open(db, { objectStore, uploadBufferSizeBytes: totalBytes + 256 * MiB, cacheSizeBytes: 256 * MiB, bufferHoldMs: 100 });
  const record = {
    id: 1,
    name: 'drain',
    type: 'stored' as const,
    sizeBytes: totalBytes,
    blockSize: BLOCK,
    chunkSizeBytes: 16 * 1024,
    createdAt: new Date().toISOString(),
    serial: 'vol-DRAIN001',
    naaId: '5a2c0de0000000dd',
  };
  await putVolume(db, record);
  const store = await SegmentBlockStore.open({ db, volumesDir: join(dir, 'gw', 'volumes'), engine }, record);
  const WRITE_BYTES = 8 * MiB;
  for (let offset = 0; offset < totalBytes; offset += WRITE_BYTES) {
    await store.write(offset / BLOCK, data.subarray(offset, offset + WRITE_BYTES));
  }
  const uploader = new Uploader({ engine, log: silentLogger, settleMs: 0 });
  teardowns.push(() => uploader.stop());
  const drainStart = performance.now();
  uploader.start();
  await uploader.idle();
  const drainSeconds = (performance.now() - drainStart) / 1000;
  if (uploader.counters.uploadedBytes !== totalBytes) {
    throw new Error(`the uploader uploaded ${uploader.counters.uploadedBytes} bytes, expected ${totalBytes}`);
  }

  // 2. aws s3 cp of the same bytes from a file (its default multipart settings: 8 MiB parts, 10 threads).
  const file = join(dir, 'data.bin');
  await writeFile(file, data);
  const awsBucket = await rgw.bucket();
  const awsStart = performance.now();
  await promisify(execFile)(aws, ['--endpoint-url', rgw.endpoint, 's3', 'cp', '--only-show-errors', file, `s3://${awsBucket}/data.bin`], {
    env: {
      ...process.env,
      AWS_ACCESS_KEY_ID: rgw.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: rgw.credentials.secretAccessKey,
      AWS_DEFAULT_REGION: rgw.region,
    },
  });
  const awsSeconds = (performance.now() - awsStart) / 1000;

  const drainRate = totalMiB / drainSeconds;
  const awsRate = totalMiB / awsSeconds;
  console.log(`shelfgate upload drain: ${totalMiB} MiB in ${drainSeconds.toFixed(1)} s = ${drainRate.toFixed(1)} MiB/s (${uploader.counters.uploadedChunks} chunk objects)`);
  console.log(`aws s3 cp:              ${totalMiB} MiB in ${awsSeconds.toFixed(1)} s = ${awsRate.toFixed(1)} MiB/s`);
  console.log(`ratio drain / aws s3 cp: ${(drainRate / awsRate).toFixed(2)} (goal >= 1.0)`);
} finally {
  for (const fn of teardowns.reverse()) await fn();
}
