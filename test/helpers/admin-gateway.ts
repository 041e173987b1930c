// An in-process gateway for admin API tests: a Level database in a temporary directory, the
// volume registry (and, with `tapes`, the tape library), an iSCSI portal and the admin app, both
// listening on 127.0.0.1 ephemeral ports.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import type { Test } from 'tap';
import { createDiskLogicalUnit } from '../../iscsi/scsi/disk.js';
import { IscsiServer } from '../../iscsi/server.js';
import { buildApp } from '../../src/api/app.js';
import { apiHostNames } from '../../src/api/host-check.js';
import type { AdminDeps } from '../../src/api/admin-deps.js';
import { resolveConfig } from '../../src/config.js';
import { LocalArchiveStore } from '../../src/cloud/local-archive-store.js';
import { GatewaySettings } from '../../src/gateway/gateway-settings.js';
import { VOLUME_INQUIRY_IDENTITY } from '../../src/gateway/identity.js';
import { VolumeRegistry } from '../../src/gateway/volume-registry.js';
import { VolumeService } from '../../src/gateway/volume-service.js';
import { openTapeAdmin } from '../../src/gateway/tape-admin.js';
import { GatewayTargetRegistry, staticTargetRegistry } from '../../src/gateway/target-registry.js';
import { storedChangerType } from '../../src/gateway/vtl-device-type.js';
import { createVtlTargets, type VtlTargets } from '../../src/gateway/vtl-targets.js';
import { createLogger } from '../../src/log.js';
import { openDatabase } from '../../src/store/database.js';

export const TEST_ACCESS_KEY = { accessKeyId: 'AKIASHELFGATETEST01', secretAccessKey: 'shelfgate/test/secret/key/0123456789abcd' };
export const TEST_REGION = 'eu-west-1';
/** The API token the helper's gateway requires unless started with `token: null`. */
export const TEST_API_TOKEN = 'admin-gateway-test-token-0123456789';
export const TEST_ACCOUNT = '123456789012';

export interface AdminGateway {
  app: FastifyInstance;
  /** app.inject() with the gateway's bearer token (unless the request sets authorization). */
  inject(opts: InjectOptions): Promise<LightMyRequestResponse>;
  admin: AdminDeps;
  iscsiPort: number;
  /** http://127.0.0.1:PORT once `listen()` resolved. */
  endpoint: string;
  server: IscsiServer;
  dataDir: string;
  /** The tape library's targets when started with `tapes`. */
  vtl?: VtlTargets;
  /** Stops everything (keeping a caller-supplied dataDir); the teardown does it otherwise. */
  close(): Promise<void>;
}

/** Starts a gateway declaring `volumes` ("name:size") in its configuration; torn down with `t`.
 *  `otherTargets` stand for target names served beside the volumes (the tape library's).
 *  A caller-supplied `dataDir` is kept (to start again on it); a temporary one is removed. */
export async function startAdminGateway(
  t: Test,
  opts: {
    volumes?: string[];
    /** The API token (default TEST_API_TOKEN); null: authentication off (api.auth: none). */
    token?: string | null;
    listen?: boolean;
    dataDir?: string;
    otherTargets?: string[];
    /** Serve the tape library too, with this many storage and import/export slots. */
    tapes?: { storageSlots: number; importExportSlots: number };
    /** The tape archiver's clock (retention locks); the archiver is not started: call runOnce(). */
    now?: () => number;
  } = {},
): Promise<AdminGateway> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'shelfgate-api-')));
  const token = opts.token === undefined ? TEST_API_TOKEN : opts.token;
  const config = resolveConfig({}, { dataDir, volumes: opts.volumes ?? [] });
  const log = createLogger({ level: 'silent', format: 'human' });
  const db = await openDatabase(dataDir);
  const registry = await VolumeRegistry.open({
    db,
    stores: { db, volumesDir: join(dataDir, 'volumes') },
    gatewayName: config.gateway.name,
    volumes: config.volumes,
    createLogicalUnit: (backend) => createDiskLogicalUnit(backend, VOLUME_INQUIRY_IDENTITY, { log }),
    log,
  });
  const vtl =
    opts.tapes === undefined
      ? undefined
      : await createVtlTargets({
          gatewayName: config.gateway.name,
          // As main.ts: UpdateVTLDeviceType's stored choice wins over the configuration.
          changerType: (await storedChangerType(db)) ?? config.tapeLibrary.changerType,
          db,
          log,
          slots: { storage: opts.tapes.storageSlots, importExport: opts.tapes.importExportSlots },
        });
  const targets = new GatewayTargetRegistry(vtl === undefined ? [registry] : [registry, staticTargetRegistry(vtl.targets)]);
  const server = new IscsiServer({ registry: targets, log });
  const portal = await server.listen('127.0.0.1', 0);
  const admin: AdminDeps = {
    volumes: new VolumeService({
      db,
      registry,
      sessions: () => server.sessionsInfo(),
      dropTargetSessions: (name) => server.dropTargetSessions(name),
      targetExists: (name) => targets.get(name) !== undefined || (opts.otherTargets ?? []).includes(name),
      log,
    }),
    settings: await GatewaySettings.open(db),
    gatewayName: config.gateway.name,
    region: TEST_REGION,
    accountId: TEST_ACCOUNT,
    accessKeys: [TEST_ACCESS_KEY],
    ...(token !== null ? { token } : {}),
    iscsiPortal: () => portal,
    softwareVersion: '0.1.0',
    ...(vtl !== undefined
      ? {
          tapes: await openTapeAdmin({
            vtl,
            db,
            configuredChangerType: config.tapeLibrary.changerType,
            archiveStore: new LocalArchiveStore({ directory: join(dataDir, 'archive') }),
            log,
            ...(opts.now !== undefined ? { now: opts.now } : {}),
          }),
        }
      : {}),
  };
  const app = buildApp({ admin, log, allowedHosts: apiHostNames('127.0.0.1') });
  const inject = (request: InjectOptions): Promise<LightMyRequestResponse> =>
    app.inject({ ...request, headers: { ...(token !== null ? { authorization: `Bearer ${token}` } : {}), ...request.headers } });
  let endpoint = '';
  if (opts.listen ?? true) {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    if (address === null || typeof address !== 'object') throw new Error('no API address');
    endpoint = `http://127.0.0.1:${address.port}`;
  } else {
    await app.ready();
  }
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await app.close();
      await server.close({ graceMs: 0 });
      await vtl?.close();
      await registry.close();
      await db.close();
      if (opts.dataDir === undefined) await rm(dataDir, { recursive: true, force: true });
    })());
  t.teardown(close);
  return { app, inject, admin, iscsiPort: portal.port, endpoint, server, dataDir, ...(vtl !== undefined ? { vtl } : {}), close };
}
