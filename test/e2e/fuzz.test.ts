// Bounded protocol fuzzing of a real shelfgate process: at least FUZZ_PDU_COUNT malformed or
// mutated PDUs over many TCP connections (some fuzzing the login phase, most logged in to a
// throw-away volume first), from a seeded PRNG so a failure replays (FUZZ_SEED=n). Meanwhile a
// well-behaved session on another volume keeps writing and verifying data. The server must not
// crash: it is still running afterwards, still serves new logins, and exits 0 on SIGTERM.
// Every connection is accounted for (full feature phase, login fuzzed, or a failed login — none
// may fail), the server's own count of PDUs framed must match what was sent, every logged-in
// connection answers a NOP-Out after its fuzz or was closed by the target (else: a hang), and RSS
// stays under 512 MiB. A negative control (a deliberately broken login handler) must be found.
// CI runs FUZZ_PDUS=100000 (the default, about two minutes); `FUZZ_PDUS=1000000 npx tap
// test/e2e/fuzz.test.ts` is the issue's run of a million.
import { connect, type Socket } from 'node:net';
import t from 'tap';
import { PduFramer, serializePdu } from '../../iscsi/framer.js';
import { Opcode, RESERVED_TAG, type InitiatorPdu, type LoginResponse } from '../../iscsi/pdu/types.js';
import { startGateway } from '../helpers/gateway-process.js';
import { TestInitiator, encodeKeys, read16, write16 } from '../helpers/initiator.js';
import { field, parseToolFields, runTool } from '../helpers/libiscsi.js';
import { prng, type Rng } from '../helpers/prng.js';
import { MemoryLun } from '../helpers/memory-lun.js';
import { MiB, watchRss } from '../helpers/raw-connection.js';
import { IscsiServer } from '../../iscsi/server.js';

const FUZZ_PDU_COUNT = Number(process.env.FUZZ_PDUS ?? 100_000);
const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);
const WORKERS = 4;
const PDUS_PER_CONNECTION = 2_000;
const FUZZ_VOLUME = 'fuzz';
const DATA_VOLUME = 'data';
const INITIATOR = 'iqn.2026-11.test:fuzzer';


// Opcodes a real disk sees (SPC-4 / SBC-3), so random CDBs reach the command decoders.
const CDB_OPCODES = [
  0x00, 0x03, 0x08, 0x0a, 0x12, 0x15, 0x16, 0x17, 0x1a, 0x1b, 0x1d, 0x1e, 0x25, 0x28, 0x2a, 0x2e, 0x2f, 0x34, 0x35, 0x37, 0x3b,
  0x3c, 0x41, 0x42, 0x4d, 0x55, 0x5a, 0x5e, 0x5f, 0x7f, 0x83, 0x84, 0x88, 0x89, 0x8a, 0x8e, 0x8f, 0x90, 0x91, 0x93, 0x9e, 0xa0,
  0xa3, 0xa8, 0xaa, 0xaf, 0xb7,
];

const EMPTY = Buffer.alloc(0);

