// Wires the object graph (the only place that does): Level database -> volume block stores ->
// disk logical units -> iSCSI targets and portal; the admin API beside them.

import { createServer } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { createDiskLogicalUnit } from '../iscsi/scsi/disk.js';
import type { TargetRegistry } from '../iscsi/device.js';
import { IscsiServer } from '../iscsi/server.js';
import { ensureApiToken } from './api/api-token.js';
import { buildApp } from './api/app.js';
import { apiHostNames } from './api/host-check.js';
import { softwareVersion } from './api/software-version.js';
import type { Config, ListenAddress } from './config.js';
import { GatewayError } from './gateway/gateway-error.js';
import { GatewaySettings } from './gateway/gateway-settings.js';
import { SnapshotScheduler } from './gateway/snapshot-scheduler.js';
import { SnapshotService } from './gateway/snapshot-service.js';
import { openConfiguredObjectStore, StorageService } from './gateway/storage-service.js';
import { claimGatewayId, claimInBackground, type ClaimResult } from './gateway/gateway-claim.js';
import { VOLUME_INQUIRY_IDENTITY } from './gateway/identity.js';
import { VolumeRegistry } from './gateway/volume-registry.js';
import { VolumeService } from './gateway/volume-service.js';
import { GatewayTargetRegistry, staticTargetRegistry } from './gateway/target-registry.js';
import { createVtlTargets, type VtlTargets } from './gateway/vtl-targets.js';
import { openTapeAdmin, type TapeAdmin } from './gateway/tape-admin.js';
import { createConfiguredArchiveStore } from './gateway/tape-archive-store.js';
import { readCaBundle } from './gateway/object-encryption.js';
import { GatewayRecovery } from './gateway/gateway-recovery.js';
import { gatewayPrefix, GATEWAY_MARKER_KEY, listGatewayIds, parseGatewayMarker } from './store/gateway-layout.js';
import { TapeUploader } from './gateway/tape-uploader.js';
import { storedChangerType } from './gateway/vtl-device-type.js';
import type { GatewayLogger } from './log.js';
import { openDatabase, type Database } from './store/database.js';
import type { VolumeStoreContext } from './store/segment-block-store.js';
import { makeDataDirPrivate } from './store/private-files.js';
import { SpaceGuard } from './store/space-guard.js';
import { StoreHealth } from './store/store-health.js';
import { join } from 'node:path';
import { isWildcardAddress, runningInContainer } from './gateway/host-environment.js';

export interface RunningGateway {
  iscsi: ListenAddress;
  api: ListenAddress;
  registry: VolumeRegistry;
  /** Asks initiators to log out (waiting up to graceMs), stops both listeners, drains pending
   *  writes and closes the database. Idempotent. */
  close(opts?: { graceMs?: number }): Promise<void>;
}

