// Per-drive throughput for /metrics without touching iscsi/: the library hands each drive a
// TapeMedium; wrapping the drive wraps every medium inserted into it in a decorator that counts
// the record bytes READ and WRITE move through it (SSC-4 READ(6) / WRITE(6) records).

import type {
  TapeMedium,
  TapePosition,
  TapeReadResult,
  TapeSpaceResult,
  TapeWriteOptions,
  TapeWriteResult,
} from '../../iscsi/device.js';
import type { LibraryDrive } from './tape-library.js';

export interface TapeDriveCounters {
  readBytes: number;
  readRecords: number;
  writeBytes: number;
  writeRecords: number;
  /** Barcode of the tape in the drive, if any. */
  loaded(): string | undefined;
}

class CountingTapeMedium implements TapeMedium {
  readonly #inner: TapeMedium;
  readonly #counters: TapeDriveCounters;

  constructor(inner: TapeMedium, counters: TapeDriveCounters) {
    this.#inner = inner;
    this.#counters = counters;
  }

  get barcode(): string {
    return this.#inner.barcode;
  }
  get capacityBytes(): number {
    return this.#inner.capacityBytes;
  }
  get earlyWarningBytes(): number {
    return this.#inner.earlyWarningBytes;
  }
  get worm(): boolean {
    return this.#inner.worm;
  }
  writeProtected(): boolean {
    return this.#inner.writeProtected();
  }
  usedBytes(): number {
    return this.#inner.usedBytes();
  }
  position(): TapePosition {
    return this.#inner.position();
  }

  async writeRecord(data: Buffer, opts?: TapeWriteOptions): Promise<TapeWriteResult> {
    const lengthBytes = data.length;
    const result = await this.#inner.writeRecord(data, opts);
    this.#counters.writeBytes += lengthBytes;
    this.#counters.writeRecords++;
    return result;
  }

  writeFilemarks(count: number, opts?: TapeWriteOptions): Promise<TapeWriteResult> {
    return this.#inner.writeFilemarks(count, opts);
  }
  flush(): Promise<void> {
    return this.#inner.flush();
  }

  async read(into?: Buffer): Promise<TapeReadResult> {
    const result = await this.#inner.read(into);
    if (result.kind === 'record') {
      this.#counters.readBytes += result.data.length;
      this.#counters.readRecords++;
    }
    return result;
  }

  spaceRecords(count: number): Promise<TapeSpaceResult> {
    return this.#inner.spaceRecords(count);
  }
  spaceFilemarks(count: number): Promise<TapeSpaceResult> {
    return this.#inner.spaceFilemarks(count);
  }
  spaceToEndOfData(): Promise<void> {
    return this.#inner.spaceToEndOfData();
  }
  locate(logicalObjectId: number): Promise<{ beyondEndOfData: boolean }> {
    return this.#inner.locate(logicalObjectId);
  }
  locateFile(fileNumber: number): Promise<{ beyondEndOfData: boolean }> {
    return this.#inner.locateFile(fileNumber);
  }
  rewind(): Promise<void> {
    return this.#inner.rewind();
  }
  erase(): Promise<void> {
    return this.#inner.erase();
  }
}

/** `drive` as the library sees it, counting what flows through the media inserted into it. */
export function countingDrive(drive: LibraryDrive): { drive: LibraryDrive; counters: TapeDriveCounters } {
  const counters: TapeDriveCounters = {
    readBytes: 0,
    readRecords: 0,
    writeBytes: 0,
    writeRecords: 0,
    loaded: () => drive.loadedMedium()?.barcode,
  };
  const wrapped: LibraryDrive = {
    get serialNumber() {
      return drive.serialNumber;
    },
    insertMedium: (medium) => drive.insertMedium(new CountingTapeMedium(medium, counters)),
    removalState: () => drive.removalState(),
    removeMedium: () => drive.removeMedium(),
    loadedMedium: () => drive.loadedMedium(),
  };
  return { drive: wrapped, counters };
}