/** A well-formed initiator PDU of a random kind with random (often invalid) field values. */
function randomPdu(rng: Rng, cmdSN: number): InitiatorPdu {
  const itt = rng.chance(0.05) ? RESERVED_TAG : rng.u32();
  const lun = rng.chance(0.9) ? 0n : BigInt(rng.u32()) << 32n;
  const small = (): Buffer => (rng.chance(0.5) ? EMPTY : rng.bytes(rng.int(1024)));
  switch (rng.int(9)) {
    case 0:
    case 1:
    case 2: {
      const cdb = rng.bytes(16);
      cdb[0] = CDB_OPCODES[rng.int(CDB_OPCODES.length)]!;
      const write = rng.chance(0.3);
      return {
        opcode: Opcode.SCSI_COMMAND,
        immediate: rng.chance(0.05),
        final: rng.chance(0.95),
        read: !write && rng.chance(0.7),
        write,
        taskAttr: rng.int(8),
        lun,
        itt,
        expectedDataTransferLength: rng.chance(0.5) ? rng.int(65_536) : rng.u32(),
        cmdSN: rng.chance(0.9) ? cmdSN : rng.u32(),
        expStatSN: rng.u32(),
        cdb,
        ahs: rng.chance(0.05) ? rng.bytes(4 * (1 + rng.int(8))) : EMPTY,
        data: write ? small() : EMPTY,
      };
    }
    case 3:
      return {
        opcode: Opcode.SCSI_DATA_OUT,
        immediate: false,
        final: rng.chance(0.5),
        lun,
        itt,
        ttt: rng.u32(),
        expStatSN: rng.u32(),
        dataSN: rng.int(4),
        bufferOffset: rng.chance(0.5) ? 0 : rng.u32(),
        ahs: EMPTY,
        data: small(),
      };
    case 4:
      return {
        opcode: Opcode.NOP_OUT,
        immediate: rng.chance(0.5),
        lun,
        itt,
        ttt: rng.chance(0.8) ? RESERVED_TAG : rng.u32(),
        cmdSN,
        expStatSN: rng.u32(),
        ahs: EMPTY,
        data: small(),
      };
    case 5:
      return {
        opcode: Opcode.TEXT_REQUEST,
        immediate: rng.chance(0.5),
        final: rng.chance(0.8),
        continue: rng.chance(0.2),
        lun,
        itt,
        ttt: rng.chance(0.8) ? RESERVED_TAG : rng.u32(),
        cmdSN,
        expStatSN: rng.u32(),
        ahs: EMPTY,
        data: rng.chance(0.5) ? encodeKeys({ SendTargets: 'All' }) : encodeKeys({ [rng.bytes(6).toString('hex')]: rng.bytes(8).toString('base64') }),
      };
    case 6:
      return {
        opcode: Opcode.TASK_MGMT_REQUEST,
        immediate: true,
        function: rng.int(16),
        lun,
        itt,
        referencedTaskTag: rng.u32(),
        cmdSN,
        expStatSN: rng.u32(),
        refCmdSN: rng.u32(),
        expDataSN: rng.u32(),
        ahs: EMPTY,
        data: EMPTY,
      };
    case 7:
      return {
        opcode: Opcode.SNACK_REQUEST,
        immediate: false,
        type: rng.int(4),
        lun,
        itt,
        ttt: rng.u32(),
        expStatSN: rng.u32(),
        begRun: rng.u32(),
        runLength: rng.u32(),
        ahs: EMPTY,
        data: EMPTY,
      };
    default:
      return loginPdu(rng.bytes(6), rng.int(4), rng.int(4), small(), rng.u32(), rng.chance(0.5));
  }
}

function loginPdu(isid: Buffer, csg: number, nsg: number, data: Buffer, itt = 1, transit = true): InitiatorPdu {
  return {
    opcode: Opcode.LOGIN_REQUEST,
    immediate: true,
    transit,
    continue: false,
    csg,
    nsg,
    versionMax: 0,
    versionMin: 0,
    isid,
    tsih: 0,
    itt,
    cid: 0,
    cmdSN: 0,
    expStatSN: 0,
    ahs: EMPTY,
    data,
  };
}

/** The wire bytes of `pdu`, then one of several corruptions (or none, for a valid-format PDU). */
function mutate(rng: Rng, pdu: InitiatorPdu, breakFraming: boolean): Buffer {
  const wire = Buffer.concat(serializePdu(pdu, { headerDigest: false, dataDigest: false }));
  // Mutations 2-4 change the PDU's length against its header: the target loses (or misplaces)
  // framing, so they end a connection; the others keep framing, so the PDUs after them reach the
  // target's handlers.
  switch (breakFraming ? 2 + rng.int(3) : [0, 1, 5, 6, 7][rng.int(5)]) {
    case 0: // flip a few header bits, the lengths (bytes 4-7) left alone
      for (let i = 1 + rng.int(4); i > 0; i--) {
        const at = rng.int(44);
        wire[at < 4 ? at : at + 4]! ^= 1 << rng.int(8);
      }
      return wire;
    case 1: // any opcode, including reserved and target-only ones
      wire[0] = (wire[0]! & 0x40) | rng.int(64);
      return wire;
    case 2: // TotalAHSLength / DataSegmentLength lies (bounded so framing usually recovers)
      wire[4] = rng.chance(0.5) ? rng.int(256) : wire[4]!;
      wire.writeUIntBE(rng.chance(0.7) ? rng.int(2048) : rng.int(0x1000000), 5, 3);
      return wire;
    case 3: // truncated
      return wire.subarray(0, rng.int(wire.length));
    case 4: // random bytes
      return rng.bytes(1 + rng.int(256));
    case 5: // corrupt the data segment / padding
      if (wire.length > 48) wire[48 + rng.int(wire.length - 48)] = rng.int(256);
      return wire;
    default: // well-formed, with random field values
      return wire;
  }
}

