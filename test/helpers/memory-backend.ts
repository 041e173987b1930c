// An in-memory, sparse BlockBackend for unit tests: only written blocks take memory; unmapped
// blocks read as zeros. Capacity can be changed to exercise CAPACITY DATA HAS CHANGED.

import type { BlockBackend, WriteOptions } from '../../iscsi/device.js';

export class MemoryBackend implements BlockBackend {
  readonly blockSize: number;
  readonly serial: string;
  readonly naaId: string;
  #blockCount: number;
  readonly #blocks = new Map<number, Buffer>();
  /** SBC-3 6.4.5 WCE (memory is as durable as it gets here; the flag is only reported). */
  writeCache = true;
  /** What reached the backend, for tests of FUA / SYNCHRONIZE CACHE / WCE handling. */
  readonly calls = {
    writes: 0,
    /** Writes with `fua: true`. */
    fuaWrites: 0,
    unmaps: 0,
    fuaUnmaps: 0,
    flushes: 0,
    /** setWriteCacheEnabled calls, with their argument. */
    setWriteCache: [] as boolean[],
  };
  /** Set to make every call fail with this error (e.g. `{ transient: true }`). */
  failWith: unknown = null;

  constructor(opts: { blockSize?: number; blockCount?: number; serial?: string; naaId?: string } = {}) {
    this.blockSize = opts.blockSize ?? 512;
    this.#blockCount = opts.blockCount ?? 1024;
    this.serial = opts.serial ?? 'SG0123456789';
    this.naaId = opts.naaId ?? '6001405abcdef012';
  }

  blockCount(): number {
    return this.#blockCount;
  }

  resize(blockCount: number): void {
    this.#blockCount = blockCount;
  }

  /** Blocks currently holding data. */
  get mappedBlockCount(): number {
    return this.#blocks.size;
  }

  #check(lba: number, blockCount: number): void {
    if (this.failWith !== null) throw this.failWith;
    if (lba < 0 || blockCount < 0 || lba + blockCount > this.#blockCount) throw new Error(`backend range ${lba}+${blockCount}`);
  }

  async read(lba: number, blockCount: number): Promise<Buffer> {
    this.#check(lba, blockCount);
    const out = Buffer.alloc(blockCount * this.blockSize);
    for (let i = 0; i < blockCount; i++) this.#blocks.get(lba + i)?.copy(out, i * this.blockSize);
    return out;
  }

  async write(lba: number, data: Buffer, opts: WriteOptions = {}): Promise<void> {
    if (data.length % this.blockSize !== 0) throw new Error('partial block write');
    const blockCount = data.length / this.blockSize;
    this.#check(lba, blockCount);
    this.calls.writes++;
    if (opts.fua === true) this.calls.fuaWrites++;
    for (let i = 0; i < blockCount; i++) {
      this.#blocks.set(lba + i, Buffer.from(data.subarray(i * this.blockSize, (i + 1) * this.blockSize)));
    }
  }

  writeCacheEnabled(): boolean {
    return this.writeCache;
  }

  async setWriteCacheEnabled(enabled: boolean): Promise<void> {
    if (this.failWith !== null) throw this.failWith;
    this.calls.setWriteCache.push(enabled);
    this.writeCache = enabled;
  }

  async unmap(lba: number, blockCount: number, opts: WriteOptions = {}): Promise<void> {
    this.#check(lba, blockCount);
    this.calls.unmaps++;
    if (opts.fua === true) this.calls.fuaUnmaps++;
    for (let i = 0; i < blockCount; i++) this.#blocks.delete(lba + i);
  }

  async mapStatus(lba: number, blockCount: number): Promise<Array<{ lba: number; blockCount: number; mapped: boolean }>> {
    this.#check(lba, blockCount);
    const runs: Array<{ lba: number; blockCount: number; mapped: boolean }> = [];
    for (let i = 0; i < blockCount; i++) {
      const mapped = this.#blocks.has(lba + i);
      const last = runs[runs.length - 1];
      if (last && last.mapped === mapped) last.blockCount++;
      else runs.push({ lba: lba + i, blockCount: 1, mapped });
    }
    return runs;
  }

  async flush(): Promise<void> {
    if (this.failWith !== null) throw this.failWith;
    this.calls.flushes++;
  }
}
