// The tape catalog in the gateway's Level database: one JSON record per barcode ever created
// (deleted tapes keep a DELETED record, so barcodes are never reused), including where the tape
// is in the library, so a restart puts every cartridge back in its element.
//
//   0x05 TAPE_CATALOG | barcode (ASCII)   -> TapeRecord JSON
//
// Key space 0x05 extends keys.ts (0x01 blocks, 0x02 volume catalog, 0x03 tape media, 0x04 upload
// queue).

import type { Database } from './database.js';
import { StoreError } from './store-error.js';

export const TAPE_CATALOG_KEY_SPACE = 0x05;

/** Where a tape is in the library. */
export interface TapeLocation {
  /** Element address (the changer personality's map). */
  address: number;
  /** SVALID source: the element it was last moved from. */
  sourceAddress?: number;
  /** Import/export element: placed by an operator (created there), not by the transport. */
  placedByOperator?: boolean;
}

export interface TapeRecord {
  barcode: string;
  /** AWS-spelled status (src/gateway/tape-status.ts). */
  status: string;
  sizeBytes: number;
  worm: boolean;
  poolId?: string;
  /** ISO 8601 */
  createdAt: string;
  /** null when the tape is not in the library (exported, archived, deleted). */
  location: TapeLocation | null;
}

export function tapeCatalogKey(barcode: string): Buffer {
  return Buffer.concat([Buffer.of(TAPE_CATALOG_KEY_SPACE), Buffer.from(barcode, 'ascii')]);
}

function tapeCatalogRange(): { gte: Buffer; lt: Buffer } {
  return { gte: Buffer.of(TAPE_CATALOG_KEY_SPACE), lt: Buffer.of(TAPE_CATALOG_KEY_SPACE + 1) };
}

export async function listTapeRecords(db: Database): Promise<TapeRecord[]> {
  const records: TapeRecord[] = [];
  for await (const value of db.level.values(tapeCatalogRange())) records.push(parseTapeRecord(value));
  return records;
}

/** Durable when it resolves; all records in one synced batch. */
export async function putTapeRecords(db: Database, records: readonly TapeRecord[]): Promise<void> {
  await db.groupCommit.commit(
    records.map((r) => ({ type: 'put' as const, key: tapeCatalogKey(r.barcode), value: Buffer.from(JSON.stringify(r), 'utf8') })),
  );
}

function parseTapeRecord(value: Buffer): TapeRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('utf8'));
  } catch (err) {
    throw new StoreError('STORE_CORRUPT', `unreadable tape catalog record: ${String(err)}`, { cause: err });
  }
  const r = parsed as Partial<TapeRecord>;
  if (typeof r.barcode !== 'string' || typeof r.status !== 'string' || !Number.isSafeInteger(r.sizeBytes) || typeof r.worm !== 'boolean') {
    throw new StoreError('STORE_CORRUPT', `tape catalog record has missing fields: ${value.toString('utf8')}`);
  }
  return r as TapeRecord;
}
