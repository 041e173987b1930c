// SPC-4 5.9 persistent reservations and SPC-2 5.5 RESERVE(6)/RELEASE(6) reservations for one
// logical unit: the state, the PERSISTENT RESERVE OUT state transitions, the PERSISTENT RESERVE IN
// reports, and the access check the dispatcher runs before every command (SPC-4 5.9.1 table 62).
// Registrations belong to an I_T nexus identified by initiator port + target port names, so they
// survive a session being reinstated with the same ISID; APTPL (power-loss persistence) is not
// offered (REPORT CAPABILITIES PTPL_C = 0).

import { invalidFieldInCdb, invalidFieldInParameterList } from './cdb.js';
import { PrInAction, PrOutAction, PrType } from './constants.js';
import { ReservationConflictError, Sense, SenseError, type SenseCode } from './sense.js';
import type { Nexus } from '../device.js';

/** How a command behaves when another I_T nexus holds a reservation (SPC-4 5.9.1 table 62). */
export type ReservationAccess =
  /** Allowed whatever the reservation (INQUIRY, REQUEST SENSE, REPORT CAPABILITIES…). */
  | 'allowed'
  /** Reads: conflict only under the exclusive access types. */
  | 'read'
  /** Writes and everything else: conflict under every type for a non-holder. */
  | 'write';

interface Registration {
  key: bigint;
  initiatorPortName: string;
  relativeTargetPortId: number;
}

interface Reservation {
  type: number;
  /** I_T nexus key of the holder; for the ALL REGISTRANTS types every registrant holds it. */
  holder: string;
}

/** The I_T nexus identity registrations are keyed by (SPC-4 5.9.5). */
export function itKey(nexus: Nexus): string {
  return `${nexus.initiatorPortName}\u0000${nexus.targetPortName}`;
}

const VALID_TYPES = new Set<number>(Object.values(PrType));
const isAllRegistrants = (type: number): boolean =>
  type === PrType.WRITE_EXCLUSIVE_ALL_REGISTRANTS || type === PrType.EXCLUSIVE_ACCESS_ALL_REGISTRANTS;
const isRegistrantsType = (type: number): boolean =>
  isAllRegistrants(type) || type === PrType.WRITE_EXCLUSIVE_REGISTRANTS_ONLY || type === PrType.EXCLUSIVE_ACCESS_REGISTRANTS_ONLY;
const isExclusiveAccess = (type: number): boolean =>
  type === PrType.EXCLUSIVE_ACCESS ||
  type === PrType.EXCLUSIVE_ACCESS_REGISTRANTS_ONLY ||
  type === PrType.EXCLUSIVE_ACCESS_ALL_REGISTRANTS;

/** A decoded PERSISTENT RESERVE OUT command with its basic parameter list (SPC-4 6.14). */
export interface PrOutCommand {
  serviceAction: number;
  scope: number;
  type: number;
  parameterListLength: number;
}

/** Called to queue a unit attention for the I_T nexus with this `itKey()` identity. */
export type UnitAttentionSink = (itNexusKey: string, sense: SenseCode) => void;

export class ReservationState {
  #generation = 0;
  readonly #registrations = new Map<string, Registration>();
  #reservation: Reservation | null = null;
  /** SPC-2 RESERVE(6) holder (Nexus.id), or null. */
  #spc2Holder: string | null = null;

  // ---- access checks (dispatcher) -------------------------------------------------------------

