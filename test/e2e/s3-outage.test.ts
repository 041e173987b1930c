// The S3 endpoint goes away during writes: the real CLI uploads to s3rver, which is stopped while
// an initiator keeps writing. Every write must still be GOOD (the upload buffer has room) and read
// back at once, and once s3rver is back on the same port the backlog drains and the object store
// matches what the initiator reads.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import t from 'tap';
import { S3ObjectStore } from '../../src/cloud/s3-object-store.js';
import { startGateway } from '../helpers/gateway-process.js';
import { TestInitiator, read16, write16 } from '../helpers/initiator.js';
import { S3RVER_CREDENTIALS, S3rverEndpoint } from '../helpers/s3rver.js';
import { volumeFromObjects } from '../helpers/volume-from-objects.js';
import { pattern } from '../helpers/pattern.js';

/** A copy: the SDK marks the credentials object it was given (an extra `$source` key). */
const S3_KEYS = { accessKeyId: S3RVER_CREDENTIALS.accessKeyId, secretAccessKey: S3RVER_CREDENTIALS.secretAccessKey };

const VOLUME = 'outage';
const VOLUME_ID = 1;
const BLOCK_SIZE = 512;
const MiB = 1024 * 1024;
const REGION_BYTES = 16 * MiB;
const WRITE_BYTES = 64 * 1024;
/** Below the Block Limits VPD maximum transfer length. */
const READ_BYTES = 4 * MiB;
const CONVERGE_TIMEOUT_MS = 180_000;
/** Long enough for several failed upload attempts and backoffs. */
const OUTAGE_WRITE_ROUNDS = 3;

const dir = await mkdtemp(join(tmpdir(), 'shelfgate-outage-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const endpoint = await S3rverEndpoint.start();
t.teardown(() => endpoint.close());
const s3 = new S3ObjectStore({
  bucket: endpoint.bucket,
  endpoint: endpoint.url,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: S3RVER_CREDENTIALS,
});
t.teardown(() => s3.close());
const configFile = join(dir, 'shelfgate.json');
await writeFile(
  configFile,
  JSON.stringify({
    objectStore: { type: 's3', bucket: endpoint.bucket, endpoint: endpoint.url, forcePathStyle: true, ...S3_KEYS },
    uploadBuffer: { sizeBytes: '256MiB' },
    volumes: [{ name: VOLUME, type: 'stored', size: '1GiB' }],
  }),
);
const gateway = await startGateway({ configFile });
t.teardown(() => gateway.dispose());
const initiator = await TestInitiator.connect('127.0.0.1', gateway.iscsiPort);
await initiator.login({ initiatorName: 'iqn.2026-11.test:outage', targetName: gateway.targetIqn(VOLUME) });
await initiator.scsi(Buffer.from([0x00, 0, 0, 0, 0, 0])); // SAM-5 5.14 power-on unit attention
t.teardown(() => initiator.destroy());

const expected = Buffer.alloc(REGION_BYTES);

/** Writes the whole region once (QD 4), recording it in `expected`; returns non-GOOD statuses. */
async function writeRegion(seed: number): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < REGION_BYTES) {
      const offset = next;
      next += WRITE_BYTES;
      const data = pattern(WRITE_BYTES, seed * 1000 + offset / WRITE_BYTES);
      const result = await initiator.scsi(write16(offset / BLOCK_SIZE, WRITE_BYTES / BLOCK_SIZE), { dataOut: data });
      if (result.status === 0) data.copy(expected, offset);
      else failures.push(`offset ${offset}: status ${result.status} sense ${result.sense.toString('hex')}`);
    }
  };
  await Promise.all(Array.from({ length: 4 }, lane));
  return failures;
}

async function converged(): Promise<boolean> {
  const deadline = Date.now() + CONVERGE_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const remote = await volumeFromObjects(s3, VOLUME_ID, 0, REGION_BYTES).catch(() => null);
    if (remote?.equals(expected)) return true;
    await delay(500);
  }
  return false;
}

t.test('S3Outage.BaselineUploaded', async (t) => {
  t.same(await writeRegion(1), [], 'every write GOOD');
  t.ok(await converged(), 'object store holds the baseline');
});

