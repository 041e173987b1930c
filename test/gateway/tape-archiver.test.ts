// The virtual tape shelf lifecycle in-process on a real Level database and real archive stores
// (a local directory, and the Glacier vault API over HTTP through the protocol-faithful endpoint):
// write records and filemarks, export to the I/E slot, ARCHIVED, retrieve, read back
// byte-identical, writes refused (write protected); CancelArchival; retention locks against a
// clock the test advances; IRRECOVERABLE on damaged archives; kill -9 of a child process running
// the archiver at a part boundary during ARCHIVING and during RETRIEVING, then a restart.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { silentLogger } from '../../iscsi/log.js';
import { Sense } from '../../iscsi/scsi/sense.js';
import { stkL700 } from '../../iscsi/scsi/personalities/stk-l700.js';
import { MIB, type ArchiveStore } from '../../src/cloud/archive-store.js';
import { GlacierArchiveStore } from '../../src/cloud/glacier-archive-store.js';
import { LocalArchiveStore } from '../../src/cloud/local-archive-store.js';
import { TapeArchiver, type TapeArchiverEvent } from '../../src/gateway/tape-archiver.js';
import { TapePools } from '../../src/gateway/tape-pools.js';
import { TapeShelf } from '../../src/gateway/tape-shelf.js';
import { expectGood, expectSense } from '../helpers/expect-sense.js';
import { GlacierEndpoint, glacierTestStoreConfig } from '../helpers/glacier-endpoint.js';
import { cdb, tapeDriveWith } from '../helpers/memory-tape.js';
import { closeVtlFixture, GIB, openVtlFixture, type VtlFixture } from '../helpers/vtl-fixture.js';

const SLOT = 1000;
const IE_SLOT = 3000;
const DAY_MS = 86_400_000;

/** The tape's objects: record n is 1000 + (n × 7919 mod 200 KiB) bytes of a pattern stamped with
 *  n; a filemark after every 10th record. About 4 MiB in all: four 1 MiB parts. */
function tapeObjects(seed: number, recordCount = 40): Array<Buffer | 'FM'> {
  const out: Array<Buffer | 'FM'> = [];
  for (let n = 0; n < recordCount; n++) {
    const lengthBytes = 1000 + ((n * 7919) % (200 * 1024));
    const data = Buffer.alloc(lengthBytes, (n + seed) & 0xff);
    data.writeUInt32BE(n + seed, 0);
    data.writeUInt32BE(lengthBytes, lengthBytes - 4);
    out.push(data);
    if (n % 10 === 9) out.push('FM');
  }
  return out;
}

const show = (objects: Array<Buffer | 'FM'>): string[] =>
  objects.map((o) => (o === 'FM' ? 'FM' : `${o.length}:${createHash('sha256').update(o).digest('hex').slice(0, 16)}`));

interface Shelf {
  f: VtlFixture;
  shelf: TapeShelf;
  pools: TapePools;
  archiver: TapeArchiver;
  clock: { nowMs: number };
}

async function openShelf(f: VtlFixture, store: ArchiveStore, onProgress?: (e: TapeArchiverEvent) => void): Promise<Shelf> {
  const clock = { nowMs: Date.parse('2026-11-26T12:00:00Z') };
  const shelf = await TapeShelf.open(f.db);
  const pools = await TapePools.open(f.db, { inUse: async () => false });
  const archiver = new TapeArchiver({
    library: f.library,
    catalog: f.catalog,
    media: f.media,
    shelf,
    pools,
    archiveStores: { GLACIER: store },
    log: silentLogger,
    now: () => clock.nowMs,
    pollIntervalMs: 10,
    ...(onProgress ? { onProgress } : {}),
  });
  return { f, shelf, pools, archiver, clock };
}

async function writeTape(f: VtlFixture, barcode: string, objects: Array<Buffer | 'FM'>): Promise<void> {
  const medium = await f.media.open(barcode);
  for (const o of objects) {
    if (o === 'FM') await medium.writeFilemarks(1);
    else await medium.writeRecord(o);
  }
  await f.media.close(medium);
}

