// SPC-4 commands and the dispatcher's unit attention / error handling, on a disk LU.

import t from 'tap';
import { ScsiStatus, type Nexus, type ScsiResponse } from '../../../iscsi/device.js';
import { createDiskLogicalUnit } from '../../../iscsi/scsi/disk.js';
import { Sense } from '../../../iscsi/scsi/sense.js';
import { decodeSense, expectGood, expectSense } from '../../helpers/expect-sense.js';
import { MemoryBackend } from '../../helpers/memory-backend.js';

const TARGET_PORT = 'iqn.2026-11.dev.shelfgate:shelfgate-vol1,t,0x0001';
const nexusA: Nexus = {
  id: 'a',
  initiatorPortName: 'iqn.1994-05.com.example:a,i,0x400001370000',
  initiatorName: 'iqn.1994-05.com.example:a',
  targetPortName: TARGET_PORT,
  relativeTargetPortId: 1,
};
const nexusB: Nexus = { ...nexusA, id: 'b', initiatorPortName: 'iqn.1994-05.com.example:b,i,0x400001370000', initiatorName: 'iqn.1994-05.com.example:b' };

function disk() {
  const backend = new MemoryBackend({ blockSize: 512, blockCount: 2048, serial: 'SG0000000042', naaId: '5001405abcdef012' });
  const lu = createDiskLogicalUnit(backend, { vendor: 'SHELFGTE', product: 'VOLUME', revision: '0001' });
  const run = (cdb: number[], dataOut: Buffer | null = null, nexus: Nexus = nexusA): Promise<ScsiResponse> =>
    lu.execute({ nexus, cdb: Buffer.from(cdb), taskAttr: 1, expectedDataTransferLength: 4096, dataOut });
  const ready = async (nexus: Nexus = nexusA) => {
    await run([0x00, 0, 0, 0, 0, 0], null, nexus);
  };
  return { backend, lu, run, ready };
}

const inquiry = (evpd: number, page: number, alloc: number) => [0x12, evpd, page, alloc >> 8, alloc & 0xff, 0];
const ascii = (b: Buffer | undefined, from: number, to: number) => b?.subarray(from, to).toString('ascii');

t.test('Inquiry.Standard', async (t) => {
  const { run } = disk();
  const r = await run(inquiry(0, 0, 260));
  expectGood(t, r);
  const d = r.dataIn!;
  t.equal(d.length, 96);
  t.equal(d.subarray(0, 8).toString('hex'), '00000612' + '5b' + '000002', 'type 0, SPC-4, HiSup, format 2, CmdQue');
  t.equal(ascii(d, 8, 36), 'SHELFGTEVOLUME          0001');
  t.equal(d.subarray(58, 66).toString('hex'), '00a00960046004c0', 'SAM-5, iSCSI, SPC-4, SBC-3');
});

t.test('Inquiry.AllocLength', async (t) => {
  const { run } = disk();
  t.equal((await run(inquiry(0, 0, 5))).dataIn?.length, 5);
  const zero = await run(inquiry(0, 0, 0));
  expectGood(t, zero);
  t.equal(zero.dataIn?.length ?? 0, 0);
});

t.test('Inquiry.EvpdZeroPageCodeNonZero / Inquiry.CmdDt / Inquiry.EvpdUnsupportedPage', async (t) => {
  const { run } = disk();
  expectSense(t, await run(inquiry(0, 0x80, 255)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 2 });
  expectSense(t, await run(inquiry(2, 0, 255)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 1 });
  expectSense(t, await run(inquiry(1, 0xc7, 255)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 2 });
});

