// The virtual tape shelf (VTS): the tapes archived from this gateway (AWS TapeArchive), with their
// archive id, checksum manifest, pool and retention dates, plus the rules that guard them: a tape
// in a pool with a retention lock can be neither deleted nor moved to another pool until the lock
// expires (COMPLIANCE: nobody; GOVERNANCE: only with BypassGovernanceRetention). Records live in
// Level (store/tape-shelf-store.ts) and in memory.

import type { Database } from '../store/database.js';
import { listTapeShelfRecords, putTapeShelfRecord, type TapeShelfRecord } from '../store/tape-shelf-store.js';
import { GatewayError } from './gateway-error.js';
import type { TapePool, TapeStorageClass } from './tape-pools.js';

const DAY_MS = 86_400_000;

/** The pool facts the shelf needs (TapePools satisfies it). */
export interface PoolLookup {
  get(poolId: string): TapePool | undefined;
}

/** The storage class behind a pool id: a built-in pool is its own class. */
export function storageClassOf(poolId: string, pools: PoolLookup): TapeStorageClass {
  if (poolId === 'GLACIER' || poolId === 'DEEP_ARCHIVE') return poolId;
  const pool = pools.get(poolId);
  if (!pool) throw new GatewayError('GW_POOL_NOT_FOUND', `no tape pool ${poolId}`);
  return pool.storageClass;
}

/** When the retention lock of an archived tape ends, or undefined when it has none. */
export function retentionExpiry(record: TapeShelfRecord, pools: PoolLookup): { type: 'COMPLIANCE' | 'GOVERNANCE'; untilMs: number } | undefined {
  const pool = pools.get(record.poolId);
  if (!pool || pool.retentionLockType === 'NONE' || record.retentionStartDate === undefined) return undefined;
  return { type: pool.retentionLockType, untilMs: Date.parse(record.retentionStartDate) + pool.retentionLockTimeInDays * DAY_MS };
}

/** Refuses removing a tape from its pool (DeleteTapeArchive, AssignTapePool) under a retention
 *  lock that has not expired at `nowMs`. */
export function checkRetention(record: TapeShelfRecord, pools: PoolLookup, nowMs: number, opts: { bypassGovernanceRetention?: boolean; action: string }): void {
  const lock = retentionExpiry(record, pools);
  if (!lock || nowMs >= lock.untilMs) return;
  const until = new Date(lock.untilMs).toISOString();
  if (lock.type === 'GOVERNANCE' && opts.bypassGovernanceRetention === true) return;
  const hint = lock.type === 'GOVERNANCE' ? '; BypassGovernanceRetention allows it' : '; nobody can shorten a compliance lock';
  throw new GatewayError(
    'GW_TAPE_RETENTION_LOCKED',
    `cannot ${opts.action} tape ${record.barcode}: pool ${record.poolId} holds it under ${lock.type} retention lock until ${until}${hint}`,
  );
}

export class TapeShelf {
  readonly #db: Database;
  readonly #records = new Map<string, TapeShelfRecord>();

  private constructor(db: Database, records: TapeShelfRecord[]) {
    this.#db = db;
    for (const r of records) this.#records.set(r.barcode, r);
  }

  static async open(db: Database): Promise<TapeShelf> {
    return new TapeShelf(db, await listTapeShelfRecords(db));
  }

  get(barcode: string): TapeShelfRecord | undefined {
    const r = this.#records.get(barcode);
    return r ? structuredClone(r) : undefined;
  }

  list(): TapeShelfRecord[] {
    return [...this.#records.values()].map((r) => structuredClone(r)).sort((a, b) => a.barcode.localeCompare(b.barcode));
  }

  /** Durable, then current. */
  async put(record: TapeShelfRecord): Promise<void> {
    await putTapeShelfRecord(this.#db, record);
    this.#records.set(record.barcode, structuredClone(record));
  }
}
