// The tape library: which cartridge is in which element (storage slots, import/export slots, the
// ten drives), as the ChangerModel behind the media changer logical unit. A cartridge changes hands
// only here: MOVE MEDIUM into a drive opens its TapeMedium and inserts it into the drive LU; out
// of a drive the drive flushes and gives it back. Moving a cartridge into an import/export element
// exports it (AWS: "immediately sent for archiving"): its status becomes IN TRANSIT TO VTS and it
// leaves the library — unless PREVENT MEDIUM REMOVAL holds, in which case it waits in the element
// (the operator cannot take it) until removal is allowed again.
//
// A cartridge still loaded in its source drive is unloaded by the drive and then moved, as most
// libraries' robots do (and tgt): stock backup software (Bacula's mtx-changer with offline=0)
// moves it without LOAD UNLOAD first. `requireDriveUnload` keeps IBM TS3500/TS3310 behaviour
// instead: such a move is refused with 53/01 until the initiator unloads the drive. PREVENT MEDIUM
// REMOVAL on the drive refuses the move either way (53/02).
//
// Every move is durable before it completes: the tape's catalog record (with its element) is
// written in a synced batch, so a restart puts every cartridge back where it was.

import type {
  ChangerFault,
  ChangerModel,
  ElementAddressMap,
  ElementRange,
  ElementStatus,
  ElementType,
  TapeMedium,
} from '../../iscsi/device.js';
import type { Logger } from '../../iscsi/log.js';
import type { TapeRecord } from '../store/tape-catalog-store.js';
import type { TapeMediumStore } from '../store/tape-medium-store.js';
import type { StoredTapeMedium } from '../store/tape-medium.js';
import type { TapeCatalog } from './tape-catalog.js';
import { isInLibrary, parseTapeStatus, transition } from './tape-status.js';

/** What the library needs of a tape drive logical unit (iscsi/scsi/tape-drive.ts
 *  TapeDriveLogicalUnit satisfies it). */
export interface LibraryDrive {
  readonly serialNumber: string;
  insertMedium(medium: TapeMedium): void;
  removalState(): 'empty' | 'ready' | 'not-unloaded' | 'removal-prevented';
  /** Flushes and takes the cartridge out, unloading it first if it is loaded. */
  removeMedium(): Promise<TapeMedium>;
  loadedMedium(): TapeMedium | undefined;
}

/** A MOVE MEDIUM the library refuses; iscsi/scsi/smc.ts reports `changerFault` as sense data. */
export class ChangerFaultError extends Error {
  readonly code = 'GW_CHANGER_FAULT';
  readonly changerFault: ChangerFault;

  constructor(fault: ChangerFault, message: string) {
    super(message);
    this.name = 'ChangerFaultError';
    this.changerFault = fault;
  }
}

interface Occupant {
  barcode: string;
}

const within = (r: ElementRange, address: number): boolean => address >= r.first && address < r.first + r.count;

export class TapeLibrary implements ChangerModel {
  readonly addressMap: ElementAddressMap;
  readonly #drives: readonly LibraryDrive[];
  readonly #driveIdentity: { vendor: string; product: string };
  readonly #catalog: TapeCatalog;
  readonly #media: TapeMediumStore;
  readonly #log: Logger;
  /** Element address -> the cartridge in it (storage, import/export and data transfer elements). */
  readonly #occupants = new Map<number, Occupant>();
  readonly #listeners = new Set<() => void>();
  /** Media open in drives, by barcode. */
  readonly #loaded = new Map<string, StoredTapeMedium>();
  #removalPrevented = false;
  /** MOVE MEDIUM from a drive whose cartridge is loaded is refused (53/01) instead of unloading it. */
  readonly #requireDriveUnload: boolean;
  /** Moves and inventory changes run one at a time, in arrival order. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(opts: {
    addressMap: ElementAddressMap;
    drives: readonly LibraryDrive[];
    driveIdentity: { vendor: string; product: string };
    catalog: TapeCatalog;
    media: TapeMediumStore;
    log: Logger;
    requireDriveUnload?: boolean;
  }) {
    this.addressMap = opts.addressMap;
    this.#requireDriveUnload = opts.requireDriveUnload ?? false;
    this.#drives = opts.drives;
    this.#driveIdentity = opts.driveIdentity;
    this.#catalog = opts.catalog;
    this.#media = opts.media;
    this.#log = opts.log;
  }

  /** Builds the library from the catalog: every cartridge goes back to its element, and those that
   *  were in a drive are loaded into it again. */
  static async open(opts: {
    addressMap: ElementAddressMap;
    drives: readonly LibraryDrive[];
    driveIdentity: { vendor: string; product: string };
    catalog: TapeCatalog;
    media: TapeMediumStore;
    log: Logger;
    /** Refuse MOVE MEDIUM out of a drive that was not unloaded (IBM 3584/TS3310 behaviour). */
    requireDriveUnload?: boolean;
  }): Promise<TapeLibrary> {
    if (opts.drives.length !== opts.addressMap.dataTransfer.count) {
      throw new RangeError(`the element map has ${opts.addressMap.dataTransfer.count} drives, ${opts.drives.length} given`);
    }
    const library = new TapeLibrary(opts);
    for (const record of opts.catalog.list()) {
      if (!record.location || !isInLibrary(parseTapeStatus(record.status, record.barcode))) continue;
      const address = record.location.address;
      if (library.elementType(address) === undefined || library.#occupants.has(address)) {
        opts.log.warn('tape catalog names an unusable element; the tape stays out of the library', { barcode: record.barcode, address });
        continue;
      }
      library.#occupants.set(address, { barcode: record.barcode });
      const drive = library.#driveAt(address);
      if (drive) {
        const medium = await opts.media.open(record.barcode);
        library.#loaded.set(record.barcode, medium);
        drive.insertMedium(medium);
      }
    }
    return library;
  }

