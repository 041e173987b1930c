import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { openDatabase, type Database } from '../../src/store/database.js';
import { volumeBlockRange } from '../../src/store/keys.js';
import { DEFAULT_CHUNK_SIZE_BYTES, LevelBlockStore } from '../../src/store/level-block-store.js';
import { getVolume, putVolume, type VolumeRecord } from '../../src/store/volume-catalog.js';

const BLOCK = 512;
const BLOCKS_PER_CHUNK = DEFAULT_CHUNK_SIZE_BYTES / BLOCK;

function volumeRecord(sizeBytes: number, id = 1): VolumeRecord {
  return {
    id,
    name: `vol${id}`,
    type: 'stored',
    sizeBytes,
    blockSize: BLOCK,
    chunkSizeBytes: DEFAULT_CHUNK_SIZE_BYTES,
    createdAt: '2026-11-26T00:00:00.000Z',
    serial: 'vol-0000000' + id,
    naaId: '5a2c0de000000000',
  };
}

async function withStore(
  t: Test,
  sizeBytes: number,
): Promise<{ db: Database; store: LevelBlockStore; dataDir: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'shelfgate-store-'));
  const db = await openDatabase(dataDir);
  const record = volumeRecord(sizeBytes);
  await putVolume(db, record);
  t.teardown(async () => {
    await db.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  return { db, store: new LevelBlockStore(db, record), dataDir };
}

/** Deterministic pseudo-random bytes (xorshift32) so failures reproduce. */
function pattern(lengthBytes: number, seed: number): Buffer {
  const buf = Buffer.alloc(lengthBytes);
  let x = seed | 1;
  for (let i = 0; i < lengthBytes; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeInt32LE(x | 0, i);
  }
  return buf;
}

async function countKeys(db: Database, volumeId: number): Promise<number> {
  let n = 0;
  for await (const _ of db.level.keys(volumeBlockRange(volumeId))) n++;
  return n;
}

function hex(buf: Buffer): string {
  return buf.toString('hex');
}

t.test('Read.Unwritten: a 16 TiB volume reads zeros and stores nothing', async (t) => {
  const { db, store } = await withStore(t, 16 * 2 ** 40);
  t.equal(store.blockCount(), 2 ** 35);
  const lastLba = store.blockCount() - 8;
  t.equal(hex(await store.read(lastLba, 8)), hex(Buffer.alloc(8 * BLOCK)));
  t.same(await store.mapStatus(0, store.blockCount()), [{ lba: 0, blockCount: 2 ** 35, mapped: false }]);
  t.equal(await countKeys(db, 1), 0);
  // Writes at both ends, then a whole-volume UNMAP: costs what was written, not 2^30 chunks.
  await store.write(0, pattern(BLOCK, 1));
  await store.write(lastLba, pattern(8 * BLOCK, 2));
  t.same(await store.mapStatus(0, store.blockCount()), [
    { lba: 0, blockCount: BLOCKS_PER_CHUNK, mapped: true },
    { lba: BLOCKS_PER_CHUNK, blockCount: 2 ** 35 - 2 * BLOCKS_PER_CHUNK, mapped: false },
    { lba: 2 ** 35 - BLOCKS_PER_CHUNK, blockCount: BLOCKS_PER_CHUNK, mapped: true },
  ]);
  await store.unmap(0, store.blockCount());
  t.equal(await countKeys(db, 1), 0);
  t.equal(hex(await store.read(lastLba, 8)), hex(Buffer.alloc(8 * BLOCK)));
});

t.test('Write.PartialChunk: one block inside a chunk keeps the rest zero', async (t) => {
  const { db, store } = await withStore(t, 2 ** 30);
  const data = pattern(BLOCK, 7);
  await store.write(3, data);
  const expected = Buffer.alloc(BLOCKS_PER_CHUNK * BLOCK);
  data.copy(expected, 3 * BLOCK);
  t.equal(hex(await store.read(0, BLOCKS_PER_CHUNK)), hex(expected));
  t.equal(hex(await store.read(3, 1)), hex(data));
  t.equal(await countKeys(db, 1), 1);
});

t.test('Write.SpanningChunks: an unaligned write across three chunks', async (t) => {
  const { db, store } = await withStore(t, 2 ** 30);
  const lba = BLOCKS_PER_CHUNK - 5;
  const data = pattern((BLOCKS_PER_CHUNK + 10) * BLOCK, 11);
  await store.write(lba, data);
  t.equal(hex(await store.read(lba, BLOCKS_PER_CHUNK + 10)), hex(data));
  t.equal(hex(await store.read(lba - 1, 1)), hex(Buffer.alloc(BLOCK)));
  t.equal(hex(await store.read(lba + BLOCKS_PER_CHUNK + 10, 1)), hex(Buffer.alloc(BLOCK)));
  t.equal(await countKeys(db, 1), 3);
});

t.test('Write.Zeros: an all-zero chunk is stored as a deletion', async (t) => {
  const { db, store } = await withStore(t, 2 ** 30);
  await store.write(0, pattern(2 * BLOCKS_PER_CHUNK * BLOCK, 3));
  t.equal(await countKeys(db, 1), 2);
  await store.write(0, Buffer.alloc(BLOCKS_PER_CHUNK * BLOCK));
  await store.write(BLOCKS_PER_CHUNK, Buffer.alloc(BLOCK * 3));
  t.equal(await countKeys(db, 1), 1);
  t.same(await store.mapStatus(0, 2 * BLOCKS_PER_CHUNK), [
    { lba: 0, blockCount: BLOCKS_PER_CHUNK, mapped: false },
    { lba: BLOCKS_PER_CHUNK, blockCount: BLOCKS_PER_CHUNK, mapped: true },
  ]);
});

t.test('Unmap.WholeAndPartial: whole chunks deleted, partial ones zeroed', async (t) => {
  const { db, store } = await withStore(t, 2 ** 30);
  const blocks = 4 * BLOCKS_PER_CHUNK;
  const data = pattern(blocks * BLOCK, 5);
  await store.write(0, data);
  // From the middle of chunk 0 to the middle of chunk 2: chunk 1 goes, chunks 0 and 2 are zeroed in part.
  const from = BLOCKS_PER_CHUNK / 2;
  const count = 2 * BLOCKS_PER_CHUNK;
  await store.unmap(from, count);
  const expected = Buffer.from(data);
  expected.fill(0, from * BLOCK, (from + count) * BLOCK);
  t.equal(hex(await store.read(0, blocks)), hex(expected));
  t.equal(await countKeys(db, 1), 3);
  t.same(await store.mapStatus(0, blocks), [
    { lba: 0, blockCount: BLOCKS_PER_CHUNK, mapped: true },
    { lba: BLOCKS_PER_CHUNK, blockCount: BLOCKS_PER_CHUNK, mapped: false },
    { lba: 2 * BLOCKS_PER_CHUNK, blockCount: 2 * BLOCKS_PER_CHUNK, mapped: true },
  ]);
  await store.unmap(0, store.blockCount());
  t.equal(await countKeys(db, 1), 0);
  t.equal(hex(await store.read(0, blocks)), hex(Buffer.alloc(blocks * BLOCK)));
});

t.test('GetLbaStatus.Runs: runs are clipped to the requested range', async (t) => {
  const { store } = await withStore(t, 2 ** 30);
  await store.write(5 * BLOCKS_PER_CHUNK + 1, pattern(BLOCK, 1));
  await store.write(7 * BLOCKS_PER_CHUNK, pattern(2 * BLOCKS_PER_CHUNK * BLOCK, 2));
  t.same(await store.mapStatus(5 * BLOCKS_PER_CHUNK + 10, 3 * BLOCKS_PER_CHUNK), [
    { lba: 5 * BLOCKS_PER_CHUNK + 10, blockCount: BLOCKS_PER_CHUNK - 10, mapped: true },
    { lba: 6 * BLOCKS_PER_CHUNK, blockCount: BLOCKS_PER_CHUNK, mapped: false },
    { lba: 7 * BLOCKS_PER_CHUNK, blockCount: BLOCKS_PER_CHUNK + 10, mapped: true },
  ]);
});

t.test('Write.BeyondEol: out-of-range requests are refused', async (t) => {
  const { store } = await withStore(t, 2 ** 30);
  await t.rejects(store.write(store.blockCount() - 1, Buffer.alloc(2 * BLOCK)), { code: 'STORE_OUT_OF_RANGE' });
  await t.rejects(store.read(store.blockCount(), 1), { code: 'STORE_OUT_OF_RANGE' });
  await t.rejects(store.unmap(-1, 1), { code: 'STORE_OUT_OF_RANGE' });
});

t.test('GroupCommit.OverlappingQd32: concurrent overlapping writes match a sequential model', async (t) => {
  const sizeBytes = 2 ** 30;
  const { db, store } = await withStore(t, sizeBytes);
  const regionBlocks = 8 * BLOCKS_PER_CHUNK; // all writes land in 4 MiB: lots of overlap
  const model = Buffer.alloc(regionBlocks * BLOCK);
  let rng = 12345;
  const next = (n: number): number => {
    rng = (Math.imul(rng, 1103515245) + 12345) >>> 0;
    return rng % n;
  };
  const batchesBefore = db.groupCommit.batchCount;
  const ops: Promise<void>[] = [];
  for (let i = 0; i < 400; i++) {
    const blockCount = 1 + next(i % 4 === 0 ? 300 : 16);
    const lba = next(regionBlocks - blockCount);
    if (i % 10 === 9) {
      model.fill(0, lba * BLOCK, (lba + blockCount) * BLOCK);
      ops.push(store.unmap(lba, blockCount));
    } else {
      const data = pattern(blockCount * BLOCK, i + 1);
      data.copy(model, lba * BLOCK);
      ops.push(store.write(lba, data));
    }
    // Keep 32 commands outstanding, like an initiator at QD32.
    if (ops.length === 32) await Promise.race(ops.map((p, k) => p.then(() => k))).then((k) => ops.splice(k, 1));
  }
  await Promise.all(ops);
  t.ok(db.groupCommit.batchCount - batchesBefore < 400, 'writes were coalesced into fewer batches');
  const actual = await store.read(0, regionBlocks);
  // Compare block by block so a failure shows one 512-byte block, not 4 MiB of hex.
  let firstBad = -1;
  for (let b = 0; b < regionBlocks && firstBad < 0; b++) {
    if (!actual.subarray(b * BLOCK, (b + 1) * BLOCK).equals(model.subarray(b * BLOCK, (b + 1) * BLOCK))) firstBad = b;
  }
  t.equal(firstBad, -1, 'every block matches the model');
  if (firstBad >= 0) {
    t.equal(
      hex(actual.subarray(firstBad * BLOCK, (firstBad + 1) * BLOCK)),
      hex(model.subarray(firstBad * BLOCK, (firstBad + 1) * BLOCK)),
      `block ${firstBad}`,
    );
  }
});

t.test('Read.YourWrites: each writer reads back its own acknowledged data while others write', async (t) => {
  const { store } = await withStore(t, 2 ** 30);
  const workers = Array.from({ length: 32 }, async (_, w) => {
    for (let round = 0; round < 8; round++) {
      // Workers share chunks (4 KiB slots interleaved) so read-modify-writes race.
      const lba = (round * 32 + w) * 8;
      const data = pattern(8 * BLOCK, w * 100 + round + 1);
      await store.write(lba, data);
      t.equal(hex(await store.read(lba, 8)), hex(data), `worker ${w} round ${round}`);
    }
  });
  await Promise.all(workers);
});

t.test('Restart.Persistence: data and catalog survive close and reopen', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'shelfgate-store-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const record = volumeRecord(2 ** 30, 9);
  const data = pattern(100 * BLOCK, 99);
  {
    const db = await openDatabase(dataDir);
    await putVolume(db, record);
    const store = new LevelBlockStore(db, record);
    await store.write(1000, data);
    await store.grow(2 ** 31);
    await db.close();
  }
  const db = await openDatabase(dataDir);
  t.teardown(() => db.close());
  const reopened = await getVolume(db, record.name);
  t.same(reopened, { ...record, sizeBytes: 2 ** 31 });
  const store = new LevelBlockStore(db, reopened!);
  t.equal(store.blockCount(), 2 ** 31 / BLOCK);
  t.equal(hex(await store.read(1000, 100)), hex(data));
  await t.rejects(store.grow(2 ** 30), { code: 'STORE_SHRINK_REFUSED' });
});

t.test('Open.Locked: a second open of the same data directory names the problem', async (t) => {
  const { dataDir } = await withStore(t, 2 ** 30);
  await t.rejects(openDatabase(dataDir), { code: 'STORE_LOCKED', message: /in use by another shelfgate process/ });
});