  /** Throws ReservationConflictError when `access` conflicts for this nexus. */
  checkAccess(nexus: Nexus, access: ReservationAccess, allowedUnderSpc2: boolean): void {
    if (this.#spc2Holder !== null && this.#spc2Holder !== nexus.id && !allowedUnderSpc2) {
      throw new ReservationConflictError('reserved by RESERVE(6) from another I_T nexus');
    }
    const r = this.#reservation;
    if (!r || access === 'allowed') return;
    const me = itKey(nexus);
    if (this.#isHolder(me)) return;
    if (isRegistrantsType(r.type) && this.#registrations.has(me)) return;
    if (access === 'write' || isExclusiveAccess(r.type)) {
      throw new ReservationConflictError('persistent reservation held by another I_T nexus');
    }
  }

  #isHolder(me: string): boolean {
    const r = this.#reservation;
    if (!r) return false;
    return isAllRegistrants(r.type) ? this.#registrations.has(me) : r.holder === me;
  }

  // ---- SPC-2 RESERVE(6) / RELEASE(6) ----------------------------------------------------------

  /** SPC-2 7.21 RESERVE(6). SPC-4 5.9.3: conflicts while a persistent reservation exists. */
  reserve6(nexus: Nexus): void {
    if (this.#reservation) throw new ReservationConflictError('persistent reservation exists');
    if (this.#spc2Holder !== null && this.#spc2Holder !== nexus.id) throw new ReservationConflictError();
    this.#spc2Holder = nexus.id;
  }

  /** SPC-2 7.17 RELEASE(6): a release from a non-holder is GOOD and does nothing. */
  release6(nexus: Nexus): void {
    if (this.#reservation) throw new ReservationConflictError('persistent reservation exists');
    if (this.#spc2Holder === nexus.id) this.#spc2Holder = null;
  }

  /** SAM-5 6.3: LOGICAL UNIT RESET and I_T nexus loss release SPC-2 reservations; persistent
   *  reservations are unaffected. */
  clearSpc2(nexusId?: string): void {
    if (nexusId === undefined || this.#spc2Holder === nexusId) this.#spc2Holder = null;
  }

  // ---- PERSISTENT RESERVE OUT (SPC-4 6.14, 5.9.7–5.9.11) -------------------------------------

  prOut(nexus: Nexus, cmd: PrOutCommand, parameters: Buffer, ua: UnitAttentionSink): void {
    if (cmd.parameterListLength !== 24) throw new SenseError(Sense.PARAMETER_LIST_LENGTH_ERROR);
    if (parameters.length < 24) throw new SenseError(Sense.PARAMETER_LIST_LENGTH_ERROR);
    const key = parameters.readBigUInt64BE(0);
    const saKey = parameters.readBigUInt64BE(8);
    const flags = parameters[20]!;
    if (flags & 0x08) throw invalidFieldInParameterList(20, 3); // SPEC_I_PT: SIP_C = 0
    if (flags & 0x04) throw invalidFieldInParameterList(20, 2); // ALL_TG_PT: ATP_C = 0
    if (flags & 0x01) throw invalidFieldInParameterList(20, 0); // APTPL: PTPL_C = 0

    const me = itKey(nexus);
    const mine = this.#registrations.get(me);

    if (cmd.serviceAction === PrOutAction.REGISTER || cmd.serviceAction === PrOutAction.REGISTER_AND_IGNORE_EXISTING_KEY) {
      const ignore = cmd.serviceAction === PrOutAction.REGISTER_AND_IGNORE_EXISTING_KEY;
      if (!mine) {
        if (!ignore && key !== 0n) throw new ReservationConflictError('not registered');
        if (saKey !== 0n) {
          this.#registrations.set(me, {
            key: saKey,
            initiatorPortName: nexus.initiatorPortName,
            relativeTargetPortId: nexus.relativeTargetPortId,
          });
        }
      } else {
        if (!ignore && key !== mine.key) throw new ReservationConflictError('reservation key mismatch');
        if (saKey === 0n) this.#unregister(me, ua);
        else mine.key = saKey;
      }
      this.#generation++;
      return;
    }

    if (!mine) throw new ReservationConflictError('not registered');
    if (key !== mine.key) throw new ReservationConflictError('reservation key mismatch');

    switch (cmd.serviceAction) {
      case PrOutAction.RESERVE: {
        this.#checkScopeType(cmd);
        const r = this.#reservation;
        if (!r) {
          this.#reservation = { type: cmd.type, holder: me };
          return;
        }
        if (this.#isHolder(me) && r.type === cmd.type) return;
        throw new ReservationConflictError('reserved by another I_T nexus or with another type');
      }
      case PrOutAction.RELEASE: {
        this.#checkScopeType(cmd);
        const r = this.#reservation;
        if (!r || !this.#isHolder(me)) return;
        if (r.type !== cmd.type) throw new SenseError(Sense.INVALID_RELEASE_OF_PERSISTENT_RESERVATION);
        this.#reservation = null;
        // SPC-4 5.9.11.2: releasing a registrants-only / all-registrants reservation notifies the
        // other registrants.
        if (isRegistrantsType(r.type)) this.#notify(Sense.RESERVATIONS_RELEASED, ua, me);
        return;
      }
      case PrOutAction.CLEAR: {
        // SPC-4 5.9.11.6
        this.#notify(Sense.RESERVATIONS_PREEMPTED, ua, me);
        this.#registrations.clear();
        this.#reservation = null;
        this.#generation++;
        return;
      }
      case PrOutAction.PREEMPT:
      case PrOutAction.PREEMPT_AND_ABORT: {
        this.#checkScopeType(cmd);
        this.#preempt(me, saKey, cmd.type, ua);
        this.#generation++;
        return;
      }
      default:
        throw invalidFieldInCdb(1, 4);
    }
  }

  #checkScopeType(cmd: PrOutCommand): void {
    if (cmd.scope !== 0) throw invalidFieldInCdb(2, 7);
    if (!VALID_TYPES.has(cmd.type)) throw invalidFieldInCdb(2, 3);
  }

  /** SPC-4 5.9.11.4 preempting. */
  #preempt(me: string, saKey: bigint, type: number, ua: UnitAttentionSink): void {
    const r = this.#reservation;
    const removeWithKey = (pred: (reg: Registration, it: string) => boolean): number => {
      let removed = 0;
      for (const [it, reg] of [...this.#registrations]) {
        if (it !== me && pred(reg, it)) {
          this.#registrations.delete(it);
          ua(it, Sense.REGISTRATIONS_PREEMPTED);
          removed++;
        }
      }
      return removed;
    };
    if (!r) {
      if (saKey === 0n) throw invalidFieldInParameterList(8);
      if (removeWithKey((reg) => reg.key === saKey) === 0) throw new ReservationConflictError('no registration with that key');
      return;
    }
    if (isAllRegistrants(r.type)) {
      if (saKey === 0n) {
        removeWithKey(() => true);
        this.#reservation = { type, holder: me };
      } else if (removeWithKey((reg) => reg.key === saKey) === 0) {
        throw new ReservationConflictError('no registration with that key');
      }
      return;
    }
    const holderKey = this.#registrations.get(r.holder)?.key;
    if (saKey === holderKey) {
      removeWithKey((reg) => reg.key === saKey);
      if (r.type !== type) this.#notify(Sense.RESERVATIONS_RELEASED, ua, me);
      this.#reservation = { type, holder: me };
      return;
    }
    if (saKey === 0n) throw invalidFieldInParameterList(8);
    if (removeWithKey((reg) => reg.key === saKey) === 0) throw new ReservationConflictError('no registration with that key');
  }

  /** SPC-4 5.9.11.3 unregistering: the holder's reservation goes with it (for the all-registrants
   *  types only when the last registrant leaves). */
  #unregister(me: string, ua: UnitAttentionSink): void {
    this.#registrations.delete(me);
    const r = this.#reservation;
    if (!r) return;
    const released = isAllRegistrants(r.type) ? this.#registrations.size === 0 : r.holder === me;
    if (!released) return;
    this.#reservation = null;
    if (r.type === PrType.WRITE_EXCLUSIVE_REGISTRANTS_ONLY || r.type === PrType.EXCLUSIVE_ACCESS_REGISTRANTS_ONLY) {
      this.#notify(Sense.RESERVATIONS_RELEASED, ua, me);
    }
  }

  #notify(sense: SenseCode, ua: UnitAttentionSink, except: string): void {
    for (const it of this.#registrations.keys()) if (it !== except) ua(it, sense);
  }

  // ---- PERSISTENT RESERVE IN (SPC-4 6.13) -----------------------------------------------------

  prIn(serviceAction: number): Buffer {
    switch (serviceAction) {
      case PrInAction.READ_KEYS: {
        // SPC-4 6.13.2
        const regs = [...this.#registrations.values()];
        const buf = Buffer.alloc(8 + 8 * regs.length);
        buf.writeUInt32BE(this.#generation >>> 0, 0);
        buf.writeUInt32BE(8 * regs.length, 4);
        regs.forEach((reg, i) => buf.writeBigUInt64BE(reg.key, 8 + 8 * i));
        return buf;
      }
      case PrInAction.READ_RESERVATION: {
        // SPC-4 6.13.3
        const r = this.#reservation;
        const buf = Buffer.alloc(r ? 24 : 8);
        buf.writeUInt32BE(this.#generation >>> 0, 0);
        if (r) {
          buf.writeUInt32BE(16, 4);
          const key = isAllRegistrants(r.type) ? 0n : (this.#registrations.get(r.holder)?.key ?? 0n);
          buf.writeBigUInt64BE(key, 8);
          buf[21] = r.type & 0x0f; // SCOPE 0h (LU_SCOPE)
        }
        return buf;
      }
      case PrInAction.REPORT_CAPABILITIES: {
        // SPC-4 6.13.4: CRH (RESERVE(6) under a PR conflicts), no SIP_C/ATP_C/PTPL_C; TMV with
        // every type supported.
        const buf = Buffer.alloc(8);
        buf.writeUInt16BE(8, 0);
        buf[2] = 0x10; // CRH
        buf[3] = 0x80; // TMV, ALLOW COMMANDS 000b
        buf[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02; // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
        buf[5] = 0x01; // EX_AC_AR
        return buf;
      }
      case PrInAction.READ_FULL_STATUS: {
        // SPC-4 6.13.5
        const descriptors: Buffer[] = [];
        for (const [it, reg] of this.#registrations) {
          const transportId = iscsiTransportId(reg.initiatorPortName);
          const d = Buffer.alloc(24 + transportId.length);
          d.writeBigUInt64BE(reg.key, 0);
          const r = this.#reservation;
          if (r && this.#isHolder(it)) {
            d[12] = 0x01; // R_HOLDER
            d[13] = r.type & 0x0f;
          }
          d.writeUInt16BE(reg.relativeTargetPortId, 18);
          d.writeUInt32BE(transportId.length, 20);
          transportId.copy(d, 24);
          descriptors.push(d);
        }
        const body = Buffer.concat(descriptors);
        const header = Buffer.alloc(8);
        header.writeUInt32BE(this.#generation >>> 0, 0);
        header.writeUInt32BE(body.length, 4);
        return Buffer.concat([header, body]);
      }
      default:
        throw invalidFieldInCdb(1, 4);
    }
  }
}

/** SPC-4 7.6.4.6 iSCSI TransportID, format 01b (initiator port: "<name>,i,0x<isid>"). */
function iscsiTransportId(initiatorPortName: string): Buffer {
  const name = Buffer.from(initiatorPortName, 'utf8');
  const length = Math.max(20, Math.ceil((name.length + 1) / 4) * 4);
  const buf = Buffer.alloc(4 + length);
  buf[0] = 0x40 | 0x05; // FORMAT CODE 01b, PROTOCOL IDENTIFIER 5h (iSCSI)
  buf.writeUInt16BE(length, 2);
  name.copy(buf, 4);
  return buf;
}
