// Errors of the tape medium store. `tapeFault` is what the SSC layer turns into sense data
// (iscsi/device.ts TapeFault); `transient` errors become NOT READY so the initiator retries.
//
// A write the data file system could not take — no data space left above SpaceGuard's reserve,
// ENOSPC/EDQUOT, EIO, a short write — is TAPE_DISK_FULL or TAPE_WRITE_FAILED: the drive answers
// MEDIUM ERROR, WRITE ERROR (03/0C/00) for that command, never NOT READY (a retry loop would not
// free any space), and `condition` says which StoreHealth condition it is.

import type { TapeFault } from '../../iscsi/device.js';
import type { StoreConditionKind } from './store-health.js';

export type TapeStoreErrorCode =
  | 'TAPE_WRITE_PROTECTED'
  | 'TAPE_WORM_OVERWRITE'
  | 'TAPE_END_OF_MEDIUM'
  | 'TAPE_NOT_FOUND'
  | 'TAPE_EXISTS'
  | 'TAPE_IN_USE'
  | 'TAPE_INVALID'
  | 'TAPE_CORRUPT'
  | 'TAPE_IO'
  /** The data file system is full (SpaceGuard refused, or ENOSPC / EDQUOT). */
  | 'TAPE_DISK_FULL'
  /** The data file could not be written or synced (EIO, a short write, a failed fdatasync). */
  | 'TAPE_WRITE_FAILED';

const FAULTS: Partial<Record<TapeStoreErrorCode, TapeFault>> = {
  TAPE_WRITE_PROTECTED: 'write-protected',
  TAPE_WORM_OVERWRITE: 'worm-overwrite',
  TAPE_END_OF_MEDIUM: 'end-of-medium',
  TAPE_DISK_FULL: 'write-error',
  TAPE_WRITE_FAILED: 'write-error',
};

export class TapeStoreError extends Error {
  readonly code: TapeStoreErrorCode;
  readonly tapeFault: TapeFault | undefined;
  readonly transient: boolean;

  constructor(code: TapeStoreErrorCode, message: string, opts: { transient?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'TapeStoreError';
    this.code = code;
    this.tapeFault = FAULTS[code];
    this.transient = opts.transient ?? false;
  }

  /** The StoreHealth condition this error is an episode of, if any. */
  get condition(): StoreConditionKind | undefined {
    if (this.code === 'TAPE_DISK_FULL') return 'disk-full';
    if (this.code === 'TAPE_WRITE_FAILED') return 'io-error';
    return undefined;
  }
}

const DISK_FULL_ERRNOS = new Set(['ENOSPC', 'EDQUOT']);

/** A failed append or sync of tape `barcode`'s data file as a store error (write-error fault). */
export function tapeWriteError(barcode: string, err: unknown, what = 'write'): TapeStoreError {
  if (err instanceof TapeStoreError) return err;
  const errno = (err as { code?: unknown } | null)?.code;
  if (typeof errno === 'string' && DISK_FULL_ERRNOS.has(errno)) {
    return new TapeStoreError('TAPE_DISK_FULL', `tape ${barcode}: ${what} failed, the data file system is full (${errno}); free space and write again`, { cause: err });
  }
  return new TapeStoreError('TAPE_WRITE_FAILED', `tape ${barcode}: ${what} of the data file failed: ${String(err)}`, { cause: err });
}
