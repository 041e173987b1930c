// The media changer's SPC side and SMC-3 mode pages, per personality: INQUIRY identity, VPD pages
// (no block device pages), MODE SENSE 1Dh / 1Eh / 1Fh, INITIALIZE ELEMENT STATUS (WITH RANGE),
// POSITION TO ELEMENT, REPORT SUPPORTED OPERATION CODES.

import t from 'tap';
import { awsGatewayVtl } from '../../../iscsi/scsi/personalities/aws-gateway-vtl.js';
import { ibm03584L32 } from '../../../iscsi/scsi/personalities/ibm-03584l32.js';
import { stkL700 } from '../../../iscsi/scsi/personalities/stk-l700.js';
import { Sense } from '../../../iscsi/scsi/sense.js';
import { expectGood, expectSense } from '../../helpers/expect-sense.js';
import { closeVtlFixture, openVtlFixture } from '../../helpers/vtl-fixture.js';

const ascii = (s: string, width: number) => Buffer.from(s.padEnd(width, ' '), 'ascii').toString('hex');
const hex16 = (n: number) => n.toString(16).padStart(4, '0');

for (const [personality, vendor, product, revision] of [
  [stkL700, 'STK', 'L700', '0107'],
  [awsGatewayVtl, 'AWS', 'Gateway-VTL', '0100'],
  [ibm03584L32, 'IBM', '03584L32', '0402'],
] as const) {
  t.test(`Smc.Inquiry.Standard ${personality.changerType}`, async (t) => {
    const f = await openVtlFixture(personality);
    t.teardown(() => closeVtlFixture(f));
    const r = await f.run([0x12, 0, 0, 0, 96, 0]);
    expectGood(t, r);
    const d = r.dataIn!;
    t.equal(d.subarray(0, 2).toString('hex'), '0880', 'medium changer, RMB');
    t.equal(d.subarray(8, 36).toString('hex'), ascii(vendor, 8) + ascii(product, 16) + ascii(revision, 4));
  });

  t.test(`Smc.ModeSense.ElementAddressAssignment ${personality.changerType}`, async (t) => {
    const f = await openVtlFixture(personality);
    t.teardown(() => closeVtlFixture(f));
    await f.ready();
    const r = await f.run([0x1a, 0x08, 0x1d, 0, 0xff, 0]);
    expectGood(t, r);
    const m = personality.addressMap;
    const page =
      '1d12' +
      [m.mediumTransport, m.storage, m.importExport, m.dataTransfer].map((x) => hex16(x.first) + hex16(x.count)).join('') +
      '0000';
    t.equal(r.dataIn!.toString('hex'), '17000000' + page);
  });
}

t.test('Smc.Inquiry.VpdPages', async (t) => {
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  const r = await f.run([0x12, 1, 0x00, 0, 255, 0]);
  t.equal(r.dataIn!.toString('hex'), '0800' + '0003' + '008083', 'supported pages 00h, 80h, 83h only');
  const serial = await f.run([0x12, 1, 0x80, 0, 255, 0]);
  t.equal(serial.dataIn!.toString('hex'), '0880000a' + Buffer.from('SGCHANGER1').toString('hex'));
  expectSense(t, await f.run([0x12, 1, 0xb0, 0, 255, 0]), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 2 });
});

t.test('Smc.ModeSense.TransportGeometryAndDeviceCapabilities', async (t) => {
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  await f.ready();
  const geometry = await f.run([0x1a, 0x08, 0x1e, 0, 0xff, 0]);
  t.equal(geometry.dataIn!.toString('hex'), '07000000' + '1e020000');
  const capabilities = await f.run([0x5a, 0x08, 0x1f, 0, 0, 0, 0, 0, 0xff, 0]);
  t.equal(capabilities.dataIn!.toString('hex'), '001a000000000000' + '1f12' + '0e00000e0e0e' + '00'.repeat(12));
  const all = await f.run([0x1a, 0x08, 0x3f, 0, 0xff, 0]);
  expectGood(t, all);
  t.same(
    pageCodes(all.dataIn!.subarray(4)),
    [0x0a, 0x1d, 0x1e, 0x1f],
    'all pages: control, element address assignment, transport geometry, device capabilities',
  );
});

function pageCodes(pages: Buffer): number[] {
  const out: number[] = [];
  for (let p = 0; p < pages.length; p += 2 + pages[p + 1]!) out.push(pages[p]! & 0x3f);
  return out;
}

t.test('Smc.InitializeElementStatus', async (t) => {
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  await f.ready();
  expectGood(t, await f.run([0x07, 0, 0, 0, 0, 0]));
  expectGood(t, await f.run([0x37, 0x01, 0x03, 0xe8, 0, 0, 0x00, 0x10, 0, 0]));
  expectSense(t, await f.run([0x37, 0x01, 0x03, 0xe7, 0, 0, 0x00, 0x10, 0, 0]), Sense.INVALID_ELEMENT_ADDRESS, { fieldPointer: 2 });
});

t.test('Smc.PositionToElement', async (t) => {
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  await f.ready();
  expectGood(t, await f.run([0x2b, 0, 0, 1, 0x03, 0xe8, 0, 0, 0, 0]));
  expectSense(t, await f.run([0x2b, 0, 0, 1, 0x00, 0x02, 0, 0, 0, 0]), Sense.INVALID_ELEMENT_ADDRESS, { fieldPointer: 4 });
  expectSense(t, await f.run([0x2b, 0, 0, 5, 0x03, 0xe8, 0, 0, 0, 0]), Sense.INVALID_ELEMENT_ADDRESS, { fieldPointer: 2 });
});

t.test('Smc.ReportSupportedOperationCodes', async (t) => {
  const f = await openVtlFixture(stkL700);
  t.teardown(() => closeVtlFixture(f));
  await f.ready();
  const one = await f.run([0xa3, 0x0c, 0x01, 0xa5, 0, 0, 0, 0, 0, 0x40, 0, 0]);
  t.equal(one.dataIn!.toString('hex'), '0003000c' + 'a500ffffffffffff00000107');
  const all = await f.run([0xa3, 0x0c, 0x00, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]);
  const opcodes = new Set<number>();
  for (let p = 4; p < all.dataIn!.length; p += 8) opcodes.add(all.dataIn![p]!);
  for (const op of [0x00, 0x03, 0x07, 0x12, 0x16, 0x17, 0x1a, 0x1e, 0x2b, 0x37, 0x5a, 0x5e, 0x5f, 0xa5, 0xb8]) {
    t.ok(opcodes.has(op), `opcode ${op.toString(16)} reported`);
  }
});
