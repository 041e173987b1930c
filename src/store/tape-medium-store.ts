// The tapes of one gateway: each a header and index in the shared Level database (tape-keys.ts)
// plus a data file `<dataDir>/tapes/<barcode>.tape` with its framed records and filemarks
// (tape-medium.ts says why). One StoredTapeMedium per barcode is open at a time (a cartridge is
// in one drive). Opening a tape re-indexes the frames the lazy index had not caught up with
// (tape-recovery.ts) and starts a new generation, durably, before anything is written.
//
// Data space: every append asks the SpaceGuard of the data directory's file system first, and
// disk-full / I/O-error episodes are reported to StoreHealth (tape-medium.ts "Disk full"). Both
// are passed in (main.ts hands in the gateway-wide ones); by default the store makes its own.

import { constants } from 'node:fs';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Database } from './database.js';
import { TapeStoreError } from './tape-error.js';
import { decodeTapeHeader, encodeTapeHeader, type TapeHeader } from './tape-header.js';
import { isValidBarcode, TapeKeys } from './tape-keys.js';
import { StoredTapeMedium } from './tape-medium.js';
import { SpaceGuard } from './space-guard.js';
import { StoreHealth } from './store-health.js';
import { recoverTape } from './tape-recovery.js';

export interface NewTape {
  barcode: string;
  capacityBytes: number;
  worm?: boolean;
  /** Default: 1 % of the capacity, at least 16 MiB (never more than the capacity). */
  earlyWarningBytes?: number;
}

const MIN_EARLY_WARNING_BYTES = 16 * 1024 * 1024;

export interface TapeMediumStoreOptions {
  /** Where data files live; default `<dataDir>/tapes` next to the database's `<dataDir>/db`. */
  tapeDir?: string;
  /** Data space accounting of the tapes' file system; default a SpaceGuard of the data directory
   *  (its default reserve). Pass the gateway's, so all stores share one view of the disk. */
  spaceGuard?: SpaceGuard;
  /** Where disk-full and I/O-error episodes of tapes are reported; default a private StoreHealth
   *  (nothing reaches /health). Pass the gateway's. */
  storeHealth?: StoreHealth;
}

export class TapeMediumStore {
  private readonly db: Database;
  private readonly tapeDir: string;
  private readonly opened = new Map<string, StoredTapeMedium>();
  /** Barcodes being opened (recovery runs before they are tracked). */
  private readonly opening = new Set<string>();
  private readonly closeListeners = new Set<(barcode: string) => void>();
  readonly spaceGuard: SpaceGuard;
  readonly storeHealth: StoreHealth;

  /** `opts` as a string is the tape directory (the earlier signature). */
  constructor(db: Database, opts: TapeMediumStoreOptions | string = {}) {
    const options = typeof opts === 'string' ? { tapeDir: opts } : opts;
    this.db = db;
    const dataDir = dirname(db.location);
    this.tapeDir = options.tapeDir ?? join(dataDir, 'tapes');
    // The data directory exists (the database is in it); the tape directory may not yet.
    this.spaceGuard = options.spaceGuard ?? new SpaceGuard(dataDir);
    this.storeHealth = options.storeHealth ?? new StoreHealth();
  }

  /** Creates an empty tape (durably) and opens it at BOP. */
  async create(tape: NewTape): Promise<StoredTapeMedium> {
    if (!isValidBarcode(tape.barcode)) {
      throw new TapeStoreError('TAPE_INVALID', `invalid tape barcode ${JSON.stringify(tape.barcode)}`);
    }
    if (!Number.isSafeInteger(tape.capacityBytes) || tape.capacityBytes <= 0) {
      throw new TapeStoreError('TAPE_INVALID', `bad tape capacity ${tape.capacityBytes}`);
    }
    const earlyWarningBytes =
      tape.earlyWarningBytes ??
      Math.min(tape.capacityBytes, Math.max(MIN_EARLY_WARNING_BYTES, Math.floor(tape.capacityBytes / 100)));
    if (!Number.isSafeInteger(earlyWarningBytes) || earlyWarningBytes < 0 || earlyWarningBytes > tape.capacityBytes) {
      throw new TapeStoreError('TAPE_INVALID', `bad early warning size ${earlyWarningBytes}`);
    }
    if ((await this.header(tape.barcode)) !== undefined) {
      throw new TapeStoreError('TAPE_EXISTS', `tape ${tape.barcode} exists`);
    }
    const header: TapeHeader = {
      barcode: tape.barcode,
      capacityBytes: tape.capacityBytes,
      earlyWarningBytes,
      worm: tape.worm ?? false,
      writeProtected: false,
      eodObjectId: 0,
      filemarkCount: 0,
      usedBytes: 0,
      dataEndBytes: 0,
      generation: 0,
    };
    // The data file exists (and its directory entry is durable) before the header says the tape does.
    await mkdir(this.tapeDir, { recursive: true });
    const file = await open(this.dataPath(tape.barcode), constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC, 0o600);
    try {
      await file.sync();
      await syncDirectory(this.tapeDir);
      const keys = new TapeKeys(tape.barcode);
      await this.db.groupCommit.commit([{ type: 'put', key: keys.header(), value: encodeTapeHeader(header) }]);
    } catch (err) {
      await file.close();
      throw err;
    }
    return this.track(this.medium(header, file));
  }

