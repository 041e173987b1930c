// SSC-4 8.3.3 BUFFERED MODE of the tape drive: the mode parameter header's DEVICE-SPECIFIC
// PARAMETER in MODE SENSE (current, changeable, default) and MODE SELECT, what each mode asks of
// the medium (TapeWriteOptions.sync), WRITE FILEMARKS IMMED, MEDIUM ERROR / WRITE ERROR for writes
// the store could not take, and fixed-block READ straight into the Data-In buffer. The in-memory
// tape records the calls; the `Store` cases run the drive over the real tape store and count its
// fdatasyncs.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Sense } from '../../../iscsi/scsi/sense.js';
import { openDatabase } from '../../../src/store/database.js';
import { TapeMediumStore } from '../../../src/store/tape-medium-store.js';
import { expectGood, expectSense } from '../../helpers/expect-sense.js';
import { cdb, MemoryTape, otherNexus, tapeDriveWith } from '../../helpers/memory-tape.js';

/** MODE SELECT(6) parameter list: only the mode parameter header (no block descriptor, no page). */
const headerOnly = (deviceSpecificParameter: number): Buffer => Buffer.from([0, 0, deviceSpecificParameter, 0]);
/** MODE SENSE(6) of page 3Fh (all) with page control `pc` (0 current, 1 changeable, 2 default). */
const modeSense6 = (pc: number): number[] => [0x1a, 0, (pc << 6) | 0x3f, 0, 255, 0];
/** MODE SENSE(10), same. */
const modeSense10 = (pc: number): number[] => [0x5a, 0, (pc << 6) | 0x3f, 0, 0, 0, 0, 0x10, 0, 0];

t.test('Ssc.BufferedMode.DefaultIsBuffered: BUFFERED MODE 1h, WRITE asks for no sync', async (t) => {
  const tape = new MemoryTape();
  const { run } = await tapeDriveWith(tape);
  const sense = await run(modeSense6(0));
  expectGood(t, sense);
  t.equal(sense.dataIn![2], 0x10, 'DEVICE-SPECIFIC PARAMETER: WP 0, BUFFERED MODE 1h, SPEED 0');
  const sense10 = await run(modeSense10(0));
  t.equal(sense10.dataIn![3], 0x10, 'MODE SENSE(10) byte 3 the same');
  expectGood(t, await run(cdb.write6(10), Buffer.alloc(10, 1)));
  t.same(tape.calls.slice(-1), ['writeRecord(10)'], 'a buffered WRITE: GOOD once the record is stored');
});

t.test('Ssc.BufferedMode.ModeSelectUnbuffered: BUFFERED MODE 0h syncs every WRITE; back to 1h', async (t) => {
  const tape = new MemoryTape();
  const { run } = await tapeDriveWith(tape);
  await run(cdb.requestSense(), null, otherNexus); // the second nexus exists
  expectGood(t, await run(cdb.write6(10), Buffer.alloc(10, 1)));
  expectGood(t, await run(cdb.modeSelect6(4), headerOnly(0x00)));
  t.same(tape.calls.slice(-2), ['writeRecord(10)', 'flush'], 'switching to unbuffered flushes what buffered writes left');
  t.equal((await run(modeSense6(0))).dataIn![2], 0x00, 'MODE SENSE reports BUFFERED MODE 0h');
  expectSense(t, await run(cdb.testUnitReady(), null, otherNexus), Sense.MODE_PARAMETERS_CHANGED);

  expectGood(t, await run(cdb.write6(20), Buffer.alloc(20, 2)));
  t.same(tape.calls.slice(-1), ['writeRecord(20, sync)'], 'an unbuffered WRITE: GOOD once durable');

  expectGood(t, await run(cdb.modeSelect6(4), headerOnly(0x10)));
  expectGood(t, await run(cdb.write6(30), Buffer.alloc(30, 3)));
  t.same(tape.calls.slice(-1), ['writeRecord(30)'], 'buffered again');
  t.same(tape.calls.filter((c) => c === 'flush'), ['flush'], 'switching to buffered flushes nothing');

  // WP is ignored in MODE SELECT data (it reports the medium): 80h selects BUFFERED MODE 0h.
  expectGood(t, await run(cdb.modeSelect6(4), headerOnly(0x80)));
  t.equal((await run(modeSense6(0))).dataIn![2], 0x00, 'WP ignored, BUFFERED MODE 0h selected');
});

