// CDB field primitives shared by every command set's decoders (SPC-4 4.2 "The command descriptor
// block"). Decoders in spc.ts / sbc.ts use these to build typed command objects, throwing
// INVALID FIELD IN CDB with a field pointer for anything they reject.

import { Sense, SenseError } from './sense.js';

/** SPC-4 4.2.5.1 table 4: the CDB length implied by the opcode's GROUP CODE (0 = vendor/reserved). */
export function cdbLengthForOpcode(opcode: number): number {
  switch (opcode >> 5) {
    case 0:
      return 6;
    case 1:
    case 2:
      return 10;
    case 4:
      return 16;
    case 5:
      return 12;
    default:
      return 0;
  }
}

/** INVALID FIELD IN CDB pointing at `byte` (and `bit`, when one bit is at fault). */
export function invalidFieldInCdb(byte: number, bit?: number): SenseError {
  return new SenseError(Sense.INVALID_FIELD_IN_CDB, { fieldPointer: byte, bitPointer: bit });
}

/** INVALID FIELD IN PARAMETER LIST pointing at `byte` of the parameter data. */
export function invalidFieldInParameterList(byte: number, bit?: number): SenseError {
  return new SenseError(Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: byte, bitPointer: bit });
}

/** Reads an unsigned 64-bit big-endian field as a Number. Values above 2^53 lose precision but
 *  stay above any real capacity, so range checks still reject them. */
export function readUInt64(buf: Buffer, offset: number): number {
  return buf.readUInt32BE(offset) * 0x1_0000_0000 + buf.readUInt32BE(offset + 4);
}

export function writeUInt64(buf: Buffer, value: number, offset: number): void {
  buf.writeUInt32BE(Math.floor(value / 0x1_0000_0000) >>> 0, offset);
  buf.writeUInt32BE(value >>> 0, offset + 4);
}

/** Returns `data` cut to an ALLOCATION LENGTH (SPC-4 4.2.5.6): the device never sends more. */
export function truncateToAllocationLength(data: Buffer, allocationLength: number): Buffer {
  return data.length > allocationLength ? data.subarray(0, allocationLength) : data;
}

/** Pads an ASCII string with spaces (SPC-4 4.4.1) to exactly `length` bytes. */
export function asciiField(text: string, length: number): Buffer {
  const buf = Buffer.alloc(length, 0x20);
  buf.write(text.replace(/[^\x20-\x7e]/g, ' ').slice(0, length), 0, 'ascii');
  return buf;
}
