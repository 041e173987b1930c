// The ArchiveStore contract: one suite that every implementation passes (local directory, Glacier
// over the test vault endpoint, S3 storage classes over the s3rver restore front). Each case gets
// a fresh subject. Subjects are configured with a 1 MiB part size and retrieval delays of
// Expedited 0, Standard a few hundred ms, Bulk an hour (so Bulk jobs stay InProgress).

import type { Test } from 'tap';
import type { ArchiveStore, ArchiveUpload } from '../../src/cloud/archive-store.js';
import { sha256Hex } from '../../src/cloud/checksum.js';
import { treeHashHex } from '../../src/cloud/tree-hash.js';
import { patternBytes } from './object-store-contract.js';

export interface ArchiveContractSubject {
  store: ArchiveStore;
  /** Flips a byte of the stored archive at offsetBytes, behind the store's back. */
  corrupt(archiveId: string, offsetBytes: number): Promise<void>;
  /** True when every retrieval succeeds at once (S3ArchiveStore with `retrieval: 'direct'`): the
   *  suite then skips the case of a job still in progress. */
  retrievalIsImmediate?: boolean;
  close(): Promise<void>;
}

const MIB = 1024 * 1024;
const POLL_MS = 20;
const POLL_LIMIT = 500;

async function uploadAll(upload: ArchiveUpload, body: Buffer, order?: number[]): Promise<void> {
  const partCount = Math.ceil(body.length / upload.partSizeBytes);
  for (const index of order ?? Array.from({ length: partCount }, (_, i) => i)) {
    await upload.uploadPart(index, body.subarray(index * upload.partSizeBytes, (index + 1) * upload.partSizeBytes));
  }
}

