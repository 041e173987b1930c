// The tape drive LU as a device: INQUIRY identity and VPD pages, readiness (TEST UNIT READY,
// REQUEST SENSE), the load state machine the changer drives (insertMedium, LOAD UNLOAD,
// removalState, removeMedium, PREVENT ALLOW MEDIUM REMOVAL), mode parameters, READ BLOCK LIMITS,
// REPORT DENSITY SUPPORT and LOG SENSE.

import t from 'tap';
import { changerFaultOf } from '../../../iscsi/device.js';
import { Sense } from '../../../iscsi/scsi/sense.js';
import { decodeSense, expectGood, expectSense } from '../../helpers/expect-sense.js';
import { blockDescriptorParameterList, cdb, MemoryTape, otherNexus, tapeDriveWith } from '../../helpers/memory-tape.js';

const LOAD = 0x01;
const UNLOAD = 0x00;

t.test('Ssc.Inquiry.Standard', async (t) => {
  const { run } = await tapeDriveWith();
  const r = await run(cdb.inquiry());
  expectGood(t, r);
  const d = r.dataIn!;
  t.equal(d[0], 0x01, 'sequential-access device');
  t.equal(d[1], 0x80, 'RMB');
  t.equal(d.subarray(8, 36).toString('ascii'), 'IBM     ULT3580-TD5     SG01');
});

t.test('Ssc.Inquiry.VpdPages', async (t) => {
  const { run } = await tapeDriveWith();
  const supported = await run(cdb.inquiry(true, 0x00));
  t.equal(supported.dataIn?.toString('hex'), '0100000300' + '8083', 'only 00h, 80h, 83h (no block-device B0h–B2h)');
  const serial = await run(cdb.inquiry(true, 0x80));
  t.equal(serial.dataIn?.subarray(4).toString('ascii'), 'SG00000001');
  expectGood(t, await run(cdb.inquiry(true, 0x83)));
  expectSense(t, await run(cdb.inquiry(true, 0xb0)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 2 });
});

t.test('Ssc.TestUnitReady.NoMedium', async (t) => {
  const { run } = await tapeDriveWith();
  expectSense(t, await run(cdb.testUnitReady()), Sense.MEDIUM_NOT_PRESENT);
  const rs = await run(cdb.requestSense());
  expectGood(t, rs);
  const d = decodeSense(rs.dataIn!);
  t.same([d.key, d.asc, d.ascq], [0x2, 0x3a, 0x00], 'REQUEST SENSE reports the not-ready condition');
});

t.test('Ssc.InsertMedium.UnitAttention', async (t) => {
  const { lu, run } = await tapeDriveWith();
  await run(cdb.requestSense(), null, otherNexus); // the second nexus exists, its power-on UA consumed
  lu.insertMedium(new MemoryTape());
  t.equal(lu.removalState(), 'not-unloaded');
  expectSense(t, await run(cdb.testUnitReady()), Sense.NOT_READY_TO_READY_CHANGE_MEDIUM_MAY_HAVE_CHANGED);
  expectGood(t, await run(cdb.testUnitReady()));
  expectSense(t, await run(cdb.testUnitReady(), null, otherNexus), Sense.NOT_READY_TO_READY_CHANGE_MEDIUM_MAY_HAVE_CHANGED);
});

t.test('Ssc.InsertMedium.PositionedAtBop', async (t) => {
  const tape = new MemoryTape();
  const first = await tapeDriveWith(tape);
  await first.run(cdb.write6(8), Buffer.alloc(8));
  await first.run(cdb.loadUnload(UNLOAD));
  await first.lu.removeMedium();
  const second = await tapeDriveWith(tape);
  const rp = await second.run(cdb.readPosition());
  t.equal(rp.dataIn?.readUInt32BE(4), 0, 'block 0');
  t.equal(rp.dataIn![0]! & 0x80, 0x80, 'BOP');
});

