// SSC-4 READ(6), WRITE(6), WRITE FILEMARKS(6) of the tape drive LU over the in-memory tape:
// variable and fixed block modes, ILI / FILEMARK / EOM sense with exact INFORMATION residuals.

import t from 'tap';
import { ScsiStatus } from '../../../iscsi/device.js';
import { Sense } from '../../../iscsi/scsi/sense.js';
import { expectGood, expectSense } from '../../helpers/expect-sense.js';
import { blockDescriptorParameterList, cdb, MemoryTape, streamSense, tapeDriveWith } from '../../helpers/memory-tape.js';

const FIXED = 0x01;
const SILI = 0x02;
const record = (length: number, seed: number): Buffer => Buffer.alloc(length, seed);

async function positionOf(run: Awaited<ReturnType<typeof tapeDriveWith>>['run']): Promise<number> {
  const r = await run(cdb.readPosition());
  return r.dataIn!.readUInt32BE(4);
}

t.test('Ssc.Write.VariableRecords / Ssc.Read.Variable', async (t) => {
  const tape = new MemoryTape();
  const { run } = await tapeDriveWith(tape);
  for (const [i, length] of [100, 200, 300].entries()) expectGood(t, await run(cdb.write6(length), record(length, i + 1)));
  t.same(tape.objects.map((o) => o?.length), [100, 200, 300], 'one record per WRITE(6)');
  expectGood(t, await run(cdb.rewind()));
  for (const [i, length] of [100, 200, 300].entries()) {
    const r = await run(cdb.read6(length));
    expectGood(t, r);
    t.equal(r.dataIn?.toString('hex'), record(length, i + 1).toString('hex'));
  }
});

t.test('Ssc.Read.ShortRecordIli', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape());
  await run(cdb.write6(100), record(100, 7));
  await run(cdb.rewind());
  const r = await run(cdb.read6(200));
  expectSense(t, r, Sense.NO_ADDITIONAL_SENSE_INFORMATION);
  t.equal(streamSense(r), 'FM=0 EOM=0 ILI=1 info=100', 'ILI, INFORMATION = requested - actual');
  t.equal(r.dataIn?.toString('hex'), record(100, 7).toString('hex'), 'the short record is transferred');
  t.equal(await positionOf(run), 1, 'positioned after the record');
});

t.test('Ssc.Read.ShortRecordSili', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape());
  await run(cdb.write6(100), record(100, 7));
  await run(cdb.rewind());
  const r = await run(cdb.read6(200, SILI));
  expectGood(t, r);
  t.equal(r.dataIn?.length, 100);
});

t.test('Ssc.Read.LongRecordIli', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape());
  await run(cdb.write6(300), record(300, 9));
  await run(cdb.write6(10), record(10, 1));
  await run(cdb.rewind());
  for (const flags of [0, SILI]) {
    await run(cdb.rewind());
    const r = await run(cdb.read6(200, flags));
    expectSense(t, r, Sense.NO_ADDITIONAL_SENSE_INFORMATION);
    t.equal(streamSense(r), 'FM=0 EOM=0 ILI=1 info=-100', 'overlength: negative INFORMATION even with SILI');
    t.equal(r.dataIn?.toString('hex'), record(200, 9).toString('hex'), 'truncated to the transfer length');
    t.equal(await positionOf(run), 1, 'the rest of the record is skipped');
  }
});

t.test('Ssc.Read.Filemark', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape());
  await run(cdb.write6(64), record(64, 1));
  expectGood(t, await run(cdb.writeFilemarks6(1)));
  await run(cdb.write6(64), record(64, 2));
  await run(cdb.rewind());
  expectGood(t, await run(cdb.read6(64)));
  const r = await run(cdb.read6(64));
  expectSense(t, r, Sense.FILEMARK_DETECTED);
  t.equal(streamSense(r), 'FM=1 EOM=0 ILI=0 info=64');
  t.equal(r.dataIn, undefined, 'no data');
  t.equal(await positionOf(run), 2, 'on the EOP side of the filemark');
  const next = await run(cdb.read6(64));
  t.equal(next.dataIn?.toString('hex'), record(64, 2).toString('hex'), 'the next file follows');
});

t.test('Ssc.Read.EndOfData', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape());
  await run(cdb.write6(64), record(64, 1));
  const r = await run(cdb.read6(64));
  expectSense(t, r, Sense.END_OF_DATA_DETECTED);
  t.equal(streamSense(r), 'FM=0 EOM=0 ILI=0 info=64', 'BLANK CHECK 00/05 with the residual (not tgt 00/00)');
  t.equal(await positionOf(run), 1, 'stays at EOD');
  const blank = await (await tapeDriveWith(new MemoryTape())).run(cdb.read6(10));
  expectSense(t, blank, Sense.END_OF_DATA_DETECTED);
});