t.test('S3Outage.WritesContinueWhileEndpointDown', async (t) => {
  await endpoint.stop();
  for (let round = 2; round < 2 + OUTAGE_WRITE_ROUNDS; round++) {
    t.same(await writeRegion(round), [], `round ${round}: every write GOOD while s3rver is down`);
  }
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < REGION_BYTES; offset += READ_BYTES) {
    const reread = await initiator.scsi(read16(offset / BLOCK_SIZE, READ_BYTES / BLOCK_SIZE), { readLength: READ_BYTES });
    if (reread.status !== 0) t.fail(`READ(16) at ${offset}: status ${reread.status} sense ${reread.sense.toString('hex')}`);
    pieces.push(reread.dataIn);
  }
  t.ok(Buffer.concat(pieces).equals(expected), 'reads see the new data');
  await delay(2_000); // several upload attempts fail meanwhile
});

t.test('S3Outage.BacklogDrainsAfterReturn', async (t) => {
  await endpoint.start();
  t.ok(await converged(), 'backlog drained: the object store matches the volume');
});

t.test('S3Outage.CleanExit', async (t) => {
  t.equal(await initiator.logout(), 0);
  t.equal(await gateway.stop(), 0);
});

/** Sense key, ASC, ASCQ of fixed (0x70) or descriptor (0x72) sense data. */
function senseTriple(sense: Buffer): string {
  const descriptor = (sense[0]! & 0x7f) >= 0x72;
  const [key, asc, ascq] = descriptor ? [sense[1]!, sense[2]!, sense[3]!] : [sense[2]!, sense[12]!, sense[13]!];
  return [key & 0x0f, asc, ascq].map((b) => b.toString(16).padStart(2, '0')).join('/');
}

t.test('S3Outage.FullBufferHoldsWrites', async (t) => {
  // A 4 MiB upload buffer and s3rver down: four object chunks fill it; a write to a fifth is held
  // for holdMs, then answered NOT READY / LOGICAL UNIT IS IN PROCESS OF BECOMING READY (02/04/01),
  // which initiators retry. Rewrites of dirty chunks still pass. Once s3rver is back, it succeeds.
  const smallConfig = join(dir, 'small-buffer.json');
  await writeFile(
    smallConfig,
    JSON.stringify({
      objectStore: { type: 's3', bucket: endpoint.bucket, endpoint: endpoint.url, forcePathStyle: true, prefix: 'small/', ...S3_KEYS },
      uploadBuffer: { sizeBytes: '4MiB', holdMs: 300 },
      volumes: [{ name: VOLUME, type: 'stored', size: '1GiB' }],
    }),
  );
  const small = await startGateway({ configFile: smallConfig });
  t.teardown(() => small.dispose());
  const writer = await TestInitiator.connect('127.0.0.1', small.iscsiPort);
  t.teardown(() => writer.destroy());
  await writer.login({ initiatorName: 'iqn.2026-11.test:outage-small', targetName: small.targetIqn(VOLUME) });
  await writer.scsi(Buffer.from([0x00, 0, 0, 0, 0, 0]));
  await endpoint.stop();
  const chunkBlocks = MiB / BLOCK_SIZE;
  for (let chunk = 0; chunk < 4; chunk++) {
    const result = await writer.scsi(write16(chunk * chunkBlocks, 8), { dataOut: pattern(8 * BLOCK_SIZE, chunk) });
    t.equal(result.status, 0, `chunk ${chunk}: GOOD while the buffer has room`);
  }
  const rewrite = await writer.scsi(write16(8, 8), { dataOut: pattern(8 * BLOCK_SIZE, 99) });
  t.equal(rewrite.status, 0, 'rewrite of a dirty chunk: GOOD');
  const held = await writer.scsi(write16(4 * chunkBlocks, 8), { dataOut: pattern(8 * BLOCK_SIZE, 4) });
  t.equal(held.status, 2, 'fifth chunk: CHECK CONDITION after the hold time');
  t.equal(senseTriple(held.sense), '02/04/01', 'NOT READY, becoming ready (retryable)');
  await endpoint.start();
  let status = -1;
  for (let attempt = 0; attempt < 100 && status !== 0; attempt++) {
    status = (await writer.scsi(write16(4 * chunkBlocks, 8), { dataOut: pattern(8 * BLOCK_SIZE, 4) })).status;
  }
  t.equal(status, 0, 'the retried write succeeds once uploads drain');
  t.equal(await writer.logout(), 0);
  t.equal(await small.stop(), 0);
});
