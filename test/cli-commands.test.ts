// `shelfgate tapes|volumes|status` as users run them (the built CLI: run `npx tsc -p .` first),
// against a real gateway process started with a bearer token.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { cliPath, repoRoot, startGateway } from './helpers/gateway-process.js';

const TOKEN = 'cli-test-token-0123456789';

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath(), ...args], {
      cwd: repoRoot(),
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

t.test('Cli.NoGateway: says how to start one', async (t) => {
  const port = await closedPort();
  const res = await runCli(['tapes', 'list', '--api', `http://127.0.0.1:${port}`]);
  t.equal(res.code, 1);
  t.equal(res.stderr, `shelfgate tapes: no gateway at http://127.0.0.1:${port}: start one with \`shelfgate start\`, or pass --api URL\n`);
  t.equal(res.stdout, '');
});

t.test('Cli.Usage: exit 2 with the command help', async (t) => {
  const create = await runCli(['tapes', 'create', '--prefix', 'AB']);
  t.equal(create.code, 2);
  t.match(create.stderr, /tapes create needs --prefix P --count N, or --barcode B/);
  t.match(create.stderr, /Usage: shelfgate tapes <action>/);
  const unknown = await runCli(['volumes', 'list', '--bogus']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /--bogus/);
  const help = await runCli(['status', '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage: shelfgate status/);
  const main = await runCli(['--help']);
  t.match(main.stdout, /tapes +create, list, describe and delete virtual tapes/);
});

t.test('Cli.Commands: tapes, volumes and status against a running gateway', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-cli-commands-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const configFile = join(dir, 'shelfgate.json');
  await writeFile(configFile, JSON.stringify({ api: { token: TOKEN } }));
  const gateway = await startGateway({ configFile, extraArgs: ['--tape-slots', '8:2'], volumes: ['cfg:1GiB'] });
  t.teardown(() => gateway.dispose());
  const api = ['--api', `http://127.0.0.1:${gateway.apiPort}`];
  const env = { SHELFGATE_API_TOKEN: TOKEN };

  const refused = await runCli(['tapes', 'list', ...api]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /the gateway requires a token: pass --token TOKEN or set SHELFGATE_API_TOKEN/);
  const wrong = await runCli(['tapes', 'list', ...api, '--token', 'not-the-token-at-all']);
  t.match(wrong.stderr, /refused the token/);

  const created = await runCli(['tapes', 'create', '--prefix', 'CLI', '--count', '2', '--size', '200GiB', ...api, '--token', TOKEN]);
  t.equal(created.code, 0, created.stderr);
  t.match(created.stdout, /^BARCODE +STATUS +SIZE +USED +WORM +POOL +ELEMENT\n/);
  t.match(created.stdout, /CLI[0-9A-F]{7} +AVAILABLE +200 GiB +0 B +no +- +storage \d+/);
  const withBarcode = await runCli(['tapes', 'create', '--barcode', 'CLIB0001', '--worm', ...api], env);
  t.equal(withBarcode.code, 0, withBarcode.stderr);

  const listed = await runCli(['tapes', 'list', '--json', ...api], env);
  t.equal(listed.code, 0, listed.stderr);
  const tapes = JSON.parse(listed.stdout) as Array<{ barcode: string; sizeBytes: number; worm: boolean }>;
  t.equal(tapes.length, 3);
  t.match(tapes.find((tape) => tape.barcode === 'CLIB0001'), { sizeBytes: 100 * 2 ** 30, worm: true });

  const described = await runCli(['tapes', 'describe', 'CLIB0001', ...api], env);
  t.equal(described.code, 0);
  t.match(described.stdout, /ARN: arn:aws:storagegateway:us-east-1:000000000000:tape\/CLIB0001/);
  const badSize = await runCli(['tapes', 'create', '--barcode', 'CLIB0002', '--size', '50GiB', ...api], env);
  t.equal(badSize.code, 1);
  t.equal(badSize.stderr, 'shelfgate tapes: sizeBytes: must be at least 100 GiB (107374182400)\n');
  t.equal((await runCli(['tapes', 'delete', 'CLIB0001', ...api], env)).stdout, 'deleted CLIB0001\n');
  const missing = await runCli(['tapes', 'describe', 'NOSUCH01', ...api], env);
  t.equal(missing.code, 1);
  t.equal(missing.stderr, 'shelfgate tapes: no tape NOSUCH01\n');

  const volume = await runCli(['volumes', 'create', 'web', '--size', '2GiB', ...api], env);
  t.equal(volume.code, 0, volume.stderr);
  t.match(volume.stdout, /web +stored +2 GiB +vol-[0-9A-F]{8} +api +no +iqn\.2026-11\.dev\.shelfgate:shelfgate-web/);
  const volumes = JSON.parse((await runCli(['volumes', 'list', '--json', ...api], env)).stdout) as Array<{ name: string }>;
  t.same(volumes.map((v) => v.name), ['cfg', 'web']);
  const configured = await runCli(['volumes', 'delete', 'cfg', ...api], env);
  t.equal(configured.code, 1);
  t.match(configured.stderr, /cfg/);
  t.equal((await runCli(['volumes', 'delete', 'web', ...api], env)).code, 0);

  const status = await runCli(['status', ...api], env);
  t.equal(status.code, 0, status.stderr);
  t.match(status.stdout, /^gateway +shelfgate \(sgw-[0-9A-F]{8}\)/);
  t.match(status.stdout, new RegExp(`iSCSI +127\\.0\\.0\\.1:${gateway.iscsiPort}`));
  t.match(status.stdout, /library +AWS-Gateway-VTL, 2\/8 slots full, 0\/2 I\/E, 0\/10 drives loaded/);
  t.match(status.stdout, /sessions +0/);
  const statusJson = JSON.parse((await runCli(['status', '--json', ...api], env)).stdout) as {
    gateway: { volumeCount: number };
    library: { elements?: unknown[]; elementCounts: Record<string, { total: number; full: number }> };
  };
  t.equal(statusJson.gateway.volumeCount, 1);
  t.notOk('elements' in statusJson.library, 'no element list unless asked');
  t.same(statusJson.library.elementCounts.storage, { total: 8, full: 2 }, 'storage slots counted');
  t.same(statusJson.library.elementCounts['import-export'], { total: 2, full: 0 });
  const everything = JSON.parse((await runCli(['status', '--json', '--elements', ...api], env)).stdout) as {
    library: { elements: Array<{ type: string }> };
  };
  t.equal(everything.library.elements.filter((e) => e.type === 'storage').length, 8, '--elements lists them');
});
