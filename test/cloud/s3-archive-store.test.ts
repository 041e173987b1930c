import { open } from 'node:fs/promises';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, RestoreObjectCommand, S3Client } from '@aws-sdk/client-s3';
import t from 'tap';
import { S3ArchiveStore, type S3ArchiveStoreConfig } from '../../src/cloud/s3-archive-store.js';
import { S3RestoreEndpoint } from '../helpers/s3-restore-endpoint.js';
import { S3RVER_CREDENTIALS } from '../helpers/s3rver.js';
import { archiveStoreContract, waitForRetrieval } from './archive-store-contract.js';
import { patternBytes } from './object-store-contract.js';

const MIB = 1024 * 1024;
const RESTORE_DELAY_MS = { Expedited: 0, Standard: 200, Bulk: 3_600_000 };

function storeConfig(endpoint: S3RestoreEndpoint, overrides: Partial<S3ArchiveStoreConfig> = {}): S3ArchiveStoreConfig {
  return {
    bucket: endpoint.bucket,
    prefix: 'vts/',
    storageClass: 'GLACIER',
    endpoint: endpoint.url,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    partSizeBytes: MIB,
    retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
    ...overrides,
  };
}

function rawClient(endpoint: S3RestoreEndpoint): S3Client {
  return new S3Client({
    endpoint: endpoint.url,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

archiveStoreContract(t, 'S3ArchiveStore (s3rver + restore front)', async () => {
  const endpoint = await S3RestoreEndpoint.start({ restoreDelayMs: RESTORE_DELAY_MS });
  const store = new S3ArchiveStore(storeConfig(endpoint));
  return {
    store,
    corrupt: async (archiveId, offsetBytes) => {
      const file = await open(endpoint.s3.objectPath(`vts/${archiveId}`), 'r+');
      const byte = Buffer.alloc(1);
      await file.read(byte, 0, 1, offsetBytes);
      byte[0] ^= 0xff;
      await file.write(byte, 0, 1, offsetBytes);
      await file.close();
    },
    close: async () => {
      await store.close();
      await endpoint.close();
    },
  };
});

t.test('S3Archive.Restore: InvalidObjectState until restored, x-amz-restore, 409 while ongoing', async (t) => {
  let nowMs = Date.UTC(2026, 10, 26, 12, 0, 0);
  const endpoint = await S3RestoreEndpoint.start({ restoreDelayMs: { Standard: 4 * 3600_000 }, nowMs: () => nowMs });
  t.teardown(() => endpoint.close());
  const raw = rawClient(endpoint);
  t.teardown(() => raw.destroy());
  const Bucket = endpoint.bucket;
  const Key = 'cold';
  await raw.send(new PutObjectCommand({ Bucket, Key, Body: Buffer.from('frozen bytes'), StorageClass: 'DEEP_ARCHIVE' }));
  const head0 = await raw.send(new HeadObjectCommand({ Bucket, Key }));
  t.equal(head0.StorageClass, 'DEEP_ARCHIVE');
  t.equal(head0.Restore, undefined);
  await t.rejects(raw.send(new GetObjectCommand({ Bucket, Key })), { name: 'InvalidObjectState', $metadata: { httpStatusCode: 403 } });
  await t.rejects(raw.send(new RestoreObjectCommand({ Bucket, Key, RestoreRequest: { Days: 2, GlacierJobParameters: { Tier: 'Expedited' } } })), { name: 'InvalidArgument' }, 'no Expedited for DEEP_ARCHIVE');
  const started = await raw.send(new RestoreObjectCommand({ Bucket, Key, RestoreRequest: { Days: 2, GlacierJobParameters: { Tier: 'Standard' } } }));
  t.equal(started.$metadata.httpStatusCode, 202);
  t.equal((await raw.send(new HeadObjectCommand({ Bucket, Key }))).Restore, 'ongoing-request="true"');
  await t.rejects(raw.send(new RestoreObjectCommand({ Bucket, Key, RestoreRequest: { Days: 2, GlacierJobParameters: { Tier: 'Standard' } } })), { name: 'RestoreAlreadyInProgress', $metadata: { httpStatusCode: 409 } });
  await t.rejects(raw.send(new GetObjectCommand({ Bucket, Key })), { name: 'InvalidObjectState' });
  nowMs += 4 * 3600_000;
  t.equal((await raw.send(new HeadObjectCommand({ Bucket, Key }))).Restore, 'ongoing-request="false", expiry-date="Sun, 29 Nov 2026 00:00:00 GMT"');
  const got = await raw.send(new GetObjectCommand({ Bucket, Key }));
  t.equal(await got.Body!.transformToString(), 'frozen bytes');
  const again = await raw.send(new RestoreObjectCommand({ Bucket, Key, RestoreRequest: { Days: 2, GlacierJobParameters: { Tier: 'Standard' } } }));
  t.equal(again.$metadata.httpStatusCode, 200, 'already restored');
  nowMs += 3 * 24 * 3600_000;
  await t.rejects(raw.send(new GetObjectCommand({ Bucket, Key })), { name: 'InvalidObjectState' }, 'the restored copy expired');
  await raw.send(new PutObjectCommand({ Bucket, Key: 'warm', Body: Buffer.from('x') }));
  await t.rejects(raw.send(new RestoreObjectCommand({ Bucket, Key: 'warm', RestoreRequest: { Days: 1 } })), { name: 'InvalidObjectState' }, 'STANDARD cannot be restored');
});

t.test('S3Archive.Wire: the archive goes multipart in its storage class, the manifest in STANDARD', async (t) => {
  const endpoint = await S3RestoreEndpoint.start({ restoreDelayMs: RESTORE_DELAY_MS });
  t.teardown(() => endpoint.close());
  const store = new S3ArchiveStore(storeConfig(endpoint, { storageClass: 'DEEP_ARCHIVE' }));
  t.teardown(() => store.close());
  const body = patternBytes(2 * MIB + 3, 9);
  const upload = await store.beginArchive('tape-WS0001', { description: 'wire' });
  for (let i = 0; i < 3; i++) {
    await upload.uploadPart(i, body.subarray(i * MIB, (i + 1) * MIB));
  }
  const { archiveId } = await upload.complete();
  t.equal(archiveId, 'tape-WS0001');
  t.match(await endpoint.s3.objectMetadata('vts/tape-WS0001'), { 'x-amz-storage-class': 'DEEP_ARCHIVE', 'content-length': body.length });
  t.equal((await endpoint.s3.objectMetadata('vts/tape-WS0001.manifest.json'))?.['x-amz-storage-class'], undefined);
  await t.rejects(store.requestRetrieval(archiveId, { tier: 'Expedited' }), { name: 'CloudError', code: 'CLOUD_INVALID_REQUEST' }, 'no Expedited from Deep Archive');
  const { jobId } = await store.requestRetrieval(archiveId, { tier: 'Standard' });
  t.equal(await waitForRetrieval(store, jobId), 'Succeeded');
  const restore = endpoint.requests.find((r) => r.method === 'POST' && r.url.includes('restore'));
  t.ok(restore, 'RestoreObject sent');
});