/** Polls describeRetrieval until the job is no longer InProgress. */
export async function waitForRetrieval(store: ArchiveStore, jobId: string): Promise<string> {
  for (let i = 0; i < POLL_LIMIT; i++) {
    const status = await store.describeRetrieval(jobId);
    if (status.status !== 'InProgress') {
      return status.status;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return 'InProgress';
}

function hexOf(body: Buffer): string {
  // Short bodies as bytes, long ones as their SHA-256, so a failure stays readable.
  return body.length <= 64 ? body.toString('hex') : `sha256:${sha256Hex(body)}:${body.length}`;
}

export function archiveStoreContract(t: Test, name: string, factory: () => Promise<ArchiveContractSubject>): void {
  const cases: Array<[string, (t: Test, s: ArchiveContractSubject) => Promise<void>]> = [
    ['RoundTrip', async (t, { store }) => {
      t.equal(store.partSizeBytes, MIB);
      const body = patternBytes(3 * MIB + 12345, 41);
      const upload = await store.beginArchive('tape-RT0001', { description: 'tape RT0001', sizeBytes: body.length });
      await uploadAll(upload, body, [2, 0, 3, 1]);
      const result = await upload.complete();
      t.equal(result.sha256TreeHash, treeHashHex(body), 'tree hash of the whole archive');
      t.equal(result.sizeBytes, body.length);
      const { jobId } = await store.requestRetrieval(result.archiveId, { tier: 'Standard' });
      t.equal(await waitForRetrieval(store, jobId), 'Succeeded');
      t.match(await store.describeRetrieval(jobId), {
        jobId,
        archiveId: result.archiveId,
        status: 'Succeeded',
        completed: true,
        tier: 'Standard',
        archiveSizeBytes: body.length,
        outputSizeBytes: body.length,
        archiveSha256TreeHash: result.sha256TreeHash,
      });
      t.equal(hexOf(await store.readRetrieved(jobId, { offsetBytes: 0, lengthBytes: body.length })), hexOf(body), 'whole archive');
      const ranges: Array<[number, number]> = [
        [0, 1],
        [MIB - 3, 7],
        [MIB, MIB],
        [MIB + 100, 2 * MIB],
        [3 * MIB, 12345],
        [3 * MIB + 12340, 100],
        [body.length, 10],
      ];
      for (const [offsetBytes, lengthBytes] of ranges) {
        const got = await store.readRetrieved(jobId, { offsetBytes, lengthBytes });
        t.equal(hexOf(got), hexOf(body.subarray(offsetBytes, offsetBytes + lengthBytes)), `range ${offsetBytes}+${lengthBytes}`);
      }
    }],
    ['RangeRetrieval', async (t, { store }) => {
      const body = patternBytes(4 * MIB + 5, 42);
      const upload = await store.beginArchive('tape-RR0001', { description: 'ranged' });
      await uploadAll(upload, body);
      const { archiveId } = await upload.complete();
      const { jobId } = await store.requestRetrieval(archiveId, { tier: 'Expedited', range: { offsetBytes: 2 * MIB, lengthBytes: 2 * MIB } });
      t.equal(await waitForRetrieval(store, jobId), 'Succeeded');
      t.match(await store.describeRetrieval(jobId), { outputSizeBytes: 2 * MIB, archiveSizeBytes: body.length });
      const got = await store.readRetrieved(jobId, { offsetBytes: MIB - 10, lengthBytes: 5 * MIB });
      t.equal(hexOf(got), hexOf(body.subarray(3 * MIB - 10, 4 * MIB)), 'offsets relative to the job range, clipped at its end');
      await t.rejects(
        store.requestRetrieval(archiveId, { tier: 'Standard', range: { offsetBytes: 100, lengthBytes: MIB } }),
        { name: 'CloudError', code: 'CLOUD_INVALID_REQUEST' },
        'ranges must be 1 MiB-aligned',
      );
    }],
    ['NotReady', async (t, { store, retrievalIsImmediate }) => {
      if (retrievalIsImmediate === true) {
        t.pass('not ready', { skip: 'this store reads archives directly: no retrieval is ever in progress' });
        return;
      }
      const body = patternBytes(MIB + 1, 43);
      const upload = await store.beginArchive('tape-NR0001', { description: 'bulk' });
      await uploadAll(upload, body);
      const { archiveId } = await upload.complete();
      const { jobId } = await store.requestRetrieval(archiveId, { tier: 'Bulk' });
      t.match(await store.describeRetrieval(jobId), { status: 'InProgress', completed: false, tier: 'Bulk' });
      await t.rejects(store.readRetrieved(jobId, { offsetBytes: 0, lengthBytes: 10 }), { name: 'CloudError', code: 'CLOUD_NOT_READY' });
    }],
    ['Integrity', async (t, s) => {
      const { store } = s;
      const body = patternBytes(3 * MIB, 44);
      const upload = await store.beginArchive('tape-IN0001', { description: 'to be damaged' });
      await uploadAll(upload, body);
      const { archiveId } = await upload.complete();
      const { jobId } = await store.requestRetrieval(archiveId, { tier: 'Expedited' });
      t.equal(await waitForRetrieval(store, jobId), 'Succeeded');
      await s.corrupt(archiveId, 2 * MIB + 17);
      t.equal(hexOf(await store.readRetrieved(jobId, { offsetBytes: 0, lengthBytes: 2 * MIB })), hexOf(body.subarray(0, 2 * MIB)), 'untouched parts still read');
      await t.rejects(store.readRetrieved(jobId, { offsetBytes: 2 * MIB + 100, lengthBytes: 10 }), { name: 'CloudError', code: 'CLOUD_INTEGRITY' });
      await t.rejects(store.readRetrieved(jobId, { offsetBytes: 0, lengthBytes: 3 * MIB }), { name: 'CloudError', code: 'CLOUD_INTEGRITY' });
    }],
    ['Delete', async (t, { store }) => {
      const upload = await store.beginArchive('tape-DE0001', { description: 'short-lived' });
      await upload.uploadPart(0, patternBytes(1000, 45));
      const { archiveId } = await upload.complete();
      await store.deleteArchive(archiveId);
      await store.deleteArchive(archiveId);
      await t.rejects(store.requestRetrieval(archiveId, { tier: 'Standard' }), { name: 'CloudError', code: 'CLOUD_NOT_FOUND', transient: false });
    }],
    ['UnknownJob', async (t, { store }) => {
      const unknown = { name: 'CloudError', code: 'CLOUD_NOT_FOUND', transient: false };
      await t.rejects(store.describeRetrieval('0123456789abcdef0123456789abcdef'), unknown, 'describe');
      await t.rejects(store.readRetrieved('0123456789abcdef0123456789abcdef', { offsetBytes: 0, lengthBytes: 1 }), unknown, 'read');
    }],
    ['Resume', async (t, { store }) => {
      const body = patternBytes(4 * MIB + 777, 46);
      const first = await store.beginArchive('tape-RS0001', { description: 'interrupted', sizeBytes: body.length });
      await uploadAll(first, body, [0, 1]);
      const persisted = JSON.stringify(first.state);
      t.same(JSON.parse(persisted).parts.map((p: { index: number }) => p.index), [0, 1], 'state lists the parts done');
      // kill -9 here: only the persisted JSON survives.
      const resumed = await store.resumeArchive(JSON.parse(persisted));
      await uploadAll(resumed, body, [1, 2, 3, 4]);
      const result = await resumed.complete();
      t.equal(result.sha256TreeHash, treeHashHex(body));
      const { jobId } = await store.requestRetrieval(result.archiveId, { tier: 'Expedited' });
      t.equal(await waitForRetrieval(store, jobId), 'Succeeded');
      t.equal(hexOf(await store.readRetrieved(jobId, { offsetBytes: 0, lengthBytes: body.length })), hexOf(body));
    }],
    ['Abort', async (t, { store }) => {
      const upload = await store.beginArchive('tape-AB0001', { description: 'abandoned' });
      await upload.uploadPart(0, patternBytes(MIB, 47));
      const state = upload.state;
      await upload.abort();
      await upload.abort();
      await t.rejects(store.resumeArchive(state), { name: 'CloudError', code: 'CLOUD_NOT_FOUND' });
    }],
    ['InvalidParts', async (t, { store }) => {
      const invalid = { name: 'CloudError', code: 'CLOUD_INVALID_REQUEST', transient: false };
      await t.rejects(store.beginArchive('tape bad name', { description: 'x' }), invalid, 'name');
      await t.rejects(store.beginArchive('tape-IP0001', { description: 'caf\u00e9' }), invalid, 'description');
      const upload = await store.beginArchive('tape-IP0001', { description: 'parts', sizeBytes: 2 * MIB + 1 });
      await t.rejects(upload.uploadPart(0, Buffer.alloc(MIB + 1)), invalid, 'larger than the part size');
      await t.rejects(upload.uploadPart(0, Buffer.alloc(10)), invalid, 'short part that is not the last');
      await t.rejects(upload.uploadPart(3, Buffer.alloc(1)), invalid, 'past the announced size');
      await upload.uploadPart(0, Buffer.alloc(MIB, 1));
      await upload.uploadPart(2, Buffer.alloc(1, 3));
      await t.rejects(upload.complete(), invalid, 'part 1 missing');
      await upload.uploadPart(1, Buffer.alloc(MIB, 2));
      t.equal((await upload.complete()).sizeBytes, 2 * MIB + 1);
    }],
  ];

  t.test(name, async (t) => {
    for (const [caseName, run] of cases) {
      await t.test(`ArchiveStore.${caseName}`, async (t) => {
        const subject = await factory();
        t.teardown(() => subject.close());
        await run(t, subject);
      });
    }
  });
}
