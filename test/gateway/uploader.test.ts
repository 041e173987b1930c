// The uploader against real object stores (a local directory store and s3rver, the latter behind
// the fault-injecting FlakyObjectStore): the object store converges to the volume's content, an
// unchanged chunk is not uploaded twice, uploads resume from the queue after a reopen, an outage
// delays uploads without failing writes, cached volumes evict clean chunks and read them back from
// the object store, and the rate limiter's arithmetic.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { Logger } from '../../iscsi/log.js';
import { LocalObjectStore } from '../../src/cloud/local-object-store.js';
import type { ObjectStore } from '../../src/cloud/object-store.js';
import { S3ObjectStore } from '../../src/cloud/s3-object-store.js';
import { RateLimiter, effectiveRateLimit } from '../../src/gateway/rate-limiter.js';
import { Uploader } from '../../src/gateway/uploader.js';
import { VolumeStatusTracker, transition } from '../../src/gateway/volume-status.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { SegmentBlockStore } from '../../src/store/segment-block-store.js';

const DEFAULT_CHUNK_SIZE_BYTES = 16 * 1024;
import { OBJECT_CHUNK_SIZE_BYTES, StorageEngine } from '../../src/store/storage-engine.js';
import { putVolume, type VolumeRecord } from '../../src/store/volume-catalog.js';
import { FlakyObjectStore } from '../cloud/flaky-object-store.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { S3RVER_CREDENTIALS, S3rverEndpoint } from '../helpers/s3rver.js';
import { volumeFromObjects } from '../helpers/volume-from-objects.js';
import { pattern } from '../helpers/pattern.js';

const BLOCK = 512;
const MiB = 1024 * 1024;
const BLOCKS_PER_OBJECT_CHUNK = OBJECT_CHUNK_SIZE_BYTES / BLOCK;
const VOLUME_BYTES = 16 * MiB;

const silentLog: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silentLog } as unknown as Logger;

function volumeRecord(type: 'stored' | 'cached'): VolumeRecord {
  return {
    id: 7,
    name: 'vol7',
    type,
    sizeBytes: VOLUME_BYTES,
    blockSize: BLOCK,
    chunkSizeBytes: DEFAULT_CHUNK_SIZE_BYTES,
    createdAt: '2026-11-26T00:00:00.000Z',
    serial: 'vol-00000007',
    naaId: '5a2c0de000000007',
  };
}

interface Rig {
  db: Database;
  engine: StorageEngine;
  store: SegmentBlockStore;
  uploader: Uploader;
  close(): Promise<void>;
}

