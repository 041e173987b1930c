// The tape catalog: every tape the gateway ever created, by barcode, with the AWS rules for
// barcodes and sizes. Records live in the Level database (store/tape-catalog-store.ts); this class
// keeps them in memory too, so the changer answers READ ELEMENT STATUS without a database read.

import { randomBytes } from 'node:crypto';
import type { Database } from '../store/database.js';
import { listTapeRecords, putTapeRecords, type TapeRecord } from '../store/tape-catalog-store.js';
import { GatewayError } from './gateway-error.js';
import { isTapeStatus, TapeStatus } from './tape-status.js';

const GIB = 1024 ** 3;
/** CreateTapes TapeSizeInBytes: 100 GiB – 15 TiB, whole GiB. */
export const MIN_TAPE_SIZE_BYTES = 100 * GIB;
export const MAX_TAPE_SIZE_BYTES = 15 * 1024 * GIB;
/** At most 1,500 tapes per library (tape gateway quota). */
export const MAX_TAPES_PER_LIBRARY = 1500;
/** Generated barcodes are the prefix plus random hex digits up to this length (AWS example:
 *  prefix TEST -> TEST38A29D). */
export const GENERATED_BARCODE_LENGTH = 10;

const BARCODE = /^[A-Z0-9]{5,16}$/;
const BARCODE_PREFIX = /^[A-Z]{1,4}$/;

export function validateBarcode(barcode: string): void {
  if (!BARCODE.test(barcode)) {
    throw new GatewayError('GW_TAPE_INVALID_ARGUMENT', `barcode ${JSON.stringify(barcode)} must be 5 to 16 characters A-Z, 0-9`);
  }
}

export function validateBarcodePrefix(prefix: string): void {
  if (!BARCODE_PREFIX.test(prefix)) {
    throw new GatewayError('GW_TAPE_INVALID_ARGUMENT', `barcode prefix ${JSON.stringify(prefix)} must be 1 to 4 letters A-Z`);
  }
}

export function validateTapeSize(sizeBytes: number): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes % GIB !== 0 || sizeBytes < MIN_TAPE_SIZE_BYTES || sizeBytes > MAX_TAPE_SIZE_BYTES) {
    throw new GatewayError('GW_TAPE_INVALID_ARGUMENT', `tape size ${sizeBytes} must be a whole number of GiB from 100 GiB to 15 TiB`);
  }
}

/** A tape counts against the library quota until it is archived or deleted. */
function countsAgainstQuota(status: string): boolean {
  return (
    status === TapeStatus.CREATING ||
    status === TapeStatus.AVAILABLE ||
    status === TapeStatus.IN_TRANSIT_TO_VTS ||
    status === TapeStatus.RETRIEVED ||
    status === TapeStatus.IRRECOVERABLE
  );
}

export class TapeCatalog {
  readonly #db: Database;
  readonly #records = new Map<string, TapeRecord>();

  private constructor(db: Database, records: TapeRecord[]) {
    this.#db = db;
    for (const r of records) this.#records.set(r.barcode, r);
  }

  static async open(db: Database): Promise<TapeCatalog> {
    const records = await listTapeRecords(db);
    for (const r of records) {
      if (!isTapeStatus(r.status)) throw new GatewayError('GW_TAPE_INVALID_STATE', `tape ${r.barcode} has unknown status ${r.status}`);
    }
    return new TapeCatalog(db, records);
  }

  get(barcode: string): TapeRecord | undefined {
    const r = this.#records.get(barcode);
    return r ? { ...r } : undefined;
  }

  /** Every record, deleted tapes included, by barcode. */
  list(): TapeRecord[] {
    return [...this.#records.values()].map((r) => ({ ...r })).sort((a, b) => a.barcode.localeCompare(b.barcode));
  }

  /** Barcodes are never reused, not even after a delete. */
  has(barcode: string): boolean {
    return this.#records.has(barcode);
  }

  quotaUsed(): number {
    let n = 0;
    for (const r of this.#records.values()) if (countsAgainstQuota(r.status)) n++;
    return n;
  }

  /** `count` new barcodes `prefix` + random [0-9A-F] (CreateTapes), none ever used. */
  generateBarcodes(prefix: string, count: number): string[] {
    validateBarcodePrefix(prefix);
    const out = new Set<string>();
    const digits = GENERATED_BARCODE_LENGTH - prefix.length;
    while (out.size < count) {
      const candidate = prefix + randomBytes(digits).toString('hex').toUpperCase().slice(0, digits);
      if (!this.#records.has(candidate)) out.add(candidate);
    }
    return [...out];
  }

  /** Writes records durably (one synced batch), then makes them current. */
  async put(...records: TapeRecord[]): Promise<void> {
    if (records.length === 0) return;
    await putTapeRecords(this.#db, records);
    for (const r of records) this.#records.set(r.barcode, { ...r });
  }
}
