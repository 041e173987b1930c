// The tape status machine (AWS Tape Gateway Tape.TapeStatus / TapeArchive.TapeStatus). One type,
// one transition(): every status change of a tape goes through it, so an impossible change (say,
// deleting a tape that is being archived) is refused in one place.

import { GatewayError } from './gateway-error.js';

/** Status strings exactly as the AWS API spells them (some contain spaces). */
export const TapeStatus = {
  CREATING: 'CREATING',
  AVAILABLE: 'AVAILABLE',
  IN_TRANSIT_TO_VTS: 'IN TRANSIT TO VTS',
  ARCHIVING: 'ARCHIVING',
  ARCHIVED: 'ARCHIVED',
  RETRIEVING: 'RETRIEVING',
  RETRIEVED: 'RETRIEVED',
  DELETING: 'DELETING',
  DELETED: 'DELETED',
  IRRECOVERABLE: 'IRRECOVERABLE',
} as const;
export type TapeStatus = (typeof TapeStatus)[keyof typeof TapeStatus];

/** What happens to a tape. */
export type TapeEvent =
  /** Its medium exists: CREATING -> AVAILABLE. */
  | 'created'
  /** The backup application moved it into an import/export element (eject / export). */
  | 'exported'
  /** CancelArchival while IN TRANSIT TO VTS or ARCHIVING: back to the library. */
  | 'archival-cancelled'
  /** The archive store refused the archive for good (4xx other than throttling): back to the
   *  library, with the reason on the shelf record. */
  | 'archive-failed'
  /** Upload done (the archive worker has taken the exported tape): archiving to the pool's
   *  storage class (src/gateway/tape-archiver.ts). */
  | 'upload-completed'
  | 'archive-completed'
  /** RetrieveTapeArchive. */
  | 'retrieve-requested'
  | 'retrieval-completed'
  | 'retrieval-cancelled'
  /** The archive store refused the retrieval for good: back to the shelf, with the reason. */
  | 'retrieval-failed'
  /** DeleteTape / DeleteTapeArchive. */
  | 'delete-requested'
  | 'deleted'
  /** The gateway lost the tape's data. */
  | 'failed';

// Sources: AWS Storage Gateway Tape Gateway user guide (managing, archiving, retrieving, deleting
// tapes); ../shared/reference/aws-storage-gateway.md 1.4.
const TRANSITIONS: Record<TapeStatus, Partial<Record<TapeEvent, TapeStatus>>> = {
  [TapeStatus.CREATING]: { created: TapeStatus.AVAILABLE, failed: TapeStatus.IRRECOVERABLE },
  [TapeStatus.AVAILABLE]: {
    exported: TapeStatus.IN_TRANSIT_TO_VTS,
    'delete-requested': TapeStatus.DELETING,
    failed: TapeStatus.IRRECOVERABLE,
  },
  [TapeStatus.IN_TRANSIT_TO_VTS]: {
    'archival-cancelled': TapeStatus.AVAILABLE,
    'archive-failed': TapeStatus.AVAILABLE,
    'upload-completed': TapeStatus.ARCHIVING,
    failed: TapeStatus.IRRECOVERABLE,
  },
  [TapeStatus.ARCHIVING]: {
    'archive-completed': TapeStatus.ARCHIVED,
    'archival-cancelled': TapeStatus.AVAILABLE,
    'archive-failed': TapeStatus.AVAILABLE,
    failed: TapeStatus.IRRECOVERABLE,
  },
  [TapeStatus.ARCHIVED]: { 'retrieve-requested': TapeStatus.RETRIEVING, 'delete-requested': TapeStatus.DELETING },
  [TapeStatus.RETRIEVING]: {
    'retrieval-completed': TapeStatus.RETRIEVED,
    'retrieval-cancelled': TapeStatus.ARCHIVED,
    'retrieval-failed': TapeStatus.ARCHIVED,
    failed: TapeStatus.IRRECOVERABLE,
  },
  // A retrieved tape is read-only; ejecting it returns it to the archive.
  [TapeStatus.RETRIEVED]: { exported: TapeStatus.ARCHIVED, failed: TapeStatus.IRRECOVERABLE },
  [TapeStatus.DELETING]: { deleted: TapeStatus.DELETED },
  [TapeStatus.DELETED]: {},
  [TapeStatus.IRRECOVERABLE]: { 'delete-requested': TapeStatus.DELETING },
};

/** The status after `event`, or GW_TAPE_INVALID_STATE when the event cannot happen in `status`. */
export function transition(status: TapeStatus, event: TapeEvent, barcode?: string): TapeStatus {
  const next = TRANSITIONS[status][event];
  if (next === undefined) {
    throw new GatewayError('GW_TAPE_INVALID_STATE', `tape${barcode ? ` ${barcode}` : ''} is ${status}: cannot apply '${event}'`);
  }
  return next;
}

export function isTapeStatus(value: unknown): value is TapeStatus {
  return typeof value === 'string' && (Object.values(TapeStatus) as string[]).includes(value);
}

/** Statuses in which a tape is in the library (an element holds it) and can be loaded. */
export function isInLibrary(status: TapeStatus): boolean {
  return status === TapeStatus.AVAILABLE || status === TapeStatus.RETRIEVED;
}

/** RETRIEVED tapes are read-only (write protected in a drive). */
export function isReadOnly(status: TapeStatus): boolean {
  return status === TapeStatus.RETRIEVED;
}

/** A stored status string as a TapeStatus (GW_TAPE_INVALID_STATE when it is none). */
export function parseTapeStatus(status: string, barcode?: string): TapeStatus {
  if (!isTapeStatus(status)) throw new GatewayError('GW_TAPE_INVALID_STATE', `tape${barcode ? ` ${barcode}` : ''} has unknown status ${status}`);
  return status;
}
