// The volume catalog: one JSON record per volume, keyed by name, so a restart keeps each volume's
// numeric id (its block key prefix), size and SCSI identity.

import { z } from 'zod';
import type { Database } from './database.js';
import { catalogKey, catalogRange, volumeBlockRange } from './keys.js';
import { getSetting, putSetting } from './settings-catalog.js';
import { encodeStoredJson, parseStoredJson } from './stored-json.js';

const volumeTypeSchema = z.enum(['stored', 'cached']);
export type VolumeType = z.infer<typeof volumeTypeSchema>;

/** CHAP set through the admin API, AWS-style: the initiator's iSCSI name is its CHAP user name and
 *  the target's iSCSI name is the target's CHAP user name (mutual CHAP). */
const volumeChapSchema = z.object({
  initiatorName: z.string(),
  secretToAuthenticateInitiator: z.string(),
  secretToAuthenticateTarget: z.string().optional(),
});
export type VolumeChap = z.infer<typeof volumeChapSchema>;

const volumeRecordSchema = z.object({
  /** Block key prefix (keys.ts); never reused. */
  id: z.int().nonnegative(),
  name: z.string().min(1),
  type: volumeTypeSchema,
  sizeBytes: z.int().nonnegative(),
  blockSize: z.int().positive(),
  chunkSizeBytes: z.int().positive(),
  /** ISO 8601 */
  createdAt: z.string(),
  /** VPD 0x80 unit serial number, e.g. "vol-1A2B3C4D". */
  serial: z.string(),
  /** 16 hex digits, NAA IEEE Registered designator (VPD 0x83). */
  naaId: z.string(),
  /** Who declared the volume: the configuration file (absent in records written before the admin
   *  API existed) or the admin API (served without being in the configuration). */
  origin: z.enum(['config', 'api']).optional(),
  /** CHAP set through the admin API; null = deleted through the API; absent = the configuration's. */
  chap: volumeChapSchema.nullable().optional(),
});
export type VolumeRecord = z.infer<typeof volumeRecordSchema>;

export async function listVolumes(db: Database): Promise<VolumeRecord[]> {
  const records: VolumeRecord[] = [];
  for await (const [key, value] of db.level.iterator(catalogRange())) {
    records.push(parseRecord(value, key.subarray(1).toString('utf8')));
  }
  return records;
}

export async function getVolume(db: Database, name: string): Promise<VolumeRecord | undefined> {
  const value = await db.level.get(catalogKey(name));
  return value === undefined ? undefined : parseRecord(value, name);
}

/** Durable when it resolves (goes through the group commit). */
export async function putVolume(db: Database, record: VolumeRecord): Promise<void> {
  await db.groupCommit.commit([{ type: 'put', key: catalogKey(record.name), value: encodeStoredJson(record) }]);
}

const NEXT_VOLUME_ID_SETTING = 'next-volume-id';
const nextVolumeIdSchema = z.int().positive();

/** A volume id never used before, not even by a deleted volume (its blocks, upload-queue entries
 *  and objects are keyed by id), persisted before it is returned. Callers serialize allocations. */
export async function allocateVolumeId(db: Database): Promise<number> {
  const stored = await getSetting(db, NEXT_VOLUME_ID_SETTING, nextVolumeIdSchema);
  const highest = Math.max(0, ...(await listVolumes(db)).map((r) => r.id));
  const id = Math.max(stored ?? 1, highest + 1);
  await putSetting(db, NEXT_VOLUME_ID_SETTING, id + 1);
  return id;
}

function parseRecord(value: Buffer, name: string): VolumeRecord {
  return parseStoredJson(volumeRecordSchema, value, `volume catalog record ${name}`);
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
