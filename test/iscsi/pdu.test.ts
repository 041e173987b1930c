// RFC 7143 section 11 PDU layouts: decode, encode and round-trip one wire fixture per PDU type,
// then the decode errors, then a mutation fuzz (decode throws nothing but IscsiError).

import t, { type Test } from 'tap';
import { IscsiError } from '../../iscsi/errors.js';
import { extendedCdbAhs, parseAhs } from '../../iscsi/pdu/ahs.js';
import { BHS_LENGTH, decodePdu, encodeBhs } from '../../iscsi/pdu/codec.js';
import { Opcode, RejectReason, type Pdu } from '../../iscsi/pdu/types.js';
import { serializePdu } from '../../iscsi/framer.js';
import { PDU_FIXTURES, hex } from '../fixtures/pdu-fixtures.js';

/** Buffers as hex and bigints as hex, so t.same failures show bytes. */
function comparable(pdu: Pdu): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(pdu)) {
    out[key] = Buffer.isBuffer(value) ? value.toString('hex') : typeof value === 'bigint' ? `0x${value.toString(16)}` : value;
  }
  return out;
}

/** Splits a digest-less wire PDU into BHS, AHS and unpadded data as the framer would. */
function split(wire: Buffer): { bhs: Buffer; ahs: Buffer; data: Buffer } {
  const bhs = wire.subarray(0, BHS_LENGTH);
  const ahsEnd = BHS_LENGTH + bhs[4]! * 4;
  const dataLength = bhs.readUIntBE(5, 3);
  return { bhs, ahs: wire.subarray(BHS_LENGTH, ahsEnd), data: wire.subarray(ahsEnd, ahsEnd + dataLength) };
}

function decodeHex(wireHex: string): Pdu {
  const { bhs, ahs, data } = split(Buffer.from(wireHex, 'hex'));
  return decodePdu(bhs, ahs, data);
}

function expectIscsiError(t: Test, fn: () => unknown, code: string, rejectReason: number): void {
  try {
    fn();
    t.fail(`expected ${code}`);
  } catch (err) {
    t.ok(err instanceof IscsiError, 'an IscsiError');
    t.equal((err as IscsiError).code, code);
    t.equal((err as IscsiError).rejectReason, rejectReason);
  }
}

t.test('every opcode has a fixture', async (t) => {
  const covered = new Set(PDU_FIXTURES.map((f) => f.pdu.opcode));
  t.same([...covered].sort((a, b) => a - b), Object.values(Opcode).sort((a, b) => a - b));
});

for (const fixture of PDU_FIXTURES) {
  t.test(fixture.name, async (t) => {
    t.equal(fixture.wire.length % 8, 0, 'fixture is padded to 4 bytes');
    const decoded = decodeHex(fixture.wire);
    t.same(comparable(decoded), comparable(fixture.pdu), 'decode');
    const wire = Buffer.concat(serializePdu(fixture.pdu, { headerDigest: false, dataDigest: false }));
    t.equal(wire.toString('hex'), fixture.wire, 'encode');
    t.equal(encodeBhs(decoded).toString('hex'), fixture.wire.slice(0, BHS_LENGTH * 2), 'round-trip BHS');
    t.same(comparable(decodeHex(wire.toString('hex'))), comparable(decoded), 'round-trip PDU');
  });
}

t.test('decode copies ISID and CDB out of the BHS', async (t) => {
  const login = PDU_FIXTURES.find((f) => f.pdu.opcode === Opcode.LOGIN_REQUEST)!;
  const { bhs, ahs, data } = split(Buffer.from(login.wire, 'hex'));
  const pdu = decodePdu(bhs, ahs, data);
  bhs.fill(0xee);
  t.equal(pdu.opcode === Opcode.LOGIN_REQUEST && pdu.isid.toString('hex'), '400001370000');
  const read10 = PDU_FIXTURES.find((f) => f.name === 'SCSI Command READ(10)')!;
  const cmd = split(Buffer.from(read10.wire, 'hex'));
  const cmdPdu = decodePdu(cmd.bhs, cmd.ahs, cmd.data);
  cmd.bhs.fill(0xee);
  t.equal(cmdPdu.opcode === Opcode.SCSI_COMMAND && cmdPdu.cdb.toString('hex'), '28000000001000000800000000000000');
});

