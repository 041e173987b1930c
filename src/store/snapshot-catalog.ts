// The snapshot catalog: one JSON record per snapshot and one per volume snapshot schedule, in key
// space SETTINGS (keys.ts) under the names `snapshot/<snapId>` and `snapshot-schedule/<volumeId>`.
// The snapshot's content lives in the object store (docs/object-layout.md); the catalog keeps what
// the API lists (status, progress, description) so listing never touches the object store.

import type { Database } from './database.js';
import { settingsKey } from './keys.js';
import { StoreError } from './store-error.js';

/** AWS EC2 snapshot states (pending → completed, or error). */
export type SnapshotStatus = 'pending' | 'completed' | 'error';

export interface SnapshotRecord {
  /** `snap-` + 17 hex digits. */
  snapId: string;
  volumeId: number;
  volumeName: string;
  volumeSizeBytes: number;
  description: string;
  status: SnapshotStatus;
  /** Percent of the volume's object chunks processed, 0–100. */
  progress: number;
  /** ISO 8601: the point in time the snapshot holds. */
  startTime: string;
  /** Chunk objects this snapshot put to the object store, and the chunks it refers to. */
  uploadedChunks: number;
  chunkCount: number;
  error?: string;
}

/** AWS UpdateSnapshotSchedule: a snapshot every RecurrenceInHours hours starting at StartAt (UTC). */
export interface SnapshotSchedule {
  volumeId: number;
  startAtHour: number;
  recurrenceInHours: number;
  description: string;
}

const SNAPSHOT_PREFIX = 'snapshot/';
const SCHEDULE_PREFIX = 'snapshot-schedule/';

export async function putSnapshot(db: Database, record: SnapshotRecord): Promise<void> {
  await db.groupCommit.commit([{ type: 'put', key: settingsKey(SNAPSHOT_PREFIX + record.snapId), value: encode(record) }]);
}

export async function deleteSnapshotRecord(db: Database, snapId: string): Promise<void> {
  await db.groupCommit.commit([{ type: 'del', key: settingsKey(SNAPSHOT_PREFIX + snapId) }]);
}

export async function listSnapshots(db: Database): Promise<SnapshotRecord[]> {
  return listPrefix<SnapshotRecord>(db, SNAPSHOT_PREFIX);
}

export async function putSnapshotSchedule(db: Database, schedule: SnapshotSchedule): Promise<void> {
  await db.groupCommit.commit([{ type: 'put', key: settingsKey(SCHEDULE_PREFIX + schedule.volumeId), value: encode(schedule) }]);
}

export async function deleteSnapshotSchedule(db: Database, volumeId: number): Promise<void> {
  await db.groupCommit.commit([{ type: 'del', key: settingsKey(SCHEDULE_PREFIX + volumeId) }]);
}

export async function listSnapshotSchedules(db: Database): Promise<SnapshotSchedule[]> {
  return listPrefix<SnapshotSchedule>(db, SCHEDULE_PREFIX);
}

function encode(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

async function listPrefix<T>(db: Database, prefix: string): Promise<T[]> {
  const gte = settingsKey(prefix);
  const lt = Buffer.from(gte);
  lt[lt.length - 1]! += 1;
  const out: T[] = [];
  for await (const [key, value] of db.level.iterator({ gte, lt })) {
    try {
      out.push(JSON.parse(value.toString('utf8')) as T);
    } catch (err) {
      throw new StoreError('STORE_CORRUPT', `unreadable catalog record ${key.subarray(1).toString('utf8')}: ${String(err)}`, { cause: err });
    }
  }
  return out;
}
