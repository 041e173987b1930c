// Group commit: every caller's operations go into the next synced Level batch; while one batch is
// being written (fsync), new operations accumulate and are written together as soon as it lands.
// At QD32 one fsync acknowledges up to 32 writes, so throughput scales with queue depth while each
// write is still acknowledged only after `{ sync: true }` returned.
//
// This is the single place where batches are built: a later issue appends the upload-queue entry
// for a block write here, in the same batch.

import type { Level } from 'level';
import { StoreError } from './store-error.js';

export type BatchOp =
  | { type: 'put'; key: Buffer; value: Buffer }
  | { type: 'del'; key: Buffer };

interface PendingGroup {
  ops: BatchOp[];
  byteLength: number;
  done: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** A pending group is closed at this size and a new one started behind it; this only bounds the
 *  memory of one batch (LevelDB serialises writers anyway, so bigger batches would not be faster). */
const MAX_GROUP_BYTES = 64 * 1024 * 1024;

export class GroupCommit {
  private readonly db: Level<Buffer, Buffer>;
  private inFlight: Promise<void> | null = null;
  private pending: PendingGroup | null = null;
  private queued: PendingGroup[] = [];
  private closed = false;
  /** Synced batches written so far (shows how well writes coalesce). */
  batchCount = 0;

  constructor(db: Level<Buffer, Buffer>) {
    this.db = db;
  }

  /** Resolves when `ops` are durable (part of a batch written with sync). */
  commit(ops: BatchOp[]): Promise<void> {
    if (this.closed) {
      return Promise.reject(new StoreError('STORE_CLOSED', 'the store is closed'));
    }
    let group = this.pending;
    if (group === null || group.byteLength >= MAX_GROUP_BYTES) {
      if (group !== null) this.queued.push(group);
      group = newGroup();
      this.pending = group;
    }
    for (const op of ops) {
      group.ops.push(op);
      group.byteLength += op.key.length + (op.type === 'put' ? op.value.length : 0);
    }
    const done = group.done;
    if (this.inFlight === null) this.writeNext();
    return done;
  }

  /** Resolves when everything committed so far is durable. */
  async drain(): Promise<void> {
    while (this.inFlight !== null) await this.inFlight.catch(() => undefined);
  }

  /** Waits for in-flight batches, then refuses new commits. */
  async close(): Promise<void> {
    await this.drain();
    this.closed = true;
  }

  private writeNext(): void {
    let group: PendingGroup | null;
    if (this.queued.length > 0) {
      group = this.queued.shift() ?? null;
    } else {
      group = this.pending;
      this.pending = null;
    }
    if (group === null) {
      this.inFlight = null;
      return;
    }
    const g = group;
    this.batchCount++;
    this.inFlight = this.db
      .batch(g.ops, { sync: true })
      .then(
        () => g.resolve(),
        (err: unknown) =>
          g.reject(new StoreError('STORE_IO', `Level batch write failed: ${String(err)}`, { transient: true, cause: err })),
      )
      .finally(() => this.writeNext());
  }
}

function newGroup(): PendingGroup {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A group nobody awaits any more must not become an unhandled rejection.
  done.catch(() => undefined);
  return { ops: [], byteLength: 0, done, resolve, reject };
}
