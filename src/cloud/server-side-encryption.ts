// S3 server-side encryption on top of the gateway's own (docs/encryption.md "Server-side
// encryption"): SSE-S3 (AES256) or SSE-KMS (aws:kms with an optional key), sent as
// x-amz-server-side-encryption[-aws-kms-key-id] on PutObject and CreateMultipartUpload (S3 API
// reference, "Protecting data with server-side encryption"). GetObject needs no header for either.

export interface ServerSideEncryption {
  algorithm: 'AES256' | 'aws:kms';
  /** SSE-KMS key id, ARN or alias; omit for the bucket's AWS-managed key (aws/s3). */
  kmsKeyId?: string;
}

/** The request fields of PutObject / CreateMultipartUpload for the setting (none when unset). */
export function sseRequestFields(sse: ServerSideEncryption | undefined): { ServerSideEncryption?: 'AES256' | 'aws:kms'; SSEKMSKeyId?: string } {
  if (sse === undefined) return {};
  return { ServerSideEncryption: sse.algorithm, ...(sse.algorithm === 'aws:kms' && sse.kmsKeyId !== undefined ? { SSEKMSKeyId: sse.kmsKeyId } : {}) };
}