t.test('Ssc.LoadUnload.StateMachine', async (t) => {
  const tape = new MemoryTape();
  const { lu, run } = await tapeDriveWith(tape);
  await run(cdb.write6(8), Buffer.alloc(8, 1));
  t.equal(lu.removalState(), 'not-unloaded');
  expectGood(t, await run(cdb.loadUnload(UNLOAD)));
  t.equal(lu.removalState(), 'ready');
  t.equal(lu.loadedMedium(), tape, 'the cartridge is still in the drive');
  expectSense(t, await run(cdb.testUnitReady()), Sense.LOGICAL_UNIT_NOT_READY_INITIALIZING_COMMAND_REQUIRED);
  expectSense(t, await run(cdb.read6(8)), Sense.LOGICAL_UNIT_NOT_READY_INITIALIZING_COMMAND_REQUIRED);
  expectGood(t, await run(cdb.loadUnload(UNLOAD))); // unloading again is harmless
  expectGood(t, await run(cdb.loadUnload(LOAD)));
  expectGood(t, await run(cdb.testUnitReady()));
  const rp = await run(cdb.readPosition());
  t.equal(rp.dataIn?.readUInt32BE(4), 0, 'LOAD positions at BOP');
  expectSense(t, await run(cdb.loadUnload(LOAD | 0x04)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 4, bitPointer: 2 });
  await run(cdb.loadUnload(UNLOAD));
  t.equal(await lu.removeMedium(), tape);
  t.equal(lu.removalState(), 'empty');
  t.equal(lu.loadedMedium(), undefined);
  expectSense(t, await run(cdb.loadUnload(LOAD)), Sense.MEDIUM_NOT_PRESENT);
});

t.test('Ssc.RemoveMedium.UnloadsALoadedCartridge', async (t) => {
  // The library's robot takes a cartridge the initiator never unloaded: the drive flushes,
  // rewinds and unloads it first (as LOAD UNLOAD with LOAD=0 would), then it is out.
  const tape = new MemoryTape();
  const { lu, run } = await tapeDriveWith(tape);
  expectGood(t, await run(cdb.write6(8), Buffer.alloc(8, 1)));
  t.equal(lu.removalState(), 'not-unloaded');
  tape.calls.length = 0;
  t.equal(await lu.removeMedium(), tape);
  t.same(tape.calls.filter((c) => c === 'flush' || c === 'rewind'), ['flush', 'rewind'], 'flushed, then rewound');
  t.equal(lu.removalState(), 'empty');
  expectSense(t, await run(cdb.testUnitReady()), Sense.MEDIUM_NOT_PRESENT);
});

t.test('Ssc.RemoveMedium.PreventedMeanwhile', async (t) => {
  // PREVENT MEDIUM REMOVAL queued ahead of the library's removal wins (SPC-4 6.13).
  const tape = new MemoryTape();
  const { lu, run } = await tapeDriveWith(tape);
  t.equal(lu.removalState(), 'not-unloaded');
  const prevent = run(cdb.preventAllow(true));
  const removal = lu.removeMedium();
  expectGood(t, await prevent);
  t.equal(changerFaultOf(await removal.then(() => undefined, (err: unknown) => err)), 'medium-removal-prevented', 'the changer reports 53/02');
  t.equal(lu.loadedMedium(), tape, 'the cartridge stays in the drive');
  expectGood(t, await run(cdb.testUnitReady()));
});

t.test('Ssc.PreventAllow.Removal', async (t) => {
  const { lu, run } = await tapeDriveWith(new MemoryTape());
  expectGood(t, await run(cdb.preventAllow(true)));
  t.equal(lu.removalState(), 'removal-prevented');
  expectSense(t, await run(cdb.loadUnload(UNLOAD)), Sense.MEDIUM_REMOVAL_PREVENTED);
  expectGood(t, await run(cdb.preventAllow(false)));
  expectGood(t, await run(cdb.loadUnload(UNLOAD)));
  t.equal(lu.removalState(), 'ready');
  await run(cdb.requestSense(), null, otherNexus); // its power-on unit attention
  expectGood(t, await run(cdb.preventAllow(true), null, otherNexus));
  t.equal(lu.removalState(), 'removal-prevented', 'any nexus can prevent');
  lu.nexusLost(otherNexus.id);
  t.equal(lu.removalState(), 'ready', 'I_T nexus loss ends its prevention');
  await run(cdb.preventAllow(true));
  lu.reset('lun');
  t.equal(lu.removalState(), 'ready', 'a logical unit reset ends prevention');
  expectSense(t, await run(cdb.testUnitReady()), Sense.BUS_DEVICE_RESET_FUNCTION_OCCURRED);
  expectSense(t, await run([0x1e, 0, 0, 0, 2, 0]), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 4, bitPointer: 1 });
});

