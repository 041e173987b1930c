// Client-side encryption end to end (issue 17, docs/encryption.md): gateway A, with a local key
// file and s3rver as its bucket, gets a distinctive pattern written through iSCSI to a cached
// volume and to a tape; once everything is uploaded, no object of the bucket holds the pattern and
// no object name holds a plain SHA-256 of the data. The volume reads back through A from the
// bucket (its cache is smaller than the data); a chunk object tampered with in the bucket reads as
// MEDIUM ERROR, UNRECOVERED READ ERROR (03/11/00), never as data. Gateway B, with an empty data
// directory and the key file, rebuilds the tape from the bucket and reads it back; gateway C,
// without the key, refuses to start and says which key it needs.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';

const tap = t;
import { EncryptingObjectStore } from '../../src/cloud/encrypting-object-store.js';
import { LocalKeyProvider } from '../../src/cloud/local-key-provider.js';
import { S3ObjectStore } from '../../src/cloud/s3-object-store.js';
import { decodeSense } from '../helpers/expect-sense.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { pollUntil, restClient } from '../helpers/rest-client.js';
import type { ObjectStore } from '../../src/cloud/object-store.js';
import { PrefixedObjectStore } from '../../src/cloud/prefixed-object-store.js';
import { gatewayPrefix, listGatewayIds } from '../../src/store/gateway-layout.js';
import { read16, write16 } from '../helpers/initiator.js';
import { S3RVER_CREDENTIALS, S3rverEndpoint } from '../helpers/s3rver.js';
import { loginTarget, moveMedium, mustBeGood, read6, rewind, write6, writeFilemarks6 } from '../helpers/tape-commands.js';
import { volumeFromObjects } from '../helpers/volume-from-objects.js';

const INITIATOR = 'iqn.2026-11.test:encryption';
const MIB = 1024 * 1024;
const BLOCK = 512;
const VOLUME = 'secret';
const VOLUME_ID = 1;
const CHUNKS = 12;
const SLOT = 2;
const DRIVE = 10001;
const CHECK_CONDITION = 0x02;
const TAPE_RECORDS = 20;
const CONVERGE_TIMEOUT_MS = 120_000;
/** The distinctive plain text: every block of the volume and of every tape record starts with it. */
const MARKER = 'SHELFGATE-ENCRYPTION-E2E-MARKER';
const S3_KEYS = { accessKeyId: S3RVER_CREDENTIALS.accessKeyId, secretAccessKey: S3RVER_CREDENTIALS.secretAccessKey };

