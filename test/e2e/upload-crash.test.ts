// kill -9 during a sustained write, 20 times, with uploads to s3rver in progress (the model is
// crash.test.ts). After each restart every acknowledged write reads back exactly (unacknowledged
// ones read as the old or the new contents, block by block); at the end the object store
// converges to the same content — so no queue entry was lost across the crashes.
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import t from 'tap';
import { S3ObjectStore } from '../../src/cloud/s3-object-store.js';
import { startGateway } from '../helpers/gateway-process.js';
import { TestInitiator, read16, write16 } from '../helpers/initiator.js';
import { S3RVER_CREDENTIALS, S3rverEndpoint } from '../helpers/s3rver.js';
import { volumeFromObjects } from '../helpers/volume-from-objects.js';
import { soleGatewayObjects } from '../helpers/gateway-objects.js';

/** A copy: the SDK marks the credentials object it was given (an extra `$source` key). */
const S3_KEYS = { accessKeyId: S3RVER_CREDENTIALS.accessKeyId, secretAccessKey: S3RVER_CREDENTIALS.secretAccessKey };

const VOLUME = 'upcrash';
const VOLUME_ID = 1;
const BLOCK_SIZE = 512;
const WRITE_BLOCKS = 16;
const WRITE_SLOTS = 1024; // 1024 slots x 8 KiB = 8 MiB region = 8 object chunks
const REGION_BYTES = WRITE_SLOTS * WRITE_BLOCKS * BLOCK_SIZE;
const QUEUE_DEPTH = 8;
const KILL_AFTER_ACKS = 300;
const CYCLES = 20;
const CONVERGE_TIMEOUT_MS = 120_000;
const INITIATOR = 'iqn.2026-11.test:upload-crash-writer';

function slotPattern(slot: number, generation: number): Buffer {
  const data = Buffer.alloc(WRITE_BLOCKS * BLOCK_SIZE);
  if (generation === 0) return data;
  for (let block = 0; block < WRITE_BLOCKS; block++) {
    const offset = block * BLOCK_SIZE;
    data.writeUInt32BE(slot, offset);
    data.writeUInt32BE(generation, offset + 4);
    data.writeUInt32BE(block, offset + 8);
    for (let i = 12; i < BLOCK_SIZE; i++) data[offset + i] = (slot * 7 + generation * 13 + block + i) & 0xff;
  }
  return data;
}

async function loggedIn(port: number, targetName: string): Promise<TestInitiator> {
  const initiator = await TestInitiator.connect('127.0.0.1', port);
  await initiator.login({ initiatorName: INITIATOR, targetName });
  await initiator.scsi(Buffer.from([0x00, 0, 0, 0, 0, 0])); // SAM-5 5.14 power-on unit attention
  return initiator;
}

const dir = await mkdtemp(join(tmpdir(), 'shelfgate-upcrash-'));
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
    volumes: [{ name: VOLUME, type: 'stored', size: '1GiB' }],
  }),
);
const gateway = await startGateway({ configFile });
t.teardown(() => gateway.dispose());

const acked = new Array<number>(WRITE_SLOTS).fill(0);
const inFlight = new Map<number, number>();

function expectedRegion(): Buffer {
  return Buffer.concat(acked.map((generation, slot) => slotPattern(slot, generation)));
}

for (let cycle = 1; cycle <= CYCLES; cycle++) {
  t.test(`UploadCrash.Kill9Cycle${cycle}`, async (t) => {
    const writer = await loggedIn(gateway.iscsiPort, gateway.targetIqn(VOLUME));
    let acks = 0;
    let next = (cycle * 389) % WRITE_SLOTS;
    let killed: Promise<void> | null = null;
    const lane = async (): Promise<void> => {
      while (killed === null) {
        const slot = next;
        next = (next + 1) % WRITE_SLOTS;
        if (inFlight.has(slot)) continue;
        const generation = acked[slot]! + 1;
        inFlight.set(slot, generation);
        try {
          const result = await writer.scsi(write16(slot * WRITE_BLOCKS, WRITE_BLOCKS), { dataOut: slotPattern(slot, generation) });
          if (result.status !== 0) throw new Error(`WRITE(16) slot ${slot} status ${result.status} sense ${result.sense.toString('hex')}`);
          acked[slot] = generation;
          inFlight.delete(slot);
          if (++acks === KILL_AFTER_ACKS) killed = gateway.kill9();
        } catch (err) {
          if (killed === null) throw err;
          return;
        }
      }
    };
    await Promise.all(Array.from({ length: QUEUE_DEPTH }, lane));
    await killed;
    writer.destroy();

    await gateway.restart();
    const reader = await loggedIn(gateway.iscsiPort, gateway.targetIqn(VOLUME));
    t.teardown(() => reader.destroy());
    const result = await reader.scsi(read16(0, WRITE_SLOTS * WRITE_BLOCKS), { readLength: REGION_BYTES });
    t.equal(result.status, 0, 'READ(16) of the region');
    const problems: string[] = [];
    for (let slot = 0; slot < WRITE_SLOTS; slot++) {
      const got = result.dataIn.subarray(slot * WRITE_BLOCKS * BLOCK_SIZE, (slot + 1) * WRITE_BLOCKS * BLOCK_SIZE);
      const expected = slotPattern(slot, acked[slot]!);
      const pending = inFlight.get(slot);
      if (pending === undefined) {
        if (!got.equals(expected)) problems.push(`slot ${slot}: acknowledged generation ${acked[slot]} lost`);
        continue;
      }
      inFlight.delete(slot);
      const newer = slotPattern(slot, pending);
      if (got.equals(newer)) {
        acked[slot] = pending;
      } else if (!got.equals(expected)) {
        // Torn unacknowledged write (allowed): rewrite the slot so later checks compare cleanly.
        for (let block = 0; block < WRITE_BLOCKS; block++) {
          const range = [block * BLOCK_SIZE, (block + 1) * BLOCK_SIZE] as const;
          const gotBlock = got.subarray(...range);
          if (!gotBlock.equals(newer.subarray(...range)) && !gotBlock.equals(expected.subarray(...range))) {
            problems.push(`slot ${slot} block ${block}: neither generation ${acked[slot]} nor ${pending}`);
          }
        }
        const fix = await reader.scsi(write16(slot * WRITE_BLOCKS, WRITE_BLOCKS), { dataOut: newer });
        if (fix.status === 0) acked[slot] = pending;
        else problems.push(`slot ${slot}: rewrite failed with status ${fix.status}`);
      }
    }
    t.same(problems.slice(0, 20), [], `every acknowledged write survived SIGKILL ${cycle} (${problems.length} problems)`);
    t.equal(await reader.logout(), 0);
  });
}

t.test('UploadCrash.ObjectStoreConverges', async (t) => {
  const expected = expectedRegion();
  const deadline = Date.now() + CONVERGE_TIMEOUT_MS;
  let matched = false;
  while (!matched && Date.now() < deadline) {
    matched = (await volumeFromObjects(s3, VOLUME_ID, 0, REGION_BYTES).catch(() => Buffer.alloc(0))).equals(expected);
    if (!matched) await delay(500);
  }
  t.ok(matched, 'the object store holds every acknowledged write');
  const chunkKeys: string[] = [];
  for await (const entry of (await soleGatewayObjects(s3)).list(`volumes/${VOLUME_ID}/chunks/`)) chunkKeys.push(entry.key);
  t.comment(`${chunkKeys.length} chunk objects stored over ${CYCLES} crash cycles`);
});

t.test('UploadCrash.CleanExit', async (t) => {
  t.equal(await gateway.stop(), 0, 'exit code 0 on SIGTERM');
});
