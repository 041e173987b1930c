// The gateway-level tape API (what the admin API and `--tapes` call): CreateTapes,
// CreateTapeWithBarcode, DeleteTape, ListTapes / DescribeTapes, with AWS's rules. New tapes go
// into empty storage elements by default (or import/export elements, as AWS's own gateway shows
// them to backup software), so the backup application finds them in its next inventory.

import type { ElementType } from '../../iscsi/device.js';
import type { Logger } from '../../iscsi/log.js';
import type { TapeRecord } from '../store/tape-catalog-store.js';
import type { TapeMediumStore } from '../store/tape-medium-store.js';
import { GatewayError } from './gateway-error.js';
import { MAX_TAPES_PER_LIBRARY, validateBarcode, validateTapeSize, type TapeCatalog } from './tape-catalog.js';
import type { TapeLibrary } from './tape-library.js';
import { parseTapeStatus, TapeStatus, transition } from './tape-status.js';

export interface CreateTapesRequest {
  /** 1–4 letters A–Z. */
  prefix: string;
  count: number;
  sizeBytes: number;
  worm?: boolean;
  poolId?: string;
  /** Where the new cartridges appear (default: storage elements). */
  slotType?: 'storage' | 'import-export';
}

export interface CreateTapeWithBarcodeRequest {
  barcode: string;
  sizeBytes: number;
  worm?: boolean;
  poolId?: string;
  slotType?: 'storage' | 'import-export';
}

/** One tape as the API describes it (AWS Tape fields). */
export interface TapeInfo {
  barcode: string;
  status: TapeStatus;
  sizeBytes: number;
  usedBytes: number;
  worm: boolean;
  poolId?: string;
  createdAt: string;
  /** The element holding the tape while it is in the library. */
  element?: { type: ElementType; address: number };
}

export class TapeService {
  readonly #library: TapeLibrary;
  readonly #catalog: TapeCatalog;
  readonly #media: TapeMediumStore;
  readonly #log: Logger;

  constructor(opts: { library: TapeLibrary; catalog: TapeCatalog; media: TapeMediumStore; log: Logger }) {
    this.#library = opts.library;
    this.#catalog = opts.catalog;
    this.#media = opts.media;
    this.#log = opts.log;
  }

