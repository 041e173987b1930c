// Persisted JSON is checked on read (src/store/stored-json.ts): every catalog record in Level and
// every JSON object the stores read from the object store is fed here damaged, and must fail with
// STORE_CORRUPT (TAPE_CORRUPT for the tape header) naming the record and the field — never be
// read as a wrong value.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { openDatabase, type Database } from '../../src/store/database.js';
import { catalogKey, settingsKey } from '../../src/store/keys.js';
import { getSetting, putSetting } from '../../src/store/settings-catalog.js';
import { listSnapshots, listSnapshotSchedules, putSnapshot, type SnapshotRecord } from '../../src/store/snapshot-catalog.js';
import { parseSnapshotManifest } from '../../src/store/snapshot-manifest.js';
import { parseTapeCatalogObject } from '../../src/store/tape-catalog-object.js';
import { listTapeRecords, putTapeRecords, tapeCatalogKey, type TapeRecord } from '../../src/store/tape-catalog-store.js';
import { decodeTapeHeader, encodeTapeHeader, type TapeHeader } from '../../src/store/tape-header.js';
import { encodeTapeObjectIndex, getUploadedTapeIndex, parseTapeObjectIndex, putUploadedTapeIndex, type TapeObjectIndex } from '../../src/store/tape-object-index.js';
import { tapeDataObjectKey, TAPE_UPLOAD_KEY_SPACE } from '../../src/store/tape-object-layout.js';
import { listTapeShelfRecords, putTapeShelfRecord, tapeShelfKey, type TapeShelfRecord } from '../../src/store/tape-shelf-store.js';
import { allocateVolumeId, getVolume, listVolumes, putVolume, type VolumeRecord } from '../../src/store/volume-catalog.js';

const SHA = 'ab'.repeat(32);

async function withDb(t: Test): Promise<Database> {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-stored-records-'));
  const db = await openDatabase(dir);
  t.teardown(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });
  return db;
}

/** A JSON record with `change` applied (undefined deletes the field). */
function damaged(record: object, change: Record<string, unknown>): Buffer {
  const value: Record<string, unknown> = { ...record };
  for (const [k, v] of Object.entries(change)) {
    if (v === undefined) delete value[k];
    else value[k] = v;
  }
  return Buffer.from(JSON.stringify(value));
}

const volume: VolumeRecord = {
  id: 3,
  name: 'vol1',
  type: 'stored',
  sizeBytes: 1024 ** 3,
  blockSize: 512,
  chunkSizeBytes: 16384,
  createdAt: new Date(0).toISOString(),
  serial: 'vol-3',
  naaId: '6000000000000003',
  chap: { initiatorName: 'iqn.2026-11.dev.test:init', secretToAuthenticateInitiator: 'twelve+chars' },
};

t.test('VolumeCatalog.CorruptRecord', async (t) => {
  const db = await withDb(t);
  await putVolume(db, volume);
  t.same(await getVolume(db, 'vol1'), volume, 'a good record reads back as written');
  await db.level.put(catalogKey('vol1'), damaged(volume, { blockSize: '512' }));
  await t.rejects(listVolumes(db), {
    code: 'STORE_CORRUPT',
    message: 'volume catalog record vol1: blockSize: Invalid input: expected number, received string',
  });
  await db.level.put(catalogKey('vol1'), damaged(volume, { type: 'tape' }));
  await t.rejects(getVolume(db, 'vol1'), { code: 'STORE_CORRUPT', message: /^volume catalog record vol1: type: Invalid option/ });
  await db.level.put(catalogKey('vol1'), damaged(volume, { chap: { initiatorName: 'iqn.x' } }));
  await t.rejects(getVolume(db, 'vol1'), {
    code: 'STORE_CORRUPT',
    message: 'volume catalog record vol1: chap.secretToAuthenticateInitiator: Invalid input: expected string, received undefined',
  });
  await db.level.put(catalogKey('vol1'), Buffer.from('{"id":3,'));
  await t.rejects(getVolume(db, 'vol1'), { code: 'STORE_CORRUPT', message: /^volume catalog record vol1 is not JSON: / });
});

t.test('SettingsCatalog.CorruptSetting', async (t) => {
  const db = await withDb(t);
  await putSetting(db, 'next-volume-id', 'seven');
  await t.rejects(allocateVolumeId(db), { code: 'STORE_CORRUPT', message: 'setting next-volume-id: (whole record): Invalid input: expected number, received string' });
  await putSetting(db, 'next-volume-id', 7);
  t.equal(await allocateVolumeId(db), 7, 'a good next-volume-id is used');
  await db.level.put(settingsKey('anything'), Buffer.from('not json'));
  await t.rejects(getSetting(db, 'anything'), { code: 'STORE_CORRUPT', message: /^setting anything is not JSON: / }, 'without a schema: JSON checked');
});

