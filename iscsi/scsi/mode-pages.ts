// Mode parameters (SPC-4 7.5) as data: each page is its default bytes plus a changeable mask.
// A ModePageSet holds the current values for one logical unit, answers MODE SENSE for any page
// control and validates MODE SELECT pages against the changeable mask before applying any of them.
//
// Saved values (SPC-4 7.5.2 PS bit, 6.12 PC = 11b, 6.10 SP bit): a page may be backed by the device
// (`device` below: the caching page's WCE is the BlockBackend's setting, which the backend
// persists). Such a page is the only kind that is saveable: it reports PS = 1 and its saved values
// are its current values — the device keeps one value, so a MODE SELECT with SP = 0 also changes
// the saved value (noted as a deviation from SPC-4 6.10, which would keep it). Other pages have no
// saved values: a power on loads their defaults, and MODE SENSE of saved values returns those
// defaults. A logical unit with no saveable page implements no saved values at all: MODE SENSE
// with PC = 11b gets SAVING PARAMETERS NOT SUPPORTED and MODE SELECT with SP = 1 gets INVALID
// FIELD IN CDB (SPC-4 6.12.3, 6.10).

import { invalidFieldInParameterList } from './cdb.js';
import { Sense, SenseError } from './sense.js';

export interface ModePageDefinition {
  pageCode: number;
  subpageCode: number;
  /** Default page bytes including the page header (PS/SPF/page code, page length). */
  defaults: Buffer;
  /** Bits MODE SELECT may change (same length as `defaults`; header bytes zero). */
  changeable: Buffer;
  /** Fields the device holds rather than this page set (e.g. WCE in the BlockBackend). Such a
   *  page is saveable (PS = 1, saved = current values, see above). */
  device?: ModePageDeviceFields;
}

/** Page fields backed by the device. */
export interface ModePageDeviceFields {
  /** Writes the device's current values of its fields into `page` (full page, header included). */
  read(page: Buffer): void;
  /** MODE SELECT changed the page to `page`: make the device's fields so (persisting them). */
  apply(page: Buffer): Promise<void>;
}

/** SPC-4 7.5.7 byte 0 bit 7 of a page in MODE SENSE data: PS, the page is saveable. */
const PAGE_PS = 0x80;

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

/** Byte 2 bit 2 of the caching mode page: WCE, write cache enable (SBC-3 6.4.5). */
export const CACHING_WCE = 0x04;

/**
 * SBC-3 6.4.5 caching mode page (08h). WCE is the BlockBackend's write cache (ARCHITECTURE.md
 * "Durability"): with WCE = 1 (the default) a write is acknowledged once the operating system holds
 * it, SYNCHRONIZE CACHE or FUA make it stable; with WCE = 0 every write is stable before GOOD. WCE
 * is changeable and read from / given to the backend (`device`), which persists it, so the page is
 * saveable (PS = 1). RCD is 0: reads always see the latest data.
 */
export const cachingPage = (cache: { enabled(): boolean; setEnabled(enabled: boolean): Promise<void> }): ModePageDefinition => {
  const d = page(
    0x08,
    [CACHING_WCE, 0x00, 0xff, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00, 0x20, 0xff, 0xff, 0, 0, 0, 0],
    [CACHING_WCE, ...new Array<number>(17).fill(0)],
  );
  return {
    ...d,
    device: {
      read: (p) => {
        p[2] = cache.enabled() ? p[2]! | CACHING_WCE : p[2]! & ~CACHING_WCE;
      },
      apply: (p) => cache.setEnabled((p[2]! & CACHING_WCE) !== 0),
    },
  };
};

/** SPC-4 7.5.8 control mode page (0Ah), table 440: byte 2 TST 000b (7-5), D_SENSE (2, changeable);
 *  byte 3 QUEUE ALGORITHM MODIFIER 1h (7-4, unrestricted reordering), QERR 00b (2-1); byte 4
 *  VS, RAC, UA_INTLCK_CTRL, SWP all 0; byte 5 TAS (bit 6) = 1; bytes 6-7 obsolete; bytes 8-9
 *  BUSY TIMEOUT PERIOD FFFFh (unlimited); bytes 10-11 EXTENDED SELF-TEST COMPLETION TIME 0. */
