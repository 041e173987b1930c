// A StoreFileSystem (src/store/store-file.ts) over the real one that can "cut the power", as
// RocksDB's FaultInjectionTestFS does: `cut()` discards every byte not covered by a completed
// `datasync` and every file whose directory entry was never synced. Writes since the last datasync
// are, by the mode: all dropped ('drop-all'), or each one kept, dropped or torn at a 512-byte
// sector boundary at random ('random': the page cache writes back in any order).
//
// Simplifications, on the side of the stores: `truncate` and `unlink` are durable at once.

import { constants } from 'node:fs';
import { access, open, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { nodeStoreFileSystem, type StoreFile, type StoreFileSystem } from '../../src/store/store-file.js';

interface Unsynced {
  position: number;
  length: number;
  /** The bytes the write covered that existed before it (within sizeBefore). */
  old: Buffer;
  sizeBefore: number;
}

interface Tracked {
  syncedSize: number;
  size: number;
  unsynced: Unsynced[];
  entryDurable: boolean;
}

export type CutMode = 'drop-all' | 'random';

export class PowerCutFileSystem implements StoreFileSystem {
  private readonly tracked = new Map<string, Tracked>();
  private readonly real: StoreFileSystem = nodeStoreFileSystem;
  /** Completed datasyncs (shows the test exercised flushes). */
  datasyncs = 0;

  async open(path: string, opts: { create: boolean }): Promise<StoreFile> {
    let existed = true;
    try {
      await access(path, constants.F_OK);
    } catch {
      existed = false;
    }
    const file = await this.real.open(path, opts);
    let state = this.tracked.get(path);
    if (state === undefined) {
      const size = await file.sizeBytes();
      state = { syncedSize: size, size, unsynced: [], entryDurable: existed };
      this.tracked.set(path, state);
    }
    return this.wrap(path, file, state);
  }

  private wrap(path: string, file: StoreFile, state: Tracked): StoreFile {
    return {
      path,
      write: async (buffers, positionBytes) => {
        let length = 0;
        for (const b of buffers) length += b.length;
        const oldLength = Math.max(0, Math.min(positionBytes + length, state.size) - positionBytes);
        const old = Buffer.alloc(oldLength);
        if (oldLength > 0) await file.read(old, 0, oldLength, positionBytes);
        state.unsynced.push({ position: positionBytes, length, old, sizeBefore: state.size });
        state.size = Math.max(state.size, positionBytes + length);
        await file.write(buffers, positionBytes);
      },
      read: (into, offsetBytes, lengthBytes, positionBytes) => file.read(into, offsetBytes, lengthBytes, positionBytes),
      datasync: async () => {
        const covered = state.unsynced.length;
        const size = state.size;
        await file.datasync();
        state.unsynced.splice(0, covered);
        state.syncedSize = Math.max(state.syncedSize, size);
        this.datasyncs++;
      },
      truncate: async (lengthBytes) => {
        await file.truncate(lengthBytes);
        state.size = lengthBytes;
        state.syncedSize = Math.min(state.syncedSize, lengthBytes);
        state.unsynced = state.unsynced.filter((u) => u.position < lengthBytes);
      },
      sizeBytes: () => file.sizeBytes(),
      close: () => file.close(),
    };
  }

  list(dir: string): Promise<string[]> {
    return this.real.list(dir);
  }

  mkdir(dir: string): Promise<void> {
    return this.real.mkdir(dir);
  }

  async unlink(path: string): Promise<void> {
    this.tracked.delete(path);
    await this.real.unlink(path);
  }

  async removeTree(dir: string): Promise<void> {
    for (const path of [...this.tracked.keys()]) if (path.startsWith(dir)) this.tracked.delete(path);
    await this.real.removeTree(dir);
  }

  async syncDirectory(dir: string): Promise<void> {
    await this.real.syncDirectory(dir);
    for (const [path, state] of this.tracked) if (dirname(path) === dir) state.entryDurable = true;
  }

  /** The power cut. Call after every handle of the store was closed (its process "died"). */
  async cut(mode: CutMode, random: () => number): Promise<{ droppedWrites: number; tornWrites: number; droppedFiles: number }> {
    const result = { droppedWrites: 0, tornWrites: 0, droppedFiles: 0 };
    for (const [path, state] of this.tracked) {
      if (!state.entryDurable) {
        await rm(path, { force: true });
        result.droppedFiles++;
        continue;
      }
      const handle = await open(path, 'r+');
      try {
        let keptEnd = state.syncedSize;
        for (const u of [...state.unsynced].reverse()) {
          const choice = mode === 'drop-all' ? 0 : Math.floor(random() * 3);
          if (choice === 1) {
            keptEnd = Math.max(keptEnd, u.position + u.length);
            continue;
          }
          // Dropped (0) or torn (2): a suffix of the write goes back to what was there before.
          const sectors = Math.ceil(u.length / 512);
          const keptBytes = choice === 2 ? Math.min(u.length, Math.floor(random() * sectors) * 512) : 0;
          if (choice === 2) result.tornWrites++;
          else result.droppedWrites++;
          const restoreFrom = u.position + keptBytes;
          const restoreEnd = u.position + u.length;
          const restored = Buffer.alloc(restoreEnd - restoreFrom);
          u.old.copy(restored, 0, Math.min(u.old.length, keptBytes));
          await handle.write(restored, 0, restored.length, restoreFrom);
          if (keptBytes > 0) keptEnd = Math.max(keptEnd, u.position + keptBytes);
          else keptEnd = Math.max(keptEnd, Math.min(u.sizeBefore, restoreEnd));
        }
        await handle.truncate(Math.min(state.size, keptEnd));
      } finally {
        await handle.close();
      }
    }
    this.tracked.clear();
    return result;
  }
}