t.test('Ssc.ReadBlockLimits', async (t) => {
  const { run } = await tapeDriveWith();
  const r = await run(cdb.readBlockLimits());
  expectGood(t, r);
  t.equal(r.dataIn?.toString('hex'), '00' + '100000' + '0001', 'granularity 0, max 1 MiB, min 1');
  expectSense(t, await run([0x05, 0x01, 0, 0, 0, 0]), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 0 });
});

t.test('Ssc.ModeSense.BlockDescriptor', async (t) => {
  const empty = await tapeDriveWith();
  let r = await empty.run(cdb.modeSense6(0x10));
  t.equal(r.dataIn?.subarray(0, 12).toString('hex'), '1b001008' + '00000000' + '00000000', 'no medium: density 00h, variable');
  const { run } = await tapeDriveWith(new MemoryTape());
  r = await run(cdb.modeSense6(0x10));
  expectGood(t, r);
  t.equal(r.dataIn?.subarray(0, 12).toString('hex'), '1b001008' + '58000000' + '00000000', 'LTO-5 density, block length 0, buffered mode');
  t.equal(r.dataIn?.subarray(12).toString('hex'), '100e' + '000000000000' + '4000' + '1800000001' + '00', 'device configuration page');
  expectGood(t, await run(cdb.modeSelect6(12), blockDescriptorParameterList(0x58, 65536)));
  r = await run(cdb.modeSense6(0x10));
  t.equal(r.dataIn?.subarray(4, 12).toString('hex'), '58000000' + '00010000', 'fixed mode, 64 KiB');
  expectGood(t, await run(cdb.modeSelect6(12), blockDescriptorParameterList(0x7f, 0)));
  r = await run(cdb.modeSense6(0x10));
  t.equal(r.dataIn?.subarray(4, 12).toString('hex'), '58000000' + '00000000', 'back to variable mode');
});

t.test('Ssc.ModeSense.PageZeroHeaderAndBlockDescriptor', async (t) => {
  // Linux st at every open: MODE SENSE(6), page code 00h, allocation length 12.
  const { run } = await tapeDriveWith(new MemoryTape());
  expectGood(t, await run(cdb.modeSelect6(12), blockDescriptorParameterList(0x58, 65536)));
  const r = await run([0x1a, 0, 0x00, 0, 12, 0]);
  expectGood(t, r);
  t.equal(r.dataIn?.toString('hex'), '0b001008' + '58000000' + '00010000', 'MODE DATA LENGTH 11, BUFFERED MODE 1, one descriptor: LTO-5, 64 KiB');
  expectSense(t, await run([0x1a, 0, 0x00, 0x01, 12, 0]), Sense.INVALID_FIELD_IN_CDB); // no subpages of page 00h
});

t.test('Ssc.ModeSelect.InvalidBlockDescriptor', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape());
  expectSense(t, await run(cdb.modeSelect6(12), blockDescriptorParameterList(0x46, 512)), Sense.INVALID_FIELD_IN_PARAMETER_LIST, {
    fieldPointer: 4,
  });
  expectSense(t, await run(cdb.modeSelect6(12), blockDescriptorParameterList(0x58, 0x100001)), Sense.INVALID_FIELD_IN_PARAMETER_LIST, {
    fieldPointer: 9,
  });
  // A valid descriptor with an invalid page: nothing is applied.
  const list = Buffer.concat([blockDescriptorParameterList(0x00, 512), Buffer.from([0x0f, 0x0e, 0xc0, 0x80, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0])]);
  expectSense(t, await run(cdb.modeSelect6(list.length), list), Sense.INVALID_FIELD_IN_PARAMETER_LIST);
  const r = await run(cdb.modeSense6(0x10));
  t.equal(r.dataIn?.subarray(9, 12).toString('hex'), '000000', 'block length unchanged');
});

t.test('Ssc.ModeSelect.DataCompression', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape());
  const off = Buffer.concat([Buffer.from([0, 0, 0x10, 0]), Buffer.from([0x0f, 0x0e, 0x40, 0x80, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0])]);
  expectGood(t, await run(cdb.modeSelect6(off.length), off));
  const r = await run(cdb.modeSense6(0x0f, true));
  t.equal(r.dataIn?.subarray(4).toString('hex'), '0f0e' + '4080' + '00000001' + '00000001' + '00000000', 'DCE cleared');
});

