// The tape uploader: copies every tape's records and filemarks to the object store (layout:
// src/store/tape-object-layout.ts and its readers/writers, docs/object-layout.md "Tapes") behind
// the WRITE path, and keeps
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

import type { Logger } from '../../iscsi/log.js';
import { CloudError } from '../cloud/cloud-error.js';
import { encodeTapeShelfObject, TAPE_SHELF_OBJECT_KEY } from '../store/tape-shelf-object.js';
import type { TapeShelfRecord } from '../store/tape-shelf-store.js';
import type { ObjectStore } from '../cloud/object-store.js';
import type { Database } from '../store/database.js';
import { encodeTapeCatalogObject } from '../store/tape-catalog-object.js';
import { readTapeDataObject, validTapeDataObjectPrefix, type TapeDataFile } from '../store/tape-data-object.js';
import type { TapeMediumStore } from '../store/tape-medium-store.js';
import {
  buildTapeObjectIndex,
  encodeTapeObjectIndex,
  getUploadedTapeIndex,
  lastObjectId,
  parseTapeObjectIndex,
  putUploadedTapeIndex,
  tapeObjectIndexCovers,
} from '../store/tape-object-index.js';
import { TAPE_CATALOG_OBJECT_KEY, tapeIndexKey } from '../store/tape-object-layout.js';
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
  /** The virtual tape shelf: its archived tapes are published as tapes/shelf.json. */
  shelf?: { list(): TapeShelfRecord[] };
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
  #lastCatalogBody: Buffer | null = null;
  readonly #shelf: { list(): TapeShelfRecord[] } | undefined;
  #lastShelfBody: Buffer | null = null;

  constructor(opts: TapeUploaderOptions) {
    this.#db = opts.db;
    this.#store = opts.objectStore;
    this.#library = opts.library;
    this.#catalog = opts.catalog;
    this.#media = opts.media;
    this.#log = opts.log;
    this.#sweepIntervalMs = opts.sweepIntervalMs ?? SWEEP_INTERVAL_MS;
    this.#shelf = opts.shelf;
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
      await this.#uploadShelf();
    } catch (err) {
      this.#log.warn('tape catalog upload failed; retried later', { err });
    }
  }

  /** tapes/shelf.json: the archived tapes (completed archives, no job running). */
  async #uploadShelf(): Promise<void> {
    if (this.#shelf === undefined) return;
    const archived = this.#shelf.list().filter((r) => r.archive !== undefined && r.archivedAt !== undefined && this.#catalog.get(r.barcode)?.status === 'ARCHIVED');
    const body = encodeTapeShelfObject(archived);
    if (this.#lastShelfBody?.equals(body)) return;
    await this.#store.put(TAPE_SHELF_OBJECT_KEY, body);
    this.#lastShelfBody = body;
  }

  async #uploadCatalog(): Promise<void> {
    const body = encodeTapeCatalogObject({
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
    });
    if (this.#lastCatalogBody?.equals(body)) return;
    await this.#store.put(TAPE_CATALOG_OBJECT_KEY, body);
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
      const sameState = uploaded !== undefined && tapeObjectIndexCovers(uploaded, header, record?.status, record?.poolId);
      if (sameState && uploaded.generation === header.generation) return null;
      const kept = await validTapeDataObjectPrefix(this.#dataFile(barcode), header, uploaded?.dataObjects ?? []);
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
        return readTapeDataObject(this.#dataFile(barcode), header, next);
      });
      if (chunk === null) return; // the tape moved on; the next pass starts over from the index
      // Content-addressed: create-only, and an object already there holds these bytes.
      await this.#store.put(chunk.object.key, chunk.body, { checksumSha256: chunk.sha256Base64, createOnly: true }).catch((err: unknown) => {
        if (!(err instanceof CloudError && err.code === 'CLOUD_EXISTS')) throw err;
      });
      dataObjects.push(chunk.object);
      next = lastObjectId(chunk.object) + 1;
    }
    const index = await this.#library.exclusive(async () => {
      const header = await this.#media.header(barcode);
      if (this.#media.isOpen(barcode) || header === undefined || header.generation !== start.header.generation) return null;
      if ((await validTapeDataObjectPrefix(this.#dataFile(barcode), header, dataObjects)).length !== dataObjects.length) return null;
      const record = this.#catalog.get(barcode);
      return buildTapeObjectIndex(header, dataObjects, record?.status ?? 'AVAILABLE', record?.poolId);
    });
    if (index === null) return;
    const replaced =
      uploaded === undefined && (await this.#store.head(tapeIndexKey(barcode))) !== null
        ? parseTapeObjectIndex(await this.#store.get(tapeIndexKey(barcode)), barcode)
        : undefined;
    await this.#store.put(tapeIndexKey(barcode), encodeTapeObjectIndex(index));
    await putUploadedTapeIndex(this.#db, index);
    // Without a recorded upload (a gateway rebuilt from the bucket), the index this one replaced.
    const previous = uploaded ?? replaced;
    const referenced = new Set(index.dataObjects.map((o) => o.key));
    const stale = (previous?.dataObjects ?? []).map((o) => o.key).filter((key) => !referenced.has(key));
    if (stale.length > 0) await this.#store.deleteMany(stale);
    this.#log.debug('tape uploaded', { barcode, eodObjectId: index.eodObjectId, dataObjects: index.dataObjects.length });
  }

  #dataFile(barcode: string): TapeDataFile {
    return { db: this.#db, path: this.#media.dataFilePath(barcode) };
  }
}
