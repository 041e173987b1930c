// Tapes in the object store (issue 4, docs/object-layout.md "Tapes"): gateway A writes two files to
// a tape over iSCSI and unloads it; its tape uploader puts the data objects, index.json and
// tapes/catalog.json into a local object store directory shared through the configuration. After
// A stops, gateway B starts with an EMPTY data dir and the same object store and adopts A's
// library (POST /v1/recoveries, docs/disaster-recovery.md): its changer shows the tape in the
// same slot, and the tape reads back byte-identical through a drive.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { decodeSense } from '../helpers/expect-sense.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { pollUntil, restClient } from '../helpers/rest-client.js';
import { loginTarget, moveMedium, mustBeGood, read6, rewind, write6, writeFilemarks6 } from '../helpers/tape-commands.js';

const INITIATOR = 'iqn.2026-11.test:tape-object-store';
/** AWS-Gateway-VTL element addresses: storage slots from 1, drive 1 = element 10001. */
const SLOT = 2;
const DRIVE = 10001;
const CHECK_CONDITION = 0x02;
/** Two files: 60 records (~7 MiB, more than one data object) and 5 records. */
const FILES = [60, 5];

const base = randomBytes(262_144);
function record(file: number, index: number): Buffer {
  const lengthBytes = 4096 * (1 + ((file * 31 + index * 17) % 48));
  const data = Buffer.from(base.subarray(0, lengthBytes));
  data.writeUInt32BE(file, 0);
  data.writeUInt32BE(index, 4);
  return data;
}

const work = await mkdtemp(join(tmpdir(), 'shelfgate-tape-objects-'));
const objectsDir = join(work, 'objects');
const configFile = join(work, 'gateway.json');
const TOKEN = 'tape-object-store-test-token';
await writeFile(configFile, JSON.stringify({ objectStore: { type: 'local', path: objectsDir }, api: { token: TOKEN } }));
t.teardown(() => rm(work, { recursive: true, force: true }));

