// The file layer under the volume segment log (segment-log.ts). Stores reach the disk only through
// a StoreFileSystem, so tests can put a power-cut simulator underneath it
// (test/helpers/power-cut-file-system.ts: every byte not covered by a completed `datasync` is
// discarded at the "cut", as RocksDB's fault-injection file system does).
//
// Semantics the stores rely on, as POSIX gives them on Linux:
//  - `write` resolves when the kernel has the bytes (a crash of the process loses nothing);
//  - `datasync` (fdatasync) resolves when every byte written before it is on stable storage;
//  - a new file's directory entry is durable after `syncDirectory` of its parent.

import { constants, readSync, writevSync } from 'node:fs';
import { mkdir, open, readdir, rm, type FileHandle } from 'node:fs/promises';

export interface StoreFile {
  readonly path: string;
  /** pwritev: all of `buffers` at `positionBytes`, or an error (a short write is an error). */
  write(buffers: readonly Buffer[], positionBytes: number): Promise<void>;
  /** pread into `into[offset, offset+length)`; answers the bytes read (short at end of file). */
  read(into: Buffer, offsetBytes: number, lengthBytes: number, positionBytes: number): Promise<number>;
  datasync(): Promise<void>;
  truncate(lengthBytes: number): Promise<void>;
  sizeBytes(): Promise<number>;
  close(): Promise<void>;
}

export interface StoreFileSystem {
  /** Opens `path` for reading and writing; `create` makes it when missing (mode 0600). */
  open(path: string, opts: { create: boolean }): Promise<StoreFile>;
  /** File names in `dir` (not paths); [] when the directory does not exist. */
  list(dir: string): Promise<string[]>;
  mkdir(dir: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Removes a directory tree (a deleted volume's segments). */
  removeTree(dir: string): Promise<void>;
  syncDirectory(dir: string): Promise<void>;
}

/** An error with an errno code such as ENOSPC or EIO. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Reads and writes up to this size go straight to the kernel from the event loop: copying 64 KiB
 *  to or from the page cache takes microseconds, less than a round trip through the thread pool
 *  (which is what makes a 4 KiB command slow at queue depth 1). Larger ones use the pool. */
const DIRECT_IO_MAX_BYTES = 64 * 1024;

class NodeStoreFile implements StoreFile {
  readonly path: string;
  private readonly handle: FileHandle;

  constructor(path: string, handle: FileHandle) {
    this.path = path;
    this.handle = handle;
  }

  async write(buffers: readonly Buffer[], positionBytes: number): Promise<void> {
    let expected = 0;
    for (const b of buffers) expected += b.length;
    let written = 0;
    let pending = [...buffers];
    const direct = expected <= DIRECT_IO_MAX_BYTES;
    while (written < expected) {
      const bytesWritten = direct
        ? writevSync(this.handle.fd, pending, positionBytes + written)
        : (await this.handle.writev(pending, positionBytes + written)).bytesWritten;
      if (bytesWritten <= 0) {
        throw Object.assign(new Error(`short write to ${this.path}: ${written} of ${expected} bytes`), { code: 'ENOSPC' });
      }
      written += bytesWritten;
      pending = skipBytes(pending, bytesWritten);
    }
  }

  async read(into: Buffer, offsetBytes: number, lengthBytes: number, positionBytes: number): Promise<number> {
    let done = 0;
    const direct = lengthBytes <= DIRECT_IO_MAX_BYTES;
    while (done < lengthBytes) {
      const bytesRead = direct
        ? readSync(this.handle.fd, into, offsetBytes + done, lengthBytes - done, positionBytes + done)
        : (await this.handle.read(into, offsetBytes + done, lengthBytes - done, positionBytes + done)).bytesRead;
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  datasync(): Promise<void> {
    return this.handle.datasync();
  }

  truncate(lengthBytes: number): Promise<void> {
    return this.handle.truncate(lengthBytes);
  }

  async sizeBytes(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

function skipBytes(buffers: Buffer[], count: number): Buffer[] {
  const out: Buffer[] = [];
  let skip = count;
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

/** The real file system. */
export const nodeStoreFileSystem: StoreFileSystem = {
  async open(path, opts) {
    const flags = opts.create ? constants.O_RDWR | constants.O_CREAT : constants.O_RDWR;
    return new NodeStoreFile(path, await open(path, flags, 0o600));
  },
  async list(dir) {
    try {
      return await readdir(dir);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return [];
      throw err;
    }
  },
  async mkdir(dir) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  },
  async unlink(path) {
    await rm(path, { force: true });
  },
  async removeTree(dir) {
    await rm(dir, { recursive: true, force: true });
  },
  async syncDirectory(dir) {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
};