  /** Opens a tape at BOP. */
  async open(barcode: string): Promise<StoredTapeMedium> {
    if (this.opened.has(barcode) || this.opening.has(barcode)) {
      throw new TapeStoreError('TAPE_IN_USE', `tape ${barcode} is open`);
    }
    this.opening.add(barcode);
    try {
      return this.track(await this.load(barcode));
    } finally {
      this.opening.delete(barcode);
    }
  }

  private async load(barcode: string): Promise<StoredTapeMedium> {
    const header = await this.header(barcode);
    if (header === undefined) throw new TapeStoreError('TAPE_NOT_FOUND', `no tape ${barcode}`);
    let file: FileHandle;
    try {
      file = await open(this.dataPath(barcode), constants.O_RDWR);
    } catch (err) {
      throw new TapeStoreError('TAPE_CORRUPT', `tape ${barcode}: cannot open its data file: ${String(err)}`, { cause: err });
    }
    try {
      const keys = new TapeKeys(barcode);
      const recovered = await recoverTape(file, header, keys);
      // Frames left beyond EOD (a group that was never acknowledged) belong to the old generation.
      const loaded: TapeHeader = { ...recovered.header, generation: recovered.header.generation + 1 };
      await this.db.groupCommit.commit([...recovered.ops, { type: 'put', key: keys.header(), value: encodeTapeHeader(loaded) }]);
      return this.medium(loaded, file);
    } catch (err) {
      await file.close();
      throw err;
    }
  }

  /** Pending writes land, then the tape is closed (unloaded). */
  async close(medium: StoredTapeMedium): Promise<void> {
    if (this.opened.get(medium.barcode) !== medium) return;
    try {
      await medium.close();
    } finally {
      this.opened.delete(medium.barcode);
    }
    for (const listener of this.closeListeners) listener(medium.barcode);
  }

  /** Calls `listener` after a tape was closed (unloaded) cleanly; returns the unsubscribe. */
  onClosed(listener: (barcode: string) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** Closes every open tape (shutdown); pending writes land first. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.opened.values()].map((medium) => this.close(medium)));
  }

  /** The durable header of a tape, or undefined. */
  async header(barcode: string): Promise<TapeHeader | undefined> {
    if (!isValidBarcode(barcode)) return undefined;
    const value = await this.db.level.get(new TapeKeys(barcode).header());
    return value === undefined ? undefined : decodeTapeHeader(value);
  }

  /** Deletes a closed tape: its header first (durably — the tape is gone), then index and data. */
  async delete(barcode: string): Promise<void> {
    if (this.opened.has(barcode) || this.opening.has(barcode)) throw new TapeStoreError('TAPE_IN_USE', `tape ${barcode} is open`);
    if ((await this.header(barcode)) === undefined) throw new TapeStoreError('TAPE_NOT_FOUND', `no tape ${barcode}`);
    const keys = new TapeKeys(barcode);
    await this.db.groupCommit.commit([{ type: 'del', key: keys.header() }]);
    // Leftovers after a crash here are stale entries of a tape without header: a tape created
    // later with the same barcode starts at EOD 0 and ignores them.
    await this.db.level.clear(keys.range());
    await rm(this.dataPath(barcode), { force: true });
    this.spaceGuard.released();
  }

  /** The tape is open (in a drive, or being archived): its data file may change. */
  isOpen(barcode: string): boolean {
    return this.opened.has(barcode) || this.opening.has(barcode);
  }

  /** The tape's data file (frames, tape-frame.ts), for readers of closed tapes (the tape uploader). */
  dataFilePath(barcode: string): string {
    return this.dataPath(barcode);
  }

  private medium(header: TapeHeader, file: FileHandle): StoredTapeMedium {
    return new StoredTapeMedium(this.db, header, file, { space: this.spaceGuard, health: this.storeHealth });
  }

  private track(medium: StoredTapeMedium): StoredTapeMedium {
    this.opened.set(medium.barcode, medium);
    return medium;
  }

  private dataPath(barcode: string): string {
    return join(this.tapeDir, `${barcode}.tape`);
  }
}

async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, constants.O_RDONLY);
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
