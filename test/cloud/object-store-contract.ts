// The ObjectStore contract: one suite that every implementation passes (ARCHITECTURE.md "Every
// backend interface has one contract suite"). Each case gets a fresh subject from the factory.

import type { Test } from 'tap';
import { sha256Base64, sha256Hex } from '../../src/cloud/checksum.js';
import type { ObjectListEntry, ObjectStore } from '../../src/cloud/object-store.js';

export interface ContractSubject {
  store: ObjectStore;
  /** Changes the stored bytes of `key` behind the store's back, leaving the recorded checksum. */
  corrupt(key: string): Promise<void>;
  /** Makes the backend unreachable; the returned function brings it back. Absent when the
   *  backend cannot be taken away (the suite then skips the outage case). */
  outage?: () => Promise<() => Promise<void>>;
  /** A body size that takes the implementation's large-object path (multipart), a few MiB. */
  largeBodyBytes: number;
  /** Keys for the bulk listing case (more than one S3 page, i.e. > 1000). */
  bulkListKeys: number;
  /** Why the server does not honour create-only puts (If-None-Match: *), when it does not: the
   *  case then checks only that such a put still stores the object. */
  noConditionalWrites?: string;
  close(): Promise<void>;
}

/** Deterministic bytes (xorshift32) so failures reproduce. */
export function patternBytes(lengthBytes: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafe(lengthBytes);
  let x = seed | 0 || 1;
  for (let i = 0; i < lengthBytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}

async function collect(iterable: AsyncIterable<ObjectListEntry>): Promise<ObjectListEntry[]> {
  const out: ObjectListEntry[] = [];
  for await (const entry of iterable) {
    // lastModified is the server's clock: checked on its own (List.LastModified).
    out.push({ key: entry.key, sizeBytes: entry.sizeBytes });
  }
  return out;
}

async function keysOf(iterable: AsyncIterable<ObjectListEntry>): Promise<string[]> {
  return (await collect(iterable)).map((e) => e.key);
}

export function objectStoreContract(t: Test, name: string, factory: () => Promise<ContractSubject>): void {
  const cases: Array<[string, (t: Test, s: ContractSubject) => Promise<void>]> = [
    ['Put.RoundTrip', async (t, { store }) => {
      const body = patternBytes(4099, 1);
      const put = await store.put('blobs/one', body);
      t.equal(put.checksumSha256, sha256Base64(body));
      t.ok(put.etag.length > 0, 'etag');
      t.equal((await store.get('blobs/one')).toString('hex'), body.toString('hex'));
      const head = await store.head('blobs/one');
      t.match(head, { sizeBytes: 4099, checksumSha256: sha256Base64(body), metadata: {} });
    }],
    ['Put.Empty', async (t, { store }) => {
      await store.put('empty', Buffer.alloc(0));
      t.equal((await store.get('empty')).length, 0);
      t.equal((await store.get('empty', { offsetBytes: 0, lengthBytes: 10 })).length, 0);
      t.match(await store.head('empty'), { sizeBytes: 0, checksumSha256: sha256Base64(Buffer.alloc(0)) });
      t.same(await collect(store.list('')), [{ key: 'empty', sizeBytes: 0 }]);
    }],
    ['Put.Overwrite', async (t, { store }) => {
      const first = await store.put('k', Buffer.from('first version'), { metadata: { generation: '1' } });
      const second = await store.put('k', Buffer.from('second'), { metadata: { generation: '2' } });
      t.not(second.etag, first.etag);
      t.equal((await store.get('k')).toString(), 'second');
      t.match(await store.head('k'), { sizeBytes: 6, etag: second.etag, checksumSha256: second.checksumSha256, metadata: { generation: '2' } });
      t.same(await collect(store.list('')), [{ key: 'k', sizeBytes: 6 }]);
    }],
    ['Put.CreateOnly', async (t, { store, noConditionalWrites }) => {
      await store.put('once', Buffer.from('first'), { createOnly: true });
      t.equal((await store.get('once')).toString(), 'first');
      if (noConditionalWrites !== undefined) {
        t.comment(`create-only not enforced by this server: ${noConditionalWrites}`);
        return;
      }
      await t.rejects(store.put('once', Buffer.from('second'), { createOnly: true }), { name: 'CloudError', code: 'CLOUD_EXISTS', transient: false });
      t.equal((await store.get('once')).toString(), 'first', 'the existing object is untouched');
      await store.put('once', Buffer.from('third'));
      t.equal((await store.get('once')).toString(), 'third', 'a plain put still replaces');
    }],
    ['List.LastModified', async (t, { store }) => {
      const before = Date.now();
      await store.put('dated', Buffer.from('x'));
      const entries: ObjectListEntry[] = [];
      for await (const entry of store.list('dated')) entries.push(entry);
      t.equal(entries.length, 1);
      t.ok(entries[0]!.lastModified instanceof Date, 'lastModified is a Date');
      // Second resolution on S3 (and clocks of two machines): only a coarse bound.
      t.ok(entries[0]!.lastModified!.getTime() > before - 3_600_000, 'lastModified is recent');
    }],
    ['Put.Metadata', async (t, { store }) => {
      const metadata = { 'volume-id': '7', 'chunk-index': '0000002a', note: 'plain ascii, spaces ok' };
      await store.put('m', Buffer.from('x'), { metadata });
      t.same((await store.head('m'))?.metadata, metadata);
      const invalid: Array<Record<string, string>> = [{ Upper: 'x' }, { sha256: 'reserved' }, { 'bad key': 'x' }, { k: 'caf\u00e9' }, { k: 'a\nb' }];
      for (const bad of invalid) {
        await t.rejects(store.put('m2', Buffer.from('x'), { metadata: bad }), { code: 'CLOUD_INVALID_REQUEST', transient: false }, JSON.stringify(bad));
      }
      t.equal(await store.head('m2'), null);
    }],
    ['Put.SuppliedChecksum', async (t, { store }) => {
      const body = patternBytes(1000, 2);
      t.equal((await store.put('c', body, { checksumSha256: sha256Base64(body) })).checksumSha256, sha256Base64(body));
      await t.rejects(store.put('c2', body, { checksumSha256: sha256Base64(Buffer.from('other')) }), { code: 'CLOUD_INTEGRITY' });
      await t.rejects(store.put('c2', body, { checksumSha256: 'not-a-checksum' }), { code: 'CLOUD_INVALID_REQUEST' });
      t.equal(await store.head('c2'), null, 'nothing stored under a wrong checksum');
    }],
    ['Get.Range', async (t, { store }) => {
      const body = patternBytes(10_000, 3);
      await store.put('r', body);
      const hex = (offsetBytes: number, lengthBytes: number): Promise<string> =>
        store.get('r', { offsetBytes, lengthBytes }).then((b) => b.toString('hex'));
      t.equal(await hex(0, 16), body.subarray(0, 16).toString('hex'));
      t.equal(await hex(4321, 1000), body.subarray(4321, 5321).toString('hex'));
      t.equal(await hex(9990, 100), body.subarray(9990).toString('hex'), 'clipped at the end');
      t.equal(await hex(9999, 1), body.subarray(9999).toString('hex'));
      t.equal(await hex(10_000, 10), '', 'at the end: empty');
      t.equal(await hex(20_000, 10), '', 'past the end: empty');
      t.equal(await hex(5, 0), '', 'zero length');
      await t.rejects(store.get('r', { offsetBytes: -1, lengthBytes: 1 }), { code: 'CLOUD_INVALID_REQUEST' });
      await t.rejects(store.get('missing', { offsetBytes: 0, lengthBytes: 10 }), { code: 'CLOUD_NOT_FOUND' });
      await t.rejects(store.get('missing', { offsetBytes: 0, lengthBytes: 0 }), { code: 'CLOUD_NOT_FOUND' });
    }],
    ['Get.NotFound', async (t, { store }) => {
      await t.rejects(store.get('no/such/key'), { name: 'CloudError', code: 'CLOUD_NOT_FOUND', transient: false });
      t.equal(await store.head('no/such/key'), null);
      await store.delete('no/such/key');
      await store.put('no/such', Buffer.from('parent-like key'));
      await t.rejects(store.get('no/such/key'), { code: 'CLOUD_NOT_FOUND' });
      t.equal(await store.head('no/such/key'), null);
    }],
    ['Keys.Special', async (t, { store }) => {
      const keys = [
        'a',
        'a/b',
        'a/b/c',
        'dir with space/\u00fcn\u00efc\u00f8d\u00e9 \u2713/x+y=z&w%20;$@,!~*\'()',
        'tapes/ABC123L5/data/00000001',
        'volumes/00000007/chunks/0000002a/' + sha256Hex(Buffer.from('chunk')),
        'dots.in.name/.hidden/x.y',
      ];
      for (const [i, key] of keys.entries()) {
        await store.put(key, Buffer.from(`body ${i}`));
      }
      for (const [i, key] of keys.entries()) {
        t.equal((await store.get(key)).toString(), `body ${i}`, key);
      }
      t.same(await keysOf(store.list('')), [...keys].sort(byteOrder));
      for (const bad of ['', 'a\nb', 'nul\u0000', 'x'.repeat(1025), '\ud800lone']) {
        await t.rejects(store.put(bad, Buffer.from('x')), { code: 'CLOUD_INVALID_REQUEST' }, JSON.stringify(bad.slice(0, 20)));
      }
    }],
    ['List.PrefixAndOrder', async (t, { store }) => {
      // UTF-8 byte order: '!' 0x21 < '/' 0x2f < '0' 0x30 < 'z' < '~' 0x7e < 'é' 0xc3a9.
      const keys = ['k!', 'k/x', 'k/y/z', 'k0', 'kz', 'k~', 'k\u00e9', 'l', 'j/k'];
      for (const key of keys) {
        await store.put(key, Buffer.from(key));
      }
      t.same(await keysOf(store.list('k')), ['k!', 'k/x', 'k/y/z', 'k0', 'kz', 'k~', 'k\u00e9']);
      t.same(await keysOf(store.list('k/')), ['k/x', 'k/y/z']);
      t.same(await keysOf(store.list('k/y')), ['k/y/z']);
      t.same(await keysOf(store.list('k/y/')), ['k/y/z']);
      t.same(await keysOf(store.list('nothing/')), []);
      t.same(await collect(store.list('k/')), [
        { key: 'k/x', sizeBytes: 3 },
        { key: 'k/y/z', sizeBytes: 5 },
      ]);
      t.same(await keysOf(store.list('')), [...keys].sort(byteOrder));
    }],
    ['List.StartAfterLimit', async (t, { store }) => {
      const keys = Array.from({ length: 25 }, (_, i) => `p/${i.toString(16).padStart(4, '0')}`);
      for (const key of keys) {
        await store.put(key, Buffer.from([1]));
      }
      await store.put('p0', Buffer.from([2]));
      t.same(await keysOf(store.list('p/')), keys);
      t.same(await keysOf(store.list('p/', { limit: 10 })), keys.slice(0, 10));
      t.same(await keysOf(store.list('p/', { startAfter: keys[9] })), keys.slice(10));
      t.same(await keysOf(store.list('p/', { startAfter: 'p/0009x', limit: 3 })), keys.slice(10, 13));
      t.same(await keysOf(store.list('p/', { startAfter: 'p/' })), keys);
      t.same(await keysOf(store.list('p', { startAfter: 'p/zzz' })), ['p0']);
      t.same(await keysOf(store.list('p/', { limit: 0 })), []);
    }],
    ['List.ManyPages', async (t, { store, bulkListKeys }) => {
      const keys = Array.from({ length: bulkListKeys }, (_, i) => `bulk/${i.toString().padStart(5, '0')}`);
      for (let i = 0; i < keys.length; i += 50) {
        await Promise.all(keys.slice(i, i + 50).map((key) => store.put(key, Buffer.alloc(0))));
      }
      const listed = await keysOf(store.list('bulk/'));
      t.equal(listed.length, keys.length);
      t.same(listed, keys);
      t.same(await keysOf(store.list('bulk/', { startAfter: keys[999], limit: 5 })), keys.slice(1000, 1005));
      await store.deleteMany(keys);
      t.same(await keysOf(store.list('bulk/')), []);
    }],
    ['Delete.Idempotent', async (t, { store }) => {
      await store.put('d/1', Buffer.from('1'));
      await store.put('d/2', Buffer.from('2'));
      await store.put('d/3/x', Buffer.from('3'));
      await store.put('e', Buffer.from('e'));
      await store.delete('d/1');
      await store.delete('d/1');
      t.equal(await store.head('d/1'), null);
      await store.deleteMany(['d/2', 'd/3/x', 'd/missing']);
      await store.deleteMany([]);
      t.same(await keysOf(store.list('')), ['e']);
      await store.put('d/3/x', Buffer.from('again'));
      t.equal((await store.get('d/3/x')).toString(), 'again', 'a deleted path can be written again');
    }],
    ['Put.Large', async (t, { store, largeBodyBytes }) => {
      const body = patternBytes(largeBodyBytes, 4);
      const put = await store.put('large/object', body, { checksumSha256: sha256Base64(body), metadata: { kind: 'large' } });
      t.equal(put.checksumSha256, sha256Base64(body));
      const back = await store.get('large/object');
      t.equal(sha256Hex(back), sha256Hex(body), 'same bytes');
      t.match(await store.head('large/object'), { sizeBytes: largeBodyBytes, checksumSha256: sha256Base64(body), metadata: { kind: 'large' } });
      const middle = Math.floor(largeBodyBytes / 2);
      const slice = await store.get('large/object', { offsetBytes: middle - 1000, lengthBytes: 2000 });
      t.equal(slice.toString('hex'), body.subarray(middle - 1000, middle + 1000).toString('hex'));
      t.same(await collect(store.list('large/')), [{ key: 'large/object', sizeBytes: largeBodyBytes }]);
    }],
    ['Get.IntegrityFailure', async (t, s) => {
      const body = patternBytes(5000, 5);
      await s.store.put('victim', body);
      await s.corrupt('victim');
      await t.rejects(s.store.get('victim'), { name: 'CloudError', code: 'CLOUD_INTEGRITY', transient: false });
      await s.store.put('victim', body);
      t.equal(sha256Hex(await s.store.get('victim')), sha256Hex(body), 'a fresh put heals it');
    }],
    ['Outage.Transient', async (t, s) => {
      if (s.outage === undefined) {
        t.pass('outage', { skip: 'this backend cannot be taken away' });
        return;
      }
      await s.store.put('before', Buffer.from('before'));
      const restore = await s.outage();
      const transient = { name: 'CloudError', code: 'CLOUD_UNAVAILABLE', transient: true };
      await t.rejects(s.store.put('during', Buffer.from('during')), transient, 'put');
      await t.rejects(s.store.get('before'), transient, 'get');
      await t.rejects(s.store.head('before'), transient, 'head is not "missing" during an outage');
      await t.rejects(s.store.delete('before'), transient, 'delete');
      await t.rejects(keysOf(s.store.list('')), transient, 'list');
      await restore();
      await s.store.put('during', Buffer.from('during'));
      t.same(await keysOf(s.store.list('')), ['before', 'during'], 'catches up once the backend is back');
    }],
  ];

  t.test(name, async (t) => {
    for (const [caseName, run] of cases) {
      await t.test(`ObjectStore.${caseName}`, async (t) => {
        const subject = await factory();
        t.teardown(() => subject.close());
        await run(t, subject);
      });
    }
  });
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
