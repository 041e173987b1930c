// RFC 7143 11.2 framing: every fixture split at every offset, with and without digests, several
// PDUs per chunk, digest errors, the length limit, rejects that keep framing, and data ownership.

import t from 'tap';
import { IscsiError } from '../../iscsi/errors.js';
import { PduFramer, serializePdu, serializePduParts, type FramerEvent } from '../../iscsi/framer.js';
import { Opcode, RejectReason, type DataOut, type Pdu } from '../../iscsi/pdu/types.js';
import { PDU_FIXTURES, hex } from '../fixtures/pdu-fixtures.js';

function comparable(pdu: Pdu): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(pdu).sort(([a], [b]) => a.localeCompare(b))) {
    out[key] = Buffer.isBuffer(value) ? value.toString('hex') : typeof value === 'bigint' ? `0x${value.toString(16)}` : value;
  }
  return out;
}

function describe(events: FramerEvent[]): unknown[] {
  return events.map((e) =>
    e.kind === 'reject'
      ? { kind: e.kind, bhs: e.bhs.toString('hex'), reason: e.reason }
      : e.kind === 'dataDigestError'
        ? { kind: e.kind, bhs: e.bhs.toString('hex'), pdu: comparable(e.pdu) }
        : { kind: e.kind, pdu: comparable(e.pdu) },
  );
}

const DIGEST_MODES = [
  { headerDigest: false, dataDigest: false },
  { headerDigest: true, dataDigest: false },
  { headerDigest: false, dataDigest: true },
  { headerDigest: true, dataDigest: true },
];

const wireOf = (pdu: Pdu, mode: { headerDigest: boolean; dataDigest: boolean }): Buffer =>
  Buffer.concat(serializePdu(pdu, mode));

t.test('serializePdu layout', async (t) => {
  const nop = PDU_FIXTURES[0]!;
  const plain = serializePdu(nop.pdu, { headerDigest: false, dataDigest: false });
  t.same(plain.map((b) => b.length), [48, 5, 3], 'BHS | data | padding');
  t.equal(plain[1], nop.pdu.data, 'the data segment is passed through, not copied');
  const digested = serializePdu(nop.pdu, { headerDigest: true, dataDigest: true });
  t.same(digested.map((b) => b.length), [52, 5, 7], 'BHS + digest | data | padding + digest');
  const r2t = PDU_FIXTURES.find((f) => f.pdu.opcode === Opcode.R2T)!;
  t.same(serializePdu(r2t.pdu, { headerDigest: true, dataDigest: true }).map((b) => b.length), [52],
    'no data digest without data (RFC 7143 11.2.3)');
  const ext = PDU_FIXTURES.find((f) => f.pdu.ahs.length > 0)!;
  t.same(serializePdu(ext.pdu, { headerDigest: true, dataDigest: false }).map((b) => b.length), [72],
    'header digest after the AHS');
});

t.test('digest placement on a known PDU', async (t) => {
  // RFC 3720 B.4: this READ(10) command BHS has the CRC bytes 56 3a 96 d9.
  const read10Bhs = hex(
    '01c00000 00000000 00000000 00000000',
    '14000000 00000400 00000014 00000018',
    '28000000 00000000 02000000 00000000',
  );
  const framer = new PduFramer({ headerDigest: true });
  const events = framer.push(Buffer.from(read10Bhs + '563a96d9', 'hex'));
  t.equal(events.length, 1);
  const event = events[0]!;
  t.equal(event.kind, 'pdu');
  if (event.kind !== 'pdu') return;
  t.equal(Buffer.concat(serializePdu(event.pdu, { headerDigest: true, dataDigest: false })).toString('hex'),
    read10Bhs + '563a96d9');
});

for (const mode of DIGEST_MODES) {
  t.test(`every fixture split at every offset, HeaderDigest=${mode.headerDigest} DataDigest=${mode.dataDigest}`, async (t) => {
    for (const fixture of PDU_FIXTURES) {
      const wire = wireOf(fixture.pdu, mode);
      const expected = [{ kind: 'pdu', pdu: comparable(fixture.pdu) }];
      let ok = true;
      for (let at = 0; at <= wire.length; at++) {
        const framer = new PduFramer(mode);
        const events = [...framer.push(Buffer.from(wire.subarray(0, at))), ...framer.push(Buffer.from(wire.subarray(at)))];
        const got = describe(events);
        if (JSON.stringify(got) !== JSON.stringify(expected)) {
          t.same(got, expected, `${fixture.name} split at ${at}`);
          ok = false;
          break;
        }
      }
      t.ok(ok, fixture.name);
    }
  });
}

t.test('all fixtures in one chunk, then one byte at a time', async (t) => {
  for (const mode of DIGEST_MODES) {
    const stream = Buffer.concat(PDU_FIXTURES.map((f) => wireOf(f.pdu, mode)));
    const expected = PDU_FIXTURES.map((f) => ({ kind: 'pdu', pdu: comparable(f.pdu) }));
    t.same(describe(new PduFramer(mode).push(stream)), expected, `one chunk ${JSON.stringify(mode)}`);
    const framer = new PduFramer(mode);
    const events: FramerEvent[] = [];
    for (let i = 0; i < stream.length; i++) events.push(...framer.push(stream.subarray(i, i + 1)));
    t.same(describe(events), expected, `byte by byte ${JSON.stringify(mode)}`);
  }
});

