// Authentication and digests with real clients against a real shelfgate process configured from a
// file: per-volume one-way and mutual CHAP (RFC 7143 12.1.3), an initiator allow-list, and CRC32C
// header/data digests (RFC 7143 13.1). libiscsi negotiates header digests only (DataDigest=None
// always), and its command-line tools always offer "HeaderDigest=None,CRC32C" (so an RFC 6.2.1
// target rightly picks None); qemu-img's header-digest=crc32c offers CRC32C alone. Data digests
// are exercised with the in-repo test initiator.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startGateway } from '../helpers/gateway-process.js';
import { LoginError, TestInitiator, read16, write16 } from '../helpers/initiator.js';
import { field, parseToolFields, runTool } from '../helpers/libiscsi.js';

const CHAP = { user: 'chapuser', secret: 'chapsecret12' };
const MUTUAL = { user: 'gwuser', secret: 'gwsecret1234' };
const ALLOWED_INITIATOR = 'iqn.2026-11.test:allowed';
const OTHER_INITIATOR = 'iqn.2026-11.test:other';
// Sense key UNIT ATTENTION: the first command of a new nexus may report power on/reset (SAM-5 5.14).
const UNIT_ATTENTION = 0x06;

const dir = await mkdtemp(join(tmpdir(), 'shelfgate-chap-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const configFile = join(dir, 'shelfgate.json');
await writeFile(
  configFile,
  JSON.stringify({
    volumes: [
      { name: 'secure', size: '1GiB', chap: CHAP, initiators: [ALLOWED_INITIATOR] },
      { name: 'mutual', size: '1GiB', chap: { ...CHAP, mutualUser: MUTUAL.user, mutualSecret: MUTUAL.secret } },
      { name: 'open', size: '1GiB' },
    ],
  }),
);
const gateway = await startGateway({ configFile });
t.teardown(() => gateway.dispose());

const hostPort = `127.0.0.1:${gateway.iscsiPort}`;
const chapUrl = (volume: string, user: string, secret: string, query = ''): string =>
  `iscsi://${user}%${secret}@${hostPort}/${gateway.targetIqn(volume)}/0${query}`;

async function inq(url: string, initiatorName?: string, env?: NodeJS.ProcessEnv) {
  const args = initiatorName === undefined ? [url] : ['-i', initiatorName, url];
  return runTool('iscsi-inq', args, { timeoutMs: 30_000, env: env ? { ...process.env, ...env } : undefined });
}

/** A command that tolerates the one UNIT ATTENTION a fresh nexus may report. */
async function scsiOnce(initiator: TestInitiator, ...args: Parameters<TestInitiator['scsi']>) {
  const first = await initiator.scsi(...args);
  if (first.status === 0x02 && (first.sense[2]! & 0x0f) === UNIT_ATTENTION) return initiator.scsi(...args);
  return first;
}

t.test('Chap.OneWay', async (t) => {
  const result = await inq(chapUrl('secure', CHAP.user, CHAP.secret), ALLOWED_INITIATOR);
  t.equal(result.exitCode, 0, 'exit code 0', { stderr: result.stderr });
  t.equal(field(parseToolFields(result.stdout), 'Peripheral Device Type'), 'DIRECT_ACCESS');
});

t.test('Chap.WrongSecret', async (t) => {
  const result = await inq(chapUrl('secure', CHAP.user, 'wrongsecret1'), ALLOWED_INITIATOR);
  t.not(result.exitCode, 0, 'login refused');
  t.match(result.stdout + result.stderr, /Authentication failure\(513\)/, 'login status 0x0201');
});

t.test('Chap.WrongUser', async (t) => {
  const result = await inq(chapUrl('secure', 'nobody', CHAP.secret), ALLOWED_INITIATOR);
  t.not(result.exitCode, 0, 'login refused');
  t.match(result.stdout + result.stderr, /Authentication failure\(513\)/, 'login status 0x0201');
});

t.test('Chap.NoCredentials', async (t) => {
  const result = await inq(`iscsi://${hostPort}/${gateway.targetIqn('secure')}/0`, ALLOWED_INITIATOR);
  t.not(result.exitCode, 0, 'a CHAP volume refuses AuthMethod=None');
  t.match(result.stdout + result.stderr, /Login Failed/);
});

t.test('Chap.UnknownInitiator', async (t) => {
  const result = await inq(chapUrl('secure', CHAP.user, CHAP.secret), OTHER_INITIATOR);
  t.not(result.exitCode, 0, 'an initiator outside volumes[].initiators is refused');
  t.match(result.stdout + result.stderr, /Authorization failure\(514\)|Target not found\(515\)/, 'login status 0x0202 or 0x0203');
});

t.test('Chap.DiscoveryHidesDisallowedTargets', async (t) => {
  const other = await runTool('iscsi-ls', ['-i', OTHER_INITIATOR, `iscsi://${hostPort}`], { timeoutMs: 30_000 });
  t.equal(other.exitCode, 0, 'exit code 0', { stderr: other.stderr });
  t.notMatch(other.stdout, gateway.targetIqn('secure'), 'SendTargets omits a target the initiator may not log in to');
  t.match(other.stdout, gateway.targetIqn('open'));
  const allowed = await runTool('iscsi-ls', ['-i', ALLOWED_INITIATOR, `iscsi://${hostPort}`], { timeoutMs: 30_000 });
  t.match(allowed.stdout, gateway.targetIqn('secure'), 'the allowed initiator sees it');
});

t.test('Chap.Mutual', async (t) => {
  const ok = await inq(chapUrl('mutual', CHAP.user, CHAP.secret, `?target_user=${MUTUAL.user}&target_password=${MUTUAL.secret}`));
  t.equal(ok.exitCode, 0, 'exit code 0', { stderr: ok.stderr });
  t.equal(field(parseToolFields(ok.stdout), 'Peripheral Device Type'), 'DIRECT_ACCESS');
  const wrong = await inq(chapUrl('mutual', CHAP.user, CHAP.secret, `?target_user=${MUTUAL.user}&target_password=notthesecret`));
  t.not(wrong.exitCode, 0, 'the initiator refuses a target that does not know the mutual secret');
  t.match(wrong.stdout + wrong.stderr, /Invalid CHAP_R response from the target/);
});

t.test('Chap.MutualTestInitiator', async (t) => {
  const initiator = await TestInitiator.connect('127.0.0.1', gateway.iscsiPort);
  t.teardown(() => initiator.destroy());
  await initiator.login({ initiatorName: OTHER_INITIATOR, targetName: gateway.targetIqn('mutual'), chap: CHAP, mutualChap: MUTUAL });
  t.equal((await initiator.ping(Buffer.from('mutual'))).toString(), 'mutual', 'NOP-Out echo in full feature phase');
  t.equal(await initiator.logout(), 0, 'logout: closed successfully');
});

t.test('Chap.TestInitiatorWrongSecret', async (t) => {
  const initiator = await TestInitiator.connect('127.0.0.1', gateway.iscsiPort);
  t.teardown(() => initiator.destroy());
  const failure = await initiator
    .login({ initiatorName: ALLOWED_INITIATOR, targetName: gateway.targetIqn('secure'), chap: { ...CHAP, secret: 'wrongsecret1' } })
    .then(() => null, (err: unknown) => err);
  t.ok(failure instanceof LoginError, `a login error, got ${String(failure)}`);
  if (failure instanceof LoginError) t.equal(((failure.statusClass << 8) | failure.statusDetail).toString(16), '201');
});

t.test('Digest.HeaderCrc32cQemuImg', async (t) => {
  const opts = `driver=iscsi,transport=tcp,portal=${hostPort},target=${gateway.targetIqn('open')},lun=0,header-digest=crc32c`;
  const result = await runTool('qemu-img', ['info', '--output=json', '--image-opts', opts], { timeoutMs: 60_000, env: { ...process.env, LIBISCSI_DEBUG: '6' } });
  t.equal(result.exitCode, 0, 'exit code 0', { stderr: result.stderr });
  t.match(result.stderr, /TargetLoginReply: HeaderDigest=CRC32C/);
  t.equal((JSON.parse(result.stdout) as { 'virtual-size': number })['virtual-size'], 1024 ** 3);
});

t.test('Digest.HeaderAndDataCrc32c', async (t) => {
  const initiator = await TestInitiator.connect('127.0.0.1', gateway.iscsiPort);
  t.teardown(() => initiator.destroy());
  await initiator.login({ initiatorName: OTHER_INITIATOR, targetName: gateway.targetIqn('open'), headerDigest: true, dataDigest: true });
  t.same(initiator.negotiatedDigests, { headerDigest: true, dataDigest: true }, 'HeaderDigest=CRC32C, DataDigest=CRC32C');
  // A 3-byte ping payload exercises padding under the data digest; a 1 MiB write/read
  // exercises immediate data, R2T-solicited Data-Out and multi-PDU Data-In.
  const pattern = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 31 + (i >>> 9)) & 0xff;
  t.equal((await initiator.ping(Buffer.from('abc'))).toString('hex'), Buffer.from('abc').toString('hex'));
  const write = await scsiOnce(initiator, write16(4096, pattern.length / 512), { dataOut: pattern });
  t.equal(write.status, 0, `WRITE(16) GOOD (sense ${write.sense.toString('hex')})`);
  const read = await scsiOnce(initiator, read16(4096, pattern.length / 512), { readLength: pattern.length });
  t.equal(read.status, 0, 'READ(16) GOOD');
  t.ok(read.dataIn.equals(pattern), 'read back what was written');
  t.equal(await initiator.logout(), 0);
});