t.test('Inquiry.SupportedVPD / UnitSerial / DeviceIdentification', async (t) => {
  const { run } = disk();
  t.equal((await run(inquiry(1, 0x00, 255))).dataIn?.toString('hex'), '0000000600' + '8083b0b1b2');
  const serial = (await run(inquiry(1, 0x80, 255))).dataIn!;
  t.equal(serial.subarray(0, 4).toString('hex'), '0080000c');
  t.equal(ascii(serial, 4, 16), 'SG0000000042');
  const id = (await run(inquiry(1, 0x83, 255))).dataIn!;
  t.equal(id.subarray(0, 2).toString('hex'), '0083');
  t.equal(id.readUInt16BE(2), id.length - 4, 'page length');
  t.equal(id.subarray(4, 16).toString('hex'), '01030008' + '5001405abcdef012', 'NAA IEEE Registered, LU');
  t.equal(id.subarray(16, 20).toString('hex'), '02010014', 'T10 vendor ID, ASCII, 20 bytes');
  t.equal(ascii(id, 20, 40), 'SHELFGTESG0000000042');
  t.equal(id.subarray(40, 44).toString('hex'), '53980034', 'SCSI name string, UTF-8, target port, iSCSI, PIV');
  t.equal(id.subarray(44, 44 + TARGET_PORT.length).toString('utf8'), TARGET_PORT);
  const rel = id.subarray(id.length - 8);
  t.equal(rel.toString('hex'), '5194000400000001', 'relative target port 1');
});

t.test('Inquiry.BlockLimits / LogicalBlockProvisioning / BlockDeviceCharacteristics', async (t) => {
  const { run } = disk();
  const bl = (await run(inquiry(1, 0xb0, 64))).dataIn!;
  t.equal(bl.length, 64);
  t.equal(bl.subarray(0, 4).toString('hex'), '00b0003c');
  t.equal(bl[5], 1, 'MAXIMUM COMPARE AND WRITE LENGTH');
  t.equal(bl.readUInt32BE(8), 16384, 'MAXIMUM TRANSFER LENGTH (8 MiB)');
  t.equal(bl.readUInt32BE(20), 1 << 20, 'MAXIMUM UNMAP LBA COUNT');
  t.equal(bl.readUInt32BE(24), 256, 'MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT');
  t.equal(Number(bl.readBigUInt64BE(36)), 16384, 'MAXIMUM WRITE SAME LENGTH = MAXIMUM TRANSFER LENGTH');
  t.equal((await run(inquiry(1, 0xb2, 64))).dataIn?.toString('hex'), '00b2000400e40200');
  t.equal((await run(inquiry(1, 0xb1, 64))).dataIn?.subarray(0, 6).toString('hex'), '00b1003c0001');
});

t.test('UnitAttention: power on reset first, INQUIRY neither reports nor clears it', async (t) => {
  const { run } = disk();
  expectGood(t, await run(inquiry(0, 0, 36)));
  expectSense(t, await run([0x00, 0, 0, 0, 0, 0]), Sense.POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED);
  expectGood(t, await run([0x00, 0, 0, 0, 0, 0]));
});

t.test('RequestSense returns and clears the unit attention; DESC bit selects the format', async (t) => {
  const { run } = disk();
  const r = await run([0x03, 0, 0, 0, 252, 0]);
  expectGood(t, r);
  t.equal(r.dataIn?.toString('hex'), '700006000000000a00000000290000000000');
  expectGood(t, await run([0x00, 0, 0, 0, 0, 0]));
  const none = await run([0x03, 1, 0, 0, 252, 0]);
  t.equal(none.dataIn?.toString('hex'), '7200000000000000', 'NO SENSE, descriptor format');
});

t.test('LUN reset: BUS DEVICE RESET FUNCTION OCCURRED for every nexus, the issuer included', async (t) => {
  const { run, lu, ready } = disk();
  await ready(nexusA);
  await ready(nexusB);
  lu.reset('lun');
  expectSense(t, await run([0x00, 0, 0, 0, 0, 0], null, nexusA), Sense.BUS_DEVICE_RESET_FUNCTION_OCCURRED);
  expectGood(t, await run([0x00, 0, 0, 0, 0, 0], null, nexusA));
  expectSense(t, await run([0x00, 0, 0, 0, 0, 0], null, nexusB), Sense.BUS_DEVICE_RESET_FUNCTION_OCCURRED);
  lu.reset('target-cold');
  expectSense(t, await run([0x00, 0, 0, 0, 0, 0], null, nexusA), Sense.POWER_ON_OCCURRED);
});

