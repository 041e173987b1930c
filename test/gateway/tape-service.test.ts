// The gateway tape API on a real Level database: CreateTapes / CreateTapeWithBarcode rules,
// DeleteTape, listing, and barcodes never reused.

import t from 'tap';
import { stkL700 } from '../../iscsi/scsi/personalities/stk-l700.js';
import { closeVtlFixture, GIB, openVtlFixture } from '../helpers/vtl-fixture.js';

t.test('TapeService.CreateTapes.GeneratedBarcodes', async (t) => {
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  const barcodes = await f.service.createTapes({ prefix: 'TEST', count: 3, sizeBytes: 100 * GIB, poolId: 'GLACIER' });
  t.equal(barcodes.length, 3);
  for (const b of barcodes) t.match(b, /^TEST[0-9A-F]{6}$/);
  t.equal(new Set(barcodes).size, 3);
  const tapes = await f.service.listTapes();
  t.same(
    tapes.map((x) => [x.status, x.sizeBytes, x.usedBytes, x.worm, x.poolId]),
    [0, 1, 2].map(() => ['AVAILABLE', 100 * GIB, 0, false, 'GLACIER']),
  );
  t.same(tapes.map((x) => x.element?.type), ['storage', 'storage', 'storage']);
  t.same(tapes.map((x) => x.element!.address).sort(), [1000, 1001, 1002]);
});

t.test('TapeService.CreateTapes.ImportExportSlots', async (t) => {
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  const [barcode] = await f.service.createTapes({ prefix: 'A', count: 1, sizeBytes: 200 * GIB, slotType: 'import-export' });
  t.match(barcode, /^A[0-9A-F]{9}$/);
  const info = await f.service.describeTape(barcode!);
  t.same(info.element, { address: 3000, type: 'import-export' });
  t.equal(f.library.elements().find((e) => e.address === 3000)?.placedByOperator, true, 'IMPEXP: placed by the operator');
});

t.test('TapeService.CreateTapes.InvalidArguments', async (t) => {
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  const bad = { code: 'GW_TAPE_INVALID_ARGUMENT' };
  await t.rejects(f.service.createTapes({ prefix: 'TESTX', count: 1, sizeBytes: 100 * GIB }), bad, 'prefix longer than 4');
  await t.rejects(f.service.createTapes({ prefix: 'T1', count: 1, sizeBytes: 100 * GIB }), bad, 'prefix with a digit');
  await t.rejects(f.service.createTapes({ prefix: 'T', count: 1, sizeBytes: 99 * GIB }), bad, 'below 100 GiB');
  await t.rejects(f.service.createTapes({ prefix: 'T', count: 1, sizeBytes: 15 * 1024 * GIB + GIB }), bad, 'above 15 TiB');
  await t.rejects(f.service.createTapes({ prefix: 'T', count: 1, sizeBytes: 100 * GIB + 1 }), bad, 'not whole GiB');
  await t.rejects(f.service.createTapes({ prefix: 'T', count: 1501, sizeBytes: 100 * GIB }), bad, 'more than 1,500');
  await t.rejects(f.service.createTapeWithBarcode({ barcode: 'ABCD', sizeBytes: 100 * GIB }), bad, 'barcode shorter than 5');
  await t.rejects(f.service.createTapeWithBarcode({ barcode: 'abcde', sizeBytes: 100 * GIB }), bad, 'lower case');
  await t.rejects(f.service.createTapeWithBarcode({ barcode: 'A'.repeat(17), sizeBytes: 100 * GIB }), bad, 'longer than 16');
  t.same(await f.service.listTapes(), []);
});

t.test('TapeService.DeleteTape.BarcodeNeverReused', async (t) => {
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  await f.service.createTapeWithBarcode({ barcode: 'WORM00001', sizeBytes: 100 * GIB, worm: true });
  await t.rejects(f.service.createTapeWithBarcode({ barcode: 'WORM00001', sizeBytes: 100 * GIB }), { code: 'GW_TAPE_BARCODE_EXISTS' });
  t.equal((await f.service.describeTape('WORM00001')).worm, true);
  await f.service.deleteTape('WORM00001');
  t.equal(f.catalog.get('WORM00001')?.status, 'DELETED');
  t.equal(await f.media.header('WORM00001'), undefined, 'its medium is gone');
  t.same(await f.service.listTapes(), [], 'deleted tapes are not listed');
  t.equal(f.library.elements().find((e) => e.address === 1000)?.full, false, 'the slot is empty');
  await t.rejects(f.service.createTapeWithBarcode({ barcode: 'WORM00001', sizeBytes: 100 * GIB }), { code: 'GW_TAPE_BARCODE_EXISTS' });
  await t.rejects(f.service.deleteTape('WORM00001'), { code: 'GW_TAPE_INVALID_STATE' });
  await t.rejects(f.service.deleteTape('NOSUCHTAPE'), { code: 'GW_TAPE_NOT_FOUND' });
});

t.test('TapeService.DeleteTape.NotInDrive', async (t) => {
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  await f.service.createTapeWithBarcode({ barcode: 'TAPE00001', sizeBytes: 100 * GIB });
  await f.library.moveMedium(1000, 500);
  await t.rejects(f.service.deleteTape('TAPE00001'), { code: 'GW_TAPE_INVALID_STATE' });
  const info = await f.service.describeTape('TAPE00001');
  t.same(info.element, { address: 500, type: 'data-transfer' });
});

t.test('TapeService.UsedBytes', async (t) => {
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  await f.service.createTapeWithBarcode({ barcode: 'TAPE00001', sizeBytes: 100 * GIB });
  await f.library.moveMedium(1000, 500);
  await f.drives[0]!.loadedMedium()!.writeRecord(Buffer.alloc(65536, 1));
  t.equal((await f.service.describeTape('TAPE00001')).usedBytes, 65536, 'from the loaded medium');
  f.drives[0]!.unloaded = true;
  await f.library.moveMedium(500, 1000);
  t.equal((await f.service.describeTape('TAPE00001')).usedBytes, 65536, 'from the stored header');
});
