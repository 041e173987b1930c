// Issue 11 "Found" rows, iSCSI side: each sends exactly the hostile input the issue lists to a
// real shelfgate process and checks the bounded outcome — the status or Reject the RFC names, the
// connection closed, the process's resident memory (sampled from /proc) under a ceiling.
// Limits are the defaults (docs/security.md "iSCSI limits") except stallTimeoutMs, 15 s here so
// that "one byte every 10 s" is closed before its third byte, and a faster login throttle (its
// test runs last: it leaves 127.0.0.1 refused).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { LoginStatus, Opcode, RESERVED_TAG, RejectReason, type LoginResponse, type Reject, type TextResponse } from '../../iscsi/pdu/types.js';
import { startGateway } from '../helpers/gateway-process.js';
import { LoginError, TestInitiator, encodeKeys } from '../helpers/initiator.js';
import { MiB, RawConnection, rssBytes, watchRss } from '../helpers/raw-connection.js';

const STALL_TIMEOUT_MS = 15_000;
const VOLUME = 'limits';
const INITIATOR = 'iqn.2026-11.test:hostile';
/** A check of the stall limits runs every min(1 s, limit/4): the close comes within this after the limit. */
const STALL_CHECK_MS = 1000;

const configDir = await mkdtemp(join(tmpdir(), 'shelfgate-limits-'));
const configFile = join(configDir, 'shelfgate.yaml');
const CHAP_SECRET = 'right-secret-1';
const THROTTLE = { baseDelayMs: 100, maxDelayMs: 800, refuseAfterFailures: 5, refuseForMs: 60_000 };
await writeFile(
  configFile,
  [
    'iscsi:',
    '  limits:',
    `    stallTimeoutMs: ${STALL_TIMEOUT_MS}`,
    '  loginThrottle:',
    ...Object.entries(THROTTLE).map(([k, v]) => `    ${k}: ${v}`),
    'volumes:',
    '  - name: guarded',
    '    size: 1GiB',
    '    chap:',
    '      user: backup',
    `      secret: ${CHAP_SECRET}`,
    'log:',
    '  level: info',
    '',
  ].join('\n'),
);
const gateway = await startGateway({ volumes: [`${VOLUME}:1GiB`, 'other:1GiB'], configFile });
t.teardown(async () => {
  await gateway.dispose();
  await rm(configDir, { recursive: true, force: true });
});

/** One log line names the peer (address:port) and the initiator of a connection closed for a limit. */
function limitLogLine(pattern: RegExp): string | undefined {
  return gateway.stderr().split('\n').find((line) => line.includes('limit exceeded') && pattern.test(line));
}

function read10(lba: number, blocks: number): Buffer {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x28;
  cdb.writeUInt32BE(lba, 2);
  cdb.writeUInt16BE(blocks, 7);
  return cdb;
}

function write16(lba: number, blocks: number): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x8a;
  cdb.writeBigUInt64BE(BigInt(lba), 2);
  cdb.writeUInt32BE(blocks, 10);
  return cdb;
}

t.test('Limits.LoginContinuations: C-bit Login Requests before authentication end in 0302, memory flat', async (t) => {
  const rss = watchRss(gateway.pid);
  const before = rssBytes(gateway.pid);
  const conn = await RawConnection.open(gateway.iscsiPort);
  const chunk = Buffer.alloc(8192, 0x41); // 8 KiB of key text that never ends
  let sent = 0;
  // The input: continuation PDUs, as fast as the target takes them, for up to 80 MB.
  while (!conn.isClosed && sent < 10_000) {
    if (!(await conn.send(conn.loginPdu({ csg: 0, nsg: 0, transit: false, continue: true, data: chunk })))) break;
    sent++;
  }
  await conn.closed;
  const responses = conn.drainInbox() as LoginResponse[];
  const last = responses.at(-1);
  t.ok(last !== undefined && last.opcode === Opcode.LOGIN_RESPONSE, 'the last PDU is a Login Response');
  t.equal(((last!.statusClass << 8) | last!.statusDetail), LoginStatus.OUT_OF_RESOURCES, 'RFC 7143 11.13.5: status 0302 out of resources');
  const acknowledged = responses.filter((r) => r.statusClass === 0).length;
  t.ok(acknowledged <= (64 * 1024) / chunk.length, `${acknowledged} continuation(s) acknowledged before the refusal (64 KiB limit)`);
  const peak = rss.stop();
  t.ok(peak - before < 32 * MiB, `RSS grew ${((peak - before) / MiB).toFixed(1)} MiB (< 32 MiB) over ${sent} PDUs sent`);
});