export async function startGateway(config: Config, log: GatewayLogger): Promise<RunningGateway> {
  const cleanups: Array<() => Promise<void>> = [];
  const cleanUp = async (): Promise<void> => {
    for (const step of cleanups.reverse()) {
      try {
        await step();
      } catch (err) {
        log.error('shutdown step failed', { err });
      }
    }
    cleanups.length = 0;
  };
  try {
    // docs/security.md: the data dir 0700 and its files 0600, before anything in it is opened.
    await makeDataDirPrivate(config.dataDir, log);
    const apiToken = await resolveApiToken(config, log);
    const db: Database = await openDatabase(config.dataDir);
    cleanups.push(() => db.close());
    log.info('database open', { location: db.location });

    // Before the volume registry: every volume store joins the storage engine.
    const settings = await GatewaySettings.open(db);
    // The gateway's objects live under gateways/<gateway id>/ (docs/object-layout.md "Many
    // gateways on one bucket"). A first start claims the id before storing anything under it; an
    // unreachable bucket never delays the start (the claim then waits in the background).
    const bucket = await openConfiguredObjectStore(config, log.child({ component: 'storage' }));
    const claimLog = log.child({ component: 'storage' });
    let claim: ClaimResult = 'pending';
    try {
      if (settings.firstStart) claim = await claimGatewayId({ bucket, settings, gatewayName: config.gateway.name, log: claimLog });
    } catch (err) {
      await bucket.close();
      throw err;
    }
    const storage = await StorageService.start({
      db,
      config,
      settings,
      bucket,
      identity: { gatewayId: settings.gatewayId, objectLayout: settings.objectLayout },
      log: log.child({ component: 'storage' }),
    });
    if (claim === 'pending' && !settings.claimed) {
      const claiming = new AbortController();
      const background = claimInBackground({ bucket, settings, gatewayName: config.gateway.name, log: claimLog, signal: claiming.signal });
      cleanups.push(async () => {
        claiming.abort();
        await background;
      });
    }
    // One free-space guard and one health record for every store on the data directory's disk.
    const storeLog = log.child({ component: 'store' });
    const storeHealth = new StoreHealth(storeLog);
    const space = new SpaceGuard(config.dataDir, { log: storeLog });
    await space.refresh();
    const volumeStores: VolumeStoreContext = {
      db,
      volumesDir: join(config.dataDir, 'volumes'),
      engine: storage.engine,
      space,
      health: storeHealth,
      log: storeLog,
    };
    cleanups.push(() => storage.close());
    // Closed before the storage engine (cleanups run in reverse): running snapshots finish first.
    const snapshots = await SnapshotService.open({ db, engine: storage.engine, log: log.child({ component: 'snapshots' }) });
    cleanups.push(() => snapshots.close());
    const snapshotScheduler = await SnapshotScheduler.open({
      db,
      snapshots,
      volumes: () => storage.engine.attachedVolumes().map((v) => v.volume),
      log: log.child({ component: 'snapshots' }),
    });
    snapshotScheduler.start();
    cleanups.push(() => snapshotScheduler.stop());

    const registry = await VolumeRegistry.open({
      db,
      stores: volumeStores,
      gatewayName: config.gateway.name,
      volumes: config.volumes,
      createLogicalUnit: (backend) =>
        createDiskLogicalUnit(backend, VOLUME_INQUIRY_IDENTITY, { log: log.child({ component: 'scsi' }) }),
      log,
    });
    cleanups.push(() => registry.close());
    if (config.volumes.length === 0 && !config.tapeLibrary.enabled) {
      log.warn('no volumes configured; pass --volume NAME:SIZE (e.g. --volume vol1:100GiB) or list them in the config file');
    }
    for (const volume of registry.volumes()) {
      log.info('volume target', { target: volume.targetName, type: volume.type, sizeBytes: volume.sizeBytes });
    }

    const targetSources: TargetRegistry[] = [registry];
    let tapeAdmin: TapeAdmin | undefined;
    let vtlTargets: VtlTargets | undefined;
    const archiveStore = config.tapeLibrary.enabled ? createConfiguredArchiveStore(config, await readCaBundle(config)) : undefined;
    if (config.tapeLibrary.enabled) {
      const vtl = await openTapeLibrary(config, db, log.child({ component: 'tape' }), { spaceGuard: space, storeHealth });
      // Cleanups run in reverse: after the iSCSI server stops, loaded tapes are flushed and closed
      // (they stay in their drives across the restart), then the database closes.
      cleanups.push(() => vtl.close());
      targetSources.push(staticTargetRegistry(vtl.targets));
      const admin = await openTapeAdmin({
        vtl,
        db,
        configuredChangerType: config.tapeLibrary.changerType,
        archiveStore: archiveStore!,
        log: log.child({ component: 'tape-shelf' }),
      });
      // Stopped (cleanups run in reverse) before the library closes.
      admin.archiver.start();
      cleanups.push(() => admin.archiver.stop());
      // Tape data and the library catalog to the object store (docs/object-layout.md "Tapes").
      const tapeUploader = new TapeUploader({
        db,
        objectStore: storage.engine.objectStore,
        library: vtl.library,
        catalog: vtl.catalog,
        media: vtl.media,
        shelf: admin.shelf,
        log: log.child({ component: 'tape-upload' }),
      });
      tapeUploader.start();
      cleanups.push(() => tapeUploader.stop());
      tapeAdmin = admin;
      vtlTargets = vtl;
    }

    const server = new IscsiServer({
      registry: new GatewayTargetRegistry(targetSources),
      log: log.child({ component: 'iscsi' }),
      advertisedPortals: config.iscsi.advertise.map((portal) => ({ address: portal.host, port: portal.port })),
      ...(config.iscsi.nopInIntervalMs !== undefined ? { nopInIntervalMs: config.iscsi.nopInIntervalMs } : {}),
      ...(config.iscsi.nopInTimeoutMs !== undefined ? { nopInTimeoutMs: config.iscsi.nopInTimeoutMs } : {}),
      limits: config.iscsi.limits,
      ...(config.iscsi.loginThrottle.enabled ? { loginThrottle: config.iscsi.loginThrottle } : {}),
    });
    let graceMs = 0;
    cleanups.push(() => server.close({ graceMs }));
    const iscsi = await listenOrExplain('iSCSI', '--iscsi-listen', config.iscsi.listen, [config.api.listen.port], (a) =>
      server.listen(a.host, a.port),
    );
    if (config.iscsi.advertise.length > 0) {
      log.info('iSCSI portals advertised', { advertise: config.iscsi.advertise.map(formatListenAddress).join(' ') });
    } else if (isWildcardAddress(iscsi.host) && runningInContainer()) {
      log.warn(
        'running in a container without iscsi.advertise: discovery gives initiators the container\'s own address, ' +
          'which other machines cannot reach; set --advertise HOST:PORT (env SHELFGATE_ADVERTISE) to the host\'s address ' +
          'and the published iSCSI port',
      );
    }

    const volumeService = new VolumeService({
      db,
      engine: storage.engine,
      stores: volumeStores,
      registry,
      sessions: () => server.sessionsInfo(),
      dropTargetSessions: (targetName) => server.dropTargetSessions(targetName),
      targetExists: (targetName) => targetSources.some((source) => source.get(targetName) !== undefined),
      log,
    });
    // Recovery of a lost gateway on the same bucket (docs/disaster-recovery.md).
    const recovery = new GatewayRecovery({
      db,
      bucket: storage.engine.bucket,
      gatewayId: settings.gatewayId,
      snapshots,
      volumes: volumeService,
      ...(vtlTargets !== undefined && tapeAdmin !== undefined ? { tapes: { vtl: vtlTargets, admin: tapeAdmin, archiveStoreKind: archiveStore!.kind } } : {}),
      log: log.child({ component: 'recovery' }),
    });
    cleanups.push(() => recovery.close());
    const bucketGateways = async () => {
      const out: Array<{ gatewayId: string; name?: string; createdAt?: string; self: boolean }> = [];
      for (const gatewayId of await listGatewayIds(storage.engine.bucket)) {
        const key = gatewayPrefix(gatewayId) + GATEWAY_MARKER_KEY;
        const marker = (await storage.engine.bucket.head(key)) === null ? undefined : parseGatewayMarker(await storage.engine.bucket.get(key), key);
        out.push({ gatewayId, ...(marker !== undefined ? { name: marker.name, createdAt: marker.createdAt } : {}), self: gatewayId === settings.gatewayId });
      }
      return out;
    };
    const app: FastifyInstance = buildApp({
      storeHealth,
      allowedHosts: apiHostNames(config.api.listen.host, config.api.allowedHosts),
      publicEndpoints: config.api.public,
      admin: {
        volumes: volumeService,
        settings,
        gatewayName: config.gateway.name,
        region: config.gateway.region ?? 'us-east-1',
        accountId: config.gateway.accountId ?? '000000000000',
        accessKeys: config.api.accessKeys ?? [],
        ...(apiToken !== undefined ? { token: apiToken } : {}),
        encryption: { keySource: config.encryption.keySource, kmsKeyId: config.encryption.kmsKeyId },
        iscsiPortal: () => iscsi,
        iscsiAdvertise: config.iscsi.advertise,
        softwareVersion: softwareVersion(),
        ...(tapeAdmin !== undefined ? { tapes: tapeAdmin } : {}),
        storage,
        storeHealth,
        snapshots: { service: snapshots, scheduler: snapshotScheduler },
        iscsiStats: () => server.limitStats(),
        account: { gateways: bucketGateways, snapshots, recovery },
      },
      log: log.child({ component: 'api' }),
    });
    cleanups.push(() => app.close());
    const api = await listenOrExplain('API', '--api-listen', config.api.listen, [iscsi.port], async (a) => {
      await app.listen({ host: a.host, port: a.port });
      const address = app.server.address();
      return typeof address === 'object' && address !== null ? { host: address.address, port: address.port } : a;
    });

    let closing: Promise<void> | null = null;
    return {
      iscsi,
      api,
      registry,
      close(opts = {}) {
        graceMs = opts.graceMs ?? 0;
        closing ??= cleanUp();
        return closing;
      },
    };
  } catch (err) {
    await cleanUp();
    throw err;
  }
}