interface Counters {
  pdus: number;
  connections: number;
  /** Target PDUs our own framer/codec could not frame or decode: the server must never send one. */
  badTargetPdus: number;
  /** Connections that logged in to full feature phase, that fuzzed the login phase instead, and
   *  whose (valid) login failed: every connection is one of the three. */
  fullFeature: number;
  loginFuzz: number;
  failedLogins: number;
  /** After its fuzz, a logged-in connection whose PDUs all framed as they were built (their
   *  lengths match their headers, so the target's framing is where ours is) is pinged (NOP-Out):
   *  answered, or closed by the target, or neither within PING_TIMEOUT_MS: a hang. */
  pingsAnswered: number;
  closedByTarget: number;
  hangs: number;
  /** PDUs sent on connections whose ping was answered: the target framed every one of them. */
  confirmedPdus: number;
}

const PING_TIMEOUT_MS = 10_000;
const PING_ITT = 0x7fff_0001;

function newCounters(): Counters {
  return { pdus: 0, connections: 0, badTargetPdus: 0, fullFeature: 0, loginFuzz: 0, failedLogins: 0, pingsAnswered: 0, closedByTarget: 0, hangs: 0, confirmedPdus: 0 };
}

/** RFC 7143 11.2: the wire length its header implies (BHS, AHS, data padded to 4; no digests). */
function framesAsBuilt(wire: Buffer): boolean {
  if (wire.length < 48) return false;
  const dataLength = wire.readUIntBE(5, 3);
  return wire.length === 48 + wire[4]! * 4 + dataLength + ((4 - (dataLength & 3)) & 3);
}

function writeAsync(socket: Socket, buf: Buffer): Promise<boolean> {
  return new Promise((resolveWrite) => {
    if (socket.destroyed || !socket.writable) return resolveWrite(false);
    socket.write(buf, (err) => resolveWrite(!err));
  });
}

/** Frames everything the target sends on `socket` (checking it is well-formed) and queues the
 *  Login Responses; everything else (Rejects, sense, Data-In, R2Ts) is dropped. */
function watchTarget(socket: Socket, counters: Counters): { nextLoginResponse: () => Promise<LoginResponse | null>; pinged: () => boolean } {
  const framer = new PduFramer();
  const responses: LoginResponse[] = [];
  let pingAnswered = false;
  let wake: (() => void) | null = null;
  socket.on('data', (chunk: Buffer) => {
    try {
      for (const event of framer.push(chunk)) {
        if (event.kind !== 'pdu') counters.badTargetPdus++;
        else if (event.pdu.opcode === Opcode.LOGIN_RESPONSE) responses.push(event.pdu);
        else if (event.pdu.opcode === Opcode.NOP_IN && event.pdu.itt === PING_ITT) pingAnswered = true;
      }
    } catch {
      counters.badTargetPdus++;
      socket.destroy();
    }
    wake?.();
  });
  socket.once('close', () => wake?.());
  return {
    nextLoginResponse: async () => {
      while (responses.length === 0) {
        if (socket.destroyed) return null;
        await new Promise<void>((r) => (wake = r));
      }
      return responses.shift()!;
    },
    pinged: () => pingAnswered,
  };
}

/** Pings a connection after its fuzz (see Counters): answered, closed, or a hang. */
async function pingAfterFuzz(socket: Socket, pinged: () => boolean, counters: Counters): Promise<boolean> {
  const closed = new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
  const ping = serializePdu(
    { opcode: Opcode.NOP_OUT, immediate: true, lun: 0n, itt: PING_ITT, ttt: RESERVED_TAG, cmdSN: 0, expStatSN: 0, ahs: EMPTY, data: EMPTY },
    { headerDigest: false, dataDigest: false },
  );
  void writeAsync(socket, Buffer.concat(ping));
  const deadline = performance.now() + PING_TIMEOUT_MS;
  while (!pinged() && !socket.destroyed && performance.now() < deadline) {
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 20))]);
  }
  if (pinged()) {
    counters.pingsAnswered++;
    return true;
  } else if (socket.destroyed || socket.readableEnded) counters.closedByTarget++;
  else counters.hangs++;
  return false;
}

/** Logs in for real (AuthMethod None, then operational) so fuzz reaches the full feature phase. */
async function rawLogin(socket: Socket, nextLoginResponse: () => Promise<LoginResponse | null>, targetName: string, rng: Rng): Promise<number | null> {
  const isid = Buffer.from([0x80, ...rng.bytes(5)]);
  const security = encodeKeys({ InitiatorName: INITIATOR, TargetName: targetName, SessionType: 'Normal', AuthMethod: 'None' });
  if (!(await writeAsync(socket, Buffer.concat(serializePdu(loginPdu(isid, 0, 1, security), { headerDigest: false, dataDigest: false }))))) return null;
  const first = await nextLoginResponse();
  if (first === null || first.statusClass !== 0) return null;
  const operational = encodeKeys({ HeaderDigest: 'None', DataDigest: 'None', ErrorRecoveryLevel: '0', MaxRecvDataSegmentLength: '65536' });
  if (!(await writeAsync(socket, Buffer.concat(serializePdu(loginPdu(isid, 1, 3, operational), { headerDigest: false, dataDigest: false }))))) return null;
  const second = await nextLoginResponse();
  if (second === null || second.statusClass !== 0 || !(second.transit && second.nsg === 3)) return null;
  return second.expCmdSN;
}