export const controlPage = (): ModePageDefinition =>
  page(0x0a, [0x00, 0x10, 0x00, 0x40, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00], [0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

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

  /** Whether any page has saved values (MODE SELECT SP = 1 and MODE SENSE PC = 11b are allowed). */
  get savesAny(): boolean {
    return this.#definitions.some((d) => d.device !== undefined);
  }

  /** The current values of a page, with the device's fields read in. */
  #currentOf(d: ModePageDefinition): Buffer {
    const b = Buffer.from(this.#current.get(d.pageCode)!);
    d.device?.read(b);
    return b;
  }

  /** The pages MODE SENSE returns for `pageCode`/`subpageCode` with page control `pc`, or null when
   *  the page is not supported (the caller reports INVALID FIELD IN CDB). */
  sense(pageCode: number, subpageCode: number, pc: number): Buffer[] | null {
    // SPC-4 6.12.3: saved values requested from a logical unit that implements none.
    if (pc === PageControl.SAVED && !this.savesAny) throw new SenseError(Sense.SAVING_PARAMETERS_NOT_SUPPORTED);
    const pick = (d: ModePageDefinition): Buffer => {
      let b: Buffer;
      switch (pc) {
        case PageControl.CHANGEABLE:
          b = Buffer.from(d.changeable);
          b[0] = d.defaults[0]!;
          b[1] = d.defaults[1]!;
          break;
        case PageControl.DEFAULT:
          b = Buffer.from(d.defaults);
          break;
        case PageControl.SAVED:
          // A device-backed page's saved values are its current ones; a page without saved
          // values comes up with its defaults at power on, so those are what it would load.
          b = d.device !== undefined ? this.#currentOf(d) : Buffer.from(d.defaults);
          break;
        default:
          b = this.#currentOf(d);
      }
      if (d.device !== undefined) b[0] = b[0]! | PAGE_PS;
      return b;
    };
    if (pageCode === ALL_PAGES) {
      if (subpageCode !== 0 && subpageCode !== ALL_SUBPAGES) return null;
      return this.#definitions.map(pick);
    }
    const d = this.#definitions.find((x) => x.pageCode === pageCode && (x.subpageCode === subpageCode || subpageCode === ALL_SUBPAGES));
    return d ? [pick(d)] : null;
  }

  /** MODE SELECT (SPC-4 6.11): validates every page in the parameter list (from `offset`, for
   *  field pointers) against the changeable masks, then applies them all. Returns true when any
   *  current value changed. For logical units without device-backed pages (selectAsync is the
   *  general form). */
  select(parameterList: Buffer, offset: number): boolean {
    const plan = this.#plan(parameterList, offset);
    if (plan.deviceUpdates.length > 0) throw new Error('MODE SELECT of a device-backed mode page needs selectAsync');
    return plan.commit();
  }

  /** MODE SELECT as `select`, device-backed fields included: those are applied first (they may
   *  fail, e.g. a backend that cannot persist the setting: the command then fails and no other
   *  page has changed). */
  async selectAsync(parameterList: Buffer, offset: number): Promise<boolean> {
    const plan = this.#plan(parameterList, offset);
    for (const apply of plan.deviceUpdates) await apply();
    return plan.commit() || plan.deviceUpdates.length > 0;
  }

  #plan(parameterList: Buffer, offset: number): { deviceUpdates: Array<() => Promise<void>>; commit(): boolean } {
    const updates: Array<{ d: ModePageDefinition; current: Buffer; bytes: Buffer }> = [];
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
      const current = this.#currentOf(d);
      for (let i = 2; i < incoming.length; i++) {
        const disallowed = (incoming[i]! ^ current[i]!) & ~d.changeable[i]!;
        if (disallowed !== 0) throw invalidFieldInParameterList(pos + i, 31 - Math.clz32(disallowed));
      }
      const bytes = Buffer.from(current);
      incoming.copy(bytes, 2, 2);
      bytes[0] = current[0]!;
      updates.push({ d, current, bytes });
      pos += 2 + pageLength;
    }
    const deviceUpdates: Array<() => Promise<void>> = [];
    for (const u of updates) {
      const device = u.d.device;
      if (device !== undefined && !u.bytes.equals(u.current)) deviceUpdates.push(() => device.apply(u.bytes));
    }
    return {
      deviceUpdates,
      commit: () => {
        let changed = false;
        for (const u of updates) {
          if (u.d.device === undefined && !u.bytes.equals(u.current)) changed = true;
          this.#current.set(u.d.pageCode, u.bytes);
        }
        return changed;
      },
    };
  }

  /** A power on (TARGET COLD RESET) loads the saved values (SPC-4 7.5.1): the defaults for pages
   *  without any, the device's (unchanged) fields for device-backed ones; a logical unit reset
   *  keeps the current values. */
  restoreDefaults(): void {
    for (const d of this.#definitions) this.#current.set(d.pageCode, Buffer.from(d.defaults));
  }
}
