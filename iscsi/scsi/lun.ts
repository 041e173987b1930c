// A logical unit built from data: an op table, mode pages, VPD pages and the device-type state.
// Holds what SPC-4 keeps per logical unit — unit attentions per I_T nexus, reservations, mode
// parameters — so disks (SBC), tapes (SSC) and changers (SMC) share one implementation.

import type { LogicalUnit, Nexus, ScsiRequest, ScsiResponse } from '../device.js';
import { silentLogger, type Logger } from '../log.js';
import { checkConditionResponse, dispatch, type CommandContext, type OpTable } from './dispatcher.js';
import { ModePageSet, type ModePageDefinition } from './mode-pages.js';
import { itKey, ReservationState } from './persistent-reservations.js';
import { Sense, type SenseCode, type SenseDetails } from './sense.js';
import { UnitAttentions } from './unit-attention.js';

export interface DeviceIdentity {
  /** T10 vendor identification (8 ASCII characters, space padded). */
  vendor: string;
  /** Product identification (16 characters). */
  product: string;
  /** Product revision level (4 characters). */
  revision: string;
}

/** A VPD page (SPC-4 7.8): `build` returns the page body after the 4-byte header. */
export interface VpdPage<D> {
  pageCode: number;
  build(ctx: CommandContext<D>): Buffer;
}

/** What MODE SENSE adds around the pages (SPC-4 7.5.4–7.5.5): the DEVICE-SPECIFIC PARAMETER byte
 *  and, for devices that have one, the block descriptor (8 bytes, or 16 for LONGLBA). */
export interface ModeParameterHeaderSource {
  deviceSpecificParameter(): number;
  blockDescriptor?(longLba: boolean): Buffer;
  /** MODE SELECT: validate a block descriptor the initiator sent (throw SenseError to refuse). */
  checkBlockDescriptor?(descriptor: Buffer, offset: number): void;
  /** MODE SENSE with PAGE CODE 00h (SPC-4 7.5.1: vendor specific, no page format) returns the
   *  header and block descriptor alone, as tape drives do, instead of INVALID FIELD IN CDB. */
  pageZeroIsHeaderOnly?: boolean;
}

export interface ScsiLogicalUnitOptions<D> {
  peripheralDeviceType: number;
  identity: DeviceIdentity;
  /** Unit serial number (VPD 80h). */
  serial: string;
  /** 16 hex digits, NAA IEEE Registered designator (VPD 83h). */
  naaId: string;
  /** SPC-4 6.4.2 VERSION DESCRIPTORs for standard INQUIRY data. */
  versionDescriptors: number[];
  opTable: OpTable<D>;
  device: D;
  modePages: ModePageDefinition[];
  modeHeader: ModeParameterHeaderSource;
  vpdPages: VpdPage<D>[];
  /** For removable-medium devices; fixed media are always present. */
  mediumPresent?: () => boolean;
  /** Runs before each command (e.g. notice a capacity change and establish a unit attention). */
  beforeCommand?: (lu: ScsiLogicalUnit<D>) => void;
  log?: Logger;
}

export class ScsiLogicalUnit<D> implements LogicalUnit {
  readonly peripheralDeviceType: number;
  readonly identity: DeviceIdentity;
  readonly serial: string;
  readonly naaId: string;
  readonly versionDescriptors: readonly number[];
  readonly opTable: OpTable<D>;
  readonly device: D;
  readonly modePages: ModePageSet;
  readonly modeHeader: ModeParameterHeaderSource;
  readonly vpdPages: readonly VpdPage<D>[];
  readonly log: Logger;
  readonly unitAttentions = new UnitAttentions();
  readonly reservations = new ReservationState();
  /** Nexuses that have sent commands and not been lost, by Nexus.id. */
  readonly #nexuses = new Map<string, Nexus>();
  readonly #mediumPresent: () => boolean;
  readonly #beforeCommand?: (lu: ScsiLogicalUnit<D>) => void;

  constructor(opts: ScsiLogicalUnitOptions<D>) {
    this.peripheralDeviceType = opts.peripheralDeviceType;
    this.identity = opts.identity;
    this.serial = opts.serial;
    this.naaId = opts.naaId;
    this.versionDescriptors = opts.versionDescriptors;
    this.opTable = opts.opTable;
    this.device = opts.device;
    this.modePages = new ModePageSet(opts.modePages);
    this.modeHeader = opts.modeHeader;
    this.vpdPages = [...opts.vpdPages].sort((a, b) => a.pageCode - b.pageCode);
    this.log = opts.log ?? silentLogger;
    this.#mediumPresent = opts.mediumPresent ?? (() => true);
    this.#beforeCommand = opts.beforeCommand;
  }

  execute(req: ScsiRequest): Promise<ScsiResponse> {
    return dispatch(this, req);
  }

  /** Called by the dispatcher before anything else for each command. */
  noteCommand(nexus: Nexus): void {
    if (!this.#nexuses.has(nexus.id)) {
      this.#nexuses.set(nexus.id, nexus);
      this.unitAttentions.noteNexus(nexus.id);
    }
    this.#beforeCommand?.(this);
  }

  mediumPresent(): boolean {
    return this.#mediumPresent();
  }

  /** CHECK CONDITION in the format the control mode page's D_SENSE selects. */
  checkCondition(sense: SenseCode, details: SenseDetails = {}): ScsiResponse {
    return checkConditionResponse(sense, details, this.modePages.descriptorSense);
  }

  /** Queues a unit attention for every current nexus of an I_T nexus identity (PR notifications). */
  establishForItNexus(itNexusKey: string, sense: SenseCode): void {
    for (const nexus of this.#nexuses.values()) {
      if (itKey(nexus) === itNexusKey) this.unitAttentions.establishFor(nexus.id, sense);
    }
  }

  /** SAM-5 6.3: resets release SPC-2 reservations (persistent ones survive) and leave a unit
   *  attention for every other nexus (the issuer knows it reset the LU, as tgt treats it); a cold
   *  reset is a power on, restoring mode parameter defaults. */
  reset(kind: 'lun' | 'target-warm' | 'target-cold'): void {
    this.reservations.clearSpc2();
    if (kind === 'target-cold') this.modePages.restoreDefaults();
    const sense = kind === 'target-cold' ? Sense.POWER_ON_OCCURRED : Sense.BUS_DEVICE_RESET_FUNCTION_OCCURRED;
    this.unitAttentions.resetAll(sense);
  }

  nexusLost(nexusId: string): void {
    this.#nexuses.delete(nexusId);
    this.unitAttentions.forget(nexusId);
    this.reservations.clearSpc2(nexusId);
  }
}
