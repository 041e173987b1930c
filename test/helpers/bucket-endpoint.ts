// The S3 endpoint a multi-gateway test runs against, as a parameter: s3rver here; the Ceph RGW
// harness (test/helpers/ceph-rgw.ts, branch h-rgw) adds its own factory to BUCKET_ENDPOINTS so the
// same tests run against it. A test gets the `objectStore` section for the gateways' config file
// and an S3ObjectStore on the whole bucket to inspect what the gateways stored.
import { S3ObjectStore } from '../../src/cloud/s3-object-store.js';
import type { ObjectStore } from '../../src/cloud/object-store.js';
import { S3RVER_CREDENTIALS, S3rverEndpoint } from './s3rver.js';

export interface BucketEndpoint {
  /** "s3rver", "ceph-rgw", … for test names. */
  readonly name: string;
  /** The gateways' `objectStore` configuration section (docs/configuration.md). */
  readonly objectStoreConfig: Record<string, unknown>;
  /** The whole bucket, for checks behind the gateways' backs. */
  readonly bucket: ObjectStore;
  /** Whether the server refuses a create-only put of an existing key (If-None-Match: *). */
  readonly conditionalWrites: boolean;
  close(): Promise<void>;
}

export interface BucketEndpointFactory {
  name: string;
  /** Why this endpoint cannot run here (the test reports a skip), or undefined. */
  unavailable(): Promise<string | undefined>;
  start(): Promise<BucketEndpoint>;
}

export async function startS3rverBucket(): Promise<BucketEndpoint> {
  const endpoint = await S3rverEndpoint.start();
  // A copy: the SDK marks the credentials object it was given (an extra `$source` key).
  const keys = { accessKeyId: S3RVER_CREDENTIALS.accessKeyId, secretAccessKey: S3RVER_CREDENTIALS.secretAccessKey };
  const bucket = new S3ObjectStore({ bucket: endpoint.bucket, endpoint: endpoint.url, region: 'us-east-1', forcePathStyle: true, credentials: { ...keys } });
  return {
    name: 's3rver',
    objectStoreConfig: { type: 's3', bucket: endpoint.bucket, endpoint: endpoint.url, forcePathStyle: true, ...keys },
    bucket,
    conditionalWrites: false,
    close: async () => {
      await bucket.close();
      await endpoint.close();
    },
  };
}

export const BUCKET_ENDPOINTS: BucketEndpointFactory[] = [{ name: 's3rver', unavailable: async () => undefined, start: startS3rverBucket }];
