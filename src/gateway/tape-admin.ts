// What the admin API needs of the tape library, gathered in one object (main.ts wires it): the tape
// service, the library's elements, the pool catalog, per-drive counters, and the changer type now
// running and the one UpdateVTLDeviceType stored for the next start.

import type { ChangerType } from '../../iscsi/scsi/media-changer.js';
import type { Database } from '../store/database.js';
import type { TapeDriveCounters } from './counting-tape-drive.js';
import type { TapeLibrary } from './tape-library.js';
import { TapePools } from './tape-pools.js';
import type { TapeService } from './tape-service.js';
import { storeChangerType, storedChangerType } from './vtl-device-type.js';
import type { VtlTargets } from './vtl-targets.js';

export interface TapeAdmin {
  service: TapeService;
  library: TapeLibrary;
  pools: TapePools;
  driveCounters: readonly TapeDriveCounters[];
  /** The changer emulation serving now. */
  changerType: ChangerType;
  /** The changer type the next start uses, when UpdateVTLDeviceType changed it. */
  pendingChangerType(): ChangerType | undefined;
  updateChangerType(changerType: ChangerType): Promise<void>;
}

export async function openTapeAdmin(opts: { vtl: VtlTargets; db: Database; configuredChangerType: ChangerType }): Promise<TapeAdmin> {
  const { vtl, db } = opts;
  const changerType = (await storedChangerType(db)) ?? opts.configuredChangerType;
  let next = changerType;
  const pools = await TapePools.open(db, {
    inUse: async (poolId) => (await vtl.service.listTapes()).some((tape) => tape.poolId === poolId),
  });
  return {
    service: vtl.service,
    library: vtl.library,
    pools,
    driveCounters: vtl.driveCounters,
    changerType,
    pendingChangerType: () => (next !== changerType ? next : undefined),
    async updateChangerType(type) {
      await storeChangerType(db, type);
      next = type;
    },
  };
}