t.test('Ssc.Read.ZeroLength', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape());
  await run(cdb.write6(64), record(64, 1));
  await run(cdb.rewind());
  expectGood(t, await run(cdb.read6(0)));
  t.equal(await positionOf(run), 0, 'no motion');
});

t.test('Ssc.Read.FixedInVariableMode / Ssc.Read.FixedSili', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape());
  expectSense(t, await run(cdb.read6(1, FIXED)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 0 });
  expectSense(t, await run(cdb.write6(1, FIXED), Buffer.alloc(512)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 0 });
  expectSense(t, await run(cdb.read6(1, FIXED | SILI)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 1 });
});

t.test('Ssc.Write.FixedBlocks / Ssc.Read.Fixed', async (t) => {
  const tape = new MemoryTape();
  const { run } = await tapeDriveWith(tape);
  expectGood(t, await run(cdb.modeSelect6(12), blockDescriptorParameterList(0x00, 512)));
  const data = Buffer.concat([record(512, 1), record(512, 2), record(512, 3)]);
  expectGood(t, await run(cdb.write6(3, FIXED), data));
  t.same(tape.objects.map((o) => o?.length), [512, 512, 512], 'one record per block');
  await run(cdb.rewind());
  const r = await run(cdb.read6(3, FIXED));
  expectGood(t, r);
  t.equal(r.dataIn?.toString('hex'), data.toString('hex'));
});

t.test('Ssc.Read.FixedWrongLengthIli', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape());
  await run(cdb.modeSelect6(12), blockDescriptorParameterList(0x58, 512));
  await run(cdb.write6(2, FIXED), Buffer.concat([record(512, 1), record(512, 2)]));
  await run(cdb.write6(100), record(100, 3)); // variable record inside a fixed-mode file
  await run(cdb.write6(1, FIXED), record(512, 4));
  await run(cdb.rewind());
  const r = await run(cdb.read6(4, FIXED));
  expectSense(t, r, Sense.NO_ADDITIONAL_SENSE_INFORMATION);
  t.equal(streamSense(r), 'FM=0 EOM=0 ILI=1 info=2', 'INFORMATION = requested blocks - blocks read');
  t.equal(r.dataIn?.length, 1024, 'the two good blocks are transferred');
  t.equal(await positionOf(run), 3, 'after the incorrect-length block');
});

t.test('Ssc.Read.FixedFilemarkResidual', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape());
  await run(cdb.modeSelect6(12), blockDescriptorParameterList(0x00, 1024));
  await run(cdb.write6(3, FIXED), Buffer.alloc(3072, 5));
  await run(cdb.writeFilemarks6(1));
  await run(cdb.rewind());
  const r = await run(cdb.read6(8, FIXED));
  expectSense(t, r, Sense.FILEMARK_DETECTED);
  t.equal(streamSense(r), 'FM=1 EOM=0 ILI=0 info=5');
  t.equal(r.dataIn?.length, 3072);
});

t.test('Ssc.Write.BeyondBlockLimits', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape());
  const big = 0x100001;
  expectSense(t, await run(cdb.write6(big), Buffer.alloc(big)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 2 });
  expectGood(t, await run(cdb.write6(0x100000), Buffer.alloc(0x100000)));
});

t.test('Ssc.Write.WriteProtected', async (t) => {
  const tape = new MemoryTape({ writeProtected: true });
  const { run } = await tapeDriveWith(tape);
  expectSense(t, await run(cdb.write6(10), record(10, 1)), Sense.WRITE_PROTECTED);
  expectSense(t, await run(cdb.writeFilemarks6(1)), Sense.WRITE_PROTECTED);
  expectSense(t, await run(cdb.erase6()), Sense.WRITE_PROTECTED);
  expectGood(t, await run(cdb.writeFilemarks6(0)));
  t.equal(tape.objects.length, 0);
  const ms = await run(cdb.modeSense6(0x3f));
  t.equal(ms.dataIn![2]! & 0x80, 0x80, 'WP in the mode parameter header');
});

