// Tapes in the object store (docs/object-layout.md "Tapes"): keys, the JSON of a tape's index and
// of the library catalog, the body of a data object, and the uploaded state kept in Level.
//
//   tapes/catalog.json                                   the library: barcodes, sizes, statuses, slots
//   tapes/<barcode>/index.json                           the tape's map (TapeObjectIndex)
//   tapes/<barcode>/data/<firstObjectId 12 hex>-<sha256 hex>   whole frames (tape-frame.ts), ≤ ~8 MiB
//
// A data object is the tape's own frames copied from its data file: 32-byte self-checking header
// (kind, logical object id, length, CRC-32, generation) and the record bytes, so a reader checks
// every record without the index. Data objects are content-addressed: a re-upload after a
// truncation never replaces an object the current index.json refers to.
//
// Level (what was uploaded, so an upload resumes after a restart):
//   0x08 TAPE_UPLOAD | barcode (ASCII)   -> the TapeObjectIndex last put as index.json
// Key space 0x08 extends keys.ts (0x07 tape shelf, 0x10 settings).

import type { Database } from './database.js';
import { StoreError } from './store-error.js';

export const TAPE_UPLOAD_KEY_SPACE = 0x08;
export const TAPE_CATALOG_OBJECT_KEY = 'tapes/catalog.json';
/** A data object is closed before a record that would take it beyond this size, and after a filemark. */
export const TAPE_DATA_OBJECT_TARGET_BYTES = 8 * 1024 * 1024;

export function tapeIndexKey(barcode: string): string {
  return `tapes/${barcode}/index.json`;
}

export function tapeDataObjectKey(barcode: string, firstObjectId: number, sha256Hex: string): string {
  return `tapes/${barcode}/data/${firstObjectId.toString(16).padStart(12, '0')}-${sha256Hex}`;
}

/** One data object: frames of objects firstObjectId .. firstObjectId + objectCount - 1. */
export interface TapeDataObject {
  key: string;
  firstObjectId: number;
  objectCount: number;
  sizeBytes: number;
  /** SHA-256 of the body, hex (also in the key). */
  sha256: string;
  /** Object ids of the filemarks in it. */
  filemarks: number[];
  /** Frame generation of its last object: when the frame at that id in the data file has another
   *  generation, the tape was truncated at or before it and this object is stale. */
  lastGeneration: number;
}

export interface TapeObjectIndex {
  format: 1;
  barcode: string;
  capacityBytes: number;
  worm: boolean;
  writeProtected: boolean;
  status: string;
  poolId?: string;
  /** The tape header's generation when this index was made (a later one: check the data objects). */
  generation: number;
  /** Objects (records and filemarks) in the data objects; EOD of the uploaded tape. */
  eodObjectId: number;
  /** Record bytes in the data objects. */
  usedBytes: number;
  /** Object ids of every filemark, ascending. */
  filemarks: number[];
  dataObjects: TapeDataObject[];
}

export interface TapeCatalogObjectEntry {
  barcode: string;
  status: string;
  sizeBytes: number;
  worm: boolean;
  poolId?: string;
  createdAt: string;
  /** Element address of its slot (storage or import/export element). */
  address: number;
}

export interface TapeCatalogObject {
  format: 1;
  tapes: TapeCatalogObjectEntry[];
}

export function parseTapeObjectIndex(body: Buffer): TapeObjectIndex {
  const value = parseJson(body, 'tape index');
  if (value.format !== 1 || typeof value.barcode !== 'string' || !Array.isArray(value.dataObjects) || !Number.isSafeInteger(value.eodObjectId)) {
    throw new StoreError('STORE_CORRUPT', 'tape index.json has an unknown format');
  }
  return value as unknown as TapeObjectIndex;
}

export function parseTapeCatalogObject(body: Buffer): TapeCatalogObject {
  const value = parseJson(body, 'tape catalog');
  if (value.format !== 1 || !Array.isArray(value.tapes)) throw new StoreError('STORE_CORRUPT', 'tapes/catalog.json has an unknown format');
  return value as unknown as TapeCatalogObject;
}

function parseJson(body: Buffer, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    if (typeof value === 'object' && value !== null) return value as Record<string, unknown>;
  } catch (err) {
    throw new StoreError('STORE_CORRUPT', `${what} is not JSON`, { cause: err });
  }
  throw new StoreError('STORE_CORRUPT', `${what} is not a JSON object`);
}

function uploadKey(barcode: string): Buffer {
  return Buffer.concat([Buffer.of(TAPE_UPLOAD_KEY_SPACE), Buffer.from(barcode, 'ascii')]);
}

/** The index last uploaded for a tape, or undefined. */
export async function getUploadedTapeIndex(db: Database, barcode: string): Promise<TapeObjectIndex | undefined> {
  const value = await db.level.get(uploadKey(barcode));
  return value === undefined ? undefined : parseTapeObjectIndex(value);
}

/** Records (durably) that `index` is index.json in the object store. */
export async function putUploadedTapeIndex(db: Database, index: TapeObjectIndex): Promise<void> {
  await db.groupCommit.commit([{ type: 'put', key: uploadKey(index.barcode), value: Buffer.from(JSON.stringify(index)) }]);
}
