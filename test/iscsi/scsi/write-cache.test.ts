// SBC-3 write-cache semantics of a disk LU over the in-memory backend: the caching mode page's WCE
// (SBC-3 6.4.5) read from and given to the BlockBackend, FUA on the write commands, SYNCHRONIZE
// CACHE flushing. Named like libiscsi's iscsi-test-cu; the backend counts what reached it.

import t from 'tap';
import { ScsiStatus, type Nexus, type ScsiResponse } from '../../../iscsi/device.js';
import { createDiskLogicalUnit } from '../../../iscsi/scsi/disk.js';
import { Sense } from '../../../iscsi/scsi/sense.js';
import { expectGood, expectSense } from '../../helpers/expect-sense.js';
import { MemoryBackend } from '../../helpers/memory-backend.js';

const BLOCK = 512;
const TARGET_PORT = 'iqn.2026-11.dev.shelfgate:shelfgate-vol1,t,0x0001';
const nexusA: Nexus = {
  id: 'a',
  initiatorPortName: 'iqn.1994-05.com.example:a,i,0x400001370000',
  initiatorName: 'iqn.1994-05.com.example:a',
  targetPortName: TARGET_PORT,
  relativeTargetPortId: 1,
};
const nexusB: Nexus = { ...nexusA, id: 'b', initiatorPortName: 'iqn.1994-05.com.example:b,i,0x400001370000', initiatorName: 'iqn.1994-05.com.example:b' };

/** A fresh disk; both nexuses have consumed their power-on unit attention. */
async function disk() {
  const backend = new MemoryBackend({ blockSize: BLOCK, blockCount: 1024 });
  const lu = createDiskLogicalUnit(backend, { vendor: 'SHELFGTE', product: 'VOLUME', revision: '0001' });
  const run = (cdb: number[], dataOut: Buffer | null = null, nexus: Nexus = nexusA): Promise<ScsiResponse> =>
    lu.execute({ nexus, cdb: Buffer.from(cdb), taskAttr: 1, expectedDataTransferLength: dataOut?.length ?? 255, dataOut });
  await run([0x00, 0, 0, 0, 0, 0], null, nexusA);
  await run([0x00, 0, 0, 0, 0, 0], null, nexusB);
  return { backend, lu, run };
}

const u32 = (n: number): number[] => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const u64 = (n: number): number[] => [...u32(Math.floor(n / 0x1_0000_0000)), ...u32(n >>> 0)];
const u16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff];
const fill = (byte: number, blocks: number) => Buffer.alloc(blocks * BLOCK, byte);

const FUA = 0x08;
const modeSense6 = (pcPage: number) => [0x1a, 0x08 /* DBD */, pcPage, 0, 255, 0];
const CACHING = 0x08;
const PC_CHANGEABLE = 0x40;
const PC_DEFAULT = 0x80;
const PC_SAVED = 0xc0;

/** The caching page (20 bytes) as MODE SENSE(6) returns it with page control `pc`. */
async function cachingPage(run: (cdb: number[]) => Promise<ScsiResponse>, pc = 0): Promise<Buffer> {
  const r = await run(modeSense6(pc | CACHING));
  if (r.status !== ScsiStatus.GOOD || r.dataIn === undefined || r.dataIn[3] !== 0) throw new Error('MODE SENSE(6) of the caching page failed');
  return r.dataIn.subarray(4);
}

/** A MODE SELECT(6) parameter list carrying the caching page with WCE set as asked. */
function cachingSelectList(page: Buffer, wce: boolean): Buffer {
  const list = Buffer.concat([Buffer.alloc(4), page]);
  list[4] = list[4]! & 0x3f; // PS is reserved in MODE SELECT data (SPC-4 7.5.7)
  list[6] = wce ? list[6]! | 0x04 : list[6]! & ~0x04;
  return list;
}

t.test('ModeSense.Caching.WCE', async (t) => {
  const { backend, run } = await disk();
  const page = await cachingPage(run);
  t.equal(page.subarray(0, 2).toString('hex'), '8812', 'page 08h, PS = 1 (saveable), length 12h');
  t.equal(page[2]! & 0x04, 0x04, 'WCE = 1, as the backend says');
  t.equal(page[2]! & 0x01, 0, 'RCD = 0');
  backend.writeCache = false; // switched outside MODE SELECT (gateway configuration / API)
  expectSense(t, await run([0x00, 0, 0, 0, 0, 0]), Sense.MODE_PARAMETERS_CHANGED); // noticed once, as a unit attention
  expectSense(t, await run([0x00, 0, 0, 0, 0, 0], null, nexusB), Sense.MODE_PARAMETERS_CHANGED);
  t.equal((await cachingPage(run))[2]! & 0x04, 0, 'WCE = 0 once the backend cache is off');
});

