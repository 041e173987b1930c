// Free-space accounting of the data directory's file system (issue "disk full never loses an
// acknowledged write"). Stores ask `reserve(bytes)` before appending data; the answer is false when
// the append would eat into the reserve that the Level index (checkpoints, compactions) and the
// stores' own metadata always keep, so data space runs out before the index can fail.
//
// Another process may fill the disk regardless. Against that the guard keeps a reserve FILE
// (`<dataDir>/space-reserve`, preallocated with real bytes): when the file system is nearly full
// the file is deleted, which hands its space to the index; it is made again once space returns.
// `critical()` tells the stores to postpone index writes (volume checkpoints) while even that is
// gone: their data is safe in the logs and replayed at the next start.
//
// statfs is a system call on the thread pool; it is asked at most every `refreshMs` or after
// `refreshBytes` were reserved since, and the free space in between is the last answer minus what
// was reserved since (a lower bound while other processes leave the file system alone).

import { statfs, open, rm } from 'node:fs/promises';
import { join } from 'node:path';

export interface SpaceGuardOptions {
  /** Bytes that data appends never use (default 32 MiB, at most a quarter of the file system). */
  reserveBytes?: number;
  /** Size of the reserve file (default 8 MiB, at most a sixteenth of the file system); 0: none. */
  reserveFileBytes?: number;
  refreshMs?: number;
  refreshBytes?: number;
  log?: { info(message: string, fields?: Record<string, unknown>): void; warn(message: string, fields?: Record<string, unknown>): void };
}

const CRITICAL_BYTES = 1024 * 1024;

export class SpaceGuard {
  readonly path: string;
  private reserveBytes: number;
  private reserveFileBytes: number;
  private readonly opts: SpaceGuardOptions;
  private readonly refreshMs: number;
  private readonly refreshBytes: number;
  private availableBytes = Number.POSITIVE_INFINITY;
  private totalBytes = Number.POSITIVE_INFINITY;
  private reservedSinceBytes = 0;
  private refreshedAtMs = 0;
  private refreshing: Promise<void> | null = null;
  private reserveFilePresent = false;

  constructor(path: string, opts: SpaceGuardOptions = {}) {
    this.path = path;
    this.opts = opts;
    this.reserveBytes = opts.reserveBytes ?? 32 * 1024 * 1024;
    this.reserveFileBytes = opts.reserveFileBytes ?? 8 * 1024 * 1024;
    this.refreshMs = opts.refreshMs ?? 250;
    this.refreshBytes = opts.refreshBytes ?? 16 * 1024 * 1024;
  }

  private get reserveFilePath(): string {
    return join(this.path, 'space-reserve');
  }

  /** Asks the file system now; makes or releases the reserve file as the space requires. */
  async refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        await this.measure();
        if (!this.reserveFilePresent && this.reserveFileBytes > 0 && this.availableBytes > this.reserveBytes + 2 * this.reserveFileBytes) {
          await this.makeReserveFile();
          await this.measure();
        } else if (this.reserveFilePresent && this.availableBytes < CRITICAL_BYTES) {
          await rm(this.reserveFilePath, { force: true });
          this.reserveFilePresent = false;
          this.opts.log?.warn('the data directory is full: released the space reserve to the index', { path: this.path, bytes: this.reserveFileBytes });
          await this.measure();
        }
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  private async measure(): Promise<void> {
    const stats = await statfs(this.path);
    this.totalBytes = Number(stats.blocks) * Number(stats.bsize);
    this.availableBytes = Number(stats.bavail) * Number(stats.bsize);
    if (this.opts.reserveBytes === undefined) this.reserveBytes = Math.min(32 * 1024 * 1024, Math.floor(this.totalBytes / 4));
    if (this.opts.reserveFileBytes === undefined) this.reserveFileBytes = Math.min(8 * 1024 * 1024, Math.floor(this.totalBytes / 16));
    this.reservedSinceBytes = 0;
    this.refreshedAtMs = Date.now();
  }

  private async makeReserveFile(): Promise<void> {
    const handle = await open(this.reserveFilePath, 'w', 0o600);
    try {
      const zeros = Buffer.alloc(Math.min(this.reserveFileBytes, 1024 * 1024));
      for (let at = 0; at < this.reserveFileBytes; at += zeros.length) await handle.write(zeros, 0, Math.min(zeros.length, this.reserveFileBytes - at), at);
      await handle.sync();
      this.reserveFilePresent = true;
    } catch (err) {
      await rm(this.reserveFilePath, { force: true });
      this.opts.log?.warn('could not make the space reserve file', { path: this.reserveFilePath, err: String(err) });
    } finally {
      await handle.close();
    }
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

  /** Even the reserve is (nearly) gone: postpone index writes that can wait. */
  critical(): boolean {
    return this.availableBytes - this.reservedSinceBytes < CRITICAL_BYTES && !this.reserveFilePresent;
  }

  /** Space was given back (a segment or tape data deleted, a file truncated). */
  released(): void {
    this.refreshedAtMs = 0;
  }
}