t.test('Ssc.BufferedMode.Changeable: the changeable mask marks BUFFERED MODE and BLOCK LENGTH; defaults', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape());
  expectGood(t, await run(cdb.modeSelect6(4), headerOnly(0x00)));
  const changeable = await run(modeSense6(1));
  expectGood(t, changeable);
  t.equal(changeable.dataIn![2], 0x70, 'PC 01b: BUFFERED MODE (bits 6-4) changeable, WP and SPEED not');
  t.equal(changeable.dataIn![3], 8, 'one block descriptor');
  t.equal(changeable.dataIn!.subarray(4, 12).toString('hex'), '0000000000ffffff', 'DENSITY CODE and NUMBER OF BLOCKS not changeable, BLOCK LENGTH is');
  const changeable10 = await run(modeSense10(1));
  t.equal(changeable10.dataIn![3], 0x70, 'MODE SENSE(10): the same mask');
  t.equal(changeable10.dataIn!.subarray(8, 16).toString('hex'), '0000000000ffffff');
  const defaults = await run(modeSense6(2));
  t.equal(defaults.dataIn![2], 0x10, 'PC 10b: the default is BUFFERED MODE 1h (while the current value is 0h)');
  t.equal((await run(modeSense6(0))).dataIn![2], 0x00, 'the current value is unchanged');
  // A truncated answer is patched only as far as it goes.
  const short = await run([0x1a, 0, (1 << 6) | 0x3f, 0, 3, 0]);
  t.equal(short.dataIn!.length, 3, 'allocation length 3');
  t.equal(short.dataIn![2], 0x70);
});

t.test('Ssc.BufferedMode.InvalidValues: BUFFERED MODE 2h-7h and SPEED are refused, nothing changes', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape());
  for (const mode of [2, 3, 7]) {
    expectSense(t, await run(cdb.modeSelect6(4), headerOnly(mode << 4)), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: 2, bitPointer: 6 });
  }
  expectSense(t, await run(cdb.modeSelect6(4), headerOnly(0x01)), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: 2, bitPointer: 3 });
  // MODE SELECT(10): the DEVICE-SPECIFIC PARAMETER is byte 3.
  const select10 = [0x55, 0x10, 0, 0, 0, 0, 0, 0, 8, 0];
  expectSense(t, await run(select10, Buffer.from([0, 0, 0, 0x20, 0, 0, 0, 0])), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: 3, bitPointer: 6 });
  // A bad block descriptor after a good header: the header's BUFFERED MODE is not applied either.
  const badDescriptor = Buffer.from([0, 0, 0x00, 8, 0x46, 0, 0, 0, 0, 0, 2, 0]);
  expectSense(t, await run(cdb.modeSelect6(12), badDescriptor), Sense.INVALID_FIELD_IN_PARAMETER_LIST);
  t.equal((await run(modeSense6(0))).dataIn![2], 0x10, 'still BUFFERED MODE 1h');
  expectGood(t, await run(select10, Buffer.from([0, 0, 0, 0x00, 0, 0, 0, 0])));
  t.equal((await run(modeSense6(0))).dataIn![2], 0x00, 'MODE SELECT(10) sets BUFFERED MODE 0h');
});

t.test('Ssc.BufferedMode.PowerOn: a cold reset restores BUFFERED MODE 1h', async (t) => {
  const { lu, run } = await tapeDriveWith(new MemoryTape());
  expectGood(t, await run(cdb.modeSelect6(4), headerOnly(0x00)));
  lu.reset('target-warm');
  await run(cdb.requestSense());
  t.equal((await run(modeSense6(0))).dataIn![2], 0x00, 'a warm reset keeps the mode parameters');
  lu.reset('target-cold');
  await run(cdb.requestSense());
  t.equal((await run(modeSense6(0))).dataIn![2], 0x10, 'power on: BUFFERED MODE 1h');
});

t.test('Ssc.BufferedMode.WriteFilemarksImmed: IMMED=0 flushes, IMMED=1 does not; IMMED=1 unbuffered is refused', async (t) => {
  const tape = new MemoryTape();
  const { run } = await tapeDriveWith(tape);
  expectGood(t, await run(cdb.writeFilemarks6(1)));
  t.same(tape.calls.slice(-1), ['writeFilemarks(1, sync)'], 'IMMED=0: GOOD once the filemark and everything before it are durable');
  expectGood(t, await run(cdb.writeFilemarks6(1, 0x01)));
  t.same(tape.calls.slice(-1), ['writeFilemarks(1)'], 'IMMED=1: GOOD once stored');
  expectGood(t, await run(cdb.writeFilemarks6(0)));
  t.same(tape.calls.slice(-1), ['writeFilemarks(0, sync)'], 'count 0, IMMED=0: a flush');
  expectGood(t, await run(cdb.modeSelect6(4), headerOnly(0x00)));
  expectSense(t, await run(cdb.writeFilemarks6(1, 0x01)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 0 });
  t.equal(tape.objects.length, 2, 'the refused WRITE FILEMARKS wrote nothing');
});