t.test('Limits.TextContinuations: C-bit Text Requests in a discovery session are refused with Reject 0x0a', async (t) => {
  const rss = watchRss(gateway.pid);
  const before = rssBytes(gateway.pid);
  const conn = await RawConnection.open(gateway.iscsiPort);
  t.teardown(() => conn.destroy());
  await conn.login(INITIATOR);
  const chunk = Buffer.alloc(8192, 0x42);
  let ttt = RESERVED_TAG;
  let rejects = 0;
  let acknowledged = 0;
  const otherReasons: number[] = [];
  // 40 MB of continuation text, each exchange carried on until the target refuses it.
  for (let i = 0; i < 5000; i++) {
    await conn.send({
      opcode: Opcode.TEXT_REQUEST, immediate: true, final: false, continue: true, lun: 0n, itt: 7, ttt,
      cmdSN: conn.cmdSN, expStatSN: conn.expStatSN, ahs: Buffer.alloc(0), data: chunk,
    });
    const reply = await conn.next();
    if (reply === null) break;
    if (reply.opcode === Opcode.REJECT) {
      if ((reply as Reject).reason !== RejectReason.LONG_OP_REJECT) otherReasons.push((reply as Reject).reason);
      rejects++;
      ttt = RESERVED_TAG;
    } else {
      ttt = (reply as TextResponse).ttt;
      acknowledged++;
    }
  }
  t.same(otherReasons, [], 'every Reject has RFC 7143 11.17.1 reason 0x0a');
  t.ok(rejects > 0 && acknowledged <= 8 * (rejects + 1), `${rejects} refusals after at most 64 KiB each (${acknowledged} acknowledged)`);
  t.notOk(conn.isClosed, 'the session stays up');
  // The session still answers a normal request.
  await conn.send({
    opcode: Opcode.TEXT_REQUEST, immediate: true, final: true, continue: false, lun: 0n, itt: 8, ttt: RESERVED_TAG,
    cmdSN: conn.cmdSN, expStatSN: conn.expStatSN, ahs: Buffer.alloc(0), data: encodeKeys({ SendTargets: 'All' }),
  });
  const answer = (await conn.next()) as TextResponse;
  t.equal(answer.opcode, Opcode.TEXT_RESPONSE);
  t.match(answer.data.toString(), /TargetName=iqn\.2026-11\.dev\.shelfgate:shelfgate-limits/);
  const peak = rss.stop();
  t.ok(peak - before < 48 * MiB, `RSS grew ${((peak - before) / MiB).toFixed(1)} MiB (< 48 MiB: 40 MB of text went through)`);
});

t.test('Limits.NeverReads: a session that sends commands and never reads is closed, memory bounded', async (t) => {
  const rss = watchRss(gateway.pid);
  const before = rssBytes(gateway.pid);
  const conn = await RawConnection.open(gateway.iscsiPort);
  t.teardown(() => conn.destroy());
  await conn.login(INITIATOR, gateway.targetIqn(VOLUME));
  conn.socket.pause(); // from here on nothing is read
  // READ(10)s of 8 MiB (the Block Limits maximum) and 64 KiB NOP-Out pings, without end.
  let itt = 100;
  let lastSentMs = performance.now();
  const start = performance.now();
  for (let i = 0; !conn.isClosed && performance.now() - start < STALL_TIMEOUT_MS * 3; i++) {
    const pdu = i % 2 === 0
      ? conn.scsiCommand({ cdb: read10((i * 16384) % 2_000_000, 16384), itt: itt++, edtl: 8 * MiB, read: true })
      : conn.nopOut(itt++, Buffer.alloc(65536, 7));
    if (!(await Promise.race([conn.send(pdu), conn.closed.then(() => false)]))) break;
    lastSentMs = performance.now();
  }
  await conn.closed;
  const closedAfterMs = conn.closedAtMs! - start;
  t.ok(conn.closedAtMs! - lastSentMs <= STALL_TIMEOUT_MS + 2 * STALL_CHECK_MS,
    `closed ${Math.round(closedAfterMs)} ms after the first command, within the stall limit of the last write the target took`);
  const peak = rss.stop();
  t.ok(peak - before < 64 * MiB, `RSS grew ${((peak - before) / MiB).toFixed(1)} MiB (< 64 MiB)`);
  t.ok(limitLogLine(/peer.*127\.0\.0\.1:\d+.*initiator.*iqn\.2026-11\.test:hostile|initiator.*hostile.*peer.*127\.0\.0\.1/), 'one log line names peer and initiator');
});

