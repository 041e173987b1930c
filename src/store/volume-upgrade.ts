// Upgrade of a volume from data-directory format 1 (docs/storage-engine.md "Upgrade from format
// 1"): blocks kept in Level (key space BLOCK, chunks of `chunkSizeBytes`). Their content is
// appended to the volume's segment log as FILL records (mapped, not dirtied: the old upload queue
// and object states stay as they are), checkpointed, and only then deleted from Level. A crash in
// between repeats the upgrade from the start, which converges to the same content.

import type { Database } from './database.js';
import { decodeBlockKey, volumeBlockRange } from './keys.js';
import type { VolumeRecord } from './volume-catalog.js';

export interface UpgradeTarget {
  /** Appends FILL data at `lba` (the store's append path: space, pages, log). */
  fill(lba: number, blockCount: number, data: Buffer): Promise<void>;
  /** A checkpoint covering everything filled so far. */
  checkpoint(): Promise<void>;
  log?: { info(message: string, fields?: Record<string, unknown>): void };
}

/** Moves a format-1 volume's blocks into its log; answers how many chunks were moved (0: none). */
export async function upgradeLegacyBlocks(db: Database, record: Readonly<VolumeRecord>, blockCount: number, target: UpgradeTarget): Promise<number> {
  const rangeKeys = volumeBlockRange(record.id);
  const blocksPerChunk = record.chunkSizeBytes / record.blockSize;
  let chunks = 0;
  for await (const [key, value] of db.level.iterator(rangeKeys)) {
    const { chunkIndex } = decodeBlockKey(key);
    const lba = chunkIndex * blocksPerChunk;
    const count = Math.min(blocksPerChunk, blockCount - lba);
    if (count <= 0) continue;
    if (chunks === 0) target.log?.info('upgrading volume data to the segment format', { volume: record.name });
    await target.fill(lba, count, Buffer.from(value.subarray(0, count * record.blockSize)));
    chunks++;
  }
  if (chunks === 0) return 0;
  await target.checkpoint();
  await db.groupCommit.drain();
  await db.level.clear(rangeKeys);
  target.log?.info('volume data upgraded to the segment format', { volume: record.name, chunks });
  return chunks;
}
