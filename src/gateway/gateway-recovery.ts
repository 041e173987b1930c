// Recovery of a lost gateway (docs/disaster-recovery.md): this gateway adopts, from the other
// gateway's prefix of the bucket (`gateways/<from>/`, or the root for `legacy`):
//
// 1. its library tapes (tapes/catalog.json, each tape's index.json and data objects): rebuilt
//    eagerly into local media, in their slots when free (tape-object-recovery.ts) — the tapes'
//    recovery points;
// 2. its archived tapes (tapes/shelf.json): entered in this gateway's shelf as ARCHIVED, so
//    RetrieveTapeArchive brings them back from the archive store both gateways are configured with;
// 3. its volumes: for each `volumes/<id>/head.json`, a volume of the same name, type and size
//    restored from the volume's latest snapshot, or from the head (its recovery point: the last
//    uploaded state) when it has none or `source` says so; chunks are fetched lazily from the
//    lost gateway's objects.
//
// Idempotent: what is adopted is recorded in Level (`recovery/<from>`) step by step, and a tape
// whose barcode or a volume whose name this gateway has already is skipped, so a run interrupted
// by a crash is simply run again. Progress is readable while it runs.

import { z } from 'zod';
import type { Logger } from '../../iscsi/log.js';
import { getIfExists, type ObjectStore } from '../cloud/object-store.js';
import { PrefixedObjectStore } from '../cloud/prefixed-object-store.js';
import type { Database } from '../store/database.js';
import { gatewayPrefix, isGatewayId, LEGACY_GATEWAY_ID } from '../store/gateway-layout.js';
import { getSetting, putSetting } from '../store/settings-catalog.js';
import { parseHeadManifest, type HeadManifest, type SnapshotManifest } from '../store/snapshot-manifest.js';
import { headManifestKey } from '../store/storage-engine.js';
import { parseTapeShelfObject, TAPE_SHELF_OBJECT_KEY } from '../store/tape-shelf-object.js';
import { GatewayError } from './gateway-error.js';
import type { SnapshotService } from './snapshot-service.js';
import type { TapeAdmin } from './tape-admin.js';
import type { TapeCatalog } from './tape-catalog.js';
import { recoverTapesFromObjectStore } from './tape-object-recovery.js';
import { TapeStatus } from './tape-status.js';
import type { VtlTargets } from './vtl-targets.js';
import type { VolumeService } from './volume-service.js';

const count = z.int().nonnegative();
export const gatewayRecoverySchema = z.object({
  from: z.string(),
  state: z.enum(['running', 'completed', 'failed']),
  /** What it is doing now, for people. */
  step: z.string(),
  startedAt: z.string(),
  finishedAt: z.string().optional(),
  error: z.string().optional(),
  tapes: z.object({ found: count, adopted: z.array(z.string()), skipped: z.array(z.string()) }),
  archivedTapes: z.object({ found: count, adopted: z.array(z.string()), skipped: z.array(z.string()) }),
  volumes: z.object({
    found: count,
    adopted: z.array(z.object({ name: z.string(), type: z.enum(['cached', 'stored']), sourceVolumeId: count, from: z.string() })),
    skipped: z.array(z.object({ name: z.string(), reason: z.string() })),
  }),
});
export type GatewayRecoveryProgress = z.infer<typeof gatewayRecoverySchema>;

export type VolumeSource = 'snapshot' | 'recovery-point';

export interface GatewayRecoveryDeps {
  db: Database;
  /** The whole bucket. */
  bucket: ObjectStore;
  gatewayId: string;
  snapshots: SnapshotService;
  volumes: VolumeService;
  tapes?: { vtl: VtlTargets; admin: TapeAdmin; archiveStoreKind: string };
  log: Logger;
}

export class GatewayRecovery {
  readonly #deps: GatewayRecoveryDeps;
  readonly #running = new Map<string, Promise<void>>();
  readonly #progress = new Map<string, GatewayRecoveryProgress>();

  constructor(deps: GatewayRecoveryDeps) {
    this.#deps = deps;
  }

