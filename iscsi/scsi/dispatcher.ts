// The op-table dispatcher: every command of every device type goes through `dispatch()`, the one
// catch site that turns errors into SCSI status (ARCHITECTURE.md "One error family per layer").
// A device type is an OpTable — data: opcode (and service action) → definition. Anything not in
// the table is ILLEGAL REQUEST / INVALID COMMAND OPERATION CODE.

import { ScsiStatus, type Nexus, type ScsiRequest, type ScsiResponse } from '../device.js';
import { cdbLengthForOpcode, invalidFieldInCdb } from './cdb.js';
import type { DataDirection } from './constants.js';
import type { ReservationAccess } from './persistent-reservations.js';
import { buildSense, ReservationConflictError, Sense, SenseError, type SenseCode, type SenseDetails } from './sense.js';
import type { ScsiLogicalUnit } from './lun.js';

/** What a handler sees: the request, its logical unit and the device-type state `D`. */
export interface CommandContext<D> {
  readonly req: ScsiRequest;
  readonly cdb: Buffer;
  readonly nexus: Nexus;
  readonly lu: ScsiLogicalUnit<D>;
  readonly device: D;
}

/** One command of a device type. `decode` validates the CDB into a typed command (parse), then
 *  `execute` touches the device (execute). */
export interface OpDefinition<D, C> {
  /** T10 name, e.g. "READ(10)". */
  readonly name: string;
  readonly opcode: number;
  /** For opcodes with a SERVICE ACTION field (CDB byte 1 bits 4–0). */
  readonly serviceAction?: number;
  readonly dataDirection: DataDirection;
  /** SPC-4 5.9.1 table 62 behaviour under a persistent reservation held by another nexus. */
  readonly access: ReservationAccess;
  /** SPC-2 5.5.1: allowed while another nexus holds a RESERVE(6) reservation. */
  readonly allowedUnderSpc2Reservation?: boolean;
  /** NOT READY / MEDIUM NOT PRESENT when the device has no medium (removable media types). */
  readonly needsMedium?: boolean;
  /** SAM-5 5.14: INQUIRY and REQUEST SENSE neither report nor clear a pending unit attention
   *  here (REQUEST SENSE reports it itself). */
  readonly bypassesUnitAttention?: boolean;
  /** SPC-4 6.35.3 CDB USAGE DATA: byte 0 the opcode, then a mask of the bits the device examines. */
  readonly usage: readonly number[];
  /** SPC-4 6.35.4 command timeouts descriptor, seconds (0 = not specified). */
  readonly nominalTimeoutSec?: number;
  readonly recommendedTimeoutSec?: number;
  decode(cdb: Buffer): C;
  execute(ctx: CommandContext<D>, cmd: C): Promise<ScsiResponse> | ScsiResponse;
}

// Methods are bivariant in their parameters, so a definition for any command type C is an entry.
export type OpEntry<D> = OpDefinition<D, any>;

/** Identity helper that infers the command type of a definition. */
export function defineOp<D, C>(def: OpDefinition<D, C>): OpEntry<D> {
  return def;
}

export class OpTable<D> {
  readonly #byOpcode = new Map<number, OpEntry<D>>();
  readonly #byServiceAction = new Map<number, Map<number, OpEntry<D>>>();
  readonly entries: readonly OpEntry<D>[];

  constructor(entries: OpEntry<D>[]) {
    this.entries = [...entries].sort((a, b) => a.opcode - b.opcode || (a.serviceAction ?? 0) - (b.serviceAction ?? 0));
    for (const e of this.entries) {
      // Groups 6 and 7 (vendor specific) have no implied length: the usage data declares it.
      const groupLength = cdbLengthForOpcode(e.opcode);
      if (e.usage[0] !== e.opcode || (groupLength !== 0 && e.usage.length !== groupLength)) {
        throw new Error(`op table: bad CDB usage data for ${e.name}`);
      }
      // SPC-4 6.35.3: a service action appears in the usage data where the CDB carries it.
      if (e.serviceAction !== undefined && (e.usage[1]! & 0x1f) !== e.serviceAction) {
        throw new Error(`op table: usage data of ${e.name} does not carry its service action`);
      }
      if (e.serviceAction === undefined) {
        this.#byOpcode.set(e.opcode, e);
      } else {
        let m = this.#byServiceAction.get(e.opcode);
        if (!m) this.#byServiceAction.set(e.opcode, (m = new Map()));
        m.set(e.serviceAction, e);
      }
    }
  }

  hasServiceActions(opcode: number): boolean {
    return this.#byServiceAction.has(opcode);
  }

  /** The entry for a CDB; throws INVALID COMMAND OPERATION CODE for an unknown opcode and
   *  INVALID FIELD IN CDB (byte 1) for an unknown service action of a known one. */
  lookup(cdb: Buffer): OpEntry<D> {
    const opcode = cdb[0]!;
    const plain = this.#byOpcode.get(opcode);
    if (plain) return plain;
    const actions = this.#byServiceAction.get(opcode);
    if (!actions) throw new SenseError(Sense.INVALID_COMMAND_OPERATION_CODE);
    const entry = cdb.length > 1 ? actions.get(cdb[1]! & 0x1f) : undefined;
    if (!entry) throw invalidFieldInCdb(1, 4);
    return entry;
  }

  /** The entry for REPORT SUPPORTED OPERATION CODES' one-command formats, or undefined. */
  find(opcode: number, serviceAction?: number): OpEntry<D> | undefined {
    if (serviceAction === undefined) return this.#byOpcode.get(opcode);
    return this.#byServiceAction.get(opcode)?.get(serviceAction);
  }
}