t.test('Ssc.ModeSense.AllPages', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape());
  const r = await run(cdb.modeSense6(0x3f, true));
  expectGood(t, r);
  const pages: number[] = [];
  for (let off = 4; off < r.dataIn!.length; off += 2 + r.dataIn![off + 1]!) pages.push(r.dataIn![off]! & 0x3f);
  t.same(pages, [0x01, 0x02, 0x0a, 0x0f, 0x10, 0x11, 0x1c]);
});

t.test('Ssc.ReportDensitySupport', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape());
  const all = await run(cdb.reportDensitySupport());
  expectGood(t, all);
  t.equal(all.dataIn?.readUInt16BE(0), 3 * 52 + 2, 'three descriptors');
  const lto5 = all.dataIn!.subarray(4 + 2 * 52, 4 + 3 * 52);
  t.equal(
    lto5.subarray(0, 16).toString('hex'),
    '58' + '58' + 'a1' + '002f' + '003b26' + '007f' + '0500' + '0016e360',
    'LTO-5: WRTOK DEFLT DLV, 15142 bpmm, 12.7 mm, 1280 tracks, 1 500 000 MB',
  );
  t.equal(lto5.subarray(16, 52).toString('ascii'), 'LTO-CVE U-516   Ultrium 5/16T       ');
  t.equal(all.dataIn![4 + 2]! & 0x80, 0, 'LTO-3 is read-only');
  const media = await run(cdb.reportDensitySupport(true));
  t.equal(media.dataIn?.readUInt16BE(0), 52 + 2, 'MEDIA: the loaded cartridge only');
  const empty = await tapeDriveWith();
  expectSense(t, await empty.run(cdb.reportDensitySupport(true)), Sense.MEDIUM_NOT_PRESENT);
});

t.test('Ssc.LogSense.SupportedPages', async (t) => {
  const { run } = await tapeDriveWith();
  const r = await run(cdb.logSense(0x00));
  t.equal(r.dataIn?.toString('hex'), '00000005' + '0002032e31');
  expectSense(t, await run(cdb.logSense(0x0d)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 2, bitPointer: 5 });
});

t.test('Ssc.LogSense.TapeCapacity', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape({ capacityBytes: 100 * 1024 * 1024 }));
  await run(cdb.write6(0x100000), Buffer.alloc(0x100000));
  await run(cdb.write6(0x100000), Buffer.alloc(0x100000));
  const r = await run(cdb.logSense(0x31));
  expectGood(t, r);
  t.equal(
    r.dataIn?.toString('hex'),
    '31000020' + '0001020400000062' + '0002020400000000' + '0003020400000064' + '0004020400000000',
    'remaining 98 MiB, maximum 100 MiB in partition 0',
  );
});

t.test('Ssc.LogSense.TapeAlertAndCounters', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape());
  const alert = await run(cdb.logSense(0x2e));
  t.equal(alert.dataIn?.readUInt16BE(2), 64 * 5, '64 flags');
  t.equal(alert.dataIn?.subarray(4, 9).toString('hex'), '0001030100');
  await run(cdb.write6(1000), Buffer.alloc(1000));
  const w = await run(cdb.logSense(0x02, 5));
  t.equal(w.dataIn?.toString('hex'), '02000014' + '00050208' + '00000000000003e8' + '00060204' + '00000000', 'TOTAL BYTES PROCESSED, from the pointer on');
});

t.test('Ssc.ReportSupportedOperationCodes', async (t) => {
  const { run } = await tapeDriveWith();
  const r = await run([0xa3, 0x0c, 0x01, 0x0a, 0, 0, 0, 0, 0x10, 0, 0, 0]); // one command: WRITE(6)
  expectGood(t, r);
  t.equal(r.dataIn?.toString('hex'), '00030006' + '0a01ffffff07');
  const rp = await run([0xa3, 0x0c, 0x02, 0x34, 0, 0x06, 0, 0, 0x10, 0, 0, 0]); // READ POSITION long form
  t.equal(rp.dataIn?.subarray(0, 4).toString('hex'), '0003000a');
});