t.test('digests switched on between PDUs (after the final Login Response)', async (t) => {
  const login = PDU_FIXTURES.find((f) => f.pdu.opcode === Opcode.LOGIN_REQUEST)!;
  const nop = PDU_FIXTURES[0]!;
  const framer = new PduFramer();
  t.same(describe(framer.push(Buffer.from(login.wire, 'hex'))), [{ kind: 'pdu', pdu: comparable(login.pdu) }]);
  framer.setDigests(true, true);
  t.same(describe(framer.push(wireOf(nop.pdu, { headerDigest: true, dataDigest: true }))), [
    { kind: 'pdu', pdu: comparable(nop.pdu) },
  ]);
});

t.test('header digest error is fatal', async (t) => {
  const nop = PDU_FIXTURES[0]!;
  const wire = wireOf(nop.pdu, { headerDigest: true, dataDigest: false });
  wire[48] = wire[48]! ^ 0x01;
  const framer = new PduFramer({ headerDigest: true });
  const err = t.throws(() => framer.push(wire)) as IscsiError;
  t.equal(err.code, 'ISCSI_HEADER_DIGEST');
  t.equal(err.fatal, true);
  t.throws(() => framer.push(Buffer.from(nop.wire, 'hex')), { code: 'ISCSI_HEADER_DIGEST' }, 'stays failed');
});

t.test('data digest error is reported and framing continues', async (t) => {
  const dataOut = PDU_FIXTURES.find((f) => f.pdu.opcode === Opcode.SCSI_DATA_OUT)!;
  const nop = PDU_FIXTURES[0]!;
  const mode = { headerDigest: true, dataDigest: true };
  const bad = wireOf(dataOut.pdu, mode);
  bad[bad.length - 1] = bad[bad.length - 1]! ^ 0x80;
  const events = new PduFramer(mode).push(Buffer.concat([bad, wireOf(nop.pdu, mode)]));
  t.same(describe(events), [
    { kind: 'dataDigestError', bhs: dataOut.wire.slice(0, 96), pdu: comparable(dataOut.pdu) },
    { kind: 'pdu', pdu: comparable(nop.pdu) },
  ]);
});

t.test('padding bytes are covered by the data digest', async (t) => {
  const nop = PDU_FIXTURES[0]!;
  const mode = { headerDigest: false, dataDigest: true };
  const wire = wireOf(nop.pdu, mode);
  wire[48 + 5] = 0x01; // first padding byte
  t.same(describe(new PduFramer(mode).push(wire)).map((e) => (e as { kind: string }).kind), ['dataDigestError']);
});

t.test('DataSegmentLength above MaxRecvDataSegmentLength is fatal', async (t) => {
  const nop = PDU_FIXTURES[0]!;
  const framer = new PduFramer({ maxDataSegmentLength: 4 });
  const err = t.throws(() => framer.push(Buffer.from(nop.wire, 'hex'))) as IscsiError;
  t.equal(err.code, 'ISCSI_PROTOCOL');
  t.equal(err.fatal, true);
  const roomy = new PduFramer({ maxDataSegmentLength: 4 });
  roomy.setMaxDataSegmentLength(5);
  t.equal(roomy.push(Buffer.from(nop.wire, 'hex')).length, 1, 'exactly at the limit is fine');
});

t.test('an undecodable PDU becomes a reject and framing continues', async (t) => {
  const nop = PDU_FIXTURES[0]!;
  const unknown = '1c' + nop.wire.slice(2); // opcode 0x1c with NOP-Out's 5 data bytes
  const events = new PduFramer().push(Buffer.from(unknown + nop.wire, 'hex'));
  t.same(describe(events), [
    { kind: 'reject', bhs: unknown.slice(0, 96), reason: RejectReason.COMMAND_NOT_SUPPORTED },
    { kind: 'pdu', pdu: comparable(nop.pdu) },
  ]);
});

t.test('a 1 MiB Data-Out in 64 KiB chunks is assembled once into a buffer of its own', async (t) => {
  const lengthBytes = 1 << 20;
  const payload = Buffer.alloc(lengthBytes);
  for (let i = 0; i < lengthBytes; i += 4) payload.writeUInt32BE(i, i);
  const pdu: DataOut = {
    opcode: Opcode.SCSI_DATA_OUT, immediate: false, ahs: Buffer.alloc(0), data: payload, final: true,
    lun: 0n, itt: 7, ttt: 9, expStatSN: 1, dataSN: 0, bufferOffset: 0,
  };
  for (const mode of DIGEST_MODES) {
    const wire = wireOf(pdu, mode);
    const chunks: Buffer[] = [];
    for (let at = 0; at < wire.length; at += 64 * 1024) chunks.push(Buffer.from(wire.subarray(at, at + 64 * 1024)));
    const framer = new PduFramer(mode);
    const events = chunks.flatMap((c) => framer.push(c));
    t.equal(events.length, 1);
    const event = events[0]!;
    if (event.kind !== 'pdu' || event.pdu.opcode !== Opcode.SCSI_DATA_OUT) {
      t.fail(`unexpected ${event.kind}`);
      continue;
    }
    const data = event.pdu.data;
    t.equal(data.buffer.byteLength, lengthBytes, 'a buffer allocated for exactly this data segment');
    for (const c of chunks) c.fill(0);
    t.ok(data.equals(payload), `data intact after the chunks are overwritten ${JSON.stringify(mode)}`);
  }
});

