// Runs the real `shelfgate start` command (dist/src/cli/main.js) as a child process for e2e tests
// and benchmarks, and waits for its one machine-readable ready line:
//   shelfgate ready iscsi=HOST:PORT api=HOST:PORT
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readApiToken } from '../../src/api/api-token.js';

export const DEFAULT_GATEWAY_NAME = 'shelfgate';
/** Volume target names: iqn.2026-11.dev.shelfgate:<gateway-name>-<volume-name>. */
export const VOLUME_IQN_PREFIX = 'iqn.2026-11.dev.shelfgate:';

const READY_LINE = /^shelfgate ready iscsi=(\S+):(\d+) api=(\S+):(\d+)\s*$/m;
const STARTUP_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
const STDERR_KEPT_BYTES = 64 * 1024;

export interface GatewayOptions {
  /** "NAME:SIZE" as the CLI takes them, e.g. "vol1:1GiB". */
  volumes?: string[];
  configFile?: string;
  /** Defaults to a fresh temporary directory that `dispose()` removes. */
  dataDir?: string;
  extraArgs?: string[];
  gatewayName?: string;
}

export interface GatewayProcess {
  readonly iscsiPort: number;
  readonly apiPort: number;
  readonly dataDir: string;
  /** The process id of the running server (changes on restart). */
  readonly pid: number;
  /** Everything the server wrote on stderr (last 64 KiB), for failure messages. */
  stderr(): string;
  targetIqn(volume: string): string;
  /** iscsi://127.0.0.1:PORT/IQN/LUN as libiscsi and qemu take it. */
  url(volume: string, lun?: number): string;
  /** SIGTERM and wait; resolves to the exit code (null exit code reported as 128 + signal). */
  stop(): Promise<number>;
  kill9(): Promise<void>;
  /** Start again on the same data dir, asking for the same ports. */
  restart(): Promise<void>;
  /** Stop if running and remove the data dir if this helper created it. For t.teardown. */
  dispose(): Promise<void>;
  /** Whether the process is still running (e.g. after a fuzz run). */
  alive(): boolean;
  /** The API token the gateway generated in its data dir (src/api/api-token.ts). */
  apiToken(): Promise<string>;
  /** fetch() of an admin API path with the gateway's token. */
  apiFetch(path: string, init?: RequestInit): Promise<Response>;
}

/** The repository root: the nearest ancestor with package.json (works from test/ and dist/test/). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'tsconfig.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('repository root not found');
    dir = parent;
  }
}

export function cliPath(): string {
  return resolve(repoRoot(), 'dist/src/cli/main.js');
}

interface Running {
  child: ChildProcess;
  exited: Promise<number>;
  iscsiPort: number;
  apiPort: number;
}

export async function startGateway(opts: GatewayOptions = {}): Promise<GatewayProcess> {
  const ownDataDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'shelfgate-e2e-')));
  const gatewayName = opts.gatewayName ?? DEFAULT_GATEWAY_NAME;
  let stderrText = '';

  const spawnServer = async (iscsiPort: number, apiPort: number): Promise<Running> => {
    const args = [cliPath(), 'start', '--data-dir', dataDir];
    args.push('--iscsi-listen', `127.0.0.1:${iscsiPort}`, '--api-listen', `127.0.0.1:${apiPort}`);
    if (opts.configFile !== undefined) args.push('--config', opts.configFile);
    if (opts.gatewayName !== undefined) args.push('--gateway-name', opts.gatewayName);
    for (const volume of opts.volumes ?? []) args.push('--volume', volume);
    args.push(...(opts.extraArgs ?? []));

    const child = spawn(process.execPath, args, { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number>((resolveExit) => {
      child.once('exit', (code, signal) => resolveExit(code ?? 128 + signalNumber(signal)));
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      stderrText = (stderrText + chunk).slice(-STDERR_KEPT_BYTES);
    });

    const ports = await new Promise<{ iscsiPort: number; apiPort: number }>((resolveReady, rejectReady) => {
      let stdoutText = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        rejectReady(new Error(`shelfgate did not print its ready line within ${STARTUP_TIMEOUT_MS} ms\n${stderrText}`));
      }, STARTUP_TIMEOUT_MS);
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (chunk: string) => {
        stdoutText += chunk;
        const match = READY_LINE.exec(stdoutText);
        if (match) {
          clearTimeout(timer);
          resolveReady({ iscsiPort: Number(match[2]), apiPort: Number(match[4]) });
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        rejectReady(new Error(`shelfgate exited with ${code} before it was ready\n${stdoutText}\n${stderrText}`));
      });
    });
    return { child, exited, ...ports };
  };

  let running: Running | null = await spawnServer(0, 0);
  let { iscsiPort, apiPort } = running;

  const waitExit = async (r: Running): Promise<number> => {
    const timer = setTimeout(() => r.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    try {
      return await r.exited;
    } finally {
      clearTimeout(timer);
    }
  };

  const gateway: GatewayProcess = {
    get iscsiPort() {
      return iscsiPort;
    },
    get apiPort() {
      return apiPort;
    },
    dataDir,
    get pid() {
      return running?.child.pid ?? -1;
    },
    stderr: () => stderrText,
    targetIqn: (volume) => `${VOLUME_IQN_PREFIX}${gatewayName}-${volume}`,
    url: (volume, lun = 0) => `iscsi://127.0.0.1:${iscsiPort}/${gateway.targetIqn(volume)}/${lun}`,
    async stop() {
      if (running === null) throw new Error('shelfgate is not running');
      const r = running;
      running = null;
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGTERM');
      return waitExit(r);
    },
    async kill9() {
      if (running === null) throw new Error('shelfgate is not running');
      const r = running;
      running = null;
      r.child.kill('SIGKILL');
      await r.exited;
    },
    async restart() {
      if (running !== null) await gateway.stop();
      running = await spawnServer(iscsiPort, apiPort);
      iscsiPort = running.iscsiPort;
      apiPort = running.apiPort;
    },
    async dispose() {
      if (running !== null) {
        await gateway.stop();
      }
      if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
    },
    alive: () => running !== null && running.child.exitCode === null && running.child.signalCode === null,
    async apiToken() {
      const token = await readApiToken(dataDir);
      if (token === undefined) throw new Error(`no API token in ${dataDir} (api.token or api.auth set in the configuration?)`);
      return token;
    },
    async apiFetch(path, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has('authorization')) headers.set('authorization', `Bearer ${await gateway.apiToken()}`);
      return fetch(`http://127.0.0.1:${apiPort}${path}`, { ...init, headers });
    },
  };
  return gateway;
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === null ? 0 : constants.signals[signal];
}
