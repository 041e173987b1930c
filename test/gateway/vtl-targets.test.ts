// The tape library as AWS lays it out, over a real TCP connection: one changer target and ten
// drive targets (LUN 0 each), the changer's DVCID naming each drive target's serial number, a
// restart keeping cartridges where they were, and ../shared/tools/vtl-probe (libiscsi) driving
// changer + drive. vtl-probe is skipped when it cannot be built (no cc / libiscsi-dev).

import { execFileSync } from 'node:child_process';
import { cpSync, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import type { ScsiResponse, TargetConfig } from '../../iscsi/device.js';
import { silentLogger } from '../../iscsi/log.js';
import { IscsiServer } from '../../iscsi/server.js';
import { changerTargetName, createVtlTargets, driveTargetName, type VtlTargets } from '../../src/gateway/vtl-targets.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { runTool } from '../helpers/libiscsi.js';
import { GIB, moveMedium, nexusA, readElementStatus } from '../helpers/vtl-fixture.js';

const PROBE_SOURCE = resolve(import.meta.dirname, '../../../shared/tools/vtl-probe');

function buildProbe(dir: string): string | null {
  try {
    cpSync(PROBE_SOURCE, dir, { recursive: true });
    execFileSync('make', ['-s', '-C', dir], { stdio: 'ignore' });
    return join(dir, 'vtl-probe');
  } catch {
    return null;
  }
}

async function open(dir: string, slots?: { storage?: number; importExport?: number }): Promise<{ db: Database; vtl: VtlTargets }> {
  const db = await openDatabase(dir);
  const vtl = await createVtlTargets({ gatewayName: 'gw1', changerType: 'AWS-Gateway-VTL', db, log: silentLogger, ...(slots ? { slots } : {}) });
  return { db, vtl };
}

function changerOf(vtl: VtlTargets) {
  const lu = vtl.targets[0]!.luns.get(0)!;
  return (cdb: number[]): Promise<ScsiResponse> =>
    lu.execute({ nexus: nexusA, cdb: Buffer.from(cdb), taskAttr: 1, expectedDataTransferLength: 1 << 20, dataOut: null });
}

t.test('Vtl.Targets.AwsLayout', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-vtl-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { db, vtl } = await open(dir);
  t.teardown(async () => {
    await vtl.close();
    await db.close();
  });
  t.same(
    vtl.targets.map((x) => [x.name, [...x.luns.keys()]]),
    [
      [changerTargetName('gw1'), [0]],
      ...Array.from({ length: 10 }, (_, i) => [driveTargetName('gw1', i + 1), [0]]),
    ],
  );
  t.equal(vtl.targets[0]!.name, 'iqn.2026-11.dev.shelfgate:gw1-mediachanger');
  t.equal(vtl.targets[10]!.name, 'iqn.2026-11.dev.shelfgate:gw1-tapedrive-10');
  t.equal(vtl.targets[1]!.luns.get(0)!.peripheralDeviceType, 0x01);
  t.equal(vtl.targets[0]!.luns.get(0)!.peripheralDeviceType, 0x08);
  // DVCID of data transfer element 10001 + i is drive target i + 1's unit serial number.
  const run = changerOf(vtl);
  await run([0, 0, 0, 0, 0, 0]);
  const r = await run(readElementStatus({ type: 4, start: 10001, count: 10, dvcid: true }));
  const len = 12 + 4 + 34;
  for (let i = 0; i < 10; i++) {
    const d = r.dataIn!.subarray(16 + i * len, 16 + (i + 1) * len);
    t.equal(d.readUInt16BE(0), 10001 + i);
    t.equal(d.subarray(12 + 4 + 24, 12 + 4 + 34).toString('ascii'), vtl.drives[i]!.serialNumber, `drive ${i + 1} serial`);
  }
});

t.test('Vtl.Targets.RestartKeepsCartridges', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-vtl-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let { db, vtl } = await open(dir);
  t.equal(vtl.firstStart, true);
  const barcodes = await vtl.service.createTapes({ prefix: 'GW', count: 2, sizeBytes: 100 * GIB });
  const run = changerOf(vtl);
  await run([0, 0, 0, 0, 0, 0]);
  t.equal((await run(moveMedium(1, 10003))).status, 0);
  await vtl.close();
  await db.close();
  ({ db, vtl } = await open(dir));
  t.teardown(async () => {
    await vtl.close();
    await db.close();
  });
  t.equal(vtl.firstStart, false);
  const tapes = await vtl.service.listTapes();
  t.same(
    tapes.map((x) => [x.barcode, x.element]).sort(),
    [
      [barcodes[0], { address: 10003, type: 'data-transfer' }],
      [barcodes[1], { address: 2, type: 'storage' }],
    ].sort(),
  );
  t.equal(vtl.drives[2]!.loadedMedium()?.barcode, barcodes[0], 'tapedrive-03 has its cartridge again');
});

t.test('Vtl.Targets.VtlProbe', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-vtl-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const probe = existsSync(PROBE_SOURCE) ? buildProbe(join(dir, 'probe')) : null;
  if (!probe) {
    t.comment('vtl-probe could not be built: skipped');
    return;
  }
  // vtl-probe reads element status into a 64 KiB buffer: 1,600 storage elements with volume tags
  // (83,200 bytes) do not fit, so this library has 40 storage + 10 import/export elements.
  const { db, vtl } = await open(join(dir, 'data'), { storage: 40, importExport: 10 });
  const [barcode] = await vtl.service.createTapes({ prefix: 'PRB', count: 1, sizeBytes: 100 * GIB });
  const targets: TargetConfig[] = vtl.targets;
  const server = new IscsiServer({ registry: { list: () => targets, get: (name) => targets.find((x) => x.name === name) } });
  const { port } = await server.listen('127.0.0.1', 0);
  t.teardown(async () => {
    await server.close();
    await vtl.close();
    await db.close();
  });
  const result = await runTool(
    probe,
    [`iscsi://127.0.0.1:${port}/${changerTargetName('gw1')}/0`, `iscsi://127.0.0.1:${port}/${driveTargetName('gw1', 1)}/0`, '1', '10001', '262144', '64'],
    { timeoutMs: 120_000 },
  );
  t.comment(result.stdout);
  t.match(result.stdout, `tag='${barcode}`, 'the tape is in the inventory');
  t.notMatch(result.stdout, /MALFORMED/, 'READ ELEMENT STATUS for all element types is well formed');
  t.match(result.stdout, /MOVE MEDIUM 1->10001 +lun 0: GOOD/);
  t.match(result.stdout, /MOVE MEDIUM drive->slot +lun 0: CHECK CONDITION key=ILLEGAL_REQUEST\(0x5\) asc\/ascq=0x5302/, 'refused while the drive prevents removal');
  t.match(result.stdout, /MOVE MEDIUM 10001->1 +lun 0: GOOD/);
  // The one step H8's drive answers differently on purpose (SPACE +1 block after SPACE -1
  // filemark, see test/iscsi/scsi/ssc-vtl-probe.test.ts).
  t.match(result.stdout, /vtl-probe: \d+ passed, 0 failed/);
});
