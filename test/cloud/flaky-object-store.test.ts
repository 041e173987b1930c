import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CloudError } from '../../src/cloud/cloud-error.js';
import { LocalObjectStore } from '../../src/cloud/local-object-store.js';
import { withRetry } from '../../src/cloud/retry.js';
import { FlakyObjectStore } from './flaky-object-store.js';
import { objectStoreContract } from './object-store-contract.js';

objectStoreContract(t, 'FlakyObjectStore(LocalObjectStore)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-flaky-'));
  const store = new FlakyObjectStore(await LocalObjectStore.open(dir));
  return {
    store,
    corrupt: async (key) => {
      const path = join(dir, `${key}.obj`);
      const bytes = await readFile(path);
      bytes[bytes.length - 1] ^= 0xff;
      await writeFile(path, bytes);
    },
    outage: async () => {
      store.startOutage();
      return async () => store.endOutage();
    },
    largeBodyBytes: 2 * 1024 * 1024 + 1,
    bulkListKeys: 1100,
    close: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

t.test('FlakyObjectStore.FailNext: transient failures that a retry rides out', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-flaky-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = new FlakyObjectStore(await LocalObjectStore.open(dir));
  store.failNext(2);
  const policy = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 };
  let attempts = 0;
  await withRetry(policy, () => {
    attempts++;
    return store.put('k', Buffer.from('v'));
  });
  t.equal(attempts, 3);
  t.same({ passed: store.passedCalls, failed: store.failedCalls }, { passed: 1, failed: 2 });
  store.startOutage(new CloudError('CLOUD_AUTH', 'injected: credentials revoked'));
  await t.rejects(
    withRetry(policy, () => store.get('k')),
    { code: 'CLOUD_AUTH', transient: false },
  );
  t.equal(store.failedCalls, 3, 'a permanent error is not retried');
});
