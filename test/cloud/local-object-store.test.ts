import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { LocalObjectStore } from '../../src/cloud/local-object-store.js';
import { objectStoreContract } from './object-store-contract.js';

async function openTempStore(t: { teardown(fn: () => Promise<void>): void }): Promise<LocalObjectStore> {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-objects-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return LocalObjectStore.open(dir);
}

objectStoreContract(t, 'LocalObjectStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-objects-'));
  const store = await LocalObjectStore.open(dir);
  return {
    store,
    corrupt: async (key) => {
      const path = join(dir, ...key.split('/').slice(0, -1).map((s) => `${s}.d`), `${key.split('/').pop()}.obj`);
      const bytes = await readFile(path);
      bytes[bytes.length - 1] ^= 0xff;
      await writeFile(path, bytes);
    },
    largeBodyBytes: 3 * 1024 * 1024 + 12345,
    bulkListKeys: 1100,
    close: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

t.test('LocalObjectStore.Layout: encoded paths, one file per object, header then body', async (t) => {
  const store = await openTempStore(t);
  await store.put('volumes/7/chunks/..', Buffer.from('abc'), { metadata: { k: 'v' } });
  t.same(await readdir(store.rootDir), ['.tmp', 'volumes.d']);
  const file = join(store.rootDir, 'volumes.d', '7.d', 'chunks.d', '%2E%2E.obj');
  const bytes = await readFile(file);
  const headerLength = bytes.readUInt32BE(4);
  t.equal(bytes.subarray(0, 8).toString('hex'), '53474f31' + headerLength.toString(16).padStart(8, '0'));
  t.same(JSON.parse(bytes.subarray(8, 8 + headerLength).toString()), {
    sizeBytes: 3,
    sha256: 'ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=',
    metadata: { k: 'v' },
  });
  t.equal(bytes.subarray(8 + headerLength).toString('hex'), '616263');
  await store.delete('volumes/7/chunks/..');
  t.same(await readdir(store.rootDir), ['.tmp'], 'empty directories pruned');
});

t.test('LocalObjectStore.Reopen: objects persist, crash leftovers in .tmp are removed', async (t) => {
  const store = await openTempStore(t);
  await store.put('x/y', Buffer.from('persisted'));
  await writeFile(join(store.rootDir, '.tmp', 'half-written'), 'junk');
  const reopened = await LocalObjectStore.open(store.rootDir);
  t.equal((await reopened.get('x/y')).toString(), 'persisted');
  t.same(await readdir(join(store.rootDir, '.tmp')), []);
  t.same(await reopened.head('x/y').then((h) => h?.sizeBytes), 9);
});

t.test('LocalObjectStore.DamagedHeader: a truncated or foreign file is CLOUD_INTEGRITY', async (t) => {
  const store = await openTempStore(t);
  await store.put('t', Buffer.from('0123456789'));
  const file = join(store.rootDir, 't.obj');
  const bytes = await readFile(file);
  await writeFile(file, bytes.subarray(0, bytes.length - 3));
  await t.rejects(store.get('t'), { code: 'CLOUD_INTEGRITY' });
  await writeFile(file, 'not an object file at all');
  await t.rejects(store.head('t'), { code: 'CLOUD_INTEGRITY' });
});

t.test('LocalObjectStore.ConcurrentPutDelete: renames survive directory pruning', async (t) => {
  const store = await openTempStore(t);
  await Promise.all(
    Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? store.put(`race/dir/${i}`, Buffer.from([i])) : store.delete(`race/dir/${i - 1}`))),
  );
  for await (const { key } of store.list('race/')) {
    t.equal((await store.get(key)).length, 1, key);
  }
});
