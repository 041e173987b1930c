// SBC-3 commands of a disk LU over the in-memory backend, named like libiscsi's iscsi-test-cu.

import t from 'tap';
import { ScsiStatus, type Nexus, type ScsiResponse } from '../../../iscsi/device.js';
import { createDiskLogicalUnit } from '../../../iscsi/scsi/disk.js';
import { Sense } from '../../../iscsi/scsi/sense.js';
import { expectGood, expectSense } from '../../helpers/expect-sense.js';
import { MemoryBackend } from '../../helpers/memory-backend.js';

const BLOCK = 512;
const BLOCKS = 1024;

const nexus: Nexus = {
  id: 'iqn.1994-05.com.example:init,i,0x400001370000|1',
  initiatorPortName: 'iqn.1994-05.com.example:init,i,0x400001370000',
  initiatorName: 'iqn.1994-05.com.example:init',
  targetPortName: 'iqn.2026-11.dev.shelfgate:shelfgate-vol1,t,0x0001',
  relativeTargetPortId: 1,
};

/** A fresh disk with the power-on unit attention already consumed. */
async function disk(blockCount = BLOCKS) {
  const backend = new MemoryBackend({ blockSize: BLOCK, blockCount });
  const lu = createDiskLogicalUnit(backend, { vendor: 'SHELFGTE', product: 'VOLUME', revision: '0001' });
  const run = (cdb: number[] | Buffer, dataOut: Buffer | null = null, edtl?: number): Promise<ScsiResponse> =>
    lu.execute({
      nexus,
      cdb: Buffer.isBuffer(cdb) ? cdb : Buffer.from(cdb),
      taskAttr: 1,
      expectedDataTransferLength: edtl ?? dataOut?.length ?? 0,
      dataOut,
    });
  await run([0x00, 0, 0, 0, 0, 0]); // TEST UNIT READY: clears POWER ON RESET
  return { backend, lu, run };
}

const u32 = (n: number): number[] => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const u64 = (n: number): number[] => [...u32(Math.floor(n / 0x1_0000_0000)), ...u32(n >>> 0)];
const u16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff];

const read10 = (lba: number, n: number, flags = 0) => [0x28, flags, ...u32(lba), 0, ...u16(n), 0];
const write10 = (lba: number, n: number, flags = 0) => [0x2a, flags, ...u32(lba), 0, ...u16(n), 0];
const read16 = (lba: number, n: number, flags = 0) => [0x88, flags, ...u64(lba), ...u32(n), 0, 0];
const write16 = (lba: number, n: number, flags = 0) => [0x8a, flags, ...u64(lba), ...u32(n), 0, 0];
const read12 = (lba: number, n: number, flags = 0) => [0xa8, flags, ...u32(lba), ...u32(n), 0, 0];
const fill = (byte: number, blocks: number) => Buffer.alloc(blocks * BLOCK, byte);

t.test('Read10.Simple / Write10.Simple', async (t) => {
  const { run } = await disk();
  expectGood(t, await run(write10(10, 2), fill(0xa5, 2)));
  const r = await run(read10(10, 2));
  expectGood(t, r);
  t.equal(r.dataIn?.toString('hex'), fill(0xa5, 2).toString('hex'));
  const unwritten = await run(read10(0, 1));
  t.equal(unwritten.dataIn?.toString('hex'), fill(0, 1).toString('hex'), 'unwritten blocks read as zeros');
});