t.test('Limits.Writes256MiB: 128 WRITEs announcing 256 MiB each, data never sent', async (t) => {
  const rss = watchRss(gateway.pid);
  const before = rssBytes(gateway.pid);
  const conn = await RawConnection.open(gateway.iscsiPort);
  t.teardown(() => conn.destroy());
  await conn.login(INITIATOR, gateway.targetIqn(VOLUME));
  for (let i = 0; i < 128; i++) {
    await conn.send(conn.scsiCommand({ cdb: write16(i * 524288, 524288), itt: 1000 + i, edtl: 256 * MiB, write: true }));
  }
  const rejects: Reject[] = [];
  while (rejects.length < 128) {
    const pdu = await conn.next();
    if (pdu === null) break;
    if (pdu.opcode === Opcode.REJECT) rejects.push(pdu as Reject);
    else t.fail(`unexpected opcode 0x${pdu.opcode.toString(16)}`);
  }
  t.equal(rejects.length, 128, 'every one is rejected');
  t.ok(rejects.every((r) => r.reason === RejectReason.PROTOCOL_ERROR), 'RFC 7143 11.17.1 reason 0x04 (above the 32 MiB write limit)');
  t.ok(rejects.every((r, i) => r.data.readUInt32BE(16) === 1000 + i), 'each Reject carries the rejected header');
  // The session goes on: a READ answers at the CmdSN after the rejected ones (the first command
  // of the nexus may get the power-on UNIT ATTENTION instead).
  let dataIn = 0;
  for (let attempt = 0; attempt < 3 && dataIn === 0; attempt++) {
    await conn.send(conn.scsiCommand({ cdb: read10(0, 8), itt: 5000 + attempt, edtl: 4096, read: true }));
    for (;;) {
      const pdu = await conn.next();
      if (pdu === null || pdu.opcode === Opcode.SCSI_RESPONSE) break;
      if (pdu.opcode === Opcode.SCSI_DATA_IN) {
        dataIn += pdu.data.length;
        if (pdu.statusPresent) break;
      }
    }
  }
  t.equal(dataIn, 4096, 'the session still serves reads');
  const peak = rss.stop();
  t.ok(peak - before < 32 * MiB, `RSS grew ${((peak - before) / MiB).toFixed(1)} MiB (< 32 MiB)`);
});

t.test('Limits.WritesAtTheLimit: 128 WRITEs of 32 MiB, data never sent: one R2T, then closed', async (t) => {
  const rss = watchRss(gateway.pid);
  const before = rssBytes(gateway.pid);
  const conn = await RawConnection.open(gateway.iscsiPort);
  t.teardown(() => conn.destroy());
  await conn.login(INITIATOR, gateway.targetIqn(VOLUME), { InitialR2T: 'Yes', ImmediateData: 'No' });
  const start = performance.now();
  for (let i = 0; i < 128; i++) {
    await conn.send(conn.scsiCommand({ cdb: write16(i * 65536, 65536), itt: 2000 + i, edtl: 32 * MiB, write: true }));
  }
  await conn.closed;
  const r2ts = conn.drainInbox().filter((p) => p.opcode === Opcode.R2T);
  t.ok(r2ts.length > 0, 'the first write is solicited');
  t.ok(r2ts.every((r) => r.itt === 2000), `R2Ts go to the first write only (its buffer is the connection's 32 MiB): ${r2ts.length} R2T(s)`);
  const closedAfterMs = conn.closedAtMs! - start;
  t.ok(closedAfterMs >= STALL_TIMEOUT_MS - STALL_CHECK_MS && closedAfterMs <= STALL_TIMEOUT_MS + 3 * STALL_CHECK_MS,
    `closed ${Math.round(closedAfterMs)} ms later: the R2T stall limit`);
  const peak = rss.stop();
  t.ok(peak - before < 32 * MiB, `RSS grew ${((peak - before) / MiB).toFixed(1)} MiB (< 32 MiB)`);
});

