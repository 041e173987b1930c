// The gateway's "local disks" (AWS AddCache / AddUploadBuffer / ListLocalDisks). shelfgate has no
// raw disks: the cache and the upload buffer are allocations of its data directory, so a disk is
// data — a size and what it is allocated to. Disk 0 of each is the configured size
// (cache.sizeBytes, uploadBuffer.sizeBytes); AddCache / AddUploadBuffer with a disk id
// "local:<size>" (the convention CreateStorediSCSIVolume's DiskId uses) add one more disk of that
// size, stored in the settings key space, so the effective size on every start is the configured
// size plus the added disks. Limits: AWS's maxima for the totals (cache 64 TiB, upload buffer
// 2 TiB, reference §0); AWS's 150 GiB minimums are not enforced, the defaults are smaller.

import { z } from 'zod';
import type { Database } from '../store/database.js';
import { getSetting, putSetting } from '../store/settings-catalog.js';
import { GiB, TiB, parseSize } from '../size.js';
import { GatewayError } from './gateway-error.js';

const ADDED_DISKS_SETTING = 'local-disks';
const LOCAL_DISK_ID_PATTERN = /^local:(.+)$/;

export type LocalDiskAllocation = 'cache' | 'uploadBuffer';

/** Reference §0 (resource-gateway-limits): total cache / upload buffer per gateway. */
export const LOCAL_DISK_MAX_TOTAL_BYTES: Record<LocalDiskAllocation, number> = { cache: 64 * TiB, uploadBuffer: 2 * TiB };

const DISK_ID_PREFIX: Record<LocalDiskAllocation, string> = { cache: 'cache', uploadBuffer: 'upload-buffer' };

export interface LocalDisk {
  diskId: string;
  allocation: LocalDiskAllocation;
  sizeBytes: number;
}

/** Sizes in bytes of the disks added through the API, in the order they were added. */
interface AddedDisks {
  cache: number[];
  uploadBuffer: number[];
}

const addedDisksSchema = z.object({
  cache: z.array(z.number().int().positive()).optional(),
  uploadBuffer: z.array(z.number().int().positive()).optional(),
});

/** What the disks resize at run time (the storage engine's cache and upload queue). */
export interface LocalDiskTarget {
  resize(allocation: LocalDiskAllocation, totalBytes: number): void;
}

export class LocalDisks {
  private readonly db: Database;
  private readonly configuredBytes: Record<LocalDiskAllocation, number>;
  private added: AddedDisks;
  private target: LocalDiskTarget | undefined;
  /** Additions run one at a time so limit checks see every earlier addition. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(db: Database, configuredBytes: Record<LocalDiskAllocation, number>, added: AddedDisks) {
    this.db = db;
    this.configuredBytes = configuredBytes;
    this.added = added;
  }

  static async open(db: Database, configured: { cacheSizeBytes: number; uploadBufferSizeBytes: number }): Promise<LocalDisks> {
    const stored = await getSetting(db, ADDED_DISKS_SETTING, addedDisksSchema);
    return new LocalDisks(
      db,
      { cache: configured.cacheSizeBytes, uploadBuffer: configured.uploadBufferSizeBytes },
      { cache: stored?.cache ?? [], uploadBuffer: stored?.uploadBuffer ?? [] },
    );
  }

  /** The resource run-time additions resize (set once the storage engine is open). */
  attach(target: LocalDiskTarget): void {
    this.target = target;
  }

  /** Configured size plus every added disk. */
  totalBytes(allocation: LocalDiskAllocation): number {
    return this.added[allocation].reduce((sum, bytes) => sum + bytes, this.configuredBytes[allocation]);
  }

  disks(allocation?: LocalDiskAllocation): LocalDisk[] {
    const of = (a: LocalDiskAllocation): LocalDisk[] =>
      [this.configuredBytes[a], ...this.added[a]].map((sizeBytes, i) => ({ diskId: `${DISK_ID_PREFIX[a]}-${i}`, allocation: a, sizeBytes }));
    return allocation === undefined ? [...of('cache'), ...of('uploadBuffer')] : of(allocation);
  }

  /** Allocates new disks ("local:<size>" ids) to the cache or upload buffer: all or none, durable
   *  and applied to the running engine on return. Throws GatewayError GW_DISK_* naming the id. */
  add(allocation: LocalDiskAllocation, diskIds: readonly string[]): Promise<LocalDisk[]> {
    const run = this.queue.then(async () => {
      const sizes = diskIds.map((diskId) => this.sizeOfNewDisk(diskId));
      const totalBytes = sizes.reduce((sum, bytes) => sum + bytes, this.totalBytes(allocation));
      const maxBytes = LOCAL_DISK_MAX_TOTAL_BYTES[allocation];
      if (totalBytes > maxBytes) {
        throw new GatewayError(
          'GW_DISK_LIMIT',
          `DiskIds: ${diskIds.join(', ')} would make the ${allocation === 'cache' ? 'cache' : 'upload buffer'} ` +
            `${totalBytes / GiB} GiB, above the maximum of ${maxBytes / GiB} GiB`,
        );
      }
      const next: AddedDisks = { ...this.added, [allocation]: [...this.added[allocation], ...sizes] };
      await putSetting(this.db, ADDED_DISKS_SETTING, next);
      this.added = next;
      this.target?.resize(allocation, this.totalBytes(allocation));
      return this.disks(allocation).slice(-sizes.length);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private sizeOfNewDisk(diskId: string): number {
    if (this.disks().some((disk) => disk.diskId === diskId)) {
      throw new GatewayError('GW_DISK_ALREADY_ALLOCATED', `DiskIds: disk ${diskId} is already allocated`);
    }
    const match = LOCAL_DISK_ID_PATTERN.exec(diskId);
    if (match === null) throw new GatewayError('GW_DISK_NOT_FOUND', `DiskIds: no disk ${diskId} (new disks are "local:<size>", e.g. "local:150GiB")`);
    let sizeBytes: number;
    try {
      sizeBytes = parseSize(match[1]!);
    } catch (err) {
      throw new GatewayError('GW_DISK_INVALID', `DiskIds: ${diskId}: ${(err as Error).message}`, { cause: err });
    }
    if (sizeBytes <= 0 || sizeBytes % GiB !== 0) {
      throw new GatewayError('GW_DISK_INVALID', `DiskIds: ${diskId}: the size must be a positive whole number of GiB`);
    }
    return sizeBytes;
  }
}
