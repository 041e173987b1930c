// A direct-access (SBC-3) logical unit: the SPC-4 and SBC-3 op tables, disk mode pages and VPD
// pages over a BlockBackend. The gateway calls createDiskLogicalUnit() once per volume.

import type { BlockBackend, LogicalUnit } from '../device.js';
import type { Logger } from '../log.js';
import { invalidFieldInParameterList, writeUInt64 } from './cdb.js';
import { PeripheralDeviceType, VersionDescriptor } from './constants.js';
import { OpTable } from './dispatcher.js';
import { ScsiLogicalUnit, type DeviceIdentity, type ModeParameterHeaderSource } from './lun.js';
import { cachingPage, controlPage, informationalExceptionsPage, readWriteErrorRecoveryPage } from './mode-pages.js';
import { LbaRangeLock, sbcOps, type DiskDevice } from './sbc.js';
import { Sense } from './sense.js';
import { spcOps } from './spc.js';
import {
  blockDeviceCharacteristicsPage,
  blockLimitsPage,
  deviceIdentificationPage,
  logicalBlockProvisioningPage,
  unitSerialNumberPage,
  type BlockLimits,
} from './vpd.js';

/** What a disk advertises in VPD B0h and enforces. MAXIMUM TRANSFER LENGTH bounds one command's
 *  Data-In/Out buffer (8 MiB); the UNMAP limits stay within what libiscsi calls sane (≤ 1 Mi). */
export function defaultBlockLimits(blockSize: number): BlockLimits {
  const maxTransferBytes = 8 * 1024 * 1024;
  return {
    maximumTransferLengthBlocks: Math.max(1, Math.floor(maxTransferBytes / blockSize)),
    optimalTransferLengthBlocks: Math.max(1, Math.floor((1024 * 1024) / blockSize)),
    maximumUnmapLbaCount: 1024 * 1024,
    maximumUnmapBlockDescriptorCount: 256,
    // Equal to MAXIMUM TRANSFER LENGTH: libiscsi's WriteSame*.Unmap tests write MAXIMUM WRITE
    // SAME LENGTH blocks with one WRITE(16) when it is at least 65536.
    maximumWriteSameLengthBlocks: Math.max(1, Math.floor(maxTransferBytes / blockSize)),
    maximumCompareAndWriteLengthBlocks: 1,
  };
}

/** The disk's op table, shared by every disk LU (it is data). */
const diskOpTable = new OpTable<DiskDevice>([...spcOps<DiskDevice>(), ...sbcOps()]);

export function createDiskLogicalUnit(
  backend: BlockBackend,
  identity: DeviceIdentity,
  opts: { limits?: BlockLimits; log?: Logger } = {},
): LogicalUnit {
  const limits = opts.limits ?? defaultBlockLimits(backend.blockSize);
  const device: DiskDevice = {
    backend,
    limits,
    writeLock: new LbaRangeLock(),
    capacityBlocks: backend.blockCount(),
    writeCacheEnabled: backend.writeCacheEnabled(),
  };
  // SBC-3 6.4.5 WCE lives in the backend (which persists it); MODE SELECT changes it there.
  const writeCache = {
    enabled: () => backend.writeCacheEnabled(),
    setEnabled: async (enabled: boolean) => {
      await backend.setWriteCacheEnabled(enabled);
      device.writeCacheEnabled = backend.writeCacheEnabled();
    },
  };

  const modeHeader: ModeParameterHeaderSource = {
    // SBC-3 6.4.1: DPOFUA — DPO and FUA are supported (FUA reaches the backend); WP clear.
    deviceSpecificParameter: () => 0x10,
    // SBC-3 6.4.2 short / long LBA mode parameter block descriptors.
    blockDescriptor: (longLba) => {
      const blocks = backend.blockCount();
      if (longLba) {
        const d = Buffer.alloc(16);
        writeUInt64(d, blocks, 0);
        d.writeUInt32BE(backend.blockSize, 12);
        return d;
      }
      const d = Buffer.alloc(8);
      d.writeUInt32BE(blocks > 0xffffffff ? 0xffffffff : blocks, 0);
      d.writeUIntBE(backend.blockSize, 5, 3);
      return d;
    },
    // MODE SELECT may restate the block descriptor but not reformat the medium.
    checkBlockDescriptor: (d, offset) => {
      const long = d.length === 16;
      const blockLength = long ? d.readUInt32BE(12) : d.readUIntBE(5, 3);
      if (blockLength !== backend.blockSize) throw invalidFieldInParameterList(offset + (long ? 12 : 5));
    },
  };

  return new ScsiLogicalUnit<DiskDevice>({
    peripheralDeviceType: PeripheralDeviceType.DIRECT_ACCESS,
    identity,
    serial: backend.serial,
    naaId: backend.naaId,
    versionDescriptors: [VersionDescriptor.SAM_5, VersionDescriptor.ISCSI, VersionDescriptor.SPC_4, VersionDescriptor.SBC_3],
    opTable: diskOpTable,
    device,
    modePages: [readWriteErrorRecoveryPage(), cachingPage(writeCache), controlPage(), informationalExceptionsPage()],
    modeHeader,
    vpdPages: [
      unitSerialNumberPage(),
      deviceIdentificationPage(),
      blockLimitsPage(limits),
      blockDeviceCharacteristicsPage(),
      logicalBlockProvisioningPage(),
    ],
    // SBC-3 4.6: a volume that grew reports CAPACITY DATA HAS CHANGED to every nexus once.
    // SPC-4 6.10: a write cache switched other than by MODE SELECT (the gateway's configuration
    // or API) reports MODE PARAMETERS CHANGED to every nexus once (MODE SELECT itself tells the
    // other nexuses, spcModeSelect).
    beforeCommand: (lu) => {
      const capacity = backend.blockCount();
      if (capacity !== device.capacityBlocks) {
        device.capacityBlocks = capacity;
        lu.unitAttentions.establishForAll(Sense.CAPACITY_DATA_HAS_CHANGED);
      }
      const wce = backend.writeCacheEnabled();
      if (wce !== device.writeCacheEnabled) {
        device.writeCacheEnabled = wce;
        lu.unitAttentions.establishForAll(Sense.MODE_PARAMETERS_CHANGED);
      }
    },
    log: opts.log,
  });
}
