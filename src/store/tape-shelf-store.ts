// The virtual tape shelf (VTS) catalog in the gateway's Level database: one JSON record per tape
// that has been (or is being) archived, with its archive id, checksum manifest, pool, retention
// dates and the state of the archive or retrieval in progress — persisted after every part, so a
// gateway killed during ARCHIVING or RETRIEVING resumes where it was.
//
//   0x07 TAPE_SHELF | barcode (ASCII)   -> TapeShelfRecord JSON
//
// Key space 0x07 extends keys.ts (0x05 tape catalog, 0x06 objects, 0x10 settings).

import { z } from 'zod';
import type { ArchiveUploadState } from '../cloud/archive-store.js';
import type { Database } from './database.js';
import { encodeStoredJson, parseStoredJson } from './stored-json.js';
import { tapeArchiveManifestSchema } from './tape-archive-stream.js';

export const TAPE_SHELF_KEY_SPACE = 0x07;

const count = z.int().nonnegative();
const progressPercent = z.number().min(0).max(100);

/** The ArchiveStore's resume state (cloud/archive-store.ts); loose, so fields a store adds survive. */
const archiveUploadStateSchema: z.ZodType<ArchiveUploadState> = z.looseObject({
  kind: z.string(),
  name: z.string(),
  description: z.string(),
  partSizeBytes: z.int().positive(),
  sizeBytes: count.optional(),
  uploadId: z.string(),
  parts: z.array(z.looseObject({ index: count, sizeBytes: count, treeHash: z.string(), etag: z.string().optional() })),
});

const tapeArchiveRefSchema = z.object({
  /** ArchiveStore kind ('local', 'glacier', 's3-archive'). */
  storeKind: z.string(),
  archiveId: z.string().min(1),
  sizeBytes: count,
  sha256TreeHash: z.string(),
  partSizeBytes: z.int().positive(),
});
export type TapeArchiveRef = z.infer<typeof tapeArchiveRefSchema>;

const tapeShelfJobSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('archive'), progressPercent, upload: archiveUploadStateSchema.nullable() }),
  z.object({ kind: z.literal('retrieve'), progressPercent, tier: z.enum(['Expedited', 'Standard', 'Bulk']), jobId: z.string().nullable() }),
  z.object({ kind: z.literal('delete') }),
]);
export type TapeShelfJob = z.infer<typeof tapeShelfJobSchema>;

export const tapeShelfRecordSchema = z.object({
  barcode: z.string().min(1),
  sizeBytes: count,
  worm: z.boolean(),
  /** GLACIER, DEEP_ARCHIVE or a custom pool id. */
  poolId: z.string().min(1),
  /** The archive storage class the tape went to. */
  storageClass: z.enum(['GLACIER', 'DEEP_ARCHIVE']),
  /** ISO 8601: when the tape entered its pool. */
  poolEntryDate: z.string(),
  /** ISO 8601: when its retention lock started (first archive in a locked pool). */
  retentionStartDate: z.string().optional(),
  /** ISO 8601: CompletionTime of the archive. */
  archivedAt: z.string().optional(),
  /** ISO 8601: when it last became RETRIEVED. */
  retrievedAt: z.string().optional(),
  archive: tapeArchiveRefSchema.optional(),
  manifest: tapeArchiveManifestSchema.optional(),
  /** Work in progress, or null. */
  job: tapeShelfJobSchema.nullable(),
  /** Why the last archive or retrieval ended without succeeding (a permanent cloud error: the
   *  tape went back to AVAILABLE or ARCHIVED); cleared when an archive or retrieval succeeds. */
  lastError: z.object({ phase: z.enum(['archive', 'retrieve']), code: z.string(), message: z.string(), at: z.string() }).optional(),
});
export type TapeShelfRecord = z.infer<typeof tapeShelfRecordSchema>;

export function tapeShelfKey(barcode: string): Buffer {
  return Buffer.concat([Buffer.of(TAPE_SHELF_KEY_SPACE), Buffer.from(barcode, 'ascii')]);
}

export async function listTapeShelfRecords(db: Database): Promise<TapeShelfRecord[]> {
  const records: TapeShelfRecord[] = [];
  const range = { gte: Buffer.of(TAPE_SHELF_KEY_SPACE), lt: Buffer.of(TAPE_SHELF_KEY_SPACE + 1) };
  for await (const [key, value] of db.level.iterator(range)) {
    records.push(parseStoredJson(tapeShelfRecordSchema, value, `tape shelf record ${key.subarray(1).toString('ascii')}`));
  }
  return records;
}

/** Durable when it resolves. */
export async function putTapeShelfRecord(db: Database, record: TapeShelfRecord): Promise<void> {
  await db.groupCommit.commit([{ type: 'put', key: tapeShelfKey(record.barcode), value: encodeStoredJson(record) }]);
}
