// Key layout of tape media in the gateway's Level database (key space TAPE, keys.ts).
//
//   0x03 | barcode length u8 | barcode | 0x00                      -> tape header JSON (tape-header.ts)
//   0x03 | barcode length u8 | barcode | 0x01 | objectId u64       -> object entry (24 bytes, below)
//   0x03 | barcode length u8 | barcode | 0x02 | fileNumber u64     -> objectId u64 of that filemark
//
// The barcode is length-prefixed, so no tape's keys are a prefix range of another's. Integers are
// big-endian so iterators and seeks follow numeric order. Entries at or beyond the header's EOD
// (objects) or filemark count (filemarks) are stale leftovers of an overwrite and never read.

import { KeySpace } from './keys.js';

const TapeKeyKind = {
  HEADER: 0x00,
  OBJECT: 0x01,
  FILEMARK: 0x02,
} as const;

/** AWS Tape Gateway barcodes: upper-case letters and digits. */
const BARCODE_PATTERN = /^[A-Z0-9]{1,16}$/;

export function isValidBarcode(barcode: string): boolean {
  return BARCODE_PATTERN.test(barcode);
}

function tapePrefix(barcode: string): Buffer {
  if (!isValidBarcode(barcode)) throw new RangeError(`invalid tape barcode ${JSON.stringify(barcode)}`);
  const prefix = Buffer.allocUnsafe(2 + barcode.length);
  prefix[0] = KeySpace.TAPE;
  prefix[1] = barcode.length;
  prefix.write(barcode, 2, 'latin1');
  return prefix;
}

/** Builds the keys of one tape; the prefix is computed once. */
export class TapeKeys {
  private readonly prefix: Buffer;

  constructor(barcode: string) {
    this.prefix = tapePrefix(barcode);
  }

  header(): Buffer {
    return Buffer.concat([this.prefix, Buffer.of(TapeKeyKind.HEADER)]);
  }

  object(objectId: number): Buffer {
    return this.numbered(TapeKeyKind.OBJECT, objectId);
  }

  filemark(fileNumber: number): Buffer {
    return this.numbered(TapeKeyKind.FILEMARK, fileNumber);
  }

  /** Bounds of the object entries from `objectId` on: [gte, lt). */
  objectsFrom(objectId: number): { gte: Buffer; lt: Buffer } {
    return { gte: this.object(objectId), lt: Buffer.concat([this.prefix, Buffer.of(TapeKeyKind.OBJECT + 1)]) };
  }

  /** Bounds of the filemark index from `fileNumber` on: [gte, lt). */
  filemarksFrom(fileNumber: number): { gte: Buffer; lt: Buffer } {
    return { gte: this.filemark(fileNumber), lt: Buffer.concat([this.prefix, Buffer.of(TapeKeyKind.FILEMARK + 1)]) };
  }

  /** Bounds of every key of the tape: [gte, lt). */
  range(): { gte: Buffer; lt: Buffer } {
    return { gte: this.prefix, lt: Buffer.concat([this.prefix, Buffer.of(0xff)]) };
  }

  private numbered(kind: number, n: number): Buffer {
    const key = Buffer.allocUnsafe(this.prefix.length + 9);
    this.prefix.copy(key, 0);
    key[this.prefix.length] = kind;
    key.writeBigUInt64BE(BigInt(n), this.prefix.length + 1);
    return key;
  }
}

/** Where an object starts: its frame in the tape's data file, the record bytes and filemarks
 *  before it. A filemark is an entry with `lengthBytes` 0 (SSC records are never empty). */
export interface ObjectEntry {
  /** Offset of the object's frame in the data file (tape-frame.ts). */
  fileOffsetBytes: number;
  /** Record bytes between BOP and this object. */
  bytesBefore: number;
  /** Filemarks between BOP and this object (its logical file identifier). */
  fileNumber: number;
  lengthBytes: number;
}

const OBJECT_ENTRY_LENGTH = 8 + 8 + 4 + 4;

export function encodeObjectEntry(entry: ObjectEntry): Buffer {
  const buf = Buffer.allocUnsafe(OBJECT_ENTRY_LENGTH);
  buf.writeBigUInt64BE(BigInt(entry.bytesBefore), 0);
  buf.writeUInt32BE(entry.fileNumber, 8);
  buf.writeUInt32BE(entry.lengthBytes, 12);
  buf.writeBigUInt64BE(BigInt(entry.fileOffsetBytes), 16);
  return buf;
}

export function decodeObjectEntry(buf: Buffer): ObjectEntry {
  if (buf.length !== OBJECT_ENTRY_LENGTH) throw new RangeError(`bad tape object entry ${buf.toString('hex')}`);
  return {
    bytesBefore: Number(buf.readBigUInt64BE(0)),
    fileNumber: buf.readUInt32BE(8),
    lengthBytes: buf.readUInt32BE(12),
    fileOffsetBytes: Number(buf.readBigUInt64BE(16)),
  };
}

export function encodeObjectId(objectId: number): Buffer {
  const buf = Buffer.allocUnsafe(8);
  buf.writeBigUInt64BE(BigInt(objectId), 0);
  return buf;
}

export function decodeObjectId(buf: Buffer): number {
  if (buf.length !== 8) throw new RangeError(`bad tape filemark entry ${buf.toString('hex')}`);
  return Number(buf.readBigUInt64BE(0));
}
