// EncryptingObjectStore over the real local store and s3rver: round trips, nothing of the plain
// text or its SHA-256 in the bucket, tampering behind the store's back (a flipped byte, a
// truncation, two objects swapped, an object replaced by plain text) failing with the object's
// name, the key file, rotation without rewriting data, and data written before encryption.

import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { sha256Base64, sha256Hex } from '../../src/cloud/checksum.js';
import { EncryptingObjectStore } from '../../src/cloud/encrypting-object-store.js';
import { LocalKeyProvider } from '../../src/cloud/local-key-provider.js';
import { LocalObjectStore } from '../../src/cloud/local-object-store.js';
import type { ObjectStore } from '../../src/cloud/object-store.js';
import { S3ObjectStore } from '../../src/cloud/s3-object-store.js';
import { pattern } from '../helpers/pattern.js';
import { S3RVER_CREDENTIALS, S3rverEndpoint } from '../helpers/s3rver.js';

type Teardown = { teardown(fn: () => Promise<void> | void): void };

const MIB = 1024 * 1024;
/** A distinctive plain text: a marker repeated through a 1 MiB chunk. */
const MARKER = Buffer.from('SHELFGATE-PLAINTEXT-MARKER-7f3a');
const chunkBody = (): Buffer => Buffer.alloc(MIB, MARKER);
const chunkKey = (body: Buffer): string => `volumes/7/chunks/0000002a/${sha256Hex(body)}`;

