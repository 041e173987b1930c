import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { openDatabase } from '../../src/store/database.js';
import { blockKey, decodeBlockKey, volumeBlockRange } from '../../src/store/keys.js';

t.test('GroupCommit.Coalesce: commits issued while a batch is in flight share the next batch', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'shelfgate-gc-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  let db = await openDatabase(dataDir);
  const before = db.groupCommit.batchCount;
  // The first commit starts a batch at once; the other 31 arrive while it is in flight.
  await Promise.all(
    Array.from({ length: 32 }, (_, i) =>
      db.groupCommit.commit([{ type: 'put', key: blockKey(7, i), value: Buffer.from([i]) }]),
    ),
  );
  t.equal(db.groupCommit.batchCount - before, 2);
  await db.close();
  await t.rejects(db.groupCommit.commit([{ type: 'del', key: blockKey(7, 0) }]), { code: 'STORE_CLOSED' });

  db = await openDatabase(dataDir);
  t.teardown(() => db.close());
  const values: string[] = [];
  for await (const [key, value] of db.level.iterator(volumeBlockRange(7))) {
    values.push(`${decodeBlockKey(key).chunkIndex}=${value.toString('hex')}`);
  }
  t.same(values, Array.from({ length: 32 }, (_, i) => `${i}=${i.toString(16).padStart(2, '0')}`));
});

t.test('Keys.Order: byte order is numeric order, volumes are disjoint ranges', async (t) => {
  t.equal(blockKey(1, 2 ** 33 + 5).toString('hex'), '01000000010000000200000005');
  t.ok(Buffer.compare(blockKey(1, 255), blockKey(1, 256)) < 0);
  t.ok(Buffer.compare(blockKey(1, 2 ** 40), blockKey(2, 0)) < 0);
  const range = volumeBlockRange(1);
  t.ok(Buffer.compare(range.gte, blockKey(1, 0)) <= 0 && Buffer.compare(blockKey(1, 2 ** 50), range.lt) < 0);
  t.ok(Buffer.compare(blockKey(2, 0), range.lt) >= 0);
  t.same(decodeBlockKey(blockKey(0xffffffff, 123)), { volumeId: 0xffffffff, chunkIndex: 123 });
  t.equal(volumeBlockRange(0xffffffff).lt.toString('hex'), '0200000000');
});