export const good = (dataIn?: Buffer): ScsiResponse => (dataIn ? { status: ScsiStatus.GOOD, dataIn } : { status: ScsiStatus.GOOD });

/** Runs one command. Never throws: every failure becomes a SCSI status here. */
export async function dispatch<D>(lu: ScsiLogicalUnit<D>, req: ScsiRequest): Promise<ScsiResponse> {
  const nexus = req.nexus;
  let entry: OpEntry<D> | undefined;
  try {
    lu.noteCommand(nexus);
    const cdb = req.cdb;
    if (cdb.length === 0) throw new SenseError(Sense.INVALID_COMMAND_OPERATION_CODE);
    let lookupError: unknown;
    try {
      entry = lu.opTable.lookup(cdb);
    } catch (err) {
      lookupError = err;
    }
    if (!entry?.bypassesUnitAttention) {
      const ua = lu.unitAttentions.take(nexus.id);
      if (ua) return lu.checkCondition(ua);
    }
    if (!entry) throw lookupError;
    if (cdb.length < entry.usage.length) throw invalidFieldInCdb(0);
    checkCdbBits(entry, cdb);
    lu.reservations.checkAccess(nexus, entry.access, entry.allowedUnderSpc2Reservation ?? false);
    if (entry.needsMedium && !lu.mediumPresent()) throw new SenseError(Sense.MEDIUM_NOT_PRESENT);
    const cmd: unknown = entry.decode(cdb);
    const ctx: CommandContext<D> = { req, cdb, nexus, lu, device: lu.device };
    const response = await entry.execute(ctx, cmd);
    // A command without a data-out phase consumed none of any Data-Out it was sent.
    if (entry.dataDirection !== 'out' && req.dataOut && req.dataOut.length > 0 && response.dataOutResidual === undefined) {
      return { ...response, dataOutResidual: req.dataOut.length };
    }
    return response;
  } catch (err) {
    return errorResponse(lu, req, err, entry);
  }
}

/** The CONTROL byte (SAM-5 5.2, the last byte of the CDB): VENDOR SPECIFIC (bits 7-6), reserved
 *  (5-3), NACA (2), obsolete (1), LINK (0, obsolete in SAM-5). No ACA and no linked commands are
 *  supported, so every bit must be zero. */
const SUPPORTED_CONTROL_BITS = 0x00;

/**
 * SPC-4 4.2.5.1 and 6.35.3: a CDB bit the device server does not examine (clear in the command's
 * CDB USAGE DATA: a reserved field, an unsupported option) that is set to one is ILLEGAL REQUEST /
 * INVALID FIELD IN CDB, the sense-key specific field pointing at the left-most offending bit
 * (SPC-4 4.5.2.4.2). NACA=1 without ACA support is the same error (SAM-5 5.9.1.2, SPC-4 4.2.5.1).
 * Runs before the command touches the device, so a refused command changes nothing.
 */
export function checkCdbBits(entry: Pick<OpEntry<unknown>, 'usage' | 'serviceAction'>, cdb: Buffer): void {
  const controlByte = entry.usage.length - 1;
  for (let i = 1; i < controlByte; i++) {
    let examined = entry.usage[i]!;
    // The usage data carries the service action value itself where the CDB carries it.
    if (i === 1 && entry.serviceAction !== undefined) examined |= 0x1f;
    const stray = cdb[i]! & ~examined;
    if (stray !== 0) throw invalidFieldInCdb(i, 31 - Math.clz32(stray));
  }
  const strayControl = cdb[controlByte]! & ~SUPPORTED_CONTROL_BITS;
  if (strayControl !== 0) throw invalidFieldInCdb(controlByte, 31 - Math.clz32(strayControl));
}

interface SenseCarrier {
  sense: SenseCode;
  details?: SenseDetails;
}

function carriesSense(err: unknown): err is SenseCarrier {
  if (typeof err !== 'object' || err === null || !('sense' in err)) return false;
  const s = (err as { sense: unknown }).sense;
  return typeof s === 'object' && s !== null && 'key' in s && 'asc' in s && 'ascq' in s;
}

/** The one catch site: SenseError (or any error carrying `sense`) → CHECK CONDITION; a reservation
 *  conflict → RESERVATION CONFLICT; `transient: true` → NOT READY so initiators retry; anything
 *  else is a bug or a broken backend → logged, HARDWARE ERROR / INTERNAL TARGET FAILURE. */
function errorResponse<D>(lu: ScsiLogicalUnit<D>, req: ScsiRequest, err: unknown, entry: OpEntry<D> | undefined): ScsiResponse {
  if (err instanceof SenseError || carriesSense(err)) {
    return lu.checkCondition(err.sense, err.details ?? {});
  }
  if (err instanceof ReservationConflictError) {
    return { status: ScsiStatus.RESERVATION_CONFLICT };
  }
  if (typeof err === 'object' && err !== null && (err as { transient?: unknown }).transient === true) {
    lu.log.warn('transient backend error; reporting NOT READY', { command: entry?.name, cdb: req.cdb.toString('hex'), err: String(err) });
    return lu.checkCondition(Sense.LOGICAL_UNIT_NOT_READY_BECOMING_READY);
  }
  lu.log.error('unexpected error executing SCSI command', {
    command: entry?.name,
    cdb: req.cdb.toString('hex'),
    nexus: req.nexus.id,
    err: err instanceof Error ? (err.stack ?? err.message) : String(err),
  });
  return lu.checkCondition(Sense.INTERNAL_TARGET_FAILURE);
}

export function checkConditionResponse(sense: SenseCode, details: SenseDetails, descriptorFormat: boolean): ScsiResponse {
  return { status: ScsiStatus.CHECK_CONDITION, sense: buildSense(sense, details, descriptorFormat) };
}
