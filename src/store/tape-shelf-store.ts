// The virtual tape shelf (VTS) catalog in the gateway's Level database: one JSON record per tape
// that has been (or is being) archived, with its archive id, checksum manifest, pool, retention
// dates and the state of the archive or retrieval in progress — persisted after every part, so a
// gateway killed during ARCHIVING or RETRIEVING resumes where it was.
//
//   0x07 TAPE_SHELF | barcode (ASCII)   -> TapeShelfRecord JSON
//
// Key space 0x07 extends keys.ts (0x05 tape catalog, 0x06 objects, 0x10 settings).

import type { ArchiveUploadState, RetrievalTier } from '../cloud/archive-store.js';
import type { Database } from './database.js';
import { StoreError } from './store-error.js';

export const TAPE_SHELF_KEY_SPACE = 0x07;

/** One run of equal logical objects in a tape's archive stream: `count` records of `lengthBytes`,
 *  or `count` filemarks when lengthBytes is -1. */
export type TapeObjectRun = [lengthBytes: number, count: number];

/** What an archived tape holds, so retrieval verifies every byte and every object boundary. */
export interface TapeArchiveManifest {
  /** Version of the stream format (tape-archiver.ts). */
  format: 1;
  recordCount: number;
  filemarkCount: number;
  /** Record bytes (without the stream's framing). */
  dataBytes: number;
  /** The archive stream's size. */
  streamSizeBytes: number;
  /** Hex SHA-256 tree hash of the whole stream. */
  sha256TreeHash: string;
  /** The records and filemarks from BOP to EOD, run-length encoded. */
  runs: TapeObjectRun[];
}

export interface TapeArchiveRef {
  /** ArchiveStore kind ('local', 'glacier', 's3-archive'). */
  storeKind: string;
  archiveId: string;
  sizeBytes: number;
  sha256TreeHash: string;
  partSizeBytes: number;
}

export type TapeShelfJob =
  | { kind: 'archive'; progressPercent: number; upload: ArchiveUploadState | null }
  | { kind: 'retrieve'; progressPercent: number; tier: RetrievalTier; jobId: string | null }
  | { kind: 'delete' };

export interface TapeShelfRecord {
  barcode: string;
  sizeBytes: number;
  worm: boolean;
  /** GLACIER, DEEP_ARCHIVE or a custom pool id. */
  poolId: string;
  /** The archive storage class the tape went to. */
  storageClass: 'GLACIER' | 'DEEP_ARCHIVE';
  /** ISO 8601: when the tape entered its pool. */
  poolEntryDate: string;
  /** ISO 8601: when its retention lock started (first archive in a locked pool). */
  retentionStartDate?: string;
  /** ISO 8601: CompletionTime of the archive. */
  archivedAt?: string;
  /** ISO 8601: when it last became RETRIEVED. */
  retrievedAt?: string;
  archive?: TapeArchiveRef;
  manifest?: TapeArchiveManifest;
  /** Work in progress, or null. */
  job: TapeShelfJob | null;
}

export function tapeShelfKey(barcode: string): Buffer {
  return Buffer.concat([Buffer.of(TAPE_SHELF_KEY_SPACE), Buffer.from(barcode, 'ascii')]);
}

export async function listTapeShelfRecords(db: Database): Promise<TapeShelfRecord[]> {
  const records: TapeShelfRecord[] = [];
  const range = { gte: Buffer.of(TAPE_SHELF_KEY_SPACE), lt: Buffer.of(TAPE_SHELF_KEY_SPACE + 1) };
  for await (const value of db.level.values(range)) records.push(parseTapeShelfRecord(value));
  return records;
}

/** Durable when it resolves. */
export async function putTapeShelfRecord(db: Database, record: TapeShelfRecord): Promise<void> {
  await db.groupCommit.commit([{ type: 'put', key: tapeShelfKey(record.barcode), value: Buffer.from(JSON.stringify(record), 'utf8') }]);
}

function parseTapeShelfRecord(value: Buffer): TapeShelfRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('utf8'));
  } catch (err) {
    throw new StoreError('STORE_CORRUPT', `unreadable tape shelf record: ${String(err)}`, { cause: err });
  }
  const r = parsed as Partial<TapeShelfRecord>;
  if (typeof r.barcode !== 'string' || typeof r.poolId !== 'string' || !Number.isSafeInteger(r.sizeBytes) || r.job === undefined) {
    throw new StoreError('STORE_CORRUPT', `tape shelf record has missing fields: ${value.toString('utf8')}`);
  }
  return r as TapeShelfRecord;
}
