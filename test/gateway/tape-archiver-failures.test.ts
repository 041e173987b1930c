// The archive worker against a Glacier endpoint that answers errors (issue 10, item 6): a real
// HTTP proxy (test/helpers/fault-proxy.ts) in front of the protocol-faithful Glacier endpoint
// injects 5xx, throttling and 403 answers. Transient errors are retried with capped backoff on
// the worker's clock and logged once when failing and once when recovered; a permanent one ends
// the archive with the tape AVAILABLE again and the reason recorded; CancelArchival stops an
// upload in ARCHIVING and aborts it in the store. Rounds are driven by runOnce() and the clock is
// the test's, so nothing here depends on timing.

import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { LogFields, Logger } from '../../iscsi/log.js';
import { stkL700 } from '../../iscsi/scsi/personalities/stk-l700.js';
import { GlacierArchiveStore } from '../../src/cloud/glacier-archive-store.js';
import { TapeArchiver, type TapeArchiverEvent } from '../../src/gateway/tape-archiver.js';
import { TapePools } from '../../src/gateway/tape-pools.js';
import { TapeShelf } from '../../src/gateway/tape-shelf.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { GlacierEndpoint, glacierTestStoreConfig } from '../helpers/glacier-endpoint.js';
import { closeVtlFixture, GIB, openVtlFixture, type VtlFixture } from '../helpers/vtl-fixture.js';

const SLOT = 1000;
const IE_SLOT = 3000;
const RETRY = { baseDelayMs: 1_000, maxDelayMs: 4_000 };

class RecordingLogger implements Logger {
  readonly lines: Array<{ level: string; msg: string; fields?: LogFields }> = [];
  debug(): void {}
  info(msg: string, fields?: LogFields): void {
    this.lines.push({ level: 'info', msg, fields });
  }
  warn(msg: string, fields?: LogFields): void {
    this.lines.push({ level: 'warn', msg, fields });
  }
  error(msg: string, fields?: LogFields): void {
    this.lines.push({ level: 'error', msg, fields });
  }
  count(level: string, pattern: RegExp): number {
    return this.lines.filter((l) => l.level === level && pattern.test(l.msg)).length;
  }
}

interface Rig {
  f: VtlFixture;
  endpoint: GlacierEndpoint;
  proxy: FaultProxy;
  shelf: TapeShelf;
  archiver: TapeArchiver;
  log: RecordingLogger;
  clock: { nowMs: number };
}

async function openRig(t: Test, onProgress?: (e: TapeArchiverEvent) => void): Promise<Rig> {
  const endpoint = await GlacierEndpoint.start({ vaults: ['shelfgate-vts'] });
  const proxy = await FaultProxy.start(endpoint.url);
  const f = await openVtlFixture(stkL700);
  // One attempt per call: the worker's own backoff is what is under test.
  const store = new GlacierArchiveStore(glacierTestStoreConfig(proxy.url, { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 }));
  t.teardown(async () => {
    await store.close();
    await proxy.close();
    await endpoint.close();
    await closeVtlFixture(f);
  });
  const clock = { nowMs: Date.parse('2026-12-01T12:00:00Z') };
  const log = new RecordingLogger();
  const shelf = await TapeShelf.open(f.db);
  const pools = await TapePools.open(f.db, { inUse: async () => false });
  const archiver = new TapeArchiver({
    library: f.library,
    catalog: f.catalog,
    media: f.media,
    shelf,
    pools,
    archiveStores: { GLACIER: store },
    log,
    now: () => clock.nowMs,
    retry: RETRY,
    ...(onProgress ? { onProgress } : {}),
  });
  return { f, endpoint, proxy, shelf, archiver, log, clock };
}

/** A tape of `records` 256 KiB records (four per 1 MiB archive part), exported to the I/E slot. */
async function exportTape(f: VtlFixture, barcode: string, records: number): Promise<Buffer[]> {
  await f.service.createTapeWithBarcode({ barcode, sizeBytes: 100 * GIB });
  const medium = await f.media.open(barcode);
  const written: Buffer[] = [];
  for (let n = 0; n < records; n++) {
    const data = Buffer.alloc(256 * 1024, n + 1);
    written.push(data);
    await medium.writeRecord(data);
  }
  await f.media.close(medium);
  await f.library.moveMedium(SLOT, IE_SLOT);
  return written;
}

async function readRecords(f: VtlFixture, barcode: string): Promise<Buffer[]> {
  const medium = await f.media.open(barcode);
  try {
    const out: Buffer[] = [];
    for (;;) {
      const r = await medium.read();
      if (r.kind !== 'record') break;
      out.push(r.data);
    }
    return out;
  } finally {
    await f.media.close(medium);
  }
}

async function runUntil(t: Test, rig: Rig, barcode: string, status: string): Promise<void> {
  for (let round = 0; round < 100 && rig.f.catalog.get(barcode)?.status !== status; round++) await rig.archiver.runOnce();
  t.equal(rig.f.catalog.get(barcode)?.status, status, `${barcode} reaches ${status}`);
}

