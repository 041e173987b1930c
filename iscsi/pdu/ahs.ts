// Additional Header Segments (RFC 7143 11.2.2): AHSLength(2) AHSType(1) AHS-Specific(1..) padding.
// AHSLength counts the bytes after AHSType, i.e. the AHS-Specific byte and the data, without padding.

import { IscsiError } from '../errors.js';
import { RejectReason } from './types.js';

/** RFC 7143 11.2.2.1 AHSType codes. */
export const AhsType = {
  EXTENDED_CDB: 1,
  BIDIRECTIONAL_READ_DATA_LENGTH: 2,
} as const;

/** One AHS as found in a PDU; `body` is the AHS-specific data after the reserved byte. */
export interface AhsEntry {
  type: number;
  body: Buffer;
}

const AHS_HEADER_LENGTH = 4;

/** Splits a raw AHS area into its segments; IscsiError (invalid PDU field) if malformed. */
export function parseAhs(ahs: Buffer): AhsEntry[] {
  const entries: AhsEntry[] = [];
  let offset = 0;
  while (offset < ahs.length) {
    if (offset + AHS_HEADER_LENGTH > ahs.length) throw invalidAhs('truncated AHS header');
    const ahsLength = ahs.readUInt16BE(offset);
    const type = ahs[offset + 2]!;
    if (ahsLength === 0) throw invalidAhs('AHSLength 0');
    const paddedLength = (3 + ahsLength + 3) & ~3;
    if (offset + paddedLength > ahs.length) throw invalidAhs('AHS runs past TotalAHSLength');
    entries.push({ type, body: ahs.subarray(offset + AHS_HEADER_LENGTH, offset + 3 + ahsLength) });
    offset += paddedLength;
  }
  return entries;
}

/**
 * RFC 7143 11.2.2.3 Extended CDB AHS for a CDB longer than 16 bytes: carries bytes 16.. of the CDB
 * (the BHS carries the first 16). AHSLength = CDB length - 15.
 */
export function extendedCdbAhs(cdb: Buffer): Buffer {
  if (cdb.length <= 16) return Buffer.alloc(0);
  const ahsLength = cdb.length - 15;
  const out = Buffer.alloc((3 + ahsLength + 3) & ~3);
  out.writeUInt16BE(ahsLength, 0);
  out[2] = AhsType.EXTENDED_CDB;
  cdb.copy(out, AHS_HEADER_LENGTH, 16);
  return out;
}

function invalidAhs(message: string): IscsiError {
  return new IscsiError('ISCSI_INVALID_PDU_FIELD', message, {
    rejectReason: RejectReason.INVALID_PDU_FIELD,
  });
}
