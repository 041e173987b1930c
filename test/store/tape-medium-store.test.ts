// TapeMediumStore / StoredTapeMedium against a real Level database and data files in a temp dir.
// Cases are named after SSC-4 commands. The crash cases re-run this file as a child process
// (TAPE_CRASH_CHILD = data dir, TAPE_CRASH_MODE = which child) that writes objects and prints
// `ack <n>` after each acknowledged one, and SIGKILL it. The children write in buffered mode
// (SSC-4 BUFFERED MODE 1h, the drive's default: a write resolves once its frame is in the data
// file, no fdatasync), so these cases show that a crash of the process loses nothing acknowledged.

import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { tapeFaultOf, type TapeReadResult } from '../../iscsi/device.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { TapeKeys } from '../../src/store/tape-keys.js';
import { TapeMediumStore } from '../../src/store/tape-medium-store.js';
import type { StoredTapeMedium } from '../../src/store/tape-medium.js';

const MiB = 1024 * 1024;

/** Deterministic record content: `length` bytes derived from `seed`. */
function record(seed: number, length = 64): Buffer {
  const buf = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) buf[i] = (seed * 31 + i * 7) & 0xff;
  return buf;
}

/** Compact readable form of a read result: `R:<hex>` / `FM` / `EOD`. */
function show(r: TapeReadResult): string {
  if (r.kind === 'record') return `R:${r.data.toString('hex')}`;
  return r.kind === 'filemark' ? 'FM' : 'EOD';
}

async function readAll(tape: StoredTapeMedium): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const r = await tape.read();
    out.push(show(r));
    if (r.kind === 'end-of-data') return out;
  }
}

async function expectFault(t: Test, p: Promise<unknown>, fault: string): Promise<void> {
  try {
    await p;
    t.fail(`expected ${fault}`);
  } catch (err) {
    t.equal(tapeFaultOf(err), fault, String(err));
  }
}

interface Fixture {
  dataDir: string;
  db: Database;
  store: TapeMediumStore;
}

