// Errors of the tape medium store. `tapeFault` is what the SSC layer turns into sense data
// (iscsi/device.ts TapeFault); `transient` errors become NOT READY so the initiator retries.

import type { TapeFault } from '../../iscsi/device.js';

export type TapeStoreErrorCode =
  | 'TAPE_WRITE_PROTECTED'
  | 'TAPE_WORM_OVERWRITE'
  | 'TAPE_END_OF_MEDIUM'
  | 'TAPE_NOT_FOUND'
  | 'TAPE_EXISTS'
  | 'TAPE_IN_USE'
  | 'TAPE_INVALID'
  | 'TAPE_CORRUPT'
  | 'TAPE_IO';

const FAULTS: Partial<Record<TapeStoreErrorCode, TapeFault>> = {
  TAPE_WRITE_PROTECTED: 'write-protected',
  TAPE_WORM_OVERWRITE: 'worm-overwrite',
  TAPE_END_OF_MEDIUM: 'end-of-medium',
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
}
