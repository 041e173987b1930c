// Disaster recovery of volumes (docs/disaster-recovery.md), against the S3 endpoint of
// test/helpers/bucket-endpoint.ts: gateway A writes a stored and a cached volume through iSCSI and
// snapshots both, then is destroyed (stopped, data dir deleted). Gateway B, empty data dir, same
// bucket, recovers A (POST /v1/recoveries): both volumes come back from their snapshots and read
// back byte-identical through iSCSI, fetched lazily from A's objects. Meanwhile gateway C on the
// same bucket writes its own volume, and none of A's objects is replaced or removed.
// (Library tapes: test/e2e/tape-object-store.test.ts recovers them the same way.)
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { ObjectStore } from '../../src/cloud/object-store.js';
import { gatewayPrefix } from '../../src/store/gateway-layout.js';
import { BUCKET_ENDPOINTS } from '../helpers/bucket-endpoint.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { TestInitiator, read16, write16 } from '../helpers/initiator.js';
import { pattern } from '../helpers/pattern.js';
import { pollUntil, restClient } from '../helpers/rest-client.js';

const BLOCK = 512;
const REGION_BYTES = 3 * 1024 * 1024 + 64 * 1024; // 4 object chunks, the last one partly written
const STEP_BYTES = 256 * 1024;
const TOKEN = 'disaster-recovery-test-token';

async function session(gateway: GatewayProcess, volume: string): Promise<TestInitiator> {
  const initiator = await TestInitiator.connect('127.0.0.1', gateway.iscsiPort);
  await initiator.login({ initiatorName: 'iqn.2026-11.test:disaster-recovery', targetName: gateway.targetIqn(volume) });
  await initiator.scsi(Buffer.from([0x00, 0, 0, 0, 0, 0])); // SAM-5 5.14 power-on unit attention
  return initiator;
}

async function writeVolume(gateway: GatewayProcess, volume: string, data: Buffer): Promise<void> {
  const initiator = await session(gateway, volume);
  try {
    for (let offset = 0; offset < data.length; offset += STEP_BYTES) {
      const chunk = data.subarray(offset, offset + STEP_BYTES);
      const result = await initiator.scsi(write16(offset / BLOCK, chunk.length / BLOCK), { dataOut: chunk });
      if (result.status !== 0) throw new Error(`WRITE(16) ${volume} at ${offset}: status ${result.status}`);
    }
    await initiator.logout();
  } finally {
    initiator.destroy();
  }
}

async function readVolume(gateway: GatewayProcess, volume: string, lengthBytes: number): Promise<Buffer> {
  const initiator = await session(gateway, volume);
  const parts: Buffer[] = [];
  try {
    for (let offset = 0; offset < lengthBytes; offset += STEP_BYTES) {
      const length = Math.min(STEP_BYTES, lengthBytes - offset);
      const result = await initiator.scsi(read16(offset / BLOCK, length / BLOCK), { readLength: length });
      if (result.status !== 0) throw new Error(`READ(16) ${volume} at ${offset}: status ${result.status} sense ${result.sense.toString('hex')}`);
      parts.push(result.dataIn);
    }
    await initiator.logout();
  } finally {
    initiator.destroy();
  }
  return Buffer.concat(parts);
}

async function objectsUnder(bucket: ObjectStore, prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const entry of bucket.list(prefix)) out.set(entry.key, (await bucket.head(entry.key))?.checksumSha256 ?? 'gone');
  return out;
}

