// Byte format of a volume's segment log (docs/storage-engine.md "Segment format"). A segment file
// is a run of self-checking records; it has no header of its own: its name is the log offset of
// its first byte (16 hex digits), so a log offset names one byte of one segment for ever.
//
// Record = 48-byte header + data (dataLength bytes):
//   0  magic        u32  0x53475231 "SGR1"
//   4  type         u8   1 WRITE, 2 UNMAP, 3 FILL, 4 RELOCATE (RecordType)
//   5  flags        u8   0
//   6  reserved     u16  0
//   8  lba          u64  first logical block
//   16 blockCount   u32
//   20 dataLength   u32  blockCount × blockSize for WRITE/FILL/RELOCATE, 0 for UNMAP
//   24 dataHash     8 bytes: the first 8 bytes of SHA-256(data) (zeros without data)
//   32 sourceOffset u64  RELOCATE: the log offset the data was moved from (replay re-applies it
//                        only where the block map still points there); else 0
//   40 volumeId     u32  the volume the log belongs to (a misplaced file is refused)
//   44 headerCrc    u32  CRC32C (RFC 3720 B.4) of bytes 0..43
// Big-endian integers. A record whose header CRC or data hash does not match ends the log: after a
// power cut the bytes after the last completed fdatasync may be torn, and nothing after them was
// ever flushed (segment-log.ts acknowledges records in log order).

import { createHash, webcrypto } from 'node:crypto';
import { crc32c } from '../../iscsi/crc32c.js';

export const RECORD_MAGIC = 0x53475231;
export const RECORD_HEADER_BYTES = 48;

export const RecordType = {
  /** Data written by an initiator: dirties the object chunks it touches (upload queue). */
  WRITE: 1,
  /** UNMAP / WRITE SAME with UNMAP: the range reads as zeros. */
  UNMAP: 2,
  /** Data already in the object store, brought back into a cached volume (or upgraded from an
   *  older data directory): mapped, not dirtied. */
  FILL: 3,
  /** Live data the cleaner moved out of an old segment: mapped only where the map still points at
   *  `sourceOffset`; dirtiness is unchanged. */
  RELOCATE: 4,
} as const;
export type RecordTypeValue = (typeof RecordType)[keyof typeof RecordType];

export interface RecordHeader {
  type: RecordTypeValue;
  lba: number;
  blockCount: number;
  dataLength: number;
  dataHash: Buffer;
  volumeId: number;
  /** RELOCATE only. */
  sourceOffset: number;
}

export function dataHashOf(data: Buffer | null): Buffer {
  if (data === null || data.length === 0) return Buffer.alloc(8);
  return createHash('sha256').update(data).digest().subarray(0, 8);
}

/** Records at least this big are hashed on the thread pool (WebCrypto digest), not on the event
 *  loop: a 1 MiB SHA-256 costs about a millisecond of CPU. */
const POOL_HASH_MIN_BYTES = 64 * 1024;

/** dataHashOf, off the event loop for large data. */
export async function dataHashOfAsync(data: Buffer | null): Promise<Buffer> {
  if (data === null || data.length < POOL_HASH_MIN_BYTES) return dataHashOf(data);
  const digest = await webcrypto.subtle.digest('SHA-256', data);
  return Buffer.from(digest, 0, 8);
}

export function encodeRecordHeader(h: RecordHeader): Buffer {
  const header = Buffer.alloc(RECORD_HEADER_BYTES);
  header.writeUInt32BE(RECORD_MAGIC, 0);
  header[4] = h.type;
  header.writeBigUInt64BE(BigInt(h.lba), 8);
  header.writeUInt32BE(h.blockCount, 16);
  header.writeUInt32BE(h.dataLength, 20);
  h.dataHash.copy(header, 24, 0, 8);
  header.writeBigUInt64BE(BigInt(h.sourceOffset), 32);
  header.writeUInt32BE(h.volumeId, 40);
  header.writeUInt32BE(crc32c(header.subarray(0, 44)), 44);
  return header;
}

/** The header at the start of `bytes`, or null when they are not a valid header of this volume's
 *  log (the end of the log). */
export function decodeRecordHeader(bytes: Buffer, volumeId: number, blockSize: number): RecordHeader | null {
  if (bytes.length < RECORD_HEADER_BYTES || bytes.readUInt32BE(0) !== RECORD_MAGIC) return null;
  if (bytes.readUInt32BE(44) !== crc32c(bytes.subarray(0, 44))) return null;
  const type = bytes[4]!;
  if (type < RecordType.WRITE || type > RecordType.RELOCATE) return null;
  const blockCount = bytes.readUInt32BE(16);
  const dataLength = bytes.readUInt32BE(20);
  const expectedData = type === RecordType.UNMAP ? 0 : blockCount * blockSize;
  if (dataLength !== expectedData || bytes.readUInt32BE(40) !== volumeId) return null;
  return {
    type: type as RecordTypeValue,
    lba: Number(bytes.readBigUInt64BE(8)),
    blockCount,
    dataLength,
    dataHash: Buffer.from(bytes.subarray(24, 32)),
    sourceOffset: Number(bytes.readBigUInt64BE(32)),
    volumeId,
  };
}

/** Segment file name for the segment starting at `startOffset`. */
export function segmentFileName(startOffset: number): string {
  return `${startOffset.toString(16).padStart(16, '0')}.seg`;
}

/** Start offset of a segment file name, or null for other files. */
export function parseSegmentFileName(name: string): number | null {
  const m = /^([0-9a-f]{16})\.seg$/.exec(name);
  return m === null ? null : Number.parseInt(m[1]!, 16);
}
