// Runtime volume management for the admin API: create, list, describe and delete volumes and
// their targets' CHAP credentials, on top of the volume registry (what the iSCSI fabric serves)
// and the catalog (what survives a restart). Mutations run one at a time, so concurrent requests
// cannot interleave catalog writes; each is durable before the new target is served.

import type { SessionInfo } from '../../iscsi/server.js';
import type { Logger } from '../../iscsi/log.js';
import { formatSize, GiB, TiB } from '../size.js';
import type { Database } from '../store/database.js';
import type { StorageEngine } from '../store/storage-engine.js';
import { SegmentBlockStore, type VolumeStoreContext } from '../store/segment-block-store.js';
import { allocateVolumeId, clearVolumeBlocks, deleteVolume, listVolumes, putVolume, type VolumeChap, type VolumeRecord, type VolumeType } from '../store/volume-catalog.js';
import { GatewayError } from './gateway-error.js';
import { newNaaId, newVolumeSerial } from './identity.js';
import { VOLUME_BLOCK_SIZE, VOLUME_CHUNK_SIZE_BYTES, type ServedVolumeView, type VolumeRegistry } from './volume-registry.js';

/** AWS Volume Gateway: at most 32 volumes per gateway. */
export const MAX_VOLUMES_PER_GATEWAY = 32;

/** AWS volume sizes: whole GiB, up to 16 TiB stored and 32 TiB cached. */
const VOLUME_SIZE_LIMITS: Record<VolumeType, { minBytes: number; maxBytes: number }> = {
  stored: { minBytes: GiB, maxBytes: 16 * TiB },
  cached: { minBytes: GiB, maxBytes: 32 * TiB },
};

/** Volume names become part of the target IQN (RFC 3722: lower-case letters, digits, '-', '.'). */
const VOLUME_NAME_PATTERN = /^[-.a-z0-9]+$/;

/** Why a volume of this type cannot have this size, or undefined when it can. */
export function volumeSizeProblem(type: VolumeType, sizeBytes: number): string | undefined {
  const limits = VOLUME_SIZE_LIMITS[type];
  if (sizeBytes < limits.minBytes || sizeBytes > limits.maxBytes || sizeBytes % GiB !== 0) {
    return (
      `a ${type} volume must be a whole number of GiB from ${formatSize(limits.minBytes)} to ` +
      `${formatSize(limits.maxBytes)} (got ${sizeBytes} bytes)`
    );
  }
  return undefined;
}

export interface VolumeServiceDeps {
  db: Database;
  /** The storage engine the volumes' stores joined (forgets a deleted volume's upload state). */
  engine?: StorageEngine | null;
  /** Where the volume stores keep their data (to clear what a crashed delete left). */
  stores?: VolumeStoreContext;
  registry: VolumeRegistry;
  sessions(): SessionInfo[];
  dropTargetSessions(targetName: string): void;
  /** Whether any target (a volume's or the tape library's) already has this iSCSI name. */
  targetExists?(targetName: string): boolean;
  log: Logger;
}

export class VolumeService {
  private readonly deps: VolumeServiceDeps;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(deps: VolumeServiceDeps) {
    this.deps = deps;
  }

