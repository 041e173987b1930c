// A medium changer (SMC-3) logical unit: the SPC-4 and SMC-3 op tables, SMC mode pages and the
// VPD pages a library has (00h, 80h, 83h — no block device pages), over a ChangerModel. The
// personality (iscsi/scsi/personalities/*) says which library it is.

import type { ChangerModel, ElementAddressMap } from '../device.js';
import type { Logger } from '../log.js';
import { Op, PeripheralDeviceType, VersionDescriptor } from './constants.js';
import { defineOp, OpTable, type OpEntry } from './dispatcher.js';
import { ScsiLogicalUnit, type DeviceIdentity } from './lun.js';
import { controlPage, type ModePageDefinition } from './mode-pages.js';
import { Sense } from './sense.js';
import { smcOps, type ChangerDevice } from './smc.js';
import { spcOps } from './spc.js';
import { deviceIdentificationPage, unitSerialNumberPage } from './vpd.js';

/** The medium changer types AWS Tape Gateway offers (API MediumChangerType). */
export type ChangerType = 'STK-L700' | 'AWS-Gateway-VTL' | 'IBM-03584L32-0402';

/** A library model as data. */
export interface ChangerPersonality {
  readonly changerType: ChangerType;
  readonly identity: DeviceIdentity;
  readonly addressMap: ElementAddressMap;
  /** SMC-3 7.3 pages (1Dh, 1Eh, 1Fh) and any others the model reports. */
  readonly modePages: readonly ModePageDefinition[];
}

/** SPC-4 6.6.2: a library's cartridges are removable media, so standard INQUIRY data has RMB set
 *  (byte 1 bit 7); everything else is the SPC INQUIRY. */
function withRemovableMediumBit(entries: OpEntry<ChangerDevice>[]): OpEntry<ChangerDevice>[] {
  return entries.map((e) => {
    if (e.opcode !== Op.INQUIRY) return e;
    return defineOp<ChangerDevice, { evpd: boolean }>({
      ...e,
      execute: async (ctx, cmd) => {
        const r = await e.execute(ctx, cmd);
        if (!cmd.evpd && r.dataIn && r.dataIn.length > 1) {
          const data = Buffer.from(r.dataIn);
          data[1] = data[1]! | 0x80;
          return { ...r, dataIn: data };
        }
        return r;
      },
    });
  });
}

const changerOpTable = new OpTable<ChangerDevice>([...withRemovableMediumBit(spcOps<ChangerDevice>()), ...smcOps()]);

class MediaChangerLogicalUnit extends ScsiLogicalUnit<ChangerDevice> {
  /** SPC-4 6.13: a reset or the loss of a nexus ends the prevention it held. */
  override reset(kind: 'lun' | 'target-warm' | 'target-cold'): void {
    super.reset(kind);
    this.#releasePrevention(() => this.device.preventingNexuses.clear());
  }

  override nexusLost(nexusId: string): void {
    super.nexusLost(nexusId);
    this.#releasePrevention(() => this.device.preventingNexuses.delete(nexusId));
  }

  #releasePrevention(change: () => void): void {
    const before = this.device.preventingNexuses.size;
    change();
    if (before > 0 && this.device.preventingNexuses.size === 0) {
      this.device.model.setRemovalPrevented(false).catch((err: unknown) => {
        this.log.error('allowing medium removal failed', { err: String(err) });
      });
    }
  }
}

export function createMediaChangerLogicalUnit(
  model: ChangerModel,
  personality: ChangerPersonality,
  opts: { serial: string; naaId: string; log?: Logger },
): ScsiLogicalUnit<ChangerDevice> & { close(): void } {
  const device: ChangerDevice = { model, preventingNexuses: new Set() };
  const lu = new MediaChangerLogicalUnit({
    peripheralDeviceType: PeripheralDeviceType.MEDIUM_CHANGER,
    identity: personality.identity,
    serial: opts.serial,
    naaId: opts.naaId,
    versionDescriptors: [VersionDescriptor.SAM_5, VersionDescriptor.ISCSI, VersionDescriptor.SPC_4, VersionDescriptor.SMC_3],
    opTable: changerOpTable,
    device,
    modePages: [controlPage(), ...personality.modePages],
    // SMC-3 7.3.1: no device-specific parameter, no block descriptors.
    modeHeader: { deviceSpecificParameter: () => 0 },
    vpdPages: [unitSerialNumberPage(), deviceIdentificationPage()],
    log: opts.log,
  });
  // SMC-3 / SPC-4 5.11: cartridges that appeared in or left the library other than by MOVE MEDIUM
  // (created, exported, deleted — an operator's work at a real library) are reported as IMPORT OR
  // EXPORT ELEMENT ACCESSED, so backup software re-reads the inventory.
  const unsubscribe = model.onInventoryChanged(() => lu.unitAttentions.establishForAll(Sense.IMPORT_OR_EXPORT_ELEMENT_ACCESSED));
  return Object.assign(lu, { close: unsubscribe });
}
