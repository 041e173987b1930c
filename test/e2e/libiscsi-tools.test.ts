// libiscsi's command-line tools (Debian libiscsi-bin) against a real shelfgate process:
// discovery + REPORT LUNS (iscsi-ls), standard INQUIRY and the VPD pages (iscsi-inq),
// READ CAPACITY(16) (iscsi-readcapacity16). Assertions are on parsed values, not snapshots.
import t from 'tap';
import { startGateway } from '../helpers/gateway-process.js';
import { field, parseToolFields, runTool } from '../helpers/libiscsi.js';

const VOLUME = 'vol1';
const VOLUME_BYTES = 1024 * 1024 * 1024;
const BLOCK_SIZE = 512;
const BLOCK_COUNT = VOLUME_BYTES / BLOCK_SIZE;

const gateway = await startGateway({ volumes: [`${VOLUME}:1GiB`] });
t.teardown(() => gateway.dispose());
const url = gateway.url(VOLUME);

async function tool(command: string, ...args: string[]): Promise<string> {
  const result = await runTool(command, args, { timeoutMs: 30_000 });
  if (result.exitCode !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.exitCode}: ${result.stderr}`);
  return result.stdout;
}

t.test('IscsiLs.ShowLuns', async (t) => {
  const stdout = await tool('iscsi-ls', '-s', `iscsi://127.0.0.1:${gateway.iscsiPort}`);
  // iscsi-ls prints each target's line, then that target's LUN lines.
  const section = stdout.slice(stdout.indexOf(`Target:${gateway.targetIqn(VOLUME)} `));
  const target = /^Target:(\S+) Portal:(\S+),(\d+)$/m.exec(section);
  t.ok(target, `the volume's Target line in:\n${stdout}`);
  t.equal(target?.[1], gateway.targetIqn(VOLUME));
  t.equal(target?.[2], `127.0.0.1:${gateway.iscsiPort}`);
  t.equal(target?.[3], '1', 'portal group tag 1');
  const luns = [...section.split(/^Target:/m)[1]!.matchAll(/^Lun:(\d+)\s+Type:(\S+) \(Size:(\d+)M\)$/gm)];
  t.equal(luns.length, 1, 'one LUN');
  t.equal(luns[0]?.[1], '0');
  t.equal(luns[0]?.[2], 'DIRECT_ACCESS');
  // iscsi-ls prints RETURNED LOGICAL BLOCK ADDRESS * block length in whole MiB.
  t.equal(Number(luns[0]?.[3]), Math.floor(((BLOCK_COUNT - 1) * BLOCK_SIZE) / 2 ** 20));
});

t.test('IscsiLs.UrlFormat', async (t) => {
  const stdout = await tool('iscsi-ls', '--url', `iscsi://127.0.0.1:${gateway.iscsiPort}`);
  t.match(stdout, `iscsi://127.0.0.1:${gateway.iscsiPort}/${gateway.targetIqn(VOLUME)}/0`);
});

t.test('Inquiry.Standard', async (t) => {
  const fields = parseToolFields(await tool('iscsi-inq', url));
  t.equal(field(fields, 'Peripheral Qualifier'), 'CONNECTED');
  t.equal(field(fields, 'Peripheral Device Type'), 'DIRECT_ACCESS');
  t.equal(field(fields, 'Removable'), '0');
  t.match(field(fields, 'Version'), /^[56] /, 'SPC-3 or SPC-4');
  t.equal(field(fields, 'ReponseDataFormat'), '2');
  t.equal(field(fields, 'HiSup'), '1');
  t.equal(field(fields, 'CmdQue'), '1');
  // What AWS Storage Gateway volumes report.
  t.equal(field(fields, 'Vendor').trim(), 'AMAZON', 'T10 vendor identification');
  t.equal(field(fields, 'Product').trim(), 'Storage Gateway', 'product identification');
  t.ok(field(fields, 'Revision').trim().length > 0, 'product revision level');
});

