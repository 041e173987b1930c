// The tape drive LU over the real LevelDB tape store (src/store/tape-medium*.ts) instead of the
// in-memory tape: records and filemarks survive a remove / reopen, positioning and sense match.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Sense } from '../../../iscsi/scsi/sense.js';
import { openDatabase } from '../../../src/store/database.js';
import { TapeMediumStore } from '../../../src/store/tape-medium-store.js';
import { expectGood, expectSense } from '../../helpers/expect-sense.js';
import { cdb, streamSense, tapeDriveWith } from '../../helpers/memory-tape.js';

t.test('Ssc.Store.WriteRemoveReopenRead', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'shelfgate-ssc-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = await openDatabase(join(dir, 'data'));
  t.teardown(() => db.close());
  const store = new TapeMediumStore(db);
  const tape = await store.create({ barcode: 'SSC001', capacityBytes: 64 * 1024 * 1024, earlyWarningBytes: 1024 * 1024 });

  const first = await tapeDriveWith(tape);
  const record = (n: number, length = 4096) => Buffer.alloc(length, n);
  // Pipelined: three WRITE(6) in flight at once, then a filemark and a second file.
  const writes = [1, 2, 3].map((n) => first.run(cdb.write6(4096), record(n)));
  for (const w of writes) expectGood(t, await w);
  expectGood(t, await first.run(cdb.writeFilemarks6(1)));
  expectGood(t, await first.run(cdb.write6(100), record(9, 100)));
  expectGood(t, await first.run(cdb.loadUnload(0)));
  const removed = await first.lu.removeMedium();
  t.equal(removed, tape, 'the changer gets the cartridge back');
  await store.close(tape);

  const reopened = await store.open('SSC001');
  const { run } = await tapeDriveWith(reopened);
  for (const n of [1, 2, 3]) {
    const r = await run(cdb.read6(4096));
    t.equal(r.dataIn?.toString('hex'), record(n).toString('hex'), `record ${n}`);
  }
  const fm = await run(cdb.read6(4096));
  expectSense(t, fm, Sense.FILEMARK_DETECTED);
  t.equal(streamSense(fm), 'FM=1 EOM=0 ILI=0 info=4096');
  const short = await run(cdb.read6(4096));
  t.equal(streamSense(short), 'FM=0 EOM=0 ILI=1 info=3996', 'short record: ILI');
  expectSense(t, await run(cdb.read6(10)), Sense.END_OF_DATA_DETECTED);
  const back = await run(cdb.space6(1, -1));
  expectGood(t, back);
  const rp = await run(cdb.readPosition(0x06));
  t.equal(rp.dataIn?.subarray(8, 24).toString('hex'), '0000000000000003' + '0000000000000000', 'BOP side of the filemark, file 0');
  expectGood(t, await run(cdb.locate16(5))); // EOD itself
  expectSense(t, await run(cdb.locate16(6)), Sense.END_OF_DATA_DETECTED);
  expectGood(t, await run(cdb.locate16(1, 1)));
  t.equal((await run(cdb.read6(100))).dataIn?.toString('hex'), record(9, 100).toString('hex'), 'LOCATE(16) to file 1');
  await store.close(reopened);
});
