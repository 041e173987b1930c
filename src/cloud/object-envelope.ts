// The byte format of an encrypted object (docs/encryption.md "Object format"):
//
//   offset  size  field
//   0       4     magic "SGE1"
//   4       16    data-key group id (the wrapped data key is the object encryption/data-keys/<id hex>)
//   20      32    salt: the object's own key is HKDF-SHA256(group data key, salt, "shelfgate object v1")
//                 (RFC 5869), so every object has a fresh 256-bit key
//   52      12    AES-GCM IV (random)
//   64      n     AES-256-GCM ciphertext of the body (NIST SP 800-38D)
//   64+n    16    GCM tag
//
// Associated data: the 64-byte header followed by the UTF-8 object key, so a byte changed anywhere,
// a truncation, or an object moved to another key fails authentication.

import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

export const ENVELOPE_MAGIC = Buffer.from('SGE1', 'ascii');
export const GROUP_ID_BYTES = 16;
const SALT_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const ENVELOPE_HEADER_BYTES = 4 + GROUP_ID_BYTES + SALT_BYTES + IV_BYTES;
/** Bytes an encrypted object has beyond its body. */
export const ENVELOPE_OVERHEAD_BYTES = ENVELOPE_HEADER_BYTES + TAG_BYTES;
const HKDF_INFO = Buffer.from('shelfgate object v1', 'ascii');

function objectKey(dataKey: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', dataKey, salt, HKDF_INFO, 32));
}

function associatedData(header: Buffer, key: string): Buffer {
  return Buffer.concat([header, Buffer.from(key, 'utf8')]);
}

/** True when body starts like an encrypted object (anything else was written in plain text). */
export function isEnvelope(body: Buffer): boolean {
  return body.length >= 4 && body.subarray(0, 4).equals(ENVELOPE_MAGIC);
}

/** The group id (hex) of an encrypted object; null when the body is too short to hold a header. */
export function envelopeGroupId(body: Buffer): string | null {
  return body.length < ENVELOPE_OVERHEAD_BYTES ? null : body.subarray(4, 4 + GROUP_ID_BYTES).toString('hex');
}

export function sealObject(key: string, body: Buffer, groupIdHex: string, dataKey: Buffer): Buffer {
  const header = Buffer.alloc(ENVELOPE_HEADER_BYTES);
  ENVELOPE_MAGIC.copy(header, 0);
  Buffer.from(groupIdHex, 'hex').copy(header, 4);
  const salt = randomBytes(SALT_BYTES);
  salt.copy(header, 4 + GROUP_ID_BYTES);
  const iv = randomBytes(IV_BYTES);
  iv.copy(header, 4 + GROUP_ID_BYTES + SALT_BYTES);
  const cipher = createCipheriv('aes-256-gcm', objectKey(dataKey, salt), iv);
  cipher.setAAD(associatedData(header, key));
  const out = Buffer.allocUnsafe(ENVELOPE_OVERHEAD_BYTES + body.length);
  header.copy(out, 0);
  let at = ENVELOPE_HEADER_BYTES;
  at += cipher.update(body).copy(out, at);
  at += cipher.final().copy(out, at);
  cipher.getAuthTag().copy(out, at);
  return out;
}

/** The body, or null when authentication fails (the caller names the object in its error). */
export function openObject(key: string, sealed: Buffer, dataKey: Buffer): Buffer | null {
  if (sealed.length < ENVELOPE_OVERHEAD_BYTES) return null;
  const header = sealed.subarray(0, ENVELOPE_HEADER_BYTES);
  const salt = header.subarray(4 + GROUP_ID_BYTES, 4 + GROUP_ID_BYTES + SALT_BYTES);
  const iv = header.subarray(4 + GROUP_ID_BYTES + SALT_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', objectKey(dataKey, salt), iv);
  decipher.setAAD(associatedData(header, key));
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    const body = decipher.update(sealed.subarray(ENVELOPE_HEADER_BYTES, sealed.length - TAG_BYTES));
    const rest = decipher.final();
    return rest.length === 0 ? body : Buffer.concat([body, rest]);
  } catch {
    return null;
  }
}
