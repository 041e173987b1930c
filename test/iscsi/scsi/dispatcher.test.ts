// The op-table dispatcher on its own: a device type is data, and every failure becomes a status.

import t from 'tap';
import { ScsiStatus, type Nexus } from '../../../iscsi/device.js';
import type { Logger } from '../../../iscsi/log.js';
import { invalidFieldInCdb } from '../../../iscsi/scsi/cdb.js';
import { defineOp, good, OpTable } from '../../../iscsi/scsi/dispatcher.js';
import { ScsiLogicalUnit } from '../../../iscsi/scsi/lun.js';
import { Sense } from '../../../iscsi/scsi/sense.js';
import { spcOps } from '../../../iscsi/scsi/spc.js';
import { expectGood, expectSense } from '../../helpers/expect-sense.js';

const nexus: Nexus = {
  id: 'n1',
  initiatorPortName: 'iqn.1994-05.com.example:a,i,0x400001370000',
  initiatorName: 'iqn.1994-05.com.example:a',
  targetPortName: 'iqn.2026-11.dev.shelfgate:x,t,0x0001',
  relativeTargetPortId: 1,
};

interface Toy {
  loaded: boolean;
}

/** A made-up device type: SPC plus one vendor command 0xC1 (CDB byte 1 must be < 0x10). */
function toyUnit(log?: Logger) {
  const device: Toy = { loaded: true };
  const table = new OpTable<Toy>([
    ...spcOps<Toy>(),
    defineOp<Toy, { value: number }>({
      name: 'TOY ECHO',
      opcode: 0xc1,
      dataDirection: 'in',
      access: 'read',
      needsMedium: true,
      usage: [0xc1, 0xff, 0, 0, 0, 0x07],
      decode: (cdb) => {
        if (cdb[1]! >= 0x10) throw invalidFieldInCdb(1, 4);
        return { value: cdb[1]! };
      },
      execute: (_ctx, cmd) => {
        if (cmd.value === 0x0f) throw new TypeError('bug in a handler');
        return good(Buffer.from([cmd.value]));
      },
    }),
  ]);
  const lu = new ScsiLogicalUnit<Toy>({
    peripheralDeviceType: 0x1f,
    identity: { vendor: 'TOY', product: 'TOY', revision: '1' },
    serial: 'T1',
    naaId: '5000000000000001',
    versionDescriptors: [],
    opTable: table,
    device,
    modePages: [],
    modeHeader: { deviceSpecificParameter: () => 0 },
    vpdPages: [],
    mediumPresent: () => device.loaded,
    log,
  });
  const run = (cdb: number[]) => lu.execute({ nexus, cdb: Buffer.from(cdb), taskAttr: 1, expectedDataTransferLength: 255, dataOut: null });
  return { device, lu, run };
}

t.test('a device type is its op table', async (t) => {
  const { run, device } = toyUnit();
  await run([0x00, 0, 0, 0, 0, 0]);
  const r = await run([0xc1, 0x05, 0, 0, 0, 0]);
  expectGood(t, r);
  t.equal(r.dataIn?.toString('hex'), '05');
  expectSense(t, await run([0xc2, 0, 0, 0, 0, 0]), Sense.INVALID_COMMAND_OPERATION_CODE);
  expectSense(t, await run([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]), Sense.INVALID_COMMAND_OPERATION_CODE, {});
  expectSense(t, await run([0xc1, 0x10, 0, 0, 0, 0]), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 4 });
  device.loaded = false;
  expectSense(t, await run([0xc1, 0x05, 0, 0, 0, 0]), Sense.MEDIUM_NOT_PRESENT);
  expectSense(t, await run([0x00, 0, 0, 0, 0, 0]), Sense.MEDIUM_NOT_PRESENT);
  expectGood(t, await run([0x12, 0, 0, 0, 36, 0]));
});

t.test('an unexpected error is logged and becomes HARDWARE ERROR / INTERNAL TARGET FAILURE', async (t) => {
  const logged: string[] = [];
  const log: Logger = { debug() {}, info() {}, warn() {}, error: (msg) => void logged.push(msg) };
  const { run } = toyUnit(log);
  await run([0x00, 0, 0, 0, 0, 0]);
  expectSense(t, await run([0xc1, 0x0f, 0, 0, 0, 0]), Sense.INTERNAL_TARGET_FAILURE);
  t.same(logged, ['unexpected error executing SCSI command']);
});

t.test('short CDB and empty CDB', async (t) => {
  const { run } = toyUnit();
  await run([0x00, 0, 0, 0, 0, 0]);
  expectSense(t, await run([0xc1, 0x01]), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 0 });
  const empty = await run([]);
  t.equal(empty.status, ScsiStatus.CHECK_CONDITION);
});

t.test('op tables reject malformed CDB usage data', async (t) => {
  t.throws(
    () =>
      new OpTable<Toy>([
        defineOp<Toy, null>({ name: 'BAD', opcode: 0x28, dataDirection: 'none', access: 'allowed', usage: [0x28, 0, 0, 0, 0, 0], decode: () => null, execute: () => good() }),
      ]),
    /bad CDB usage data for BAD/,
  );
});