t.test('encode truncates numbers to their wire width', async (t) => {
  const bhs = encodeBhs({
    opcode: Opcode.NOP_IN, immediate: false, ahs: Buffer.alloc(0), data: Buffer.alloc(0),
    lun: -1n, itt: 0x1_0000_0002, ttt: -1, statSN: 2 ** 32, expCmdSN: 1, maxCmdSN: 0,
  });
  t.equal(bhs.toString('hex'), hex(
    '20 80 0000 00 000000', // NOP-In
    'ffffffffffffffff', // LUN -1n wraps to all ones
    '00000002 ffffffff 00000000 00000001 00000000', // ITT, TTT, StatSN (2^32 wraps), ExpCmdSN, MaxCmdSN
    '000000000000000000000000', // reserved
  ));
});

t.test('Extended CDB AHS', async (t) => {
  const cdb = Buffer.from(hex('7f00 0000000000 18 0009 0000 00000000', '00000010 00000000 0000 0000 00000001'), 'hex');
  const ahs = extendedCdbAhs(cdb);
  t.equal(ahs.toString('hex'), hex('0011 01 00', '00000010 00000000 0000 0000 00000001'));
  t.same(parseAhs(ahs).map((e) => ({ type: e.type, body: e.body.toString('hex') })), [
    { type: 1, body: '000000100000000000000000' + '00000001' },
  ]);
  t.equal(extendedCdbAhs(cdb.subarray(0, 16)).length, 0, 'no AHS for a 16-byte CDB');
  const odd = Buffer.concat([cdb, Buffer.from('aabb', 'hex')]); // 34 bytes: AHS padded to 24
  const oddAhs = extendedCdbAhs(odd);
  t.equal(oddAhs.toString('hex'), hex('0013 01 00', '00000010 00000000 0000 0000 00000001 aabb', '0000'));
  const pdu: Pdu = {
    opcode: Opcode.SCSI_COMMAND, immediate: false, ahs: oddAhs, data: Buffer.alloc(0), final: true,
    read: true, write: false, taskAttr: 1, lun: 0n, itt: 1, expectedDataTransferLength: 0, cmdSN: 1,
    expStatSN: 1, cdb: odd,
  };
  const wire = Buffer.concat(serializePdu(pdu, { headerDigest: false, dataDigest: false }));
  const back = decodeHex(wire.toString('hex'));
  t.equal(back.opcode === Opcode.SCSI_COMMAND && back.cdb.toString('hex'), odd.toString('hex'));
});

t.test('a Bidirectional Read Data Length AHS leaves the CDB at 16 bytes', async (t) => {
  const read10 = PDU_FIXTURES.find((f) => f.name === 'SCSI Command READ(10)')!.wire;
  const withBidi = hex(
    read10.slice(0, 8), '02', read10.slice(10, 96), // TotalAHSLength 2 words
    '0005 02 00', '00001000', // AHSLength 5 | AHSType 2 | reserved | Bidirectional Read Data Length
  );
  const pdu = decodeHex(withBidi);
  t.equal(pdu.opcode === Opcode.SCSI_COMMAND && pdu.cdb.toString('hex'), read10.slice(64, 96));
  t.equal(pdu.ahs.toString('hex'), '000502000000' + '1000');
});

t.test('encoding a long CDB without its Extended CDB AHS is a programming error', async (t) => {
  const ext = PDU_FIXTURES.find((f) => f.pdu.ahs.length > 0)!;
  t.throws(() => encodeBhs({ ...ext.pdu, ahs: Buffer.alloc(0) }), RangeError);
});