t.test('InvalidOpcode: INVALID COMMAND OPERATION CODE; unknown service action: INVALID FIELD IN CDB', async (t) => {
  const { run, ready } = disk();
  await ready();
  expectSense(t, await run([0x48, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Sense.INVALID_COMMAND_OPERATION_CODE); // SANITIZE
  expectSense(t, await run([0xc0, 0, 0, 0, 0, 0]), Sense.INVALID_COMMAND_OPERATION_CODE);
  expectSense(t, await run([0x9e, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 4 });
  for (let sa = 4; sa < 0x20; sa++) {
    const r = await run([0x5e, sa, 0, 0, 0, 0, 0, 0, 255, 0]);
    if (decodeSense(r.sense!).asc !== 0x24) t.fail(`PR IN service action ${sa}`);
  }
});

const modeSense6 = (pcPage: number, sub = 0, alloc = 255, dbd = false) => [0x1a, dbd ? 0x08 : 0, pcPage, sub, alloc, 0];
const modeSense10 = (pcPage: number, flags = 0, alloc = 1024) => [0x5a, flags, pcPage, 0, 0, 0, 0, alloc >> 8, alloc & 0xff, 0];

t.test('ModeSense6.AllPages', async (t) => {
  const { run, ready } = disk();
  await ready();
  const r = await run(modeSense6(0x3f));
  expectGood(t, r);
  const d = r.dataIn!;
  t.equal(d[0], d.length - 1, 'MODE DATA LENGTH');
  t.equal(d.subarray(1, 4).toString('hex'), '001008', 'DPOFUA, 8-byte block descriptor');
  t.equal(d.subarray(4, 12).toString('hex'), '0000080000000200', 'blocks 2048, block length 512');
  const pages: number[] = [];
  for (let off = 12; off < d.length; off += 2 + d[off + 1]!) pages.push(d[off]! & 0x3f);
  t.same(pages, [0x01, 0x08, 0x0a, 0x1c]);
  const noBd = await run(modeSense6(0x3f, 0, 255, true));
  t.equal(noBd.dataIn?.[3], 0, 'DBD: no block descriptor');
});

/** The control mode page we mean to report, built field by field from SPC-4 7.5.8 table 440. */
function expectedControlPage(dSense = false): Buffer {
  const page = Buffer.alloc(12);
  page[0] = 0x0a; // PS 0, SPF 0, PAGE CODE 0Ah
  page[1] = 0x0a; // PAGE LENGTH
  page[2] = dSense ? 1 << 2 : 0; // TST 000b (bits 7-5), D_SENSE (bit 2)
  page[3] = 0x1 << 4; // QUEUE ALGORITHM MODIFIER 1h (bits 7-4), QERR 00b (bits 2-1)
  page[4] = 0; // VS (7), RAC (6), UA_INTLCK_CTRL (5-4), SWP (3): all zero
  page[5] = 1 << 6; // TAS (bit 6); ATO, ATMPE, RWWP, AUTOLOAD MODE zero
  page.writeUInt16BE(0xffff, 8); // BUSY TIMEOUT PERIOD: unlimited
  return page;
}

t.test('ModeSense6.Control / PageControl', async (t) => {
  const { run, ready } = disk();
  await ready();
  const cur = (await run(modeSense6(0x0a, 0, 255, true))).dataIn!;
  t.equal(cur.subarray(4).toString('hex'), expectedControlPage().toString('hex'), 'TST 0, QAM 1, TAS, busy timeout unlimited');
  t.equal(cur[4 + 4]! & 0x40, 0, 'RAC (byte 4 bit 6) is not set');
  t.equal(cur[4 + 5]! & 0x40, 0x40, 'TAS is byte 5 bit 6');
  const changeable = (await run(modeSense6(0x40 | 0x0a, 0, 255, true))).dataIn!;
  t.equal(changeable.subarray(4).toString('hex'), '0a0a04000000000000000000', 'only D_SENSE is changeable');
  // The disk has a saveable page (caching), so saved values are implemented; the control page
  // has none of its own and reports the defaults a power on would load (mode-pages.ts).
  const saved = await run(modeSense6(0xc0 | 0x0a, 0, 255, true));
  expectGood(t, saved);
  t.equal(saved.dataIn?.subarray(4).toString('hex'), expectedControlPage().toString('hex'), 'saved = default values, PS = 0');
  expectSense(t, await run(modeSense6(0x19)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 2, bitPointer: 5 });
  expectSense(t, await run(modeSense6(0x0a, 1)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 3 });
  const truncated = await run(modeSense6(0x3f, 0, 4));
  t.equal(truncated.dataIn?.length, 4, 'allocation length');
});

t.test('ModeSense10.LongLba', async (t) => {
  const { run, ready } = disk();
  await ready();
  const d = (await run(modeSense10(0x08, 0x10))).dataIn!;
  t.equal(d.subarray(0, 8).toString('hex'), '002a00100100' + '0010', 'LONGLBA, 16-byte block descriptor');
  t.equal(d.subarray(8, 24).toString('hex'), '0000000000000800' + '0000000000000200');
  t.equal(d.subarray(24, 26).toString('hex'), '8812', 'caching page, PS = 1 (saveable)');
  t.equal(d[26]! & 0x04, 0x04, 'WCE = 1: the backend write cache is enabled');
});

t.test('ModeSelect6.ControlDSense switches to descriptor format sense', async (t) => {
  const { run, ready } = disk();
  await ready(nexusA);
  await ready(nexusB);
  const control = Buffer.concat([Buffer.alloc(4), expectedControlPage(true)]);
  expectGood(t, await run([0x15, 0x10, 0, 0, control.length, 0], control));
  const r = await run([0x28, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0]);
  t.equal(r.sense?.toString('hex'), '7205210000000000', 'descriptor format: 72h, key 5, ASC 21h');
  expectSense(t, await run([0x00, 0, 0, 0, 0, 0], null, nexusB), Sense.MODE_PARAMETERS_CHANGED);
});

t.test('ModeSelect6.InvalidFields', async (t) => {
  const { run, ready } = disk();
  await ready();
  const caching = (await run(modeSense6(0x08, 0, 255, true))).dataIn!;
  const list = Buffer.from(caching);
  list[0] = 0;
  list[2] = 0; // DEVICE-SPECIFIC PARAMETER is ignored/reserved on select
  list[6] |= 0x01; // RCD: not changeable (WCE is, see write-cache.test.ts)
  expectSense(t, await run([0x15, 0x10, 0, 0, list.length, 0], list), Sense.INVALID_FIELD_IN_PARAMETER_LIST, {
    fieldPointer: 6,
    bitPointer: 0,
  });
  // SP = 1 is allowed on the disk: its caching page is saveable (SPC-4 6.10).
  expectGood(t, await run([0x15, 0x11, 0, 0, 4, 0], Buffer.alloc(4)));
  expectSense(t, await run([0x15, 0x00, 0, 0, 4, 0], Buffer.alloc(4)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 4 });
  expectSense(t, await run([0x15, 0x10, 0, 0, 3, 0], Buffer.alloc(3)), Sense.PARAMETER_LIST_LENGTH_ERROR);
  const shortPage = Buffer.from('000000000a0a0010', 'hex');
  expectSense(t, await run([0x15, 0x10, 0, 0, shortPage.length, 0], shortPage), Sense.PARAMETER_LIST_LENGTH_ERROR);
  expectGood(t, await run([0x15, 0x10, 0, 0, 0, 0]));
});

const rsoc = (options: number, opcode = 0, sa = 0, alloc = 65535) => [
  0xa3, 0x0c, options, opcode, sa >> 8, sa & 0xff, 0, 0, alloc >> 8, alloc & 0xff, 0, 0,
];

t.test('ReportSupportedOpcodes.Simple / RCTD / SERVACTV', async (t) => {
  const { run, ready } = disk();
  await ready();
  const all = (await run(rsoc(0))).dataIn!;
  t.equal(all.readUInt32BE(0), all.length - 4);
  const descriptors: string[] = [];
  for (let off = 4; off < all.length; off += 8) descriptors.push(all.subarray(off, off + 8).toString('hex'));
  t.ok(descriptors.includes('280000000000000a'), 'READ(10), 10-byte CDB');
  t.ok(descriptors.includes('9e0000100001' + '0010'), 'READ CAPACITY(16): SERVACTV, SA 10h');
  const withTimeouts = (await run(rsoc(0x80))).dataIn!;
  t.equal(withTimeouts.readUInt32BE(0), (descriptors.length * 20), '20 bytes each with RCTD');
  t.equal(withTimeouts.subarray(4, 24).toString('hex'), '0000000000020006' + '000a0000' + '0000000000000000', 'CTDP + timeouts descriptor');
});

t.test('ReportSupportedOpcodes.OneCommand', async (t) => {
  const { run, ready } = disk();
  await ready();
  t.equal((await run(rsoc(1, 0x28))).dataIn?.toString('hex'), '0003000a' + '28feffffffff1fffff07');
  t.equal((await run(rsoc(1, 0xc0))).dataIn?.toString('hex'), '00010000', 'not supported');
  expectSense(t, await run(rsoc(1, 0x9e)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 2 });
  t.equal((await run(rsoc(2, 0x9e, 0x10))).dataIn?.subarray(0, 6).toString('hex'), '00030010' + '9e10');
  expectSense(t, await run(rsoc(2, 0x28)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 2 });
  expectSense(t, await run(rsoc(7)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 2 });
  const rctd = (await run(rsoc(0x81, 0x00))).dataIn!;
  t.equal(rctd.toString('hex'), '00830006' + '000000000007' + '000a0000' + '0000000000000000');
});

t.test('TestUnitReady.Simple / StartStopUnit / PreventAllow on a fixed disk', async (t) => {
  const { run, ready } = disk();
  await ready();
  expectGood(t, await run([0x00, 0, 0, 0, 0, 0]));
  expectGood(t, await run([0x1b, 0, 0, 0, 0x01, 0]));
  expectSense(t, await run([0x1b, 0, 0, 0, 0x02, 0]), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 4, bitPointer: 1 });
  expectGood(t, await run([0x1e, 0, 0, 0, 0x01, 0]));
});

t.test('Reserve6.Simple / Reserve6.2Initiators / Reserve6.LUNReset / Reserve6.ITNexusLoss', async (t) => {
  const { run, ready, lu } = disk();
  await ready(nexusA);
  await ready(nexusB);
  expectGood(t, await run([0x16, 0, 0, 0, 0, 0], null, nexusA));
  expectGood(t, await run([0x16, 0, 0, 0, 0, 0], null, nexusA)); // the holder may reserve again
  t.equal((await run([0x16, 0, 0, 0, 0, 0], null, nexusB)).status, ScsiStatus.RESERVATION_CONFLICT);
  t.equal((await run([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], null, nexusB)).status, ScsiStatus.RESERVATION_CONFLICT);
  expectGood(t, await run(inquiry(0, 0, 36), null, nexusB));
  expectGood(t, await run([0x17, 0, 0, 0, 0, 0], null, nexusB)); // non-holder release: no effect
  t.equal((await run([0x00, 0, 0, 0, 0, 0], null, nexusB)).status, ScsiStatus.RESERVATION_CONFLICT);
  expectGood(t, await run([0x17, 0, 0, 0, 0, 0], null, nexusA));
  expectGood(t, await run([0x16, 0, 0, 0, 0, 0], null, nexusB));
  lu.reset('lun');
  await ready(nexusA);
  expectGood(t, await run([0x16, 0, 0, 0, 0, 0], null, nexusA));
  lu.nexusLost(nexusA.id);
  await ready(nexusB);
  expectGood(t, await run([0x16, 0, 0, 0, 0, 0], null, nexusB));
});