async function fuzzConnection(port: number, targetName: string, rng: Rng, counters: Counters, pduCount: number): Promise<void> {
  const socket = connect({ host: '127.0.0.1', port, noDelay: true });
  socket.on('error', () => {});
  await new Promise<void>((resolveConnect) => {
    socket.once('connect', () => resolveConnect());
    socket.once('close', () => resolveConnect());
  });
  counters.connections++;
  const { nextLoginResponse, pinged } = watchTarget(socket, counters);
  try {
    // One connection in ten fuzzes the login phase itself.
    const fuzzLogin = rng.chance(0.1);
    let cmdSN = fuzzLogin ? 0 : await rawLogin(socket, nextLoginResponse, targetName, rng);
    if (fuzzLogin) counters.loginFuzz++;
    else if (cmdSN === null) {
      counters.failedLogins++;
      return;
    } else counters.fullFeature++;
    let aligned = true;
    let sent = 0;
    for (let i = 0; i < PDUS_PER_CONNECTION && counters.pdus < pduCount; i++) {
      const last = i === PDUS_PER_CONNECTION - 1 || counters.pdus + 1 >= pduCount;
      const wire = mutate(rng, randomPdu(rng, cmdSN!), last && rng.chance(0.5));
      cmdSN = (cmdSN! + 1) >>> 0;
      if (!(await writeAsync(socket, wire))) return;
      counters.pdus++;
      sent++;
      aligned &&= framesAsBuilt(wire);
    }
    if (!fuzzLogin && aligned && (await pingAfterFuzz(socket, pinged, counters))) counters.confirmedPdus += sent;
  } finally {
    socket.destroy();
  }
}

/** Runs WORKERS fuzzing loops against `port` until `pduCount` PDUs went out. */
async function fuzz(port: number, targetName: string, counters: Counters, pduCount: number, alive: () => boolean): Promise<void> {
  const workers = Array.from({ length: WORKERS }, async (_, w) => {
    const rng = prng(SEED + w);
    while (counters.pdus < pduCount && alive()) await fuzzConnection(port, targetName, rng, counters, pduCount);
  });
  await Promise.all(workers);
}

t.test('Fuzz.NegativeControl: a broken login handler is found, not dropped silently', async (t) => {
  // Every third lookup of the target throws: a login handler bug the counters must show.
  const lu = new MemoryLun();
  const name = 'iqn.2026-11.test:broken-login';
  let lookups = 0;
  const server = new IscsiServer({
    registry: {
      list: () => [{ name, luns: new Map([[0, lu]]) }],
      get: (n) => {
        if (++lookups % 3 === 0) throw new Error('deliberately broken');
        return n === name ? { name, luns: new Map([[0, lu]]) } : undefined;
      },
    },
    nopInIntervalMs: 0,
  });
  const { port } = await server.listen('127.0.0.1', 0);
  t.teardown(() => server.close({ graceMs: 0 }));
  const counters = newCounters();
  await fuzz(port, name, counters, 20_000, () => true);
  t.ok(counters.failedLogins > 0, `${counters.failedLogins} of ${counters.connections} logins failed and are counted`);
  t.equal(counters.connections, counters.fullFeature + counters.loginFuzz + counters.failedLogins, 'every connection is accounted for');
});

const gateway = await startGateway({ volumes: [`${FUZZ_VOLUME}:1GiB`, `${DATA_VOLUME}:1GiB`] });
t.teardown(() => gateway.dispose());

/** A counter of the gateway's /metrics. */
async function metric(name: string): Promise<number> {
  const text = await (await gateway.apiFetch('/metrics')).text();
  const match = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  if (match === null) throw new Error(`${name} is not on /metrics`);
  return Number(match[1]);
}