t.test('a data segment inside one chunk is a view of that chunk', async (t) => {
  const nop = PDU_FIXTURES[0]!;
  const chunk = Buffer.from(nop.wire, 'hex');
  const [event] = new PduFramer().push(chunk);
  t.ok(event?.kind === 'pdu' && event.pdu.data.buffer === chunk.buffer, 'no copy: the chunk is never reused');
});

t.test('a placed data segment lands once in the owner\'s buffer, split at every offset', async (t) => {
  const payload = Buffer.alloc(1001);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 13 + 1) & 0xff;
  const pdu: DataOut = {
    opcode: Opcode.SCSI_DATA_OUT, immediate: false, ahs: Buffer.alloc(0), data: payload, final: true,
    lun: 0n, itt: 7, ttt: 9, expStatSN: 1, dataSN: 0, bufferOffset: 100,
  };
  for (const mode of DIGEST_MODES) {
    const wire = wireOf(pdu, mode);
    for (let at = 0; at <= wire.length; at++) {
      const owner = Buffer.alloc(2000);
      const seen: Array<Buffer | undefined> = [];
      const framer = new PduFramer({
        ...mode,
        placeData: (bhs, dataLength) => owner.subarray(bhs.readUInt32BE(40), bhs.readUInt32BE(40) + dataLength),
      });
      const events = [wire.subarray(0, at), wire.subarray(at)].flatMap((c) => {
        const out = framer.push(Buffer.from(c));
        seen.push(framer.placingInto);
        return out;
      });
      const event = events[0];
      if (events.length !== 1 || event?.kind !== 'pdu') {
        t.fail(`split at ${at} ${JSON.stringify(mode)}: ${events.map((e) => e.kind).join()}`);
        continue;
      }
      const data = event.pdu.data;
      if (data.buffer !== owner.buffer || data.byteOffset !== owner.byteOffset + 100 || !data.equals(payload)) {
        t.fail(`split at ${at} ${JSON.stringify(mode)}: not in the placed buffer`);
      }
      const dataStart = wire.length - payload.length - 3 - (mode.dataDigest ? 4 : 0);
      const midData = at >= dataStart && at < dataStart + payload.length; // from the header on
      if ((seen[0] !== undefined) !== midData) t.fail(`split at ${at}: placingInto while the segment is being copied only`);
      if (seen[1] !== undefined) t.fail('placingInto cleared once the segment is complete');
    }
  }
  t.pass('every split');
});

t.test('serializePduParts: the data segment as several buffers, digest over all of them', async (t) => {
  const a = Buffer.from('0011', 'hex');
  const b = Buffer.from('2233445566', 'hex');
  const pdu: DataOut = {
    opcode: Opcode.SCSI_DATA_OUT, immediate: false, ahs: Buffer.alloc(0), data: Buffer.concat([a, b]), final: true,
    lun: 0n, itt: 7, ttt: 9, expStatSN: 1, dataSN: 0, bufferOffset: 0,
  };
  for (const mode of DIGEST_MODES) {
    const parts = serializePduParts({ ...pdu, data: Buffer.alloc(0) }, [a, b], mode);
    t.equal(Buffer.concat(parts).toString('hex'), wireOf(pdu, mode).toString('hex'), `same wire form ${JSON.stringify(mode)}`);
    t.ok(parts[1] === a && parts[2] === b, 'the data buffers are passed through, not copied');
  }
});

t.test('fuzz: mutated streams in random chunks yield events or a fatal IscsiError', async (t) => {
  let seed = 0x2545f491;
  const random = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  let fatal = 0;
  let events = 0;
  for (let round = 0; round < 2000; round++) {
    const mode = DIGEST_MODES[random(DIGEST_MODES.length)]!;
    const stream = Buffer.concat(PDU_FIXTURES.map((f) => wireOf(f.pdu, mode)));
    for (let m = random(6); m > 0; m--) stream[random(stream.length)] = random(256);
    const framer = new PduFramer({ ...mode, maxDataSegmentLength: 8192 });
    try {
      for (let at = 0; at < stream.length; ) {
        const n = 1 + random(200);
        events += framer.push(stream.subarray(at, at + n)).length;
        at += n;
      }
    } catch (err) {
      if (!(err instanceof IscsiError && err.fatal)) {
        t.fail(`unexpected ${String(err)} in round ${round}`);
        return;
      }
      fatal++;
    }
  }
  t.ok(events > 0 && fatal > 0, `${events} events, ${fatal} fatal errors`);
});