t.test('SnapshotCatalog.CorruptRecord', async (t) => {
  const db = await withDb(t);
  const record: SnapshotRecord = {
    snapId: 'snap-0123456789abcdef0',
    volumeId: 3,
    volumeName: 'vol1',
    volumeSizeBytes: 1024 ** 3,
    description: '',
    status: 'completed',
    progress: 100,
    startTime: new Date(0).toISOString(),
    uploadedChunks: 1,
    chunkCount: 1,
  };
  await putSnapshot(db, record);
  t.same(await listSnapshots(db), [record]);
  await db.level.put(settingsKey(`snapshot/${record.snapId}`), damaged(record, { status: 'done' }));
  await t.rejects(listSnapshots(db), {
    code: 'STORE_CORRUPT',
    message: 'snapshot catalog record snapshot/snap-0123456789abcdef0: status: Invalid option: expected one of "pending"|"completed"|"error"',
  });
  await db.level.put(settingsKey('snapshot-schedule/3'), Buffer.from(JSON.stringify({ volumeId: 3, startAtHour: 24, recurrenceInHours: 1, description: '' })));
  await t.rejects(listSnapshotSchedules(db), {
    code: 'STORE_CORRUPT',
    message: 'snapshot catalog record snapshot-schedule/3: startAtHour: Too big: expected number to be <=23',
  });
});

t.test('TapeCatalogStore.CorruptRecord', async (t) => {
  const db = await withDb(t);
  const record: TapeRecord = { barcode: 'TAPE0001', status: 'AVAILABLE', sizeBytes: 100 * 1024 ** 3, worm: false, createdAt: new Date(0).toISOString(), location: { address: 1024 } };
  await putTapeRecords(db, [record]);
  t.same(await listTapeRecords(db), [record]);
  await db.level.put(tapeCatalogKey('TAPE0001'), damaged(record, { location: { address: -1 } }));
  await t.rejects(listTapeRecords(db), { code: 'STORE_CORRUPT', message: 'tape catalog record TAPE0001: location.address: Too small: expected number to be >=0' });
  await db.level.put(tapeCatalogKey('TAPE0001'), damaged(record, { location: undefined }));
  await t.rejects(listTapeRecords(db), { code: 'STORE_CORRUPT', message: 'tape catalog record TAPE0001: location: Invalid input: expected object, received undefined' });
});

t.test('TapeShelfStore.CorruptRecord', async (t) => {
  const db = await withDb(t);
  const record: TapeShelfRecord = {
    barcode: 'TAPE0002',
    sizeBytes: 100 * 1024 ** 3,
    worm: false,
    poolId: 'GLACIER',
    storageClass: 'GLACIER',
    poolEntryDate: new Date(0).toISOString(),
    archive: { storeKind: 'local', archiveId: 'tape-TAPE0002', sizeBytes: 16, sha256TreeHash: SHA, partSizeBytes: 1024 * 1024 },
    manifest: { format: 1, recordCount: 1, filemarkCount: 0, dataBytes: 8, streamSizeBytes: 24, sha256TreeHash: SHA, runs: [[8, 1]] },
    job: { kind: 'archive', progressPercent: 50, upload: { kind: 'local', name: 'tape-TAPE0002', description: 'd', partSizeBytes: 1024 * 1024, uploadId: 'u1', parts: [{ index: 0, sizeBytes: 16, treeHash: SHA }] } },
  };
  await putTapeShelfRecord(db, record);
  t.same(await listTapeShelfRecords(db), [record]);
  await db.level.put(tapeShelfKey('TAPE0002'), damaged(record, { job: { kind: 'retrieve', progressPercent: 0, tier: 'Slow', jobId: null } }));
  await t.rejects(listTapeShelfRecords(db), {
    code: 'STORE_CORRUPT',
    message: 'tape shelf record TAPE0002: job.tier: Invalid option: expected one of "Expedited"|"Standard"|"Bulk"',
  });
  await db.level.put(tapeShelfKey('TAPE0002'), damaged(record, { manifest: { ...record.manifest, runs: [[8, '1']] } }));
  await t.rejects(listTapeShelfRecords(db), {
    code: 'STORE_CORRUPT',
    message: 'tape shelf record TAPE0002: manifest.runs[0][1]: Invalid input: expected number, received string',
  });
});

t.test('TapeHeader.Corrupt', async (t) => {
  const header: TapeHeader = {
    barcode: 'TAPE0003',
    capacityBytes: 1024 ** 3,
    earlyWarningBytes: 1024,
    worm: false,
    writeProtected: false,
    eodObjectId: 0,
    filemarkCount: 0,
    usedBytes: 0,
    dataEndBytes: 0,
    generation: 1,
  };
  t.same(decodeTapeHeader(encodeTapeHeader(header)), header);
  t.throws(() => decodeTapeHeader(damaged(header, { usedBytes: 1.5 }), 'TAPE0003'), {
    name: 'TapeStoreError',
    code: 'TAPE_CORRUPT',
    message: 'tape header of TAPE0003: usedBytes: Invalid input: expected int, received number',
  });
});

