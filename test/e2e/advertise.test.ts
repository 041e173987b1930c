// Advertised portals (iscsi.advertise, RFC 7143 13.8 TargetAddress) behind a port mapping: the
// gateway's portal is reached only through a TCP forwarder on another address and port, as behind
// a NAT or a container's published port. libiscsi's iscsi-ls discovers (SendTargets) at the
// outside address, then logs in to every target at the TargetAddress it was given.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startGateway, VOLUME_IQN_PREFIX } from '../helpers/gateway-process.js';
import { runTool } from '../helpers/libiscsi.js';
import { startTcpForwarder } from '../helpers/tcp-forwarder.js';

const TOKEN = 'advertise-test-token-0123456789';
/** Outside address: on the loopback network, but not the address the gateway listens on. */
const OUTSIDE_HOST = '127.0.0.3';
const TAPE_DRIVES = 10;

const dir = await mkdtemp(join(tmpdir(), 'shelfgate-advertise-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const configFile = join(dir, 'shelfgate.yaml');
await writeFile(configFile, `api:\n  token: ${TOKEN}\n`);

/** iscsi-ls -s: each "Target:NAME Portal:HOST:PORT,TAG" line, with the LUN lines under it (listed
 *  only after a successful login to that target at that portal). */
function parseIscsiLs(stdout: string): Array<{ target: string; portal: string; luns: number }> {
  return stdout
    .split(/^(?=Target:)/m)
    .filter((section) => section.startsWith('Target:'))
    .map((section) => {
      const head = /^Target:(\S+) Portal:(\S+)$/m.exec(section)!;
      return { target: head[1]!, portal: head[2]!, luns: [...section.matchAll(/^Lun:\d+\s/gm)].length };
    });
}

function expectedTargets(gatewayName: string): string[] {
  const drives = Array.from({ length: TAPE_DRIVES }, (_, i) => `${VOLUME_IQN_PREFIX}${gatewayName}-tapedrive-${String(i + 1).padStart(2, '0')}`);
  return [`${VOLUME_IQN_PREFIX}${gatewayName}-vol1`, `${VOLUME_IQN_PREFIX}${gatewayName}-mediachanger`, ...drives].sort();
}

t.test('Advertise.PortMapping: discovery and login to every target through the outside address only', async (t) => {
  let insidePort = 0;
  const forwarder = await startTcpForwarder(OUTSIDE_HOST, () => ({ host: '127.0.0.1', port: insidePort }));
  t.teardown(() => forwarder.close());
  const gateway = await startGateway({
    volumes: ['vol1:1GiB'],
    configFile,
    extraArgs: ['--advertise', `${OUTSIDE_HOST}:${forwarder.port}`],
  });
  t.teardown(() => gateway.dispose());
  insidePort = gateway.iscsiPort;
  t.not(forwarder.port, insidePort, 'the outside port differs from the inside one');

  const result = await runTool('iscsi-ls', ['-s', `iscsi://${OUTSIDE_HOST}:${forwarder.port}`], { timeoutMs: 60_000 });
  t.equal(result.exitCode, 0, `iscsi-ls exit code (stderr: ${result.stderr})`);
  const listed = parseIscsiLs(result.stdout);
  t.same(listed.map((l) => l.target).sort(), expectedTargets('shelfgate'), 'every target is discovered');
  for (const entry of listed) {
    t.equal(entry.portal, `${OUTSIDE_HOST}:${forwarder.port},1`, `${entry.target}: TargetAddress is the outside portal, group tag 1`);
    t.equal(entry.luns, 1, `${entry.target}: logged in at the outside portal and listed LUN 0`);
  }
  // One discovery session and one login per target, all through the forwarder.
  t.ok(forwarder.connections >= 1 + listed.length, `${forwarder.connections} connections went through the forwarder`);

  const response = await fetch(`http://127.0.0.1:${gateway.apiPort}/v1/gateway`, { headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(response.status, 200);
  const body = (await response.json()) as { iscsi: { host: string; port: number; advertise: Array<{ host: string; port: number }> } };
  t.same(body.iscsi, { host: '127.0.0.1', port: insidePort, advertise: [{ host: OUTSIDE_HOST, port: forwarder.port }] }, 'the API reports the listener and what is advertised');
});

t.test('Advertise.Unset: discovery gives the address and port the connection reached', async (t) => {
  let insidePort = 0;
  const forwarder = await startTcpForwarder(OUTSIDE_HOST, () => ({ host: '127.0.0.1', port: insidePort }));
  t.teardown(() => forwarder.close());
  const gateway = await startGateway({ volumes: ['vol1:1GiB'], configFile, extraArgs: ['--iscsi-listen', '127.0.0.1:0'] });
  t.teardown(() => gateway.dispose());
  insidePort = gateway.iscsiPort;
  // Discovery only (no -s): the inside portal is what the gateway's socket saw.
  const result = await runTool('iscsi-ls', [`iscsi://${OUTSIDE_HOST}:${forwarder.port}`], { timeoutMs: 60_000 });
  t.equal(result.exitCode, 0, `iscsi-ls exit code (stderr: ${result.stderr})`);
  const listed = parseIscsiLs(result.stdout);
  t.equal(listed.length, expectedTargets('shelfgate').length);
  for (const entry of listed) t.equal(entry.portal, `127.0.0.1:${insidePort},1`, entry.target);
});