t.test('ModeSense.Caching.Changeable / Default / Saved', async (t) => {
  const { backend, run } = await disk();
  const changeable = await cachingPage(run, PC_CHANGEABLE);
  t.equal(changeable.toString('hex'), '8812' + '04' + '00'.repeat(17), 'only WCE is changeable');
  const def = await cachingPage(run, PC_DEFAULT);
  t.equal(def[2]! & 0x04, 0x04, 'default WCE = 1');
  backend.writeCache = false;
  await run([0x00, 0, 0, 0, 0, 0]); // the unit attention for the change
  const saved = await cachingPage(run, PC_SAVED);
  t.equal(saved[0], 0x88, 'PS = 1');
  t.equal(saved[2]! & 0x04, 0, 'saved WCE is the backend (persisted) value');
  t.equal((await cachingPage(run, PC_DEFAULT))[2]! & 0x04, 0x04, 'default WCE unchanged');
});

t.test('ModeSelect6.Caching.WCE reaches the backend', async (t) => {
  const { backend, run } = await disk();
  const page = await cachingPage(run);
  const off = cachingSelectList(page, false);
  expectGood(t, await run([0x15, 0x10, 0, 0, off.length, 0], off));
  t.same(backend.calls.setWriteCache, [false], 'setWriteCacheEnabled(false)');
  t.equal(backend.writeCacheEnabled(), false);
  t.equal((await cachingPage(run))[2]! & 0x04, 0, 'MODE SENSE: WCE = 0');
  expectGood(t, await run([0x00, 0, 0, 0, 0, 0])); // not the issuer
  expectSense(t, await run([0x00, 0, 0, 0, 0, 0], null, nexusB), Sense.MODE_PARAMETERS_CHANGED); // the other nexus is told
  // The same value again changes nothing and calls nobody.
  expectGood(t, await run([0x15, 0x10, 0, 0, off.length, 0], off));
  t.same(backend.calls.setWriteCache, [false]);
  expectGood(t, await run([0x00, 0, 0, 0, 0, 0], null, nexusB));
  // MODE SELECT(10) with SP = 1 turns it back on (saveable page, SPC-4 6.10).
  const on = cachingSelectList(page, true);
  const list10 = Buffer.concat([Buffer.alloc(8), on.subarray(4)]);
  expectGood(t, await run([0x55, 0x11, 0, 0, 0, 0, 0, ...u16(list10.length), 0], list10));
  t.same(backend.calls.setWriteCache, [false, true]);
  t.equal(backend.writeCacheEnabled(), true);
  t.equal((await cachingPage(run))[2]! & 0x04, 0x04, 'MODE SENSE: WCE = 1');
});

t.test('ModeSelect6.Caching.BackendFails leaves everything as it was', async (t) => {
  const { backend, run } = await disk();
  const page = await cachingPage(run);
  const off = cachingSelectList(page, false);
  backend.failWith = Object.assign(new Error('store unavailable'), { transient: true });
  const r = await run([0x15, 0x10, 0, 0, off.length, 0], off);
  t.equal(r.status, ScsiStatus.CHECK_CONDITION);
  backend.failWith = null;
  t.equal(backend.writeCacheEnabled(), true);
  expectGood(t, await run([0x00, 0, 0, 0, 0, 0], null, nexusB)); // no MODE PARAMETERS CHANGED
});

t.test('ModeSense.Caching.WCE survives a power on (it is the saved value)', async (t) => {
  const { lu, run } = await disk();
  const off = cachingSelectList(await cachingPage(run), false);
  expectGood(t, await run([0x15, 0x10, 0, 0, off.length, 0], off));
  lu.reset('target-cold');
  expectSense(t, await run([0x00, 0, 0, 0, 0, 0]), Sense.POWER_ON_OCCURRED);
  t.equal((await cachingPage(run))[2]! & 0x04, 0, 'WCE still 0');
});

t.test('ModeSense6.DPOFUA', async (t) => {
  const { run } = await disk();
  const r = await run(modeSense6(0x3f));
  t.equal(r.dataIn![2], 0x10, 'DEVICE-SPECIFIC PARAMETER: DPOFUA = 1, WP = 0');
});

const write10 = (lba: number, n: number, flags = 0) => [0x2a, flags, ...u32(lba), 0, ...u16(n), 0];
const write12 = (lba: number, n: number, flags = 0) => [0xaa, flags, ...u32(lba), ...u32(n), 0, 0];
const write16 = (lba: number, n: number, flags = 0) => [0x8a, flags, ...u64(lba), ...u32(n), 0, 0];
const writeVerify10 = (lba: number, n: number, flags = 0) => [0x2e, flags, ...u32(lba), 0, ...u16(n), 0];
const writeVerify16 = (lba: number, n: number, flags = 0) => [0x8e, flags, ...u64(lba), ...u32(n), 0, 0];

