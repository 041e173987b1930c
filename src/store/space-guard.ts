// Free-space accounting of the data directory's file system (issue "disk full never loses an
// acknowledged write"). Stores ask `reserve(bytes)` before appending data; the answer is false when
// the append would eat into the reserve that the Level index (checkpoints, compactions) and the
// stores' own metadata always keep, so data space runs out before the index can fail.
//
// statfs is a system call on the thread pool; it is asked at most every `refreshMs` or after
// `refreshBytes` were reserved since, and the free space in between is the last answer minus what
// was reserved since (a lower bound while other processes leave the file system alone).

import { statfs } from 'node:fs/promises';

export interface SpaceGuardOptions {
  /** Bytes that data appends never use (default 32 MiB, at most a quarter of the file system). */
  reserveBytes?: number;
  refreshMs?: number;
  refreshBytes?: number;
}

export class SpaceGuard {
  readonly path: string;
  private reserveBytes: number;
  private readonly configuredReserveBytes: number | undefined;
  private readonly refreshMs: number;
  private readonly refreshBytes: number;
  private availableBytes = Number.POSITIVE_INFINITY;
  private reservedSinceBytes = 0;
  private refreshedAtMs = 0;
  private refreshing: Promise<void> | null = null;

  constructor(path: string, opts: SpaceGuardOptions = {}) {
    this.path = path;
    this.configuredReserveBytes = opts.reserveBytes;
    this.reserveBytes = opts.reserveBytes ?? 32 * 1024 * 1024;
    this.refreshMs = opts.refreshMs ?? 250;
    this.refreshBytes = opts.refreshBytes ?? 16 * 1024 * 1024;
  }

  /** Asks the file system now. */
  async refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const stats = await statfs(this.path);
        const totalBytes = Number(stats.blocks) * Number(stats.bsize);
        this.availableBytes = Number(stats.bavail) * Number(stats.bsize);
        if (this.configuredReserveBytes === undefined) {
          this.reserveBytes = Math.min(32 * 1024 * 1024, Math.floor(totalBytes / 4));
        }
        this.reservedSinceBytes = 0;
        this.refreshedAtMs = Date.now();
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /** Bytes data may still use (after the reserve), by the last answer. */
  get freeBytes(): number {
    return this.availableBytes - this.reservedSinceBytes - this.reserveBytes;
  }

  /** True (and counted) when `bytes` more data fit above the reserve. */
  async reserve(bytes: number): Promise<boolean> {
    const stale = Date.now() - this.refreshedAtMs > this.refreshMs || this.reservedSinceBytes > this.refreshBytes;
    if (stale || this.freeBytes < bytes) await this.refresh();
    if (this.freeBytes < bytes) return false;
    this.reservedSinceBytes += bytes;
    return true;
  }

  /** Space was given back (a segment or tape data deleted, a file truncated). */
  released(): void {
    this.refreshedAtMs = 0;
  }
}
