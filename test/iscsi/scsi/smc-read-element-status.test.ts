// SMC-3 6.10 READ ELEMENT STATUS on the STK-L700 personality (transport 1, drives 500–509,
// storage 1000–2599, import/export 3000–4599), byte for byte.

import t from 'tap';
import { stkL700 } from '../../../iscsi/scsi/personalities/stk-l700.js';
import { Sense } from '../../../iscsi/scsi/sense.js';
import { expectGood, expectSense } from '../../helpers/expect-sense.js';
import { closeVtlFixture, GIB, moveMedium, openVtlFixture, readElementStatus } from '../../helpers/vtl-fixture.js';

const hex16 = (n: number) => n.toString(16).padStart(4, '0');
const hex24 = (n: number) => n.toString(16).padStart(6, '0');
const zeros = (bytes: number) => '00'.repeat(bytes);
const ascii = (s: string, width: number) => Buffer.from(s.padEnd(width, ' '), 'ascii').toString('hex');
const volumeTag = (barcode: string | null) => (barcode === null ? zeros(36) : ascii(barcode, 32) + zeros(4));

t.test('Smc.ReadElementStatus.StorageVoltag', async (t) => {
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  await f.service.createTapeWithBarcode({ barcode: 'TAPE00001', sizeBytes: 100 * GIB });
  await f.ready();
  const r = await f.run(readElementStatus({ type: 2, start: 1000, count: 2, voltag: true }));
  expectGood(t, r);
  const descriptorLength = 12 + 36 + 4;
  const expected =
    // element status data header: first 1000, 2 elements, byte count of report available
    hex16(1000) + hex16(2) + '00' + hex24(8 + 2 * descriptorLength) +
    // storage element page: type 2, PVOLTAG, descriptor length, byte count of descriptor data
    '02' + '80' + hex16(descriptorLength) + '00' + hex24(2 * descriptorLength) +
    // 1000: FULL|ACCESS, medium type 1 (data), no source, volume tag, empty identifier
    hex16(1000) + '09' + '00' + '0000' + '000000' + '01' + '0000' + volumeTag('TAPE00001') + zeros(4) +
    // 1001: ACCESS, empty
    hex16(1001) + '08' + '00' + '0000' + '000000' + '00' + '0000' + volumeTag(null) + zeros(4);
  t.equal(r.dataIn!.toString('hex'), expected);
});

t.test('Smc.ReadElementStatus.DataTransferDvcid', async (t) => {
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  await f.service.createTapeWithBarcode({ barcode: 'TAPE00001', sizeBytes: 100 * GIB });
  await f.ready();
  expectGood(t, await f.run(moveMedium(1000, 501)));
  const r = await f.run(readElementStatus({ type: 4, start: 500, count: 2, voltag: true, dvcid: true }));
  expectGood(t, r);
  const len = 12 + 36 + 4 + 34;
  const identifier = (serial: string) => '02' + '01' + '00' + '22' + ascii('IBM', 8) + ascii('ULT3580-TD5', 16) + ascii(serial, 10);
  const expected =
    hex16(500) + hex16(2) + '00' + hex24(8 + 2 * len) +
    '04' + '80' + hex16(len) + '00' + hex24(2 * len) +
    // 500: empty, ACCESS
    hex16(500) + '08' + '00' + '0000' + '000000' + '00' + '0000' + volumeTag(null) + identifier('SGDRIVE001') +
    // 501: FULL, ACCESS (loaded, but the library's robot unloads it on MOVE MEDIUM), SVALID from
    // 1000, data medium
    hex16(501) + '09' + '00' + '0000' + '000000' + '81' + hex16(1000) + volumeTag('TAPE00001') + identifier('SGDRIVE002');
  t.equal(r.dataIn!.toString('hex'), expected);
  f.drives[1]!.removalPrevented = true;
  const prevented = await f.run(readElementStatus({ type: 4, start: 501, count: 1 }));
  t.equal(prevented.dataIn!.subarray(16 + 2, 16 + 3).toString('hex'), '01', 'PREVENT MEDIUM REMOVAL: FULL, not ACCESS');
  f.drives[1]!.removalPrevented = false;
  f.drives[1]!.unloaded = true;
  const after = await f.run(readElementStatus({ type: 4, start: 501, count: 1 }));
  t.equal(after.dataIn!.subarray(16 + 2, 16 + 3).toString('hex'), '09', 'unloaded: FULL|ACCESS');
});

