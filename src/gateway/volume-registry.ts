// The gateway's volumes as iSCSI targets: one target per declared volume, LUN 0, named like AWS
// Volume Gateway targets (iqn.<date>.<domain>:<gateway>-<volume>). Volumes are created in the
// catalog on first start and keep their id, serial and NAA designator across restarts.

import type { LogicalUnit, TargetConfig, TargetRegistry, BlockBackend } from '../../iscsi/device.js';
import type { Logger } from '../../iscsi/log.js';
import type { VolumeConfig } from '../config.js';
import { formatSize } from '../size.js';
import type { Database } from '../store/database.js';
import { DEFAULT_CHUNK_SIZE_BYTES, LevelBlockStore } from '../store/level-block-store.js';
import { listVolumes, putVolume, type VolumeRecord } from '../store/volume-catalog.js';
import { GatewayError } from './gateway-error.js';
import { newNaaId, newVolumeSerial } from './identity.js';

export const TARGET_NAME_PREFIX = 'iqn.2026-11.dev.shelfgate:';

/** SBC logical block size of every volume (AWS volumes use 512-byte blocks). */
export const VOLUME_BLOCK_SIZE = 512;

export function volumeTargetName(gatewayName: string, volumeName: string): string {
  return `${TARGET_NAME_PREFIX}${gatewayName}-${volumeName}`;
}

export interface VolumeInfo {
  name: string;
  type: VolumeRecord['type'];
  sizeBytes: number;
  targetName: string;
  serial: string;
  createdAt: string;
}

interface ServedVolume {
  record: VolumeRecord;
  store: LevelBlockStore;
  target: TargetConfig;
}

export class VolumeRegistry implements TargetRegistry {
  private readonly byTarget = new Map<string, ServedVolume>();

  private constructor(volumes: ServedVolume[]) {
    for (const volume of volumes) this.byTarget.set(volume.target.name, volume);
  }

  /** Creates missing volumes, grows enlarged ones, refuses to shrink or change type; then builds
   *  one target per declared volume with `createLogicalUnit` behind LUN 0. */
  static async open(opts: {
    db: Database;
    gatewayName: string;
    volumes: VolumeConfig[];
    createLogicalUnit: (backend: BlockBackend) => LogicalUnit;
    log: Logger;
  }): Promise<VolumeRegistry> {
    const { db, log } = opts;
    const catalog = new Map((await listVolumes(db)).map((r) => [r.name, r]));
    let nextId = Math.max(0, ...[...catalog.values()].map((r) => r.id)) + 1;
    const served: ServedVolume[] = [];
    for (const [index, declared] of opts.volumes.entries()) {
      let record = catalog.get(declared.name);
      if (record === undefined) {
        record = {
          id: nextId++,
          name: declared.name,
          type: declared.type,
          sizeBytes: declared.sizeBytes,
          blockSize: VOLUME_BLOCK_SIZE,
          chunkSizeBytes: DEFAULT_CHUNK_SIZE_BYTES,
          createdAt: new Date().toISOString(),
          serial: uniqueSerial(catalog),
          naaId: newNaaId(),
        };
        await putVolume(db, record);
        catalog.set(record.name, record);
        log.info('volume created', {
          volume: record.name,
          type: record.type,
          size: formatSize(record.sizeBytes),
          serial: record.serial,
        });
      } else if (record.type !== declared.type) {
        throw new GatewayError(
          'GW_VOLUME_TYPE_CHANGED',
          `volume ${record.name} was created as a ${record.type} volume; it cannot become ${declared.type} ` +
            `(set type: ${record.type}, or declare a new volume)`,
          { configPath: `volumes[${index}].type` },
        );
      } else if (declared.sizeBytes < record.sizeBytes) {
        throw new GatewayError(
          'GW_VOLUME_SHRINK',
          `volume ${record.name} is ${formatSize(record.sizeBytes)}; shrinking it to ${formatSize(declared.sizeBytes)} ` +
            `is not supported (set its size to ${formatSize(record.sizeBytes)} or more)`,
          { configPath: `volumes[${index}].size` },
        );
      }
      const store = new LevelBlockStore(db, record);
      if (declared.sizeBytes > record.sizeBytes) {
        log.info('volume grown', { volume: record.name, from: formatSize(record.sizeBytes), to: formatSize(declared.sizeBytes) });
        await store.grow(declared.sizeBytes);
        record = { ...record, sizeBytes: declared.sizeBytes };
      }
      if (record.type === 'cached') {
        log.warn('cached volume is served from the local store until the S3 storage engine is available', {
          volume: record.name,
        });
      }
      const target: TargetConfig = {
        name: volumeTargetName(opts.gatewayName, record.name),
        alias: record.name,
        luns: new Map([[0, opts.createLogicalUnit(store)]]),
        ...(declared.chap !== undefined ? { chap: { user: declared.chap.user, secret: declared.chap.secret } } : {}),
        ...(declared.chap?.mutualUser !== undefined && declared.chap.mutualSecret !== undefined
          ? { mutualChap: { user: declared.chap.mutualUser, secret: declared.chap.mutualSecret } }
          : {}),
        ...(declared.initiators !== undefined ? { allowedInitiators: declared.initiators } : {}),
      };
      served.push({ record, store, target });
    }
    const declaredNames = new Set(opts.volumes.map((v) => v.name));
    for (const record of catalog.values()) {
      if (!declaredNames.has(record.name)) {
        log.warn('volume is in the catalog but not in the configuration; not served, data kept', { volume: record.name });
      }
    }
    return new VolumeRegistry(served);
  }

  list(): TargetConfig[] {
    return [...this.byTarget.values()].map((v) => v.target);
  }

  get(name: string): TargetConfig | undefined {
    return this.byTarget.get(name)?.target;
  }

  volumes(): VolumeInfo[] {
    return [...this.byTarget.values()].map(({ store, target }) => {
      const record = store.volume;
      return {
        name: record.name,
        type: record.type,
        sizeBytes: record.sizeBytes,
        targetName: target.name,
        serial: record.serial,
        createdAt: record.createdAt,
      };
    });
  }

  /** Waits until every acknowledged write is durable (they are already; this drains batches). */
  async flush(): Promise<void> {
    await Promise.all([...this.byTarget.values()].map((v) => v.store.flush()));
  }
}

function uniqueSerial(catalog: Map<string, VolumeRecord>): string {
  const used = new Set([...catalog.values()].map((r) => r.serial));
  let serial = newVolumeSerial();
  while (used.has(serial)) serial = newVolumeSerial();
  return serial;
}
