// A volume's checkpoint record (keys.ts LOG): where replay of its segment log starts, the live
// bytes of each segment (what the cleaner reclaims), and the saved write-cache setting. Written
// only by SegmentBlockStore checkpoints, in the same synced Level batch as the map pages, upload
// queue entries and object states it covers. Validated on read: a record that does not match is
// STORE_CORRUPT naming the volume, never silently misread.

import { z } from 'zod';
import type { Database } from './database.js';
import type { BatchOp } from './group-commit.js';
import { logStateKey } from './keys.js';
import { StoreError } from './store-error.js';

/** Format of the volume data directory this code writes (1 was blocks in Level, upgraded on open). */
export const VOLUME_FORMAT = 2;

const checkpointSchema = z.strictObject({
  format: z.literal(VOLUME_FORMAT),
  /** Log offset replay starts from: every record before it is reflected in Level. */
  marker: z.number().int().nonnegative(),
  /** [segment start, live bytes] */
  liveBytes: z.array(z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()])),
  /** SBC-3 6.4.5 WCE, the saved value. */
  writeCache: z.boolean(),
});

export type VolumeCheckpoint = z.infer<typeof checkpointSchema>;

export async function readVolumeCheckpoint(db: Database, volumeId: number): Promise<VolumeCheckpoint | undefined> {
  const value = await db.level.get(logStateKey(volumeId));
  if (value === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('utf8'));
  } catch (err) {
    throw new StoreError('STORE_CORRUPT', `volume ${volumeId}: the checkpoint record is not JSON: ${String(err)}`, { cause: err });
  }
  const result = checkpointSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new StoreError('STORE_CORRUPT', `volume ${volumeId}: the checkpoint record is invalid at ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return result.data;
}

export function volumeCheckpointOp(volumeId: number, checkpoint: VolumeCheckpoint): BatchOp {
  return { type: 'put', key: logStateKey(volumeId), value: Buffer.from(JSON.stringify(checkpoint), 'utf8') };
}

export function deleteVolumeCheckpointOp(volumeId: number): BatchOp {
  return { type: 'del', key: logStateKey(volumeId) };
}
