// SSC-4 positioning of the tape drive LU: SPACE(6/16), LOCATE(10/16), READ POSITION (short, long,
// extended), REWIND, ERASE(6) — with the FILEMARK / EOM / BLANK CHECK conditions and residuals.

import t from 'tap';
import { Sense } from '../../../iscsi/scsi/sense.js';
import { expectGood, expectSense } from '../../helpers/expect-sense.js';
import { cdb, MemoryTape, streamSense, tapeDriveWith, type RunCommand } from '../../helpers/memory-tape.js';

const BLOCKS = 0;
const FILEMARKS = 1;
const SEQUENTIAL_FILEMARKS = 2;
const END_OF_DATA = 3;

/** Tape layout (object ids): file 0 = records 0,1,2 + FM 3; file 1 = records 4,5 + FM 6;
 *  file 2 = record 7; EOD at 8. */
async function threeFiles(): Promise<{ run: RunCommand; tape: MemoryTape }> {
  const tape = new MemoryTape();
  const { run } = await tapeDriveWith(tape);
  const write = (n: number) => run(cdb.write6(16), Buffer.alloc(16, n));
  for (const n of [0, 1, 2]) await write(n);
  await run(cdb.writeFilemarks6(1));
  for (const n of [4, 5]) await write(n);
  await run(cdb.writeFilemarks6(1));
  await write(7);
  await run(cdb.rewind());
  return { run, tape };
}

async function position(run: RunCommand): Promise<{ objectId: number; fileNumber: number; bop: boolean }> {
  const long = await run(cdb.readPosition(0x06));
  return {
    objectId: Number(long.dataIn!.readBigUInt64BE(8)),
    fileNumber: Number(long.dataIn!.readBigUInt64BE(16)),
    bop: (long.dataIn![0]! & 0x80) !== 0,
  };
}

t.test('Ssc.Space.BlocksForward', async (t) => {
  const { run } = await threeFiles();
  expectGood(t, await run(cdb.space6(BLOCKS, 2)));
  t.same(await position(run), { objectId: 2, fileNumber: 0, bop: false });
});

t.test('Ssc.Space.BlocksForwardFilemark', async (t) => {
  const { run } = await threeFiles();
  const r = await run(cdb.space6(BLOCKS, 5));
  expectSense(t, r, Sense.FILEMARK_DETECTED);
  t.equal(streamSense(r), 'FM=1 EOM=0 ILI=0 info=2', 'residual = 5 - 3 blocks spaced');
  t.same(await position(run), { objectId: 4, fileNumber: 1, bop: false }, 'EOP side of the filemark');
});

t.test('Ssc.Space.BlocksReverseFilemark', async (t) => {
  const { run } = await threeFiles();
  await run(cdb.locate10(6)); // before the second filemark, after records 4, 5
  const r = await run(cdb.space6(BLOCKS, -4));
  expectSense(t, r, Sense.FILEMARK_DETECTED);
  t.equal(streamSense(r), 'FM=1 EOM=0 ILI=0 info=2');
  t.same(await position(run), { objectId: 3, fileNumber: 0, bop: false }, 'BOP side of the filemark');
});

t.test('Ssc.Space.BlocksReverseBop', async (t) => {
  const { run } = await threeFiles();
  await run(cdb.locate10(2));
  const r = await run(cdb.space6(BLOCKS, -5));
  expectSense(t, r, Sense.BEGINNING_OF_PARTITION_MEDIUM_DETECTED);
  t.equal(streamSense(r), 'FM=0 EOM=1 ILI=0 info=3');
  t.same(await position(run), { objectId: 0, fileNumber: 0, bop: true });
});

t.test('Ssc.Space.BlocksForwardEod', async (t) => {
  const { run } = await threeFiles();
  await run(cdb.locate10(7));
  const r = await run(cdb.space6(BLOCKS, 3));
  expectSense(t, r, Sense.END_OF_DATA_DETECTED);
  t.equal(streamSense(r), 'FM=0 EOM=0 ILI=0 info=2');
});

t.test('Ssc.Space.FilemarksForward', async (t) => {
  const { run } = await threeFiles();
  expectGood(t, await run(cdb.space6(FILEMARKS, 2)));
  t.same(await position(run), { objectId: 7, fileNumber: 2, bop: false });
});

t.test('Ssc.Space.FilemarksForwardEod', async (t) => {
  const { run } = await threeFiles();
  const r = await run(cdb.space6(FILEMARKS, 5));
  expectSense(t, r, Sense.END_OF_DATA_DETECTED);
  t.equal(streamSense(r), 'FM=0 EOM=0 ILI=0 info=3', 'BLANK CHECK, residual = 5 - 2 filemarks');
  t.same(await position(run), { objectId: 8, fileNumber: 2, bop: false });
});

t.test('Ssc.Space.FilemarksBackward', async (t) => {
  const { run } = await threeFiles();
  await run(cdb.space6(END_OF_DATA, 0));
  expectGood(t, await run(cdb.space6(FILEMARKS, -1)));
  t.same(await position(run), { objectId: 6, fileNumber: 1, bop: false }, 'BOP side of the last filemark');
  const r = await run(cdb.space6(FILEMARKS, -3));
  expectSense(t, r, Sense.BEGINNING_OF_PARTITION_MEDIUM_DETECTED);
  t.equal(streamSense(r), 'FM=0 EOM=1 ILI=0 info=2', 'one more filemark crossed, two not');
  t.same(await position(run), { objectId: 0, fileNumber: 0, bop: true });
});

