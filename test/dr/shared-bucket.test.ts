// Two gateways on one bucket (docs/object-layout.md "Many gateways on one bucket"): both serve a
// volume with the same name and the same catalog id (1), both write through iSCSI at the same
// time, and each one's objects stay under its own gateways/<id>/ prefix. After A writes again, every
// object of B is still there with the same SHA-256, and each gateway's head.json + chunk objects
// still hold exactly what its initiator wrote.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import t from 'tap';
import type { ObjectStore } from '../../src/cloud/object-store.js';
import { PrefixedObjectStore } from '../../src/cloud/prefixed-object-store.js';
import { gatewayPrefix, listGatewayIds } from '../../src/store/gateway-layout.js';
import { BUCKET_ENDPOINTS } from '../helpers/bucket-endpoint.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { TestInitiator, write16 } from '../helpers/initiator.js';
import { pattern } from '../helpers/pattern.js';
import { volumeFromObjects } from '../helpers/volume-from-objects.js';

const VOLUME = 'shared';
const VOLUME_ID = 1;
const BLOCK = 512;
const REGION_BYTES = 4 * 1024 * 1024;
const CONVERGE_TIMEOUT_MS = 120_000;

async function writeRegion(gateway: GatewayProcess, data: Buffer): Promise<void> {
  const initiator = await TestInitiator.connect('127.0.0.1', gateway.iscsiPort);
  try {
    await initiator.login({ initiatorName: 'iqn.2026-11.test:shared-bucket', targetName: gateway.targetIqn(VOLUME) });
    await initiator.scsi(Buffer.from([0x00, 0, 0, 0, 0, 0])); // SAM-5 5.14 power-on unit attention
    const stepBytes = 256 * 1024;
    for (let offset = 0; offset < data.length; offset += stepBytes) {
      const result = await initiator.scsi(write16(offset / BLOCK, stepBytes / BLOCK), { dataOut: data.subarray(offset, offset + stepBytes) });
      if (result.status !== 0) throw new Error(`WRITE(16) at ${offset}: status ${result.status}`);
    }
    await initiator.logout();
  } finally {
    initiator.destroy();
  }
}

/** Polls until the gateway's head.json and chunk objects hold `expected` (no timing asserted). */
async function converged(objects: ObjectStore, expected: Buffer): Promise<boolean> {
  const deadline = Date.now() + CONVERGE_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const stored = await volumeFromObjects(objects, VOLUME_ID, 0, expected.length).catch(() => null);
    if (stored?.equals(expected) === true) return true;
    await delay(250);
  }
  return false;
}

/** Every object under `prefix` with its recorded SHA-256. */
async function snapshotOf(bucket: ObjectStore, prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const entry of bucket.list(prefix)) out.set(entry.key, (await bucket.head(entry.key))?.checksumSha256 ?? 'gone');
  return out;
}

for (const factory of BUCKET_ENDPOINTS) {
  const unavailable = await factory.unavailable();
  t.test(`SharedBucket.TwoGatewaysNeverCollide (${factory.name})`, unavailable !== undefined ? { skip: unavailable } : {}, async (t) => {
    const endpoint = await factory.start();
    t.teardown(() => endpoint.close());
    const work = await mkdtemp(join(tmpdir(), 'shelfgate-shared-'));
    t.teardown(() => rm(work, { recursive: true, force: true }));
    const configFile = join(work, 'shelfgate.json');
    await writeFile(configFile, JSON.stringify({ objectStore: endpoint.objectStoreConfig, volumes: [{ name: VOLUME, type: 'stored', size: '1GiB' }] }));
    const [a, b] = await Promise.all([
      startGateway({ configFile, dataDir: join(work, 'a'), gatewayName: 'gw-a' }),
      startGateway({ configFile, dataDir: join(work, 'b'), gatewayName: 'gw-b' }),
    ]);
    t.teardown(() => a.dispose());
    t.teardown(() => b.dispose());

    const dataA = pattern(REGION_BYTES, 1);
    const dataB = pattern(REGION_BYTES, 3);
    await Promise.all([writeRegion(a, dataA), writeRegion(b, dataB)]);

    // Both gateways claimed an id of their own; every key in the bucket is under one of them.
    let ids: string[] = [];
    for (const deadline = Date.now() + CONVERGE_TIMEOUT_MS; ids.length < 2 && Date.now() < deadline; await delay(250)) ids = await listGatewayIds(endpoint.bucket);
    t.equal(ids.length, 2, `two gateway prefixes: ${ids.join(', ')}`);
    const views = ids.map((id) => new PrefixedObjectStore(endpoint.bucket, gatewayPrefix(id)));
    // Which prefix is A's: its gateway.json names it.
    const names = await Promise.all(views.map(async (view) => JSON.parse((await view.get('gateway.json')).toString('utf8')).name as string));
    const indexA = names.indexOf('gw-a');
    const indexB = names.indexOf('gw-b');
    t.ok(indexA >= 0 && indexB >= 0, `gateway.json names both gateways (${names.join(', ')})`);
    t.ok(await converged(views[indexA]!, dataA), "A's head.json and chunks hold what A wrote");
    t.ok(await converged(views[indexB]!, dataB), "B's head.json and chunks hold what B wrote");
    const outside: string[] = [];
    for await (const entry of endpoint.bucket.list('')) if (!ids.some((id) => entry.key.startsWith(gatewayPrefix(id)))) outside.push(entry.key);
    t.same(outside, [], 'no object outside the two gateway prefixes');
    for (const id of ids) t.ok(await endpoint.bucket.head(`${gatewayPrefix(id)}gateway.json`), `${id} claimed its id`);

    // A writes again: B's objects are untouched, B's volume in the bucket is unchanged.
    const beforeB = await snapshotOf(endpoint.bucket, gatewayPrefix(ids[indexB]!));
    const dataA2 = pattern(REGION_BYTES, 5);
    await writeRegion(a, dataA2);
    t.ok(await converged(views[indexA]!, dataA2), "A's second write reached A's prefix");
    const afterB = await snapshotOf(endpoint.bucket, gatewayPrefix(ids[indexB]!));
    const changed = [...beforeB].filter(([key, sha]) => afterB.get(key) !== sha).map(([key]) => key);
    t.same(changed, [], `none of B's ${beforeB.size} objects was replaced or removed`);
    t.ok((await volumeFromObjects(views[indexB]!, VOLUME_ID, 0, REGION_BYTES)).equals(dataB), "B's volume in the bucket is still what B wrote");
  });
}
