// Per-volume I/O counters for /metrics: a BlockBackend that forwards to another and counts what
// completed successfully (bytes and operations), so the numbers are what initiators really got.

import type { BlockBackend } from '../../iscsi/device.js';

export interface BackendCounters {
  readOps: number;
  readBytes: number;
  writeOps: number;
  writeBytes: number;
  unmapOps: number;
  unmapBytes: number;
  errors: number;
}

export function newBackendCounters(): BackendCounters {
  return { readOps: 0, readBytes: 0, writeOps: 0, writeBytes: 0, unmapOps: 0, unmapBytes: 0, errors: 0 };
}

export function countingBackend(backend: BlockBackend, counters: BackendCounters): BlockBackend {
  const counted = async <T>(op: Promise<T>, done: (result: T) => void): Promise<T> => {
    try {
      const result = await op;
      done(result);
      return result;
    } catch (err) {
      counters.errors++;
      throw err;
    }
  };
  return {
    get blockSize() {
      return backend.blockSize;
    },
    get serial() {
      return backend.serial;
    },
    get naaId() {
      return backend.naaId;
    },
    blockCount: () => backend.blockCount(),
    read: (lba, blockCount) =>
      counted(backend.read(lba, blockCount), (data) => {
        counters.readOps++;
        counters.readBytes += data.length;
      }),
    write: (lba, data, opts) =>
      counted(backend.write(lba, data, opts), () => {
        counters.writeOps++;
        counters.writeBytes += data.length;
      }),
    unmap: (lba, blockCount, opts) =>
      counted(backend.unmap(lba, blockCount, opts), () => {
        counters.unmapOps++;
        counters.unmapBytes += blockCount * backend.blockSize;
      }),
    mapStatus: (lba, blockCount) => backend.mapStatus(lba, blockCount),
    flush: () => backend.flush(),
    writeCacheEnabled: () => backend.writeCacheEnabled(),
    setWriteCacheEnabled: (enabled) => backend.setWriteCacheEnabled(enabled),
  };
}
