// `tapes/<barcode>/index.json` (docs/object-layout.md "Tapes"): a tape's map of data objects, and
// the copy of the last one put that Level keeps (key space 0x08, tape-object-layout.ts) so an
// upload resumes after a restart.

import { z } from 'zod';
import type { Database } from './database.js';
import { encodeStoredJson, parseStoredJson } from './stored-json.js';
import { FRAME_HEADER_BYTES } from './tape-frame.js';
import type { TapeHeader } from './tape-header.js';
import { TAPE_UPLOAD_KEY_SPACE, tapeDataObjectKey, tapeIndexKey } from './tape-object-layout.js';

const count = z.int().nonnegative();

/** One data object: frames of objects firstObjectId .. firstObjectId + objectCount - 1. */
const tapeDataObjectSchema = z.object({
  key: z.string().min(1),
  firstObjectId: count,
  objectCount: z.int().positive(),
  sizeBytes: z.int().positive(),
  /** SHA-256 of the body, hex (also in the key). */
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits'),
  /** Object ids of the filemarks in it. */
  filemarks: z.array(count),
  /** Frame generation of its last object: when the frame at that id in the data file has another
   *  generation, the tape was truncated at or before it and this object is stale. */
  lastGeneration: count,
});
export type TapeDataObject = z.infer<typeof tapeDataObjectSchema>;

const tapeObjectIndexSchema = z
  .object({
    format: z.literal(1),
    barcode: z.string().min(1),
    capacityBytes: count,
    worm: z.boolean(),
    writeProtected: z.boolean(),
    status: z.string().min(1),
    poolId: z.string().optional(),
    /** The tape header's generation when this index was made (a later one: check the data objects). */
    generation: count,
    /** Objects (records and filemarks) in the data objects; EOD of the uploaded tape. */
    eodObjectId: count,
    /** Record bytes in the data objects. */
    usedBytes: count,
    /** Object ids of every filemark, ascending. */
    filemarks: z.array(count),
    dataObjects: z.array(tapeDataObjectSchema),
  })
  .superRefine((index, ctx) => {
    index.dataObjects.forEach((object, i) => {
      if (object.key !== tapeDataObjectKey(index.barcode, object.firstObjectId, object.sha256)) {
        ctx.addIssue({ code: 'custom', path: ['dataObjects', i, 'key'], message: 'is not the key of this tape, first object id and SHA-256' });
      }
    });
  });
export type TapeObjectIndex = z.infer<typeof tapeObjectIndexSchema>;

/** The last object id a data object holds. */
export function lastObjectId(object: TapeDataObject): number {
  return object.firstObjectId + object.objectCount - 1;
}

/** The index of a tape whose header is `header`, made of `dataObjects` (from object 0 on). */
export function buildTapeObjectIndex(
  header: TapeHeader,
  dataObjects: TapeDataObject[],
  status: string,
  poolId: string | undefined,
): TapeObjectIndex {
  return {
    format: 1,
    barcode: header.barcode,
    generation: header.generation,
    capacityBytes: header.capacityBytes,
    worm: header.worm,
    writeProtected: header.writeProtected,
    status,
    ...(poolId !== undefined ? { poolId } : {}),
    eodObjectId: dataObjects.length === 0 ? 0 : lastObjectId(dataObjects.at(-1)!) + 1,
    usedBytes: dataObjects.reduce((sum, o) => sum + o.sizeBytes - FRAME_HEADER_BYTES * o.objectCount, 0),
    filemarks: dataObjects.flatMap((o) => o.filemarks),
    dataObjects,
  };
}

/** The index covers the tape as it is (a load without writes changes only the generation). */
export function tapeObjectIndexCovers(index: TapeObjectIndex, header: TapeHeader, status: string | undefined, poolId: string | undefined): boolean {
  return (
    index.eodObjectId === header.eodObjectId &&
    index.usedBytes === header.usedBytes &&
    index.filemarks.length === header.filemarkCount &&
    index.writeProtected === header.writeProtected &&
    index.status === status &&
    index.poolId === poolId
  );
}

export function encodeTapeObjectIndex(index: TapeObjectIndex): Buffer {
  return encodeStoredJson(index);
}

/** index.json of tape `barcode` (a body naming another tape is corrupt too). */
export function parseTapeObjectIndex(body: Buffer, barcode: string): TapeObjectIndex {
  return parseIndex(body, barcode, tapeIndexKey(barcode));
}

function parseIndex(body: Buffer, barcode: string, what: string): TapeObjectIndex {
  const schema = tapeObjectIndexSchema.refine((index) => index.barcode === barcode, { path: ['barcode'], message: `must be ${barcode}` });
  return parseStoredJson(schema, body, what);
}

function uploadKey(barcode: string): Buffer {
  return Buffer.concat([Buffer.of(TAPE_UPLOAD_KEY_SPACE), Buffer.from(barcode, 'ascii')]);
}

/** The index last uploaded for a tape, or undefined. */
export async function getUploadedTapeIndex(db: Database, barcode: string): Promise<TapeObjectIndex | undefined> {
  const value = await db.level.get(uploadKey(barcode));
  return value === undefined ? undefined : parseIndex(value, barcode, `uploaded tape index record ${barcode}`);
}

/** Records (durably) that `index` is index.json in the object store. */
export async function putUploadedTapeIndex(db: Database, index: TapeObjectIndex): Promise<void> {
  await db.groupCommit.commit([{ type: 'put', key: uploadKey(index.barcode), value: encodeTapeObjectIndex(index) }]);
}
