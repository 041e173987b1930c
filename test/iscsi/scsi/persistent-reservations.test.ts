// PERSISTENT RESERVE IN/OUT across two I_T nexuses (SPC-4 5.9), named like libiscsi's Prin*/Prout*.

import t from 'tap';
import { ScsiStatus, type Nexus, type ScsiResponse } from '../../../iscsi/device.js';
import { PrType } from '../../../iscsi/scsi/constants.js';
import { createDiskLogicalUnit } from '../../../iscsi/scsi/disk.js';
import { Sense } from '../../../iscsi/scsi/sense.js';
import { expectGood, expectSense } from '../../helpers/expect-sense.js';
import { MemoryBackend } from '../../helpers/memory-backend.js';

const TARGET_PORT = 'iqn.2026-11.dev.shelfgate:shelfgate-vol1,t,0x0001';
const nexus = (name: string): Nexus => ({
  id: `iqn.1994-05.com.example:${name},i,0x400001370000|1`,
  initiatorPortName: `iqn.1994-05.com.example:${name},i,0x400001370000`,
  initiatorName: `iqn.1994-05.com.example:${name}`,
  targetPortName: TARGET_PORT,
  relativeTargetPortId: 1,
});
const A = nexus('a');
const B = nexus('b');

async function disk() {
  const lu = createDiskLogicalUnit(new MemoryBackend(), { vendor: 'SHELFGTE', product: 'VOLUME', revision: '0001' });
  const run = (n: Nexus, cdb: number[], dataOut: Buffer | null = null): Promise<ScsiResponse> =>
    lu.execute({ nexus: n, cdb: Buffer.from(cdb), taskAttr: 1, expectedDataTransferLength: 4096, dataOut });
  await run(A, [0, 0, 0, 0, 0, 0]);
  await run(B, [0, 0, 0, 0, 0, 0]);

  const prOutParams = (key: bigint, saKey: bigint, flags = 0) => {
    const p = Buffer.alloc(24);
    p.writeBigUInt64BE(key, 0);
    p.writeBigUInt64BE(saKey, 8);
    p[20] = flags;
    return p;
  };
  const prOut = (n: Nexus, sa: number, type: number, key: bigint, saKey: bigint, flags = 0) =>
    run(n, [0x5f, sa, type, 0, 0, 0, 0, 0, 24, 0], prOutParams(key, saKey, flags));
  const prIn = (n: Nexus, sa: number, alloc = 1024) => run(n, [0x5e, sa, 0, 0, 0, 0, 0, alloc >> 8, alloc & 0xff, 0]);
  const register = (n: Nexus, key: bigint, saKey: bigint) => prOut(n, 0, 0, key, saKey);
  const registerIgnore = (n: Nexus, saKey: bigint) => prOut(n, 6, 0, 0n, saKey);
  const reserve = (n: Nexus, key: bigint, type: number) => prOut(n, 1, type, key, 0n);
  const release = (n: Nexus, key: bigint, type: number) => prOut(n, 2, type, key, 0n);
  const read = (n: Nexus) => run(n, [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
  const write = (n: Nexus) => run(n, [0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], Buffer.alloc(512));
  return { lu, run, prOut, prIn, register, registerIgnore, reserve, release, read, write };
}

t.test('ProutRegister.Simple / PrinReadKeys.Simple / PrinReadKeys.Truncate', async (t) => {
  const d = await disk();
  expectGood(t, await d.register(A, 0n, 0xaan));
  expectGood(t, await d.registerIgnore(B, 0xbbn));
  const keys = await d.prIn(A, 0);
  t.equal(keys.dataIn?.toString('hex'), '00000002' + '00000010' + '00000000000000aa' + '00000000000000bb');
  t.equal((await d.prIn(A, 0, 8)).dataIn?.toString('hex'), '0000000200000010', 'truncated to allocation length');
  t.equal((await d.register(A, 0x99n, 0x11n)).status, ScsiStatus.RESERVATION_CONFLICT, 'wrong key');
  await d.run(nexus('c'), [0, 0, 0, 0, 0, 0]);
  t.equal((await d.register(nexus('c'), 0x99n, 0x11n)).status, ScsiStatus.RESERVATION_CONFLICT, 'unregistered with key');
  expectGood(t, await d.register(A, 0xaan, 0xa1n));
  expectGood(t, await d.register(A, 0xa1n, 0n));
  t.equal((await d.prIn(A, 0)).dataIn?.toString('hex'), '00000004' + '00000008' + '00000000000000bb');
});

t.test('ProutRegister: APTPL / ALL_TG_PT / SPEC_I_PT unsupported; parameter list length 24', async (t) => {
  const d = await disk();
  expectSense(t, await d.prOut(A, 0, 0, 0n, 1n, 0x01), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: 20, bitPointer: 0 });
  expectSense(t, await d.prOut(A, 0, 0, 0n, 1n, 0x04), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: 20, bitPointer: 2 });
  expectSense(t, await d.prOut(A, 0, 0, 0n, 1n, 0x08), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: 20, bitPointer: 3 });
  expectSense(t, await d.run(A, [0x5f, 0, 0, 0, 0, 0, 0, 0, 20, 0], Buffer.alloc(20)), Sense.PARAMETER_LIST_LENGTH_ERROR);
});