async function tempDir(t: Teardown, name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `shelfgate-${name}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Every file under dir, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(join(entry.parentPath, entry.name));
  }
  return out;
}

/** Searches every byte and every path under dir for each needle; answers what was found. */
async function grep(dir: string, needles: Buffer[]): Promise<string[]> {
  const found: string[] = [];
  for (const file of await filesUnder(dir)) {
    const bytes = await readFile(file);
    for (const needle of needles) {
      if (bytes.includes(needle) || file.includes(needle.toString('latin1'))) found.push(`${file}: ${needle.toString('latin1').slice(0, 40)}`);
    }
  }
  return found;
}

async function openLocal(t: Teardown): Promise<{ inner: LocalObjectStore; store: EncryptingObjectStore; keyFile: string; warnings: string[] }> {
  const objects = await tempDir(t, 'objects');
  const keys = await tempDir(t, 'keys');
  const keyFile = join(keys, 'shelfgate.key');
  const warnings: string[] = [];
  const provider = await LocalKeyProvider.open(keyFile, { create: true, warn: (m) => warnings.push(m) });
  const inner = await LocalObjectStore.open(objects);
  const store = await EncryptingObjectStore.open({ inner, provider });
  t.teardown(() => store.close());
  return { inner, store, keyFile, warnings };
}

t.test('round trip; the bucket holds neither the plain text nor its SHA-256', async (t) => {
  const { inner, store, keyFile, warnings } = await openLocal(t);
  t.match(warnings[0], /BACK IT UP/, 'creating the key file warns that losing it loses the data');
  t.equal((await stat(keyFile)).mode & 0o777, 0o600, 'key file is 0600');
  const body = chunkBody();
  const key = chunkKey(body);
  const put = await store.put(key, body, { checksumSha256: sha256Base64(body), metadata: { format: '1' } });
  t.equal(put.checksumSha256, sha256Base64(body));
  t.ok((await store.get(key)).equals(body), 'reads back');
  t.ok((await store.get(key, { offsetBytes: MIB - 10, lengthBytes: 100 })).equals(body.subarray(MIB - 10)), 'range clipped at the end');
  t.match(await store.head(key), { sizeBytes: MIB, metadata: { format: '1' } });
  t.equal(await store.head(`volumes/7/chunks/0000002a/${sha256Hex(Buffer.from('other'))}`), null);
  await store.put('volumes/7/head.json', Buffer.from(JSON.stringify({ chunks: { '2a': sha256Hex(body) } })));

  const listed = [];
  for await (const entry of store.list('volumes/')) listed.push(entry);
  t.equal(listed.length, 2);
  t.notOk(listed.some((e) => e.key.includes(sha256Hex(body))), 'listed names hide the content hash');
  t.equal(await inner.head(key), null, 'nothing stored under the plain-hash name');
  t.ok(await inner.head(store.storedKey(key)), 'stored under the keyed hash');

  t.same(await grep(inner.rootDir, [MARKER, Buffer.from(sha256Hex(body)), Buffer.from(sha256Base64(body)), Buffer.from('"2a"')]), [], 'no plain text, no plain hash');

  await t.rejects(store.put('v', body, { checksumSha256: sha256Base64(Buffer.from('x')) }), { code: 'CLOUD_INTEGRITY' }, 'caller checksum checked on the plain body');
  await t.rejects(store.put('encryption/naming-key', body), { code: 'CLOUD_INVALID_REQUEST' }, 'key objects are out of reach');
  await store.delete(key);
  t.equal(await store.head(key), null);
  await t.rejects(store.get(key), { code: 'CLOUD_NOT_FOUND' });
});

t.test('tampering is an error naming the object, never data', async (t) => {
  const { inner, store } = await openLocal(t);
  const a = chunkBody();
  const b = pattern(MIB, 9);
  const keyA = chunkKey(a);
  const keyB = chunkKey(b);
  await store.put(keyA, a);
  await store.put(keyB, b);
  await store.put('tapes/catalog.json', Buffer.from('{"tapes":[]}'));
  const sealedA = await inner.get(store.storedKey(keyA));
  const sealedB = await inner.get(store.storedKey(keyB));
  const authFailure = (key: string) => ({ code: 'CLOUD_INTEGRITY', transient: false, message: `object ${JSON.stringify(key)} failed authentication: it was changed, truncated or replaced by another object after it was written` });

  // Someone with write access to the bucket (and so able to recompute the store's SHA-256):
  for (const offset of [0 + 8, 70, sealedA.length - 1]) {
    const flipped = Buffer.from(sealedA);
    flipped[offset] ^= 0x01;
    await inner.put(store.storedKey(keyA), flipped);
    await t.rejects(store.get(keyA), authFailure(keyA), `byte ${offset} flipped`);
  }
  await inner.put(store.storedKey(keyA), sealedA.subarray(0, sealedA.length - 1));
  await t.rejects(store.get(keyA), authFailure(keyA), 'truncated by one byte');
  await inner.put(store.storedKey(keyA), sealedA.subarray(0, 30));
  await t.rejects(store.get(keyA), authFailure(keyA), 'truncated into the header');
  await inner.put(store.storedKey(keyA), sealedB);
  await inner.put(store.storedKey(keyB), sealedA);
  await t.rejects(store.get(keyA), authFailure(keyA), 'A holds B');
  await t.rejects(store.get(keyB), authFailure(keyB), 'B holds A');
  await inner.put('tapes/catalog.json', Buffer.from('{"tapes":["EVIL"]}'));
  await t.rejects(store.get('tapes/catalog.json'), { code: 'CLOUD_INTEGRITY', message: /object "tapes\/catalog.json" is not encrypted/ }, 'replaced by plain text');

  // A byte flipped on disk without updating the store's own checksum: the local store catches it,
  // and the error names the object.
  await inner.put(store.storedKey(keyA), sealedA);
  t.ok((await store.get(keyA)).equals(a), 'restored object reads again');
  const path = join(inner.rootDir, 'volumes.d', '7.d', 'chunks.d', '0000002a.d', `${store.storedKey(keyA).split('/').pop()}.obj`);
  const file = await readFile(path);
  file[file.length - 100] ^= 0x80;
  await writeFile(path, file);
  await t.rejects(store.get(keyA), { code: 'CLOUD_INTEGRITY', message: new RegExp(`^object "${keyA}" \\(stored as`) }, 'flipped on disk');
});

t.test('the key file: reopened, missing, another key', async (t) => {
  const { inner, store, keyFile } = await openLocal(t);
  await store.put('volumes/1/head.json', Buffer.from('{"v":1}'));

  const again = await EncryptingObjectStore.open({ inner, provider: await LocalKeyProvider.open(keyFile, { create: false }) });
  t.equal((await again.get('volumes/1/head.json')).toString(), '{"v":1}', 'a new store with the same key file reads the data');

  const otherDir = await tempDir(t, 'other-key');
  await t.rejects(LocalKeyProvider.open(join(otherDir, 'missing.key'), { create: false }), { code: 'CLOUD_KEY', message: /restore it from your backup/ });
  const otherKey = await LocalKeyProvider.open(join(otherDir, 'other.key'), { create: true });
  await t.rejects(EncryptingObjectStore.open({ inner, provider: otherKey }), {
    code: 'CLOUD_KEY',
    message: /encrypted under a key this gateway does not have .*not in the key file .*configure the key it was written with/,
  });
});

t.test('rotation re-wraps the data keys and leaves the data objects as they were', async (t) => {
  const { inner, store, keyFile } = await openLocal(t);
  const body = pattern(300_000, 3);
  await store.put(chunkKey(body), body);
  const oldKeyFile = join(await tempDir(t, 'old-key'), 'old.key');
  await writeFile(oldKeyFile, await readFile(keyFile), { mode: 0o600 });
  const dataBefore = await inner.get(store.storedKey(chunkKey(body)));

  const provider = await LocalKeyProvider.open(keyFile, { create: false });
  const oldId = provider.keyId;
  const newId = await provider.rotate();
  t.not(newId, oldId);
  const rotating = await EncryptingObjectStore.open({ inner, provider });
  const rewrapped = await rotating.keys.rewrapAll();
  t.equal(rewrapped, 2, 'the naming key and the data key of the one group written');
  t.same(await provider.retireOldKeys(), [oldId]);
  t.notOk((await readFile(keyFile, 'utf8')).includes(oldId), 'old key gone from the file');

  t.ok((await inner.get(store.storedKey(chunkKey(body)))).equals(dataBefore), 'data object not rewritten');
  const fresh = await EncryptingObjectStore.open({ inner, provider: await LocalKeyProvider.open(keyFile, { create: false }) });
  t.ok((await fresh.get(chunkKey(body))).equals(body), 'reads with only the new key');
  await t.rejects(EncryptingObjectStore.open({ inner, provider: await LocalKeyProvider.open(oldKeyFile, { create: false }) }), { code: 'CLOUD_KEY' }, 'the retired key no longer opens the bucket');
});

t.test('data written before encryption: read only when allowed', async (t) => {
  const objects = await tempDir(t, 'objects');
  const keyFile = join(await tempDir(t, 'keys'), 'k.key');
  const inner = await LocalObjectStore.open(objects);
  const body = pattern(4096, 5);
  await inner.put(chunkKey(body), body);
  await inner.put('volumes/7/head.json', Buffer.from('{"plain":true}'));
  const provider = await LocalKeyProvider.open(keyFile, { create: true });
  const strict = await EncryptingObjectStore.open({ inner, provider });
  await t.rejects(strict.get('volumes/7/head.json'), { code: 'CLOUD_INTEGRITY', message: /is not encrypted.*allowUnencryptedReads/ });
  await t.rejects(strict.get(chunkKey(body)), { code: 'CLOUD_NOT_FOUND' });
  const warnings: string[] = [];
  const lenient = await EncryptingObjectStore.open({ inner, provider, allowUnencryptedReads: true, warn: (m) => warnings.push(m) });
  t.equal((await lenient.get('volumes/7/head.json')).toString(), '{"plain":true}');
  t.ok((await lenient.get(chunkKey(body))).equals(body), 'a plain chunk under its plain-hash name');
  t.equal(warnings.length, 1, 'warned once');
  await lenient.put('volumes/7/head.json', Buffer.from('{"plain":false}'));
  t.not((await inner.get('volumes/7/head.json')).subarray(0, 4).toString(), '{"pl', 'rewritten encrypted');
});

t.test('over S3 (s3rver): round trip, nothing plain in the bucket, tampered object refused', async (t) => {
  const endpoint = await S3rverEndpoint.start();
  t.teardown(() => endpoint.close());
  const s3 = (): ObjectStore =>
    new S3ObjectStore({ bucket: endpoint.bucket, endpoint: endpoint.url, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_CREDENTIALS, multipartThresholdBytes: 2 * MIB, partSizeBytes: MIB });
  const keyFile = join(await tempDir(t, 'keys'), 'k.key');
  const provider = await LocalKeyProvider.open(keyFile, { create: true });
  const inner = s3();
  const store = await EncryptingObjectStore.open({ inner, provider });
  t.teardown(() => store.close());
  const small = chunkBody();
  const large = Buffer.concat([chunkBody(), chunkBody(), chunkBody()]); // multipart
  await store.put(chunkKey(small), small);
  await store.put(`tapes/T0001/data/000000000000-${sha256Hex(large)}`, large);
  t.ok((await store.get(chunkKey(small))).equals(small));
  t.ok((await store.get(`tapes/T0001/data/000000000000-${sha256Hex(large)}`)).equals(large));
  t.same(await grep(endpoint.directory, [MARKER, Buffer.from(sha256Hex(small)), Buffer.from(sha256Hex(large))]), [], 'nothing plain in s3rver');

  const sealed = await inner.get(store.storedKey(chunkKey(small)));
  sealed[sealed.length >> 1] ^= 0x04;
  await inner.put(store.storedKey(chunkKey(small)), sealed);
  await t.rejects(store.get(chunkKey(small)), { code: 'CLOUD_INTEGRITY', message: new RegExp(`^object "${chunkKey(small)}" failed authentication`) });
});