t.test('Ssc.Space.EndOfData', async (t) => {
  const { run } = await threeFiles();
  expectGood(t, await run(cdb.space6(END_OF_DATA, 0)));
  t.same(await position(run), { objectId: 8, fileNumber: 2, bop: false });
  expectSense(t, await run(cdb.read6(16)), Sense.END_OF_DATA_DETECTED);
});

t.test('Ssc.Space.SequentialFilemarksUnsupported', async (t) => {
  const { run } = await threeFiles();
  expectSense(t, await run(cdb.space6(SEQUENTIAL_FILEMARKS, 1)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 3 });
  expectSense(t, await run(cdb.space6(4, 1)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1 }); // set marks
});

t.test('Ssc.Space16.BlocksAndFilemarks', async (t) => {
  const { run } = await threeFiles();
  expectGood(t, await run(cdb.space16(FILEMARKS, 1)));
  expectGood(t, await run(cdb.space16(BLOCKS, 1)));
  t.same(await position(run), { objectId: 5, fileNumber: 1, bop: false });
  const r = await run(cdb.space16(BLOCKS, -3));
  expectSense(t, r, Sense.FILEMARK_DETECTED);
  t.equal(streamSense(r), 'FM=1 EOM=0 ILI=0 info=2');
});

t.test('Ssc.Space.NoMedium', async (t) => {
  const { run } = await tapeDriveWith();
  expectSense(t, await run(cdb.space6(BLOCKS, 1)), Sense.MEDIUM_NOT_PRESENT);
});

t.test('Ssc.ReadPosition.ShortForm', async (t) => {
  const { run } = await threeFiles();
  let r = await run(cdb.readPosition());
  expectGood(t, r);
  t.equal(r.dataIn?.toString('hex'), '80000000' + '00000000' + '00000000' + '00000000' + '00000000', 'BOP, block 0');
  await run(cdb.space6(FILEMARKS, 1));
  await run(cdb.read6(16));
  r = await run(cdb.readPosition());
  t.equal(r.dataIn?.toString('hex'), '00000000' + '00000005' + '00000005' + '00000000' + '00000000', 'the real position, not 0 like tgt');
});

t.test('Ssc.ReadPosition.LongForm', async (t) => {
  const { run } = await threeFiles();
  await run(cdb.space6(FILEMARKS, 2));
  const r = await run(cdb.readPosition(0x06));
  t.equal(
    r.dataIn?.toString('hex'),
    '00000000' + '00000000' + '0000000000000007' + '0000000000000002' + '0000000000000000',
    'partition 0, logical object 7, file 2',
  );
});

t.test('Ssc.ReadPosition.ExtendedForm', async (t) => {
  const { run } = await threeFiles();
  await run(cdb.locate10(4));
  const r = await run(cdb.readPosition(0x08, 32));
  t.equal(r.dataIn?.toString('hex'), '0000001c' + '00000000' + '0000000000000004' + '0000000000000004' + '0000000000000000');
  const truncated = await run(cdb.readPosition(0x08, 8));
  t.equal(truncated.dataIn?.length, 8, 'ALLOCATION LENGTH');
  expectSense(t, await run(cdb.readPosition(0x02)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 4 });
});

t.test('Ssc.Locate10.LogicalObject', async (t) => {
  const { run } = await threeFiles();
  expectGood(t, await run(cdb.locate10(5)));
  const r = await run(cdb.read6(16));
  t.equal(r.dataIn?.toString('hex'), Buffer.alloc(16, 5).toString('hex'));
  expectGood(t, await run(cdb.locate10(3)));
  expectSense(t, await run(cdb.read6(16)), Sense.FILEMARK_DETECTED);
});

t.test('Ssc.Locate10.BeyondEod', async (t) => {
  const { run } = await threeFiles();
  expectSense(t, await run(cdb.locate10(100)), Sense.END_OF_DATA_DETECTED);
  t.same(await position(run), { objectId: 8, fileNumber: 2, bop: false }, 'positioned at EOD');
});

t.test('Ssc.Locate10.Partition', async (t) => {
  const { run } = await threeFiles();
  expectSense(t, await run(cdb.locate10(1, 0x02, 1)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 8 });
  expectGood(t, await run(cdb.locate10(1, 0x02, 0)));
});

t.test('Ssc.Locate16.LogicalFile', async (t) => {
  const { run } = await threeFiles();
  expectGood(t, await run(cdb.locate16(2, 1)));
  t.same(await position(run), { objectId: 7, fileNumber: 2, bop: false });
  expectGood(t, await run(cdb.locate16(4, 0)));
  t.same(await position(run), { objectId: 4, fileNumber: 1, bop: false });
  expectSense(t, await run(cdb.locate16(9, 1)), Sense.END_OF_DATA_DETECTED);
  expectSense(t, await run(cdb.locate16(1, 2)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 5 });
});

t.test('Ssc.Rewind', async (t) => {
  const { run } = await threeFiles();
  await run(cdb.space6(END_OF_DATA, 0));
  expectGood(t, await run(cdb.rewind()));
  t.same(await position(run), { objectId: 0, fileNumber: 0, bop: true });
});

t.test('Ssc.Erase.FromPosition', async (t) => {
  const { run, tape } = await threeFiles();
  await run(cdb.locate10(4));
  expectGood(t, await run(cdb.erase6()));
  t.equal(tape.objects.length, 4, 'EOD at the position');
  expectSense(t, await run(cdb.read6(16)), Sense.END_OF_DATA_DETECTED);
});