t.test('TapeArchiver.TransientErrors: throttling and 5xx back off on the clock, one log line per state change', async (t) => {
  const rig = await openRig(t);
  const { proxy, archiver, log, clock } = rig;
  await exportTape(rig.f, 'RETRY0001', 6);

  proxy.fail({ status: 400, code: 'ThrottlingException', json: true });
  await archiver.runOnce();
  t.equal(rig.f.catalog.get('RETRY0001')?.status, 'ARCHIVING', 'throttling is transient: still ARCHIVING');
  t.equal(proxy.failedCount, 1);
  t.equal(log.count('warn', /cloud archive failing/), 1, 'one warning when it starts failing');

  proxy.fail({ status: 500, code: 'ServiceUnavailableException', json: true });
  for (let i = 0; i < 10; i++) await archiver.runOnce();
  t.equal(proxy.requests.length, 1, 'no attempt before the backoff has passed (the clock did not move)');

  for (let attempt = 2; attempt <= 5; attempt++) {
    clock.nowMs += RETRY.maxDelayMs;
    await archiver.runOnce();
    t.equal(proxy.failedCount, attempt, `attempt ${attempt} once the capped backoff (${RETRY.maxDelayMs} ms) has passed`);
  }
  t.equal(rig.f.catalog.get('RETRY0001')?.status, 'ARCHIVING');
  t.equal(log.count('warn', /failing/), 1, 'still one warning after five failed attempts');
  t.match(archiver.outage.counters, { failedAttempts: 5, outages: 1 });
  t.equal(archiver.outage.failing, true);

  proxy.heal();
  clock.nowMs += RETRY.maxDelayMs;
  await runUntil(t, rig, 'RETRY0001', 'ARCHIVED');
  t.equal(log.count('info', /cloud archive recovered/), 1, 'one line when it recovers');
  t.match(log.lines.find((l) => /recovered/.test(l.msg))?.fields, { failedAttempts: 5 });
  t.equal(archiver.outage.failing, false);
  t.equal(rig.shelf.get('RETRY0001')?.lastError, undefined);
});

t.test('TapeArchiver.PermanentError: 403 ends the archive; the tape is AVAILABLE again with the reason', async (t) => {
  const rig = await openRig(t);
  const { proxy, archiver, log, clock } = rig;
  const written = await exportTape(rig.f, 'DENIED001', 6);

  proxy.fail({ status: 403, code: 'AccessDeniedException', json: true });
  await archiver.runOnce();
  t.equal(rig.f.catalog.get('DENIED001')?.status, 'AVAILABLE', 'not an endless retry');
  t.same(rig.f.library.elementOf('DENIED001'), { address: SLOT, type: 'storage' }, 'back in a storage slot');
  t.match(rig.shelf.get('DENIED001')?.lastError, { phase: 'archive', code: 'CLOUD_AUTH', message: /AccessDenied/ });
  t.equal(log.count('error', /archive failed for good/), 1);
  const requests = proxy.requests.length;
  clock.nowMs += 3_600_000;
  for (let i = 0; i < 5; i++) await archiver.runOnce();
  t.equal(proxy.requests.length, requests, 'the worker leaves it alone');
  t.same(await readRecords(rig.f, 'DENIED001'), written, 'the data is untouched');

  proxy.heal();
  await rig.f.library.moveMedium(SLOT, IE_SLOT);
  await runUntil(t, rig, 'DENIED001', 'ARCHIVED');
  t.equal(rig.shelf.get('DENIED001')?.lastError, undefined, 'a successful archive clears the reason');
});

t.test('TapeArchiver.CancelWhileArchiving: the upload stops at the next part and is aborted', async (t) => {
  let cancel: Promise<void> | undefined;
  let rig: Rig | undefined;
  rig = await openRig(t, (event) => {
    if (event.phase === 'archive' && event.partIndex === 0 && cancel === undefined) cancel = rig!.archiver.cancelArchival('CANCEL002');
  });
  const written = await exportTape(rig.f, 'CANCEL002', 12);
  await rig.archiver.runOnce();
  t.ok(cancel, 'cancelled during ARCHIVING');
  await cancel;
  t.equal(rig.f.catalog.get('CANCEL002')?.status, 'AVAILABLE');
  t.same(rig.f.library.elementOf('CANCEL002'), { address: SLOT, type: 'storage' });
  t.same(rig.endpoint.pendingUploadIds(), [], 'the multipart upload was aborted');
  const partsSent = rig.proxy.requests.filter((r) => r.method === 'PUT' && r.url.includes('/multipart-uploads/')).length;
  t.ok(partsSent <= 2, `the upload stopped at the part after the cancel (${partsSent} parts of the 3 MiB tape sent)`);
  await rig.archiver.runOnce();
  t.equal(rig.f.catalog.get('CANCEL002')?.status, 'AVAILABLE', 'the worker leaves it alone');
  t.same(await readRecords(rig.f, 'CANCEL002'), written);

  await rig.f.library.moveMedium(SLOT, IE_SLOT);
  await runUntil(t, rig, 'CANCEL002', 'ARCHIVED');
  await t.rejects(rig.archiver.cancelArchival('CANCEL002'), { code: 'GW_TAPE_INVALID_STATE' }, 'not once ARCHIVED');
});
