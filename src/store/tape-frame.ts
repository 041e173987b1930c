// A logical object as a tape's data file stores it: a self-describing frame, so the data file is
// the tape's log and one fdatasync of it makes a batch of records and filemarks durable
// (tape-medium.ts). A frame is a 32-byte header followed by the record bytes (none for a filemark):
//
//   0  magic u32 'SGTF'        12  lengthBytes u32 (0 for a filemark)
//   4  kind u8 (1 record, 2 filemark), 3 bytes zero       16  logical object id u64
//   8  generation u32          24  data CRC-32 u32        28  header CRC-32 u32 (of bytes 0-27)
//
// All integers big-endian. The generation is the tape header's at the time of writing: every
// truncation (overwrite, ERASE, a failed write, a load) starts a new one, so frames left beyond a
// truncation point never pass for current ones. The checksum is zlib's CRC-32 (native, several
// GiB/s here; the JS CRC32C of iscsi/crc32c.ts does about 1 GiB/s and would cost the writer
// thread a quarter of its time at the target rate).

import { crc32 } from 'node:zlib';

export const FRAME_HEADER_BYTES = 32;
const FRAME_MAGIC = 0x53475446;
const HEADER_CRC_OFFSET = 28;

const FrameKind = {
  RECORD: 1,
  FILEMARK: 2,
} as const;

export interface FrameHeader {
  kind: 'record' | 'filemark';
  generation: number;
  objectId: number;
  lengthBytes: number;
  /** CRC-32 of the record bytes (0 for a filemark). */
  dataCrc: number;
}

export function encodeFrameHeader(frame: FrameHeader): Buffer {
  const buf = Buffer.alloc(FRAME_HEADER_BYTES);
  buf.writeUInt32BE(FRAME_MAGIC, 0);
  buf[4] = frame.kind === 'record' ? FrameKind.RECORD : FrameKind.FILEMARK;
  buf.writeUInt32BE(frame.generation, 8);
  buf.writeUInt32BE(frame.lengthBytes, 12);
  buf.writeBigUInt64BE(BigInt(frame.objectId), 16);
  buf.writeUInt32BE(frame.dataCrc, 24);
  buf.writeUInt32BE(crc32(buf.subarray(0, HEADER_CRC_OFFSET)), HEADER_CRC_OFFSET);
  return buf;
}

/** The frame header at the start of `buf`, or null if it is not one (zeros, torn, garbage). */
export function decodeFrameHeader(buf: Buffer): FrameHeader | null {
  if (buf.length < FRAME_HEADER_BYTES || buf.readUInt32BE(0) !== FRAME_MAGIC) return null;
  if (crc32(buf.subarray(0, HEADER_CRC_OFFSET)) !== buf.readUInt32BE(HEADER_CRC_OFFSET)) return null;
  const kind = buf[4];
  const lengthBytes = buf.readUInt32BE(12);
  if (kind === FrameKind.RECORD ? lengthBytes === 0 : kind !== FrameKind.FILEMARK || lengthBytes !== 0) return null;
  return {
    kind: kind === FrameKind.RECORD ? 'record' : 'filemark',
    generation: buf.readUInt32BE(8),
    lengthBytes,
    objectId: Number(buf.readBigUInt64BE(16)),
    dataCrc: buf.readUInt32BE(24),
  };
}

export function recordChecksum(data: Buffer): number {
  return crc32(data);
}
