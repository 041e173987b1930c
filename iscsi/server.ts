// The iSCSI target portal (RFC 7143 4.2.7): accepts TCP connections, one Connection each, and
// owns the session table. Shutdown asks every session to log out (AsyncEvent 1) first.

import net from 'node:net';
import type { Duplex } from 'node:stream';
import { Connection, type ConnectionContext, type LocalPortal, type PeerAddress } from './connection.js';
import type { TargetRegistry } from './device.js';
import { ByteBudget, DEFAULT_ISCSI_LIMITS, type IscsiLimits } from './limits.js';
import { LoginThrottle, type LoginThrottleOptions } from './login-throttle.js';
import { silentLogger, type Logger } from './log.js';
import { isidHex } from './names.js';
import { SessionTable } from './session.js';

export interface IscsiServerOptions {
  registry: TargetRegistry;
  log?: Logger;
  /** RFC 7143 13.9 TargetPortalGroupTag of this portal; default 1. */
  portalGroupTag?: number;
  /** RFC 7143 13.8 TargetAddress values SendTargets reports, in order (a host name or address
   *  and port the initiators can reach, e.g. behind NAT or a published container port). Default:
   *  the address and port each connection reached, as the socket sees it. */
  advertisedPortals?: readonly LocalPortal[];
  /** Ping idle connections with NOP-In after this long; 0 disables. Default 30 s. */
  nopInIntervalMs?: number;
  /** Drop a connection whose NOP-In is not answered within this. Default 15 s. */
  nopInTimeoutMs?: number;
  /** Memory and stall limits (limits.ts); unset ones take DEFAULT_ISCSI_LIMITS. */
  limits?: Partial<IscsiLimits>;
  /** Throttling of failed logins (login-throttle.ts); off unless given. */
  loginThrottle?: LoginThrottleOptions;
}

/** Counters and gauges of the limits, for /metrics. */
export interface IscsiLimitStats {
  /** Connections closed for going past a limit, by limit (login, stall, output). */
  limitCloses: Record<string, number>;
  /** Logins that failed with an initiator error (RFC 7143 status class 2), and logins refused
   *  because their initiator name or address failed too often. */
  loginFailures: number;
  loginRefusals: number;
  /** PDUs framed from initiators, and logins that reached full feature phase. */
  pdusReceived: number;
  fullFeatureLogins: number;
  writeBufferBytes: number;
  responseBytes: number;
  connections: number;
}

export interface SessionInfo {
  initiatorName: string;
  targetName: string;
  isid: string;
  tsih: number;
  connections: number;
}

export class IscsiServer {
  private readonly ctx: ConnectionContext;
  private readonly sessions = new SessionTable();
  private readonly connections = new Set<Connection>();
  private readonly log: Logger;
  private server: net.Server | undefined;
  private closeWaiters: Array<() => void> = [];
  private readonly limitCloses: Record<string, number> = {};
  private readonly loginCounts = { failures: 0, refusals: 0 };
  private readonly counts = { pdusReceived: 0, fullFeatureLogins: 0 };
  private readonly writeBudget: ByteBudget;
  private readonly responseBudget: ByteBudget;

  constructor(opts: IscsiServerOptions) {
    this.log = opts.log ?? silentLogger;
    const limits = { ...DEFAULT_ISCSI_LIMITS, ...opts.limits };
    this.writeBudget = new ByteBudget(limits.totalWriteBufferBytes);
    this.responseBudget = new ByteBudget(limits.totalResponseBytes);
    this.ctx = {
      limits,
      writeBudget: this.writeBudget,
      responseBudget: this.responseBudget,
      limitExceeded: (kind) => {
        this.limitCloses[kind] = (this.limitCloses[kind] ?? 0) + 1;
      },
      counts: this.counts,
      loginThrottle: opts.loginThrottle === undefined ? undefined : new LoginThrottle(opts.loginThrottle),
      loginFailed: (refused) => {
        if (refused) this.loginCounts.refusals++;
        else this.loginCounts.failures++;
      },
      registry: opts.registry,
      log: this.log,
      portalGroupTag: opts.portalGroupTag ?? 1,
      advertisedPortals: opts.advertisedPortals ?? [],
      nopInIntervalMs: opts.nopInIntervalMs ?? 30_000,
      nopInTimeoutMs: opts.nopInTimeoutMs ?? 15_000,
      sessions: this.sessions,
      dropTargetSessions: (name) => this.dropTargetSessions(name),
      connectionClosed: (conn) => {
        this.connections.delete(conn);
        if (this.connections.size === 0) {
          const waiters = this.closeWaiters;
          this.closeWaiters = [];
          for (const w of waiters) w();
        }
      },
    };
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    const server = net.createServer({ noDelay: true }, (socket) => {
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 60_000);
      this.accept(
        socket,
        { address: socket.localAddress ?? host, port: socket.localPort ?? port },
        { address: socket.remoteAddress ?? 'unknown', port: socket.remotePort ?? 0 },
      );
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.log.error('iSCSI listener error', { err: String(err) }));
        const addr = server.address() as net.AddressInfo;
        this.log.info('iSCSI portal listening', { host: addr.address, port: addr.port });
        resolve({ host: addr.address, port: addr.port });
      });
    });
  }

  /** Serves one connected stream (a TCP socket, or one end of a duplex pair in tests). */
  accept(stream: Duplex, portal: LocalPortal, peer?: PeerAddress): Connection {
    const conn = new Connection(stream, this.ctx, portal, peer);
    this.connections.add(conn);
    return conn;
  }

  limitStats(): IscsiLimitStats {
    return {
      limitCloses: { ...this.limitCloses },
      loginFailures: this.loginCounts.failures,
      loginRefusals: this.loginCounts.refusals,
      pdusReceived: this.counts.pdusReceived,
      fullFeatureLogins: this.counts.fullFeatureLogins,
      writeBufferBytes: this.writeBudget.used,
      responseBytes: this.responseBudget.used,
      connections: this.connections.size,
    };
  }

  sessionsInfo(): SessionInfo[] {
    return this.sessions.all().map((s) => ({
      initiatorName: s.initiatorName,
      targetName: s.targetName,
      isid: isidHex(s.isid),
      tsih: s.tsih,
      connections: s.connection === null ? 0 : 1,
    }));
  }

  /** Drops every session logged in to a target (it was removed, or TARGET COLD RESET). */
  dropTargetSessions(targetName: string): void {
    for (const s of this.sessions.all()) {
      if (s.type === 'normal' && s.targetName === targetName) {
        s.end(this.log, 'target sessions dropped');
        this.sessions.remove(s);
      }
    }
  }

  /**
   * Stops listening, asks every session to log out (RFC 7143 11.9.1 AsyncEvent 1), waits up to
   * graceMs for the initiators to do so, then drops what is left.
   */
  async close(opts: { graceMs?: number } = {}): Promise<void> {
    const graceMs = opts.graceMs ?? 2000;
    const server = this.server;
    this.server = undefined;
    const closed = server === undefined
      ? Promise.resolve()
      : new Promise<void>((resolve) => server.close(() => resolve()));
    for (const conn of this.connections) {
      if (conn.isFullFeature) conn.requestLogout(Math.max(1, Math.ceil(graceMs / 1000)));
      else conn.close('server shutting down');
    }
    if (this.connections.size > 0 && graceMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.closeWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    for (const conn of [...this.connections]) conn.close('server shut down');
    await closed;
  }
}
