// What the admin API needs of the tape library, gathered in one object (main.ts wires it): the tape
// service, the library's elements, the pool catalog, per-drive counters, and the changer type now
// running and the one UpdateVTLDeviceType stored for the next start; the virtual tape shelf and
// its archive worker (tape-archiver.ts; main.ts starts and stops it).

import type { Logger } from '../../iscsi/log.js';
import type { ChangerType } from '../../iscsi/scsi/media-changer.js';
import type { ArchiveStore } from '../cloud/archive-store.js';
import type { Database } from '../store/database.js';
import type { TapeDriveCounters } from './counting-tape-drive.js';
import { TapeArchiver } from './tape-archiver.js';
import type { TapeLibrary } from './tape-library.js';
import { TapePools } from './tape-pools.js';
import type { TapeInfo, TapeService } from './tape-service.js';
import { TapeShelf } from './tape-shelf.js';
import { TapeStatus } from './tape-status.js';
import type { TapeShelfRecord } from '../store/tape-shelf-store.js';
import { storeChangerType, storedChangerType } from './vtl-device-type.js';
import type { VtlTargets } from './vtl-targets.js';

export interface TapeAdmin {
  service: TapeService;
  library: TapeLibrary;
  pools: TapePools;
  driveCounters: readonly TapeDriveCounters[];
  /** The archived tapes (AWS TapeArchive records). */
  shelf: TapeShelf;
  /** Archival, retrieval and the shelf's AWS operations; not started here. */
  archiver: TapeArchiver;
  /** The changer emulation serving now. */
  changerType: ChangerType;
  /** The changer type the next start uses, when UpdateVTLDeviceType changed it. */
  pendingChangerType(): ChangerType | undefined;
  updateChangerType(changerType: ChangerType): Promise<void>;
}

export async function openTapeAdmin(opts: {
  vtl: VtlTargets;
  db: Database;
  configuredChangerType: ChangerType;
  archiveStore: ArchiveStore;
  log: Logger;
  /** The archiver's clock (retention locks); tests advance it. */
  now?: () => number;
}): Promise<TapeAdmin> {
  const { vtl, db } = opts;
  const changerType = (await storedChangerType(db)) ?? opts.configuredChangerType;
  let next = changerType;
  const pools = await TapePools.open(db, {
    inUse: async (poolId) => (await vtl.service.listTapes()).some((tape) => tape.poolId === poolId),
  });
  const shelf = await TapeShelf.open(db);
  const archiver = new TapeArchiver({
    library: vtl.library,
    catalog: vtl.catalog,
    media: vtl.media,
    shelf,
    pools,
    archiveStores: { GLACIER: opts.archiveStore },
    log: opts.log,
    ...(opts.now !== undefined ? { now: opts.now } : {}),
  });
  return {
    service: vtl.service,
    library: vtl.library,
    pools,
    driveCounters: vtl.driveCounters,
    shelf,
    archiver,
    changerType,
    pendingChangerType: () => (next !== changerType ? next : undefined),
    async updateChangerType(type) {
      await storeChangerType(db, type);
      next = type;
    },
  };
}

/** TapeArchive.TapeStatus values: a tape in the shelf, or retrieved from it. */
const SHELF_STATUSES: ReadonlySet<string> = new Set([
  TapeStatus.ARCHIVED,
  TapeStatus.RETRIEVING,
  TapeStatus.RETRIEVED,
  TapeStatus.DELETING,
  TapeStatus.IRRECOVERABLE,
]);

/** The tapes of the virtual tape shelf (DescribeTapeArchives): archived at least once and not
 *  deleted, with their library record. */
export async function shelvedTapes(admin: TapeAdmin): Promise<Array<{ record: TapeShelfRecord; tape: TapeInfo }>> {
  const byBarcode = new Map((await admin.service.listTapes()).map((t) => [t.barcode, t]));
  return admin.shelf.list().flatMap((record) => {
    const tape = byBarcode.get(record.barcode);
    return tape !== undefined && record.archive !== undefined && SHELF_STATUSES.has(tape.status) ? [{ record, tape }] : [];
  });
}