t.test('Ssc.Write.WormOverwrite', async (t) => {
  const tape = new MemoryTape({ worm: true });
  const { run } = await tapeDriveWith(tape);
  await run(cdb.write6(10), record(10, 1));
  await run(cdb.write6(10), record(10, 2));
  await run(cdb.rewind());
  expectSense(t, await run(cdb.write6(10), record(10, 3)), Sense.WORM_MEDIUM_OVERWRITE_ATTEMPTED);
  expectSense(t, await run(cdb.writeFilemarks6(1)), Sense.WORM_MEDIUM_OVERWRITE_ATTEMPTED);
  expectGood(t, await run(cdb.space6(3, 0)));
  expectGood(t, await run(cdb.write6(10), record(10, 4)));
  t.equal(tape.objects.length, 3, 'appending at EOD is allowed');
});

t.test('Ssc.Write.OverwriteTruncates', async (t) => {
  const tape = new MemoryTape();
  const { run } = await tapeDriveWith(tape);
  for (let i = 0; i < 4; i++) await run(cdb.write6(10), record(10, i));
  await run(cdb.locate10(1));
  expectGood(t, await run(cdb.write6(20), record(20, 9)));
  t.same(tape.objects.map((o) => o?.length), [10, 20], 'EOD follows the new record');
});

t.test('Ssc.Write.EarlyWarning', async (t) => {
  const tape = new MemoryTape({ capacityBytes: 10_000, earlyWarningBytes: 3_000 });
  const { run } = await tapeDriveWith(tape);
  expectGood(t, await run(cdb.write6(5000), record(5000, 1)));
  const r = await run(cdb.write6(2500), record(2500, 2));
  expectSense(t, r, Sense.END_OF_PARTITION_MEDIUM_DETECTED_EARLY_WARNING);
  t.equal(streamSense(r), 'FM=0 EOM=1 ILI=0 info=0', 'NO SENSE, EOM, the record written');
  t.equal(tape.objects.length, 2);
  const fm = await run(cdb.writeFilemarks6(1));
  expectSense(t, fm, Sense.END_OF_PARTITION_MEDIUM_DETECTED_EARLY_WARNING);
  const rp = await run(cdb.readPosition());
  t.equal(rp.dataIn![0]! & 0x40, 0x40, 'READ POSITION: EOP');
});

t.test('Ssc.Write.EndOfMedium', async (t) => {
  const tape = new MemoryTape({ capacityBytes: 10_000, earlyWarningBytes: 3_000 });
  const { run } = await tapeDriveWith(tape);
  await run(cdb.write6(9000), record(9000, 1));
  const r = await run(cdb.write6(2000), record(2000, 2));
  expectSense(t, r, Sense.END_OF_PARTITION_MEDIUM_DETECTED);
  t.equal(streamSense(r), 'FM=0 EOM=1 ILI=0 info=2000', 'VOLUME OVERFLOW, nothing written');
  t.equal(tape.objects.length, 1);

  const fixed = await tapeDriveWith(new MemoryTape({ capacityBytes: 2048, earlyWarningBytes: 512 }));
  await fixed.run(cdb.modeSelect6(12), blockDescriptorParameterList(0x00, 512));
  const f = await fixed.run(cdb.write6(6, FIXED), Buffer.alloc(3072, 1));
  expectSense(t, f, Sense.END_OF_PARTITION_MEDIUM_DETECTED);
  t.equal(streamSense(f), 'FM=0 EOM=1 ILI=0 info=2', 'fixed mode: INFORMATION = blocks not written');
});

t.test('Ssc.WriteFilemarks.Setmarks', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape());
  expectSense(t, await run(cdb.writeFilemarks6(1, 0x02)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 1 });
});

t.test('Ssc.Write.Pipelined', async (t) => {
  const tape = new MemoryTape();
  const { run } = await tapeDriveWith(tape);
  let open!: () => void;
  tape.durabilityGate = new Promise<void>((resolve) => (open = resolve));
  const first = run(cdb.write6(10), record(10, 1));
  const second = run(cdb.write6(20), record(20, 2));
  const position = run(cdb.readPosition());
  let settled = 0;
  void first.then(() => settled++);
  void position.then(() => settled++);
  await new Promise((resolve) => setImmediate(resolve));
  t.same(tape.calls.slice(-2), ['writeRecord(10)', 'writeRecord(20)'], 'the second WRITE reached the medium before the first was durable');
  t.equal(settled, 0, 'nothing answered before durability; READ POSITION waits for the writes');
  open();
  expectGood(t, await first);
  expectGood(t, await second);
  const rp = await position;
  t.equal(rp.dataIn!.readUInt32BE(4), 2, 'READ POSITION sees both records');
  t.equal(rp.status, ScsiStatus.GOOD);
});
