// The gateway's one Level database at `<dataDir>/db`, with binary keys and values (keys.ts), and
// the group committer every durable write goes through.

import { join } from 'node:path';
import { Level } from 'level';
import { ensureDataDirectory, ensureWritable } from './data-dir.js';
import { GroupCommit } from './group-commit.js';
import { StoreError } from './store-error.js';

export type LevelDb = Level<Buffer, Buffer>;

export interface Database {
  /** `<dataDir>/db` */
  readonly location: string;
  readonly level: LevelDb;
  readonly groupCommit: GroupCommit;
  /** Waits for pending batches, then closes Level (idempotent). */
  close(): Promise<void>;
}

/** LevelDB tuning for an index (volume data lives in segment logs, tape data in frame logs): small
 *  values, so a small memtable keeps recovery and compactions short and the space they need small
 *  (a full disk must still leave the index room to commit: space-guard.ts). */
const LEVEL_OPTIONS = {
  keyEncoding: 'buffer',
  valueEncoding: 'buffer',
  writeBufferSize: 4 * 1024 * 1024,
  maxFileSize: 4 * 1024 * 1024,
  cacheSize: 32 * 1024 * 1024,
  compression: true,
} as const;

/** Opens (creating if needed) the database of the gateway whose data directory is `dataDir`. */
export async function openDatabase(dataDir: string): Promise<Database> {
  const location = join(dataDir, 'db');
  await ensureDataDirectory(dataDir);
  await ensureDataDirectory(location);
  await ensureWritable(location, dataDir);
  const level: LevelDb = new Level<Buffer, Buffer>(location, LEVEL_OPTIONS);
  try {
    await level.open();
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    if (cause?.code === 'LEVEL_LOCKED') {
      throw new StoreError(
        'STORE_LOCKED',
        `data directory ${dataDir} is in use by another shelfgate process; stop it or pass another --data-dir`,
        { cause: err },
      );
    }
    throw new StoreError('STORE_OPEN_FAILED', `cannot open database ${location}: ${String(err)}`, { cause: err });
  }
  const groupCommit = new GroupCommit(level);
  let closing: Promise<void> | null = null;
  return {
    location,
    level,
    groupCommit,
    close() {
      closing ??= (async () => {
        await groupCommit.close();
        await level.close();
      })();
      return closing;
    },
  };
}