t.test('Read10.BeyondEol', async (t) => {
  const { run } = await disk();
  expectSense(t, await run(read10(BLOCKS, 1)), Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
  expectSense(t, await run(read10(BLOCKS - 1, 2)), Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
  expectSense(t, await run(read10(0xffffffff, 1)), Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
  expectGood(t, await run(read10(BLOCKS - 1, 1)));
});

t.test('Read10.ZeroBlocks', async (t) => {
  const { run } = await disk();
  const r = await run(read10(0, 0));
  expectGood(t, r);
  t.equal(r.dataIn, undefined, 'no data');
  expectGood(t, await run(read10(BLOCKS, 0)));
  expectSense(t, await run(read10(BLOCKS + 1, 0)), Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
  expectSense(t, await run(read10(0x80000000, 0)), Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
});

t.test('Read10.Rdprotect / Write10.Wrprotect', async (t) => {
  const { run } = await disk();
  for (let p = 1; p < 8; p++) {
    expectSense(t, await run(read10(0, 1, p << 5)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 7 });
    expectSense(t, await run(write10(0, 1, p << 5), fill(1, 1)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 7 });
  }
});

t.test('Read10.Flags (DPO, FUA accepted)', async (t) => {
  const { run } = await disk();
  expectGood(t, await run(read10(0, 1, 0x18)));
  expectGood(t, await run(write10(0, 1, 0x18), fill(2, 1)));
});

t.test('Read6 / Write6: transfer length 0 means 256 blocks', async (t) => {
  const { run } = await disk();
  expectGood(t, await run([0x0a, 0, 0, 0, 0, 0], fill(7, 256)));
  const r = await run([0x08, 0, 0, 0, 0, 0]);
  expectGood(t, r);
  t.equal(r.dataIn?.length, 256 * BLOCK);
  expectSense(t, await run([0x08, 0, ...u16(BLOCKS), 1, 0]), Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
});

t.test('Read12 / Read16 / Write16 beyond EOL', async (t) => {
  const { run } = await disk();
  expectSense(t, await run(read12(BLOCKS, 1)), Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
  expectSense(t, await run(read16(2 ** 63, 1)), Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
  expectSense(t, await run(write16(BLOCKS - 1, 2), fill(0, 2)), Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
  expectGood(t, await run(write16(BLOCKS - 1, 1), fill(3, 1)));
  t.equal((await run(read16(BLOCKS - 1, 1))).dataIn?.toString('hex'), fill(3, 1).toString('hex'));
});

t.test('Read16.TransferLengthAboveMaximum', async (t) => {
  const { run } = await disk(1 << 20);
  expectSense(t, await run(read16(0, 16385)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 10 });
});

t.test('Write10.Residuals', async (t) => {
  const { run } = await disk();
  let r = await run(write10(0, 1), Buffer.alloc(0), 0);
  expectGood(t, r);
  t.equal(r.dataOutOverflow, BLOCK, 'EDTL 0: one block of overflow');

  r = await run(write10(0, 1), Buffer.alloc(10000, 1));
  expectGood(t, r);
  t.equal(r.dataOutResidual, 10000 - BLOCK, 'EDTL 10000: underflow');

  r = await run(write10(0, 1), Buffer.alloc(200, 1));
  expectGood(t, r);
  t.equal(r.dataOutOverflow, BLOCK - 200, 'EDTL 200: overflow');

  expectGood(t, await run(write10(0, 2), fill(0x61, 2)));
  r = await run(write10(0, 1), fill(0x62, 2));
  t.equal(r.dataOutResidual, BLOCK, 'EDTL > TL writes only TL');
  let back = await run(read10(0, 2));
  t.equal(back.dataIn?.toString('hex'), Buffer.concat([fill(0x62, 1), fill(0x61, 1)]).toString('hex'));

  expectGood(t, await run(write10(0, 2), fill(0x61, 2)));
  r = await run(write10(0, 2), fill(0x62, 1));
  t.equal(r.dataOutOverflow, BLOCK, 'EDTL < TL writes only EDTL');
  back = await run(read10(0, 2));
  t.equal(back.dataIn?.toString('hex'), Buffer.concat([fill(0x62, 1), fill(0x61, 1)]).toString('hex'));
});

t.test('ReadCapacity10.Simple / ReadCapacity16.Simple', async (t) => {
  const { run } = await disk();
  const r10 = await run([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  t.equal(r10.dataIn?.toString('hex'), Buffer.from([...u32(BLOCKS - 1), ...u32(BLOCK)]).toString('hex'));
  expectSense(t, await run([0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0]), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 2 });
  const r16 = await run([0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0]);
  t.equal(
    r16.dataIn?.toString('hex'),
    Buffer.from([...u64(BLOCKS - 1), ...u32(BLOCK), 0, 0, 0xc0, 0, ...new Array(16).fill(0)]).toString('hex'),
    'LBPME and LBPRZ set',
  );
  const short = await run([0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0]);
  t.equal(short.dataIn?.length, 8, 'allocation length truncates');
});

t.test('ReadCapacity10: 0xffffffff when the capacity needs READ CAPACITY(16)', async (t) => {
  const { run } = await disk(2 ** 33);
  const r = await run([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  t.equal(r.dataIn?.subarray(0, 4).toString('hex'), 'ffffffff');
});

t.test('Verify10.Simple / Verify10.Mismatch / Verify10.BeyondEol', async (t) => {
  const { run } = await disk();
  expectGood(t, await run(write10(5, 2), fill(0x11, 2)));
  const verify10 = (lba: number, n: number, bytchk: boolean) => [0x2f, bytchk ? 0x02 : 0, ...u32(lba), 0, ...u16(n), 0];
  expectGood(t, await run(verify10(5, 2, true), fill(0x11, 2)));
  const bad = fill(0x11, 2);
  bad[BLOCK + 7] = 0x12;
  expectSense(t, await run(verify10(5, 2, true), bad), Sense.MISCOMPARE_DURING_VERIFY_OPERATION, { information: BLOCK + 7 });
  expectGood(t, await run(verify10(5, 2, false)));
  expectSense(t, await run(verify10(BLOCKS - 1, 2, false)), Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
  expectSense(t, await run([0x2f, 0x20, 0, 0, 0, 0, 0, 0, 1, 0]), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 7 });
});

t.test('WriteSame10.Unmap / WriteSame16.Simple / GetLBAStatus.Simple', async (t) => {
  const { run, backend } = await disk();
  const ws16 = (lba: number, n: number, flags = 0) => [0x93, flags, ...u64(lba), ...u32(n), 0, 0];
  expectGood(t, await run(ws16(100, 8), fill(0x5a, 1)));
  t.equal((await run(read10(100, 8))).dataIn?.toString('hex'), fill(0x5a, 8).toString('hex'));
  t.equal(backend.mappedBlockCount, 8);

  const ws10 = (lba: number, n: number, flags = 0) => [0x41, flags, ...u32(lba), 0, ...u16(n), 0];
  expectGood(t, await run(ws10(100, 4, 0x08), fill(0, 1)));
  t.equal(backend.mappedBlockCount, 4, 'zeros with UNMAP deallocate');

  const status = await run([0x9e, 0x12, ...u64(100), ...u32(40), 0, 0]);
  expectGood(t, status);
  t.equal(
    status.dataIn?.toString('hex'),
    Buffer.from([
      ...u32(36), 0, 0, 0, 0,
      ...u64(100), ...u32(4), 1, 0, 0, 0,
      ...u64(104), ...u32(4), 0, 0, 0, 0,
    ]).toString('hex'),
    'one deallocated run, then a mapped run (descriptors limited by allocation length)',
  );
  expectSense(t, await run([0x9e, 0x12, ...u64(BLOCKS), ...u32(64), 0, 0]), Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
});

t.test('WriteSame10.ZeroBlocks (WSNZ = 0: to the end of the medium)', async (t) => {
  const { run, backend } = await disk();
  const ws10 = (lba: number, n: number) => [0x41, 0, ...u32(lba), 0, ...u16(n), 0];
  expectGood(t, await run(ws10(BLOCKS - 3, 0), fill(9, 1)));
  t.equal(backend.mappedBlockCount, 3);
  expectSense(t, await run(ws10(BLOCKS + 1, 0), fill(9, 1)), Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
  expectSense(t, await run(ws10(0xffffffff, 0), fill(9, 1)), Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
});

t.test('WriteSame10.Anchor / WriteSame10.Wrprotect', async (t) => {
  const { run } = await disk();
  expectSense(t, await run([0x41, 0x10, 0, 0, 0, 0, 0, 0, 1, 0], fill(0, 1)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 4 });
  expectSense(t, await run([0x41, 0x20, 0, 0, 0, 0, 0, 0, 1, 0], fill(0, 1)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 7 });
});

t.test('WriteSame10.InvalidDataOutSize / CompareAndWrite.InvalidDataOutSize', async (t) => {
  const { run } = await disk();
  const ws10 = [0x41, 0x08, 0, 0, 0, 0, 0, 0, 1, 0];
  expectSense(t, await run(ws10, Buffer.alloc(BLOCK / 2)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 7 });
  expectSense(t, await run(ws10, Buffer.alloc(BLOCK * 2)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 7 });
  const caw = [0x89, 0, ...u64(0), 0, 0, 0, 1, 0, 0];
  expectSense(t, await run(caw, Buffer.alloc(4 * BLOCK)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 13 });
});

t.test('Unmap.Simple / Unmap.ZeroBlocks / Unmap.BeyondEol', async (t) => {
  const { run, backend } = await disk();
  expectGood(t, await run(write10(0, 16), fill(1, 16)));
  const unmap = (descs: Array<[number, number]>) => {
    const list = Buffer.alloc(8 + 16 * descs.length);
    list.writeUInt16BE(list.length - 2, 0);
    list.writeUInt16BE(16 * descs.length, 2);
    descs.forEach(([lba, n], i) => {
      Buffer.from(u64(lba)).copy(list, 8 + 16 * i);
      list.writeUInt32BE(n, 16 + 16 * i);
    });
    return { cdb: [0x42, 0, 0, 0, 0, 0, 0, ...u16(list.length), 0], list };
  };
  let u = unmap([[0, 4], [8, 2]]);
  expectGood(t, await run(u.cdb, u.list));
  t.equal(backend.mappedBlockCount, 10);
  u = unmap([[BLOCKS, 0]]);
  expectGood(t, await run(u.cdb, u.list));
  u = unmap([[BLOCKS - 1, 2]]);
  expectSense(t, await run(u.cdb, u.list), Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
  expectGood(t, await run([0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0], null)); // parameter list length 0
  expectSense(t, await run([0x42, 0, 0, 0, 0, 0, 0, 0, 4, 0], Buffer.alloc(4)), Sense.PARAMETER_LIST_LENGTH_ERROR);
  const many = unmap(new Array(257).fill([0, 1]));
  expectSense(t, await run(many.cdb, many.list), Sense.INVALID_FIELD_IN_PARAMETER_LIST);
});

t.test('CompareAndWrite.Simple / CompareAndWrite.Miscompare', async (t) => {
  const { run } = await disk();
  expectGood(t, await run(write10(50, 1), fill(0x41, 1)));
  const caw = (lba: number, n: number) => [0x89, 0, ...u64(lba), 0, 0, 0, n, 0, 0];
  expectGood(t, await run(caw(50, 1), Buffer.concat([fill(0x41, 1), fill(0x42, 1)])));
  t.equal((await run(read10(50, 1))).dataIn?.toString('hex'), fill(0x42, 1).toString('hex'));
  const expectOld = fill(0x42, 1);
  expectOld[100] = 0;
  expectSense(t, await run(caw(50, 1), Buffer.concat([expectOld, fill(0x43, 1)])), Sense.MISCOMPARE_DURING_VERIFY_OPERATION, {
    information: 100,
  });
  t.equal((await run(read10(50, 1))).dataIn?.toString('hex'), fill(0x42, 1).toString('hex'), 'not written on miscompare');
  expectSense(t, await run(caw(50, 2), fill(0, 4)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 13 });
  expectSense(t, await run(caw(BLOCKS, 1), fill(0, 2)), Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
});

t.test('CompareAndWrite is atomic against overlapping writes', async (t) => {
  const { run } = await disk();
  const caw = [0x89, 0, ...u64(7), 0, 0, 0, 1, 0, 0];
  const results = await Promise.all([
    run(caw, Buffer.concat([fill(0, 1), fill(0x31, 1)])),
    run(caw, Buffer.concat([fill(0, 1), fill(0x32, 1)])),
  ]);
  t.same(
    results.map((r) => r.status).sort(),
    [ScsiStatus.GOOD, ScsiStatus.CHECK_CONDITION],
    'exactly one of two racing COMPARE AND WRITEs wins',
  );
});

t.test('OrWrite.Simple', async (t) => {
  const { run } = await disk();
  expectGood(t, await run(write10(3, 1), fill(0x0f, 1)));
  expectGood(t, await run([0x8b, 0, ...u64(3), ...u32(1), 0, 0], fill(0xf0, 1)));
  t.equal((await run(read10(3, 1))).dataIn?.toString('hex'), fill(0xff, 1).toString('hex'));
});

t.test('Prefetch10.Simple / SynchronizeCache10 / SynchronizeCache16.BeyondEol', async (t) => {
  const { run } = await disk();
  t.equal((await run([0x34, 0, 0, 0, 0, 0, 0, 0, 8, 0])).status, ScsiStatus.CONDITION_MET);
  expectSense(t, await run([0x34, 0, ...u32(BLOCKS), 0, 0, 1, 0]), Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
  expectGood(t, await run([0x35, 0x02, 0, 0, 0, 0, 0, 0, 0, 0]));
  expectSense(t, await run([0x91, 0, ...u64(BLOCKS), ...u32(1), 0, 0]), Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
});

t.test('capacity growth establishes CAPACITY DATA HAS CHANGED', async (t) => {
  const { run, backend } = await disk();
  backend.resize(BLOCKS * 2);
  expectSense(t, await run(read10(0, 1)), Sense.CAPACITY_DATA_HAS_CHANGED);
  expectGood(t, await run(read10(BLOCKS, 1)));
});

t.test('a transient backend error becomes NOT READY; anything else HARDWARE ERROR', async (t) => {
  const { run, backend } = await disk();
  backend.failWith = Object.assign(new Error('store busy'), { transient: true });
  expectSense(t, await run(read10(0, 1)), Sense.LOGICAL_UNIT_NOT_READY_BECOMING_READY);
  backend.failWith = new Error('disk on fire');
  expectSense(t, await run(write10(0, 1), fill(0, 1)), Sense.INTERNAL_TARGET_FAILURE);
});

t.test('Write6.BeyondEol / WriteVerify10.Simple / WriteVerify16.Wrprotect', async (t) => {
  const { run } = await disk();
  expectSense(t, await run([0x0a, 0, ...u16(BLOCKS), 1, 0], fill(0, 1)), Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
  expectGood(t, await run([0x2e, 0x02, ...u32(9), 0, ...u16(1), 0], fill(0x77, 1)));
  t.equal((await run(read10(9, 1))).dataIn?.toString('hex'), fill(0x77, 1).toString('hex'));
  expectSense(t, await run([0x8e, 0x40, ...u64(0), ...u32(1), 0, 0], fill(0, 1)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 7 });
});

t.test('Verify12.Simple / Verify16 BYTCHK 11b compares every block with one block', async (t) => {
  const { run } = await disk();
  expectGood(t, await run(write10(20, 3), fill(0x3c, 3)));
  expectGood(t, await run([0xaf, 0x02, ...u32(20), ...u32(3), 0, 0], fill(0x3c, 3)));
  expectGood(t, await run([0x8f, 0x06, ...u64(20), ...u32(3), 0, 0], fill(0x3c, 1)));
  const other = fill(0x3c, 1);
  other[5] = 0;
  expectSense(t, await run([0x8f, 0x06, ...u64(20), ...u32(3), 0, 0], other), Sense.MISCOMPARE_DURING_VERIFY_OPERATION, { information: 5 });
  expectSense(t, await run([0x8f, 0x04, ...u64(20), ...u32(3), 0, 0], other), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 2 });
});

t.test('GetLBAStatus.AllocationLengthZero / Prefetch16 beyond one transfer is GOOD', async (t) => {
  const { run } = await disk(1 << 20);
  const r = await run([0x9e, 0x12, ...u64(0), ...u32(0), 0, 0]);
  expectGood(t, r);
  t.equal(r.dataIn, undefined);
  t.equal((await run([0x90, 0, ...u64(0), ...u32(1 << 19), 0, 0])).status, ScsiStatus.GOOD);
  t.equal((await run([0x90, 0, ...u64(0), ...u32(8), 0, 0])).status, ScsiStatus.CONDITION_MET);
});

t.test('Data-Out sent with a command that has none is reported as unconsumed', async (t) => {
  const { run } = await disk();
  const r = await run([0x00, 0, 0, 0, 0, 0], Buffer.alloc(100));
  expectGood(t, r);
  t.equal(r.dataOutResidual, 100);
});
