// The cloud contract suites against a real S3 server, Ceph RGW (test/helpers/ceph-rgw.ts): one
// single-host cluster for the whole file, a new bucket per case. Also records what RGW does and
// does not do that the gateway depends on (docs/object-layout.md "S3 servers").

import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, RestoreObjectCommand } from '@aws-sdk/client-s3';
import t from 'tap';
import { S3ArchiveStore } from '../../src/cloud/s3-archive-store.js';
import { S3ObjectStore } from '../../src/cloud/s3-object-store.js';
import { startCephRgw } from '../helpers/ceph-rgw.js';
import { archiveStoreContract, waitForRetrieval } from './archive-store-contract.js';
import { objectStoreContract, patternBytes } from './object-store-contract.js';

const MIB = 1024 * 1024;

// The archive contract's geometry is 1 MiB parts; RGW, like AWS, refuses parts under 5 MiB
// (EntityTooSmall at CompleteMultipartUpload) unless rgw_multipart_min_part_size says otherwise.
const rgw = await startCephRgw(t, { multipartMinPartBytes: MIB });
if ('skip' in rgw) {
  t.test('Ceph RGW', { skip: rgw.skip }, () => undefined);
} else {
  t.comment(`Ceph RGW cluster started in ${rgw.startSeconds.toFixed(1)} s at ${rgw.endpoint}`);
  const raw = rgw.client();
  const common = {
    endpoint: rgw.endpoint,
    region: rgw.region,
    forcePathStyle: true,
    credentials: rgw.credentials,
    connectionTimeoutMs: 2_000,
    requestTimeoutMs: 30_000,
    socketIdleTimeoutMs: 10_000,
    retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
  };

  objectStoreContract(t, 'S3ObjectStore (Ceph RGW)', async () => {
    const bucket = await rgw.bucket();
    const store = new S3ObjectStore({ ...common, bucket, multipartThresholdBytes: 5 * MIB, partSizeBytes: 5 * MIB });
    return {
      store,
      // Overwrite with a different body but the old x-amz-meta-sha256, as a bit flip at rest would.
      corrupt: async (key) => {
        const head = await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        const res = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const body = Buffer.from(await res.Body!.transformToByteArray());
        body[body.length - 1] ^= 0xff;
        await raw.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: head.Metadata }));
      },
      // RGW's multipart minimum part size is 5 MiB like AWS's: two full parts and a short one.
      largeBodyBytes: 12 * MIB + 12345,
      bulkListKeys: 1100,
      close: () => store.close(),
    };
  });

  archiveStoreContract(t, 'S3ArchiveStore (Ceph RGW, retrieval: direct)', async () => {
    const bucket = await rgw.bucket();
    const store = new S3ArchiveStore({ ...common, bucket, prefix: 'vts/', storageClass: 'GLACIER', partSizeBytes: MIB, retrieval: 'direct' });
    return {
      store,
      retrievalIsImmediate: true,
      corrupt: (archiveId, offsetBytes) => rgw.flipMultipartByte(bucket, `vts/${archiveId}`, Math.floor(offsetBytes / MIB) + 1, offsetBytes % MIB),
      close: () => store.close(),
    };
  });

  t.test('RGW.StorageClasses: GLACIER and DEEP_ARCHIVE are accepted labels; the bytes stay readable', async (t) => {
    const Bucket = await rgw.bucket();
    for (const StorageClass of ['GLACIER', 'DEEP_ARCHIVE'] as const) {
      const Key = `cold-${StorageClass}`;
      await raw.send(new PutObjectCommand({ Bucket, Key, Body: Buffer.from('cold bytes'), StorageClass }));
      const head = await raw.send(new HeadObjectCommand({ Bucket, Key }));
      t.equal(head.StorageClass, StorageClass, 'HeadObject reports the class');
      t.equal(head.Restore, undefined, 'no x-amz-restore');
      const got = await raw.send(new GetObjectCommand({ Bucket, Key }));
      t.equal(await got.Body!.transformToString(), 'cold bytes', 'GetObject answers without a restore (AWS answers 403 InvalidObjectState)');
    }
    await t.rejects(
      raw.send(new PutObjectCommand({ Bucket, Key: 'x', Body: Buffer.from('x'), StorageClass: 'STANDARD_IA' })),
      { name: 'InvalidArgument', $metadata: { httpStatusCode: 400 } },
      'a class the zone placement does not list is refused (400 InvalidArgument)',
    );
  });

  t.test('RGW.RestoreObject: 501 NotImplemented; S3ArchiveStore says so instead of retrying', async (t) => {
    const Bucket = await rgw.bucket();
    await raw.send(new PutObjectCommand({ Bucket, Key: 'cold', Body: Buffer.from('x'), StorageClass: 'GLACIER' }));
    await t.rejects(
      raw.send(new RestoreObjectCommand({ Bucket, Key: 'cold', RestoreRequest: { Days: 1, GlacierJobParameters: { Tier: 'Standard' } } })),
      { name: 'NotImplemented', $metadata: { httpStatusCode: 501 } },
    );
    const store = new S3ArchiveStore({ ...common, bucket: Bucket, prefix: 'vts/', storageClass: 'GLACIER', partSizeBytes: MIB });
    t.teardown(() => store.close());
    const upload = await store.beginArchive('tape-RO0001', { description: 'restore' });
    await upload.uploadPart(0, patternBytes(1000, 7));
    const { archiveId } = await upload.complete();
    await t.rejects(store.requestRetrieval(archiveId, { tier: 'Standard' }), {
      name: 'CloudError',
      code: 'CLOUD_NOT_IMPLEMENTED',
      transient: false,
      message: /RestoreObject.*retrieval: direct/s,
    });
    const direct = new S3ArchiveStore({ ...common, bucket: Bucket, prefix: 'vts/', storageClass: 'GLACIER', partSizeBytes: MIB, retrieval: 'direct' });
    t.teardown(() => direct.close());
    const { jobId } = await direct.requestRetrieval(archiveId, { tier: 'Bulk' });
    t.equal(await waitForRetrieval(direct, jobId), 'Succeeded', 'direct: read at once, whatever the tier');
    t.equal((await direct.readRetrieved(jobId, { offsetBytes: 0, lengthBytes: 1000 })).toString('hex'), patternBytes(1000, 7).toString('hex'));
  });

  t.test('RGW.IfNoneMatch: a create-only PutObject answers 412 when the key exists', async (t) => {
    const Bucket = await rgw.bucket();
    await raw.send(new PutObjectCommand({ Bucket, Key: 'once', Body: Buffer.from('first'), IfNoneMatch: '*' }));
    await t.rejects(raw.send(new PutObjectCommand({ Bucket, Key: 'once', Body: Buffer.from('second'), IfNoneMatch: '*' })), {
      name: 'PreconditionFailed',
      $metadata: { httpStatusCode: 412 },
    });
    const got = await raw.send(new GetObjectCommand({ Bucket, Key: 'once' }));
    t.equal(await got.Body!.transformToString(), 'first', 'the first body stays');
  });
}