t.test('Limits.OneByteEvery10s: a logged-in connection sending a PDU one byte every 10 s is closed', async (t) => {
  const conn = await RawConnection.open(gateway.iscsiPort);
  t.teardown(() => conn.destroy());
  await conn.login(INITIATOR, gateway.targetIqn(VOLUME));
  const bhs = Buffer.alloc(48);
  bhs[0] = Opcode.NOP_OUT | 0x40;
  bhs[1] = 0x80;
  const start = performance.now();
  let sentBytes = 0;
  while (!conn.isClosed && sentBytes < bhs.length) {
    await conn.sendRaw(bhs.subarray(sentBytes, sentBytes + 1));
    sentBytes++;
    await Promise.race([conn.closed, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  }
  const closedAfterMs = conn.closedAtMs! - start;
  t.equal(sentBytes, 2, 'closed after the second byte, before the third (at 20 s)');
  t.ok(closedAfterMs >= STALL_TIMEOUT_MS && closedAfterMs <= STALL_TIMEOUT_MS + 2 * STALL_CHECK_MS,
    `closed ${Math.round(closedAfterMs)} ms after the first byte (limit ${STALL_TIMEOUT_MS} ms)`);
  t.ok(limitLogLine(/PDU begun/), 'the log says why');
});

t.test('Limits.WrongChapSecrets: failed logins are held back longer each time, then refused', async (t) => {
  const attempts: Array<{ status: number; ms: number }> = [];
  for (let i = 0; i < THROTTLE.refuseAfterFailures + 2; i++) {
    const initiator = await TestInitiator.connect('127.0.0.1', gateway.iscsiPort);
    const start = performance.now();
    let status = 0;
    try {
      await initiator.login({ initiatorName: INITIATOR, targetName: gateway.targetIqn('guarded'), chap: { user: 'backup', secret: 'wrong-secret-1' } });
    } catch (err) {
      status = err instanceof LoginError ? (err.statusClass << 8) | err.statusDetail : -1;
    }
    attempts.push({ status, ms: performance.now() - start });
    initiator.destroy();
  }
  const failures = attempts.slice(0, THROTTLE.refuseAfterFailures);
  t.ok(failures.every((a) => a.status === LoginStatus.AUTHENTICATION_FAILURE), 'the wrong secret fails with 0201 (RFC 7143 11.13.5)');
  failures.forEach((a, i) => {
    const delayMs = Math.min(THROTTLE.maxDelayMs, THROTTLE.baseDelayMs * 2 ** i);
    t.ok(a.ms >= delayMs, `failure ${i + 1} answered after ${Math.round(a.ms)} ms (held back at least ${delayMs} ms)`);
  });
  const refused = attempts.slice(THROTTLE.refuseAfterFailures);
  t.ok(refused.every((a) => a.status === LoginStatus.SERVICE_UNAVAILABLE), 'then refused with 0301 service unavailable');
  const metrics = await (await gateway.apiFetch('/metrics')).text();
  t.match(metrics, new RegExp(`^shelfgate_iscsi_login_failures_total ${THROTTLE.refuseAfterFailures}$`, 'm'), 'failures are counted');
  t.match(metrics, new RegExp(`^shelfgate_iscsi_login_refusals_total ${refused.length}$`, 'm'), 'refusals are counted');
  const lines = gateway.stderr().split('\n').filter((l) => /login (failed|refused)/.test(l) && l.includes('peer=127.0.0.1:') && l.includes(`initiator=${INITIATOR}`));
  t.equal(lines.length, attempts.length, 'each failure and refusal is logged with peer address and initiator name');
});
