// The tape catalog in the gateway's Level database: one JSON record per barcode ever created
// (deleted tapes keep a DELETED record, so barcodes are never reused), including where the tape
// is in the library, so a restart puts every cartridge back in its element.
//
//   0x05 TAPE_CATALOG | barcode (ASCII)   -> TapeRecord JSON
//
// Key space 0x05 extends keys.ts (0x01 blocks, 0x02 volume catalog, 0x03 tape media, 0x04 upload
// queue).

import { z } from 'zod';
import type { Database } from './database.js';
import { encodeStoredJson, parseStoredJson } from './stored-json.js';

export const TAPE_CATALOG_KEY_SPACE = 0x05;

/** Where a tape is in the library. */
const tapeLocationSchema = z.object({
  /** Element address (the changer personality's map). */
  address: z.int().nonnegative(),
  /** SVALID source: the element it was last moved from. */
  sourceAddress: z.int().nonnegative().optional(),
  /** Import/export element: placed by an operator (created there), not by the transport. */
  placedByOperator: z.boolean().optional(),
});
export type TapeLocation = z.infer<typeof tapeLocationSchema>;

export const tapeRecordSchema = z.object({
  barcode: z.string().min(1),
  /** AWS-spelled status (src/gateway/tape-status.ts). */
  status: z.string().min(1),
  sizeBytes: z.int().nonnegative(),
  worm: z.boolean(),
  poolId: z.string().optional(),
  /** ISO 8601 */
  createdAt: z.string(),
  /** null when the tape is not in the library (exported, archived, deleted). */
  location: tapeLocationSchema.nullable(),
});
export type TapeRecord = z.infer<typeof tapeRecordSchema>;

export function tapeCatalogKey(barcode: string): Buffer {
  return Buffer.concat([Buffer.of(TAPE_CATALOG_KEY_SPACE), Buffer.from(barcode, 'ascii')]);
}

function tapeCatalogRange(): { gte: Buffer; lt: Buffer } {
  return { gte: Buffer.of(TAPE_CATALOG_KEY_SPACE), lt: Buffer.of(TAPE_CATALOG_KEY_SPACE + 1) };
}

export async function listTapeRecords(db: Database): Promise<TapeRecord[]> {
  const records: TapeRecord[] = [];
  for await (const [key, value] of db.level.iterator(tapeCatalogRange())) {
    records.push(parseStoredJson(tapeRecordSchema, value, `tape catalog record ${key.subarray(1).toString('ascii')}`));
  }
  return records;
}

/** Durable when it resolves; all records in one synced batch. */
export async function putTapeRecords(db: Database, records: readonly TapeRecord[]): Promise<void> {
  await db.groupCommit.commit(
    records.map((r) => ({ type: 'put' as const, key: tapeCatalogKey(r.barcode), value: encodeStoredJson(r) })),
  );
}