/** The admin API's token (docs/security.md): api.token, else the one kept in the data dir
 *  (generated and printed once on the first start); undefined when api.auth is none. */
async function resolveApiToken(config: Config, log: GatewayLogger): Promise<string | undefined> {
  if (config.api.auth === 'none') {
    log.warn('api.auth is none: the admin API (/v1, POST /, /metrics, /docs) accepts requests without a token; use this only on a trusted network');
    return undefined;
  }
  if (config.api.token !== undefined) return config.api.token;
  const { token, generated, path } = await ensureApiToken(config.dataDir);
  if (generated) {
    // Printed this once; later: `shelfgate status --show-token` on this machine.
    log.info('API token generated (shown once; later: shelfgate status --show-token)', { token, file: path });
  }
  return token;
}

/** The tape library's targets; on the first start (empty tape catalog) the configured tapes are
 *  created (AWS CreateTapes semantics), later starts leave the catalog as it is. */
async function openTapeLibrary(
  config: Config,
  db: Database,
  log: GatewayLogger,
  stores: { spaceGuard: SpaceGuard; storeHealth: StoreHealth },
): Promise<VtlTargets> {
  const { slots, tapes, requireDriveUnload } = config.tapeLibrary;
  // UpdateVTLDeviceType's choice (stored through the API) wins over the configuration.
  const changerType = (await storedChangerType(db)) ?? config.tapeLibrary.changerType;
  let vtl: VtlTargets;
  try {
    vtl = await createVtlTargets({
      gatewayName: config.gateway.name,
      changerType,
      db,
      log,
      ...stores,
      requireDriveUnload: requireDriveUnload ?? false,
      ...(slots !== undefined ? { slots } : {}),
    });
  } catch (err) {
    if (err instanceof RangeError) throw new GatewayError('GW_TAPE_INVALID_ARGUMENT', err.message, { cause: err, configPath: 'tapeLibrary.slots' });
    throw err;
  }
  try {
    // Another gateway's tapes are adopted explicitly (`shelfgate recover --from sgw-…`,
    // gateway-recovery.ts): a start never needs the object store.
    if (vtl.firstStart && tapes.length > 0) {
      const wanted = tapes.reduce((sum, t) => sum + t.count, 0);
      const empty = vtl.library.emptyElements('storage').length;
      if (wanted > empty) {
        throw new GatewayError('GW_NO_EMPTY_SLOT', `${wanted} tapes do not fit in ${empty} storage slots (set tapeLibrary.slots or --tape-slots)`, {
          configPath: 'tapeLibrary.tapes',
        });
      }
      for (const [index, request] of tapes.entries()) {
        try {
          await vtl.service.createTapes(request);
        } catch (err) {
          if (err instanceof GatewayError) throw new GatewayError(err.code, err.message, { cause: err, configPath: `tapeLibrary.tapes[${index}]` });
          throw err;
        }
      }
    } else if (!vtl.firstStart && tapes.length > 0) {
      log.info('tapes exist already; configured tapes are created on the first start only');
    }
  } catch (err) {
    await vtl.close();
    throw err;
  }
  log.info('tape library', {
    changerType,
    changer: vtl.targets[0]!.name,
    drives: vtl.targets.length - 1,
    tapes: (await vtl.service.listTapes()).length,
  });
  return vtl;
}

