// Custom tape pools (AWS CreateTapePool / ListTapePools / DeleteTapePool): a name, the archive
// storage class and a retention lock. Here the pools are a catalog that tapes name in their PoolId;
// what retention means for archived tapes is the archive's business (issue 4). The two built-in
// pools GLACIER and DEEP_ARCHIVE always exist and are not listed (AWS lists custom pools only).
// The catalog is one JSON value in the settings key space, written durably before a call returns.

import { z } from 'zod';
import { randomBytes } from 'node:crypto';
import type { Database } from '../store/database.js';
import { getSetting, putSetting } from '../store/settings-catalog.js';
import { GatewayError } from './gateway-error.js';

const POOLS_SETTING = 'tape-pools';

export const STORAGE_CLASSES = ['DEEP_ARCHIVE', 'GLACIER'] as const;
export type TapeStorageClass = (typeof STORAGE_CLASSES)[number];
export const RETENTION_LOCK_TYPES = ['COMPLIANCE', 'GOVERNANCE', 'NONE'] as const;
export type RetentionLockType = (typeof RETENTION_LOCK_TYPES)[number];
/** The built-in pools a tape may name in PoolId without creating them. */
export const BUILT_IN_POOL_IDS: readonly string[] = STORAGE_CLASSES;

/** AWS CreateTapePool limits. */
export const MAX_POOL_NAME_LENGTH = 100;
export const MAX_RETENTION_LOCK_DAYS = 36500;

export interface TapePool {
  /** "pool-" + 8 hex digits, the last part of the PoolARN. */
  poolId: string;
  poolName: string;
  storageClass: TapeStorageClass;
  retentionLockType: RetentionLockType;
  retentionLockTimeInDays: number;
  createdAt: string;
}

const poolsSchema = z.array(
  z.object({
    poolId: z.string().regex(/^pool-[0-9A-Fa-f]{8}$/),
    poolName: z.string().min(1),
    storageClass: z.enum(STORAGE_CLASSES),
    retentionLockType: z.enum(RETENTION_LOCK_TYPES),
    retentionLockTimeInDays: z.number().int().nonnegative(),
    createdAt: z.string(),
  }),
);

export interface CreateTapePoolRequest {
  poolName: string;
  storageClass: TapeStorageClass;
  retentionLockType?: RetentionLockType;
  retentionLockTimeInDays?: number;
}

export class TapePools {
  readonly #db: Database;
  #pools: TapePool[];
  /** Whether a tape (not deleted) names the pool; deleting such a pool is refused. */
  readonly #inUse: (poolId: string) => Promise<boolean>;
  /** Changes run one at a time, so the stored catalog is always the last one applied. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(db: Database, pools: TapePool[], inUse: (poolId: string) => Promise<boolean>) {
    this.#db = db;
    this.#pools = pools;
    this.#inUse = inUse;
  }

  static async open(db: Database, opts: { inUse: (poolId: string) => Promise<boolean> }): Promise<TapePools> {
    const stored = await getSetting(db, POOLS_SETTING, poolsSchema);
    return new TapePools(db, stored ?? [], opts.inUse);
  }

  /** Custom pools, by id. */
  list(): TapePool[] {
    return this.#pools.map((p) => ({ ...p })).sort((a, b) => (a.poolId < b.poolId ? -1 : a.poolId > b.poolId ? 1 : 0));
  }

  get(poolId: string): TapePool | undefined {
    const pool = this.#pools.find((p) => p.poolId === poolId);
    return pool ? { ...pool } : undefined;
  }

  /** A PoolId a new tape may name: a built-in pool or an existing custom pool. */
  checkPoolId(poolId: string): void {
    if (BUILT_IN_POOL_IDS.includes(poolId) || this.#pools.some((p) => p.poolId === poolId)) return;
    throw new GatewayError('GW_POOL_NOT_FOUND', `no tape pool ${poolId} (GLACIER, DEEP_ARCHIVE or a pool from CreateTapePool)`);
  }

  create(req: CreateTapePoolRequest): Promise<TapePool> {
    return this.#serialized(async () => {
      const retentionLockType = req.retentionLockType ?? 'NONE';
      const retentionLockTimeInDays = req.retentionLockTimeInDays ?? 0;
      if (req.poolName.length < 1 || req.poolName.length > MAX_POOL_NAME_LENGTH) {
        throw new GatewayError('GW_POOL_INVALID_ARGUMENT', `pool name must be 1 to ${MAX_POOL_NAME_LENGTH} characters`);
      }
      if (!Number.isSafeInteger(retentionLockTimeInDays) || retentionLockTimeInDays < 0 || retentionLockTimeInDays > MAX_RETENTION_LOCK_DAYS) {
        throw new GatewayError('GW_POOL_INVALID_ARGUMENT', `retention lock time must be 0 to ${MAX_RETENTION_LOCK_DAYS} days`);
      }
      if (retentionLockType === 'NONE' && retentionLockTimeInDays !== 0) {
        throw new GatewayError('GW_POOL_INVALID_ARGUMENT', 'a retention lock time needs retention lock type COMPLIANCE or GOVERNANCE');
      }
      if (retentionLockType !== 'NONE' && retentionLockTimeInDays === 0) {
        throw new GatewayError('GW_POOL_INVALID_ARGUMENT', `retention lock type ${retentionLockType} needs a retention lock time of at least 1 day`);
      }
      if (this.#pools.some((p) => p.poolName === req.poolName)) {
        throw new GatewayError('GW_POOL_EXISTS', `a tape pool named ${JSON.stringify(req.poolName)} exists`);
      }
      let poolId: string;
      do poolId = `pool-${randomBytes(4).toString('hex').toUpperCase()}`;
      while (this.#pools.some((p) => p.poolId === poolId));
      const pool: TapePool = {
        poolId,
        poolName: req.poolName,
        storageClass: req.storageClass,
        retentionLockType,
        retentionLockTimeInDays,
        createdAt: new Date().toISOString(),
      };
      const next = [...this.#pools, pool];
      await putSetting(this.#db, POOLS_SETTING, next);
      this.#pools = next;
      return { ...pool };
    });
  }

  /** DeleteTapePool: only a pool no tape names. */
  delete(poolId: string): Promise<void> {
    return this.#serialized(async () => {
      if (!this.#pools.some((p) => p.poolId === poolId)) throw new GatewayError('GW_POOL_NOT_FOUND', `no tape pool ${poolId}`);
      if (await this.#inUse(poolId)) throw new GatewayError('GW_POOL_IN_USE', `tape pool ${poolId} has tapes; delete them or assign them to another pool first`);
      const next = this.#pools.filter((p) => p.poolId !== poolId);
      await putSetting(this.#db, POOLS_SETTING, next);
      this.#pools = next;
    });
  }

  #serialized<T>(step: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(step, step);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
