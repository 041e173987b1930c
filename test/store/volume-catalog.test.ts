// The volume catalog: ids are never reused, so a new volume cannot see a deleted one's blocks,
// upload-queue entries or objects (all keyed by id).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { openDatabase } from '../../src/store/database.js';
import { allocateVolumeId, deleteVolume, putVolume, type VolumeRecord } from '../../src/store/volume-catalog.js';

function record(id: number, name: string): VolumeRecord {
  return {
    id,
    name,
    type: 'stored',
    sizeBytes: 1024 ** 3,
    blockSize: 512,
    chunkSizeBytes: 16384,
    createdAt: new Date(0).toISOString(),
    serial: `vol-${id}`,
    naaId: '6000000000000000',
  };
}

t.test('VolumeCatalog.IdsNeverReused', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'shelfgate-catalog-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  let db = await openDatabase(dataDir);
  const first = await allocateVolumeId(db);
  await putVolume(db, record(first, 'a'));
  const second = await allocateVolumeId(db);
  await putVolume(db, record(second, 'b'));
  t.not(first, second);
  await deleteVolume(db, record(second, 'b'));
  await db.close();
  db = await openDatabase(dataDir);
  t.teardown(() => db.close());
  const third = await allocateVolumeId(db);
  t.ok(third > second, `after deleting volume ${second} and a restart, the next id is ${third}`);
});
