// The gateway's volumes as iSCSI targets: one target per declared volume, LUN 0, named like AWS
// Volume Gateway targets (iqn.<date>.<domain>:<gateway>-<volume>). Volumes are created in the
// catalog on first start and keep their id, serial and NAA designator across restarts. Volumes
// created through the admin API (origin 'api') are served from the catalog alone; targets can be
// added, removed and have their CHAP changed at run time (the fabric looks them up per login).

import type { LogicalUnit, TargetConfig, TargetRegistry, BlockBackend } from '../../iscsi/device.js';
import type { Logger } from '../../iscsi/log.js';
import type { VolumeConfig } from '../config.js';
import { formatSize } from '../size.js';
import type { Database } from '../store/database.js';
import { SegmentBlockStore, type VolumeStoreContext } from '../store/segment-block-store.js';
import { allocateVolumeId, listVolumes, putVolume, type VolumeChap, type VolumeRecord } from '../store/volume-catalog.js';
import { countingBackend, newBackendCounters, type BackendCounters } from './counting-backend.js';
import { GatewayError } from './gateway-error.js';
import { newNaaId, newVolumeSerial } from './identity.js';

export const TARGET_NAME_PREFIX = 'iqn.2026-11.dev.shelfgate:';

/** SBC logical block size of every volume (AWS volumes use 512-byte blocks). */
export const VOLUME_BLOCK_SIZE = 512;

/** `chunkSizeBytes` of new volume records: the upload unit (1 MiB object chunks); the segment
 *  store maps blocks, so the field only describes the data of format-1 directories. */
export const VOLUME_CHUNK_SIZE_BYTES = 16 * 1024;

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

/** CHAP of a volume's target in the admin API's terms, wherever it was configured. */
export interface TargetChap {
  /** The CHAP user name the initiator answers with (AWS: the initiator's iSCSI name). */
  initiatorName: string;
  secretToAuthenticateInitiator: string;
  secretToAuthenticateTarget?: string;
  /** The target's CHAP user name for mutual CHAP: the configuration's mutualUser; AWS uses the
   *  target's iSCSI name (the default). */
  targetUser?: string;
}

/** What the admin API sees of a served volume. */
export interface ServedVolumeView extends VolumeInfo {
  id: number;
  origin: 'config' | 'api';
  chap: TargetChap | undefined;
  counters: Readonly<BackendCounters>;
  /** SBC-3 6.4.5 WCE of the volume's LU (configuration, or MODE SELECT since). */
  writeCache: boolean;
}

interface ServedVolume {
  store: SegmentBlockStore;
  target: TargetConfig;
  origin: 'config' | 'api';
  /** The configuration's CHAP, used unless CHAP was set or deleted through the API. */
  configChap: TargetChap | undefined;
  /** CHAP set through the API (persisted in the record); null = deleted through the API. */
  apiChap: VolumeChap | null | undefined;
  counters: BackendCounters;
}

interface VolumeToServe {
  store: SegmentBlockStore;
  origin: 'config' | 'api';
  configChap?: TargetChap;
  initiators?: string[];
}

export class VolumeRegistry implements TargetRegistry {
  private readonly byTarget = new Map<string, ServedVolume>();
  private readonly db: Database;
  private readonly stores: VolumeStoreContext;
  private readonly gatewayName: string;
  private readonly createLogicalUnit: (backend: BlockBackend) => LogicalUnit;

  private constructor(
    opts: { db: Database; stores: VolumeStoreContext; gatewayName: string; createLogicalUnit: (backend: BlockBackend) => LogicalUnit },
    volumes: VolumeToServe[],
  ) {
    this.db = opts.db;
    this.stores = opts.stores;
    this.gatewayName = opts.gatewayName;
    this.createLogicalUnit = opts.createLogicalUnit;
    for (const volume of volumes) this.serve(volume);
  }

