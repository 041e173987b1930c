// The data objects of a tape in the object store (docs/object-layout.md "Tapes"): whole frames
// (tape-frame.ts) copied from the tape's data file, read back and checked (SHA-256, frame CRCs,
// the chain of object ids) when a tape is rebuilt from the bucket.
//
// Readers of the data file work on a closed tape (the caller holds the library's exclusive
// section) and find objects through the tape's Level index (tape-keys.ts).

import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import type { TapeMedium } from '../../iscsi/device.js';
import type { ObjectStore } from '../cloud/object-store.js';
import type { Database } from './database.js';
import { StoreError } from './store-error.js';
import { decodeFrameHeader, FRAME_HEADER_BYTES, recordChecksum } from './tape-frame.js';
import type { TapeHeader } from './tape-header.js';
import { decodeObjectEntry, TapeKeys } from './tape-keys.js';
import { lastObjectId, type TapeDataObject, type TapeObjectIndex } from './tape-object-index.js';
import { TAPE_DATA_OBJECT_TARGET_BYTES, tapeDataObjectKey } from './tape-object-layout.js';

/** A closed tape's data file and the Level index that locates its frames. */
export interface TapeDataFile {
  db: Database;
  /** TapeMediumStore.dataFilePath(barcode). */
  path: string;
}

export interface TapeDataObjectBody {
  object: TapeDataObject;
  body: Buffer;
  /** SHA-256 of the body, base64 (ObjectStore.put's checksumSha256). */
  sha256Base64: string;
}

/** The leading data objects whose frames are still the tape's: an uploaded data object stays
 *  valid while the frame at its last object id still carries the generation it was uploaded with
 *  (a truncation starts a new generation). */
export async function validTapeDataObjectPrefix(
  dataFile: TapeDataFile,
  header: TapeHeader,
  dataObjects: readonly TapeDataObject[],
): Promise<TapeDataObject[]> {
  if (dataObjects.length === 0) return [];
  const keys = new TapeKeys(header.barcode);
  const file = await open(dataFile.path, 'r');
  try {
    const kept: TapeDataObject[] = [];
    for (const object of dataObjects) {
      const last = lastObjectId(object);
      if (last >= header.eodObjectId) break;
      const entry = await dataFile.db.level.get(keys.object(last));
      if (entry === undefined) break;
      const frame = decodeFrameHeader(await readExactly(file, decodeObjectEntry(entry).fileOffsetBytes, FRAME_HEADER_BYTES));
      if (frame === null || frame.objectId !== last || frame.generation !== object.lastGeneration) break;
      kept.push(object);
    }
    return kept;
  } finally {
    await file.close();
  }
}

/** Reads whole frames from object `firstObjectId` on, checking each, up to the target size, a
 *  filemark or EOD: the next data object to upload. */
export async function readTapeDataObject(dataFile: TapeDataFile, header: TapeHeader, firstObjectId: number): Promise<TapeDataObjectBody> {
  const keys = new TapeKeys(header.barcode);
  const entry = await dataFile.db.level.get(keys.object(firstObjectId));
  if (entry === undefined) throw new StoreError('STORE_CORRUPT', `tape ${header.barcode}: object ${firstObjectId} before EOD is missing`);
  let offsetBytes = decodeObjectEntry(entry).fileOffsetBytes;
  const file = await open(dataFile.path, 'r');
  try {
    const parts: Buffer[] = [];
    const filemarks: number[] = [];
    let sizeBytes = 0;
    let objectId = firstObjectId;
    let lastGeneration = 0;
    while (objectId < header.eodObjectId) {
      const frameBytes = await readExactly(file, offsetBytes, FRAME_HEADER_BYTES);
      const frame = decodeFrameHeader(frameBytes);
      if (frame === null || frame.objectId !== objectId || frame.generation > header.generation) {
        throw new StoreError('STORE_CORRUPT', `tape ${header.barcode}: no valid frame for object ${objectId} at ${offsetBytes}`);
      }
      if (sizeBytes > 0 && sizeBytes + FRAME_HEADER_BYTES + frame.lengthBytes > TAPE_DATA_OBJECT_TARGET_BYTES) break;
      parts.push(frameBytes);
      if (frame.kind === 'record') {
        const data = await readExactly(file, offsetBytes + FRAME_HEADER_BYTES, frame.lengthBytes);
        if (recordChecksum(data) !== frame.dataCrc) throw new StoreError('STORE_CORRUPT', `tape ${header.barcode}: object ${objectId} fails its CRC`);
        parts.push(data);
      } else {
        filemarks.push(objectId);
      }
      sizeBytes += FRAME_HEADER_BYTES + frame.lengthBytes;
      offsetBytes += FRAME_HEADER_BYTES + frame.lengthBytes;
      lastGeneration = frame.generation;
      objectId++;
      if (frame.kind === 'filemark') break;
    }
    const body = Buffer.concat(parts, sizeBytes);
    const digest = createHash('sha256').update(body).digest();
    const sha256 = digest.toString('hex');
    return {
      object: {
        key: tapeDataObjectKey(header.barcode, firstObjectId, sha256),
        firstObjectId,
        objectCount: objectId - firstObjectId,
        sizeBytes,
        sha256,
        filemarks,
        lastGeneration,
      },
      body,
      sha256Base64: digest.toString('base64'),
    };
  } finally {
    await file.close();
  }
}