function chunk(index: number): Buffer {
  return Buffer.alloc(MIB, `${MARKER}:chunk-${index}:`);
}
function tapeRecord(index: number): Buffer {
  return Buffer.alloc(64 * 1024 + index * 512, `${MARKER}:record-${index}:`);
}
const sha256Hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const work = await mkdtemp(join(tmpdir(), 'shelfgate-encryption-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const endpoint = await S3rverEndpoint.start();
t.teardown(() => endpoint.close());
const keyFile = join(work, 'shelfgate.key');

async function writeConfig(name: string, keyFilePath: string): Promise<string> {
  const file = join(work, `${name}.json`);
  await writeFile(
    file,
    JSON.stringify({
      objectStore: { type: 's3', bucket: endpoint.bucket, endpoint: endpoint.url, region: 'us-east-1', forcePathStyle: true, ...S3_KEYS },
      encryption: { keySource: 'local', keyFile: keyFilePath },
      cache: { sizeBytes: 4 * MIB },
      volumes: [{ name: VOLUME, type: 'cached', size: '1GiB' }],
    }),
  );
  return file;
}
const configFile = await writeConfig('gateway', keyFile);

/** The bucket as the test sees it: decrypted with the same key file (opened once A created it). */
let bucket: EncryptingObjectStore | null = null;
let inner: S3ObjectStore | null = null;
async function openBucket(): Promise<EncryptingObjectStore> {
  inner ??= new S3ObjectStore({ bucket: endpoint.bucket, endpoint: endpoint.url, region: 'us-east-1', forcePathStyle: true, credentials: { ...S3_KEYS } });
  bucket ??= await EncryptingObjectStore.open({ inner, provider: await LocalKeyProvider.open(keyFile, { create: false }) });
  return bucket;
}
t.teardown(() => bucket?.close());

async function waitFor<T>(what: string, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + CONVERGE_TIMEOUT_MS;
  let lastError: unknown = null;
  for (;;) {
    const value = await probe().catch((err: unknown) => {
      lastError = err;
      return null;
    });
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last error: ${String(lastError)})`);
    await sleep(200);
  }
}

let a: GatewayProcess;
let barcode = '';
const tapeObjectHashes: string[] = [];

t.test('Encryption.WriteVolumeAndTapeThroughGatewayA', async (t) => {
  a = await startGateway({ configFile, dataDir: join(work, 'a'), extraArgs: ['--tapes', 'ENC:2', '--log-level', 'warn'] });
  tap.teardown(() => a.dispose()); // A runs on through the next tests
  t.match(a.stderr(), /BACK IT UP/, 'the key file was created with its warning');

  const disk = await loginTarget(a.iscsiPort, INITIATOR, a.targetIqn(VOLUME));
  t.teardown(() => disk.destroy());
  for (let i = 0; i < CHUNKS; i++) {
    mustBeGood(`WRITE(16) chunk ${i}`, await disk.scsi(write16((i * MIB) / BLOCK, MIB / BLOCK), { dataOut: chunk(i) }));
  }
  mustBeGood('SYNCHRONIZE CACHE(16)', await disk.scsi(Buffer.from([0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])));

  const changer = await loginTarget(a.iscsiPort, INITIATOR, a.targetIqn('mediachanger'));
  t.teardown(() => changer.destroy());
  mustBeGood('MOVE MEDIUM slot->drive', await changer.scsi(moveMedium(SLOT, DRIVE)));
  const drive = await loginTarget(a.iscsiPort, INITIATOR, a.targetIqn('tapedrive-01'));
  t.teardown(() => drive.destroy());
  mustBeGood('REWIND', await drive.scsi(rewind()));
  for (let i = 0; i < TAPE_RECORDS; i++) {
    const data = tapeRecord(i);
    mustBeGood(`WRITE(6) record ${i}`, await drive.scsi(write6(data.length), { dataOut: data }));
  }
  mustBeGood('WRITE FILEMARKS', await drive.scsi(writeFilemarks6(1)));
  mustBeGood('LOAD UNLOAD (unload)', await drive.scsi(Buffer.from([0x1b, 0, 0, 0, 0, 0])));
  mustBeGood('MOVE MEDIUM drive->slot', await changer.scsi(moveMedium(DRIVE, SLOT)));
});

/** Gateway A's objects: `gateways/<id>/…` of the bucket, through the decrypting store. */
async function gatewayAObjects(): Promise<{ store: ObjectStore; prefix: string }> {
  const bucket = await openBucket();
  const ids = await waitFor('gateway A in the bucket', async () => {
    const found = await listGatewayIds(bucket);
    return found.length === 1 ? found : null;
  });
  const prefix = gatewayPrefix(ids[0]!);
  return { store: new PrefixedObjectStore(bucket, prefix), prefix };
}

t.test('Encryption.BucketHoldsNoPlainTextAndNoPlainHash', async (t) => {
  const { store } = await gatewayAObjects();
  const expected = Buffer.concat(Array.from({ length: CHUNKS }, (_, i) => chunk(i)));
  await waitFor('the volume in the bucket', async () => ((await volumeFromObjects(store, VOLUME_ID, 0, expected.length)).equals(expected) ? true : null));
  const index = await waitFor('the tape index', async () => {
    const catalog = JSON.parse((await store.get('tapes/catalog.json')).toString()) as { tapes: Array<{ barcode: string; address: number }> };
    barcode = catalog.tapes.find((e) => e.address === SLOT)?.barcode ?? '';
    const idx = JSON.parse((await store.get(`tapes/${barcode}/index.json`)).toString()) as { eodObjectId: number; dataObjects: Array<{ sha256: string }> };
    return idx.eodObjectId === TAPE_RECORDS + 1 ? idx : null;
  });
  tapeObjectHashes.push(...index.dataObjects.map((o) => o.sha256));
  const needles = [
    Buffer.from(MARKER),
    ...Array.from({ length: CHUNKS }, (_, i) => Buffer.from(sha256Hex(chunk(i)))),
    ...tapeObjectHashes.map((h) => Buffer.from(h)),
    Buffer.from(barcode),
  ];
  const found: string[] = [];
  let files = 0;
  for (const entry of await readdir(endpoint.directory, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    files++;
    const path = join(entry.parentPath, entry.name);
    const bytes = await readFile(path);
    for (const needle of needles) {
      if (bytes.includes(needle)) found.push(`${path} holds ${needle.toString().slice(0, 40)}`);
      if (path.includes(needle.toString()) && needle.toString() !== barcode) found.push(`${path} is named after ${needle.toString()}`);
    }
  }
  t.ok(files > CHUNKS, `${files} files in the bucket's directory searched`);
  t.same(found, [], 'no plain text, no plain SHA-256 (in bytes or names), no barcode inside any object');
});

t.test('Encryption.ReadBackFromTheBucketAndTamperedChunk', async (t) => {
  const disk = await loginTarget(a.iscsiPort, INITIATOR, a.targetIqn(VOLUME));
  t.teardown(() => disk.destroy());
  const wrong: number[] = [];
  for (let i = 0; i < CHUNKS; i++) {
    const r = await disk.scsi(read16((i * MIB) / BLOCK, MIB / BLOCK), { readLength: MIB });
    if (r.status !== 0 || !r.dataIn.equals(chunk(i))) wrong.push(i);
  }
  t.same(wrong, [], 'every chunk reads back (the cache holds 4 of 12: the rest come from the bucket)');

  // Someone with write access to the bucket flips one byte of chunk 0's object (and fixes up the
  // store's own SHA-256 metadata, which a put does).
  const store = await openBucket();
  const key = `${(await gatewayAObjects()).prefix}volumes/${VOLUME_ID}/chunks/00000000/${sha256Hex(chunk(0))}`;
  const sealed = await inner!.get(store.storedKey(key));
  sealed[MIB / 2] ^= 0x01;
  await inner!.put(store.storedKey(key), sealed);

  // Chunk 0 may still be in the 4 MiB cache: reading the others pushes it out. Until then it reads
  // as the data written; once it must come from the bucket, as MEDIUM ERROR.
  const outcome = await waitFor('chunk 0 to be fetched from the bucket', async () => {
    for (let i = CHUNKS - 1; i > 0; i--) await disk.scsi(read16((i * MIB) / BLOCK, MIB / BLOCK), { readLength: MIB });
    const r = await disk.scsi(read16(0, MIB / BLOCK), { readLength: MIB });
    if (r.status === 0) {
      if (!r.dataIn.equals(chunk(0))) return 'wrong data returned';
      return null;
    }
    return r;
  });
  t.not(outcome, 'wrong data returned', 'never wrong data');
  if (typeof outcome !== 'string') {
    t.equal(outcome.status, CHECK_CONDITION);
    t.match(decodeSense(outcome.sense), { key: 0x3, asc: 0x11, ascq: 0x00 }, 'MEDIUM ERROR, UNRECOVERED READ ERROR');
  }
  sealed[MIB / 2] ^= 0x01;
  await inner!.put(store.storedKey(key), sealed);
  t.equal(await a.stop(), 0, 'gateway A stops cleanly');
});

t.test('Encryption.NewGatewayWithTheKeyReadsTheTape', async (t) => {
  // B (empty data dir, same bucket and key) adopts A's library (docs/disaster-recovery.md).
  const b = await startGateway({ configFile, dataDir: join(work, 'b'), extraArgs: ['--log-level', 'warn'] });
  t.teardown(() => b.dispose());
  const api = restClient(b.apiPort, await b.apiToken());
  const { body: gateways } = await api.get<{ gateways: Array<{ gatewayId: string; self: boolean }> }>('/v1/account/gateways');
  const lost = gateways.gateways.find((g) => !g.self);
  t.ok(lost, 'A is listed among the gateways of the bucket');
  t.equal((await api.post('/v1/recoveries', { from: lost!.gatewayId })).status, 202, 'recovery started');
  const done = await pollUntil(() => api.get<{ state: string }>(`/v1/recoveries/${lost!.gatewayId}`), (r) => r.state !== 'running');
  t.equal(done.state, 'completed', 'recovery completed');
  const changer = await loginTarget(b.iscsiPort, INITIATOR, b.targetIqn('mediachanger'));
  t.teardown(() => changer.destroy());
  mustBeGood('MOVE MEDIUM slot->drive', await changer.scsi(moveMedium(SLOT, DRIVE)));
  const drive = await loginTarget(b.iscsiPort, INITIATOR, b.targetIqn('tapedrive-01'));
  t.teardown(() => drive.destroy());
  mustBeGood('REWIND', await drive.scsi(rewind()));
  const wrong: number[] = [];
  for (let i = 0; i < TAPE_RECORDS; i++) {
    const expected = tapeRecord(i);
    const r = await drive.scsi(read6(expected.length), { readLength: expected.length });
    if (r.status !== 0 || !r.dataIn.equals(expected)) wrong.push(i);
  }
  t.same(wrong, [], `the ${TAPE_RECORDS} records of ${barcode} read back on gateway B`);
  t.equal(await b.stop(), 0);
});

t.test('Encryption.NewGatewayWithoutTheKeySaysSo', async (t) => {
  const otherConfig = await writeConfig('other-key', join(work, 'other.key'));
  const err = await startGateway({ configFile: otherConfig, dataDir: join(work, 'c'), extraArgs: ['--tapes', 'ENC:2', '--log-level', 'warn'] }).then(
    async (c) => {
      await c.dispose();
      return null;
    },
    (e: Error) => e,
  );
  t.ok(err, 'gateway C does not start');
  t.match(err?.message, /encrypted under a key this gateway does not have.*not in the key file .*other\.key.*configure the key it was written with/s);
});
