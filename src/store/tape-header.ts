// The header record of one tape (tape-keys.ts): identity, capacity and where the index ends. It is
// written in the same Level batch as the object entries it covers, so the indexed EOD moves
// atomically with them; entries at or beyond EOD are ignored (tape-keys.ts). The index may lag
// the data file (tape-medium.ts): objects framed beyond `dataEndBytes` with the header's
// `generation` are recovered when the tape is opened (tape-recovery.ts).

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

export function encodeTapeHeader(header: TapeHeader): Buffer {
  return Buffer.from(JSON.stringify(header), 'utf8');
}

export function decodeTapeHeader(buf: Buffer): TapeHeader {
  let parsed: unknown;
  try {
    parsed = JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new TapeStoreError('TAPE_CORRUPT', 'tape header is not JSON', { cause: err });
  }
  const h = parsed as Partial<TapeHeader>;
  const counts = [
    h.capacityBytes,
    h.earlyWarningBytes,
    h.eodObjectId,
    h.filemarkCount,
    h.usedBytes,
    h.dataEndBytes,
    h.generation,
  ];
  if (
    typeof h.barcode !== 'string' ||
    typeof h.worm !== 'boolean' ||
    typeof h.writeProtected !== 'boolean' ||
    !counts.every((n) => Number.isSafeInteger(n) && (n as number) >= 0)
  ) {
    throw new TapeStoreError('TAPE_CORRUPT', `tape header has missing or invalid fields: ${buf.toString('utf8')}`);
  }
  return h as TapeHeader;
}