async function readTape(f: VtlFixture, barcode: string): Promise<{ objects: Array<Buffer | 'FM'>; writeProtected: boolean; writeRefused: unknown }> {
  const medium = await f.media.open(barcode);
  try {
    const objects: Array<Buffer | 'FM'> = [];
    for (;;) {
      const r = await medium.read();
      if (r.kind === 'end-of-data') break;
      objects.push(r.kind === 'filemark' ? 'FM' : r.data);
    }
    const writeRefused = await medium.writeRecord(Buffer.alloc(512)).then(
      () => null,
      (err: unknown) => ({ tapeFault: (err as { tapeFault?: string }).tapeFault }),
    );
    return { objects, writeProtected: medium.writeProtected(), writeRefused };
  } finally {
    await f.media.close(medium);
  }
}

/** Runs worker rounds until the tape reaches `status` (a retrieval job may take a few polls). */
async function runUntil(s: Shelf, barcode: string, status: string): Promise<void> {
  for (let round = 0; round < 500; round++) {
    if (s.f.catalog.get(barcode)?.status === status) return;
    const pending = await s.archiver.runOnce();
    if (pending) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`tape ${barcode} is ${s.f.catalog.get(barcode)?.status}, never ${status}`);
}

async function localStore(f: VtlFixture): Promise<LocalArchiveStore> {
  return new LocalArchiveStore({ directory: join(f.dir, 'archive'), partSizeBytes: MIB });
}

async function archiveRoundTrip(t: Test, store: ArchiveStore, f: VtlFixture): Promise<void> {
  const s = await openShelf(f, store);
  const objects = tapeObjects(1);
  await f.service.createTapeWithBarcode({ barcode: 'VTS00001', sizeBytes: 100 * GIB, poolId: 'GLACIER' });
  await writeTape(f, 'VTS00001', objects);

  await f.library.moveMedium(SLOT, IE_SLOT);
  t.equal(f.catalog.get('VTS00001')?.status, 'IN TRANSIT TO VTS', 'export: IN TRANSIT TO VTS');
  await runUntil(s, 'VTS00001', 'ARCHIVED');
  const shelved = s.shelf.get('VTS00001')!;
  t.equal(shelved.job, null);
  t.equal(shelved.manifest?.recordCount, 40);
  t.equal(shelved.manifest?.filemarkCount, 4);
  t.equal(shelved.archive?.sha256TreeHash, shelved.manifest?.sha256TreeHash);
  t.ok((shelved.archive?.sizeBytes ?? 0) > 3 * MIB, 'several 1 MiB parts');
  t.equal(await f.media.header('VTS00001'), undefined, 'the local data file is removed once archived');
  t.equal(f.library.elementOf('VTS00001'), undefined, 'the library slot is freed');
  t.equal(f.catalog.get('VTS00001')?.location, null);

  await s.archiver.retrieveTapeArchive('VTS00001', { tier: 'Expedited' });
  t.equal(f.catalog.get('VTS00001')?.status, 'RETRIEVING');
  await runUntil(s, 'VTS00001', 'RETRIEVED');
  t.same(f.library.elementOf('VTS00001')?.type, 'storage', 'retrieved into a storage slot');
  const back = await readTape(f, 'VTS00001');
  t.same(show(back.objects), show(objects), 'records and filemarks read back byte-identical');
  t.equal(back.writeProtected, true, 'RETRIEVED is write protected');
  t.same(back.writeRefused, { tapeFault: 'write-protected' }, 'a write is refused: DATA PROTECT / WRITE PROTECTED');
  // Through the SSC drive: READ(6) gives the first record, WRITE(6) is refused with WRITE PROTECTED.
  const medium = await f.media.open('VTS00001');
  const { lu, run } = await tapeDriveWith(medium);
  const first = objects[0] as Buffer;
  const read = await run(cdb.read6(first.length));
  expectGood(t, read);
  t.equal(read.dataIn?.toString('hex'), first.toString('hex'), 'READ(6) of the retrieved first record');
  expectGood(t, await run(cdb.space6(3, 0))); // SSC-4 7.13 SPACE(6) code 3: end-of-data
  expectSense(t, await run(cdb.write6(512), Buffer.alloc(512)), Sense.WRITE_PROTECTED);
  expectGood(t, await run(cdb.loadUnload(0))); // SSC-4 7.3 LOAD UNLOAD: unload
  await lu.removeMedium();
  await f.media.close(medium);

  // Ejecting a RETRIEVED tape returns it to the shelf; its local copy goes.
  const { address } = f.library.elementOf('VTS00001')!;
  await f.library.moveMedium(address, IE_SLOT);
  t.equal(f.catalog.get('VTS00001')?.status, 'ARCHIVED');
  await s.archiver.runOnce();
  t.equal(await f.media.header('VTS00001'), undefined, 'local copy removed after the eject');

  await s.archiver.deleteTapeArchive('VTS00001');
  t.equal(f.catalog.get('VTS00001')?.status, 'DELETED');
  await t.rejects(store.requestRetrieval(shelved.archive!.archiveId, { tier: 'Expedited' }), { code: 'CLOUD_NOT_FOUND' }, 'the archive is gone');
}

