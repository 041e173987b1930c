// The tape uploader: copies every tape's records and filemarks to the object store (layout:
// src/store/tape-object-layout.ts, docs/object-layout.md "Tapes") behind the WRITE path, and keeps
// `tapes/catalog.json` current, so a gateway with an empty cache can rebuild the library from the
// bucket alone (tape-object-recovery.ts).
//
// A tape is uploaded while it rests in a slot (not open in a drive, not being archived): its data
// file does not change then, and closing it (unload: MOVE MEDIUM drive -> slot) triggers a pass,
// as do inventory changes and a sweep every 30 s. A pass resumes from what the last uploaded index covers: an uploaded data
// object stays valid while the frame at its last object id still carries the generation it was
// uploaded with (a truncation starts a new generation, so every frame written after it differs);
// from the first stale one on, objects are re-read from the data file and uploaded again. The
// index is put only after its data objects are, and recorded in Level only after it is put.
//
// Reads of the data file happen inside the library's exclusive section (no MOVE MEDIUM meanwhile),
// one data object at a time; uploads happen outside it. Before the index is put, every data object
// is checked against the data file again, under the lock.

import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import type { Logger } from '../../iscsi/log.js';
import type { ObjectStore } from '../cloud/object-store.js';
import type { Database } from '../store/database.js';
import { decodeFrameHeader, FRAME_HEADER_BYTES, recordChecksum } from '../store/tape-frame.js';
import type { TapeHeader } from '../store/tape-header.js';
import { decodeObjectEntry, TapeKeys } from '../store/tape-keys.js';
import type { TapeMediumStore } from '../store/tape-medium-store.js';
import {
  getUploadedTapeIndex,
  parseTapeObjectIndex,
  putUploadedTapeIndex,
  TAPE_CATALOG_OBJECT_KEY,
  TAPE_DATA_OBJECT_TARGET_BYTES,
  tapeDataObjectKey,
  tapeIndexKey,
  type TapeCatalogObject,
  type TapeDataObject,
  type TapeObjectIndex,
} from '../store/tape-object-layout.js';
import type { TapeCatalog } from './tape-catalog.js';
import type { TapeLibrary } from './tape-library.js';

/** Without an inventory change, tapes are looked at this often (e.g. after a failed upload). */
const SWEEP_INTERVAL_MS = 30_000;

export interface TapeUploaderOptions {
  db: Database;
  objectStore: ObjectStore;
  library: TapeLibrary;
  catalog: TapeCatalog;
  media: TapeMediumStore;
  log: Logger;
  sweepIntervalMs?: number;
}

export class TapeUploader {
  readonly #db: Database;
  readonly #store: ObjectStore;
  readonly #library: TapeLibrary;
  readonly #catalog: TapeCatalog;
  readonly #media: TapeMediumStore;
  readonly #log: Logger;
  readonly #sweepIntervalMs: number;
  #timer: NodeJS.Timeout | null = null;
  #unsubscribe: Array<() => void> = [];
  #running: Promise<void> | null = null;
  #again = false;
  #stopped = false;
  /** The body last put as tapes/catalog.json in this process. */
  #lastCatalogBody: string | null = null;

  constructor(opts: TapeUploaderOptions) {
    this.#db = opts.db;
    this.#store = opts.objectStore;
    this.#library = opts.library;
    this.#catalog = opts.catalog;
    this.#media = opts.media;
    this.#log = opts.log;
    this.#sweepIntervalMs = opts.sweepIntervalMs ?? SWEEP_INTERVAL_MS;
  }

  start(): void {
    // An unloaded tape rests: upload it. Inventory changes (tapes created, removed) touch the catalog.
    this.#unsubscribe = [this.#media.onClosed(() => this.kick()), this.#library.onInventoryChanged(() => this.kick())];
    this.#timer = setInterval(() => this.kick(), this.#sweepIntervalMs);
    this.#timer.unref();
    this.kick();
  }