async function openRig(
  dataDir: string,
  objectStore: ObjectStore,
  opts: { type?: 'stored' | 'cached'; cacheSizeBytes?: number; uploadBufferSizeBytes?: number; start?: boolean; settleMs?: number; log?: Logger } = {},
): Promise<Rig> {
  const db = await openDatabase(dataDir);
  const engine = await StorageEngine.open(db, {
    objectStore,
    uploadBufferSizeBytes: opts.uploadBufferSizeBytes ?? 64 * MiB,
    cacheSizeBytes: opts.cacheSizeBytes ?? 64 * MiB,
    bufferHoldMs: 100,
  });
  const record = volumeRecord(opts.type ?? 'stored');
  await putVolume(db, record);
  const store = await SegmentBlockStore.open({ db, volumesDir: join(dataDir, 'volumes'), engine }, record);
  const uploader = new Uploader({
    engine,
    log: opts.log ?? silentLog,
    retry: { baseDelayMs: 10, maxDelayMs: 50 },
    headIntervalMs: 100,
    ...(opts.settleMs !== undefined ? { settleMs: opts.settleMs } : {}),
  });
  if (opts.start !== false) uploader.start();
  return {
    db,
    engine,
    store,
    uploader,
    async close() {
      await uploader.stop();
      await engine.cache.settled();
      await db.close();
    },
  };
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-uploader-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function expectConverged(t: Test, rig: Rig, objectStore: ObjectStore, what: string): Promise<void> {
  await rig.uploader.idle();
  const local = await rig.store.read(0, VOLUME_BYTES / BLOCK);
  const remote = await volumeFromObjects(objectStore, 7, 0, VOLUME_BYTES);
  t.ok(local.equals(remote), `${what}: object store matches the volume`);
}

t.test('Uploader.ConvergesLocal', async (t) => {
  const dir = await tempDir(t);
  const objects = await LocalObjectStore.open(join(dir, 'objects'));
  const rig = await openRig(join(dir, 'gw'), objects);
  t.teardown(() => rig.close());
  await rig.store.write(0, pattern(3 * MiB, 1)); // chunks 0-2
  await rig.store.write(10 * BLOCKS_PER_OBJECT_CHUNK + 3, pattern(4096, 2)); // part of chunk 10
  await expectConverged(t, rig, objects, 'first pass');
  t.equal(rig.uploader.counters.uploadedChunks, 4);
  t.equal(rig.engine.queue.dirtyChunkCount, 0);

  // Rewriting identical data dirties the chunk but uploads nothing new (content-addressed).
  await rig.store.write(0, pattern(MiB, 1).subarray(0, MiB));
  await expectConverged(t, rig, objects, 'identical rewrite');
  t.equal(rig.uploader.counters.uploadedChunks, 4, 'no new chunk object');

  // UNMAP of a whole chunk: it leaves the manifest (sparse).
  await rig.store.unmap(BLOCKS_PER_OBJECT_CHUNK, BLOCKS_PER_OBJECT_CHUNK);
  await expectConverged(t, rig, objects, 'after UNMAP');
});

t.test('Uploader.ResumesAfterReopen', async (t) => {
  const dir = await tempDir(t);
  const objects = await LocalObjectStore.open(join(dir, 'objects'));
  let rig = await openRig(join(dir, 'gw'), objects, { start: false });
  await rig.store.write(0, pattern(2 * MiB, 3));
  t.equal(rig.engine.queue.dirtyChunkCount, 2);
  await rig.close(); // "crash" before any upload: only the queue knows
  rig = await openRig(join(dir, 'gw'), objects);
  t.teardown(() => rig.close());
  t.equal(rig.engine.queue.dirtyChunkCount, 2, 'queue reloaded');
  await expectConverged(t, rig, objects, 'after reopen');
});

t.test('Uploader.OutageThenDrain', async (t) => {
  const endpoint = await S3rverEndpoint.start();
  t.teardown(() => endpoint.close());
  const s3 = new S3ObjectStore({
    bucket: endpoint.bucket,
    endpoint: endpoint.url,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    retry: { maxAttempts: 1, baseDelayMs: 10, maxDelayMs: 10 },
  });
  t.teardown(() => s3.close());
  const flaky = new FlakyObjectStore(s3);
  const dir = await tempDir(t);
  // Uploads start at once (no settle time), so they meet the outage.
  const rig = await openRig(dir, flaky, { settleMs: 0 });
  t.teardown(() => rig.close());
  flaky.startOutage();
  for (let i = 0; i < 8; i++) await rig.store.write(i * BLOCKS_PER_OBJECT_CHUNK, pattern(256 * 1024, 10 + i));
  t.equal(rig.engine.queue.dirtyChunkCount, 8, 'writes kept in the buffer during the outage');
  flaky.endOutage();
  await expectConverged(t, rig, s3, 'after the outage');
  t.ok(flaky.failedCalls > 0, `${flaky.failedCalls} calls failed during the outage`);
});

t.test('Uploader.FailingRecovered: 500s from a real endpoint log once when failing and once when recovered', async (t) => {
  const endpoint = await S3rverEndpoint.start();
  t.teardown(() => endpoint.close());
  const proxy = await FaultProxy.start(endpoint.url);
  t.teardown(() => proxy.close());
  const s3 = new S3ObjectStore({
    bucket: endpoint.bucket,
    endpoint: proxy.url,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    retry: { maxAttempts: 1, baseDelayMs: 10, maxDelayMs: 10 },
  });
  t.teardown(() => s3.close());
  const lines: Array<{ level: string; msg: string }> = [];
  const log = { debug() {}, info: (msg: string) => lines.push({ level: 'info', msg }), warn: (msg: string) => lines.push({ level: 'warn', msg }), error: (msg: string) => lines.push({ level: 'error', msg }) } as Logger;
  const dir = await tempDir(t);
  const rig = await openRig(dir, s3, { settleMs: 0, log });
  t.teardown(() => rig.close());
  proxy.fail({ status: 500, code: 'InternalError' });
  for (let i = 0; i < 4; i++) await rig.store.write(i * BLOCKS_PER_OBJECT_CHUNK, pattern(256 * 1024, 30 + i));
  // Wait for the condition: several failed attempts of several chunks.
  await new Promise<void>((resolve) => {
    const check = (): void => void (proxy.failedCount >= 8 ? resolve() : setImmediate(check));
    check();
  });
  t.equal(rig.uploader.outage.failing, true);
  proxy.heal();
  await expectConverged(t, rig, s3, 'after the 500s');
  t.equal(lines.filter((l) => l.level === 'warn' && /cloud upload failing/.test(l.msg)).length, 1, `one warning for ${proxy.failedCount} failed requests`);
  t.equal(lines.filter((l) => l.level === 'info' && /cloud upload recovered/.test(l.msg)).length, 1, 'one line when recovered');
  t.equal(rig.uploader.outage.failing, false);
  t.equal(rig.uploader.outage.counters.outages, 1);
  t.ok(rig.uploader.outage.counters.failedAttempts >= 8);
});

t.test('Uploader.SettleCoalescesWrites', async (t) => {
  const dir = await tempDir(t);
  const objects = await LocalObjectStore.open(join(dir, 'objects'));
  const rig = await openRig(join(dir, 'gw'), objects, { settleMs: 400 });
  t.teardown(() => rig.close());
  // Four writes fill one 1 MiB chunk over about 150 ms, as a sequential writer does.
  for (let i = 0; i < 4; i++) {
    await rig.store.write((i * 256 * 1024) / BLOCK, pattern(256 * 1024, 70 + i));
    await new Promise((r) => setTimeout(r, 50));
  }
  await rig.uploader.idle();
  t.equal(rig.uploader.counters.uploadedChunks, 1, 'one upload for the four writes');
  await expectConverged(t, rig, objects, 'after the settle time');
});

t.test('CachedVolume.EvictAndReadBack', async (t) => {
  const dir = await tempDir(t);
  const objects = await LocalObjectStore.open(join(dir, 'objects'));
  const rig = await openRig(join(dir, 'gw'), objects, { type: 'cached', cacheSizeBytes: 2 * MiB });
  t.teardown(() => rig.close());
  const data = pattern(VOLUME_BYTES, 42);
  for (let offset = 0; offset < VOLUME_BYTES; offset += MiB) {
    await rig.store.write(offset / BLOCK, data.subarray(offset, offset + MiB));
  }
  await rig.uploader.idle();
  await rig.engine.cache.settled();
  t.ok(rig.engine.cache.residentBytes <= 2 * MiB, `cache holds ${rig.engine.cache.residentBytes} bytes`);
  t.ok(rig.engine.cache.evictions >= 14, `${rig.engine.cache.evictions} evictions`);
  t.same(
    await rig.store.mapStatus(0, VOLUME_BYTES / BLOCK),
    [{ lba: 0, blockCount: VOLUME_BYTES / BLOCK, mapped: true }],
    'evicted chunks still report mapped (GET LBA STATUS)',
  );
  const back = await rig.store.read(0, VOLUME_BYTES / BLOCK);
  t.ok(back.equals(data), 'read back byte-identical through the object store');
  t.ok(rig.engine.cache.misses >= 14, `${rig.engine.cache.misses} chunk fetches`);
  // A partial rewrite of an evicted chunk keeps the rest of the chunk.
  await rig.engine.cache.settled();
  await rig.store.write(5, Buffer.alloc(BLOCK, 0xee));
  const expected = Buffer.from(data.subarray(0, MiB));
  expected.fill(0xee, 5 * BLOCK, 6 * BLOCK);
  t.ok((await rig.store.read(0, BLOCKS_PER_OBJECT_CHUNK)).equals(expected), 'partial rewrite of an evicted chunk');
  await expectConverged(t, rig, objects, 'cached volume');
});

t.test('VolumeStatus.Transitions', async (t) => {
  t.equal(transition('AVAILABLE', 'bufferFull'), 'PASS THROUGH');
  t.equal(transition('PASS THROUGH', 'bufferHasRoom'), 'BOOTSTRAPPING');
  t.equal(transition('BOOTSTRAPPING', 'backlogDrained'), 'AVAILABLE');
  t.equal(transition('AVAILABLE', 'bufferHasRoom'), 'AVAILABLE');
  const dir = await tempDir(t);
  const objects = await LocalObjectStore.open(join(dir, 'objects'));
  const rig = await openRig(join(dir, 'gw'), objects, { uploadBufferSizeBytes: 2 * MiB, start: false });
  t.teardown(() => rig.close());
  const tracker = new VolumeStatusTracker(rig.engine);
  t.teardown(() => tracker.close());
  await rig.store.write(0, pattern(2 * MiB, 5));
  t.equal(tracker.status, 'PASS THROUGH');
  t.equal(tracker.counters().uploadBufferUsedBytes, 2 * MiB);
  rig.uploader.start();
  await rig.uploader.idle();
  t.equal(tracker.status, 'AVAILABLE');
});

t.test('RateLimiter.TokenBucket', async (t) => {
  let nowMs = 0;
  let rate: number | undefined = 80_000; // bits/s = 10,000 bytes/s
  const limiter = new RateLimiter({ rateBitsPerSec: () => rate, burstMs: 1000, now: () => nowMs });
  t.equal(limiter.reserve(80_000), 1000, 'empty bucket: 1 s for 10,000 bytes');
  nowMs = 1000;
  t.equal(limiter.reserve(0), 0, 'debt repaid after 1 s');
  nowMs = 5000;
  t.equal(limiter.reserve(80_000), 0, 'a full burst is available after idling');
  t.equal(limiter.reserve(40_000), 500);
  rate = undefined;
  t.equal(limiter.reserve(1e9), 0, 'unlimited');
});

t.test('RateLimiter.Schedule', async (t) => {
  const source = {
    bandwidthRateLimit: () => ({ averageUploadRateLimitInBitsPerSec: 1_000_000 }),
    bandwidthRateLimitSchedule: () => [
      {
        startHourOfDay: 9,
        startMinuteOfHour: 0,
        endHourOfDay: 17,
        endMinuteOfHour: 59,
        daysOfWeek: [1, 2, 3, 4, 5],
        averageUploadRateLimitInBitsPerSec: 60_000,
        averageDownloadRateLimitInBitsPerSec: 1_000,
      },
    ],
  };
  const mondayNoon = new Date(2026, 10, 23, 12, 0);
  const sundayNoon = new Date(2026, 10, 22, 12, 0);
  t.equal(effectiveRateLimit(source, 'upload', mondayNoon), 60_000);
  t.equal(effectiveRateLimit(source, 'download', mondayNoon), 102_400, 'raised to the AWS minimum');
  t.equal(effectiveRateLimit(source, 'upload', sundayNoon), undefined, 'outside the schedule: unlimited');
  t.equal(effectiveRateLimit({ ...source, bandwidthRateLimitSchedule: () => [] }, 'upload', sundayNoon), 1_000_000);
});
