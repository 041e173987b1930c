// The snapshot catalog: one JSON record per snapshot and one per volume snapshot schedule, in key
// space SETTINGS (keys.ts) under the names `snapshot/<snapId>` and `snapshot-schedule/<volumeId>`.
// The snapshot's content lives in the object store (docs/object-layout.md); the catalog keeps what
// the API lists (status, progress, description) so listing never touches the object store.

import { z } from 'zod';
import type { Database } from './database.js';
import { settingsKey } from './keys.js';
import { encodeStoredJson, parseStoredJson } from './stored-json.js';

/** AWS EC2 snapshot states (pending → completed, or error). */
const snapshotStatusSchema = z.enum(['pending', 'completed', 'error']);
export type SnapshotStatus = z.infer<typeof snapshotStatusSchema>;

const snapshotRecordSchema = z.object({
  /** `snap-` + 17 hex digits. */
  snapId: z.string(),
  volumeId: z.int().nonnegative(),
  volumeName: z.string(),
  volumeSizeBytes: z.int().nonnegative(),
  description: z.string(),
  status: snapshotStatusSchema,
  /** Percent of the volume's object chunks processed, 0–100. */
  progress: z.number().min(0).max(100),
  /** ISO 8601: the point in time the snapshot holds. */
  startTime: z.string(),
  /** Chunk objects this snapshot put to the object store, and the chunks it refers to. */
  uploadedChunks: z.int().nonnegative(),
  chunkCount: z.int().nonnegative(),
  error: z.string().optional(),
});
export type SnapshotRecord = z.infer<typeof snapshotRecordSchema>;

/** AWS UpdateSnapshotSchedule: a snapshot every RecurrenceInHours hours starting at StartAt (UTC). */
const snapshotScheduleSchema = z.object({
  volumeId: z.int().nonnegative(),
  startAtHour: z.int().min(0).max(23),
  recurrenceInHours: z.int().positive(),
  description: z.string(),
});
export type SnapshotSchedule = z.infer<typeof snapshotScheduleSchema>;

const SNAPSHOT_PREFIX = 'snapshot/';
const SCHEDULE_PREFIX = 'snapshot-schedule/';

export async function putSnapshot(db: Database, record: SnapshotRecord): Promise<void> {
  await db.groupCommit.commit([{ type: 'put', key: settingsKey(SNAPSHOT_PREFIX + record.snapId), value: encodeStoredJson(record) }]);
}

export async function deleteSnapshotRecord(db: Database, snapId: string): Promise<void> {
  await db.groupCommit.commit([{ type: 'del', key: settingsKey(SNAPSHOT_PREFIX + snapId) }]);
}

export async function listSnapshots(db: Database): Promise<SnapshotRecord[]> {
  return listPrefix(db, SNAPSHOT_PREFIX, snapshotRecordSchema);
}

export async function putSnapshotSchedule(db: Database, schedule: SnapshotSchedule): Promise<void> {
  await db.groupCommit.commit([{ type: 'put', key: settingsKey(SCHEDULE_PREFIX + schedule.volumeId), value: encodeStoredJson(schedule) }]);
}

export async function deleteSnapshotSchedule(db: Database, volumeId: number): Promise<void> {
  await db.groupCommit.commit([{ type: 'del', key: settingsKey(SCHEDULE_PREFIX + volumeId) }]);
}

export async function listSnapshotSchedules(db: Database): Promise<SnapshotSchedule[]> {
  return listPrefix(db, SCHEDULE_PREFIX, snapshotScheduleSchema);
}

async function listPrefix<T>(db: Database, prefix: string, schema: z.ZodType<T>): Promise<T[]> {
  const gte = settingsKey(prefix);
  const lt = Buffer.from(gte);
  lt[lt.length - 1]! += 1;
  const out: T[] = [];
  for await (const [key, value] of db.level.iterator({ gte, lt })) {
    out.push(parseStoredJson(schema, value, `snapshot catalog record ${key.subarray(1).toString('utf8')}`));
  }
  return out;
}
