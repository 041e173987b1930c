import { mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { partSizeForArchive } from '../../src/cloud/archive-store.js';
import { LocalArchiveStore } from '../../src/cloud/local-archive-store.js';
import { archiveStoreContract } from './archive-store-contract.js';
import { patternBytes } from './object-store-contract.js';

const MIB = 1024 * 1024;

archiveStoreContract(t, 'LocalArchiveStore', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'shelfgate-archive-'));
  const store = new LocalArchiveStore({ directory, partSizeBytes: MIB, retrievalDelayMs: { Expedited: 0, Standard: 200, Bulk: 3_600_000 } });
  return {
    store,
    corrupt: async (archiveId, offsetBytes) => {
      const file = await open(store.archiveDataPath(archiveId), 'r+');
      const byte = Buffer.alloc(1);
      await file.read(byte, 0, 1, offsetBytes);
      byte[0] ^= 0xff;
      await file.write(byte, 0, 1, offsetBytes);
      await file.close();
    },
    close: () => rm(directory, { recursive: true, force: true }),
  };
});

t.test('LocalArchiveStore.Restart: jobs and delays survive a new instance; the clock decides', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'shelfgate-archive-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  let nowMs = 1_000_000;
  const config = { directory, partSizeBytes: MIB, retrievalDelayMs: { Standard: 5 * 3_600_000 }, nowMs: () => nowMs };
  const store = new LocalArchiveStore(config);
  const upload = await store.beginArchive('tape-LR0001', { description: 'restart' });
  await upload.uploadPart(0, patternBytes(100, 1));
  const { archiveId } = await upload.complete();
  const { jobId } = await store.requestRetrieval(archiveId, { tier: 'Standard' });
  const reopened = new LocalArchiveStore(config);
  t.match(await reopened.describeRetrieval(jobId), { status: 'InProgress' });
  nowMs += 5 * 3_600_000;
  t.match(await reopened.describeRetrieval(jobId), { status: 'Succeeded' });
  t.equal((await reopened.readRetrieved(jobId, { offsetBytes: 0, lengthBytes: 100 })).toString('hex'), patternBytes(100, 1).toString('hex'));
  t.same((await readdir(directory)).sort(), ['archives', 'jobs', 'uploads']);
  await store.deleteArchive(archiveId);
  t.match(await reopened.describeRetrieval(jobId), { status: 'Failed', completed: true });
});

t.test('ArchiveStore.PartSize: per-archive part size; 10,000 parts cover a 15 TiB tape', async (t) => {
  const TIB = 1024 * 1024 * MIB;
  t.equal(partSizeForArchive(2 * 1024 * MIB), 64 * MIB);
  t.equal(partSizeForArchive(15 * TIB), 2048 * MIB);
  const directory = await mkdtemp(join(tmpdir(), 'shelfgate-archive-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const store = new LocalArchiveStore({ directory, partSizeBytes: MIB });
  await t.rejects(store.beginArchive('tape-PS0001', { description: '', sizeBytes: 10_001 * MIB }), { code: 'CLOUD_INVALID_REQUEST' });
  await t.rejects(store.beginArchive('tape-PS0001', { description: '', partSizeBytes: 3 * MIB }), { code: 'CLOUD_INVALID_REQUEST' });
  const upload = await store.beginArchive('tape-PS0001', { description: '', partSizeBytes: 2 * MIB });
  t.equal(upload.partSizeBytes, 2 * MIB);
  await upload.uploadPart(0, patternBytes(2 * MIB, 3));
  await upload.uploadPart(1, patternBytes(5, 4));
  t.equal((await upload.complete()).sizeBytes, 2 * MIB + 5);
});
