// The container image (docker/Dockerfile) built by docker/build-image.sh and run with podman,
// offline: the base image node:20-bookworm-slim is a stand-in made with debootstrap from the Debian
// mirror plus this machine's Node.js 20 (docker/stand-in-base.sh). An initiator on the host reaches
// the gateway only through the published ports, with SHELFGATE_ADVERTISE set to them: discovery and
// login to every target, a volume written and read, a tape moved into a drive and written; then the
// container is stopped (graceful: exit code 0) and started again and the data is found.
import { spawn, spawnSync } from 'node:child_process';
import t from 'tap';
import { repoRoot } from '../helpers/gateway-process.js';
import { runTool } from '../helpers/libiscsi.js';
import {
  IQN_PREFIX,
  discoverAndLogin,
  expectedTapeRecord,
  expectedVolumeData,
  freePort,
  library,
  loadAndWriteTape,
  readTapeRecord,
  readVolume,
  writeVolume,
} from '../helpers/appliance.js';

const PODMAN = ['--runtime', 'runc', '--cgroup-manager=cgroupfs'];
const IMAGE = 'shelfgate:latest';
const BASE_IMAGE = 'docker.io/library/node:20-bookworm-slim';
const TOKEN = 'container-test-token-0123456789abcdef';
const NAME = `shelfgate-test-${process.pid}`;
const VOLUME = `shelfgate-test-data-${process.pid}`;
/** Issue 12: at most 150 MB on top of the Node base image. */
const SIZE_BUDGET_BYTES = 150 * 1000 * 1000;
const READY_TIMEOUT_MS = 180_000;
const BUILD_TIMEOUT_MS = 40 * 60_000;

function missing(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (debootstrap and rootful podman)';
  for (const tool of ['podman', 'debootstrap', 'iscsi-ls']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed (.ci/run installs it)`;
  }
  return false;
}

/** `ulimit -H<flag>` of this process (n: open files). */
function hardLimit(flag: 'n'): string {
  return spawnSync('bash', ['-c', `ulimit -H${flag}`], { encoding: 'utf8' }).stdout.trim();
}

async function podman(...args: string[]): Promise<string> {
  const result = await runTool('podman', [...PODMAN, ...args], { timeoutMs: 120_000 });
  if (result.exitCode !== 0) throw new Error(`podman ${args.join(' ')} exited ${result.exitCode}: ${result.stderr}`);
  return result.stdout.trim();
}

/** Follows the container's log until `pattern` has appeared `count` times (or the container
 *  exits, or the timeout); resolves to the whole log. */
function waitForLog(pattern: RegExp, count: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('podman', [...PODMAN, 'logs', '-f', NAME], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`no ${count}× ${pattern} in the container's log within ${READY_TIMEOUT_MS} ms:\n${text}`));
    }, READY_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      if ((text.match(new RegExp(pattern.source, 'gm')) ?? []).length >= count) {
        clearTimeout(timer);
        child.kill();
        resolve(text);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('close', () => {
      clearTimeout(timer);
      reject(new Error(`the container's log ended before ${count}× ${pattern}:\n${text}`));
    });
  });
}

