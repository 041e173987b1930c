// S3 server-side encryption headers (S3 API reference, PutObject / CreateMultipartUpload:
// x-amz-server-side-encryption, x-amz-server-side-encryption-aws-kms-key-id) on every write of the
// S3 object store, single-part and multipart, as s3rver receives them.

import t from 'tap';
import { S3ObjectStore } from '../../src/cloud/s3-object-store.js';
import { pattern } from '../helpers/pattern.js';
import { S3RVER_CREDENTIALS, S3rverEndpoint } from '../helpers/s3rver.js';

const MIB = 1024 * 1024;

t.test('SSE-KMS and SSE-S3 headers on PutObject and CreateMultipartUpload', async (t) => {
  const endpoint = await S3rverEndpoint.start();
  t.teardown(() => endpoint.close());
  const open = (serverSideEncryption: ConstructorParameters<typeof S3ObjectStore>[0]['serverSideEncryption']) =>
    new S3ObjectStore({
      bucket: endpoint.bucket,
      endpoint: endpoint.url,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: S3RVER_CREDENTIALS,
      multipartThresholdBytes: 6 * MIB,
      partSizeBytes: 5 * MIB,
      ...(serverSideEncryption !== undefined ? { serverSideEncryption } : {}),
    });
  const kms = open({ algorithm: 'aws:kms', kmsKeyId: 'alias/shelfgate-s3' });
  t.teardown(() => kms.close());
  await kms.put('small', Buffer.from('x'));
  await kms.put('large', pattern(7 * MIB, 1));
  const writes = endpoint.requests.filter((r) => r.method === 'PUT' && !r.url.includes('partNumber=') || (r.method === 'POST' && r.url.includes('uploads')));
  t.equal(writes.length, 2, 'one PutObject and one CreateMultipartUpload');
  for (const w of writes) {
    t.equal(w.headers['x-amz-server-side-encryption'], 'aws:kms', `${w.method} ${w.url}`);
    t.equal(w.headers['x-amz-server-side-encryption-aws-kms-key-id'], 'alias/shelfgate-s3');
  }
  t.ok((await kms.get('large')).equals(pattern(7 * MIB, 1)), 'reads back');

  endpoint.requests.length = 0;
  const s3 = open({ algorithm: 'AES256', kmsKeyId: 'ignored for SSE-S3' });
  t.teardown(() => s3.close());
  await s3.put('sse-s3', Buffer.from('y'));
  const put = endpoint.requests.find((r) => r.method === 'PUT');
  t.equal(put?.headers['x-amz-server-side-encryption'], 'AES256');
  t.equal(put?.headers['x-amz-server-side-encryption-aws-kms-key-id'], undefined);

  endpoint.requests.length = 0;
  const plain = open(undefined);
  t.teardown(() => plain.close());
  await plain.put('plain', Buffer.from('z'));
  t.equal(endpoint.requests.find((r) => r.method === 'PUT')?.headers['x-amz-server-side-encryption'], undefined, 'no header unless configured');
});