t.test('TapeArchiver.RoundTrip.Local', async (t) => {
  const f = await openVtlFixture(stkL700);
  const store = await localStore(f);
  t.teardown(async () => {
    await store.close();
    await closeVtlFixture(f);
  });
  await archiveRoundTrip(t, store, f);
});

t.test('TapeArchiver.RoundTrip.Glacier', async (t) => {
  const endpoint = await GlacierEndpoint.start({ jobDelayMs: { Expedited: 50 } });
  const f = await openVtlFixture(stkL700);
  const store = new GlacierArchiveStore(glacierTestStoreConfig(endpoint.url, { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 }));
  t.teardown(async () => {
    await store.close();
    await endpoint.close();
    await closeVtlFixture(f);
  });
  await archiveRoundTrip(t, store, f);
});

t.test('TapeArchiver.CancelArchival', async (t) => {
  const f = await openVtlFixture(stkL700);
  const store = await localStore(f);
  t.teardown(async () => {
    await store.close();
    await closeVtlFixture(f);
  });
  const s = await openShelf(f, store);
  await f.service.createTapeWithBarcode({ barcode: 'CANCEL001', sizeBytes: 100 * GIB });
  await writeTape(f, 'CANCEL001', tapeObjects(2, 5));
  await f.library.moveMedium(SLOT, IE_SLOT);
  await s.archiver.cancelArchival('CANCEL001');
  t.equal(f.catalog.get('CANCEL001')?.status, 'AVAILABLE');
  t.same(f.library.elementOf('CANCEL001'), { address: SLOT, type: 'storage' });
  await s.archiver.runOnce();
  t.equal(f.catalog.get('CANCEL001')?.status, 'AVAILABLE', 'the worker leaves it alone');
  t.same(show((await readTape(f, 'CANCEL001')).objects), show(tapeObjects(2, 5)));
  await t.rejects(s.archiver.cancelArchival('CANCEL001'), { code: 'GW_TAPE_INVALID_STATE' }, 'only IN TRANSIT TO VTS');

  await f.library.moveMedium(SLOT, IE_SLOT);
  await runUntil(s, 'CANCEL001', 'ARCHIVED');
  await t.rejects(s.archiver.cancelArchival('CANCEL001'), { code: 'GW_TAPE_INVALID_STATE' }, 'not once ARCHIVED');
});

t.test('TapeArchiver.CancelRetrieval', async (t) => {
  const f = await openVtlFixture(stkL700);
  const store = new LocalArchiveStore({ directory: join(f.dir, 'archive'), partSizeBytes: MIB, retrievalDelayMs: { Bulk: 3_600_000 } });
  t.teardown(async () => {
    await store.close();
    await closeVtlFixture(f);
  });
  const s = await openShelf(f, store);
  await f.service.createTapeWithBarcode({ barcode: 'RCANCEL01', sizeBytes: 100 * GIB });
  await writeTape(f, 'RCANCEL01', tapeObjects(8, 5));
  await f.library.moveMedium(SLOT, IE_SLOT);
  await runUntil(s, 'RCANCEL01', 'ARCHIVED');
  await t.rejects(s.archiver.cancelRetrieval('RCANCEL01'), { code: 'GW_TAPE_INVALID_STATE' }, 'only RETRIEVING');
  await s.archiver.retrieveTapeArchive('RCANCEL01', { tier: 'Bulk' });
  t.equal(await s.archiver.runOnce(), true, 'the Bulk job is still in progress');
  t.equal(f.catalog.get('RCANCEL01')?.status, 'RETRIEVING');
  await s.archiver.cancelRetrieval('RCANCEL01');
  t.equal(f.catalog.get('RCANCEL01')?.status, 'ARCHIVED', 'back on the shelf');
  t.equal(s.shelf.get('RCANCEL01')?.job, null);
  t.equal(await s.archiver.runOnce(), false, 'nothing left to do');
  t.equal(f.library.elementOf('RCANCEL01'), undefined);
});

