// The volume catalog: one JSON record per volume, keyed by name, so a restart keeps each volume's
// numeric id (its block key prefix), size and SCSI identity.

import type { Database } from './database.js';
import { catalogKey, catalogRange, volumeBlockRange } from './keys.js';
import { getSetting, putSetting } from './settings-catalog.js';
import { StoreError } from './store-error.js';

export type VolumeType = 'stored' | 'cached';

/** CHAP set through the admin API, AWS-style: the initiator's iSCSI name is its CHAP user name and
 *  the target's iSCSI name is the target's CHAP user name (mutual CHAP). */
export interface VolumeChap {
  initiatorName: string;
  secretToAuthenticateInitiator: string;
  secretToAuthenticateTarget?: string;
}

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
  /** Who declared the volume: the configuration file (absent in records written before the admin
   *  API existed) or the admin API (served without being in the configuration). */
  origin?: 'config' | 'api';
  /** CHAP set through the admin API; null = deleted through the API; absent = the configuration's. */
  chap?: VolumeChap | null;
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

const NEXT_VOLUME_ID_SETTING = 'next-volume-id';

/** A volume id never used before, not even by a deleted volume (its blocks, upload-queue entries
 *  and objects are keyed by id), persisted before it is returned. Callers serialize allocations. */
export async function allocateVolumeId(db: Database): Promise<number> {
  const stored = await getSetting(db, NEXT_VOLUME_ID_SETTING);
  const highest = Math.max(0, ...(await listVolumes(db)).map((r) => r.id));
  const id = Math.max(typeof stored === 'number' ? stored : 1, highest + 1);
  await putSetting(db, NEXT_VOLUME_ID_SETTING, id + 1);
  return id;
}

function parseRecord(value: Buffer): VolumeRecord {
  try {
    return JSON.parse(value.toString('utf8')) as VolumeRecord;
  } catch (err) {
    throw new StoreError('STORE_CORRUPT', `unreadable volume catalog record: ${String(err)}`, { cause: err });
  }
}

/** Removes the volume from the catalog, then its blocks (a crash in between leaves unreachable
 *  blocks, which `clearVolumeBlocks` removes before the id is used again). */
export async function deleteVolume(db: Database, record: VolumeRecord): Promise<void> {
  await db.groupCommit.commit([{ type: 'del', key: catalogKey(record.name) }]);
  await clearVolumeBlocks(db, record.id);
}

/** Deletes every block stored under a volume id. */
export async function clearVolumeBlocks(db: Database, volumeId: number): Promise<void> {
  await db.level.clear(volumeBlockRange(volumeId));
}