async function fixture(t: Test): Promise<Fixture> {
  const dataDir = await mkdtemp(join(tmpdir(), 'shelfgate-tape-'));
  const f: Fixture = { dataDir, db: await openDatabase(dataDir), store: null as unknown as TapeMediumStore };
  f.store = new TapeMediumStore(f.db);
  t.teardown(async () => {
    await f.store.closeAll();
    await f.db.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  return f;
}

/** Closes the database and opens it again (what a restart does). */
async function reopen(f: Fixture): Promise<void> {
  await f.store.closeAll();
  await f.db.close();
  f.db = await openDatabase(f.dataDir);
  f.store = new TapeMediumStore(f.db);
}

/** Layout used by the positioning cases: objects 0..9, filemarks at 2, 5, 6.
 *    id:   0   1   2   3   4   5   6   7   8   9   10
 *          R0  R1  FM  R3  R4  FM  FM  R7  R8  R9  EOD     (file numbers 0 0 0 1 1 1 2 3 3 3 3) */
async function layoutTape(f: Fixture): Promise<StoredTapeMedium> {
  const tape = await f.store.create({ barcode: 'TST001', capacityBytes: 64 * MiB });
  for (const id of [0, 1]) await tape.writeRecord(record(id, 4));
  await tape.writeFilemarks(1);
  for (const id of [3, 4]) await tape.writeRecord(record(id, 4));
  await tape.writeFilemarks(2);
  for (const id of [7, 8, 9]) await tape.writeRecord(record(id, 4));
  await tape.rewind();
  return tape;
}

function pos(tape: StoredTapeMedium): string {
  const p = tape.position();
  return `id=${p.logicalObjectId} file=${p.fileNumber}${p.bop ? ' bop' : ''}${p.eod ? ' eod' : ''}`;
}

/** The object the resume and overwrite children write at logical object id `n` (`seed` tells the
 *  overwriting sequence from the original). */
function crashObject(n: number, seed = 0): string {
  return n % 10 === 9 ? 'FM' : show({ kind: 'record', data: record(n + seed, 1000 + ((n * 7919) % 65536)) });
}

const OVERWRITE_SEED = 100_000;
const ORIGINAL_OBJECTS = 200;

/** Runs this file as a crash child and SIGKILLs it once `killWhen(line)` says so; returns its
 *  stdout lines (all of them: those read after the kill was sent were printed before it). */
async function runChildUntilKilled(
  dataDir: string,
  env: Record<string, string>,
  killWhen: (line: string) => boolean,
): Promise<string[]> {
  const typescriptLoader = process.execArgv.filter((arg) => arg.includes('@tapjs/typescript'));
  const child = spawn(process.execPath, [...typescriptLoader, fileURLToPath(import.meta.url)], {
    env: { ...process.env, ...env, TAPE_CRASH_CHILD: dataDir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const reader = createInterface({ input: child.stdout });
  const allRead = new Promise<void>((resolve) => reader.once('close', resolve));
  reader.on('line', (line) => {
    lines.push(line);
    if (killWhen(line)) child.kill('SIGKILL');
  });
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
  await allRead;
  if (signal !== 'SIGKILL') throw new Error(`child exited before the kill: ${lines.slice(-3).join(' | ')}`);
  return lines;
}

function lastAck(lines: string[]): number {
  let last = -1;
  for (const line of lines) {
    const m = /^ack (\d+)$/.exec(line);
    if (m !== null) last = Math.max(last, Number(m[1]));
  }
  return last;
}

if (process.env.TAPE_CRASH_CHILD !== undefined) {
  const mode = process.env.TAPE_CRASH_MODE;
  if (mode === 'resume') await resumeChild(process.env.TAPE_CRASH_CHILD);
  else if (mode === 'overwrite') await overwriteChild(process.env.TAPE_CRASH_CHILD, Number(process.env.TAPE_CRASH_AT));
  else await crashChild(process.env.TAPE_CRASH_CHILD);
} else {
  t.test('Write.AppendRead: records and filemarks read back in order, then EOD', async (t) => {
    const f = await fixture(t);
    const tape = await f.store.create({ barcode: 'TST001', capacityBytes: 64 * MiB });
    t.equal(pos(tape), 'id=0 file=0 bop eod');
    await tape.writeRecord(Buffer.from('0102', 'hex'));
    await tape.writeRecord(Buffer.from('aabbccdd', 'hex'));
    await tape.writeFilemarks(1);
    await tape.writeRecord(Buffer.from('ff', 'hex'));
    await tape.writeFilemarks(2);
    t.equal(pos(tape), 'id=6 file=3 eod');
    t.equal(tape.usedBytes(), 7);
    await tape.rewind();
    t.equal(pos(tape), 'id=0 file=0 bop');
    t.same(await readAll(tape), ['R:0102', 'R:aabbccdd', 'FM', 'R:ff', 'FM', 'FM', 'EOD']);
    t.equal(pos(tape), 'id=6 file=3 eod', 'EOD does not move the position');
  });

  t.test('Write.Reopen: everything acknowledged survives closing the database', async (t) => {
    const f = await fixture(t);
    const tape = await f.store.create({ barcode: 'TST001', capacityBytes: 64 * MiB });
    const big = record(7, 1024 * 1024 + 3);
    await tape.writeRecord(record(1, 10));
    await tape.writeFilemarks(1);
    await tape.writeRecord(big);
    await f.store.close(tape);
    await reopen(f);
    const again = await f.store.open('TST001');
    t.equal(pos(again), 'id=0 file=0 bop');
    t.same(await readAll(again), [show({ kind: 'record', data: record(1, 10) }), 'FM', show({ kind: 'record', data: big }), 'EOD']);
    t.equal(again.usedBytes(), 10 + big.length);
  });

  t.test('Write.Pipelined: writes issued without waiting share synced batches and keep their order', async (t) => {
    const f = await fixture(t);
    const tape = await f.store.create({ barcode: 'TST001', capacityBytes: 64 * MiB });
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 50; i++) writes.push(tape.writeRecord(record(i, 100 + i)));
    writes.push(tape.writeFilemarks(1));
    await Promise.all(writes);
    t.ok(tape.dataSyncCount < 50, `data-file syncs: ${tape.dataSyncCount}`);
    await tape.rewind();
    const expected = Array.from({ length: 50 }, (_, i) => show({ kind: 'record', data: record(i, 100 + i) }));
    t.same(await readAll(tape), [...expected, 'FM', 'EOD']);
  });

  t.test('Write.IndexLost: acknowledged writes outlive a failed index; a reload re-indexes them from the data file', async (t) => {
    const f = await fixture(t);
    const tape = await f.store.create({ barcode: 'TST001', capacityBytes: 64 * MiB });
    await tape.writeRecord(Buffer.from('aa', 'hex'));
    await tape.writeFilemarks(1);
    await tape.flush();
    await f.db.close(); // Level refuses every further batch; the data file still works
    await tape.writeRecord(Buffer.from('bb', 'hex'));
    await t.rejects(tape.rewind(), { code: 'TAPE_IO' }, 'the medium refuses calls once its index failed');
    await reopen(f);
    const again = await f.store.open('TST001');
    t.same(await readAll(again), ['R:aa', 'FM', 'R:bb', 'EOD']);
    t.equal(pos(again), 'id=3 file=1 eod');
    t.equal(again.usedBytes(), 2);
  });

  t.test('Space.BlocksForward', async (t) => {
    const f = await fixture(t);
    const tape = await layoutTape(f);
    t.same(await tape.spaceRecords(1), { spaced: 1, stoppedAt: null });
    t.equal(pos(tape), 'id=1 file=0');
    // Two records requested, one crossed, then the filemark at 2: position after it, residual 1.
    t.same(await tape.spaceRecords(2), { spaced: 1, stoppedAt: 'filemark' });
    t.equal(pos(tape), 'id=3 file=1');
    t.same(await tape.spaceRecords(2), { spaced: 2, stoppedAt: null });
    t.equal(pos(tape), 'id=5 file=1');
    t.same(await tape.spaceRecords(1), { spaced: 0, stoppedAt: 'filemark' });
    t.equal(pos(tape), 'id=6 file=2');
    t.same(await tape.spaceRecords(5), { spaced: 0, stoppedAt: 'filemark' });
    t.equal(pos(tape), 'id=7 file=3');
    t.same(await tape.spaceRecords(5), { spaced: 3, stoppedAt: 'end-of-data' });
    t.equal(pos(tape), 'id=10 file=3 eod');
    t.same(await tape.spaceRecords(0), { spaced: 0, stoppedAt: null });
  });

  t.test('Space.BlocksReverse', async (t) => {
    const f = await fixture(t);
    const tape = await layoutTape(f);
    await tape.spaceToEndOfData();
    t.same(await tape.spaceRecords(-2), { spaced: 2, stoppedAt: null });
    t.equal(pos(tape), 'id=8 file=3');
    // One record (7) crossed, then the filemark at 6: position on its BOP side (before it).
    t.same(await tape.spaceRecords(-4), { spaced: 1, stoppedAt: 'filemark' });
    t.equal(pos(tape), 'id=6 file=2');
    t.equal(show(await tape.read()), 'FM', 'the next READ returns the filemark');
    await tape.locate(4);
    t.same(await tape.spaceRecords(-3), { spaced: 1, stoppedAt: 'filemark' });
    t.equal(pos(tape), 'id=2 file=0');
    t.same(await tape.spaceRecords(-3), { spaced: 2, stoppedAt: 'beginning-of-partition' });
    t.equal(pos(tape), 'id=0 file=0 bop');
  });

  t.test('Space.FilemarksForward', async (t) => {
    const f = await fixture(t);
    const tape = await layoutTape(f);
    t.same(await tape.spaceFilemarks(1), { spaced: 1, stoppedAt: null });
    t.equal(pos(tape), 'id=3 file=1');
    t.same(await tape.spaceFilemarks(2), { spaced: 2, stoppedAt: null });
    t.equal(pos(tape), 'id=7 file=3');
    await tape.rewind();
    t.same(await tape.spaceFilemarks(5), { spaced: 3, stoppedAt: 'end-of-data' });
    t.equal(pos(tape), 'id=10 file=3 eod');
  });

  t.test('Space.FilemarksReverse', async (t) => {
    const f = await fixture(t);
    const tape = await layoutTape(f);
    await tape.spaceToEndOfData();
    // Reverse filemark spacing ends on the BOP side of the last filemark crossed.
    t.same(await tape.spaceFilemarks(-1), { spaced: 1, stoppedAt: null });
    t.equal(pos(tape), 'id=6 file=2');
    t.same(await tape.spaceFilemarks(-1), { spaced: 1, stoppedAt: null });
    t.equal(pos(tape), 'id=5 file=1');
    t.same(await tape.spaceFilemarks(-3), { spaced: 1, stoppedAt: 'beginning-of-partition' });
    t.equal(pos(tape), 'id=0 file=0 bop');
  });

  t.test('Space.EndOfData', async (t) => {
    const f = await fixture(t);
    const tape = await layoutTape(f);
    await tape.spaceToEndOfData();
    t.equal(pos(tape), 'id=10 file=3 eod');
    t.equal(show(await tape.read()), 'EOD');
  });

  t.test('Locate.ObjectAndFile', async (t) => {
    const f = await fixture(t);
    const tape = await layoutTape(f);
    t.same(await tape.locate(8), { beyondEndOfData: false });
    t.equal(pos(tape), 'id=8 file=3');
    t.equal(show(await tape.read()), show({ kind: 'record', data: record(8, 4) }));
    t.same(await tape.locate(5), { beyondEndOfData: false });
    t.equal(pos(tape), 'id=5 file=1');
    t.equal(show(await tape.read()), 'FM');
    t.same(await tape.locate(10), { beyondEndOfData: false });
    t.equal(pos(tape), 'id=10 file=3 eod');
    t.same(await tape.locate(11), { beyondEndOfData: true });
    t.equal(pos(tape), 'id=10 file=3 eod');
    t.same(await tape.locate(0), { beyondEndOfData: false });
    t.equal(pos(tape), 'id=0 file=0 bop');
    t.same(await tape.locateFile(2), { beyondEndOfData: false });
    t.equal(pos(tape), 'id=6 file=2');
    t.same(await tape.locateFile(3), { beyondEndOfData: false });
    t.equal(pos(tape), 'id=7 file=3');
    t.same(await tape.locateFile(4), { beyondEndOfData: true });
    t.equal(pos(tape), 'id=10 file=3 eod');
  });

  t.test('Write.OverwriteTruncates: writing before EOD discards everything after, durably', async (t) => {
    const f = await fixture(t);
    const tape = await layoutTape(f);
    await tape.locate(4);
    await tape.writeRecord(Buffer.from('c0ffee', 'hex'));
    t.equal(pos(tape), 'id=5 file=1 eod');
    t.equal(tape.usedBytes(), 3 * 4 + 3);
    // The stale filemarks 5 and 6 (file numbers 1, 2) are gone: spacing filemarks meets EOD.
    await tape.locate(3);
    t.same(await tape.spaceFilemarks(1), { spaced: 0, stoppedAt: 'end-of-data' });
    await tape.writeFilemarks(1);
    await tape.writeRecord(Buffer.from('77', 'hex'));
    await f.store.close(tape);
    await reopen(f);
    const again = await f.store.open('TST001');
    const r = (id: number): string => show({ kind: 'record', data: record(id, 4) });
    t.same(await readAll(again), [r(0), r(1), 'FM', r(3), 'R:c0ffee', 'FM', 'R:77', 'EOD']);
    t.same(await again.spaceFilemarks(-1), { spaced: 1, stoppedAt: null });
    t.equal(pos(again), 'id=5 file=1');
  });

  t.test('Read.AfterOverwrite: an object read ahead before an overwrite is not returned', async (t) => {
    const f = await fixture(t);
    const tape = await layoutTape(f);
    t.equal(show(await tape.read()), show({ kind: 'record', data: record(0, 4) }));
    await tape.writeRecord(Buffer.from('beef', 'hex'));
    await tape.locate(1);
    t.equal(show(await tape.read()), 'R:beef');
    t.equal(show(await tape.read()), 'EOD');
  });

  t.test('Write.OverwriteFromBop: a rewritten shorter tape reads back only the new data', async (t) => {
    const f = await fixture(t);
    const tape = await layoutTape(f);
    await tape.writeRecord(Buffer.from('01', 'hex'));
    t.equal(pos(tape), 'id=1 file=0 eod');
    await tape.rewind();
    t.same(await readAll(tape), ['R:01', 'EOD']);
    t.equal(tape.usedBytes(), 1);
  });

  t.test('Unload.ReclaimsBeyondEod: stale entries and data-file bytes are dropped on close', async (t) => {
    const f = await fixture(t);
    const tape = await layoutTape(f);
    await tape.locate(4);
    await tape.writeRecord(Buffer.from('c0ffee', 'hex'));
    await f.store.close(tape);
    const keys = await f.db.level.keys(new TapeKeys('TST001').range()).all();
    t.equal(keys.length, 1 + 5 + 1, 'header, objects 0-4, filemark 0');
    // Five frames (32-byte headers): records of 4, 4, 4 and 3 bytes and a filemark.
    t.equal((await stat(join(f.dataDir, 'tapes', 'TST001.tape'))).size, 5 * 32 + 3 * 4 + 3);
    const again = await f.store.open('TST001');
    t.equal((await readAll(again)).length, 6);
  });

  t.test('Erase.FromPosition', async (t) => {
    const f = await fixture(t);
    const tape = await layoutTape(f);
    await tape.locate(3);
    await tape.erase();
    t.equal(pos(tape), 'id=3 file=1 eod');
    await f.store.close(tape);
    await reopen(f);
    const again = await f.store.open('TST001');
    t.same(await readAll(again), [show({ kind: 'record', data: record(0, 4) }), show({ kind: 'record', data: record(1, 4) }), 'FM', 'EOD']);
  });

  t.test('Worm.AppendOnly: append at EOD works, overwrite before EOD is refused', async (t) => {
    const f = await fixture(t);
    const tape = await f.store.create({ barcode: 'WORM01', capacityBytes: 64 * MiB, worm: true });
    await tape.writeRecord(Buffer.from('11', 'hex'));
    await tape.writeFilemarks(1);
    await tape.rewind();
    await expectFault(t, tape.writeRecord(Buffer.from('22', 'hex')), 'worm-overwrite');
    await expectFault(t, tape.writeFilemarks(1), 'worm-overwrite');
    await expectFault(t, tape.erase(), 'worm-overwrite');
    t.equal(pos(tape), 'id=0 file=0 bop', 'refused writes do not move');
    await tape.spaceToEndOfData();
    await tape.writeRecord(Buffer.from('33', 'hex'));
    await tape.rewind();
    t.same(await readAll(tape), ['R:11', 'FM', 'R:33', 'EOD']);
  });

  t.test('WriteProtect.RefusesWrites: persists across reopen, reads still work', async (t) => {
    const f = await fixture(t);
    const tape = await f.store.create({ barcode: 'TST001', capacityBytes: 64 * MiB });
    await tape.writeRecord(Buffer.from('aa', 'hex'));
    await tape.setWriteProtected(true);
    await expectFault(t, tape.writeRecord(Buffer.from('bb', 'hex')), 'write-protected');
    await expectFault(t, tape.writeFilemarks(1), 'write-protected');
    await f.store.close(tape);
    await reopen(f);
    const again = await f.store.open('TST001');
    t.equal(again.writeProtected(), true);
    await again.spaceToEndOfData();
    await expectFault(t, again.writeRecord(Buffer.from('bb', 'hex')), 'write-protected');
    await again.rewind();
    t.same(await readAll(again), ['R:aa', 'EOD']);
  });

  t.test('Capacity.EarlyWarningAndEndOfMedium', async (t) => {
    const f = await fixture(t);
    const tape = await f.store.create({ barcode: 'SMALL1', capacityBytes: 1000, earlyWarningBytes: 300 });
    t.same(await tape.writeRecord(record(1, 600)), { beyondEarlyWarning: false });
    t.equal(tape.position().beyondEarlyWarning, false);
    t.same(await tape.writeRecord(record(2, 100)), { beyondEarlyWarning: true }, '700 used: 300 left');
    t.same(await tape.writeFilemarks(1), { beyondEarlyWarning: true });
    t.equal(tape.position().beyondEarlyWarning, true);
    await expectFault(t, tape.writeRecord(record(3, 301)), 'end-of-medium');
    t.equal(pos(tape), 'id=3 file=1 eod', 'nothing written');
    t.same(await tape.writeRecord(record(3, 300)), { beyondEarlyWarning: true }, 'exactly full');
    t.equal(tape.usedBytes(), 1000);
    await expectFault(t, tape.writeRecord(record(4, 1)), 'end-of-medium');
    // Overwriting frees the space after the position.
    await tape.locate(1);
    t.same(await tape.writeRecord(record(5, 200)), { beyondEarlyWarning: true });
    t.equal(tape.usedBytes(), 800);
  });

  t.test('Store.CreateOpenDelete', async (t) => {
    const f = await fixture(t);
    const tape = await f.store.create({ barcode: 'TST001', capacityBytes: 10 * MiB });
    t.equal(tape.earlyWarningBytes, 10 * MiB, 'default early warning is capped at the capacity');
    await t.rejects(f.store.create({ barcode: 'TST001', capacityBytes: 10 * MiB }), { code: 'TAPE_EXISTS' });
    await t.rejects(f.store.open('TST001'), { code: 'TAPE_IN_USE' });
    await t.rejects(f.store.create({ barcode: 'bad/one', capacityBytes: 10 * MiB }), { code: 'TAPE_INVALID' });
    await tape.writeRecord(record(1, 10));
    await tape.writeFilemarks(1);
    await f.store.close(tape);
    await f.store.delete('TST001');
    t.equal(await f.store.header('TST001'), undefined);
    const range = new TapeKeys('TST001').range();
    t.same(await f.db.level.keys(range).all(), [], 'no keys left');
    await t.rejects(f.store.open('TST001'), { code: 'TAPE_NOT_FOUND' });
    const fresh = await f.store.create({ barcode: 'TST001', capacityBytes: 10 * MiB });
    t.same(await readAll(fresh), ['EOD']);
  });

  t.test('Crash.Sigkill: every acknowledged record and filemark survives kill -9', async (t) => {
    const f = await fixture(t);
    await f.db.close();
    const typescriptLoader = process.execArgv.filter((arg) => arg.includes('@tapjs/typescript'));
    const child = spawn(process.execPath, [...typescriptLoader, fileURLToPath(import.meta.url)], {
      env: { ...process.env, TAPE_CRASH_CHILD: f.dataDir },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let acked = -1;
    const KILL_AFTER = 300;
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout });
      lines.on('line', (line) => {
        const m = /^ack (\d+)$/.exec(line);
        if (m === null) return;
        acked = Number(m[1]);
        if (acked === KILL_AFTER) child.kill('SIGKILL');
      });
      child.on('exit', (code, signal) =>
        signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited with ${code} before the kill`)),
      );
    });
    t.ok(acked >= KILL_AFTER, `child acknowledged ${acked + 1} writes`);
    f.db = await openDatabase(f.dataDir);
    f.store = new TapeMediumStore(f.db);
    const tape = await f.store.open('CRASH1');
    // The child writes object n as a filemark when n % 10 === 9, else record(n, crashRecordLength(n)).
    for (let n = 0; ; n++) {
      const r = await tape.read();
      if (r.kind === 'end-of-data') {
        t.ok(n > acked, `read ${n} objects, ${acked + 1} acknowledged`);
        break;
      }
      const expected = n % 10 === 9 ? 'FM' : show({ kind: 'record', data: record(n, crashRecordLength(n)) });
      if (show(r) !== expected) {
        t.fail(`object ${n} differs`);
        break;
      }
    }
    await f.store.close(tape);
  });

  t.test('Crash.SigkillRepeated: 24 kills in buffered mode at varying points, each restart recovers and appends', async (t) => {
    // Each child loads the tape (recovering what the index missed), checks every object from BOP,
    // prints `eod <n>`, and appends from there until killed; so later children write over the
    // torn or unacknowledged frames their predecessors left beyond EOD.
    const f = await fixture(t);
    await f.db.close();
    let acked = -1;
    for (let i = 0; i < 24; i++) {
      const killAfterAcks = 1 + ((i * 17) % 50);
      let acksSeen = 0;
      const lines = await runChildUntilKilled(f.dataDir, { TAPE_CRASH_MODE: 'resume' }, (line) => line.startsWith('ack ') && ++acksSeen === killAfterAcks);
      const eodLine = lines.find((line) => line.startsWith('eod ') || line.startsWith('bad '));
      if (eodLine === undefined || !eodLine.startsWith('eod ') || Number(eodLine.slice(4)) <= acked) {
        t.fail(`run ${i}: loaded ${eodLine}, ${acked + 1} objects acknowledged before`);
        return;
      }
      const syncs = lines.filter((line) => line.startsWith('syncs '));
      if (syncs.length === 0 || syncs.some((line) => line !== 'syncs 0')) {
        t.fail(`run ${i}: acknowledgements after an fdatasync: ${syncs.join(', ')}`);
        return;
      }
      acked = Math.max(acked, lastAck(lines));
    }
    f.db = await openDatabase(f.dataDir);
    f.store = new TapeMediumStore(f.db);
    const tape = await f.store.open('CRASH2');
    const objects = await readAll(tape);
    const eod = objects.length - 1;
    t.ok(eod > acked, `${eod} objects on the tape, ${acked + 1} acknowledged`);
    const bad = objects.slice(0, eod).findIndex((o, n) => o !== crashObject(n));
    t.equal(bad, -1, 'every object is the one written at its position');
    t.pass('24 kill -9 cycles in buffered mode, 0 acknowledged objects lost');
  });

  t.test('Crash.SigkillDuringOverwrite: old objects after the overwrite point never come back', async (t) => {
    for (const [at, killAfterAcks] of [
      [57, 0],
      [57, 1],
      [57, 5],
      [0, 2],
      [150, 20],
      [150, 0],
    ] as const) {
      const f = await fixture(t);
      await f.db.close();
      let acksSeen = 0;
      const lines = await runChildUntilKilled(f.dataDir, { TAPE_CRASH_MODE: 'overwrite', TAPE_CRASH_AT: String(at) }, (line) =>
        killAfterAcks === 0 ? line === 'overwriting' : line.startsWith('ack ') && ++acksSeen === killAfterAcks,
      );
      const acked = lastAck(lines);
      f.db = await openDatabase(f.dataDir);
      f.store = new TapeMediumStore(f.db);
      const tape = await f.store.open('CRASH3');
      const objects = (await readAll(tape)).slice(0, -1);
      const name = `overwrite at ${at}, killed after ${killAfterAcks} acks`;
      t.same(objects.slice(0, at), Array.from({ length: at }, (_, n) => crashObject(n)), `${name}: objects before it`);
      const overwritten = objects.length > at && objects[at] === crashObject(at, OVERWRITE_SEED);
      if (overwritten || acked >= 0) {
        t.ok(objects.length > acked, `${name}: ${objects.length} objects, acknowledged up to ${acked}`);
        const bad = objects.slice(at).findIndex((o, i) => o !== crashObject(at + i, OVERWRITE_SEED));
        t.equal(bad, -1, `${name}: only overwriting objects from ${at} on`);
      } else {
        // Killed before the first overwriting record landed: EOD is where the overwrite began
        // (its barrier landed) or the original tape is intact.
        const tail = objects.slice(at);
        const original = Array.from({ length: ORIGINAL_OBJECTS - at }, (_, i) => crashObject(at + i));
        t.ok(tail.length === 0 || tail.join() === original.join(), `${name}: ${tail.length} original objects after it`);
      }
      await f.store.close(tape);
    }
  });
}

function crashRecordLength(n: number): number {
  return 1000 + ((n * 7919) % (256 * 1024));
}

/** Child side of Crash.Sigkill: writes objects with 8 in flight until killed. */
async function crashChild(dataDir: string): Promise<void> {
  const db = await openDatabase(dataDir);
  const store = new TapeMediumStore(db);
  const tape = await store.create({ barcode: 'CRASH1', capacityBytes: 1024 * MiB * 1024 });
  const inFlight = new Set<Promise<void>>();
  for (let n = 0; n < 1_000_000; n++) {
    const write = n % 10 === 9 ? tape.writeFilemarks(1) : tape.writeRecord(record(n, crashRecordLength(n)));
    const acked: Promise<void> = write.then(() => {
      inFlight.delete(acked);
      process.stdout.write(`ack ${n}\n`);
    });
    inFlight.add(acked);
    if (inFlight.size >= 8) await Promise.race(inFlight);
  }
}

/** Child side of Crash.SigkillRepeated: loads (or creates) CRASH2, checks it, appends until killed. */
async function resumeChild(dataDir: string): Promise<void> {
  const db = await openDatabase(dataDir);
  const store = new TapeMediumStore(db);
  const tape =
    (await store.header('CRASH2')) === undefined
      ? await store.create({ barcode: 'CRASH2', capacityBytes: 1024 * MiB * 1024 })
      : await store.open('CRASH2');
  let n = 0;
  for (;;) {
    const r = await tape.read();
    if (r.kind === 'end-of-data') break;
    if (show(r) !== crashObject(n)) {
      process.stdout.write(`bad ${n}\n`);
      process.exit(1);
    }
    n++;
  }
  process.stdout.write(`eod ${n}\n`);
  await writeCrashObjects(tape, n, 0, true);
}

/** Child side of Crash.SigkillDuringOverwrite: ORIGINAL_OBJECTS objects, then from `at` on an
 *  overwriting sequence until killed. */
async function overwriteChild(dataDir: string, at: number): Promise<void> {
  const db = await openDatabase(dataDir);
  const store = new TapeMediumStore(db);
  const tape = await store.create({ barcode: 'CRASH3', capacityBytes: 1024 * MiB * 1024 });
  for (let n = 0; n < ORIGINAL_OBJECTS; n++) {
    await (n % 10 === 9 ? tape.writeFilemarks(1) : tape.writeRecord(record(n, 1000 + ((n * 7919) % 65536))));
  }
  await tape.locate(at);
  process.stdout.write('overwriting\n');
  await writeCrashObjects(tape, at, OVERWRITE_SEED);
}

/** Writes crashObject(n, seed) from object `first` on with 8 in flight (buffered: no sync),
 *  printing `ack <n>`; with `reportSyncs`, prints `syncs <fdatasyncs so far>` before each ack
 *  (0: every acknowledgement was given without one). */
async function writeCrashObjects(tape: StoredTapeMedium, first: number, seed: number, reportSyncs = false): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  const buffered = { sync: false };
  for (let n = first; n < first + 1_000_000; n++) {
    const write =
      n % 10 === 9 ? tape.writeFilemarks(1, buffered) : tape.writeRecord(record(n + seed, 1000 + ((n * 7919) % 65536)), buffered);
    const acked: Promise<void> = write.then(() => {
      inFlight.delete(acked);
      if (reportSyncs) process.stdout.write(`syncs ${tape.dataSyncCount}\n`);
      process.stdout.write(`ack ${n}\n`);
    });
    inFlight.add(acked);
    if (inFlight.size >= 8) await Promise.race(inFlight);
  }
}