t.test('Write10.FUA / Write12.FUA / Write16.FUA', async (t) => {
  const { backend, run } = await disk();
  expectGood(t, await run(write10(0, 1), fill(1, 1)));
  t.same([backend.calls.writes, backend.calls.fuaWrites], [1, 0], 'FUA = 0: a cached write');
  expectGood(t, await run(write10(1, 1, FUA), fill(2, 1)));
  expectGood(t, await run(write12(2, 1, FUA), fill(3, 1)));
  expectGood(t, await run(write16(3, 1, FUA), fill(4, 1)));
  t.same([backend.calls.writes, backend.calls.fuaWrites], [4, 3], 'FUA = 1 reaches the backend');
  expectGood(t, await run([0x0a, 0, 0, 4, 1, 0], fill(5, 1))); // WRITE(6): no FUA bit
  t.same([backend.calls.writes, backend.calls.fuaWrites], [5, 3]);
  t.equal(backend.calls.flushes, 0, 'FUA is not a flush of everything');
});

t.test('WriteVerify10.FUA / WriteVerify16: verified on the medium, so always FUA', async (t) => {
  const { backend, run } = await disk();
  expectGood(t, await run(writeVerify10(0, 1), fill(1, 1)));
  expectGood(t, await run(writeVerify16(1, 2), fill(2, 2)));
  t.same([backend.calls.writes, backend.calls.fuaWrites], [2, 2]);
});

t.test('CompareAndWrite.FUA / OrWrite.FUA', async (t) => {
  const { backend, run } = await disk();
  const caw = (flags: number) => [0x89, flags, ...u64(5), 0, 0, 0, 1, 0, 0];
  expectGood(t, await run(caw(0), Buffer.concat([fill(0, 1), fill(7, 1)])));
  expectGood(t, await run(caw(FUA), Buffer.concat([fill(7, 1), fill(8, 1)])));
  t.same([backend.calls.writes, backend.calls.fuaWrites], [2, 1]);
  const orWrite = (flags: number) => [0x8b, flags, ...u64(6), ...u32(1), 0, 0];
  expectGood(t, await run(orWrite(FUA), fill(0x0f, 1)));
  expectGood(t, await run(orWrite(0), fill(0xf0, 1)));
  t.same([backend.calls.writes, backend.calls.fuaWrites], [4, 2]);
});

t.test('WriteSame10 / WriteSame16.Unmap: no FUA bit, durability follows WCE in the backend', async (t) => {
  const { backend, run } = await disk();
  expectGood(t, await run([0x41, 0, ...u32(0), 0, ...u16(4), 0], fill(9, 1)));
  expectGood(t, await run([0x93, 0x08, ...u64(0), ...u32(4), 0, 0], fill(0, 1)));
  t.same([backend.calls.fuaWrites, backend.calls.unmaps, backend.calls.fuaUnmaps], [0, 1, 0]);
});

t.test('Read10.FUA flushes a write cache first', async (t) => {
  const { backend, run } = await disk();
  expectGood(t, await run([0x28, 0, ...u32(0), 0, ...u16(1), 0]));
  t.equal(backend.calls.flushes, 0, 'FUA = 0: no flush');
  expectGood(t, await run([0x28, FUA, ...u32(0), 0, ...u16(1), 0]));
  t.equal(backend.calls.flushes, 1, 'FUA = 1 with WCE = 1: flush, then read');
  backend.writeCache = false;
  await run([0x00, 0, 0, 0, 0, 0]);
  expectGood(t, await run([0x28, FUA, ...u32(0), 0, ...u16(1), 0]));
  t.equal(backend.calls.flushes, 1, 'WCE = 0: nothing cached, no flush');
});

t.test('SynchronizeCache10.Flushes / SynchronizeCache16.Flushes / IMMED', async (t) => {
  const { backend, run } = await disk();
  expectGood(t, await run([0x35, 0, ...u32(0), 0, ...u16(0), 0]));
  t.equal(backend.calls.flushes, 1);
  expectGood(t, await run([0x91, 0, ...u64(10), ...u32(5), 0, 0]));
  t.equal(backend.calls.flushes, 2);
  expectGood(t, await run([0x35, 0x02, ...u32(0), 0, ...u16(0), 0]));
  t.equal(backend.calls.flushes, 3, 'IMMED = 1: accepted, and flushed before GOOD all the same');
  expectSense(t, await run([0x35, 0, ...u32(1020), 0, ...u16(5), 0]), Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
  t.equal(backend.calls.flushes, 3, 'a bad range flushes nothing');
});

t.test('SynchronizeCache10.FlushFails is not GOOD', async (t) => {
  const { backend, run } = await disk();
  backend.failWith = Object.assign(new Error('fsync failed'), { transient: true });
  const r = await run([0x35, 0, ...u32(0), 0, ...u16(0), 0]);
  t.equal(r.status, ScsiStatus.CHECK_CONDITION);
});