t.test('Fuzz.ServerSurvivesWhileGoodSessionKeepsWorking', async (t) => {
  t.comment(`seed ${SEED} (replay with FUZZ_SEED=${SEED}), ${FUZZ_PDU_COUNT} PDUs, ${WORKERS} workers`);
  const counters = newCounters();
  const rss = watchRss(gateway.pid);
  const serverPdusBefore = await metric('shelfgate_iscsi_pdus_received_total');
  const serverLoginsBefore = await metric('shelfgate_iscsi_full_feature_logins_total');

  const good = await TestInitiator.connect('127.0.0.1', gateway.iscsiPort);
  t.teardown(() => good.destroy());
  await good.login({ initiatorName: 'iqn.2026-11.test:good', targetName: gateway.targetIqn(DATA_VOLUME) });
  await good.scsi(Buffer.from([0x00, 0, 0, 0, 0, 0])); // TEST UNIT READY clears the power-on unit attention

  let fuzzing = true;
  const goodSession = (async () => {
    const mismatches: string[] = [];
    let rounds = 0;
    // At least a few rounds, and keep going for as long as the fuzzers run.
    while (fuzzing || rounds < 4) {
      const lba = (rounds % 1024) * 128;
      const pattern = Buffer.alloc(64 * 1024, 0);
      pattern.writeUInt32BE(rounds, 0);
      for (let i = 4; i < pattern.length; i++) pattern[i] = (i + rounds) & 0xff;
      const write = await good.scsi(write16(lba, 128), { dataOut: pattern });
      const read = await good.scsi(read16(lba, 128), { readLength: pattern.length });
      if (write.status !== 0 || read.status !== 0 || !read.dataIn.equals(pattern)) {
        mismatches.push(`round ${rounds}: write ${write.status} read ${read.status} equal ${read.dataIn.equals(pattern)}`);
      }
      rounds++;
    }
    return { rounds, mismatches };
  })();

  await fuzz(gateway.iscsiPort, gateway.targetIqn(FUZZ_VOLUME), counters, FUZZ_PDU_COUNT, () => gateway.alive());
  fuzzing = false;
  const { rounds, mismatches } = await goodSession;

  t.ok(counters.pdus >= FUZZ_PDU_COUNT, `${counters.pdus} fuzzed PDUs over ${counters.connections} connections`);
  t.ok(gateway.alive(), 'the server process is still running');
  t.equal(counters.connections, counters.fullFeature + counters.loginFuzz + counters.failedLogins, 'every connection is accounted for');
  t.equal(counters.failedLogins, 0, 'every valid login succeeded');
  t.ok(counters.fullFeature >= 0.8 * counters.connections, `${counters.fullFeature} connections reached full feature phase (${counters.loginFuzz} fuzzed the login)`);
  const serverLogins = (await metric('shelfgate_iscsi_full_feature_logins_total')) - serverLoginsBefore;
  t.ok(serverLogins >= counters.fullFeature, `the server counted ${serverLogins} full-feature logins`);
  const serverPdus = (await metric('shelfgate_iscsi_pdus_received_total')) - serverPdusBefore;
  t.ok(counters.pingsAnswered > 0, `${counters.pingsAnswered} connections answered a NOP-Out after their fuzz, ${counters.closedByTarget} were closed by the target`);
  t.equal(counters.hangs, 0, 'no connection left unanswered (a hang)');
  // PDUs on connections the target closed early, or swallowed as the data of a PDU whose header
  // lied, are sent but never framed; those before an answered ping were all framed.
  // Connections end early by design (a fuzzed Logout, TARGET COLD RESET, a framing-breaking last
  // PDU): what was written after the target closed is sent but never framed.
  t.ok(serverPdus >= counters.confirmedPdus,
    `the server framed ${serverPdus} of the ${counters.pdus} PDUs sent, at least the ${counters.confirmedPdus} before an answered ping`);
  const peak = rss.stop();
  t.ok(peak < 512 * MiB, `peak RSS ${(peak / MiB).toFixed(0)} MiB < 512 MiB`);
  t.equal(counters.badTargetPdus, 0, 'every PDU the target sent was well-formed');
  t.same(mismatches, [], `the good session verified ${rounds} write/read rounds of 64 KiB`);
  t.equal(await good.logout(), 0, 'the good session logs out normally');
});

t.test('Fuzz.NewLoginsStillWork', async (t) => {
  const result = await runTool('iscsi-inq', [gateway.url(DATA_VOLUME)], { timeoutMs: 30_000 });
  t.equal(result.exitCode, 0, 'exit code 0', { stderr: result.stderr });
  t.equal(field(parseToolFields(result.stdout), 'Peripheral Device Type'), 'DIRECT_ACCESS');
});

t.test('Fuzz.CleanExit', async (t) => {
  const exitCode = await gateway.stop();
  t.equal(exitCode, 0, 'exit code 0 on SIGTERM');
  if (exitCode !== 0) t.comment(gateway.stderr().slice(-4000));
});