for (const factory of BUCKET_ENDPOINTS) {
  const unavailable = await factory.unavailable();
  t.test(`DisasterRecovery.VolumesOfALostGateway (${factory.name})`, unavailable !== undefined ? { skip: unavailable } : {}, async (t) => {
    const endpoint = await factory.start();
    t.teardown(() => endpoint.close());
    const work = await mkdtemp(join(tmpdir(), 'shelfgate-dr-'));
    t.teardown(() => rm(work, { recursive: true, force: true }));
    const config = (volumes: unknown[]) => ({ objectStore: endpoint.objectStoreConfig, api: { token: TOKEN }, tapeLibrary: { enabled: false }, volumes });
    const configA = join(work, 'a.json');
    await writeFile(configA, JSON.stringify(config([])));
    const configC = join(work, 'c.json');
    await writeFile(configC, JSON.stringify(config([{ name: 'c-own', type: 'stored', size: '1GiB' }])));

    // A: a stored and a cached volume, written, snapshotted.
    const a = await startGateway({ configFile: configA, dataDir: join(work, 'a'), gatewayName: 'gw-a' });
    const apiA = restClient(a.apiPort, TOKEN);
    const data = { stored: pattern(REGION_BYTES, 11), cached: pattern(REGION_BYTES, 13) };
    for (const type of ['stored', 'cached'] as const) {
      t.equal((await apiA.post('/v1/volumes', { name: `vol-${type}`, type, size: '1GiB' })).status, 201, `A creates vol-${type}`);
      await writeVolume(a, `vol-${type}`, data[type]);
      const created = await apiA.post<{ snapshotId: string }>('/v1/snapshots', { volume: `vol-${type}`, description: `before the fire (${type})` });
      t.equal(created.status, 201, `snapshot of vol-${type} started`);
      const done = await pollUntil(() => apiA.get<{ status: string }>(`/v1/snapshots/${created.body.snapshotId}`), (s) => s.status !== 'pending');
      t.equal(done.status, 'completed', `snapshot of vol-${type} completed`);
    }
    const { body: gatewayA } = await apiA.get<{ gatewayId: string }>('/v1/gateway');
    t.equal(await a.stop(), 0, 'A stops');
    await rm(join(work, 'a'), { recursive: true, force: true }); // A's disks are gone
    await a.dispose();
    const objectsOfA = await objectsUnder(endpoint.bucket, gatewayPrefix(gatewayA.gatewayId));

    // C writes its own volume while B recovers A.
    const c = await startGateway({ configFile: configC, dataDir: join(work, 'c'), gatewayName: 'gw-c' });
    t.teardown(() => c.dispose());
    const dataC = pattern(REGION_BYTES, 17);
    const writingC = writeVolume(c, 'c-own', dataC);

    const b = await startGateway({ configFile: configA, dataDir: join(work, 'b'), gatewayName: 'gw-b' });
    t.teardown(() => b.dispose());
    const apiB = restClient(b.apiPort, TOKEN);
    const { body: listed } = await apiB.get<{ snapshots: Array<{ gatewayId: string; volumeName: string; description: string }> }>('/v1/account/snapshots');
    t.same(
      listed.snapshots.filter((s) => s.gatewayId === gatewayA.gatewayId).map((s) => s.volumeName).sort(),
      ['vol-cached', 'vol-stored'],
      "B lists A's snapshots (self-describing manifests in the bucket)",
    );
    t.equal((await apiB.post('/v1/recoveries', { from: gatewayA.gatewayId })).status, 202, 'B starts the recovery of A');
    const recovery = await pollUntil(
      () => apiB.get<{ state: string; volumes: { adopted: Array<{ name: string; type: string; from: string }> } }>(`/v1/recoveries/${gatewayA.gatewayId}`),
      (r) => r.state !== 'running',
    );
    t.equal(recovery.state, 'completed', 'recovery completed');
    t.same(recovery.volumes.adopted.map((v) => [v.name, v.type, v.from.startsWith('snap-')]).sort(), [['vol-cached', 'cached', true], ['vol-stored', 'stored', true]], 'both volumes adopted from their snapshots');
    for (const type of ['stored', 'cached'] as const) {
      t.ok((await readVolume(b, `vol-${type}`, REGION_BYTES)).equals(data[type]), `vol-${type} reads back byte-identical on B`);
    }
    const again = await apiB.post<{ state: string }>('/v1/recoveries', { from: gatewayA.gatewayId });
    const second = await pollUntil(() => apiB.get<{ state: string; volumes: { skipped: unknown[] } }>(`/v1/recoveries/${gatewayA.gatewayId}`), (r) => r.state !== 'running');
    t.equal(again.status, 202, 'recovery again');
    t.equal(second.state, 'completed', 'a second recovery is harmless (idempotent)');

    await writingC;
    t.ok((await readVolume(c, 'c-own', REGION_BYTES)).equals(dataC), "C's own volume reads back");
    const afterA = await objectsUnder(endpoint.bucket, gatewayPrefix(gatewayA.gatewayId));
    const disturbed = [...objectsOfA].filter(([key, sha]) => afterA.get(key) !== sha).map(([key]) => key);
    t.same(disturbed, [], `none of A's ${objectsOfA.size} objects was replaced or removed by B or C`);
  });
}