  /** Starts (or joins) the recovery of gateway `from`; answers its progress at once. */
  async start(from: string, opts: { volumeSource?: VolumeSource } = {}): Promise<GatewayRecoveryProgress> {
    if (!isGatewayId(from) && from !== LEGACY_GATEWAY_ID) {
      throw new GatewayError('GW_RECOVERY_INVALID_ARGUMENT', `"${from}" is not a gateway id (sgw- and 8 hex digits, or legacy for the layout before gateway prefixes)`);
    }
    if (from === this.#deps.gatewayId) throw new GatewayError('GW_RECOVERY_INVALID_ARGUMENT', `${from} is this gateway`);
    const running = this.#progress.get(from);
    if (running !== undefined && running.state === 'running') return structuredClone(running);
    let found = false;
    for await (const _ of this.#deps.bucket.list(gatewayPrefix(from), { limit: 1 })) found = true;
    if (!found) throw new GatewayError('GW_GATEWAY_NOT_FOUND', `the bucket holds no objects of gateway ${from} (under ${gatewayPrefix(from) || 'the root'})`);
    const previous = await this.get(from).catch(() => undefined);
    const progress: GatewayRecoveryProgress = {
      from,
      state: 'running',
      step: 'starting',
      startedAt: new Date().toISOString(),
      tapes: { found: 0, adopted: previous?.tapes.adopted ?? [], skipped: [] },
      archivedTapes: { found: 0, adopted: previous?.archivedTapes.adopted ?? [], skipped: [] },
      volumes: { found: 0, adopted: previous?.volumes.adopted ?? [], skipped: [] },
    };
    this.#progress.set(from, progress);
    await this.#save(progress);
    const job = this.#run(progress, opts.volumeSource ?? 'snapshot')
      .then(() => {
        progress.state = 'completed';
        progress.step = 'done';
      })
      .catch((err: unknown) => {
        progress.state = 'failed';
        progress.error = err instanceof Error ? err.message : String(err);
        this.#deps.log.error('gateway recovery failed; run it again to resume', { from, err: progress.error });
      })
      .finally(async () => {
        progress.finishedAt = new Date().toISOString();
        await this.#save(progress).catch(() => undefined);
        this.#running.delete(from);
      });
    this.#running.set(from, job);
    return structuredClone(progress);
  }

  /** The progress of the last recovery of `from` (this run, or a finished one from Level). */
  async get(from: string): Promise<GatewayRecoveryProgress> {
    const live = this.#progress.get(from);
    if (live !== undefined) return structuredClone(live);
    const stored = await getSetting(this.#deps.db, `recovery/${from}`, gatewayRecoverySchema);
    if (stored === undefined) throw new GatewayError('GW_GATEWAY_NOT_FOUND', `no recovery of ${from} has been started on this gateway`);
    return stored;
  }

  /** Resolves when the recovery of `from` is no longer running. */
  async waitFor(from: string): Promise<GatewayRecoveryProgress> {
    await this.#running.get(from);
    return this.get(from);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#running.values()]);
  }

  async #save(progress: GatewayRecoveryProgress): Promise<void> {
    await putSetting(this.#deps.db, `recovery/${progress.from}`, progress);
  }

  async #run(progress: GatewayRecoveryProgress, volumeSource: VolumeSource): Promise<void> {
    const { log } = this.#deps;
    const source = new PrefixedObjectStore(this.#deps.bucket, gatewayPrefix(progress.from));
    if (this.#deps.tapes !== undefined) {
      progress.step = 'library tapes';
      const { vtl } = this.#deps.tapes;
      await recoverTapesFromObjectStore({
        objectStore: source,
        library: vtl.library,
        catalog: vtl.catalog,
        media: vtl.media,
        log,
        adopt: true,
        onTape: (barcode, outcome) => {
          progress.tapes.found++;
          if (outcome === 'rebuilt') progress.tapes.adopted.push(barcode);
          else if (!progress.tapes.adopted.includes(barcode)) progress.tapes.skipped.push(barcode);
          log.info('recovery: tape', { from: progress.from, barcode, outcome });
          void this.#save(progress).catch(() => undefined);
        },
      });
      progress.step = 'archived tapes';
      await this.#adoptShelf(source, progress);
    }
    progress.step = 'volumes';
    await this.#adoptVolumes(source, progress, volumeSource);
  }

  async #adoptShelf(source: ObjectStore, progress: GatewayRecoveryProgress): Promise<void> {
    const { admin, vtl, archiveStoreKind } = this.#deps.tapes!;
    const body = await getIfExists(source, TAPE_SHELF_OBJECT_KEY);
    if (body === null) return;
    const catalog: TapeCatalog = vtl.catalog;
    for (const record of parseTapeShelfObject(body).tapes) {
      progress.archivedTapes.found++;
      if (catalog.get(record.barcode) !== undefined || admin.shelf.get(record.barcode) !== undefined) {
        if (!progress.archivedTapes.adopted.includes(record.barcode)) progress.archivedTapes.skipped.push(record.barcode);
        continue;
      }
      if (record.archive !== undefined && record.archive.storeKind !== archiveStoreKind) {
        progress.archivedTapes.skipped.push(record.barcode);
        this.#deps.log.warn('recovery: archived tape is in another kind of archive store; configure tapeLibrary.archive like the lost gateway', {
          barcode: record.barcode,
          archiveStore: record.archive.storeKind,
          configured: archiveStoreKind,
        });
        continue;
      }
      // The shelf record first: a tape ARCHIVED in the catalog is retrievable only with it.
      await admin.shelf.put({ ...record, job: null });
      await catalog.put({
        barcode: record.barcode,
        status: TapeStatus.ARCHIVED,
        sizeBytes: record.sizeBytes,
        worm: record.worm,
        poolId: record.poolId,
        createdAt: record.archivedAt ?? record.poolEntryDate,
        location: null,
      });
      progress.archivedTapes.adopted.push(record.barcode);
      this.#deps.log.info('recovery: archived tape adopted', { from: progress.from, barcode: record.barcode });
      await this.#save(progress);
    }
  }

