// Exact sense at the edges (issue 11 item 7), against a real gateway process over iSCSI with our
// own initiator: a disk volume, the media changer and a tape drive. Each case sends exactly the
// input of the table and checks status and sense bytes. The expected sense bytes are
// built here from SPC-4 4.5.3 (fixed format sense data) and 4.5.2.4.2 (field pointer sense-key
// specific data), not from the gateway's own tables:
//   byte 0 70h, byte 2 SENSE KEY 5h (ILLEGAL REQUEST), byte 7 ADDITIONAL SENSE LENGTH 0Ah,
//   bytes 12-13 ASC/ASCQ 24h/00h (INVALID FIELD IN CDB), byte 15 SKSV=1 C/D=1 BPV BIT POINTER,
//   bytes 16-17 FIELD POINTER (the CDB byte in error).
import t, { type Test } from 'tap';
import { startGateway } from '../helpers/gateway-process.js';
import type { ScsiResult, TestInitiator } from '../helpers/initiator.js';
import { loginTarget, modeSelectBlockLength, moveMedium, mustBeGood, readPositionShort, shortPositionBlock } from '../helpers/tape-commands.js';

const INITIATOR = 'iqn.2026-11.test:cdb-edges';
const CHECK_CONDITION = 0x02;
const GOOD = 0x00;
/** AWS-Gateway-VTL element addresses (storage slots from 1, drives from 10001). */
const SLOT = 1;
const DRIVE = 10001;
/** SMC-3 6.10 READ ELEMENT STATUS of one element, VOLTAG=0. */
function readElementStatus(address: number): Buffer {
  const cdb = Buffer.alloc(12);
  cdb[0] = 0xb8;
  cdb.writeUInt16BE(address, 2);
  cdb.writeUInt16BE(1, 4);
  cdb.writeUIntBE(1024, 7, 3);
  return cdb;
}

/** FULL bit (SMC-3 6.10.4, element descriptor byte 2 bit 0) of the one element reported. */
function elementFull(data: Buffer): boolean {
  // 8-byte element status header, 8-byte element status page header, then the descriptor.
  return (data[16 + 2]! & 0x01) !== 0;
}

/** SPC-4 4.5.3 fixed format sense: ILLEGAL REQUEST, INVALID FIELD IN CDB, field pointer. */
function invalidFieldInCdbSense(fieldPointer: number, bitPointer?: number): string {
  const sense = Buffer.alloc(18);
  sense[0] = 0x70; // current error, fixed format
  sense[2] = 0x05; // ILLEGAL REQUEST
  sense[7] = 0x0a; // ADDITIONAL SENSE LENGTH: bytes 8-17
  sense[12] = 0x24; // INVALID FIELD IN CDB
  sense[13] = 0x00;
  sense[15] = 0x80 | 0x40 | (bitPointer !== undefined ? 0x08 | bitPointer : 0); // SKSV, C/D = CDB, BPV
  sense.writeUInt16BE(fieldPointer, 16);
  return sense.toString('hex');
}

function expectInvalidField(t: Test, result: ScsiResult, fieldPointer: number, bitPointer: number | undefined, what: string): void {
  t.equal(result.status, CHECK_CONDITION, `${what}: CHECK CONDITION`);
  t.equal(result.sense.subarray(0, 18).toString('hex'), invalidFieldInCdbSense(fieldPointer, bitPointer), `${what}: sense bytes`);
}

const gateway = await startGateway({ volumes: ['disk:1GiB'], extraArgs: ['--tapes', 'EDG:2', '--tape-slots', '4:1', '--log-level', 'warn'] });
t.teardown(() => gateway.dispose());

const sessions: TestInitiator[] = [];
const login = async (target: string): Promise<TestInitiator> => {
  const initiator = await loginTarget(gateway.iscsiPort, INITIATOR, gateway.targetIqn(target));
  sessions.push(initiator);
  return initiator;
};
t.teardown(async () => {
  for (const s of sessions) await s.logout().catch(() => s.destroy());
});

const disk = await login('disk');
const changer = await login('mediachanger');
const drive = await login('tapedrive-01');

t.test('CdbEdges.NACA: NACA=1 (CONTROL byte bit 2) on disk, tape and changer', async (t) => {
  // SAM-5 5.9.1.2 / SPC-4 4.2.5.1: NACA=1 when ACA is not supported is INVALID FIELD IN CDB.
  for (const [name, initiator] of [['disk', disk], ['tape', drive], ['changer', changer]] as const) {
    expectInvalidField(t, await initiator.scsi(Buffer.from([0x00, 0, 0, 0, 0, 0x04])), 5, 2, `${name} TEST UNIT READY NACA=1`);
    // INQUIRY (SPC-4 6.6): CONTROL is byte 5.
    expectInvalidField(t, await initiator.scsi(Buffer.from([0x12, 0, 0, 0, 96, 0x04]), { readLength: 96 }), 5, 2, `${name} INQUIRY NACA=1`);
  }
  // READ(10) on the disk (SBC-3 5.11): CONTROL is byte 9.
  expectInvalidField(t, await disk.scsi(Buffer.from([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0x04]), { readLength: 512 }), 9, 2, 'disk READ(10) NACA=1');
  // REPORT LUNS (SPC-4 6.33), answered by the target itself: CONTROL is byte 11.
  const reportLuns = Buffer.from([0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0x04]);
  expectInvalidField(t, await disk.scsi(reportLuns, { readLength: 16 }), 11, 2, 'REPORT LUNS NACA=1');
});