t.test('Ssc.BufferedMode.WriteError: a write the store cannot take is MEDIUM ERROR, WRITE ERROR', async (t) => {
  const tape = new MemoryTape();
  const { run } = await tapeDriveWith(tape);
  expectGood(t, await run(cdb.write6(10), Buffer.alloc(10, 1)));
  tape.failWrites = 'write-error';
  expectSense(t, await run(cdb.write6(10), Buffer.alloc(10, 2)), Sense.WRITE_ERROR, { information: 10 });
  expectSense(t, await run(cdb.write6(2, 0x01), Buffer.alloc(2 * 512, 3)), Sense.INVALID_FIELD_IN_CDB); // fixed mode needs a block length
  expectSense(t, await run(cdb.writeFilemarks6(3)), Sense.WRITE_ERROR, { information: 3 });
  tape.failWrites = undefined;
  expectGood(t, await run(cdb.write6(10), Buffer.alloc(10, 4)));
  t.same(
    tape.objects.map((o) => (o === null ? 'FM' : o[0])),
    [1, 4],
    'only the records answered GOOD are on the tape',
  );
});

t.test('Ssc.Read.FixedIntoDataIn: a fixed-block READ reads each block into its place in the Data-In buffer', async (t) => {
  const tape = new MemoryTape();
  const { run } = await tapeDriveWith(tape);
  expectGood(t, await run(cdb.modeSelect6(12), Buffer.from([0, 0, 0x10, 8, 0, 0, 0, 0, 0, 0, 2, 0])));
  const blocks = Buffer.concat([1, 2, 3].map((n) => Buffer.alloc(512, n)));
  expectGood(t, await run(cdb.write6(3, 0x01), blocks));
  expectGood(t, await run(cdb.writeFilemarks6(1)));
  expectGood(t, await run(cdb.rewind()));
  const read = await run(cdb.read6(5, 0x01));
  expectSense(t, read, Sense.FILEMARK_DETECTED, { information: 2 });
  t.equal(read.dataIn?.toString('hex'), blocks.toString('hex'), 'the three blocks before the filemark');
  t.same(tape.calls.filter((c) => c.startsWith('read')), ['read(into 512)', 'read(into 512)', 'read(into 512)', 'read(into 512)'], 'each block into a 512-byte slot');
});

t.test('Ssc.BufferedMode.Store: fdatasyncs of the real store per mode and command', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'shelfgate-ssc-buffered-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = await openDatabase(join(dir, 'data'));
  t.teardown(() => db.close());
  const store = new TapeMediumStore(db);
  const tape = await store.create({ barcode: 'BUF001', capacityBytes: 64 * 1024 * 1024 });
  t.teardown(() => store.close(tape));
  const { run } = await tapeDriveWith(tape);
  const record = (n: number) => Buffer.alloc(4096, n);

  for (let n = 0; n < 10; n++) expectGood(t, await run(cdb.write6(4096), record(n)));
  t.equal(tape.dataSyncCount, 0, 'buffered mode: ten WRITEs answered GOOD without one fdatasync');
  expectGood(t, await run(cdb.writeFilemarks6(1, 0x01)));
  t.equal(tape.dataSyncCount, 0, 'WRITE FILEMARKS IMMED=1: no fdatasync');
  expectGood(t, await run(cdb.writeFilemarks6(1)));
  t.equal(tape.dataSyncCount, 1, 'WRITE FILEMARKS IMMED=0: one fdatasync for all of them');
  expectGood(t, await run(cdb.writeFilemarks6(0)));
  t.equal(tape.dataSyncCount, 1, 'a flush with nothing new to flush syncs nothing');

  expectGood(t, await run(cdb.write6(4096), record(20)));
  expectGood(t, await run(cdb.readPosition()));
  t.equal(tape.dataSyncCount, 1, 'READ POSITION does not flush');
  expectGood(t, await run(cdb.rewind()));
  t.equal(tape.dataSyncCount, 2, 'REWIND flushes');

  expectGood(t, await run(cdb.space6(3, 0))); // to end-of-data
  expectGood(t, await run(cdb.modeSelect6(4), headerOnly(0x00)));
  for (let n = 30; n < 33; n++) expectGood(t, await run(cdb.write6(4096), record(n)));
  t.equal(tape.dataSyncCount, 5, 'unbuffered: one fdatasync per WRITE answered in turn');
  expectGood(t, await run(cdb.modeSelect6(4), headerOnly(0x10)));
  expectGood(t, await run(cdb.write6(4096), record(40)));
  expectGood(t, await run(cdb.locate10(0)));
  t.equal(tape.dataSyncCount, 6, 'LOCATE flushes the buffered WRITE');

  // Everything reads back in order.
  const expected = [...Array.from({ length: 10 }, (_, n) => n), 'FM', 'FM', 20, 30, 31, 32, 40];
  for (const object of expected) {
    const r = await run(cdb.read6(4096));
    if (object === 'FM') expectSense(t, r, Sense.FILEMARK_DETECTED);
    else t.equal(r.dataIn?.[0], object, `record ${object}`);
  }
  expectSense(t, await run(cdb.read6(4096)), Sense.END_OF_DATA_DETECTED);
});
