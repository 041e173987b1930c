// StoredTapeMedium's buffered mode (TapeWriteOptions.sync; SSC-4 8.3.3 BUFFERED MODE as the drive
// maps it) and its disk-full / I/O-error handling, against a real Level database and data files.
// The disk-full cases mount a small tmpfs (as root; skipped with the reason otherwise), fill it
// with a filler file and write until the store refuses: the refused write is a 'write-error'
// fault, the data file ends with the last acknowledged frame, StoreHealth reports the episode,
// and once the filler is gone writes succeed and everything acknowledged reads back.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { open, stat, statfs, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { tapeFaultOf } from '../../iscsi/device.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { SpaceGuard } from '../../src/store/space-guard.js';
import { StoreHealth } from '../../src/store/store-health.js';
import { FRAME_HEADER_BYTES } from '../../src/store/tape-frame.js';
import { TapeKeys } from '../../src/store/tape-keys.js';
import { TapeMediumStore, type TapeMediumStoreOptions } from '../../src/store/tape-medium-store.js';
import type { StoredTapeMedium } from '../../src/store/tape-medium.js';

const MiB = 1024 * 1024;

function record(seed: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i += 4) buf.writeUInt32BE((seed * 2654435761 + i) >>> 0, i);
  return buf;
}

interface Fixture {
  dataDir: string;
  db: Database;
  store: TapeMediumStore;
}