t.test('PrinReportCapabilities.Simple', async (t) => {
  const d = await disk();
  t.equal((await d.prIn(A, 2)).dataIn?.toString('hex'), '0008' + '1080' + 'ea01' + '0000');
});

const accessMatrix: Array<[string, number, [boolean, boolean, boolean, boolean]]> = [
  // type, [registered B can read, can write, unregistered B can read, can write]
  ['ProutReserve.AccessEA', PrType.EXCLUSIVE_ACCESS, [false, false, false, false]],
  ['ProutReserve.AccessWE', PrType.WRITE_EXCLUSIVE, [true, false, true, false]],
  ['ProutReserve.AccessEARO', PrType.EXCLUSIVE_ACCESS_REGISTRANTS_ONLY, [true, true, false, false]],
  ['ProutReserve.AccessWERO', PrType.WRITE_EXCLUSIVE_REGISTRANTS_ONLY, [true, true, true, false]],
  ['ProutReserve.AccessEAAR', PrType.EXCLUSIVE_ACCESS_ALL_REGISTRANTS, [true, true, false, false]],
  ['ProutReserve.AccessWEAR', PrType.WRITE_EXCLUSIVE_ALL_REGISTRANTS, [true, true, true, false]],
];

for (const [name, type, [regRead, regWrite, unregRead, unregWrite]] of accessMatrix) {
  t.test(name, async (t) => {
    const d = await disk();
    expectGood(t, await d.registerIgnore(A, 0x1n));
    expectGood(t, await d.registerIgnore(B, 0x2n));
    expectGood(t, await d.reserve(A, 0x1n, type));
    const allRegistrants = type === PrType.EXCLUSIVE_ACCESS_ALL_REGISTRANTS || type === PrType.WRITE_EXCLUSIVE_ALL_REGISTRANTS;
    t.equal(
      (await d.prIn(A, 1)).dataIn?.toString('hex'),
      '00000002' + '00000010' + (allRegistrants ? '0000000000000000' : '0000000000000001') + '00000000' + '00' + `0${type}` + '0000',
      'READ RESERVATION',
    );
    expectGood(t, await d.read(A));
    expectGood(t, await d.write(A));
    const status = (ok: boolean) => (ok ? ScsiStatus.GOOD : ScsiStatus.RESERVATION_CONFLICT);
    t.equal((await d.read(B)).status, status(regRead), 'registered read');
    t.equal((await d.write(B)).status, status(regWrite), 'registered write');
    expectGood(t, await d.register(B, 0x2n, 0n));
    t.equal((await d.read(B)).status, status(unregRead), 'unregistered read');
    t.equal((await d.write(B)).status, status(unregWrite), 'unregistered write');
    expectGood(t, await d.run(B, [0x12, 0, 0, 0, 36, 0])); // INQUIRY is always allowed
    expectGood(t, await d.release(A, 0x1n, type));
    expectGood(t, await d.write(B));
  });
}