  async #adoptVolumes(source: ObjectStore, progress: GatewayRecoveryProgress, volumeSource: VolumeSource): Promise<void> {
    const { snapshots, volumes, log } = this.#deps;
    const heads = new Map((await listVolumeHeads(source)).map((head) => [head.volumeId, head]));
    const latest = new Map<number, SnapshotManifest>();
    for (const manifest of await snapshots.snapshotsOf(progress.from)) latest.set(manifest.volumeId, manifest); // newest last
    // A volume is known by its head.json (its recovery point) or its snapshots (a gateway lost
    // before its first head upload still has the snapshots it completed).
    const volumeIds = [...new Set([...heads.keys(), ...latest.keys()])].sort((x, y) => x - y);
    progress.volumes.found = volumeIds.length;
    for (const volumeId of volumeIds) {
      const head = heads.get(volumeId);
      const snapshot = volumeSource === 'snapshot' || head === undefined ? latest.get(volumeId) : undefined;
      const name = head?.name ?? snapshot?.volumeName ?? `volume-${volumeId}`;
      const type = head?.type ?? snapshot?.volumeType ?? 'cached';
      if (progress.volumes.adopted.some((v) => v.name === name && v.sourceVolumeId === volumeId)) continue;
      if (volumes.list().some((v) => v.name === name)) {
        progress.volumes.skipped.push({ name, reason: `a volume named ${name} exists on this gateway` });
        continue;
      }
      const from = snapshot !== undefined ? snapshot.snapId : 'recovery-point';
      const sizeBytes = Math.max(head?.sizeBytes ?? 0, snapshot?.sizeBytes ?? 0);
      await volumes.create({
        name,
        type,
        sizeBytes,
        prepare: (record) =>
          snapshot !== undefined
            ? snapshots.restoreManifestInto({ ...snapshot, gatewayId: snapshot.gatewayId ?? progress.from, what: `snapshot ${snapshot.snapId}` }, record)
            : snapshots.restoreManifestInto({ ...head!, gatewayId: head!.gatewayId ?? progress.from, what: `the recovery point of volume ${name}` }, record),
      });
      progress.volumes.adopted.push({ name, type, sourceVolumeId: volumeId, from });
      log.info('recovery: volume adopted', { from: progress.from, volume: name, type, source: from });
      await this.#save(progress);
    }
  }
}

/** Every `volumes/<id>/head.json` of a gateway's prefix (one list request per volume). */
async function listVolumeHeads(source: ObjectStore): Promise<HeadManifest[]> {
  const heads: HeadManifest[] = [];
  let startAfter: string | undefined;
  for (;;) {
    let volumeId: string | undefined;
    for await (const entry of source.list('volumes/', { limit: 1, ...(startAfter !== undefined ? { startAfter } : {}) })) {
      volumeId = entry.key.split('/')[1];
    }
    if (volumeId === undefined) return heads.sort((a, b) => a.volumeId - b.volumeId);
    startAfter = `volumes/${volumeId}0`; // '0' sorts right after '/': past volumes/<id>/…
    if (!/^\d+$/.test(volumeId)) continue;
    const key = headManifestKey(Number(volumeId));
    const body = await getIfExists(source, key);
    if (body !== null) heads.push(parseHeadManifest(body, key));
  }
}