  /** Asks for a pass soon (one runs at a time; a kick during a pass runs another after it). */
  kick(): void {
    if (this.#stopped) return;
    if (this.#running !== null) {
      this.#again = true;
      return;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#pass();
      } while (this.#again && !this.#stopped);
    })().finally(() => {
      this.#running = null;
    });
  }

  /** Stops after the current data object; nothing half-done is recorded. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    if (this.#timer !== null) clearInterval(this.#timer);
    await this.#running;
  }

  async #pass(): Promise<void> {
    for (const record of this.#catalog.list()) {
      if (this.#stopped) return;
      if (record.location === null) continue;
      try {
        await this.#uploadTape(record.barcode);
      } catch (err) {
        this.#log.warn('tape upload failed; retried later', { barcode: record.barcode, err });
      }
    }
    try {
      await this.#uploadCatalog();
    } catch (err) {
      this.#log.warn('tape catalog upload failed; retried later', { err });
    }
  }

  async #uploadCatalog(): Promise<void> {
    const catalog: TapeCatalogObject = {
      format: 1,
      tapes: this.#catalog
        .list()
        .filter((r) => r.location !== null)
        .map((r) => ({
          barcode: r.barcode,
          status: r.status,
          sizeBytes: r.sizeBytes,
          worm: r.worm,
          ...(r.poolId !== undefined ? { poolId: r.poolId } : {}),
          createdAt: r.createdAt,
          // A tape in a drive goes back to the slot it came from.
          address: r.location!.sourceAddress !== undefined && this.#library.elementType(r.location!.address) === 'data-transfer'
            ? r.location!.sourceAddress
            : r.location!.address,
        })),
    };
    const body = JSON.stringify(catalog);
    if (body === this.#lastCatalogBody) return;
    await this.#store.put(TAPE_CATALOG_OBJECT_KEY, Buffer.from(body));
    this.#lastCatalogBody = body;
  }

  /** Brings index.json of one resting tape up to date with its data file. */
  async #uploadTape(barcode: string): Promise<void> {
    const uploaded = await getUploadedTapeIndex(this.#db, barcode);
    const start = await this.#library.exclusive(async () => {
      if (this.#media.isOpen(barcode)) return null;
      const header = await this.#media.header(barcode);
      if (header === undefined) return null;
      const record = this.#catalog.get(barcode);
      const sameState = uploaded !== undefined && isCurrent(uploaded, header, record?.status, record?.poolId);
      if (sameState && uploaded.generation === header.generation) return null;
      const kept = await this.#validPrefix(header, uploaded?.dataObjects ?? []);
      if (sameState && kept.length === uploaded.dataObjects.length) {
        // Loaded and unloaded without writes: only the generation moved.
        await putUploadedTapeIndex(this.#db, { ...uploaded, generation: header.generation });
        return null;
      }
      return { header, kept };
    });
    if (start === null) return;
    const dataObjects = [...start.kept];
    let next = dataObjects.length === 0 ? 0 : lastObjectId(dataObjects.at(-1)!) + 1;
    while (next < start.header.eodObjectId) {
      if (this.#stopped) return;
      const chunk = await this.#library.exclusive(async () => {
        const header = await this.#media.header(barcode);
        if (this.#media.isOpen(barcode) || header === undefined || header.generation !== start.header.generation) return null;
        return this.#readDataObject(header, next);
      });
      if (chunk === null) return; // the tape moved on; the next pass starts over from the index
      await this.#store.put(chunk.object.key, chunk.body, { checksumSha256: chunk.sha256Base64 });
      dataObjects.push(chunk.object);
      next = lastObjectId(chunk.object) + 1;
    }
    const index = await this.#library.exclusive(async () => {
      const header = await this.#media.header(barcode);
      if (this.#media.isOpen(barcode) || header === undefined || header.generation !== start.header.generation) return null;
      if ((await this.#validPrefix(header, dataObjects)).length !== dataObjects.length) return null;
      const record = this.#catalog.get(barcode);
      return buildIndex(header, dataObjects, record?.status ?? 'AVAILABLE', record?.poolId);
    });
    if (index === null) return;
    const replaced =
      uploaded === undefined && (await this.#store.head(tapeIndexKey(barcode))) !== null
        ? parseTapeObjectIndex(await this.#store.get(tapeIndexKey(barcode)))
        : undefined;
    await this.#store.put(tapeIndexKey(barcode), Buffer.from(JSON.stringify(index)));
    await putUploadedTapeIndex(this.#db, index);
    // Without a recorded upload (a gateway rebuilt from the bucket), the index this one replaced.
    const previous = uploaded ?? replaced;
    const referenced = new Set(index.dataObjects.map((o) => o.key));
    const stale = (previous?.dataObjects ?? []).map((o) => o.key).filter((key) => !referenced.has(key));
    if (stale.length > 0) await this.#store.deleteMany(stale);
    this.#log.debug('tape uploaded', { barcode, eodObjectId: index.eodObjectId, dataObjects: index.dataObjects.length });
  }

  /** The leading data objects whose frames are still the tape's (see the file comment). */
  async #validPrefix(header: TapeHeader, dataObjects: readonly TapeDataObject[]): Promise<TapeDataObject[]> {
    if (dataObjects.length === 0) return [];
    const keys = new TapeKeys(header.barcode);
    const file = await open(this.#media.dataFilePath(header.barcode), 'r');
    try {
      const kept: TapeDataObject[] = [];
      for (const object of dataObjects) {
        const last = lastObjectId(object);
        if (last >= header.eodObjectId) break;
        const entry = await this.#db.level.get(keys.object(last));
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
   *  filemark or EOD. */
  async #readDataObject(
    header: TapeHeader,
    firstObjectId: number,
  ): Promise<{ object: TapeDataObject; body: Buffer; sha256Base64: string }> {
    const keys = new TapeKeys(header.barcode);
    const entry = await this.#db.level.get(keys.object(firstObjectId));
    if (entry === undefined) throw new Error(`tape ${header.barcode}: object ${firstObjectId} before EOD is missing`);
    let offsetBytes = decodeObjectEntry(entry).fileOffsetBytes;
    const file = await open(this.#media.dataFilePath(header.barcode), 'r');
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
          throw new Error(`tape ${header.barcode}: no valid frame for object ${objectId} at ${offsetBytes}`);
        }
        if (sizeBytes > 0 && sizeBytes + FRAME_HEADER_BYTES + frame.lengthBytes > TAPE_DATA_OBJECT_TARGET_BYTES) break;
        parts.push(frameBytes);
        if (frame.kind === 'record') {
          const data = await readExactly(file, offsetBytes + FRAME_HEADER_BYTES, frame.lengthBytes);
          if (recordChecksum(data) !== frame.dataCrc) throw new Error(`tape ${header.barcode}: object ${objectId} fails its CRC`);
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
}

function lastObjectId(object: TapeDataObject): number {
  return object.firstObjectId + object.objectCount - 1;
}

/** The uploaded index covers the tape as it is (a load without writes changes only the generation). */
function isCurrent(index: TapeObjectIndex, header: TapeHeader, status: string | undefined, poolId: string | undefined): boolean {
  return (
    index.eodObjectId === header.eodObjectId &&
    index.usedBytes === header.usedBytes &&
    index.filemarks.length === header.filemarkCount &&
    index.writeProtected === header.writeProtected &&
    index.status === status &&
    index.poolId === poolId
  );
}

function buildIndex(header: TapeHeader, dataObjects: TapeDataObject[], status: string, poolId: string | undefined): TapeObjectIndex {
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

async function readExactly(file: FileHandle, offsetBytes: number, lengthBytes: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(lengthBytes);
  let done = 0;
  while (done < lengthBytes) {
    const { bytesRead } = await file.read(buf, done, lengthBytes - done, offsetBytes + done);
    if (bytesRead === 0) throw new Error(`data file ends at ${offsetBytes + done}, inside a frame`);
    done += bytesRead;
  }
  return buf;
}
