// The virtual tape library as iSCSI targets, laid out as AWS Tape Gateway does: one media changer
// target `<prefix><gateway>-mediachanger` and ten drive targets `<prefix><gateway>-tapedrive-01`
// … `-10`, each LUN 0. Drive N is data transfer element N of the changer's personality, and the
// changer reports each drive's serial number (DVCID) so software maps elements to targets.

import { createHash } from 'node:crypto';
import type { TargetConfig } from '../../iscsi/device.js';
import type { Logger } from '../../iscsi/log.js';
import { createMediaChangerLogicalUnit, type ChangerPersonality, type ChangerType } from '../../iscsi/scsi/media-changer.js';
import { awsGatewayVtl } from '../../iscsi/scsi/personalities/aws-gateway-vtl.js';
import { ibm03584L32 } from '../../iscsi/scsi/personalities/ibm-03584l32.js';
import { ibmUlt3580Td5 } from '../../iscsi/scsi/personalities/ibm-ult3580-td5.js';
import { stkL700 } from '../../iscsi/scsi/personalities/stk-l700.js';
import { deviceCapabilitiesPage, elementAddressAssignmentPage, transportGeometryPage } from '../../iscsi/scsi/smc.js';
import { createTapeDriveLogicalUnit, type TapeDriveLogicalUnit } from '../../iscsi/scsi/tape-drive.js';
import type { Database } from '../store/database.js';
import type { SpaceGuard } from '../store/space-guard.js';
import type { StoreHealth } from '../store/store-health.js';
import { TapeMediumStore } from '../store/tape-medium-store.js';
import { countingDrive, type TapeDriveCounters } from './counting-tape-drive.js';
import { TapeCatalog } from './tape-catalog.js';
import { TapeLibrary } from './tape-library.js';
import { TapeService } from './tape-service.js';
import { TARGET_NAME_PREFIX } from './volume-registry.js';

export const DRIVE_COUNT = 10;

export const CHANGER_PERSONALITIES: Record<ChangerType, ChangerPersonality> = {
  'STK-L700': stkL700,
  'AWS-Gateway-VTL': awsGatewayVtl,
  'IBM-03584L32-0402': ibm03584L32,
};

export function changerTargetName(gatewayName: string): string {
  return `${TARGET_NAME_PREFIX}${gatewayName}-mediachanger`;
}

/** `index` is 1-based: tapedrive-01 … tapedrive-10. */
export function driveTargetName(gatewayName: string, index: number): string {
  return `${TARGET_NAME_PREFIX}${gatewayName}-tapedrive-${String(index).padStart(2, '0')}`;
}

/** Stable identities derived from the gateway name: the same gateway reports the same serial
 *  numbers after a restart (backup software keys its device maps on them). */
function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').toUpperCase();
}

/** 10 characters, the width of the DVCID serial number field: "SG" + 8 hex digits. */
export function deviceSerial(gatewayName: string, device: string): string {
  return `SG${digest(`${gatewayName}/${device}`).slice(0, 8)}`;
}

/** NAA IEEE Registered (5h) designator with the gateway's company id (src/gateway/identity.ts). */
function deviceNaaId(gatewayName: string, device: string): string {
  return `5a2c0de${digest(`naa/${gatewayName}/${device}`).slice(0, 9).toLowerCase()}`;
}

/** The personality with fewer (or more) storage and import/export elements than AWS's 1,600 +
 *  1,600, first addresses unchanged — for clients that cannot take a 3,200-slot inventory (e.g.
 *  vtl-probe reads element status into a 64 KiB buffer). */
export function withSlotCounts(personality: ChangerPersonality, slots: { storage?: number; importExport?: number }): ChangerPersonality {
  const addressMap = {
    ...personality.addressMap,
    storage: { ...personality.addressMap.storage, count: slots.storage ?? personality.addressMap.storage.count },
    importExport: { ...personality.addressMap.importExport, count: slots.importExport ?? personality.addressMap.importExport.count },
  };
  const overlapping = [addressMap.mediumTransport, addressMap.storage, addressMap.importExport, addressMap.dataTransfer]
    .sort((a, b) => a.first - b.first)
    .some((r, i, all) => i > 0 && all[i - 1]!.first + all[i - 1]!.count > r.first);
  if (overlapping || addressMap.storage.first + addressMap.storage.count > 0x10000 || addressMap.importExport.first + addressMap.importExport.count > 0x10000) {
    throw new RangeError(`${personality.changerType}: ${JSON.stringify(slots)} slots do not fit its element address map`);
  }
  return {
    ...personality,
    addressMap,
    modePages: [elementAddressAssignmentPage(addressMap), transportGeometryPage(addressMap.mediumTransport.count), deviceCapabilitiesPage()],
  };
}