t.test('ProutReserve: conflicts and RELEASE with the wrong type', async (t) => {
  const d = await disk();
  t.equal((await d.reserve(A, 0x1n, PrType.WRITE_EXCLUSIVE)).status, ScsiStatus.RESERVATION_CONFLICT, 'not registered');
  expectGood(t, await d.registerIgnore(A, 0x1n));
  expectGood(t, await d.registerIgnore(B, 0x2n));
  expectSense(t, await d.reserve(A, 0x1n, 2), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 2 });
  expectGood(t, await d.reserve(A, 0x1n, PrType.WRITE_EXCLUSIVE));
  expectGood(t, await d.reserve(A, 0x1n, PrType.WRITE_EXCLUSIVE));
  t.equal((await d.reserve(B, 0x2n, PrType.WRITE_EXCLUSIVE)).status, ScsiStatus.RESERVATION_CONFLICT);
  expectGood(t, await d.release(B, 0x2n, PrType.WRITE_EXCLUSIVE)); // not the holder: no effect
  expectSense(t, await d.release(A, 0x1n, PrType.EXCLUSIVE_ACCESS), Sense.INVALID_RELEASE_OF_PERSISTENT_RESERVATION);
  t.equal((await d.run(B, [0x16, 0, 0, 0, 0, 0])).status, ScsiStatus.RESERVATION_CONFLICT, 'RESERVE(6) under a PR');
});

t.test('ProutClear.Simple', async (t) => {
  const d = await disk();
  expectGood(t, await d.registerIgnore(A, 0x1n));
  expectGood(t, await d.registerIgnore(B, 0x2n));
  expectGood(t, await d.reserve(A, 0x1n, PrType.EXCLUSIVE_ACCESS));
  expectGood(t, await d.prOut(A, 3, 0, 0x1n, 0n));
  t.equal((await d.prIn(A, 0)).dataIn?.subarray(4, 8).toString('hex'), '00000000', 'no keys');
  t.equal((await d.prIn(A, 1)).dataIn?.subarray(4, 8).toString('hex'), '00000000', 'no reservation');
  expectSense(t, await d.read(B), Sense.RESERVATIONS_PREEMPTED);
  expectGood(t, await d.read(B));
});

t.test('ProutPreempt.RemoveRegistration', async (t) => {
  const d = await disk();
  expectGood(t, await d.registerIgnore(A, 0x1n));
  expectGood(t, await d.registerIgnore(B, 0x2n));
  expectGood(t, await d.prOut(A, 4, PrType.WRITE_EXCLUSIVE, 0x1n, 0x2n));
  t.equal((await d.prIn(A, 0)).dataIn?.subarray(4).toString('hex'), '00000008' + '0000000000000001');
  expectSense(t, await d.read(B), Sense.REGISTRATIONS_PREEMPTED);
  t.equal((await d.prOut(A, 4, PrType.WRITE_EXCLUSIVE, 0x1n, 0x7n)).status, ScsiStatus.RESERVATION_CONFLICT, 'no such key');
});

t.test('ProutPreempt: taking over the holder’s reservation', async (t) => {
  const d = await disk();
  expectGood(t, await d.registerIgnore(A, 0x1n));
  expectGood(t, await d.registerIgnore(B, 0x2n));
  expectGood(t, await d.reserve(A, 0x1n, PrType.EXCLUSIVE_ACCESS));
  t.equal((await d.read(B)).status, ScsiStatus.RESERVATION_CONFLICT);
  expectGood(t, await d.prOut(B, 5, PrType.EXCLUSIVE_ACCESS, 0x2n, 0x1n)); // PREEMPT AND ABORT
  t.equal(
    (await d.prIn(B, 1)).dataIn?.subarray(8, 22).toString('hex'),
    '0000000000000002' + '00000000' + '0003',
    'B holds it now',
  );
  expectSense(t, await d.read(A), Sense.REGISTRATIONS_PREEMPTED);
  t.equal((await d.read(A)).status, ScsiStatus.RESERVATION_CONFLICT);
});

t.test('PrinReadFullStatus', async (t) => {
  const d = await disk();
  expectGood(t, await d.registerIgnore(A, 0x1n));
  expectGood(t, await d.reserve(A, 0x1n, PrType.WRITE_EXCLUSIVE));
  const full = (await d.prIn(A, 3)).dataIn!;
  const name = `${A.initiatorPortName}`;
  const idLength = Math.ceil((name.length + 1) / 4) * 4;
  t.equal(full.readUInt32BE(4), 24 + 4 + idLength, 'ADDITIONAL LENGTH');
  t.equal(full.subarray(8, 32).toString('hex'), '0000000000000001' + '00000000' + '0101' + '00000000' + '0001' + (4 + idLength).toString(16).padStart(8, '0'));
  t.equal(full.subarray(32, 36).toString('hex'), '4500' + idLength.toString(16).padStart(4, '0'), 'iSCSI TransportID, format 01b');
  t.equal(full.subarray(36, 36 + name.length).toString('utf8'), name);
});
