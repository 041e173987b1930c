// SMC-3 6.6 MOVE MEDIUM and 6.13 PREVENT ALLOW MEDIUM REMOVAL on the STK-L700 personality
// (transport 1, drives 500–509, storage 1000–2599, import/export 3000–4599): every refused move
// with its exact sense, exports through the import/export elements, and a restart.

import t, { type Test } from 'tap';
import { ibm03584L32 } from '../../../iscsi/scsi/personalities/ibm-03584l32.js';
import { stkL700 } from '../../../iscsi/scsi/personalities/stk-l700.js';
import { Sense } from '../../../iscsi/scsi/sense.js';
import { expectGood, expectSense } from '../../helpers/expect-sense.js';
import { closeVtlFixture, GIB, moveMedium, nexusB, openVtlFixture, readElementStatus, type VtlFixture } from '../../helpers/vtl-fixture.js';

async function withTapes(t: Test, barcodes: string[]): Promise<VtlFixture> {
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  for (const barcode of barcodes) await f.service.createTapeWithBarcode({ barcode, sizeBytes: 100 * GIB });
  await f.ready();
  return f;
}

/** FULL bit and barcode of one element. */
async function element(f: VtlFixture, address: number): Promise<string> {
  const r = await f.run(readElementStatus({ type: 0, start: address, count: 1, voltag: true }));
  const d = r.dataIn!.subarray(16);
  return d[2]! & 0x01 ? `full ${d.subarray(12, 44).toString('ascii').trim()}` : 'empty';
}

t.test('Smc.MoveMedium.StorageToDriveAndBack', async (t) => {
  const f = await withTapes(t, ['TAPE00001']);
  expectGood(t, await f.run(moveMedium(1000, 500)));
  t.equal(await element(f, 500), 'full TAPE00001');
  t.equal(await element(f, 1000), 'empty');
  t.equal(f.drives[0]!.loadedMedium()?.barcode, 'TAPE00001', 'the drive has the medium');
  t.same(f.catalog.get('TAPE00001')?.location, { address: 500, sourceAddress: 1000 });
  f.drives[0]!.unloaded = true;
  expectGood(t, await f.run(moveMedium(500, 1000, 1)));
  t.equal(await element(f, 1000), 'full TAPE00001');
  t.equal(f.drives[0]!.loadedMedium(), undefined);
});

t.test('Smc.MoveMedium.SourceEmpty', async (t) => {
  const f = await withTapes(t, []);
  expectSense(t, await f.run(moveMedium(1000, 500)), Sense.MEDIUM_SOURCE_ELEMENT_EMPTY);
});

t.test('Smc.MoveMedium.DestinationFull', async (t) => {
  const f = await withTapes(t, ['TAPE00001', 'TAPE00002']);
  expectSense(t, await f.run(moveMedium(1000, 1001)), Sense.MEDIUM_DESTINATION_ELEMENT_FULL);
  expectGood(t, await f.run(moveMedium(1000, 502)));
  expectSense(t, await f.run(moveMedium(1001, 502)), Sense.MEDIUM_DESTINATION_ELEMENT_FULL);
});

/** ACCESS bit (SMC-3 6.10.5 data transfer element descriptor, byte 2 bit 3) of one element. */
async function access(f: VtlFixture, address: number): Promise<boolean> {
  const r = await f.run(readElementStatus({ type: 0, start: address, count: 1 }));
  return (r.dataIn![16 + 2]! & 0x08) !== 0;
}

t.test('Smc.MoveMedium.LoadedDriveIsUnloadedByTheLibrary', async (t) => {
  // Bacula's mtx-changer with offline=0 moves a cartridge out of a drive without LOAD UNLOAD.
  const f = await withTapes(t, ['TAPE00001']);
  expectGood(t, await f.run(moveMedium(1000, 500)));
  t.equal(f.drives[0]!.removalState(), 'not-unloaded');
  t.equal(await access(f, 500), true, 'the transport may take it');
  expectGood(t, await f.run(moveMedium(500, 1000)));
  t.equal(await element(f, 1000), 'full TAPE00001');
  t.equal(await element(f, 500), 'empty');
  t.equal(f.drives[0]!.loadedMedium(), undefined, 'the drive gave the cartridge up');
});

t.test('Smc.MoveMedium.RequireDriveUnload', async (t) => {
  // The IBM 3584 option (tapeLibrary.requireDriveUnload): 53/01 until the initiator unloads.
  const f = await openVtlFixture(ibm03584L32, undefined, { requireDriveUnload: true });
  t.teardown(() => closeVtlFixture(f));
  await f.service.createTapeWithBarcode({ barcode: 'TAPE00001', sizeBytes: 100 * GIB });
  await f.ready();
  expectGood(t, await f.run(moveMedium(0x400, 0x101)));
  t.equal(await access(f, 0x101), false, 'no access before the drive unloads');
  expectSense(t, await f.run(moveMedium(0x101, 0x400)), Sense.UNLOAD_TAPE_FAILURE);
  t.equal(await element(f, 0x101), 'full TAPE00001', 'the cartridge stays in the drive');
  f.drives[0]!.unloaded = true;
  t.equal(await access(f, 0x101), true);
  expectGood(t, await f.run(moveMedium(0x101, 0x400)));
  t.equal(await element(f, 0x400), 'full TAPE00001');
});