  /** Creates missing volumes, grows enlarged ones, refuses to shrink or change type; then builds
   *  one target per declared volume with `createLogicalUnit` behind LUN 0. */
  static async open(opts: {
    db: Database;
    /** Where and how volume stores keep their data (main.ts). */
    stores: VolumeStoreContext;
    gatewayName: string;
    volumes: VolumeConfig[];
    createLogicalUnit: (backend: BlockBackend) => LogicalUnit;
    log: Logger;
  }): Promise<VolumeRegistry> {
    const { db, log } = opts;
    const catalog = new Map((await listVolumes(db)).map((r) => [r.name, r]));
    const served: VolumeToServe[] = [];
    for (const [index, declared] of opts.volumes.entries()) {
      let record = catalog.get(declared.name);
      if (record === undefined) {
        record = {
          id: await allocateVolumeId(db),
          name: declared.name,
          type: declared.type,
          sizeBytes: declared.sizeBytes,
          blockSize: VOLUME_BLOCK_SIZE,
          chunkSizeBytes: VOLUME_CHUNK_SIZE_BYTES,
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
      const store = await SegmentBlockStore.open(opts.stores, record, declared.writeCache !== undefined ? { writeCache: declared.writeCache } : {});
      if (declared.sizeBytes > record.sizeBytes) {
        log.info('volume grown', { volume: record.name, from: formatSize(record.sizeBytes), to: formatSize(declared.sizeBytes) });
        await store.grow(declared.sizeBytes);
        record = { ...record, sizeBytes: declared.sizeBytes };
      }
      const configChap: TargetChap | undefined =
        declared.chap === undefined
          ? undefined
          : {
              initiatorName: declared.chap.user,
              secretToAuthenticateInitiator: declared.chap.secret,
              ...(declared.chap.mutualSecret !== undefined ? { secretToAuthenticateTarget: declared.chap.mutualSecret } : {}),
              ...(declared.chap.mutualUser !== undefined ? { targetUser: declared.chap.mutualUser } : {}),
            };
      served.push({
        store,
        origin: 'config',
        ...(configChap !== undefined ? { configChap } : {}),
        ...(declared.initiators !== undefined ? { initiators: declared.initiators } : {}),
      });
    }
    const declaredNames = new Set(opts.volumes.map((v) => v.name));
    for (const record of catalog.values()) {
      if (declaredNames.has(record.name)) continue;
      if (record.origin === 'api') {
        served.push({ store: await SegmentBlockStore.open(opts.stores, record), origin: 'api' });
      } else {
        log.warn('volume is in the catalog but not in the configuration; not served, data kept', { volume: record.name });
      }
    }
    return new VolumeRegistry(opts, served);
  }

  /** Serves a volume whose record is already in the catalog (created through the admin API). */
  async addVolume(record: VolumeRecord): Promise<ServedVolumeView> {
    return this.serve({ store: await SegmentBlockStore.open(this.stores, record), origin: 'api' });
  }

  /** Stops serving a volume: no new logins find it (the caller drops its sessions). Returns its
   *  record and a flush that drains the writes still pending in its store. */
  removeVolume(name: string): { record: VolumeRecord; destroy(): Promise<void> } | undefined {
    const served = this.byName(name);
    if (served === undefined) return undefined;
    this.byTarget.delete(served.target.name);
    return { record: { ...served.store.volume }, destroy: () => served.store.destroy() };
  }

  /** Replaces a volume's CHAP (null: none) in the catalog and for the next logins. */
  async setChap(name: string, chap: VolumeChap | null): Promise<void> {
    const served = this.byName(name);
    if (served === undefined) throw new GatewayError('GW_VOLUME_NOT_FOUND', `no volume named ${name}`);
    await putVolume(this.db, { ...served.store.volume, chap });
    served.apiChap = chap;
    this.applyChap(served);
  }

  /** The iSCSI name a volume of this name has (or would have). */
  targetNameFor(volumeName: string): string {
    return volumeTargetName(this.gatewayName, volumeName);
  }

  view(name: string): ServedVolumeView | undefined {
    const served = this.byName(name);
    return served === undefined ? undefined : viewOf(served);
  }

  views(): ServedVolumeView[] {
    return [...this.byTarget.values()].map(viewOf);
  }

  private byName(name: string): ServedVolume | undefined {
    return this.byTarget.get(this.targetNameFor(name));
  }

  private serve({ store, origin, configChap, initiators }: VolumeToServe): ServedVolumeView {
    const record = store.volume;
    const counters = newBackendCounters();
    const target: TargetConfig = {
      name: volumeTargetName(this.gatewayName, record.name),
      alias: record.name,
      luns: new Map([[0, this.createLogicalUnit(countingBackend(store, counters))]]),
      ...(initiators !== undefined ? { allowedInitiators: initiators } : {}),
    };
    const served: ServedVolume = { store, target, origin, configChap, apiChap: record.chap, counters };
    this.applyChap(served);
    this.byTarget.set(target.name, served);
    return viewOf(served);
  }

  private applyChap(served: ServedVolume): void {
    const chap = effectiveChap(served);
    delete served.target.chap;
    delete served.target.mutualChap;
    if (chap === undefined) return;
    served.target.chap = { user: chap.initiatorName, secret: chap.secretToAuthenticateInitiator };
    if (chap.secretToAuthenticateTarget !== undefined) {
      served.target.mutualChap = { user: chap.targetUser ?? served.target.name, secret: chap.secretToAuthenticateTarget };
    }
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

  /** Every acknowledged write on stable storage (SYNCHRONIZE CACHE of every volume). */
  async flush(): Promise<void> {
    await Promise.all([...this.byTarget.values()].map((v) => v.store.flush()));
  }

  /** Shutdown: a final checkpoint of every volume, then their logs are closed. */
  async close(): Promise<void> {
    await Promise.all([...this.byTarget.values()].map((v) => v.store.close()));
  }

  /** The store behind a served volume (storage counters). */
  storeOf(name: string): SegmentBlockStore | undefined {
    return this.byName(name)?.store;
  }
}

function effectiveChap(served: ServedVolume): TargetChap | undefined {
  if (served.apiChap === null) return undefined;
  return served.apiChap ?? served.configChap;
}

function viewOf(served: ServedVolume): ServedVolumeView {
  const record = served.store.volume;
  return {
    id: record.id,
    name: record.name,
    type: record.type,
    sizeBytes: record.sizeBytes,
    targetName: served.target.name,
    serial: record.serial,
    createdAt: record.createdAt,
    origin: served.origin,
    chap: effectiveChap(served),
    counters: served.counters,
    writeCache: served.store.writeCacheEnabled(),
  };
}

function uniqueSerial(catalog: Map<string, VolumeRecord>): string {
  const used = new Set([...catalog.values()].map((r) => r.serial));
  let serial = newVolumeSerial();
  while (used.has(serial)) serial = newVolumeSerial();
  return serial;
}
