// Mode parameters (SPC-4 7.5) as data: each page is its default bytes plus a changeable mask.
// A ModePageSet holds the current values for one logical unit, answers MODE SENSE for any page
// control (current / changeable / default; saved is not supported) and validates MODE SELECT
// pages against the changeable mask before applying any of them.

import { invalidFieldInParameterList } from './cdb.js';
import { Sense, SenseError } from './sense.js';

export interface ModePageDefinition {
  pageCode: number;
  subpageCode: number;
  /** Default page bytes including the page header (PS/SPF/page code, page length). */
  defaults: Buffer;
  /** Bits MODE SELECT may change (same length as `defaults`; header bytes zero). */
  changeable: Buffer;
}

/** SPC-4 7.5.7 page control. */
export const PageControl = {
  CURRENT: 0,
  CHANGEABLE: 1,
  DEFAULT: 2,
  SAVED: 3,
} as const;

export const ALL_PAGES = 0x3f;
export const ALL_SUBPAGES = 0xff;

function page(pageCode: number, body: number[], changeableBody: number[]): ModePageDefinition {
  const defaults = Buffer.from([pageCode, body.length, ...body]);
  const changeable = Buffer.from([0, 0, ...changeableBody]);
  return { pageCode, subpageCode: 0, defaults, changeable };
}

/** SBC-3 6.4.7 read-write error recovery mode page (01h): AWRE set, no retries to tune. */
export const readWriteErrorRecoveryPage = (): ModePageDefinition =>
  page(0x01, [0x80, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/** SBC-3 6.4.5 caching mode page (08h). Every write is durable before GOOD (ARCHITECTURE.md
 *  "Nothing is acknowledged before it is durable locally"), so there is no volatile write cache:
 *  WCE is 0 and not changeable — a MODE SELECT that sets it gets INVALID FIELD IN PARAMETER LIST
 *  rather than a cache we would only pretend to have. RCD is 0 (reads are not cached either way). */
export const cachingPage = (): ModePageDefinition =>
  page(
    0x08,
    [0x00, 0x00, 0xff, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00, 0x20, 0xff, 0xff, 0, 0, 0, 0],
    new Array<number>(18).fill(0),
  );

/** SPC-4 7.5.8 control mode page (0Ah): TST 000b, QUEUE ALGORITHM MODIFIER 1 (unrestricted
 *  reordering), QErr 00b, TAS 1, BUSY TIMEOUT PERIOD unlimited. D_SENSE is changeable. */
export const controlPage = (): ModePageDefinition =>
  page(0x0a, [0x00, 0x10, 0x40, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00], [0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/** SPC-4 7.5.13 informational exceptions control mode page (1Ch): DEXCPT set, MRIE 0. */
export const informationalExceptionsPage = (): ModePageDefinition =>
  page(0x1c, [0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/** Byte 2 bit 2 of the control mode page: D_SENSE (descriptor format sense data). */
const CONTROL_D_SENSE = 0x04;

export class ModePageSet {
  readonly #definitions: ModePageDefinition[];
  readonly #current = new Map<number, Buffer>();

  constructor(definitions: ModePageDefinition[]) {
    this.#definitions = [...definitions].sort((a, b) => a.pageCode - b.pageCode);
    for (const d of this.#definitions) this.#current.set(d.pageCode, Buffer.from(d.defaults));
  }

  /** SPC-4 7.5.8: descriptor format sense data when D_SENSE is set in the current control page. */
  get descriptorSense(): boolean {
    const control = this.#current.get(0x0a);
    return control !== undefined && (control[2]! & CONTROL_D_SENSE) !== 0;
  }

  /** The pages MODE SENSE returns for `pageCode`/`subpageCode` with page control `pc`, or null when
   *  the page is not supported (the caller reports INVALID FIELD IN CDB). */
  sense(pageCode: number, subpageCode: number, pc: number): Buffer[] | null {
    if (pc === PageControl.SAVED) throw new SenseError(Sense.SAVING_PARAMETERS_NOT_SUPPORTED);
    const pick = (d: ModePageDefinition): Buffer => {
      switch (pc) {
        case PageControl.CHANGEABLE: {
          const b = Buffer.from(d.changeable);
          b[0] = d.defaults[0]!;
          b[1] = d.defaults[1]!;
          return b;
        }
        case PageControl.DEFAULT:
          return Buffer.from(d.defaults);
        default:
          return Buffer.from(this.#current.get(d.pageCode)!);
      }
    };
    if (pageCode === ALL_PAGES) {
      if (subpageCode !== 0 && subpageCode !== ALL_SUBPAGES) return null;
      return this.#definitions.map(pick);
    }
    const d = this.#definitions.find((x) => x.pageCode === pageCode && (x.subpageCode === subpageCode || subpageCode === ALL_SUBPAGES));
    return d ? [pick(d)] : null;
  }

  /** MODE SELECT (SPC-4 6.11): validates every page in `pages` (starting at `offset` of the
   *  parameter list, for field pointers) against the changeable masks, then applies them all.
   *  Returns true when any current value changed. */
  select(parameterList: Buffer, offset: number): boolean {
    const updates: Array<{ pageCode: number; bytes: Buffer }> = [];
    let pos = offset;
    while (pos < parameterList.length) {
      if (pos + 2 > parameterList.length) throw new SenseError(Sense.PARAMETER_LIST_LENGTH_ERROR);
      const pageCode = parameterList[pos]! & 0x3f;
      const spf = (parameterList[pos]! & 0x40) !== 0;
      if (spf) throw invalidFieldInParameterList(pos, 6);
      const d = this.#definitions.find((x) => x.pageCode === pageCode && x.subpageCode === 0);
      if (!d) throw invalidFieldInParameterList(pos, 5);
      const pageLength = parameterList[pos + 1]!;
      if (pageLength !== d.defaults.length - 2) throw invalidFieldInParameterList(pos + 1);
      if (pos + 2 + pageLength > parameterList.length) throw new SenseError(Sense.PARAMETER_LIST_LENGTH_ERROR);
      const incoming = parameterList.subarray(pos, pos + 2 + pageLength);
      const current = this.#current.get(pageCode)!;
      for (let i = 2; i < incoming.length; i++) {
        const disallowed = (incoming[i]! ^ current[i]!) & ~d.changeable[i]!;
        if (disallowed !== 0) throw invalidFieldInParameterList(pos + i, 31 - Math.clz32(disallowed));
      }
      const bytes = Buffer.from(current);
      incoming.copy(bytes, 2, 2);
      bytes[0] = current[0]!;
      updates.push({ pageCode, bytes });
      pos += 2 + pageLength;
    }
    let changed = false;
    for (const u of updates) {
      if (!u.bytes.equals(this.#current.get(u.pageCode)!)) changed = true;
      this.#current.set(u.pageCode, u.bytes);
    }
    return changed;
  }

  /** A power on (TARGET COLD RESET) restores the defaults: there are no saved values (SPC-4 7.5.1);
   *  a logical unit reset keeps the current values. */
  restoreDefaults(): void {
    for (const d of this.#definitions) this.#current.set(d.pageCode, Buffer.from(d.defaults));
  }
}