/** Body of an object of the local store (format: src/cloud/local-object-store.ts), or null. */
async function localObject(key: string): Promise<Buffer | null> {
  // The gateway's own prefix, gateways/<id>/ (docs/object-layout.md "Many gateways on one bucket").
  const gatewayDirs = await readdir(join(objectsDir, 'gateways.d')).catch(() => []);
  if (gatewayDirs.length !== 1) return null;
  const segments = ['gateways', gatewayDirs[0]!.slice(0, -'.d'.length), ...key.split('/')].map((s) => [...Buffer.from(s)].map((b) => (/[A-Za-z0-9_-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join(''));
  const path = join(objectsDir, ...segments.slice(0, -1).map((s) => `${s}.d`), `${segments.at(-1)}.obj`);
  let file: Buffer;
  try {
    file = await readFile(path);
  } catch {
    return null;
  }
  return file.subarray(8 + file.readUInt32BE(4));
}

let barcode = '';

t.test('TapeObjectStore.UploadFromGatewayA', async (t) => {
  const a: GatewayProcess = await startGateway({ configFile, dataDir: join(work, 'a'), extraArgs: ['--tapes', 'OBJS:3', '--log-level', 'warn'] });
  t.teardown(() => a.dispose());
  const changer = await loginTarget(a.iscsiPort, INITIATOR, a.targetIqn('mediachanger'));
  t.teardown(() => changer.destroy());
  mustBeGood('MOVE MEDIUM slot->drive', await changer.scsi(moveMedium(SLOT, DRIVE)));
  const drive = await loginTarget(a.iscsiPort, INITIATOR, a.targetIqn('tapedrive-01'));
  t.teardown(() => drive.destroy());
  mustBeGood('REWIND', await drive.scsi(rewind()));
  for (const [file, count] of FILES.entries()) {
    for (let i = 0; i < count; i++) {
      const data = record(file, i);
      mustBeGood(`WRITE(6) file ${file} record ${i}`, await drive.scsi(write6(data.length), { dataOut: data }));
    }
    mustBeGood('WRITE FILEMARKS', await drive.scsi(writeFilemarks6(1)));
  }
  mustBeGood('LOAD UNLOAD (unload)', await drive.scsi(Buffer.from([0x1b, 0, 0, 0, 0, 0])));
  mustBeGood('MOVE MEDIUM drive->slot', await changer.scsi(moveMedium(DRIVE, SLOT)));

  // The uploader catches up: the catalog names the tape in slot 2, its index covers every object.
  const expectedObjects = FILES.reduce((sum, n) => sum + n + 1, 0);
  let index: { eodObjectId: number; filemarks: number[]; dataObjects: unknown[] } | null = null;
  for (let attempt = 0; attempt < 600; attempt++) {
    const catalog = await localObject('tapes/catalog.json');
    const entry = catalog && (JSON.parse(catalog.toString()) as { tapes: Array<{ barcode: string; address: number }> }).tapes.find((e) => e.address === SLOT);
    if (entry) {
      barcode = entry.barcode;
      const body = await localObject(`tapes/${barcode}/index.json`);
      index = body && JSON.parse(body.toString());
      if (index?.eodObjectId === expectedObjects) break;
    }
    await sleep(100);
  }
  t.equal(index?.eodObjectId, expectedObjects, `index.json of ${barcode} covers all ${expectedObjects} objects`);
  t.same(index?.filemarks, [FILES[0], FILES[0]! + 1 + FILES[1]!], 'filemark positions');
  t.ok((index?.dataObjects.length ?? 0) >= 2, `${index?.dataObjects.length} data objects`);
  t.equal(await a.stop(), 0, 'gateway A stops cleanly');
});

t.test('TapeObjectStore.ReadOnGatewayBWithEmptyCache', async (t) => {
  // A is gone; B (empty data dir, same bucket, no tapes of its own) adopts A's library.
  const b: GatewayProcess = await startGateway({ configFile, dataDir: join(work, 'b'), extraArgs: ['--log-level', 'warn'] });
  t.teardown(() => b.dispose());
  const api = restClient(b.apiPort, TOKEN);
  const { body: gateways } = await api.get<{ gateways: Array<{ gatewayId: string; self: boolean }> }>('/v1/account/gateways');
  const lost = gateways.gateways.find((g) => !g.self);
  t.ok(lost, 'A is listed among the gateways of the bucket');
  t.equal((await api.post('/v1/recoveries', { from: lost!.gatewayId })).status, 202, 'recovery started');
  const done = await pollUntil(() => api.get<{ state: string; tapes: { adopted: string[] } }>(`/v1/recoveries/${lost!.gatewayId}`), (r) => r.state !== 'running');
  t.equal(done.state, 'completed', 'recovery completed');
  t.ok(done.tapes.adopted.includes(barcode) && done.tapes.adopted.length === 3, `A's 3 tapes adopted (${done.tapes.adopted.join(', ')})`);
  const changer = await loginTarget(b.iscsiPort, INITIATOR, b.targetIqn('mediachanger'));
  t.teardown(() => changer.destroy());
  // READ ELEMENT STATUS (SMC-3 6.10), storage elements, VOLTAG: the barcode in slot 2.
  const res = mustBeGood('READ ELEMENT STATUS', await changer.scsi(Buffer.from([0xb8, 0x12, 0, SLOT, 0, 1, 0, 0, 0x04, 0, 0, 0]), { readLength: 1024 }));
  const voltag = res.dataIn.subarray(8 + 8 + 12, 8 + 8 + 12 + 32).toString('latin1').trim();
  t.equal(voltag, barcode, `slot ${SLOT} holds ${barcode}`);

  mustBeGood('MOVE MEDIUM slot->drive', await changer.scsi(moveMedium(SLOT, DRIVE)));
  const drive = await loginTarget(b.iscsiPort, INITIATOR, b.targetIqn('tapedrive-01'));
  t.teardown(() => drive.destroy());
  mustBeGood('REWIND', await drive.scsi(rewind()));
  const wrong: string[] = [];
  for (const [file, count] of FILES.entries()) {
    for (let i = 0; i < count; i++) {
      const expected = record(file, i);
      const result = await drive.scsi(read6(expected.length), { readLength: expected.length });
      if (result.status !== 0 || result.dataIn.toString('hex') !== expected.toString('hex')) wrong.push(`file ${file} record ${i}: status ${result.status}`);
    }
    const fm = await drive.scsi(read6(262_144), { readLength: 262_144 });
    const d = fm.status === CHECK_CONDITION ? decodeSense(fm.sense) : null;
    if (d === null || (fm.sense[2]! & 0x80) === 0) wrong.push(`file ${file}: no filemark after it`);
  }
  t.same(wrong, [], 'both files read back byte-identical, each followed by its filemark');
  const eod = await drive.scsi(read6(262_144), { readLength: 262_144 });
  t.equal(eod.status, CHECK_CONDITION, 'then end-of-data');
  t.equal(decodeSense(eod.sense).key, 8, 'BLANK CHECK');
});
