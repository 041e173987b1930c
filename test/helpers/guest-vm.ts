// A Debian 12 guest under qemu-system-x86_64 (TCG) for the VM suites (test/vm/guest-*, backup-*):
// the image is built once per content of test/vm/guest/{build-image.sh,init.sh} and cached in
// ~/.cache/shelfgate/guest-<hash> (SHELFGATE_GUEST_CACHE overrides the folder). A run gets a job
// folder shared with the guest over 9p (mount tag "job"): boot.sh and lib.sh from test/vm/guest,
// the scenario as run.sh, `env` with the gateway's portal as the guest reaches it. The guest
// reports on its serial console "SG-RESULT ok|fail NAME …" lines and powers off at the end.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Test } from 'tap';
import { repoRoot } from './gateway-process.js';

export interface GuestImage {
  dir: string;
  kernel: string;
  initrd: string;
  rootfs: string;
}

/** Where QEMU's user-mode network puts the host, as the guest sees it. */
export const HOST_FROM_GUEST = '10.0.2.2';

const guestDir = (): string => join(repoRoot(), 'test/vm/guest');

function which(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Why the VM suites cannot run here, or undefined when they can. */
export function guestSkipReason(): string | undefined {
  if (!which('qemu-system-x86_64')) return 'qemu-system-x86_64 is not installed (Debian package qemu-system-x86)';
  if (existsSync(imageDir())) return undefined;
  if (process.getuid?.() !== 0) return 'building the guest image needs root (debootstrap, chroot)';
  if (!which('debootstrap')) return 'debootstrap is not installed (Debian package debootstrap)';
  return undefined;
}

function imageDir(): string {
  const hash = createHash('sha256');
  for (const file of ['build-image.sh', 'init.sh']) hash.update(readFileSync(join(guestDir(), file)));
  const cache = process.env.SHELFGATE_GUEST_CACHE ?? join(homedir(), '.cache/shelfgate');
  return join(cache, `guest-${hash.digest('hex').slice(0, 16)}`);
}

/** The cached image, built first if needed (progress on stderr; some minutes). */
export async function guestImage(): Promise<GuestImage> {
  const dir = imageDir();
  if (!existsSync(join(dir, 'rootfs.ext4'))) {
    await mkdir(join(dir, '..'), { recursive: true });
    const started = Date.now();
    process.stderr.write(`building the guest image into ${dir}\n`);
    const code = await new Promise<number>((resolveCode) => {
      const child = spawn(join(guestDir(), 'build-image.sh'), [dir], { stdio: ['ignore', 'inherit', 'inherit'] });
      child.once('exit', (c) => resolveCode(c ?? 1));
    });
    if (code !== 0) throw new Error(`test/vm/guest/build-image.sh failed (exit ${code})`);
    process.stderr.write(`guest image built in ${Math.round((Date.now() - started) / 1000)} s\n`);
  }
  return { dir, kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), rootfs: join(dir, 'rootfs.ext4') };
}

export interface GuestResult {
  name: string;
  ok: boolean;
  detail: string;
}

export interface GuestRun {
  /** The job folder (the guest's /job): out/NAME.log has each check's full output. */
  jobDir: string;
  results: GuestResult[];
  /** The guest printed SG-DONE (its script ran to the end). */
  done: boolean;
  console: string;
  /** Seconds from start to the guest's first line of boot.sh, and to power off. */
  bootSeconds: number | undefined;
  totalSeconds: number;
}

export interface GuestJob {
  /** The scenario, a file of test/vm/guest/, run as /job/run.sh. */
  script: string;
  /** Further files of test/vm/guest/ the scenario uses (configuration files). */
  files?: string[];
  /** Lines KEY=VALUE of /job/env. */
  env: Record<string, string | number>;
  memoryMiB?: number;
  /** The guest is killed after this long (a hang must not stall CI for ever). */
  timeoutMs: number;
  /** Called with the job folder once the guest runs (for host-side steps the guest waits for). */
  whileRunning?: (jobDir: string, running: () => boolean) => Promise<void>;
}

export async function runGuest(image: GuestImage, job: GuestJob): Promise<GuestRun> {
  const jobDir = await mkdtemp(join(tmpdir(), 'shelfgate-guest-job-'));
  for (const file of ['boot.sh', 'lib.sh', ...(job.files ?? [])]) {
    await mkdir(dirname(join(jobDir, file)), { recursive: true });
    await copyFile(join(guestDir(), file), join(jobDir, file));
  }
  await copyFile(join(guestDir(), job.script), join(jobDir, 'run.sh'));
  await writeFile(join(jobDir, 'env'), Object.entries(job.env).map(([k, v]) => `${k}='${v}'\n`).join(''));
  const started = Date.now();
  const args = [
    '-machine', 'q35', '-accel', 'tcg', '-cpu', 'max', '-smp', '2', '-m', String(job.memoryMiB ?? 2048),
    '-nographic', '-no-reboot', '-nodefaults', '-serial', 'stdio',
    '-kernel', image.kernel, '-initrd', image.initrd,
    '-append', 'console=ttyS0 root=/dev/vda rw init=/sbin/shelfgate-init quiet panic=-1 net.ifnames=0 no_timer_check',
    '-drive', `file=${image.rootfs},if=virtio,format=raw,snapshot=on`,
    '-netdev', 'user,id=net0', '-device', 'virtio-net-pci,netdev=net0,romfile=',
    '-virtfs', `local,path=${jobDir},mount_tag=job,security_model=none,id=job`,
  ];
  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let consoleText = '';
  let bootSeconds: number | undefined;
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    if (process.env.SHELFGATE_GUEST_CONSOLE) process.stderr.write(chunk);
    consoleText += chunk;
    if (bootSeconds === undefined && consoleText.includes('SG-BOOTED')) bootSeconds = (Date.now() - started) / 1000;
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => (consoleText += chunk));
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  const timer = setTimeout(() => child.kill('SIGKILL'), job.timeoutMs);
  try {
    if (job.whileRunning) await Promise.race([job.whileRunning(jobDir, () => child.exitCode === null && child.signalCode === null), exited]);
    await exited;
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  const results: GuestResult[] = [];
  for (const match of consoleText.matchAll(/^SG-RESULT (ok|fail) (\S+) ?(.*)$/gm)) {
    results.push({ ok: match[1] === 'ok', name: match[2]!, detail: match[3]!.trim() });
  }
  return { jobDir, results, done: /^SG-DONE/m.test(consoleText), console: consoleText, bootSeconds, totalSeconds: (Date.now() - started) / 1000 };
}

/** Removes a run's job folder. */
export async function disposeGuestRun(run: GuestRun): Promise<void> {
  await rm(run.jobDir, { recursive: true, force: true });
}

/** One test point per check the guest's script makes, in order (a missing one fails: the script
 *  stopped before it), and one that it ran to its end; `hostLog` is added to failures. */
export function reportGuestChecks(t: Test, run: GuestRun, checks: readonly string[], hostLog: () => string): void {
  t.comment(`guest: boot to test ${run.bootSeconds?.toFixed(0) ?? '?'} s, whole run ${run.totalSeconds.toFixed(0)} s`);
  for (const name of checks) {
    const result = run.results.find((r) => r.name === name);
    t.ok(result?.ok, name, result ? { detail: result.detail } : { console: run.console.slice(-4000) });
  }
  t.ok(run.done, 'the guest script ran to its end', run.done ? {} : { console: run.console.slice(-4000), gateway: hostLog().slice(-4000) });
}