/** Writes the records and filemarks of every data object of `index` to `medium` (a fresh one),
 *  reading each object whole and checking its SHA-256, every frame's CRC and the object ids from
 *  0 to EOD; flushed when it resolves. Anything that does not check is STORE_CORRUPT. */
export async function restoreTapeDataObjects(
  objectStore: Pick<ObjectStore, 'get'>,
  index: TapeObjectIndex,
  medium: Pick<TapeMedium, 'writeRecord' | 'writeFilemarks' | 'flush'>,
): Promise<void> {
  const corrupt = (message: string) => new StoreError('STORE_CORRUPT', `tape ${index.barcode}: ${message}`);
  let objectId = 0;
  for (const object of index.dataObjects) {
    if (object.firstObjectId !== objectId) throw corrupt(`data object ${object.key} starts at ${object.firstObjectId}, expected ${objectId}`);
    const body = await objectStore.get(object.key);
    if (createHash('sha256').update(body).digest('hex') !== object.sha256) throw corrupt(`data object ${object.key} fails its SHA-256`);
    const writes: Array<Promise<unknown>> = [];
    let offsetBytes = 0;
    while (offsetBytes < body.length) {
      const frame = decodeFrameHeader(body.subarray(offsetBytes, offsetBytes + FRAME_HEADER_BYTES));
      if (frame === null || frame.objectId !== objectId) throw corrupt(`data object ${object.key}: no valid frame for object ${objectId}`);
      offsetBytes += FRAME_HEADER_BYTES;
      if (frame.kind === 'record') {
        const data = body.subarray(offsetBytes, offsetBytes + frame.lengthBytes);
        if (data.length !== frame.lengthBytes || recordChecksum(data) !== frame.dataCrc) {
          throw corrupt(`data object ${object.key}: object ${objectId} fails its CRC`);
        }
        writes.push(medium.writeRecord(data));
        offsetBytes += frame.lengthBytes;
      } else {
        writes.push(medium.writeFilemarks(1));
      }
      objectId++;
    }
    await Promise.all(writes);
    if (objectId !== object.firstObjectId + object.objectCount) throw corrupt(`data object ${object.key} holds ${objectId - object.firstObjectId} objects`);
  }
  if (objectId !== index.eodObjectId) throw corrupt(`the data objects end at ${objectId}, EOD is ${index.eodObjectId}`);
  await medium.flush();
}

async function readExactly(file: FileHandle, offsetBytes: number, lengthBytes: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(lengthBytes);
  let done = 0;
  while (done < lengthBytes) {
    const { bytesRead } = await file.read(buf, done, lengthBytes - done, offsetBytes + done);
    if (bytesRead === 0) throw new StoreError('STORE_CORRUPT', `data file ends at ${offsetBytes + done}, inside a frame`);
    done += bytesRead;
  }
  return buf;
}
