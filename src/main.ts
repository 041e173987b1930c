// Wires the object graph (the only place that does): Level database -> volume block stores ->
// disk logical units -> iSCSI targets and portal; the admin API beside them.

import type { FastifyInstance } from 'fastify';
import { createDiskLogicalUnit } from '../iscsi/scsi/disk.js';
import { IscsiServer } from '../iscsi/server.js';
import { buildApp } from './api/app.js';
import type { Config, ListenAddress } from './config.js';
import { GatewayError } from './gateway/gateway-error.js';
import { VOLUME_INQUIRY_IDENTITY } from './gateway/identity.js';
import { VolumeRegistry } from './gateway/volume-registry.js';
import type { GatewayLogger } from './log.js';
import { openDatabase, type Database } from './store/database.js';

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
    const db: Database = await openDatabase(config.dataDir);
    cleanups.push(() => db.close());
    log.info('database open', { location: db.location });

    const registry = await VolumeRegistry.open({
      db,
      gatewayName: config.gateway.name,
      volumes: config.volumes,
      createLogicalUnit: (backend) =>
        createDiskLogicalUnit(backend, VOLUME_INQUIRY_IDENTITY, { log: log.child({ component: 'scsi' }) }),
      log,
    });
    cleanups.push(() => registry.flush());
    if (config.volumes.length === 0) {
      log.warn('no volumes configured; pass --volume NAME:SIZE (e.g. --volume vol1:100GiB) or list them in the config file');
    }
    for (const volume of registry.volumes()) {
      log.info('volume target', { target: volume.targetName, type: volume.type, sizeBytes: volume.sizeBytes });
    }

    const server = new IscsiServer({
      registry,
      log: log.child({ component: 'iscsi' }),
      ...(config.iscsi.nopInIntervalMs !== undefined ? { nopInIntervalMs: config.iscsi.nopInIntervalMs } : {}),
      ...(config.iscsi.nopInTimeoutMs !== undefined ? { nopInTimeoutMs: config.iscsi.nopInTimeoutMs } : {}),
    });
    let graceMs = 0;
    cleanups.push(() => server.close({ graceMs }));
    const iscsi = await listenOrExplain('iSCSI', '--iscsi-listen', config.iscsi.listen, (a) => server.listen(a.host, a.port));

    const app: FastifyInstance = buildApp({ volumes: () => registry.volumes(), sessions: () => server.sessionsInfo() });
    cleanups.push(() => app.close());
    const api = await listenOrExplain('API', '--api-listen', config.api.listen, async (a) => {
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

async function listenOrExplain(
  what: string,
  flag: string,
  address: ListenAddress,
  listen: (address: ListenAddress) => Promise<ListenAddress>,
): Promise<ListenAddress> {
  try {
    return await listen(address);
  } catch (err) {
    const code = (err as { code?: string }).code;
    const suggestion = formatListenAddress({ host: address.host, port: address.port + 1 });
    if (code === 'EADDRINUSE') {
      throw new GatewayError('GW_LISTEN_FAILED', `${what} port ${address.port} is in use; pass ${flag} ${suggestion}`, {
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

/** "127.0.0.1:3260", "[::1]:3260" */
export function formatListenAddress(address: ListenAddress): string {
  return `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
}