  /** The element type at `address` (the transport included), or undefined. */
  elementType(address: number): ElementType | undefined {
    const m = this.addressMap;
    if (within(m.mediumTransport, address)) return 'medium-transport';
    if (within(m.storage, address)) return 'storage';
    if (within(m.importExport, address)) return 'import-export';
    if (within(m.dataTransfer, address)) return 'data-transfer';
    return undefined;
  }

  /** The drive LU behind a data transfer element, or undefined. */
  #driveAt(address: number): LibraryDrive | undefined {
    if (!within(this.addressMap.dataTransfer, address)) return undefined;
    return this.#drives[address - this.addressMap.dataTransfer.first];
  }

  /** Element address of drive `index` (0-based, the order of the drive targets). */
  driveAddress(index: number): number {
    return this.addressMap.dataTransfer.first + index;
  }

  elements(): ElementStatus[] {
    const out: ElementStatus[] = [];
    const m = this.addressMap;
    for (let i = 0; i < m.mediumTransport.count; i++) {
      out.push({ address: m.mediumTransport.first + i, type: 'medium-transport', full: false, access: false });
    }
    const push = (range: ElementRange, type: ElementType) => {
      for (let address = range.first; address < range.first + range.count; address++) {
        const occupant = this.#occupants.get(address);
        const status: ElementStatus = { address, type, full: occupant !== undefined, access: true };
        if (occupant) {
          const record = this.#catalog.get(occupant.barcode);
          status.barcode = occupant.barcode;
          if (record?.location?.sourceAddress !== undefined) status.sourceAddress = record.location.sourceAddress;
          if (type === 'import-export') status.placedByOperator = record?.location?.placedByOperator ?? false;
        }
        const drive = this.#driveAt(address);
        if (drive) {
          status.device = { ...this.#driveIdentity, serial: drive.serialNumber };
          // The transport can take a cartridge out of a drive unless removal is prevented (or,
          // with requireDriveUnload, until the drive unloaded it).
          status.access = !occupant || this.#mayRemove(drive.removalState());
        }
        out.push(status);
      }
    };
    push(m.storage, 'storage');
    push(m.importExport, 'import-export');
    push(m.dataTransfer, 'data-transfer');
    return out.sort((a, b) => a.address - b.address);
  }

  #mayRemove(state: ReturnType<LibraryDrive['removalState']>): boolean {
    return state === 'ready' || (state === 'not-unloaded' && !this.#requireDriveUnload);
  }

  /** Runs `fn` after every earlier move or inventory change finished. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  moveMedium(sourceAddress: number, destinationAddress: number): Promise<void> {
    return this.exclusive(() => this.#move(sourceAddress, destinationAddress));
  }

  async #move(sourceAddress: number, destinationAddress: number): Promise<void> {
    const sourceType = this.elementType(sourceAddress);
    const destinationType = this.elementType(destinationAddress);
    if (sourceType === undefined || sourceType === 'medium-transport') {
      throw new ChangerFaultError('invalid-element', `no source element ${sourceAddress}`);
    }
    if (destinationType === undefined || destinationType === 'medium-transport') {
      throw new ChangerFaultError('invalid-element', `no destination element ${destinationAddress}`);
    }
    const occupant = this.#occupants.get(sourceAddress);
    if (!occupant) throw new ChangerFaultError('source-empty', `element ${sourceAddress} is empty`);
    if (sourceAddress === destinationAddress) return;
    if (this.#occupants.has(destinationAddress)) throw new ChangerFaultError('destination-full', `element ${destinationAddress} is full`);
    const record = this.#catalog.get(occupant.barcode);
    if (!record) throw new Error(`tape ${occupant.barcode} is in element ${sourceAddress} but not in the catalog`);

    const sourceDrive = this.#driveAt(sourceAddress);
    if (sourceDrive) {
      const state = sourceDrive.removalState();
      if (state === 'removal-prevented') {
        throw new ChangerFaultError('medium-removal-prevented', `drive at ${sourceAddress} prevents medium removal`);
      }
      if (state === 'not-unloaded' && this.#requireDriveUnload) throw new ChangerFaultError('drive-not-unloaded', `drive at ${sourceAddress} has not unloaded ${occupant.barcode}`);
    }
    const destinationDrive = this.#driveAt(destinationAddress);
    // Open the destination medium first: a failure leaves everything as it was.
    const medium = destinationDrive ? await this.#media.open(occupant.barcode) : undefined;

    if (sourceDrive) {
      try {
        await sourceDrive.removeMedium();
      } catch (err) {
        if (medium) await this.#media.close(medium);
        throw err;
      }
      const unloaded = this.#loaded.get(occupant.barcode);
      this.#loaded.delete(occupant.barcode);
      if (unloaded) await this.#media.close(unloaded);
    }

    const exported = destinationType === 'import-export' && !this.#removalPrevented;
    const next: TapeRecord = exported
      ? { ...record, status: transition(parseTapeStatus(record.status, record.barcode), 'exported', record.barcode), location: null }
      : { ...record, location: { address: destinationAddress, sourceAddress } };
    try {
      await this.#catalog.put(next);
    } catch (err) {
      if (medium) await this.#media.close(medium);
      throw err;
    }
    this.#occupants.delete(sourceAddress);
    if (!exported) this.#occupants.set(destinationAddress, occupant);
    if (destinationDrive && medium) {
      this.#loaded.set(occupant.barcode, medium);
      destinationDrive.insertMedium(medium);
    }
    this.#log.info(exported ? 'tape exported' : 'tape moved', { barcode: record.barcode, from: sourceAddress, to: destinationAddress });
  }

  setRemovalPrevented(prevented: boolean): Promise<void> {
    return this.exclusive(async () => {
      this.#removalPrevented = prevented;
      if (prevented) return;
      // Removal allowed again: cartridges the transport left in import/export elements leave.
      const waiting: TapeRecord[] = [];
      for (const [address, occupant] of this.#occupants) {
        if (this.elementType(address) !== 'import-export') continue;
        const record = this.#catalog.get(occupant.barcode);
        if (record && !record.location?.placedByOperator) waiting.push(record);
      }
      if (waiting.length === 0) return;
      await this.#catalog.put(
        ...waiting.map((r) => ({ ...r, status: transition(parseTapeStatus(r.status, r.barcode), 'exported', r.barcode), location: null })),
      );
      for (const r of waiting) if (r.location) this.#occupants.delete(r.location.address);
      this.#log.info('tapes exported', { barcodes: waiting.map((r) => r.barcode) });
      this.#notify();
    });
  }

  onInventoryChanged(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #notify(): void {
    for (const listener of this.#listeners) listener();
  }

  // ---- used by the tape service (inside exclusive()) ---------------------------------------------

  /** Empty elements of a type, ascending. */
  emptyElements(type: 'storage' | 'import-export'): number[] {
    const range = type === 'storage' ? this.addressMap.storage : this.addressMap.importExport;
    const out: number[] = [];
    for (let a = range.first; a < range.first + range.count; a++) if (!this.#occupants.has(a)) out.push(a);
    return out;
  }

  /** Puts cartridges whose records (already durable) name their elements into those elements. */
  placeTapes(records: readonly TapeRecord[]): void {
    for (const r of records) {
      if (!r.location) continue;
      if (this.#occupants.has(r.location.address)) throw new Error(`element ${r.location.address} is full`);
      this.#occupants.set(r.location.address, { barcode: r.barcode });
    }
    this.#notify();
  }

  /** Takes a cartridge out of its (storage or import/export) element. */
  removeTape(barcode: string): void {
    for (const [address, occupant] of this.#occupants) {
      if (occupant.barcode === barcode) {
        this.#occupants.delete(address);
        this.#notify();
        return;
      }
    }
  }

  /** The element holding `barcode`, or undefined. */
  elementOf(barcode: string): { address: number; type: ElementType } | undefined {
    for (const [address, occupant] of this.#occupants) {
      if (occupant.barcode === barcode) return { address, type: this.elementType(address)! };
    }
    return undefined;
  }

  /** The medium loaded in a drive for `barcode`, if any (for used-bytes reporting). */
  loadedMedium(barcode: string): TapeMedium | undefined {
    const where = this.elementOf(barcode);
    return where ? this.#driveAt(where.address)?.loadedMedium() : undefined;
  }

  /** Shutdown: cartridges stay in their drives (the catalog says so); their media are flushed and
   *  closed. */
  async close(): Promise<void> {
    await this.exclusive(async () => {
      await this.#media.closeAll();
    });
  }
}
