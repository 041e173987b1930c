// The tape uploader (src/gateway/tape-uploader.ts) against a real LocalObjectStore: a tape written
// and closed is uploaded as record-aligned data objects + index.json; after a truncation only the
// data objects from the truncation point on are uploaded again and the replaced ones deleted; a
// second library on an empty database rebuilds the tape from the bucket alone
// (tape-object-recovery.ts).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { silentLogger } from '../../iscsi/log.js';
import { LocalObjectStore } from '../../src/cloud/local-object-store.js';
import { recoverTapesFromObjectStore } from '../../src/gateway/tape-object-recovery.js';
import { TapeUploader } from '../../src/gateway/tape-uploader.js';
import { createVtlTargets, type VtlTargets } from '../../src/gateway/vtl-targets.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { getUploadedTapeIndex, type TapeObjectIndex } from '../../src/store/tape-object-index.js';

const GIB = 1024 ** 3;
const BARCODE = 'UPLD0001';

function record(index: number, lengthBytes: number): Buffer {
  const data = Buffer.alloc(lengthBytes, index & 0xff);
  data.writeUInt32BE(index, 0);
  return data;
}

async function openLibrary(dir: string): Promise<{ db: Database; vtl: VtlTargets }> {
  const db = await openDatabase(dir);
  const vtl = await createVtlTargets({ gatewayName: 'gw1', changerType: 'AWS-Gateway-VTL', db, log: silentLogger, slots: { storage: 4, importExport: 2 } });
  return { db, vtl };
}

async function uploadedWith(db: Database, eodObjectId: number): Promise<TapeObjectIndex> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const index = await getUploadedTapeIndex(db, BARCODE);
    if (index?.eodObjectId === eodObjectId) return index;
    await sleep(20);
  }
  throw new Error(`no uploaded index with EOD ${eodObjectId}`);
}

const work = await mkdtemp(join(tmpdir(), 'shelfgate-tape-uploader-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const store = await LocalObjectStore.open(join(work, 'objects'));
const a = await openLibrary(join(work, 'a'));
const uploader = new TapeUploader({ db: a.db, objectStore: store, library: a.vtl.library, catalog: a.vtl.catalog, media: a.vtl.media, log: silentLogger });
uploader.start();

/** 3 files of 20 records of 1 MiB: object ids 0-19, 20 FM, 21-40, 41 FM, 42-61, 62 FM. */
t.test('TapeUploader.UploadsClosedTape', async (t) => {
  await a.vtl.service.createTapeWithBarcode({ barcode: BARCODE, sizeBytes: 100 * GIB });
  const medium = await a.vtl.media.open(BARCODE);
  for (let file = 0; file < 3; file++) {
    for (let i = 0; i < 20; i++) await medium.writeRecord(record(file * 100 + i, 1024 * 1024));
    await medium.writeFilemarks(1);
  }
  await a.vtl.media.close(medium);
  const index = await uploadedWith(a.db, 63);
  t.same(index.filemarks, [20, 41, 62], 'filemark positions');
  t.equal(index.usedBytes, 60 * 1024 * 1024, 'used bytes');
  t.same(
    index.dataObjects.map((o) => [o.firstObjectId, o.objectCount]),
    [[0, 7], [7, 7], [14, 7], [21, 7], [28, 7], [35, 7], [42, 7], [49, 7], [56, 7]],
    'records packed up to 8 MiB, an object closed after each filemark',
  );
  const keys: string[] = [];
  for await (const entry of store.list(`tapes/${BARCODE}/data/`)) keys.push(entry.key);
  t.same(keys, index.dataObjects.map((o) => o.key), 'the bucket holds exactly the indexed data objects');
  const catalog = JSON.parse((await store.get('tapes/catalog.json')).toString()) as { tapes: Array<{ barcode: string; address: number }> };
  t.same(catalog.tapes.map((e) => [e.barcode, e.address]), [[BARCODE, 1]], 'tapes/catalog.json names the tape in slot 1');
});

t.test('TapeUploader.ReuploadsFromTruncation', async (t) => {
  const before = (await getUploadedTapeIndex(a.db, BARCODE))!;
  const medium = await a.vtl.media.open(BARCODE);
  await medium.locate(30); // inside data object [28, 35)
  await medium.writeRecord(record(999, 4096));
  await medium.writeFilemarks(1);
  await a.vtl.media.close(medium);
  const index = await uploadedWith(a.db, 32);
  t.same(index.dataObjects.slice(0, 4), before.dataObjects.slice(0, 4), 'data objects before the truncated one are kept');
  t.same(index.dataObjects.slice(4).map((o) => [o.firstObjectId, o.objectCount]), [[28, 4]], 'from the truncated object on: uploaded again');
  t.same(index.filemarks, [20, 31], 'filemarks after the truncation');
  // They are deleted after the new index is recorded: wait for the deletes to land.
  const wanted = index.dataObjects.map((o) => o.key).sort();
  let keys: string[] = [];
  for (let attempt = 0; attempt < 500; attempt++) {
    keys = [];
    for await (const entry of store.list(`tapes/${BARCODE}/data/`)) keys.push(entry.key);
    if (keys.join() === wanted.join()) break;
    await sleep(20);
  }
  t.same(keys, wanted, 'replaced data objects are deleted');
});

t.test('TapeObjectRecovery.RebuildsOnEmptyDatabase', async (t) => {
  await uploader.stop();
  const b = await openLibrary(join(work, 'b'));
  t.teardown(async () => {
    await b.vtl.close();
    await b.db.close();
  });
  t.equal(b.vtl.firstStart, true, 'empty tape catalog');
  const rebuilt = await recoverTapesFromObjectStore({ objectStore: store, library: b.vtl.library, catalog: b.vtl.catalog, media: b.vtl.media, log: silentLogger });
  t.equal(rebuilt, 1, 'one tape rebuilt');
  t.same(b.vtl.library.elementOf(BARCODE), { address: 1, type: 'storage' }, 'in its slot');
  const medium = await b.vtl.media.open(BARCODE);
  const read: string[] = [];
  for (;;) {
    const object = await medium.read();
    if (object.kind === 'end-of-data') break;
    read.push(object.kind === 'filemark' ? 'FM' : `${object.data.readUInt32BE(0)}:${object.data.length}`);
  }
  await b.vtl.media.close(medium);
  const expected = [
    ...Array.from({ length: 20 }, (_, i) => `${i}:${1024 * 1024}`),
    'FM',
    ...Array.from({ length: 9 }, (_, i) => `${100 + i}:${1024 * 1024}`),
    `999:4096`,
    'FM',
  ];
  t.same(read, expected, 'records and filemarks as uploaded, in order');
  t.equal(
    await recoverTapesFromObjectStore({ objectStore: store, library: b.vtl.library, catalog: b.vtl.catalog, media: b.vtl.media, log: silentLogger }),
    0,
    'a second run leaves a non-empty catalog alone',
  );
});

t.teardown(async () => {
  await uploader.stop();
  await a.vtl.close();
  await a.db.close();
  await store.close();
});