function tapeIndex(barcode: string): TapeObjectIndex {
  return {
    format: 1,
    barcode,
    capacityBytes: 1024 ** 3,
    worm: false,
    writeProtected: false,
    status: 'AVAILABLE',
    generation: 2,
    eodObjectId: 2,
    usedBytes: 8,
    filemarks: [1],
    dataObjects: [{ key: tapeDataObjectKey(barcode, 0, SHA), firstObjectId: 0, objectCount: 2, sizeBytes: 72, sha256: SHA, filemarks: [1], lastGeneration: 2 }],
  };
}

t.test('TapeObjectIndex.Corrupt', async (t) => {
  const index = tapeIndex('TAPE0004');
  t.same(parseTapeObjectIndex(encodeTapeObjectIndex(index), 'TAPE0004'), index);
  t.throws(() => parseTapeObjectIndex(encodeTapeObjectIndex(index), 'TAPE0005'), {
    code: 'STORE_CORRUPT',
    message: 'tapes/TAPE0005/index.json: barcode: must be TAPE0005',
  });
  const badSha = { ...index, dataObjects: [{ ...index.dataObjects[0]!, sha256: 'AB'.repeat(32) }] };
  t.throws(() => parseTapeObjectIndex(Buffer.from(JSON.stringify(badSha)), 'TAPE0004'), {
    code: 'STORE_CORRUPT',
    message: 'tapes/TAPE0004/index.json: dataObjects[0].sha256: must be 64 lower-case hex digits',
  });
  const otherKey = { ...index, dataObjects: [{ ...index.dataObjects[0]!, key: tapeDataObjectKey('TAPE0009', 0, SHA) }] };
  t.throws(() => parseTapeObjectIndex(Buffer.from(JSON.stringify(otherKey)), 'TAPE0004'), {
    code: 'STORE_CORRUPT',
    message: 'tapes/TAPE0004/index.json: dataObjects[0].key: is not the key of this tape, first object id and SHA-256',
  });
  t.throws(() => parseTapeObjectIndex(damaged(index, { format: 2 }), 'TAPE0004'), { code: 'STORE_CORRUPT', message: 'tapes/TAPE0004/index.json: format: Invalid input: expected 1' });

  const db = await withDb(t);
  await putUploadedTapeIndex(db, index);
  t.same(await getUploadedTapeIndex(db, 'TAPE0004'), index);
  await db.level.put(Buffer.concat([Buffer.of(TAPE_UPLOAD_KEY_SPACE), Buffer.from('TAPE0004')]), damaged(index, { eodObjectId: null }));
  await t.rejects(getUploadedTapeIndex(db, 'TAPE0004'), {
    code: 'STORE_CORRUPT',
    message: 'uploaded tape index record TAPE0004: eodObjectId: Invalid input: expected number, received null',
  });
});

t.test('TapeCatalogObject.Corrupt', async (t) => {
  const entry = { barcode: 'TAPE0006', status: 'AVAILABLE', sizeBytes: 1024 ** 3, worm: false, createdAt: new Date(0).toISOString(), address: 1024 };
  t.same(parseTapeCatalogObject(Buffer.from(JSON.stringify({ format: 1, tapes: [entry] }))).tapes, [entry]);
  t.throws(() => parseTapeCatalogObject(Buffer.from(JSON.stringify({ format: 1, tapes: [{ ...entry, worm: 'no' }] }))), {
    code: 'STORE_CORRUPT',
    message: 'tapes/catalog.json: tapes[0].worm: Invalid input: expected boolean, received string',
  });
  t.throws(() => parseTapeCatalogObject(Buffer.from('[]')), { code: 'STORE_CORRUPT', message: 'tapes/catalog.json: (whole record): Invalid input: expected object, received array' });
});

t.test('SnapshotManifest.Corrupt', async (t) => {
  const key = 'volumes/3/snapshots/snap-0123456789abcdef0.json';
  const manifest = { format: 1, volumeId: 3, snapId: 'snap-0123456789abcdef0', createdAt: new Date(0).toISOString(), sizeBytes: 1024 ** 3, blockSize: 512, chunkSizeBytes: 1024 * 1024, chunks: { '0': SHA, '2a': SHA }, chunkVolumes: { '2a': 1 } };
  t.same(parseSnapshotManifest(Buffer.from(JSON.stringify(manifest)), key), manifest);
  t.throws(() => parseSnapshotManifest(damaged(manifest, { chunks: { '0': SHA, zz: SHA } }), key), {
    code: 'STORE_CORRUPT',
    message: `${key}: chunks.zz: Invalid key in record: must be a lower-case hex chunk index`,
  });
  t.throws(() => parseSnapshotManifest(damaged(manifest, { chunkVolumes: { '2a': 'one' } }), key), {
    code: 'STORE_CORRUPT',
    message: `${key}: chunkVolumes.2a: Invalid input: expected number, received string`,
  });
});