t.test('TapeArchiver.RetentionLock', async (t) => {
  const f = await openVtlFixture(stkL700);
  const store = await localStore(f);
  t.teardown(async () => {
    await store.close();
    await closeVtlFixture(f);
  });
  const s = await openShelf(f, store);
  const compliance = await s.pools.create({ poolName: 'legal-hold', storageClass: 'GLACIER', retentionLockType: 'COMPLIANCE', retentionLockTimeInDays: 30 });
  const governance = await s.pools.create({ poolName: 'finance', storageClass: 'DEEP_ARCHIVE', retentionLockType: 'GOVERNANCE', retentionLockTimeInDays: 10 });
  await f.service.createTapeWithBarcode({ barcode: 'LOCKC0001', sizeBytes: 100 * GIB, poolId: compliance.poolId, worm: true });
  await f.service.createTapeWithBarcode({ barcode: 'LOCKG0001', sizeBytes: 100 * GIB, poolId: governance.poolId });
  await writeTape(f, 'LOCKC0001', tapeObjects(3, 3));
  await writeTape(f, 'LOCKG0001', tapeObjects(4, 3));
  await f.library.moveMedium(SLOT, IE_SLOT);
  await f.library.moveMedium(SLOT + 1, IE_SLOT);
  await runUntil(s, 'LOCKC0001', 'ARCHIVED');
  await runUntil(s, 'LOCKG0001', 'ARCHIVED');
  t.equal(s.shelf.get('LOCKC0001')?.retentionStartDate, '2026-11-26T12:00:00.000Z', 'the lock starts at archive');
  t.equal(s.shelf.get('LOCKG0001')?.storageClass, 'DEEP_ARCHIVE');

  const locked = { code: 'GW_TAPE_RETENTION_LOCKED' };
  await t.rejects(s.archiver.deleteTapeArchive('LOCKC0001'), { ...locked, message: /COMPLIANCE retention lock until 2026-12-26T12:00:00.000Z/ });
  await t.rejects(s.archiver.deleteTapeArchive('LOCKC0001', { bypassGovernanceRetention: true }), locked, 'no bypass for COMPLIANCE');
  await t.rejects(s.archiver.assignTapePool('LOCKC0001', 'GLACIER'), locked, 'moving is refused too');
  await t.rejects(s.archiver.deleteTapeArchive('LOCKG0001'), { ...locked, message: /GOVERNANCE.*BypassGovernanceRetention/ });
  await t.rejects(s.archiver.assignTapePool('LOCKG0001', 'GLACIER', { bypassGovernanceRetention: true }), { code: 'GW_TAPE_POOL_MOVE_REFUSED' }, 'DEEP_ARCHIVE -> GLACIER');

  s.clock.nowMs += 29 * DAY_MS;
  await t.rejects(s.archiver.deleteTapeArchive('LOCKC0001'), locked, 'day 29: still locked');
  await s.archiver.deleteTapeArchive('LOCKG0001', { bypassGovernanceRetention: true });
  t.equal(f.catalog.get('LOCKG0001')?.status, 'DELETED', 'governance bypass deletes');
  s.clock.nowMs += DAY_MS;
  await s.archiver.deleteTapeArchive('LOCKC0001');
  t.equal(f.catalog.get('LOCKC0001')?.status, 'DELETED', 'after expiry deletion works');
});

