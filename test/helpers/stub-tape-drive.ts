// A tape drive as the library sees it (src/gateway/tape-library.ts LibraryDrive), with the
// cartridge's load state set by the test: what LOAD UNLOAD and PREVENT ALLOW MEDIUM REMOVAL on a
// real drive LU (iscsi/scsi/tape-drive.ts) would do.

import type { TapeMedium } from '../../iscsi/device.js';
import type { LibraryDrive } from '../../src/gateway/tape-library.js';

export class StubTapeDrive implements LibraryDrive {
  readonly serialNumber: string;
  #medium: TapeMedium | undefined;
  /** LOAD UNLOAD with LOAD=0 has been done since the cartridge came in. */
  unloaded = false;
  /** PREVENT ALLOW MEDIUM REMOVAL with PREVENT=1 holds on the drive. */
  removalPrevented = false;

  constructor(serialNumber: string) {
    this.serialNumber = serialNumber;
  }

  insertMedium(medium: TapeMedium): void {
    this.#medium = medium;
    this.unloaded = false;
  }

  removalState(): 'empty' | 'ready' | 'not-unloaded' | 'removal-prevented' {
    if (!this.#medium) return 'empty';
    if (this.removalPrevented) return 'removal-prevented';
    return this.unloaded ? 'ready' : 'not-unloaded';
  }

  async removeMedium(): Promise<TapeMedium> {
    const medium = this.#medium;
    if (!medium) throw new Error('no medium');
    await medium.flush();
    this.#medium = undefined;
    return medium;
  }

  loadedMedium(): TapeMedium | undefined {
    return this.#medium;
  }
}