t.test('Smc.MoveMedium.MediumRemovalPrevented', async (t) => {
  const f = await withTapes(t, ['TAPE00001']);
  expectGood(t, await f.run(moveMedium(1000, 500)));
  f.drives[0]!.removalPrevented = true;
  t.equal(await access(f, 500), false);
  expectSense(t, await f.run(moveMedium(500, 1000)), Sense.MEDIUM_REMOVAL_PREVENTED); // loaded
  f.drives[0]!.unloaded = true;
  expectSense(t, await f.run(moveMedium(500, 1000)), Sense.MEDIUM_REMOVAL_PREVENTED); // unloaded
  t.equal(await element(f, 500), 'full TAPE00001', 'the cartridge stays in the drive');
  f.drives[0]!.removalPrevented = false;
  expectGood(t, await f.run(moveMedium(500, 1000)));
});

t.test('Smc.MoveMedium.InvalidElementAddress', async (t) => {
  const f = await withTapes(t, ['TAPE00001']);
  expectSense(t, await f.run(moveMedium(999, 500)), Sense.INVALID_ELEMENT_ADDRESS, { fieldPointer: 4 });
  expectSense(t, await f.run(moveMedium(1000, 510)), Sense.INVALID_ELEMENT_ADDRESS, { fieldPointer: 6 });
  expectSense(t, await f.run(moveMedium(1000, 1)), Sense.INVALID_ELEMENT_ADDRESS, { fieldPointer: 6 });
  expectSense(t, await f.run(moveMedium(1000, 500, 2)), Sense.INVALID_ELEMENT_ADDRESS, { fieldPointer: 2 });
  const invert = moveMedium(1000, 500);
  invert[10] = 0x01;
  expectSense(t, await f.run(invert), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 10, bitPointer: 0 });
});

t.test('Smc.MoveMedium.ExportThroughImportExportElement', async (t) => {
  const f = await withTapes(t, ['TAPE00001']);
  expectGood(t, await f.run(moveMedium(1000, 3000)));
  t.equal(await element(f, 3000), 'empty', 'the cartridge left the library');
  t.equal(f.catalog.get('TAPE00001')?.status, 'IN TRANSIT TO VTS');
  t.equal(f.catalog.get('TAPE00001')?.location, null);
});

t.test('Smc.PreventAllowMediumRemoval.HoldsExports', async (t) => {
  const f = await withTapes(t, ['TAPE00001']);
  await f.ready(nexusB);
  expectGood(t, await f.run([0x1e, 0, 0, 0, 0x01, 0]));
  expectGood(t, await f.run(moveMedium(1000, 3000)));
  t.equal(await element(f, 3000), 'full TAPE00001', 'waits in the import/export element');
  t.equal(f.catalog.get('TAPE00001')?.status, 'AVAILABLE');
  // Moving it back in is an import.
  expectGood(t, await f.run(moveMedium(3000, 1000)));
  expectGood(t, await f.run(moveMedium(1000, 3001)));
  expectGood(t, await f.run([0x1e, 0, 0, 0, 0x00, 0]));
  // The cartridges leaving is an inventory change every nexus hears of, the issuer included.
  expectSense(t, await f.run([0, 0, 0, 0, 0, 0]), Sense.IMPORT_OR_EXPORT_ELEMENT_ACCESSED);
  t.equal(await element(f, 3001), 'empty', 'exported once removal is allowed');
  t.equal(f.catalog.get('TAPE00001')?.status, 'IN TRANSIT TO VTS');
  expectSense(t, await f.run([0, 0, 0, 0, 0, 0], nexusB), Sense.IMPORT_OR_EXPORT_ELEMENT_ACCESSED);
});

t.test('Smc.PreventAllowMediumRemoval.InvalidPrevent', async (t) => {
  const f = await withTapes(t, []);
  expectSense(t, await f.run([0x1e, 0, 0, 0, 0x02, 0]), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 4 });
});

t.test('Smc.PreventAllowMediumRemoval.ReleasedOnNexusLoss', async (t) => {
  const f = await withTapes(t, ['TAPE00001']);
  expectGood(t, await f.run([0x1e, 0, 0, 0, 0x01, 0]));
  expectGood(t, await f.run(moveMedium(1000, 3000)));
  f.changer.nexusLost('a');
  await f.library.exclusive(async () => undefined);
  t.equal(f.catalog.get('TAPE00001')?.status, 'IN TRANSIT TO VTS');
});

t.test('Smc.MoveMedium.SurvivesRestart', async (t) => {
  let f = await openVtlFixture(stkL700);
  const dir = f.dir;
  await f.service.createTapeWithBarcode({ barcode: 'TAPE00001', sizeBytes: 100 * GIB });
  await f.service.createTapeWithBarcode({ barcode: 'TAPE00002', sizeBytes: 100 * GIB });
  await f.ready();
  expectGood(t, await f.run(moveMedium(1000, 503)));
  expectGood(t, await f.run(moveMedium(1001, 1500)));
  await closeVtlFixture(f, true);
  f = await openVtlFixture(stkL700, dir);
  t.teardown(() => closeVtlFixture(f));
  await f.ready();
  t.equal(await element(f, 503), 'full TAPE00001');
  t.equal(await element(f, 1500), 'full TAPE00002');
  t.equal(await element(f, 1000), 'empty');
  t.equal(f.drives[3]!.loadedMedium()?.barcode, 'TAPE00001', 'loaded into its drive again');
  const r = await f.run(readElementStatus({ type: 2, start: 1500, count: 1 }));
  t.equal(r.dataIn!.subarray(16 + 9, 16 + 12).toString('hex'), '8103e9', 'SVALID, from 1001');
});