t.test('TapeArchiver.Worm.ImmutableOnceArchived', async (t) => {
  const f = await openVtlFixture(stkL700);
  const store = await localStore(f);
  t.teardown(async () => {
    await store.close();
    await closeVtlFixture(f);
  });
  const s = await openShelf(f, store);
  const objects = tapeObjects(9, 12);
  await f.service.createTapeWithBarcode({ barcode: 'WORM00001', sizeBytes: 100 * GIB, worm: true });
  await writeTape(f, 'WORM00001', objects);
  await f.library.moveMedium(SLOT, IE_SLOT);
  await runUntil(s, 'WORM00001', 'ARCHIVED');
  const archived = s.shelf.get('WORM00001')!;
  t.equal(archived.worm, true);
  await s.archiver.retrieveTapeArchive('WORM00001', { tier: 'Expedited' });
  await runUntil(s, 'WORM00001', 'RETRIEVED');
  const back = await readTape(f, 'WORM00001');
  t.same(show(back.objects), show(objects), 'WORM tape read back byte-identical');
  t.same(back.writeRefused, { tapeFault: 'write-protected' }, 'not even an append');
  await f.library.moveMedium(f.library.elementOf('WORM00001')!.address, IE_SLOT);
  await s.archiver.runOnce();
  t.equal(f.catalog.get('WORM00001')?.status, 'ARCHIVED');
  t.same(s.shelf.get('WORM00001')?.archive, archived.archive, 'the same archive: never uploaded again');
  t.same(await readdir(join(f.dir, 'archive', 'archives')), [archived.archive!.archiveId]);
});

t.test('TapeArchiver.AssignTapePool.LockStartsOnEntry', async (t) => {
  const f = await openVtlFixture(stkL700);
  const store = await localStore(f);
  t.teardown(async () => {
    await store.close();
    await closeVtlFixture(f);
  });
  const s = await openShelf(f, store);
  const pool = await s.pools.create({ poolName: 'hold', storageClass: 'GLACIER', retentionLockType: 'GOVERNANCE', retentionLockTimeInDays: 5 });
  await f.service.createTapeWithBarcode({ barcode: 'MOVE00001', sizeBytes: 100 * GIB });
  await writeTape(f, 'MOVE00001', tapeObjects(5, 2));
  await f.library.moveMedium(SLOT, IE_SLOT);
  await runUntil(s, 'MOVE00001', 'ARCHIVED');
  s.clock.nowMs += DAY_MS;
  await s.archiver.assignTapePool('MOVE00001', pool.poolId);
  t.equal(s.shelf.get('MOVE00001')?.retentionStartDate, '2026-11-27T12:00:00.000Z');
  t.equal(f.catalog.get('MOVE00001')?.poolId, pool.poolId);
  s.clock.nowMs += 4 * DAY_MS;
  await t.rejects(s.archiver.deleteTapeArchive('MOVE00001'), { code: 'GW_TAPE_RETENTION_LOCKED' });
  s.clock.nowMs += DAY_MS;
  await s.archiver.deleteTapeArchive('MOVE00001');
  t.equal(f.catalog.get('MOVE00001')?.status, 'DELETED');
});

t.test('TapeArchiver.Irrecoverable', async (t) => {
  const f = await openVtlFixture(stkL700);
  const store = await localStore(f);
  t.teardown(async () => {
    await store.close();
    await closeVtlFixture(f);
  });
  const s = await openShelf(f, store);
  await f.service.createTapeWithBarcode({ barcode: 'DAMAGED01', sizeBytes: 100 * GIB });
  await writeTape(f, 'DAMAGED01', tapeObjects(6, 20));
  await f.library.moveMedium(SLOT, IE_SLOT);
  await runUntil(s, 'DAMAGED01', 'ARCHIVED');
  const archiveId = s.shelf.get('DAMAGED01')!.archive!.archiveId;
  const data = await open(join(f.dir, 'archive', 'archives', archiveId, 'data'), 'r+');
  await data.write(Buffer.from('!'), 0, 1, MIB + 123);
  await data.close();
  await s.archiver.retrieveTapeArchive('DAMAGED01', { tier: 'Expedited' });
  await runUntil(s, 'DAMAGED01', 'IRRECOVERABLE');
  t.equal(await f.media.header('DAMAGED01'), undefined, 'nothing unverified is left in the library');
  t.equal(f.library.elementOf('DAMAGED01'), undefined);
});

