// Debian's tgt (Linux SCSI target framework, user-space tgtd) as the reference target: the
// iscsi-test-cu baseline and the benchmarks run the same clients against it and against shelfgate.
// Needs root (tgtd) and the `tgt` package; the portal listens on 127.0.0.1 only.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTool } from './libiscsi.js';

export const TGT_TARGET_IQN = 'iqn.2026-11.test:disk';
/** tgt always exposes a controller at LUN 0; the disk is LUN 1. */
export const TGT_DISK_LUN = 1;

const STARTUP_TIMEOUT_MS = 10_000;

export interface TgtOptions {
  sizeBytes: number;
  /** Where the sparse backing file goes (defaults to a fresh directory under os.tmpdir()). */
  backingDir?: string;
  /** Backing file name inside backingDir (default tgt-disk.img); two tgtd in one dir need two. */
  backingFileName?: string;
  /** `tgtadm --op new --mode logicalunit … --bsoflags FLAGS` for the disk LUN: `sync` opens the
   *  backing file O_SYNC (every write is on stable storage before GOOD, like a WCE=0 disk),
   *  `direct` O_DIRECT. Default: none (buffered I/O; writes are acknowledged from the page cache). */
  bsoflags?: 'sync' | 'direct' | 'sync:direct';
}

export interface TgtProcess {
  readonly port: number;
  /** tgtd's process id (for /proc CPU and RSS figures). */
  readonly pid: number;
  readonly backingFile: string;
  /** iscsi://127.0.0.1:PORT/iqn.2026-11.test:disk/1 */
  url(): string;
  /** Exact tgtd / tgtadm commands used, for docs/benchmarks.md. */
  readonly commands: string[];
  stop(): Promise<void>;
}

/** A TCP port that was free a moment ago (tgtd cannot be asked for an ephemeral one). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

export async function startTgt(opts: TgtOptions): Promise<TgtProcess> {
  const ownDir = opts.backingDir === undefined;
  const dir = opts.backingDir ?? (await mkdtemp(join(tmpdir(), 'shelfgate-tgt-')));
  const backingFile = join(dir, opts.backingFileName ?? 'tgt-disk.img');
  await writeFile(backingFile, '');
  await truncate(backingFile, opts.sizeBytes);

  const port = await freePort();
  // Control channel: an abstract unix socket numbered by -C (0..32767); derive it from the port so
  // parallel test jobs (and a system tgtd on the default 0) practically never share one.
  const controlPort = String(1 + (port % 32767));
  const tgtdArgs = ['-f', '-C', controlPort, '--iscsi', `portal=127.0.0.1:${port}`];
  const commands = [`tgtd ${tgtdArgs.join(' ')}`];
  const child: ChildProcess = spawn('tgtd', tgtdArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderrText = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderrText = (stderrText + chunk).slice(-16_384);
  });
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));

  const tgtadm = async (...args: string[]): Promise<void> => {
    const full = ['-C', controlPort, '--lld', 'iscsi', ...args];
    const result = await runTool('tgtadm', full, { timeoutMs: 10_000 });
    if (result.exitCode !== 0) throw new Error(`tgtadm ${full.join(' ')}: ${result.stderr}${result.stdout}`);
    commands.push(`tgtadm ${full.join(' ')}`);
  };

  try {
    // tgtd has no ready signal: retry the first tgtadm until its control socket answers.
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    for (;;) {
      try {
        await tgtadm('--op', 'new', '--mode', 'target', '--tid', '1', '-T', TGT_TARGET_IQN);
        break;
      } catch (err) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`tgtd did not start: ${stderrText}`, { cause: err });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const bsoflags = opts.bsoflags === undefined ? [] : ['--bsoflags', opts.bsoflags];
    await tgtadm('--op', 'new', '--mode', 'logicalunit', '--tid', '1', '--lun', String(TGT_DISK_LUN), '-b', backingFile, ...bsoflags);
    await tgtadm('--op', 'bind', '--mode', 'target', '--tid', '1', '-I', 'ALL');
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    if (ownDir) await rm(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    port,
    pid: child.pid ?? -1,
    backingFile,
    commands,
    url: () => `iscsi://127.0.0.1:${port}/${TGT_TARGET_IQN}/${TGT_DISK_LUN}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        // tgtd ignores SIGTERM while targets exist: remove the target, then ask the daemon to exit.
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await runTool('tgtadm', ['-C', controlPort, '--lld', 'iscsi', '--op', 'delete', '--mode', 'target', '--tid', '1', '--force']);
        await runTool('tgtadm', ['-C', controlPort, '--op', 'delete', '--mode', 'system']);
        await exited;
        clearTimeout(timer);
      }
      if (ownDir) await rm(dir, { recursive: true, force: true });
    },
  };
}
