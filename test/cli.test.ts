// The `shelfgate` command as users run it: the built CLI (run `npx tsc -p .` first).
import {
  DescribeStorediSCSIVolumesCommand,
  ListGatewaysCommand,
  ListVolumesCommand,
  StorageGatewayClient,
  UpdateChapCredentialsCommand,
} from '@aws-sdk/client-storage-gateway';
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { cliPath, repoRoot, startGateway, type GatewayProcess } from './helpers/gateway-process.js';

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[]): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath(), ...args], { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Volume {
  name: string;
  sizeBytes: number;
  volumeId: string;
  targetName: string;
}

/** The served volumes, through the REST API with the token the gateway keeps in its data dir. */
async function volumes(gw: GatewayProcess): Promise<Volume[]> {
  const res = await gw.apiFetch('/v1/volumes');
  return ((await res.json()) as { volumes: Volume[] }).volumes;
}

t.test('Cli.Version', async (t) => {
  const r = await runCli(['--version']);
  t.equal(r.code, 0);
  t.match(r.stdout, /^shelfgate \d+\.\d+\.\d+\n$/);
});

t.test('Cli.Help', async (t) => {
  const main = await runCli(['--help']);
  t.equal(main.code, 0);
  t.match(main.stdout, /Usage: shelfgate <command>/);
  const start = await runCli(['start', '--help']);
  t.equal(start.code, 0);
  t.match(start.stdout, /--volume NAME:SIZE/);
  const unknown = await runCli(['frobnicate']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /unknown command "frobnicate"/);
});

t.test('Cli.ConfigError: a bad size names the key and exits 2', async (t) => {
  const dir = await tempDir(t);
  const r = await runCli(['start', '--data-dir', dir, '--volume', 'vol1:10MiB']);
  t.equal(r.code, 2);
  t.equal(r.stdout, '');
  t.equal(r.stderr, 'config error: volumes[0].size: must be at least 1GiB (got "10MiB")\n');
});

t.test('Cli.ConfigError: errors in a YAML file name their key path', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'shelfgate.yaml');
  await writeFile(file, 'volumes:\n  - name: ok\n    size: 1GiB\n  - name: big\n    size: 20TiB\n');
  const r = await runCli(['start', '--config', file, '--data-dir', dir]);
  t.equal(r.code, 2);
  t.equal(r.stderr, 'config error: volumes[1].size: must be at most 16TiB for a stored volume (got "20TiB")\n');
});

t.test('Cli.StartStop: ready line, /health, SIGTERM exits 0', async (t) => {
  const gw = await startGateway({ volumes: ['vol1:2GiB', 'vol2:1GiB'] });
  t.teardown(() => gw.dispose());
  t.ok(gw.iscsiPort > 0 && gw.apiPort > 0, 'ports resolved');
  const health = await fetch(`http://127.0.0.1:${gw.apiPort}/health`);
  t.same(await health.json(), { status: 'ok' }, '/health: open, status only');
  t.same(
    (await volumes(gw)).map((v) => [v.name, v.sizeBytes, v.targetName]),
    [
      ['vol1', 2 ** 31, 'iqn.2026-11.dev.shelfgate:shelfgate-vol1'],
      ['vol2', 2 ** 30, 'iqn.2026-11.dev.shelfgate:shelfgate-vol2'],
    ],
  );
  t.same(await (await gw.apiFetch('/v1/sessions')).json(), { sessions: [] });
  t.equal(await gw.stop(), 0);
});