t.test('Appliance.Container: podman, published ports, advertised portal, restart', { skip: missing() }, async (t) => {
  const buildStarted = Date.now();
  const build = await runTool(`${repoRoot()}/docker/build-image.sh`, ['--engine', 'podman'], { timeoutMs: BUILD_TIMEOUT_MS, cwd: repoRoot() });
  t.equal(build.exitCode, 0, `docker/build-image.sh (stderr: ${build.stderr.slice(-4000)})`);
  if (build.exitCode !== 0) return;
  t.comment(`image built in ${Math.round((Date.now() - buildStarted) / 1000)} s: ${build.stdout.trim().split('\n').at(-1)}`);

  // The image: a size within budget, non-root, HEALTHCHECK, OCI labels, the data volume.
  const imageBytes = Number(await podman('image', 'inspect', '--format', '{{.Size}}', IMAGE));
  const baseBytes = Number(await podman('image', 'inspect', '--format', '{{.Size}}', BASE_IMAGE));
  t.ok(imageBytes - baseBytes < SIZE_BUDGET_BYTES, `${((imageBytes - baseBytes) / 1e6).toFixed(1)} MB above the base (budget 150 MB)`);
  const [inspect] = JSON.parse(await podman('image', 'inspect', IMAGE)) as Array<{
    Config: { User?: string; Labels?: Record<string, string>; Volumes?: Record<string, unknown> };
    Healthcheck?: { Test?: string[] };
  }>;
  const config = inspect!.Config;
  const healthcheck = inspect!.Healthcheck;
  t.equal(config.User, 'node', 'runs as the unprivileged node user');
  t.same(healthcheck?.Test, ['CMD', 'node', '/app/healthcheck.mjs'], 'HEALTHCHECK on /health');
  t.equal(config.Labels?.['org.opencontainers.image.version'], '0.1.0');
  t.equal(config.Labels?.['org.opencontainers.image.licenses'], 'Apache-2.0');
  t.match(config.Labels?.['org.opencontainers.image.source'] ?? '', /^https:\/\//);
  t.ok(config.Volumes?.['/var/lib/shelfgate'] !== undefined, 'data volume /var/lib/shelfgate');

  const iscsiPort = await freePort();
  const apiPort = await freePort();
  const apiBase = `http://127.0.0.1:${apiPort}`;
  t.teardown(async () => {
    await runTool('podman', [...PODMAN, 'rm', '--force', '--time', '0', NAME]);
    await runTool('podman', [...PODMAN, 'volume', 'rm', '--force', VOLUME]);
  });
  await podman(
    'run', '--detach', '--name', NAME,
    // Explicit limits (this VM's podman cannot keep its defaults): open files as this process's
    // hard limit, processes well below it. No healthcheck timer (it needs systemd as PID 1 here);
    // the HEALTHCHECK is run below with `podman healthcheck run`.
    '--ulimit', `nofile=${hardLimit('n')}:${hardLimit('n')}`, '--ulimit', 'nproc=4096:4096', '--health-interval', 'disable',
    '--publish', `127.0.0.1:${iscsiPort}:3260`, '--publish', `127.0.0.1:${apiPort}:8080`,
    '--volume', `${VOLUME}:/var/lib/shelfgate`,
    '--env', `SHELFGATE_ADVERTISE=127.0.0.1:${iscsiPort}`,
    '--env', `SHELFGATE_API_TOKEN=${TOKEN}`,
    IMAGE,
    '--volume', 'vol1:1GiB', '--tapes', 'CTR:2', '--tape-slots', '20:4',
  );
  const startedAt = Date.now();
  await waitForLog(/^shelfgate ready /, 1);
  t.comment(`container ready ${Math.round((Date.now() - startedAt) / 1000)} s after podman run`);
  t.equal(await podman('exec', NAME, 'id', '-u'), '1000', 'the gateway process runs as uid 1000');
  t.equal((await runTool('podman', [...PODMAN, 'healthcheck', 'run', NAME])).exitCode, 0, 'the HEALTHCHECK passes');

  const gatewayResponse = await fetch(`${apiBase}/v1/gateway`, { headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(gatewayResponse.status, 200, 'the admin API answers through its published port with the token from the environment');
  const gateway = (await gatewayResponse.json()) as { iscsi: { host: string; port: number; advertise: unknown } };
  t.same(gateway.iscsi, { host: '0.0.0.0', port: 3260, advertise: [{ host: '127.0.0.1', port: iscsiPort }] });
  t.equal((await fetch(`${apiBase}/v1/gateway`)).status, 401, 'no token, no answer');

  const listed = await discoverAndLogin('127.0.0.1', iscsiPort);
  const drives = Array.from({ length: 10 }, (_, i) => `${IQN_PREFIX}shelfgate-tapedrive-${String(i + 1).padStart(2, '0')}`);
  t.same(listed.map((l) => l.target).sort(), [`${IQN_PREFIX}shelfgate-mediachanger`, ...drives, `${IQN_PREFIX}shelfgate-vol1`].sort(), 'every target discovered');
  t.ok(listed.every((l) => l.portal === `127.0.0.1:${iscsiPort},1` && l.luns === 1), `each at the published portal, logged in: ${JSON.stringify(listed.slice(0, 2))}`);

  await writeVolume('127.0.0.1', iscsiPort, `${IQN_PREFIX}shelfgate-vol1`);
  const barcode = await loadAndWriteTape('127.0.0.1', iscsiPort, await library(apiBase, TOKEN));
  t.match(barcode, /^CTR/, 'a tape created on the first start was moved into drive 1 and written');

  // Graceful stop within the stop timeout: the gateway logs "stopped" and exits 0.
  await podman('stop', '--time', '30', NAME);
  t.equal(await podman('inspect', '--format', '{{.State.ExitCode}}', NAME), '0', 'SIGTERM: clean exit');
  await podman('start', NAME);
  const log = await waitForLog(/^shelfgate ready /, 2);
  t.match(log, /stopped/, 'the first run logged its clean shutdown');

  t.ok((await readVolume('127.0.0.1', iscsiPort, `${IQN_PREFIX}shelfgate-vol1`)).equals(expectedVolumeData()), 'the volume data survived the restart');
  const after = await library(apiBase, TOKEN);
  const drive1 = after.drives.find((d) => d.index === 1)!;
  t.equal(drive1.barcode, barcode, 'the tape is still in drive 1');
  t.ok((await readTapeRecord('127.0.0.1', iscsiPort, drive1.targetName)).equals(expectedTapeRecord()), 'the tape record survived the restart');
});
