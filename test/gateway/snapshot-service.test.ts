// Snapshots in process, against a real local object store wrapped by a counting decorator: a
// snapshot taken during writes holds exactly what was acknowledged before it, and a volume
// restored from it reads that content (fetched lazily); the second snapshot of a mostly unchanged
// volume puts only the changed chunks; a snapshot of a cached volume refers to evicted chunks
// without fetching them; delete removes the manifest only; a pending snapshot becomes error after
// a restart; schedules (persisted, AWS recurrences, stored-volume default) fire on an injected clock.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { Logger } from '../../iscsi/log.js';
import { LocalObjectStore } from '../../src/cloud/local-object-store.js';
import type { ListOptions, ObjectHead, ObjectListEntry, ObjectRange, ObjectStore, PutOptions, PutResult } from '../../src/cloud/object-store.js';
import { SnapshotScheduler, slotBetween } from '../../src/gateway/snapshot-scheduler.js';
import { SnapshotService, isSnapshotId, snapshotManifestKey } from '../../src/gateway/snapshot-service.js';
import { Uploader } from '../../src/gateway/uploader.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { SegmentBlockStore } from '../../src/store/segment-block-store.js';

const DEFAULT_CHUNK_SIZE_BYTES = 16 * 1024;
import { putSnapshot } from '../../src/store/snapshot-catalog.js';
import { OBJECT_CHUNK_SIZE_BYTES, StorageEngine } from '../../src/store/storage-engine.js';
import { putVolume, type VolumeRecord } from '../../src/store/volume-catalog.js';
import { pattern } from '../helpers/pattern.js';

const BLOCK = 512;
const MiB = 1024 * 1024;
const BLOCKS_PER_OBJECT_CHUNK = OBJECT_CHUNK_SIZE_BYTES / BLOCK;
const VOLUME_BYTES = 16 * MiB;

const silentLog: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silentLog } as unknown as Logger;

/** A real object store that counts the chunk objects put through it. */
class CountingObjectStore implements ObjectStore {
  readonly kind: string;
  chunkPuts = 0;
  manifestPuts = 0;
  gets = 0;
  constructor(private readonly inner: ObjectStore) {
    this.kind = inner.kind;
  }
  put(key: string, body: Buffer, opts?: PutOptions): Promise<PutResult> {
    if (key.includes('/chunks/')) this.chunkPuts++;
    else if (key.includes('/snapshots/')) this.manifestPuts++;
    return this.inner.put(key, body, opts);
  }
  get(key: string, range?: ObjectRange): Promise<Buffer> {
    this.gets++;
    return this.inner.get(key, range);
  }
  head(key: string): Promise<ObjectHead | null> {
    return this.inner.head(key);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
  deleteMany(keys: readonly string[]): Promise<void> {
    return this.inner.deleteMany(keys);
  }
  list(prefix: string, opts?: ListOptions): AsyncIterable<ObjectListEntry> {
    return this.inner.list(prefix, opts);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function volumeRecord(id: number, type: 'stored' | 'cached', sizeBytes = VOLUME_BYTES): VolumeRecord {
  return {
    id,
    name: `vol${id}`,
    type,
    sizeBytes,
    blockSize: BLOCK,
    chunkSizeBytes: DEFAULT_CHUNK_SIZE_BYTES,
    createdAt: '2026-11-26T00:00:00.000Z',
    serial: `vol-0000000${id}`,
    naaId: `5a2c0de00000000${id}`,
  };
}

interface Rig {
  db: Database;
  dir: string;
  engine: StorageEngine;
  objects: CountingObjectStore;
  snapshots: SnapshotService;
  close(): Promise<void>;
}

async function openRig(t: Test, opts: { dir?: string; cacheSizeBytes?: number } = {}): Promise<Rig & { dir: string }> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'shelfgate-snapshot-')));
  if (opts.dir === undefined) t.teardown(() => rm(dir, { recursive: true, force: true }));
  const objects = new CountingObjectStore(await LocalObjectStore.open(join(dir, 'objects')));
  const db = await openDatabase(join(dir, 'gw'));
  const engine = await StorageEngine.open(db, {
    objectStore: objects,
    uploadBufferSizeBytes: 64 * MiB,
    cacheSizeBytes: opts.cacheSizeBytes ?? 64 * MiB,
    bufferHoldMs: 100,
  });
  const snapshots = await SnapshotService.open({ db, engine, log: silentLog });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await snapshots.close();
    await engine.cache.settled();
    await db.close();
  };
  t.teardown(close);
  return { dir, db, engine, objects, snapshots, close };
}

async function newVolume(rig: Rig, record: VolumeRecord): Promise<SegmentBlockStore> {
  await putVolume(rig.db, record);
  return SegmentBlockStore.open({ db: rig.db, volumesDir: join(rig.dir, 'volumes'), engine: rig.engine }, record);
}