  /** Served volumes, sorted by name. */
  list(): ServedVolumeView[] {
    return this.deps.registry.views().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  get(name: string): ServedVolumeView {
    const view = this.deps.registry.view(name);
    if (view === undefined) throw new GatewayError('GW_VOLUME_NOT_FOUND', `no volume named ${name}`);
    return view;
  }

  /** iSCSI sessions, optionally only those of one volume's target. */
  sessions(volumeName?: string): SessionInfo[] {
    const all = this.deps.sessions();
    if (volumeName === undefined) return all;
    const targetName = this.get(volumeName).targetName;
    return all.filter((s) => s.targetName === targetName);
  }

  /** Distinct initiator names logged in to a volume's target. */
  initiators(volumeName: string): string[] {
    return [...new Set(this.sessions(volumeName).map((s) => s.initiatorName))].sort();
  }

  /** Creates a volume (durably, in the catalog) and serves it at once. `prepare` runs before the
   *  record is written and the volume served (a volume restored from a snapshot gets its chunks). */
  create(input: { name: string; type: VolumeType; sizeBytes: number; prepare?: (record: VolumeRecord) => Promise<void> }): Promise<ServedVolumeView> {
    return this.serialized(async () => {
      const { db, registry, log } = this.deps;
      if (!VOLUME_NAME_PATTERN.test(input.name)) {
        throw new GatewayError('GW_VOLUME_INVALID_ARGUMENT', 'volume name must contain only lower-case letters, digits, "-" and "."');
      }
      const sizeProblem = volumeSizeProblem(input.type, input.sizeBytes);
      if (sizeProblem !== undefined) throw new GatewayError('GW_VOLUME_INVALID_ARGUMENT', `size: ${sizeProblem}`);
      const catalog = await listVolumes(db);
      if (catalog.some((r) => r.name === input.name) || registry.view(input.name) !== undefined) {
        throw new GatewayError('GW_VOLUME_EXISTS', `a volume named ${input.name} already exists`);
      }
      const targetName = registry.targetNameFor(input.name);
      if (this.deps.targetExists?.(targetName) === true) {
        throw new GatewayError('GW_VOLUME_EXISTS', `target ${targetName} exists already (a tape library device)`);
      }
      if (registry.views().length >= MAX_VOLUMES_PER_GATEWAY) {
        throw new GatewayError('GW_VOLUME_LIMIT_EXCEEDED', `a gateway serves at most ${MAX_VOLUMES_PER_GATEWAY} volumes`);
      }
      const usedSerials = new Set(catalog.map((r) => r.serial));
      let serial = newVolumeSerial();
      while (usedSerials.has(serial)) serial = newVolumeSerial();
      const record: VolumeRecord = {
        id: await allocateVolumeId(db),
        name: input.name,
        type: input.type,
        sizeBytes: input.sizeBytes,
        blockSize: VOLUME_BLOCK_SIZE,
        chunkSizeBytes: VOLUME_CHUNK_SIZE_BYTES,
        createdAt: new Date().toISOString(),
        serial,
        naaId: newNaaId(),
        origin: 'api',
      };
      // Blocks a crash left behind under this id (a deleted volume's) must not show through.
      await clearVolumeBlocks(db, record.id);
      if (this.deps.stores !== undefined) await SegmentBlockStore.clearVolumeData(this.deps.stores, record.id);
      await input.prepare?.(record);
      await putVolume(db, record);
      const view = await registry.addVolume(record);
      log.info('volume created', { volume: record.name, type: record.type, size: formatSize(record.sizeBytes), serial });
      return view;
    });
  }

  /** Drops the volume's sessions, stops serving it and deletes it with its data. Volumes declared
   *  in the configuration file are refused: they would come back, empty, at the next start. */
  delete(name: string): Promise<void> {
    return this.serialized(async () => {
      const view = this.get(name);
      if (view.origin === 'config') {
        throw new GatewayError(
          'GW_VOLUME_DECLARED_IN_CONFIG',
          `volume ${name} is declared in the configuration file; remove it there (its data is kept)`,
        );
      }
      const removed = this.deps.registry.removeVolume(name);
      if (removed === undefined) throw new GatewayError('GW_VOLUME_NOT_FOUND', `no volume named ${name}`);
      this.deps.dropTargetSessions(view.targetName);
      // Its segment log, block map and checkpoint record.
      await removed.destroy();
      await deleteVolume(this.deps.db, removed.record);
      // The engine's upload-queue entries, uploaded-chunk records and cached chunks of the volume.
      await this.deps.engine?.forgetVolume(removed.record.id);
      this.deps.log.info('volume deleted', { volume: name });
    });
  }

  /** Sets the volume target's CHAP (one initiator per target) and drops its sessions so that
   *  initiators log in again with the new secrets. */
  updateChap(name: string, chap: VolumeChap): Promise<void> {
    return this.serialized(async () => {
      if (chap.secretToAuthenticateTarget !== undefined && chap.secretToAuthenticateTarget === chap.secretToAuthenticateInitiator) {
        throw new GatewayError('GW_VOLUME_INVALID_ARGUMENT', 'SecretToAuthenticateTarget must differ from SecretToAuthenticateInitiator');
      }
      const view = this.get(name);
      await this.deps.registry.setChap(name, chap);
      this.deps.dropTargetSessions(view.targetName);
    });
  }

  /** Removes the CHAP credentials of `initiatorName` from the volume's target. */
  deleteChap(name: string, initiatorName: string): Promise<void> {
    return this.serialized(async () => {
      const view = this.get(name);
      if (view.chap === undefined || view.chap.initiatorName !== initiatorName) {
        throw new GatewayError('GW_CHAP_NOT_FOUND', `no CHAP credentials for initiator ${initiatorName} on volume ${name}`);
      }
      await this.deps.registry.setChap(name, null);
      this.deps.dropTargetSessions(view.targetName);
    });
  }

  private serialized<T>(step: () => Promise<T>): Promise<T> {
    const run = this.queue.then(step, step);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
