// Assertions on SCSI responses: CHECK CONDITION with an exact sense key / ASC / ASCQ, decoded
// from fixed (70h) or descriptor (72h) format sense data.

import type { Test } from 'tap';
import type { ScsiResponse } from '../../iscsi/device.js';
import { ScsiStatus } from '../../iscsi/device.js';
import type { SenseCode } from '../../iscsi/scsi/sense.js';

export interface DecodedSense {
  responseCode: number;
  key: number;
  asc: number;
  ascq: number;
  /** INFORMATION, when VALID. */
  information?: number;
  /** Sense-key specific field pointer, when SKSV. */
  fieldPointer?: number;
  bitPointer?: number;
  commandField?: boolean;
}

export function decodeSense(sense: Buffer): DecodedSense {
  const responseCode = sense[0]! & 0x7f;
  const out: DecodedSense = { responseCode, key: 0, asc: 0, ascq: 0 };
  let sks: Buffer | undefined;
  if (responseCode === 0x70 || responseCode === 0x71) {
    out.key = sense[2]! & 0x0f;
    out.asc = sense[12]!;
    out.ascq = sense[13]!;
    if (sense[0]! & 0x80) out.information = sense.readUInt32BE(3);
    sks = sense.subarray(15, 18);
  } else {
    out.key = sense[1]! & 0x0f;
    out.asc = sense[2]!;
    out.ascq = sense[3]!;
    for (let off = 8; off + 2 <= sense.length; off += 2 + sense[off + 1]!) {
      if (sense[off] === 0x00 && sense[off + 2]! & 0x80) out.information = Number(sense.readBigUInt64BE(off + 4));
      if (sense[off] === 0x02) sks = sense.subarray(off + 4, off + 7);
    }
  }
  if (sks && sks.length === 3 && sks[0]! & 0x80) {
    out.commandField = (sks[0]! & 0x40) !== 0;
    out.fieldPointer = sks.readUInt16BE(1);
    if (sks[0]! & 0x08) out.bitPointer = sks[0]! & 0x07;
  }
  return out;
}

const hex = (n: number): string => n.toString(16).padStart(2, '0');

/** Asserts CHECK CONDITION with `expected` key/ASC/ASCQ; returns the decoded sense. */
export function expectSense(
  t: Test,
  response: ScsiResponse,
  expected: SenseCode,
  extra: { fieldPointer?: number; bitPointer?: number; information?: number } = {},
): DecodedSense | undefined {
  t.equal(response.status, ScsiStatus.CHECK_CONDITION, 'status CHECK CONDITION');
  if (!response.sense) {
    t.fail('no sense data');
    return undefined;
  }
  const d = decodeSense(response.sense);
  t.equal(`${hex(d.key)}/${hex(d.asc)}/${hex(d.ascq)}`, `${hex(expected.key)}/${hex(expected.asc)}/${hex(expected.ascq)}`, 'sense key/ASC/ASCQ');
  if (extra.fieldPointer !== undefined) t.equal(d.fieldPointer, extra.fieldPointer, 'field pointer');
  if (extra.bitPointer !== undefined) t.equal(d.bitPointer, extra.bitPointer, 'bit pointer');
  if (extra.information !== undefined) t.equal(d.information, extra.information, 'INFORMATION');
  return d;
}

export function expectGood(t: Test, response: ScsiResponse): void {
  if (response.status !== ScsiStatus.GOOD && response.sense) {
    const d = decodeSense(response.sense);
    t.fail(`expected GOOD, got status ${hex(response.status)} sense ${hex(d.key)}/${hex(d.asc)}/${hex(d.ascq)}`);
    return;
  }
  t.equal(response.status, ScsiStatus.GOOD, 'status GOOD');
}

/** "GOOD", or the sense as key/ASC/ASCQ in hex ("7/27/07"), for e2e assertions and messages. */
export function senseText(result: { status: number; sense: Buffer }): string {
  if (result.status === 0) return 'GOOD';
  const d = decodeSense(result.sense);
  return `${d.key.toString(16)}/${d.asc.toString(16).padStart(2, '0')}/${d.ascq.toString(16).padStart(2, '0')}`;
}