t.test('decode errors', async (t) => {
  const nop = PDU_FIXTURES[0]!.wire;
  const tmf = PDU_FIXTURES.find((f) => f.pdu.opcode === Opcode.TASK_MGMT_REQUEST)!.wire;
  const ext = PDU_FIXTURES.find((f) => f.pdu.ahs.length > 0)!.wire;

  t.test('unknown opcode is rejected as command not supported', async (t) => {
    expectIscsiError(t, () => decodeHex('1c' + nop.slice(2)), 'ISCSI_UNSUPPORTED_OPCODE', RejectReason.COMMAND_NOT_SUPPORTED);
  });
  t.test('TMF request with a data segment', async (t) => {
    const withData = tmf.slice(0, 10) + '000004' + tmf.slice(16) + 'cafebabe';
    expectIscsiError(t, () => decodeHex(withData), 'ISCSI_INVALID_PDU_FIELD', RejectReason.INVALID_PDU_FIELD);
  });
  t.test('AHS longer than TotalAHSLength', async (t) => {
    const bad = ext.slice(0, 96) + '0020' + ext.slice(100);
    expectIscsiError(t, () => decodeHex(bad), 'ISCSI_INVALID_PDU_FIELD', RejectReason.INVALID_PDU_FIELD);
  });
  t.test('two Extended CDB AHS', async (t) => {
    const twice = hex('01 c1 0000 0a 000000', ext.slice(16, 96), ext.slice(96), ext.slice(96));
    expectIscsiError(t, () => decodeHex(twice), 'ISCSI_INVALID_PDU_FIELD', RejectReason.INVALID_PDU_FIELD);
  });
  t.test('lengths that disagree with the BHS', async (t) => {
    const { bhs, ahs, data } = split(Buffer.from(nop, 'hex'));
    expectIscsiError(t, () => decodePdu(bhs.subarray(0, 47), ahs, data), 'ISCSI_PROTOCOL', RejectReason.PROTOCOL_ERROR);
    expectIscsiError(t, () => decodePdu(bhs, ahs, data.subarray(1)), 'ISCSI_PROTOCOL', RejectReason.PROTOCOL_ERROR);
    expectIscsiError(t, () => decodePdu(bhs, Buffer.alloc(4), data), 'ISCSI_PROTOCOL', RejectReason.PROTOCOL_ERROR);
  });
});

t.test('fuzz: 100k mutated PDUs decode or throw IscsiError', async (t) => {
  // Deterministic xorshift32 so a failure reproduces.
  let seed = 0x9e3779b9;
  const random = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const wires = PDU_FIXTURES.map((f) => Buffer.from(f.wire, 'hex'));
  let decoded = 0;
  let rejected = 0;
  for (let i = 0; i < 100_000; i++) {
    const wire = Buffer.from(wires[random(wires.length)]!);
    for (let m = 1 + random(4); m > 0; m--) {
      const at = random(BHS_LENGTH + 8);
      if (at < wire.length) wire[at] = random(256);
    }
    // Frame by the (possibly mutated) header, but only as far as the bytes go.
    const bhs = wire.subarray(0, BHS_LENGTH);
    const ahs = wire.subarray(BHS_LENGTH, Math.min(wire.length, BHS_LENGTH + bhs[4]! * 4));
    const dataStart = BHS_LENGTH + ahs.length;
    const data = wire.subarray(dataStart, Math.min(wire.length, dataStart + bhs.readUIntBE(5, 3)));
    try {
      decodePdu(bhs, ahs, data);
      decoded++;
    } catch (err) {
      if (!(err instanceof IscsiError)) {
        t.fail(`non-IscsiError on ${wire.toString('hex')}: ${String(err)}`);
        return;
      }
      rejected++;
    }
  }
  t.equal(decoded + rejected, 100_000);
  t.ok(decoded > 0 && rejected > 0, `decoded ${decoded}, rejected ${rejected}`);
});
