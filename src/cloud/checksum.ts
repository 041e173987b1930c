// SHA-256 helpers for end-to-end integrity. Checksums travel base64-encoded, the form S3 uses for
// x-amz-checksum-sha256 (so one value is sent to S3, stored as metadata and compared on read);
// content-addressed keys use the hex form (docs/object-layout.md).

import { createHash, webcrypto } from 'node:crypto';

const SHA256_BASE64 = /^[A-Za-z0-9+/]{43}=$/;

export function sha256Base64(body: Buffer): string {
  return createHash('sha256').update(body).digest('base64');
}

/** sha256Base64 on the thread pool (WebCrypto digest), off the event loop. */
export async function sha256Base64Async(body: Buffer): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', body)).toString('base64');
}

export function sha256Hex(body: Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

/** True for the 44-character base64 form of a 32-byte digest. */
export function isSha256Base64(value: string): boolean {
  return SHA256_BASE64.test(value);
}