t.test('Snapshot.PointInTimeDuringWrites', async (t) => {
  const rig = await openRig(t);
  const store = await newVolume(rig, volumeRecord(7, 'stored'));
  const REGION_BYTES = DEFAULT_CHUNK_SIZE_BYTES; // one Level chunk: each write is atomic
  const REGION_BLOCKS = REGION_BYTES / BLOCK;
  const regions = 256; // 4 MiB
  await store.write(0, pattern(regions * REGION_BYTES, 1));
  const before = await store.read(0, (regions * REGION_BYTES) / BLOCK);

  // Two writers rewrite every region in order (seed 1000 + region), so some writes are in flight
  // at any moment; the snapshot is taken once 64 are acknowledged, and both writers go on. Then
  // every region is written once more (seed 5000 + region): all of it after the snapshot.
  const started = new Set<number>();
  const acknowledged = new Set<number>();
  const lane = async (first: number): Promise<void> => {
    for (let r = first; r < regions; r += 2) {
      started.add(r);
      await store.write(r * REGION_BLOCKS, pattern(REGION_BYTES, 1000 + r));
      acknowledged.add(r);
      // Commands arrive from the network: the writer yields between them (small writes complete
      // without the thread pool, so a loop of them would otherwise never let the snapshot in).
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  const lanes = Promise.all([lane(0), lane(1)]);
  while (acknowledged.size < 64) await new Promise((resolve) => setImmediate(resolve));
  const ackedAtSnapshot = new Set(acknowledged);
  const startedAtSnapshot = new Set(started);
  const snap = await rig.snapshots.create(7, 'during writes');
  t.equal(snap.status, 'pending');
  t.ok(isSnapshotId(snap.snapId) && snap.snapId.length === 22, `AWS-style id ${snap.snapId}`);
  await lanes;
  t.ok(startedAtSnapshot.size < regions, `${startedAtSnapshot.size} of ${regions} writes started at the snapshot`);
  await Promise.all(Array.from({ length: regions }, (_, r) => store.write(r * REGION_BLOCKS, pattern(REGION_BYTES, 5000 + r))));
  const done = await rig.snapshots.waitFor(snap.snapId);
  t.equal(done.status, 'completed');
  t.equal(done.progress, 100);

  for (const type of ['cached', 'stored'] as const) {
    const id = type === 'cached' ? 8 : 9;
    await rig.snapshots.restoreInto(snap.snapId, volumeRecord(id, 'stored', VOLUME_BYTES));
    const getsBefore = rig.objects.gets;
    const restored = await newVolume(rig, volumeRecord(id, type));
    let mismatches = 0;
    let newer = 0;
    for (let r = 0; r < regions; r++) {
      const got = await restored.read(r * REGION_BLOCKS, REGION_BLOCKS);
      const old = before.subarray(r * REGION_BYTES, (r + 1) * REGION_BYTES);
      const mid = pattern(REGION_BYTES, 1000 + r);
      if (ackedAtSnapshot.has(r)) {
        if (!got.equals(mid)) mismatches++;
      } else if (startedAtSnapshot.has(r) && got.equals(mid)) {
        newer++; // in flight at the snapshot instant: either content is correct
      } else if (!got.equals(old)) {
        mismatches++;
      }
    }
    t.equal(mismatches, 0, `${type} restore: every region holds its content at the snapshot instant`);
    t.ok(rig.objects.gets - getsBefore >= 4, `${type} restore fetched its chunks lazily (${rig.objects.gets - getsBefore} gets)`);
    const tail = await restored.read(4 * BLOCKS_PER_OBJECT_CHUNK, BLOCKS_PER_OBJECT_CHUNK);
    t.equal(tail.equals(Buffer.alloc(MiB)), true, `${type} restore: unwritten chunks read as zeros`);
    t.comment(`${newer} in-flight writes landed before the instant`);

    // The restored volume is independent: a write to it leaves the source and the snapshot alone.
    await restored.write(0, pattern(4096, 77));
    t.equal((await store.read(0, 8)).equals(pattern(REGION_BYTES, 5000).subarray(0, 4096)), true, 'source unchanged');
  }
});

t.test('Snapshot.IncrementalUploadsChangedChunks', async (t) => {
  const rig = await openRig(t);
  const store = await newVolume(rig, volumeRecord(7, 'stored'));
  await store.write(0, pattern(8 * MiB, 3)); // object chunks 0-7
  const first = await rig.snapshots.waitFor((await rig.snapshots.create(7, 'first')).snapId);
  t.equal(rig.objects.chunkPuts, 8, 'first snapshot puts every chunk');
  t.equal(first.uploadedChunks, 8);
  t.equal(first.chunkCount, 8);

  await store.write(3 * BLOCKS_PER_OBJECT_CHUNK + 5, pattern(4096, 4)); // chunk 3
  await store.write(12 * BLOCKS_PER_OBJECT_CHUNK, pattern(MiB, 5)); // new chunk 12
  const putsBefore = rig.objects.chunkPuts;
  const second = await rig.snapshots.waitFor((await rig.snapshots.create(7, 'second')).snapId);
  t.equal(rig.objects.chunkPuts - putsBefore, 2, 'second snapshot puts only the 2 changed chunks');
  t.equal(second.uploadedChunks, 2);
  t.equal(second.chunkCount, 9);
  t.equal(rig.snapshots.counters.unchangedChunks, 7);

  // The first snapshot still restores to its own content (objects are shared, never rewritten).
  await rig.snapshots.restoreInto(first.snapId, volumeRecord(8, 'stored', VOLUME_BYTES));
  const restored = await newVolume(rig, volumeRecord(8, 'cached'));
  t.equal((await restored.read(0, (8 * MiB) / BLOCK)).equals(pattern(8 * MiB, 3)), true, 'first snapshot content');
  t.equal((await restored.read(12 * BLOCKS_PER_OBJECT_CHUNK, 8)).equals(Buffer.alloc(4096)), true, 'chunk 12 absent in the first');

  // Delete removes the manifest and the record; the shared chunk objects stay.
  const chunkKeys: string[] = [];
  for await (const entry of rig.objects.list('volumes/7/chunks/')) chunkKeys.push(entry.key);
  await rig.snapshots.delete(first.snapId);
  t.same(rig.snapshots.list().map((s) => s.snapId), [second.snapId]);
  t.equal(await rig.objects.head(snapshotManifestKey(first.snapId)), null, 'manifest deleted');
  t.ok(await rig.objects.head(`deleted/${snapshotManifestKey(first.snapId)}`), 'tombstone kept for garbage collection');
  const remaining: string[] = [];
  for await (const entry of rig.objects.list('volumes/7/chunks/')) remaining.push(entry.key);
  t.same(remaining, chunkKeys, 'chunk objects kept');
  await t.rejects(rig.snapshots.delete(first.snapId), { code: 'GW_SNAPSHOT_NOT_FOUND' });
});

t.test('Snapshot.CachedVolumeEvictedChunks', async (t) => {
  const rig = await openRig(t, { cacheSizeBytes: 2 * MiB });
  const store = await newVolume(rig, volumeRecord(7, 'cached'));
  const uploader = new Uploader({ engine: rig.engine, log: silentLog, retry: { baseDelayMs: 10, maxDelayMs: 50 }, headIntervalMs: 100 });
  uploader.start();
  t.teardown(() => uploader.stop());
  await store.write(0, pattern(6 * MiB, 6));
  await uploader.idle();
  await rig.engine.cache.settled();
  t.ok(rig.engine.cache.evictions >= 4, `evicted ${rig.engine.cache.evictions} chunks`);
  const gets = rig.objects.gets;
  const putsBefore = rig.objects.chunkPuts;
  const snap = await rig.snapshots.waitFor((await rig.snapshots.create(7, 'cached')).snapId);
  t.equal(snap.chunkCount, 6);
  t.equal(rig.objects.chunkPuts - putsBefore, 0, 'every chunk was uploaded already');
  t.equal(rig.objects.gets - gets, 0, 'evicted chunks are not fetched');
  await rig.snapshots.restoreInto(snap.snapId, volumeRecord(8, 'stored', VOLUME_BYTES));
  const restored = await newVolume(rig, volumeRecord(8, 'cached'));
  t.equal((await restored.read(0, (6 * MiB) / BLOCK)).equals(pattern(6 * MiB, 6)), true, 'restored content');
});

t.test('Snapshot.Validation', async (t) => {
  const rig = await openRig(t);
  await newVolume(rig, volumeRecord(7, 'stored'));
  await t.rejects(rig.snapshots.create(7, ''), { code: 'GW_SNAPSHOT_INVALID_ARGUMENT' });
  await t.rejects(rig.snapshots.create(7, 'x'.repeat(256)), { code: 'GW_SNAPSHOT_INVALID_ARGUMENT' });
  await t.rejects(rig.snapshots.create(99, 'no such volume'), { code: 'GW_VOLUME_NOT_FOUND' });
  const snap = await rig.snapshots.waitFor((await rig.snapshots.create(7, 'empty')).snapId);
  await t.rejects(rig.snapshots.restoreInto(snap.snapId, volumeRecord(8, 'stored', VOLUME_BYTES / 2)), { code: 'GW_SNAPSHOT_INVALID_ARGUMENT' });
});

t.test('Snapshot.PendingBecomesErrorAfterRestart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-snapshot-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let rig = await openRig(t, { dir });
  await putSnapshot(rig.db, {
    snapId: 'snap-0123456789abcdef0',
    volumeId: 7,
    volumeName: 'vol7',
    volumeSizeBytes: VOLUME_BYTES,
    description: 'interrupted',
    status: 'pending',
    progress: 40,
    startTime: '2026-11-26T00:00:00.000Z',
    uploadedChunks: 0,
    chunkCount: 0,
  });
  await rig.close();
  rig = await openRig(t, { dir });
  const [record] = rig.snapshots.list();
  t.equal(record?.status, 'error');
});

t.test('SnapshotSchedule.Slots', async (t) => {
  const at = (iso: string): number => Date.parse(iso);
  const every8From6 = { startAtHour: 6, recurrenceInHours: 8 };
  t.equal(slotBetween(every8From6, at('2026-11-26T05:30:00Z'), at('2026-11-26T06:00:00Z')), true, '06:00 is a slot');
  t.equal(slotBetween(every8From6, at('2026-11-26T06:00:00Z'), at('2026-11-26T13:59:00Z')), false, 'none until 14:00');
  t.equal(slotBetween(every8From6, at('2026-11-26T13:59:00Z'), at('2026-11-26T14:01:00Z')), true, '14:00');
  t.equal(slotBetween(every8From6, at('2026-11-26T21:00:00Z'), at('2026-11-26T22:00:00Z')), true, '22:00');
  t.equal(slotBetween({ startAtHour: 23, recurrenceInHours: 24 }, at('2026-11-26T00:00:00Z'), at('2026-11-26T22:59:00Z')), false);
});

t.test('SnapshotSchedule.TicksOnInjectedClock', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-snapshot-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let rig = await openRig(t, { dir });
  const stored = await newVolume(rig, volumeRecord(7, 'stored'));
  const cached = await newVolume(rig, volumeRecord(8, 'cached'));
  await stored.write(0, pattern(MiB, 9));
  let nowMs = Date.parse('2026-11-26T05:30:00Z');
  const open = (r: Rig) =>
    SnapshotScheduler.open({
      db: r.db,
      snapshots: r.snapshots,
      volumes: () => r.engine.attachedVolumes().map((v) => v.volume),
      log: silentLog,
      now: () => new Date(nowMs),
    });
  let scheduler = await open(rig);
  t.same(scheduler.describe(stored.volume), { volumeId: 7, startAtHour: 0, recurrenceInHours: 24, description: 'vol7:Schedule' }, 'stored: daily');
  t.equal(scheduler.describe(cached.volume), undefined, 'cached: none by default');
  await t.rejects(scheduler.update({ volumeId: 8, startAtHour: 24, recurrenceInHours: 1, description: '' }), { code: 'GW_SNAPSHOT_INVALID_ARGUMENT' });
  await t.rejects(scheduler.update({ volumeId: 8, startAtHour: 6, recurrenceInHours: 3, description: '' }), { code: 'GW_SNAPSHOT_INVALID_ARGUMENT' });
  await scheduler.update({ volumeId: 8, startAtHour: 6, recurrenceInHours: 12, description: 'twice a day' });
  await t.rejects(scheduler.remove(stored.volume), { code: 'GW_SNAPSHOT_INVALID_STATE' });

  nowMs = Date.parse('2026-11-26T06:00:00Z');
  const first = await scheduler.tick();
  t.equal(first.length, 1, 'the cached volume at 06:00');
  t.equal(rig.snapshots.get(first[0]!).volumeId, 8);
  t.equal(rig.snapshots.get(first[0]!).description, 'twice a day');
  nowMs = Date.parse('2026-11-26T17:00:00Z');
  t.same(await scheduler.tick(), [], 'nothing between 06:00 and 17:00');
  nowMs = Date.parse('2026-11-27T00:00:00Z');
  const midnight = await scheduler.tick();
  t.same(midnight.map((id) => rig.snapshots.get(id).volumeId).sort(), [7, 8], 'stored daily at 00:00, cached at 18:00');
  for (const id of [...first, ...midnight]) t.equal((await rig.snapshots.waitFor(id)).status, 'completed');

  // Persisted: the schedule survives a restart; removing it leaves the cached volume without one.
  await scheduler.stop();
  await rig.close();
  rig = await openRig(t, { dir });
  await newVolume(rig, volumeRecord(7, 'stored'));
  const cachedAgain = await newVolume(rig, volumeRecord(8, 'cached'));
  scheduler = await open(rig);
  t.equal(scheduler.describe(cachedAgain.volume)?.recurrenceInHours, 12, 'persisted');
  await scheduler.remove(cachedAgain.volume);
  t.equal(scheduler.describe(cachedAgain.volume), undefined);
  t.equal(rig.snapshots.list().length, 3, 'snapshots persisted');
});