async function listenOrExplain(
  what: string,
  flag: string,
  address: ListenAddress,
  otherListeners: number[],
  listen: (address: ListenAddress) => Promise<ListenAddress>,
): Promise<ListenAddress> {
  try {
    return await listen(address);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'EADDRINUSE') {
      const free = await findFreePort(address.host, address.port + 1, [address.port, ...otherListeners]);
      const suggestion = formatListenAddress({ host: address.host, port: free });
      const hint = free === 0 ? ' (port 0: any free port)' : '';
      throw new GatewayError('GW_LISTEN_FAILED', `${what} port ${address.port} is in use; pass ${flag} ${suggestion}${hint}`, {
        cause: err,
      });
    }
    if (code === 'EACCES') {
      throw new GatewayError(
        'GW_LISTEN_FAILED',
        `${what} port ${address.port} needs more privileges (root or CAP_NET_BIND_SERVICE); pass ${flag} with a port above 1023`,
        { cause: err },
      );
    }
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
      throw new GatewayError(
        'GW_LISTEN_FAILED',
        `${what} address ${address.host} is not an address of this machine; ` +
          `pass ${flag} 0.0.0.0:${address.port} or a local address`,
        { cause: err },
      );
    }
    throw err;
  }
}

/** The first port from `from` on (at most 100 tried) that is free now on `host` and not one of
 *  `avoid` (the gateway's other listener), or 0 (any free port) when none is. */
async function findFreePort(host: string, from: number, avoid: number[]): Promise<number> {
  for (let port = from; port < Math.min(from + 100, 65536); port++) {
    if (avoid.includes(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, host, () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
  return 0;
}

/** "127.0.0.1:3260", "[::1]:3260" */
export function formatListenAddress(address: ListenAddress): string {
  return `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
}
