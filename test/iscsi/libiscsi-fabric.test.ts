// Real clients against the fabric: libiscsi tools and qemu-img log in, discover, read and write
// through an IscsiServer on 127.0.0.1 serving the in-memory test LU (not the real SBC LU).
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { TargetConfig } from '../../iscsi/device.js';
import { IscsiServer } from '../../iscsi/server.js';
import { repoRoot } from '../helpers/gateway-process.js';
import { field, parseTestCuList, parseTestCuOutput, parseToolFields, runTool } from '../helpers/libiscsi.js';
import { MemoryLun } from '../helpers/memory-lun.js';

const PLAIN = 'iqn.2026-11.dev.shelfgate:fabric-plain';
const CHAP = 'iqn.2026-11.dev.shelfgate:fabric-chap';
const CHAP_INITIATOR = 'iqn.2026-11.test:chap-client';
const BLOCKS = 65536;

const lun = new MemoryLun({ blockCount: BLOCKS });
const targets: TargetConfig[] = [
  { name: PLAIN, luns: new Map([[0, lun]]) },
  {
    name: CHAP,
    luns: new Map([[0, new MemoryLun()]]),
    chap: { user: 'client', secret: 'client-secret-1' },
    allowedInitiators: [CHAP_INITIATOR],
  },
];
const server = new IscsiServer({
  registry: { list: () => targets, get: (name) => targets.find((x) => x.name === name) },
});
const { port } = await server.listen('127.0.0.1', 0);
const portal = `127.0.0.1:${port}`;
const dir = await mkdtemp(join(tmpdir(), 'shelfgate-fabric-'));
t.teardown(async () => {
  await server.close({ graceMs: 1000 });
  await rm(dir, { recursive: true, force: true });
});

t.test('iscsi-ls discovers and reports the LUN', async (t) => {
  const r = await runTool('iscsi-ls', ['-s', `iscsi://${portal}`]);
  t.equal(r.exitCode, 0, r.stderr);
  t.match(r.stdout, `Target:${PLAIN} Portal:${portal},1`);
  t.notMatch(r.stdout, CHAP, 'a target the initiator may not log in to is not listed');
  t.match(r.stdout, /Lun:0\s+Type:DIRECT_ACCESS/);
});

t.test('iscsi-inq and iscsi-readcapacity16', async (t) => {
  const inq = await runTool('iscsi-inq', [`iscsi://${portal}/${PLAIN}/0`]);
  t.equal(inq.exitCode, 0, inq.stderr);
  t.equal(field(parseToolFields(inq.stdout), 'Vendor'), 'SHELFGTE');
  const cap = await runTool('iscsi-readcapacity16', [`iscsi://${portal}/${PLAIN}/0`]);
  t.equal(cap.exitCode, 0, cap.stderr);
  t.equal(field(parseToolFields(cap.stdout), 'Total size'), String(BLOCKS * 512));
});

t.test('CHAP with libiscsi', async (t) => {
  const good = await runTool('iscsi-inq', ['-i', CHAP_INITIATOR, `iscsi://client%client-secret-1@${portal}/${CHAP}/0`]);
  t.equal(good.exitCode, 0, good.stderr);
  const bad = await runTool('iscsi-inq', ['-i', CHAP_INITIATOR, `iscsi://client%wrong-secret@${portal}/${CHAP}/0`]);
  t.not(bad.exitCode, 0);
  t.match(bad.stderr, /Authentication failure/);
});

t.test('qemu-img writes and reads back through R2T and Data-In', async (t) => {
  const image = Buffer.alloc(8 * 1024 * 1024);
  for (let i = 0; i < image.length; i += 4096) image.writeUInt32BE(i ^ 0x5a5a5a5a, i);
  const src = join(dir, 'src.raw');
  const back = join(dir, 'back.raw');
  await writeFile(src, image);
  const w = await runTool('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, `iscsi://${portal}/${PLAIN}/0`]);
  t.equal(w.exitCode, 0, w.stderr);
  t.equal(lun.data.subarray(0, image.length).equals(image), true, 'the LU holds what qemu-img wrote');
  const r = await runTool('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', `iscsi://${portal}/${PLAIN}/0`, back]);
  t.equal(r.exitCode, 0, r.stderr);
  const readBack = (await readFile(back)).subarray(0, image.length);
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  t.equal(sha(readBack), sha(image));
});

t.test('iscsi-perf reads', async (t) => {
  const r = await runTool('iscsi-perf', ['-t', '2', '-m', '16', '-b', '128', `iscsi://${portal}/${PLAIN}/0`], { timeoutMs: 30_000 });
  t.equal(r.exitCode, 0, r.stderr);
  t.match(r.stdout, /iops average/);
});

t.test('iscsi-test-cu iSCSI family', async (t) => {
  const r = await runTool('iscsi-test-cu', ['--dataloss', '--test=iSCSI', `iscsi://${portal}/${PLAIN}/0`], { timeoutMs: 120_000 });
  const results = parseTestCuOutput(r.stdout);
  // The iSCSI family as recorded against a real shelfgate volume (test/e2e/iscsi-test-cu/shelfgate.txt):
  // the same tests run here, and each recorded PASS passes through the bare fabric too.
  const recorded = [...parseTestCuList(await readFile(join(repoRoot(), 'test/e2e/iscsi-test-cu/shelfgate.txt'), 'utf8'))]
    .filter(([name]) => name.startsWith('ALL.iSCSI'));
  t.ok(recorded.length > 0, `${recorded.length} iSCSI-family tests recorded`);
  t.same(results.map((x) => x.name).sort(), recorded.map(([name]) => name).sort(), 'the recorded iSCSI-family tests ran', {
    outputTail: r.stdout.slice(-2000),
  });
  // The in-memory LU implements READ/WRITE(10) and (16) only: libiscsi skips the 12-byte and
  // WRITE AND VERIFY variants when the LU answers INVALID COMMAND OPERATION CODE.
  const lacking = /^ALL\.iSCSIResiduals\.(Read12|Write12|WriteVerify1[026])Residuals$/;
  const outcomes = new Map(results.map((x) => [x.name, x]));
  for (const [name, outcome] of recorded) {
    const expected = lacking.test(name) ? 'SKIP' : outcome;
    t.equal(outcomes.get(name)?.outcome, expected, name, { messages: outcomes.get(name)?.messages ?? ['did not run'] });
  }
});