t.test('Smc.ReadElementStatus.AllTypes', async (t) => {
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  await f.service.createTapeWithBarcode({ barcode: 'TAPE00001', sizeBytes: 100 * GIB });
  await f.ready();
  const r = await f.run(readElementStatus({ type: 0, voltag: true }));
  expectGood(t, r);
  const d = r.dataIn!;
  const total = 1 + 10 + 1600 + 1600;
  const len = 52;
  t.equal(d.subarray(0, 8).toString('hex'), hex16(1) + hex16(total) + '00' + hex24(4 * 8 + total * len), 'header');
  t.equal(d.length, 8 + 4 * 8 + total * len, 'whole report');
  // One page per element type, in ascending address order: transport, drives, storage, I/E.
  const pages: string[] = [];
  let p = 8;
  while (p < d.length) {
    const type = d[p]!;
    const bytes = d.readUIntBE(p + 5, 3);
    t.equal(d.readUInt16BE(p + 2), len, `page ${type} descriptor length`);
    pages.push(`${type}:${bytes / len}:${d.readUInt16BE(p + 8)}`);
    p += 8 + bytes;
  }
  t.same(pages, ['1:1:1', '4:10:500', '2:1600:1000', '3:1600:3000'], 'type:count:first address');
  // The transport descriptor has neither FULL nor ACCESS.
  t.equal(d.subarray(16, 16 + 12).toString('hex'), hex16(1) + '00' + zeros(9));
});

t.test('Smc.ReadElementStatus.AllTypesFromStartingAddress', async (t) => {
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  await f.ready();
  const r = await f.run(readElementStatus({ type: 0, start: 505, count: 7 }));
  expectGood(t, r);
  const d = r.dataIn!;
  // 505–509 (drives), then 1000–1001 (storage): two pages.
  t.equal(d.subarray(0, 8).toString('hex'), hex16(505) + hex16(7) + '00' + hex24(2 * 8 + 7 * 16));
  t.equal(d[8], 4);
  t.equal(d.readUIntBE(13, 3), 5 * 16);
  t.equal(d[16 + 5 * 16], 2);
  t.equal(d.readUInt16BE(16 + 5 * 16 + 8), 1000);
});

t.test('Smc.ReadElementStatus.AllocationLength', async (t) => {
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  await f.ready();
  const r = await f.run(readElementStatus({ type: 2, start: 1000, count: 3, alloc: 20 }));
  expectGood(t, r);
  t.equal(r.dataIn!.length, 20, 'cut to ALLOCATION LENGTH');
  t.equal(r.dataIn!.subarray(0, 8).toString('hex'), hex16(1000) + hex16(3) + '00' + hex24(8 + 3 * 16), 'byte count is what is available');
});

t.test('Smc.ReadElementStatus.AllocationLengthCompleteDescriptors', async (t) => {
  // vtl-probe and older software read with a 64 KiB buffer and walk the report by its byte counts:
  // the whole library (1,600 storage + 1,600 I/E slots) does not fit, so only complete descriptors
  // are returned and the headers count exactly those.
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  await f.ready();
  const r = await f.run(readElementStatus({ type: 0, voltag: true, alloc: 0xffff }));
  expectGood(t, r);
  const d = r.dataIn!;
  const reportBytes = d.readUIntBE(5, 3);
  t.ok(8 + reportBytes <= 0xffff, 'the report fits in the allocation length');
  t.equal(d.length, 8 + reportBytes, 'exactly the reported bytes are sent');
  let offset = 8;
  let described = 0;
  while (offset < d.length) {
    const descriptorLength = d.readUInt16BE(offset + 2);
    const pageBytes = d.readUIntBE(offset + 5, 3);
    t.equal(pageBytes % descriptorLength, 0, 'pages hold whole descriptors');
    described += pageBytes / descriptorLength;
    offset += 8 + pageBytes;
  }
  t.equal(offset, d.length, 'pages add up to the report');
  t.equal(d.readUInt16BE(2), described, 'NUMBER OF ELEMENTS AVAILABLE counts the descriptors sent');
  t.ok(described < 1 + 10 + 1600 + 1600, 'a subset of the library');
  // The next request picks up where this one ended.
  const last = d.readUInt16BE(d.length - (12 + 36 + 4));
  const next = await f.run(readElementStatus({ type: 0, voltag: true, start: last + 1, alloc: 0xffff }));
  expectGood(t, next);
  t.equal(next.dataIn!.readUInt16BE(0), last + 1, 'FIRST ELEMENT ADDRESS REPORTED continues the walk');
});

t.test('Smc.ReadElementStatus.InvalidElementType', async (t) => {
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  await f.ready();
  expectSense(t, await f.run(readElementStatus({ type: 5 })), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1 });
});

t.test('Smc.ReadElementStatus.StartBeyondLastElement', async (t) => {
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  await f.ready();
  expectSense(t, await f.run(readElementStatus({ type: 4, start: 510 })), Sense.INVALID_ELEMENT_ADDRESS, { fieldPointer: 2 });
});