  /** CreateTapes: `count` tapes with generated barcodes (prefix + random hex). */
  async createTapes(req: CreateTapesRequest): Promise<string[]> {
    if (!Number.isSafeInteger(req.count) || req.count < 1 || req.count > MAX_TAPES_PER_LIBRARY) {
      throw new GatewayError('GW_TAPE_INVALID_ARGUMENT', `tape count ${req.count} must be 1 to ${MAX_TAPES_PER_LIBRARY}`);
    }
    validateTapeSize(req.sizeBytes);
    return this.#library.exclusive(async () => {
      const barcodes = this.#catalog.generateBarcodes(req.prefix, req.count);
      await this.#create(barcodes, req);
      return barcodes;
    });
  }

  /** CreateTapeWithBarcode: one tape with a chosen barcode, never used before. */
  async createTapeWithBarcode(req: CreateTapeWithBarcodeRequest): Promise<string> {
    validateBarcode(req.barcode);
    validateTapeSize(req.sizeBytes);
    return this.#library.exclusive(async () => {
      if (this.#catalog.has(req.barcode)) {
        throw new GatewayError('GW_TAPE_BARCODE_EXISTS', `barcode ${req.barcode} is in use or was used before (barcodes are never reused)`);
      }
      await this.#create([req.barcode], req);
      return req.barcode;
    });
  }

  async #create(barcodes: string[], req: { sizeBytes: number; worm?: boolean; poolId?: string; slotType?: 'storage' | 'import-export' }): Promise<void> {
    const used = this.#catalog.quotaUsed();
    if (used + barcodes.length > MAX_TAPES_PER_LIBRARY) {
      throw new GatewayError('GW_TAPE_LIMIT_EXCEEDED', `the library holds ${used} tapes; at most ${MAX_TAPES_PER_LIBRARY} are allowed`);
    }
    const slotType = req.slotType ?? 'storage';
    const empty = this.#library.emptyElements(slotType);
    if (empty.length < barcodes.length) {
      throw new GatewayError('GW_NO_EMPTY_SLOT', `${barcodes.length} tapes requested, ${empty.length} empty ${slotType} elements`);
    }
    const createdAt = new Date().toISOString();
    const creating: TapeRecord[] = barcodes.map((barcode) => ({
      barcode,
      status: TapeStatus.CREATING,
      sizeBytes: req.sizeBytes,
      worm: req.worm ?? false,
      ...(req.poolId !== undefined ? { poolId: req.poolId } : {}),
      createdAt,
      location: null,
    }));
    // CREATING first: a crash mid-way leaves records that say so, and the barcodes stay taken.
    await this.#catalog.put(...creating);
    for (const r of creating) {
      const medium = await this.#media.create({ barcode: r.barcode, capacityBytes: r.sizeBytes, worm: r.worm });
      await this.#media.close(medium);
    }
    const available: TapeRecord[] = creating.map((r, i) => ({
      ...r,
      status: transition(TapeStatus.CREATING, 'created', r.barcode),
      location: { address: empty[i]!, ...(slotType === 'import-export' ? { placedByOperator: true } : {}) },
    }));
    await this.#catalog.put(...available);
    this.#library.placeTapes(available);
    this.#log.info('tapes created', { count: barcodes.length, sizeBytes: req.sizeBytes, slotType, first: barcodes[0] });
  }

  /** DeleteTape: only an AVAILABLE tape resting in a storage or import/export element (not in a
   *  drive). Its data is removed; the barcode stays taken (a DELETED record). */
  async deleteTape(barcode: string): Promise<void> {
    await this.#library.exclusive(async () => {
      const record = this.#catalog.get(barcode);
      if (!record) throw new GatewayError('GW_TAPE_NOT_FOUND', `no tape ${barcode}`);
      const status = parseTapeStatus(record.status, barcode);
      const element = this.#library.elementOf(barcode);
      if (status !== TapeStatus.AVAILABLE) throw new GatewayError('GW_TAPE_INVALID_STATE', `tape ${barcode} is ${status}, not AVAILABLE`);
      if (element === undefined || element.type === 'data-transfer') {
        throw new GatewayError('GW_TAPE_INVALID_STATE', `tape ${barcode} is in a drive; move it to a slot first`);
      }
      const deleting = { ...record, status: transition(status, 'delete-requested', barcode), location: null };
      await this.#catalog.put(deleting);
      this.#library.removeTape(barcode);
      if ((await this.#media.header(barcode)) !== undefined) await this.#media.delete(barcode);
      await this.#catalog.put({ ...deleting, status: transition(deleting.status, 'deleted', barcode) });
      this.#log.info('tape deleted', { barcode });
    });
  }

  /** DescribeTapes: the tapes not deleted (all of them, or those named). */
  async listTapes(barcodes?: readonly string[]): Promise<TapeInfo[]> {
    const wanted = barcodes ? new Set(barcodes) : undefined;
    const out: TapeInfo[] = [];
    for (const r of this.#catalog.list()) {
      if (wanted ? !wanted.has(r.barcode) : r.status === TapeStatus.DELETED) continue;
      out.push(await this.#info(r));
    }
    return out;
  }

  /** How many tapes are in each status, DELETED records included (barcodes are never reused). */
  countByStatus(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const r of this.#catalog.list()) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
    return counts;
  }

  async describeTape(barcode: string): Promise<TapeInfo> {
    const record = this.#catalog.get(barcode);
    if (!record) throw new GatewayError('GW_TAPE_NOT_FOUND', `no tape ${barcode}`);
    return this.#info(record);
  }

  async #info(r: TapeRecord): Promise<TapeInfo> {
    const loaded = this.#library.loadedMedium(r.barcode);
    const usedBytes = loaded ? loaded.usedBytes() : ((await this.#media.header(r.barcode))?.usedBytes ?? 0);
    const element = this.#library.elementOf(r.barcode);
    return {
      barcode: r.barcode,
      status: parseTapeStatus(r.status, r.barcode),
      sizeBytes: r.sizeBytes,
      usedBytes,
      worm: r.worm,
      ...(r.poolId !== undefined ? { poolId: r.poolId } : {}),
      createdAt: r.createdAt,
      ...(element ? { element } : {}),
    };
  }
}