// ---- kill -9 at a part boundary ----------------------------------------------------------------------

const KILL_AT_PART = 1;

async function runChild(dir: string, phase: 'archive' | 'retrieve'): Promise<{ signal: NodeJS.Signals | null; stdout: string }> {
  const typescriptLoader = process.execArgv.filter((arg) => arg.includes('@tapjs/typescript'));
  const child = spawn(process.execPath, [...typescriptLoader, fileURLToPath(import.meta.url)], {
    env: { ...process.env, TAPE_ARCHIVER_CHILD: dir, TAPE_ARCHIVER_PHASE: phase },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
  return { signal, stdout };
}

if (process.env.TAPE_ARCHIVER_CHILD !== undefined) {
  // The child: open the gateway's tape side on the directory, run the archiver, and SIGKILL itself
  // right after part KILL_AT_PART of the phase is durable.
  const dir = process.env.TAPE_ARCHIVER_CHILD;
  const phase = process.env.TAPE_ARCHIVER_PHASE;
  const f = await openVtlFixture(stkL700, dir);
  const store = await localStore(f);
  const s = await openShelf(f, store, (e) => {
    process.stdout.write(`part ${e.phase} ${e.partIndex}\n`);
    if (e.phase === phase && e.partIndex === KILL_AT_PART) process.kill(process.pid, 'SIGKILL');
  });
  if (phase === 'retrieve') await s.archiver.retrieveTapeArchive('CRASH0001', { tier: 'Expedited' });
  await runUntil(s, 'CRASH0001', phase === 'archive' ? 'ARCHIVED' : 'RETRIEVED');
  process.stdout.write('finished without the kill\n');
} else {
  t.test('TapeArchiver.Kill9.ArchivingAndRetrieving', async (t) => {
    const objects = tapeObjects(7);
    let f = await openVtlFixture(stkL700);
    const dir = f.dir;
    t.teardown(() => closeVtlFixture(f));
    await f.service.createTapeWithBarcode({ barcode: 'CRASH0001', sizeBytes: 100 * GIB });
    await writeTape(f, 'CRASH0001', objects);
    await f.library.moveMedium(SLOT, IE_SLOT);
    await closeVtlFixture(f, true);

    const archiving = await runChild(dir, 'archive');
    t.equal(archiving.signal, 'SIGKILL', 'killed during ARCHIVING');
    t.match(archiving.stdout, /part archive 1\n$/);
    f = await openVtlFixture(stkL700, dir);
    let store = await localStore(f);
    let s = await openShelf(f, store);
    t.equal(f.catalog.get('CRASH0001')?.status, 'ARCHIVING', 'still ARCHIVING after the restart');
    t.ok((s.archiver.progress('CRASH0001') ?? 0) > 0, 'its progress was persisted');
    const sentBefore = s.shelf.get('CRASH0001')!.job;
    t.same(sentBefore?.kind === 'archive' ? sentBefore.upload?.parts.map((p) => p.index) : null, [0, 1], 'parts 0 and 1 persisted');
    await runUntil(s, 'CRASH0001', 'ARCHIVED');
    t.same(await readdir(join(dir, 'archive', 'archives')), [s.shelf.get('CRASH0001')!.archive!.archiveId], 'exactly one archive: the upload was resumed, not repeated');
    t.equal(await f.media.header('CRASH0001'), undefined);
    await store.close();
    await closeVtlFixture(f, true);

    const retrieving = await runChild(dir, 'retrieve');
    t.equal(retrieving.signal, 'SIGKILL', 'killed during RETRIEVING');
    t.match(retrieving.stdout, /part retrieve 1\n$/);
    f = await openVtlFixture(stkL700, dir);
    store = await localStore(f);
    s = await openShelf(f, store);
    t.equal(f.catalog.get('CRASH0001')?.status, 'RETRIEVING', 'still RETRIEVING after the restart');
    await runUntil(s, 'CRASH0001', 'RETRIEVED');
    const back = await readTape(f, 'CRASH0001');
    t.same(show(back.objects), show(objects), 'verified and byte-identical');
    t.equal(back.writeProtected, true);
    await store.close();
  });
}
