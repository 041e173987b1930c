// qemu-img (qemu-utils + qemu-block-extra's libiscsi block driver) as a real bulk client: 1 GiB of
// random bytes written to a shelfgate volume and read back must be byte-identical.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startGateway } from '../helpers/gateway-process.js';
import { runTool } from '../helpers/libiscsi.js';

const VOLUME = 'qemu';
const IMAGE_BYTES = 1024 * 1024 * 1024;
const CONVERT_TIMEOUT_MS = 10 * 60_000;

const dir = await mkdtemp(join(tmpdir(), 'shelfgate-qemu-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const gateway = await startGateway({ volumes: [`${VOLUME}:1GiB`] });
t.teardown(() => gateway.dispose());

const source = join(dir, 'source.raw');
const copy = join(dir, 'copy.raw');

/** First differing byte offset of two files, or -1 when identical (reported instead of a diff). */
async function firstDifference(a: string, b: string): Promise<number> {
  const result = await runTool('cmp', [a, b], { timeoutMs: 120_000 });
  if (result.exitCode === 0) return -1;
  const match = /byte (\d+)/.exec(result.stdout + result.stderr);
  return match ? Number(match[1]) - 1 : 0;
}

t.test('QemuImg.ConvertToVolume', async (t) => {
  const random = await runTool('sh', ['-c', `head -c ${IMAGE_BYTES} /dev/urandom > '${source}'`], { timeoutMs: 120_000 });
  t.equal(random.exitCode, 0, 'random source image written');
  t.equal((await stat(source)).size, IMAGE_BYTES);
  // -n: the target exists (the volume), so qemu-img must not try to create it.
  const result = await runTool('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', source, gateway.url(VOLUME)], {
    timeoutMs: CONVERT_TIMEOUT_MS,
  });
  t.equal(result.exitCode, 0, 'qemu-img convert to iSCSI', { stderr: result.stderr });
});

t.test('QemuImg.ConvertFromVolume', async (t) => {
  const result = await runTool('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', gateway.url(VOLUME), copy], {
    timeoutMs: CONVERT_TIMEOUT_MS,
  });
  t.equal(result.exitCode, 0, 'qemu-img convert from iSCSI', { stderr: result.stderr });
  t.equal((await stat(copy)).size, IMAGE_BYTES, 'the copy has the volume size');
  t.equal(await firstDifference(source, copy), -1, 'byte-identical round trip');
});

t.test('QemuImg.Info', async (t) => {
  const result = await runTool('qemu-img', ['info', '--output=json', gateway.url(VOLUME)], { timeoutMs: 60_000 });
  t.equal(result.exitCode, 0, 'exit code 0', { stderr: result.stderr });
  const info = JSON.parse(result.stdout) as { 'virtual-size': number; format: string };
  t.equal(info['virtual-size'], IMAGE_BYTES);
  t.equal(info.format, 'raw');
  t.ok(gateway.alive(), 'server still running');
});