export interface VtlTargets {
  /** The changer target first, then the ten drive targets in order. */
  targets: TargetConfig[];
  library: TapeLibrary;
  service: TapeService;
  /** The tape catalog and media (the archive worker, tape-archiver.ts, needs them). */
  catalog: TapeCatalog;
  media: TapeMediumStore;
  drives: TapeDriveLogicalUnit[];
  /** Bytes read and written through each drive, in drive order. */
  driveCounters: TapeDriveCounters[];
  /** The tape catalog was empty (no tape ever created): `--tapes` / config tapes apply now. */
  firstStart: boolean;
  /** Flushes and closes loaded tapes (they stay in their drives across the restart). */
  close(): Promise<void>;
}

export async function createVtlTargets(opts: {
  gatewayName: string;
  changerType: ChangerType;
  db: Database;
  log: Logger;
  /** Where tape data files live (default `<dataDir>/tapes`). */
  tapeDir?: string;
  /** The gateway's free-space guard and store health (TapeMediumStoreOptions; defaults: the store's own). */
  spaceGuard?: SpaceGuard;
  storeHealth?: StoreHealth;
  /** Element counts other than AWS's 1,600 storage + 1,600 import/export (withSlotCounts). */
  slots?: { storage?: number; importExport?: number };
  /** IBM-03584L32-0402 only: refuse MOVE MEDIUM out of a drive not unloaded (53/01). */
  requireDriveUnload?: boolean;
}): Promise<VtlTargets> {
  const base = CHANGER_PERSONALITIES[opts.changerType];
  const personality = opts.slots ? withSlotCounts(base, opts.slots) : base;
  // The strict IBM behaviour belongs to that personality: with another changer type (chosen
  // through UpdateVTLDeviceType after the configuration was written) the robot unloads drives.
  const requireDriveUnload = opts.requireDriveUnload === true && personality.changerType === 'IBM-03584L32-0402';
  if (opts.requireDriveUnload === true && !requireDriveUnload) {
    opts.log.warn('tapeLibrary.requireDriveUnload applies to IBM-03584L32-0402 only; drives are unloaded by the library', { changerType: personality.changerType });
  }
  const drives: TapeDriveLogicalUnit[] = [];
  for (let i = 1; i <= DRIVE_COUNT; i++) {
    drives.push(createTapeDriveLogicalUnit({ serialNumber: deviceSerial(opts.gatewayName, `tapedrive-${i}`), log: opts.log }));
  }
  const media = new TapeMediumStore(opts.db, {
    ...(opts.tapeDir !== undefined ? { tapeDir: opts.tapeDir } : {}),
    ...(opts.spaceGuard !== undefined ? { spaceGuard: opts.spaceGuard } : {}),
    ...(opts.storeHealth !== undefined ? { storeHealth: opts.storeHealth } : {}),
  });
  const catalog = await TapeCatalog.open(opts.db);
  const firstStart = catalog.list().length === 0;
  // Each drive counts the bytes its media move, for /metrics (src/gateway/counting-tape-drive.ts).
  const counted = drives.map(countingDrive);
  const library = await TapeLibrary.open({
    addressMap: personality.addressMap,
    drives: counted.map((c) => c.drive),
    driveIdentity: { vendor: ibmUlt3580Td5.identity.vendor, product: ibmUlt3580Td5.identity.product },
    catalog,
    media,
    log: opts.log,
    requireDriveUnload,
  });
  const service = new TapeService({ library, catalog, media, log: opts.log });
  const changer = createMediaChangerLogicalUnit(library, personality, {
    serial: deviceSerial(opts.gatewayName, 'mediachanger'),
    naaId: deviceNaaId(opts.gatewayName, 'mediachanger'),
    log: opts.log,
  });
  const targets: TargetConfig[] = [
    { name: changerTargetName(opts.gatewayName), luns: new Map([[0, changer]]) },
    ...drives.map((drive, i) => ({ name: driveTargetName(opts.gatewayName, i + 1), luns: new Map([[0, drive]]) })),
  ];
  return {
    targets,
    library,
    service,
    catalog,
    media,
    drives,
    driveCounters: counted.map((c) => c.counters),
    firstStart,
    async close() {
      changer.close();
      await library.close();
    },
  };
}
