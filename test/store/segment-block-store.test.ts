// SegmentBlockStore against a byte-for-byte model: random writes, overwrites and UNMAPs over a
// small volume, read back after every step, after a clean reopen and after a simulated crash of
// the process (no sync, no checkpoint: the kernel keeps what was written).
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { openDatabase, type Database } from '../../src/store/database.js';
import { blockKey } from '../../src/store/keys.js';
import { SegmentBlockStore, type VolumeStoreContext } from '../../src/store/segment-block-store.js';
import { putVolume, type VolumeRecord } from '../../src/store/volume-catalog.js';
import { pattern } from '../helpers/pattern.js';

const BLOCK = 512;
const MiB = 1024 * 1024;

export function volumeRecord(sizeBytes: number, id = 1): VolumeRecord {
  return {
    id,
    name: `vol${id}`,
    type: 'stored',
    sizeBytes,
    blockSize: BLOCK,
    chunkSizeBytes: 16 * 1024,
    createdAt: '2026-12-07T00:00:00.000Z',
    serial: 'vol-0000000' + id,
    naaId: '5a2c0de000000000',
  };
}

interface Rig {
  dataDir: string;
  db: Database;
  ctx: VolumeStoreContext;
  record: VolumeRecord;
}

async function rig(t: Test, sizeBytes: number, extra: Partial<VolumeStoreContext> = {}): Promise<Rig> {
  const dataDir = await mkdtemp(join(tmpdir(), 'shelfgate-seg-'));
  const db = await openDatabase(dataDir);
  const record = volumeRecord(sizeBytes);
  await putVolume(db, record);
  const r: Rig = { dataDir, db, record, ctx: { db, volumesDir: join(dataDir, 'volumes'), segmentBytes: 1 * MiB, checkpointIntervalMs: 5, ...extra } };
  t.teardown(async () => {
    await r.db.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  return r;
}

async function reopenDb(r: Rig): Promise<void> {
  await r.db.close();
  r.db = await openDatabase(r.dataDir);
  r.ctx = { ...r.ctx, db: r.db };
}

t.test('Store.ReadWrite.Model: random writes, overwrites and unmaps read back as the model', async (t) => {
  const size = 8 * MiB;
  const r = await rig(t, size);
  let store = await SegmentBlockStore.open(r.ctx, r.record);
  const model = Buffer.alloc(size);
  let seed = 7;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let step = 0; step < 400; step++) {
    const blocks = 1 + rnd(300);
    const lba = rnd(size / BLOCK - blocks);
    if (rnd(10) === 0) {
      await store.unmap(lba, blocks);
      model.fill(0, lba * BLOCK, (lba + blocks) * BLOCK);
    } else {
      const data = pattern(blocks * BLOCK, step + 1);
      await store.write(lba, data);
      data.copy(model, lba * BLOCK);
    }
    if (step % 50 === 49) {
      const back = await store.read(0, size / BLOCK);
      t.ok(back.equals(model), `whole volume matches the model after step ${step + 1}`);
    }
  }
  const probe = await store.read(100, 37);
  t.ok(probe.equals(model.subarray(100 * BLOCK, 137 * BLOCK)), 'an unaligned read matches');
  await store.close();
  await reopenDb(r);
  store = await SegmentBlockStore.open(r.ctx, r.record);
  t.ok((await store.read(0, size / BLOCK)).equals(model), 'after a clean reopen');
  // Crash: more writes, then stop without sync or checkpoint.
  for (let i = 0; i < 50; i++) {
    const blocks = 1 + rnd(64);
    const lba = rnd(size / BLOCK - blocks);
    const data = pattern(blocks * BLOCK, 1000 + i);
    await store.write(lba, data);
    data.copy(model, lba * BLOCK);
  }
  await store.crash();
  await reopenDb(r);
  store = await SegmentBlockStore.open(r.ctx, r.record);
  t.ok((await store.read(0, size / BLOCK)).equals(model), 'every acknowledged write survives a crash of the process (replay)');
  const stats = store.stats();
  t.ok(stats.logBytes >= stats.liveBytes, 'the log holds at least the live bytes');
  await store.close();
});

t.test('Store.Cleaner: overwriting the same range reclaims segments', async (t) => {
  const r = await rig(t, 4 * MiB);
  const store = await SegmentBlockStore.open(r.ctx, r.record);
  for (let i = 0; i < 40; i++) await store.write(0, pattern(MiB, i + 1));
  await store.checkpoint();
  await store.checkpoint();
  const segments = (await readdir(join(r.ctx.volumesDir, '1', 'segments'))).length;
  t.ok(segments <= 4, `40 MiB written over the same MiB leaves few segments (${segments})`);
  t.ok((await store.read(0, MiB / BLOCK)).equals(pattern(MiB, 40)), 'the last write reads back');
  await store.close();
});

t.test('Store.MapStatus: mapped and unmapped runs at block granularity', async (t) => {
  const r = await rig(t, 4 * MiB);
  const store = await SegmentBlockStore.open(r.ctx, r.record);
  await store.write(8, pattern(8 * BLOCK, 3));
  await store.write(4096, pattern(4 * BLOCK, 4));
  t.same(await store.mapStatus(0, 8192), [
    { lba: 0, blockCount: 8, mapped: false },
    { lba: 8, blockCount: 8, mapped: true },
    { lba: 16, blockCount: 4080, mapped: false },
    { lba: 4096, blockCount: 4, mapped: true },
    { lba: 4100, blockCount: 4092, mapped: false },
  ]);
  await store.unmap(10, 2);
  t.same((await store.mapStatus(8, 8)).map((run) => run.mapped), [true, false, true]);
  await store.close();
});

t.test('Store.Upgrade: blocks of the Level format are moved into the log once', async (t) => {
  const r = await rig(t, 4 * MiB);
  const chunk = pattern(16 * 1024, 9);
  await r.db.groupCommit.commit([{ type: 'put', key: blockKey(1, 3), value: chunk }]);
  const store = await SegmentBlockStore.open(r.ctx, r.record);
  t.ok((await store.read(3 * 32, 32)).equals(chunk), 'the old chunk reads back');
  let legacy = 0;
  for await (const _ of r.db.level.keys({ gte: blockKey(1, 0), lt: blockKey(2, 0) })) legacy++;
  t.equal(legacy, 0, 'the old keys are gone');
  await store.close();
});

t.test('Store.WriteCache: WCE is saved with the volume', async (t) => {
  const r = await rig(t, 4 * MiB);
  let store = await SegmentBlockStore.open(r.ctx, r.record);
  t.equal(store.writeCacheEnabled(), true, 'on by default');
  await store.setWriteCacheEnabled(false);
  await store.close();
  await reopenDb(r);
  store = await SegmentBlockStore.open(r.ctx, r.record);
  t.equal(store.writeCacheEnabled(), false, 'kept across a restart');
  await store.close();
  await reopenDb(r);
  store = await SegmentBlockStore.open(r.ctx, r.record, { writeCache: true });
  t.equal(store.writeCacheEnabled(), true, 'the configuration wins at start');
  await store.close();
});

t.test('Store.Cleaner.RandomOverwrites: live data is moved out of mostly dead segments until the log is about twice the live data', async (t) => {
  const size = 4 * MiB;
  const r = await rig(t, size, { segmentBytes: 256 * 1024 });
  const store = await SegmentBlockStore.open(r.ctx, r.record);
  const model = Buffer.alloc(size);
  let seed = 99;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed % n;
  };
  for (let i = 0; i < 5000; i++) {
    const blocks = 1 + rnd(16);
    const lba = rnd(size / BLOCK - blocks);
    const data = pattern(blocks * BLOCK, i + 1);
    await store.write(lba, data);
    data.copy(model, lba * BLOCK);
  }
  // Cleaning goes on in the background after the writes stop; wait for it to settle.
  let stats = store.stats();
  for (let i = 0; i < 100 && stats.logBytes > 2.2 * stats.liveBytes; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    await store.checkpoint();
    stats = store.stats();
  }
  t.ok(stats.relocatedBytes > 0, `the cleaner moved ${stats.relocatedBytes} live bytes`);
  t.ok(stats.logBytes <= 2.2 * stats.liveBytes, `log ${stats.logBytes} bytes for ${stats.liveBytes} live`);
  t.ok((await store.read(0, size / BLOCK)).equals(model), 'every block reads its last write');
  await store.close();
  await reopenDb(r);
  const reopened = await SegmentBlockStore.open(r.ctx, r.record);
  t.ok((await reopened.read(0, size / BLOCK)).equals(model), 'and after a reopen');
  await reopened.close();
});
