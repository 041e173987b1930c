// CRC32C (Castagnoli, reflected polynomial 0x82f63b78), the iSCSI header and data digest.
// RFC 7143 13.1 / RFC 3385. Slicing-by-8 table lookup: eight bytes per step.
// On the wire the 32-bit digest is sent least significant byte first (RFC 3720 B.4 lists the
// 32-zero-byte digest 0x8a9136aa as the bytes aa 36 91 8a); see writeDigest/readDigest.

const CASTAGNOLI_REFLECTED = 0x82f63b78;

/** TABLES[k][b]: CRC of byte b followed by k zero bytes (slicing-by-8). */
const TABLES: Int32Array[] = buildTables();

function buildTables(): Int32Array[] {
  const tables: Int32Array[] = [];
  const t0 = new Int32Array(256);
  for (let b = 0; b < 256; b++) {
    let crc = b;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ CASTAGNOLI_REFLECTED : crc >>> 1;
    t0[b] = crc;
  }
  tables.push(t0);
  for (let k = 1; k < 8; k++) {
    const prev = tables[k - 1]!;
    const tk = new Int32Array(256);
    for (let b = 0; b < 256; b++) tk[b] = (prev[b]! >>> 8) ^ t0[prev[b]! & 0xff]!;
    tables.push(tk);
  }
  return tables;
}

const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES as [
  Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array,
];

/**
 * CRC32C of `buf`. `seed` is a previous result, to continue over a further buffer:
 * `crc32c(b, crc32c(a)) === crc32c(Buffer.concat([a, b]))`. Returns an unsigned 32-bit number.
 */
export function crc32c(buf: Uint8Array, seed = 0): number {
  let crc = ~seed;
  let i = 0;
  const end = buf.length;
  const end8 = end - 8;
  while (i <= end8) {
    const lo = crc ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
    crc =
      T7[lo & 0xff]! ^
      T6[(lo >>> 8) & 0xff]! ^
      T5[(lo >>> 16) & 0xff]! ^
      T4[lo >>> 24]! ^
      T3[buf[i + 4]!]! ^
      T2[buf[i + 5]!]! ^
      T1[buf[i + 6]!]! ^
      T0[buf[i + 7]!]!;
    i += 8;
  }
  while (i < end) crc = (crc >>> 8) ^ T0[(crc ^ buf[i++]!) & 0xff]!;
  return ~crc >>> 0;
}

/** Length of an iSCSI digest on the wire (RFC 7143 11.1). */
export const DIGEST_LENGTH = 4;

/** Writes a digest in wire byte order (least significant byte first). */
export function writeDigest(target: Buffer, offset: number, digest: number): void {
  target.writeUInt32LE(digest >>> 0, offset);
}

/** Reads a digest in wire byte order (least significant byte first). */
export function readDigest(source: Buffer, offset: number): number {
  return source.readUInt32LE(offset);
}
