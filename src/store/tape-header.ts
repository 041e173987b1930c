// The header record of one tape (tape-keys.ts): identity, capacity and where the index ends. It is
// written in the same Level batch as the object entries it covers, so the indexed EOD moves
// atomically with them; entries at or beyond EOD are ignored (tape-keys.ts). The index may lag
// the data file (tape-medium.ts): objects framed beyond `dataEndBytes` with the header's
// `generation` are recovered when the tape is opened (tape-recovery.ts).

import { z } from 'zod';
import { parseStoredJson } from './stored-json.js';
import { TapeStoreError } from './tape-error.js';

export interface TapeHeader {
  barcode: string;
  capacityBytes: number;
  /** Early warning is reached when fewer than this many bytes remain. */
  earlyWarningBytes: number;
  worm: boolean;
  writeProtected: boolean;
  /** Logical object identifier of EOD = records + filemarks on the tape. */
  eodObjectId: number;
  /** Filemarks before EOD. */
  filemarkCount: number;
  /** Record bytes before EOD. */
  usedBytes: number;
  /** Where EOD's frame would start in the data file (the framed length of the objects before EOD). */
  dataEndBytes: number;
  /** Frames of this generation at or beyond `dataEndBytes` are valid (tape-frame.ts). */
  generation: number;
}

const count = z.int().nonnegative();

/** Loose: fields a newer header carries pass through unchanged. */
const tapeHeaderSchema: z.ZodType<TapeHeader> = z.looseObject({
  barcode: z.string(),
  capacityBytes: count,
  earlyWarningBytes: count,
  worm: z.boolean(),
  writeProtected: z.boolean(),
  eodObjectId: count,
  filemarkCount: count,
  usedBytes: count,
  dataEndBytes: count,
  generation: count,
});

export function encodeTapeHeader(header: TapeHeader): Buffer {
  return Buffer.from(JSON.stringify(header), 'utf8');
}

/** `barcode` (the key's) names the tape in the error. */
export function decodeTapeHeader(buf: Buffer, barcode?: string): TapeHeader {
  const what = barcode === undefined ? 'tape header' : `tape header of ${barcode}`;
  return parseStoredJson(tapeHeaderSchema, buf, what, (message, cause) => new TapeStoreError('TAPE_CORRUPT', message, { cause }));
}