t.test('Inquiry.SupportedVpdPages', async (t) => {
  const stdout = await tool('iscsi-inq', '-e', '1', '-c', '0', url);
  const pages = [...stdout.matchAll(/^Page:0x([0-9a-f]{2}) /gm)].map((m) => m[1]);
  for (const page of ['00', '80', '83', 'b0', 'b1', 'b2']) t.ok(pages.includes(page), `page 0x${page} listed in ${pages.join(',')}`);
});

t.test('Inquiry.UnitSerialNumberAndDeviceIdentification', async (t) => {
  const serialOut = await tool('iscsi-inq', '-e', '1', '-c', String(0x80), url);
  const serial = /^Unit Serial Number:\[(.*)\]$/m.exec(serialOut)?.[1]?.trim() ?? '';
  t.ok(serial.length > 0, `unit serial number in:\n${serialOut}`);

  const fields = parseToolFields(await tool('iscsi-inq', '-e', '1', '-c', String(0x83), url));
  const types = fields.get('Designator Type') ?? [];
  t.ok(types.some((type) => type.includes('NAA')), `an NAA designator among ${types.join(', ')}`);
  t.ok(types.some((type) => type.includes('T10_VENDORT_ID')), 'a T10 vendor ID designator');
  const designators = fields.get('Designator') ?? [];
  t.ok(designators.some((d) => d.includes(serial)), 'the T10 vendor ID designator ends with the serial number');

  const again = await tool('iscsi-inq', '-e', '1', '-c', String(0x80), url);
  t.equal(/^Unit Serial Number:\[(.*)\]$/m.exec(again)?.[1]?.trim(), serial, 'serial is stable');
});

t.test('Inquiry.BlockLimits', async (t) => {
  const fields = parseToolFields(await tool('iscsi-inq', '-e', '1', '-c', String(0xb0), url));
  t.ok(Number(field(fields, 'maximum transfer length')) > 0, 'MAXIMUM TRANSFER LENGTH set');
  t.ok(Number(field(fields, 'maximum unmap lba count')) > 0, 'UNMAP supported: MAXIMUM UNMAP LBA COUNT');
  t.ok(Number(field(fields, 'maximum unmap block descriptor count')) > 0, 'MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT');
});

t.test('Inquiry.BlockDeviceCharacteristics', async (t) => {
  const fields = parseToolFields(await tool('iscsi-inq', '-e', '1', '-c', String(0xb1), url));
  t.equal(field(fields, 'Medium Rotation Rate'), '1RPM', 'MEDIUM ROTATION RATE 0001h: non-rotating medium (SBC-3 6.5.3)');
});

t.test('Inquiry.LogicalBlockProvisioning', async (t) => {
  const fields = parseToolFields(await tool('iscsi-inq', '-e', '1', '-c', String(0xb2), url));
  t.equal(field(fields, 'lbpu'), '1', 'UNMAP supported');
  t.equal(field(fields, 'provisioning type'), '2', 'thin provisioned');
});

t.test('ReadCapacity16.Simple', async (t) => {
  const fields = parseToolFields(await tool('iscsi-readcapacity16', url));
  t.equal(Number(field(fields, 'RETURNED LOGICAL BLOCK ADDRESS')), BLOCK_COUNT - 1);
  t.equal(Number(field(fields, 'LOGICAL BLOCK LENGTH IN BYTES')), BLOCK_SIZE);
  t.equal(Number(field(fields, 'Total size')), VOLUME_BYTES);
  t.match(field(fields, 'LBPME'), /^1 /, 'LBPME set for a thin-provisioned LU');
  const sizeOnly = await tool('iscsi-readcapacity16', '-s', url);
  t.equal(sizeOnly.trim(), String(VOLUME_BYTES));
});

t.test('Login.UnknownTarget', async (t) => {
  const result = await runTool('iscsi-inq', [`iscsi://127.0.0.1:${gateway.iscsiPort}/iqn.2026-11.dev.shelfgate:nope/0`], { timeoutMs: 30_000 });
  t.not(result.exitCode, 0, 'login to a target that does not exist fails');
  t.ok(gateway.alive(), 'server still running');
});