t.test('CdbEdges.ControlByte: vendor-specific and LINK bits of the CONTROL byte', async (t) => {
  // SAM-5 5.2: bits 7-6 vendor specific (none defined here), bit 0 LINK (obsolete, unsupported).
  expectInvalidField(t, await disk.scsi(Buffer.from([0x00, 0, 0, 0, 0, 0x80])), 5, 7, 'disk TEST UNIT READY CONTROL=80h');
  expectInvalidField(t, await drive.scsi(Buffer.from([0x00, 0, 0, 0, 0, 0x01])), 5, 0, 'tape TEST UNIT READY LINK=1');
  expectInvalidField(t, await changer.scsi(Buffer.from([0x00, 0, 0, 0, 0, 0xc0])), 5, 7, 'changer TEST UNIT READY CONTROL=C0h');
  // The disk still answers a plain TEST UNIT READY.
  t.equal((await disk.scsi(Buffer.from([0, 0, 0, 0, 0, 0]))).status, GOOD, 'disk TEST UNIT READY GOOD');
});

t.test('CdbEdges.TestUnitReadyReserved: bytes 1-4 of TEST UNIT READY are reserved', async (t) => {
  // SPC-4 6.37 table 291: bytes 1 to 4 reserved.
  for (const [name, initiator] of [['disk', disk], ['tape', drive], ['changer', changer]] as const) {
    for (let byte = 1; byte <= 4; byte++) {
      const cdb = Buffer.alloc(6);
      cdb[byte] = 0x01;
      expectInvalidField(t, await initiator.scsi(cdb), byte, 0, `${name} TEST UNIT READY byte ${byte} = 01h`);
    }
    const cdb = Buffer.from([0x00, 0x5a, 0, 0, 0, 0]);
    expectInvalidField(t, await initiator.scsi(cdb), 1, 6, `${name} TEST UNIT READY byte 1 = 5Ah (left-most bit)`);
  }
});

t.test('CdbEdges.MoveMediumReserved: MOVE MEDIUM with reserved bits set moves nothing', async (t) => {
  t.ok(elementFull(mustBeGood('READ ELEMENT STATUS slot', await changer.scsi(readElementStatus(SLOT), { readLength: 1024 })).dataIn), 'slot 1 holds a tape');
  // SMC-3 6.12 table 24: byte 1 reserved, bytes 8-9 reserved, byte 10 bits 7-1 reserved.
  const cases: Array<[number, number, number]> = [
    [1, 0x0f, 3],
    [8, 0x0f, 3],
    [9, 0x80, 7],
    [10, 0x02, 1],
  ];
  for (const [byte, value, bit] of cases) {
    const cdb = moveMedium(SLOT, DRIVE);
    cdb[byte] = value;
    expectInvalidField(t, await changer.scsi(cdb), byte, bit, `MOVE MEDIUM byte ${byte} = ${value.toString(16)}h`);
  }
  t.ok(elementFull((await changer.scsi(readElementStatus(SLOT), { readLength: 1024 })).dataIn), 'the tape is still in slot 1');
  t.notOk(elementFull((await changer.scsi(readElementStatus(DRIVE), { readLength: 1024 })).dataIn), 'the drive is still empty');
});

t.test('CdbEdges.FixedWriteShortData: WRITE(6) of 1 TiB in fixed-block mode with 1 MiB of Data-Out', async (t) => {
  mustBeGood('MOVE MEDIUM slot->drive', await changer.scsi(moveMedium(SLOT, DRIVE)));
  // Clear the NOT READY TO READY CHANGE unit attention of the load.
  for (let i = 0; i < 4 && (await drive.scsi(Buffer.alloc(6))).status !== GOOD; i++);
  const blockLength = 1 << 20;
  const select = modeSelectBlockLength(blockLength);
  mustBeGood('MODE SELECT block length 1 MiB', await drive.scsi(select.cdb, { dataOut: select.dataOut }));
  const before = shortPositionBlock(mustBeGood('READ POSITION', await drive.scsi(readPositionShort(), { readLength: 20 })).dataIn);

  // SSC-4 6.9 WRITE(6), FIXED=1, TRANSFER LENGTH 100000h blocks of 1 MiB = 1 TiB.
  const transferLength = 0x10_0000;
  const cdb = Buffer.from([0x0a, 0x01, (transferLength >> 16) & 0xff, (transferLength >> 8) & 0xff, transferLength & 0xff, 0]);
  const result = await drive.scsi(cdb, { dataOut: Buffer.alloc(blockLength, 0x5a) });
  // The Data-Out does not cover the transfer length: the command is refused (TRANSFER LENGTH is
  // byte 2, a multi-byte field: no bit pointer) and the response says the initiator's buffer fell
  // short (RFC 7143 11.4.5.1 residual overflow; the count saturates in its 32-bit field).
  expectInvalidField(t, result, 2, undefined, 'WRITE(6) fixed, 1 TiB, 1 MiB of data');
  t.equal(result.overflow, true, 'SCSI Response O bit (residual overflow)');
  t.equal(result.underflow, false, 'U bit clear');
  t.equal(result.residualCount, 0xffff_ffff, 'Residual Count: 1 TiB - 1 MiB does not fit 32 bits, saturated');
  const after = shortPositionBlock(mustBeGood('READ POSITION', await drive.scsi(readPositionShort(), { readLength: 20 })).dataIn);
  t.equal(after, before, 'nothing was written: the position did not move');

  // The same with exactly one block of data is written.
  const one = await drive.scsi(Buffer.from([0x0a, 0x01, 0, 0, 1, 0]), { dataOut: Buffer.alloc(blockLength, 0x5a) });
  t.equal(one.status, GOOD, 'WRITE(6) of one 1 MiB block with 1 MiB of data: GOOD');
  const moved = shortPositionBlock(mustBeGood('READ POSITION', await drive.scsi(readPositionShort(), { readLength: 20 })).dataIn);
  t.equal(moved, before + 1, 'one block written');
});
