// The store layer's error family (ARCHITECTURE.md "One error family per layer").
// `transient: true` tells the SCSI layer to answer NOT READY so the initiator retries.

export type StoreErrorCode =
  | 'STORE_OPEN_FAILED'
  | 'STORE_LOCKED'
  | 'STORE_IO'
  | 'STORE_CLOSED'
  | 'STORE_CORRUPT'
  | 'STORE_OUT_OF_RANGE'
  | 'STORE_SHRINK_REFUSED'
  /** The upload buffer stayed full for the whole hold time (transient: the initiator retries). */
  | 'STORE_BUFFER_FULL'
  /** The data directory's file system is full (or below the reserve the index needs): the write
   *  was refused and nothing acknowledged was touched (store-health.ts). */
  | 'STORE_NO_SPACE';

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  readonly transient: boolean;

  constructor(code: StoreErrorCode, message: string, opts: { transient?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'StoreError';
    this.code = code;
    this.transient = opts.transient ?? false;
  }
}