t.test('Cli.Security: token generated once and required, files private, status --show-token', async (t) => {
  const dataDir = await tempDir(t);
  // A data dir left readable by others (the row: 0755, files 0644) is fixed at start.
  await chmod(dataDir, 0o755);
  await writeFile(join(dataDir, 'left-over'), 'x', { mode: 0o644 });
  await chmod(join(dataDir, 'left-over'), 0o644);
  const gw = await startGateway({ dataDir, volumes: ['vol1:1GiB'] });
  t.teardown(() => gw.dispose());
  const token = await gw.apiToken();
  t.match(token, /^[A-Za-z0-9_-]{43}$/, '256-bit base64url token');
  t.equal(gw.stderr().split(token).length - 1, 1, 'the token is printed once in the log');
  t.match(gw.stderr(), /the data directory was readable by other users/, 'a warning names the fix');

  const api = `http://127.0.0.1:${gw.apiPort}`;
  const create = await fetch(`${api}/v1/volumes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x', size: '1GiB' }) });
  t.equal(create.status, 401, 'no token: create refused');
  const del = await fetch(`${api}/v1/volumes/vol1`, { method: 'DELETE' });
  t.equal(del.status, 401, 'no token: delete refused');
  t.equal((await fetch(`${api}/metrics`)).status, 401, '/metrics needs the token by default');

  const shown = await runCli(['status', '--show-token', '--data-dir', dataDir]);
  t.equal(shown.code, 0, shown.stderr);
  t.equal(shown.stdout, `${token}\n`);
  const listed = await runCli(['volumes', 'list', '--api', api, '--data-dir', dataDir]);
  t.equal(listed.code, 0, `the CLI reads the token from the data dir: ${listed.stderr}`);
  t.match(listed.stdout, /vol1/);
  const refused = await runCli(['volumes', 'list', '--api', api, '--data-dir', join(dataDir, 'nowhere')]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /requires a token/);

  // CHAP secrets set through the AWS API (SigV4 with access key id shelfgate and the token) land
  // in the database, which the walk below finds 0600 in 0700 directories; REST never shows them.
  const sgw = new StorageGatewayClient({ endpoint: api, region: 'us-east-1', credentials: { accessKeyId: 'shelfgate', secretAccessKey: token }, maxAttempts: 1 });
  t.teardown(() => sgw.destroy());
  const gatewayARN = (await sgw.send(new ListGatewaysCommand({}))).Gateways?.[0]?.GatewayARN;
  const volumeARN = (await sgw.send(new ListVolumesCommand({ GatewayARN: gatewayARN }))).VolumeInfos?.[0]?.VolumeARN;
  const described = await sgw.send(new DescribeStorediSCSIVolumesCommand({ VolumeARNs: [volumeARN!] }));
  const TargetARN = described.StorediSCSIVolumes?.[0]?.VolumeiSCSIAttributes?.TargetARN;
  const secret = 'chap-at-rest-01';
  await sgw.send(new UpdateChapCredentialsCommand({ TargetARN, InitiatorName: 'iqn.2026-11.test:cli', SecretToAuthenticateInitiator: secret }));
  const volumeBody = await (await gw.apiFetch('/v1/volumes/vol1')).text();
  t.match(volumeBody, /"chapEnabled":true/);
  t.notMatch(volumeBody, secret, 'the REST API does not return the secret');
  t.equal(await gw.stop(), 0);

  // Everything under the data dir: directories 0700, files 0600 (Level's included).
  const modes: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const mode = (await stat(path)).mode & 0o777;
      if (entry.isDirectory()) {
        if (mode !== 0o700) modes.push(`${path} ${mode.toString(8)}`);
        await walk(path);
      } else if (mode !== 0o600) {
        modes.push(`${path} ${mode.toString(8)}`);
      }
    }
  };
  t.equal((await stat(dataDir)).mode & 0o777, 0o700, 'data dir 0700');
  await walk(dataDir);
  t.same(modes, [], 'every directory 0700, every file 0600');

  await gw.restart();
  t.equal(await gw.apiToken(), token, 'the same token after a restart');
  t.equal(gw.stderr().split(token).length - 1, 1, 'not printed again');
});

t.test('Cli.Restart: identity persists, a volume grows, shrinking is refused', async (t) => {
  const dataDir = await tempDir(t);
  const first = await startGateway({ dataDir, volumes: ['vol1:1GiB'] });
  t.teardown(() => first.dispose());
  const before = (await volumes(first))[0]!;
  t.equal(await first.stop(), 0);

  const grown = await startGateway({ dataDir, volumes: ['vol1:3GiB'] });
  t.teardown(() => grown.dispose());
  const after = (await volumes(grown))[0]!;
  t.equal(after.volumeId, before.volumeId, 'same serial after restart');
  t.equal(after.sizeBytes, 3 * 2 ** 30);
  t.equal(await grown.stop(), 0);

  const r = await runCli(['start', '--data-dir', dataDir, '--iscsi-listen', '127.0.0.1:0', '--api-listen', '127.0.0.1:0',
    '--volume', 'vol1:2GiB']);
  t.equal(r.code, 2);
  t.equal(r.stdout, '');
  t.match(
    r.stderr,
    'config error: volumes[0].size: volume vol1 is 3GiB; shrinking it to 2GiB is not supported (set its size to 3GiB or more)\n',
  );
});

t.test('Cli.PortInUse: the error says which flag to pass', async (t) => {
  const dir = await tempDir(t);
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const port = (blocker.address() as net.AddressInfo).port;
  // The API is told to use the next port: the hint must not suggest it, nor any port in use.
  const r = await runCli(['start', '--data-dir', dir, '--iscsi-listen', `127.0.0.1:${port}`, '--api-listen', `127.0.0.1:${port + 1}`]);
  t.equal(r.code, 1);
  const hint = new RegExp(`iSCSI port ${port} is in use; pass --iscsi-listen 127\\.0\\.0\\.1:(\\d+)`).exec(r.stderr);
  t.ok(hint, r.stderr);
  const suggested = Number(hint?.[1]);
  t.not(suggested, port + 1, 'not the API port');
  const probe = net.createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(suggested, '127.0.0.1', () => resolve());
  });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  t.pass(`the suggested port ${suggested} is free`);
});
