// The volume catalog: one JSON record per volume, keyed by name, so a restart keeps each volume's
// numeric id (its block key prefix), size and SCSI identity.

import type { Database } from './database.js';
import { catalogKey, catalogRange } from './keys.js';
import { StoreError } from './store-error.js';

export type VolumeType = 'stored' | 'cached';

export interface VolumeRecord {
  /** Block key prefix (keys.ts); never reused. */
  id: number;
  name: string;
  type: VolumeType;
  sizeBytes: number;
  blockSize: number;
  chunkSizeBytes: number;
  /** ISO 8601 */
  createdAt: string;
  /** VPD 0x80 unit serial number, e.g. "vol-1A2B3C4D". */
  serial: string;
  /** 16 hex digits, NAA IEEE Registered designator (VPD 0x83). */
  naaId: string;
}

export async function listVolumes(db: Database): Promise<VolumeRecord[]> {
  const records: VolumeRecord[] = [];
  for await (const value of db.level.values(catalogRange())) {
    records.push(parseRecord(value));
  }
  return records;
}

export async function getVolume(db: Database, name: string): Promise<VolumeRecord | undefined> {
  const value = await db.level.get(catalogKey(name));
  return value === undefined ? undefined : parseRecord(value);
}

/** Durable when it resolves (goes through the group commit). */
export async function putVolume(db: Database, record: VolumeRecord): Promise<void> {
  await db.groupCommit.commit([
    { type: 'put', key: catalogKey(record.name), value: Buffer.from(JSON.stringify(record), 'utf8') },
  ]);
}

function parseRecord(value: Buffer): VolumeRecord {
  try {
    return JSON.parse(value.toString('utf8')) as VolumeRecord;
  } catch (err) {
    throw new StoreError('STORE_CORRUPT', `unreadable volume catalog record: ${String(err)}`, { cause: err });
  }
}
