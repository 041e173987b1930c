// The upload queue on a real Level database: entries land in the write's own batch, rewrites
// coalesce, a clean that raced with a newer write is refused, entries survive a reopen, and the
// buffer limit holds back writes that would dirty a new object chunk.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { LocalObjectStore } from '../../src/cloud/local-object-store.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { KeySpace, keySpaceRange } from '../../src/store/keys.js';
import { SegmentBlockStore } from '../../src/store/segment-block-store.js';

const DEFAULT_CHUNK_SIZE_BYTES = 16 * 1024;
import { OBJECT_CHUNK_SIZE_BYTES, StorageEngine } from '../../src/store/storage-engine.js';
import { putVolume, type VolumeRecord } from '../../src/store/volume-catalog.js';

const BLOCK = 512;
const BLOCKS_PER_OBJECT_CHUNK = OBJECT_CHUNK_SIZE_BYTES / BLOCK;
const MiB = 1024 * 1024;

function volumeRecord(id = 1): VolumeRecord {
  return {
    id,
    name: `vol${id}`,
    type: 'stored',
    sizeBytes: 64 * MiB,
    blockSize: BLOCK,
    chunkSizeBytes: DEFAULT_CHUNK_SIZE_BYTES,
    createdAt: '2026-11-26T00:00:00.000Z',
    serial: `vol-0000000${id}`,
    naaId: '5a2c0de000000000',
  };
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-queue-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function openEngine(dataDir: string, uploadBufferSizeBytes = 64 * MiB, bufferHoldMs = 50): Promise<{ db: Database; engine: StorageEngine; store: SegmentBlockStore }> {
  const db = await openDatabase(dataDir);
  const objectStore = await LocalObjectStore.open(join(dataDir, 'objects'));
  const engine = await StorageEngine.open(db, { objectStore, uploadBufferSizeBytes, cacheSizeBytes: 64 * MiB, bufferHoldMs });
  const record = volumeRecord();
  await putVolume(db, record);
  return { db, engine, store: await SegmentBlockStore.open({ db, volumesDir: join(dataDir, 'volumes'), engine }, record) };
}

async function queueEntries(db: Database): Promise<string[]> {
  const out: string[] = [];
  for await (const [key, value] of db.level.iterator(keySpaceRange(KeySpace.UPLOAD))) {
    out.push(`${key.toString('hex')}=${value.toString('hex')}`);
  }
  return out;
}

t.test('UploadQueue.EntryInCheckpoint', async (t) => {
  const dir = await tempDir(t);
  const { db, engine, store } = await openEngine(dir);
  await store.write(3 * BLOCKS_PER_OBJECT_CHUNK + 5, Buffer.alloc(BLOCK, 0xab));
  t.equal(engine.queue.dirtyBytes, OBJECT_CHUNK_SIZE_BYTES, 'dirty once the write is acknowledged');
  await store.checkpoint();
  // volume 1, object chunk 3, sequence 1
  t.same(await queueEntries(db), ['04000000010000000000000003=0000000000000001'], 'in Level after a checkpoint');
  // A write acknowledged after the checkpoint, then a crash: replay of the log dirties it again.
  await store.write(7 * BLOCKS_PER_OBJECT_CHUNK, Buffer.alloc(BLOCK, 0xcd));
  await store.crash();
  await db.close();
  const reopened = await openEngine(dir);
  t.teardown(() => reopened.db.close());
  t.same(
    reopened.engine.queue.pending().map((c) => c.objectChunkIndex),
    [3, 7],
    'the queue holds both chunks after the crash',
  );
});

t.test('UploadQueue.RewritesCoalesce', async (t) => {
  const dir = await tempDir(t);
  const { db, engine, store } = await openEngine(dir);
  t.teardown(() => db.close());
  await Promise.all([
    store.write(0, Buffer.alloc(BLOCK, 1)),
    store.write(1, Buffer.alloc(BLOCK, 2)),
    store.write(BLOCKS_PER_OBJECT_CHUNK - 1, Buffer.alloc(BLOCK, 3)),
  ]);
  await store.checkpoint();
  t.same(await queueEntries(db), ['04000000010000000000000000=0000000000000003'], 'one entry, the latest sequence');
  t.equal(engine.queue.dirtyChunkCount, 1);
});

t.test('UploadQueue.WriteSpanningChunks', async (t) => {
  const dir = await tempDir(t);
  const { db, store } = await openEngine(dir);
  t.teardown(() => db.close());
  await store.write(BLOCKS_PER_OBJECT_CHUNK - 1, Buffer.alloc(2 * BLOCK, 7));
  await store.checkpoint();
  t.same(await queueEntries(db), [
    '04000000010000000000000000=0000000000000001',
    '04000000010000000000000001=0000000000000002',
  ]);
});

t.test('UploadQueue.CleanRacedWithWrite', async (t) => {
  const dir = await tempDir(t);
  const { db, engine, store } = await openEngine(dir);
  t.teardown(() => db.close());
  await store.write(0, Buffer.alloc(BLOCK, 1));
  const read = await store.readObjectChunk(0);
  t.equal(read.sequence, 1);
  await store.write(0, Buffer.alloc(BLOCK, 2)); // a newer write while "uploading"
  t.equal(await store.markUploaded(0, read.sequence!, Buffer.alloc(32)), false, 'stale upload does not clean');
  await store.checkpoint();
  t.same(await queueEntries(db), ['04000000010000000000000000=0000000000000002']);
  const again = await store.readObjectChunk(0);
  t.equal(await store.markUploaded(0, again.sequence!, Buffer.alloc(32, 9)), true);
  t.same(await queueEntries(db), []);
  t.equal(engine.queue.dirtyChunkCount, 0);
  t.equal(store.uploadedState(0)?.sha256.toString('hex'), '09'.repeat(32));
});

t.test('UploadQueue.SurvivesReopen', async (t) => {
  const dir = await tempDir(t);
  let opened = await openEngine(dir);
  await opened.store.write(5 * BLOCKS_PER_OBJECT_CHUNK, Buffer.alloc(BLOCK, 1));
  await opened.store.write(2 * BLOCKS_PER_OBJECT_CHUNK, Buffer.alloc(BLOCK, 1));
  await opened.db.close();
  opened = await openEngine(dir);
  t.teardown(() => opened.db.close());
  t.same(
    opened.engine.queue.pending().map((c) => `${c.volumeId}:${c.objectChunkIndex}:${c.sequence}`),
    ['1:5:1', '1:2:2'],
    'oldest first',
  );
  await opened.store.write(0, Buffer.alloc(BLOCK, 1));
  t.equal(opened.engine.queue.sequenceOf(1, 0), 3, 'sequences continue after the largest one left');
});

t.test('UploadQueue.BufferFullHoldsNewChunks', async (t) => {
  const dir = await tempDir(t);
  const { db, engine, store } = await openEngine(dir, 2 * OBJECT_CHUNK_SIZE_BYTES, 50);
  t.teardown(() => db.close());
  await store.write(0, Buffer.alloc(BLOCK, 1));
  await store.write(BLOCKS_PER_OBJECT_CHUNK, Buffer.alloc(BLOCK, 1));
  t.ok(engine.queue.isFull());
  await store.write(7, Buffer.alloc(BLOCK, 2)); // rewrite of a dirty chunk: passes
  await t.rejects(store.write(2 * BLOCKS_PER_OBJECT_CHUNK, Buffer.alloc(BLOCK, 3)), {
    code: 'STORE_BUFFER_FULL',
    transient: true,
  });
  // Room appears while a write is held: it proceeds.
  const held = store.write(3 * BLOCKS_PER_OBJECT_CHUNK, Buffer.alloc(BLOCK, 4));
  engine.queue.setLimitBytes(8 * OBJECT_CHUNK_SIZE_BYTES);
  await held;
  t.equal((await store.read(3 * BLOCKS_PER_OBJECT_CHUNK, 1)).toString('hex'), '04'.repeat(BLOCK));
  t.equal((await store.read(2 * BLOCKS_PER_OBJECT_CHUNK, 1)).toString('hex'), '00'.repeat(BLOCK), 'refused write not applied');
});

t.test('UploadQueue.ForgetVolume', async (t) => {
  const dir = await tempDir(t);
  const { db, engine, store } = await openEngine(dir);
  t.teardown(() => db.close());
  await store.write(0, Buffer.alloc(BLOCK, 1));
  await store.write(BLOCKS_PER_OBJECT_CHUNK, Buffer.alloc(BLOCK, 1));
  const read = await store.readObjectChunk(0);
  await store.markUploaded(0, read.sequence!, Buffer.alloc(32, 1));
  await engine.forgetVolume(1);
  t.same(await queueEntries(db), [], 'queue entries gone');
  t.equal(engine.queue.dirtyChunkCount, 0);
  const states: string[] = [];
  for await (const key of db.level.keys(keySpaceRange(KeySpace.OBJECT))) states.push(key.toString('hex'));
  t.same(states, [], 'uploaded states gone');
  t.equal(engine.volumeOf(1), undefined);
});

t.test('UploadQueue.AdoptsUntrackedChunks', async (t) => {
  const dir = await tempDir(t);
  // Written before the storage engine existed: blocks without queue entries.
  const legacyDb = await openDatabase(dir);
  const legacy = await SegmentBlockStore.open({ db: legacyDb, volumesDir: join(dir, 'volumes') }, volumeRecord());
  await legacy.write(0, Buffer.alloc(BLOCK, 1));
  await legacy.write(9 * BLOCKS_PER_OBJECT_CHUNK + 100, Buffer.alloc(4 * BLOCK, 2));
  await legacy.close();
  await legacyDb.close();
  const { db, engine, store } = await openEngine(dir);
  t.teardown(() => db.close());
  t.equal(engine.queue.dirtyChunkCount, 0);
  t.equal(await store.adoptUntrackedChunks(), 2, 'two object chunks adopted');
  t.same(engine.queue.pending().map((c) => c.objectChunkIndex), [0, 9]);
  t.equal(await store.adoptUntrackedChunks(), 0, 'only once per volume');
});