async function fixture(t: Test, dataDir = mkdtempSync(join(tmpdir(), 'shelfgate-tape-buffered-')), opts: TapeMediumStoreOptions = {}): Promise<Fixture> {
  const f: Fixture = { dataDir, db: await openDatabase(dataDir), store: null as unknown as TapeMediumStore };
  f.store = new TapeMediumStore(f.db, opts);
  t.teardown(async () => {
    await f.store.closeAll();
    await f.db.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return f;
}

async function reopen(f: Fixture, opts: TapeMediumStoreOptions = {}): Promise<void> {
  await f.store.closeAll();
  await f.db.close();
  f.db = await openDatabase(f.dataDir);
  f.store = new TapeMediumStore(f.db, opts);
}

async function indexed(f: Fixture, barcode: string, objectId: number): Promise<boolean> {
  return (await f.db.level.get(new TapeKeys(barcode).object(objectId))) !== undefined;
}

t.test('Ssc.BufferedMode.Store.NoSyncUntilFlush: buffered writes are in the data file, not synced, not indexed', async (t) => {
  const f = await fixture(t);
  const tape = await f.store.create({ barcode: 'BUF001', capacityBytes: 64 * MiB });
  for (let n = 0; n < 20; n++) await tape.writeRecord(record(n, 1000));
  await tape.writeFilemarks(1);
  t.equal(tape.dataSyncCount, 0, '21 objects acknowledged, no fdatasync');
  const { size } = await stat(f.store.dataFilePath('BUF001'));
  t.equal(size, 20 * (FRAME_HEADER_BYTES + 1000) + FRAME_HEADER_BYTES, 'every acknowledged frame is in the data file (the OS has it)');
  t.notOk(await indexed(f, 'BUF001', 0), 'the index never points at data that is not on stable storage');

  await tape.writeFilemarks(0, { sync: true });
  t.equal(tape.dataSyncCount, 1, 'a flush: one fdatasync for all of them');
  await tape.flush(); // the index commit behind the sync has landed
  t.ok(await indexed(f, 'BUF001', 20), 'durable objects are indexed');
  await tape.flush();
  t.equal(tape.dataSyncCount, 1, 'nothing new: no fdatasync');
});

t.test('Ssc.BufferedMode.Store.Unbuffered: every sync write is one fdatasync (group commit when pipelined)', async (t) => {
  const f = await fixture(t);
  const tape = await f.store.create({ barcode: 'BUF002', capacityBytes: 64 * MiB });
  for (let n = 0; n < 5; n++) await tape.writeRecord(record(n, 1000), { sync: true });
  t.equal(tape.dataSyncCount, 5, 'five WRITEs in turn: five fdatasyncs');
  await Promise.all(Array.from({ length: 16 }, (_, n) => tape.writeRecord(record(100 + n, 1000), { sync: true })));
  t.ok(tape.dataSyncCount < 5 + 16, `16 pipelined sync WRITEs shared fdatasyncs (${tape.dataSyncCount - 5})`);
  // A buffered record, then a sync filemark: the filemark's sync covers the record.
  await tape.writeRecord(record(200, 1000));
  const before = tape.dataSyncCount;
  await tape.writeFilemarks(1, { sync: true });
  t.equal(tape.dataSyncCount, before + 1, 'one fdatasync');
  await tape.rewind();
  t.equal(tape.dataSyncCount, before + 1, 'REWIND with nothing unsynced: none');
});

t.test('Ssc.BufferedMode.Store.FlushBeforeMoving: REWIND, SPACE, LOCATE, READ, ERASE, close flush first', async (t) => {
  const f = await fixture(t);
  const tape = await f.store.create({ barcode: 'BUF003', capacityBytes: 64 * MiB });
  const steps: Array<[string, () => Promise<unknown>]> = [
    ['REWIND', () => tape.rewind()],
    ['SPACE to EOD', () => tape.spaceToEndOfData()],
    ['SPACE blocks', () => tape.spaceRecords(-1)],
    ['LOCATE', () => tape.locate(10_000)],
    ['READ', () => tape.read()],
    ['ERASE', () => tape.erase()],
  ];
  let syncs = 0;
  for (const [name, step] of steps) {
    await tape.spaceToEndOfData();
    await tape.writeRecord(record(syncs, 512));
    await step();
    syncs++;
    t.equal(tape.dataSyncCount, syncs, `${name} flushed the buffered WRITE`);
  }
  await tape.spaceToEndOfData();
  await tape.writeRecord(record(99, 512));
  await f.store.close(tape);
  await reopen(f);
  const reopened = await f.store.open('BUF003');
  await reopened.spaceToEndOfData();
  t.equal(reopened.position().logicalObjectId, 7, 'close made the last buffered WRITE durable');
});

t.test('Ssc.Read.IntoCallerBuffer: a record is read (pread) straight into the caller buffer', async (t) => {
  const f = await fixture(t);
  const tape = await f.store.create({ barcode: 'BUF004', capacityBytes: 64 * MiB });
  for (let n = 0; n < 4; n++) await tape.writeRecord(record(n, 4096));
  await tape.writeRecord(record(9, 8192));
  await tape.rewind();
  const first = await tape.read();
  t.equal(first.kind === 'record' && first.data.toString('hex'), record(0, 4096).toString('hex'), 'read ahead of its own: fetched bytes');
  const dataIn = Buffer.alloc(3 * 4096);
  for (let n = 1; n < 4; n++) {
    const slot = dataIn.subarray((n - 1) * 4096, n * 4096);
    const r = await tape.read(slot);
    t.ok(r.kind === 'record' && r.data.buffer === dataIn.buffer && r.data.byteOffset === slot.byteOffset, `record ${n} is a view of its slot`);
  }
  t.equal(dataIn.toString('hex'), Buffer.concat([1, 2, 3].map((n) => record(n, 4096))).toString('hex'), 'the bytes are the records');
  const tooLong = await tape.read(Buffer.alloc(4096));
  t.ok(tooLong.kind === 'record' && tooLong.data.length === 8192, 'a record longer than the buffer comes in its own');
});

// ---- disk full ---------------------------------------------------------------------------------

/** A fresh tmpfs of `sizeBytes`, unmounted in teardown; null (the test skipped) where it cannot be mounted. */
function mountTmpfs(t: Test, sizeBytes: number): string | null {
  const dir = mkdtempSync(join(tmpdir(), 'shelfgate-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    // plan(0, reason): the test is reported as skipped, with the reason.
    t.plan(0, `skipped: cannot mount a tmpfs (needs root): ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`);
    return null;
  }
  t.teardown(() => {
    execFileSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Fills the file system at `dir` until `leaveBytes` are available; returns the filler's path. */
async function fill(dir: string, leaveBytes: number): Promise<string> {
  const path = join(dir, 'filler');
  const s = await statfs(dir);
  const fillBytes = Number(s.bavail) * Number(s.bsize) - leaveBytes;
  const file = await open(path, 'w');
  const chunk = Buffer.alloc(MiB, 0xee);
  for (let done = 0; done < fillBytes; done += chunk.length) {
    await file.write(chunk, 0, Math.min(chunk.length, fillBytes - done));
  }
  await file.close();
  return path;
}

async function writeUntilRefused(tape: StoredTapeMedium, recordBytes: number, first: number): Promise<{ acked: number[]; error: unknown }> {
  const acked: number[] = [];
  for (let n = first; ; n++) {
    try {
      await tape.writeRecord(record(n, recordBytes));
      acked.push(n);
    } catch (error) {
      return { acked, error };
    }
    if (acked.length > 10_000) throw new Error('the disk never filled');
  }
}

async function readRecords(tape: StoredTapeMedium): Promise<Buffer[]> {
  await tape.rewind();
  const out: Buffer[] = [];
  for (;;) {
    const r = await tape.read();
    if (r.kind === 'end-of-data') return out;
    if (r.kind === 'record') out.push(r.data);
  }
}

for (const variant of ['SpaceGuard', 'ENOSPC'] as const) {
  t.test(`Ssc.BufferedMode.DiskFull.${variant}: the refused write is a write error; nothing acknowledged is lost`, async (t) => {
    const mount = mountTmpfs(t, 24 * MiB);
    if (mount === null) return;
    const dataDir = join(mount, 'data');
    mkdirSync(dataDir);
    const health = new StoreHealth();
    // 'ENOSPC': a guard that believes there is room (another process filled the disk since its
    // last look), so the append itself fails and may leave a torn frame.
    const spaceGuard = new SpaceGuard(dataDir, variant === 'ENOSPC' ? { reserveBytes: -1024 * MiB, refreshMs: 3_600_000 } : {});
    const opts: TapeMediumStoreOptions = { spaceGuard, storeHealth: health };
    const f = await fixture(t, dataDir, opts);
    const tape = await f.store.create({ barcode: 'FULL01', capacityBytes: 1024 * MiB });
    const recordBytes = 100_000; // not a multiple of the page size: the ENOSPC append is torn
    await tape.writeRecord(record(0, recordBytes), { sync: true });
    const filler = await fill(mount, variant === 'ENOSPC' ? 2 * MiB : 8 * MiB);
    if (variant === 'SpaceGuard') await spaceGuard.refresh(); // as its next look (every 250 ms) would

    const first = await writeUntilRefused(tape, recordBytes, 1);
    t.equal(tapeFaultOf(first.error), 'write-error', `refused after ${first.acked.length} more records: ${String(first.error)}`);
    t.ok(first.acked.length > 0, 'records were acknowledged before the disk was full');
    const acked = [0, ...first.acked];
    const { size } = await stat(f.store.dataFilePath('FULL01'));
    t.equal(size, acked.length * (FRAME_HEADER_BYTES + recordBytes), 'the data file ends with the last acknowledged frame (no torn bytes)');
    t.equal(tape.position().logicalObjectId, acked.length, 'the position is after the last acknowledged record');
    t.same(health.conditions().map((c) => [c.component, c.kind]), [['tape FULL01', 'disk-full']], 'StoreHealth: disk-full');
    if (variant === 'SpaceGuard') t.match(String(first.error), /no data space left/, 'refused by the guard, before the file system ran out');
    // Writing on: refused again once the little space others free meanwhile (Level's files share
    // the file system) is gone; whatever was acknowledged in between counts like the rest.
    const again = await writeUntilRefused(tape, recordBytes, 10_000);
    acked.push(...again.acked);
    t.equal(tapeFaultOf(again.error), 'write-error', `still full: refused again (after ${again.acked.length} records)`);
    t.ok(health.isDegraded(), 'still degraded');

    await unlink(filler);
    spaceGuard.released();
    const n = 20_000;
    await tape.writeRecord(record(n, recordBytes));
    acked.push(n);
    t.notOk(health.isDegraded(), 'a write succeeded: the condition cleared');
    await tape.writeFilemarks(1, { sync: true });

    await reopen(f, opts);
    const reopened = await f.store.open('FULL01');
    const records = await readRecords(reopened);
    t.equal(records.length, acked.length, `${acked.length} records on the tape after a reopen`);
    const wrong = records.findIndex((r, i) => !r.equals(record(acked[i]!, recordBytes)));
    t.equal(wrong, -1, 'every acknowledged record, byte-identical, in order');
  });
}
