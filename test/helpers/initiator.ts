// A small iSCSI initiator for e2e tests, built on our own codec and framer: one connection,
// ErrorRecoveryLevel 0, login without or with CHAP (RFC 7143 12.1.3), header/data digests, SCSI
// commands with immediate data + R2T-solicited Data-Out and Data-In, several commands in flight
// within the CmdSN window, NOP-Out ping, logout. Used where libiscsi cannot go (data digests,
// acknowledged-write bookkeeping for the crash test) and as the well-behaved peer of the fuzzer.
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { PduFramer, serializePdu } from '../../iscsi/framer.js';
import {
  Opcode,
  RESERVED_TAG,
  type DataIn,
  type LoginResponse,
  type Pdu,
  type R2T,
  type ScsiResponsePdu,
  type TargetPdu,
} from '../../iscsi/pdu/types.js';

export interface LoginOptions {
  initiatorName: string;
  targetName: string;
  headerDigest?: boolean;
  dataDigest?: boolean;
  /** One-way CHAP: answer the target's challenge with these. */
  chap?: { user: string; secret: string };
  /** Mutual CHAP: also challenge the target and check its answer against these. */
  mutualChap?: { user: string; secret: string };
}

export interface ScsiResult {
  status: number;
  /** Sense data without the 2-byte SenseLength prefix (empty when none). */
  sense: Buffer;
  dataIn: Buffer;
  residualCount: number;
  /** RFC 7143 11.4.5.1 O and U bits of the response. */
  overflow: boolean;
  underflow: boolean;
}

export class LoginError extends Error {
  constructor(
    readonly statusClass: number,
    readonly statusDetail: number,
  ) {
    super(`login failed with status 0x${((statusClass << 8) | statusDetail).toString(16).padStart(4, '0')}`);
    this.name = 'LoginError';
  }
}

interface PendingCommand {
  dataOut: Buffer | null;
  dataIn: Buffer;
  resolve(result: ScsiResult): void;
  reject(err: Error): void;
}

const OUR_MAX_RECV_DATA_SEGMENT_LENGTH = 262_144;
const CHAP_MD5 = 5;

export class TestInitiator {
  private readonly socket: Socket;
  private readonly framer = new PduFramer();
  private digests = { headerDigest: false, dataDigest: false };
  private nextItt = 1;
  private cmdSN = 1;
  private expStatSN = 0;
  private maxCmdSN = 1;
  private readonly isid = Buffer.from([0x80, ...randomBytes(5)]);
  private tsih = 0;
  /** Operational values the target declared (RFC 7143 13). */
  private targetMaxRecvDataSegmentLength = 8192;
  private firstBurstLength = 65_536;
  private maxBurstLength = 262_144;
  private immediateData = true;
  private readonly pending = new Map<number, PendingCommand>();
  /** Commands waiting for room in the CmdSN window. */
  private readonly windowQueue: Array<() => void> = [];
  private readonly waiters = new Map<number, { resolve(pdu: TargetPdu): void; reject(err: Error): void }>();
  private closedError: Error | null = null;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  static async connect(host: string, port: number): Promise<TestInitiator> {
    const socket = connect({ host, port, noDelay: true });
    await new Promise<void>((resolveConnect, rejectConnect) => {
      socket.once('connect', resolveConnect);
      socket.once('error', rejectConnect);
    });
    return new TestInitiator(socket);
  }

  /** Logs in to a Normal session: security stage (AuthMethod None or CHAP), then operational. */
  async login(opts: LoginOptions): Promise<void> {
    const itt = this.allocItt();
    const security: Record<string, string> = {
      InitiatorName: opts.initiatorName,
      TargetName: opts.targetName,
      SessionType: 'Normal',
      AuthMethod: opts.chap ? 'CHAP,None' : 'None',
    };
    let response = await this.loginStep(itt, 0, 1, security);
    let keys = parseKeys(response.data);
    if (keys.get('AuthMethod') === 'CHAP') {
      // RFC 7143 12.1.3: CHAP_A, then the target's CHAP_I/CHAP_C, then our CHAP_N/CHAP_R (+ mutual).
      response = await this.loginStep(itt, 0, 1, { CHAP_A: String(CHAP_MD5) }, false);
      keys = parseKeys(response.data);
      const chapId = Number(keys.get('CHAP_I'));
      const challenge = hexToBuffer(keys.get('CHAP_C') ?? '');
      if (!opts.chap) throw new Error('target asked for CHAP but no credentials were given');
      const answer: Record<string, string> = {
        CHAP_N: opts.chap.user,
        CHAP_R: `0x${chapResponse(chapId, opts.chap.secret, challenge).toString('hex')}`,
      };
      const mutualId = 7;
      const mutualChallenge = randomBytes(16);
      if (opts.mutualChap) {
        answer.CHAP_I = String(mutualId);
        answer.CHAP_C = `0x${mutualChallenge.toString('hex')}`;
      }
      response = await this.loginStep(itt, 0, 1, answer);
      if (opts.mutualChap) {
        keys = parseKeys(response.data);
        const expected = chapResponse(mutualId, opts.mutualChap.secret, mutualChallenge);
        if (keys.get('CHAP_N') !== opts.mutualChap.user || !hexToBuffer(keys.get('CHAP_R') ?? '').equals(expected)) {
          throw new Error('the target failed mutual CHAP');
        }
      }
    }
    while (!(response.transit && response.nsg === 1)) response = await this.loginStep(itt, 0, 1, {});

    const operational: Record<string, string> = {
      HeaderDigest: opts.headerDigest ? 'CRC32C' : 'None',
      DataDigest: opts.dataDigest ? 'CRC32C' : 'None',
      ErrorRecoveryLevel: '0',
      InitialR2T: 'Yes',
      ImmediateData: 'Yes',
      MaxRecvDataSegmentLength: String(OUR_MAX_RECV_DATA_SEGMENT_LENGTH),
      MaxBurstLength: '1048576',
      FirstBurstLength: '262144',
      MaxOutstandingR2T: '1',
      DataPDUInOrder: 'Yes',
      DataSequenceInOrder: 'Yes',
      DefaultTime2Wait: '0',
      DefaultTime2Retain: '0',
      MaxConnections: '1',
    };
    response = await this.loginStep(itt, 1, 3, operational);
    const declared = parseKeys(response.data);
    while (!(response.transit && response.nsg === 3)) {
      response = await this.loginStep(itt, 1, 3, {});
      for (const [key, value] of parseKeys(response.data)) declared.set(key, value);
    }
    this.targetMaxRecvDataSegmentLength = Number(declared.get('MaxRecvDataSegmentLength') ?? 8192);
    this.firstBurstLength = Number(declared.get('FirstBurstLength') ?? this.firstBurstLength);
    this.maxBurstLength = Number(declared.get('MaxBurstLength') ?? this.maxBurstLength);
    this.immediateData = (declared.get('ImmediateData') ?? 'Yes') === 'Yes';
    this.tsih = response.tsih;
    this.digests = {
      headerDigest: declared.get('HeaderDigest') === 'CRC32C',
      dataDigest: declared.get('DataDigest') === 'CRC32C',
    };
    this.framer.setDigests(this.digests.headerDigest, this.digests.dataDigest);
    this.cmdSN = response.expCmdSN;
    this.maxCmdSN = response.maxCmdSN;
  }

  /** Sends a SCSI command; `dataOut` for writes, `readLength` (Expected Data Transfer Length) for reads. */
  async scsi(cdb: Buffer, opts: { dataOut?: Buffer; readLength?: number; lun?: number } = {}): Promise<ScsiResult> {
    await this.waitForWindow();
    const itt = this.allocItt();
    const dataOut = opts.dataOut ?? null;
    const expectedDataTransferLength = dataOut?.length ?? opts.readLength ?? 0;
    const immediateLength = dataOut && this.immediateData ? Math.min(dataOut.length, this.firstBurstLength, this.targetMaxRecvDataSegmentLength) : 0;
    const cdbField = Buffer.alloc(16);
    cdb.copy(cdbField);
    const result = new Promise<ScsiResult>((resolveCommand, rejectCommand) => {
      this.pending.set(itt, { dataOut, dataIn: Buffer.alloc(opts.readLength ?? 0), resolve: resolveCommand, reject: rejectCommand });
    });
    this.send({
      opcode: Opcode.SCSI_COMMAND,
      immediate: false,
      final: true,
      read: (opts.readLength ?? 0) > 0,
      write: dataOut !== null,
      taskAttr: 1,
      lun: BigInt(opts.lun ?? 0) << 48n,
      itt,
      expectedDataTransferLength,
      cmdSN: this.cmdSN++,
      expStatSN: this.expStatSN,
      cdb: cdbField,
      ahs: Buffer.alloc(0),
      data: dataOut ? dataOut.subarray(0, immediateLength) : Buffer.alloc(0),
    });
    return result;
  }

  /** NOP-Out ping (RFC 7143 11.18) answered by a NOP-In with the same ITT. */
  async ping(payload: Buffer = Buffer.alloc(0)): Promise<Buffer> {
    const itt = this.allocItt();
    const reply = this.waitFor(itt);
    this.send({
      opcode: Opcode.NOP_OUT,
      immediate: true,
      lun: 0n,
      itt,
      ttt: RESERVED_TAG,
      cmdSN: this.cmdSN,
      expStatSN: this.expStatSN,
      ahs: Buffer.alloc(0),
      data: payload,
    });
    return (await reply).data;
  }

  /** RFC 7143 11.5 LOGICAL UNIT RESET (function 5) as an immediate request; resolves to the
   *  Task Management Function Response code. The LUN's tasks get no response of their own. */
  async lunReset(lun = 0): Promise<number> {
    const itt = this.allocItt();
    const reply = this.waitFor(itt);
    this.send({
      opcode: Opcode.TASK_MGMT_REQUEST,
      immediate: true,
      function: 5,
      lun: BigInt(lun) << 48n,
      itt,
      referencedTaskTag: RESERVED_TAG,
      cmdSN: this.cmdSN,
      expStatSN: this.expStatSN,
      refCmdSN: 0,
      expDataSN: 0,
      ahs: Buffer.alloc(0),
      data: Buffer.alloc(0),
    });
    const response = await reply;
    return response.opcode === Opcode.TASK_MGMT_RESPONSE ? response.response : -1;
  }

  /** Logout (close the session) and wait for the Logout Response. */
  async logout(): Promise<number> {
    const itt = this.allocItt();
    const reply = this.waitFor(itt);
    this.send({
      opcode: Opcode.LOGOUT_REQUEST,
      immediate: true,
      reasonCode: 0,
      itt,
      cid: 0,
      cmdSN: this.cmdSN,
      expStatSN: this.expStatSN,
      ahs: Buffer.alloc(0),
      data: Buffer.alloc(0),
    });
    const response = await reply;
    this.socket.end();
    return response.opcode === Opcode.LOGOUT_RESPONSE ? response.response : -1;
  }

  destroy(): void {
    this.socket.destroy();
  }

  get sessionTsih(): number {
    return this.tsih;
  }

  /** The digests the login settled on (RFC 7143 13.1). */
  get negotiatedDigests(): { headerDigest: boolean; dataDigest: boolean } {
    return { ...this.digests };
  }

  private allocItt(): number {
    const itt = this.nextItt;
    this.nextItt = (this.nextItt + 1) % 0xffffffff || 1;
    return itt;
  }

  private send(pdu: Pdu): void {
    if (this.closedError) throw this.closedError;
    this.socket.cork();
    for (const part of serializePdu(pdu, this.digests)) this.socket.write(part);
    this.socket.uncork();
  }

  private waitFor(itt: number): Promise<TargetPdu> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolveWait, rejectWait) => {
      this.waiters.set(itt, { resolve: resolveWait, reject: rejectWait });
    });
  }

  private async loginStep(itt: number, csg: number, nsg: number, keys: Record<string, string>, transit = true): Promise<LoginResponse> {
    const reply = this.waitFor(itt);
    this.send({
      opcode: Opcode.LOGIN_REQUEST,
      immediate: true,
      transit,
      continue: false,
      csg,
      nsg: transit ? nsg : 0,
      versionMax: 0,
      versionMin: 0,
      isid: this.isid,
      tsih: this.tsih,
      itt,
      cid: 0,
      cmdSN: this.cmdSN,
      expStatSN: this.expStatSN,
      ahs: Buffer.alloc(0),
      data: encodeKeys(keys),
    });
    const response = await reply;
    if (response.opcode !== Opcode.LOGIN_RESPONSE) throw new Error(`unexpected opcode 0x${response.opcode.toString(16)} during login`);
    if (response.statusClass !== 0) throw new LoginError(response.statusClass, response.statusDetail);
    return response;
  }

  private waitForWindow(): Promise<void> {
    // RFC 7143 4.2.2.1: a command may be sent when CmdSN is within [ExpCmdSN, MaxCmdSN].
    if (serialLessOrEqual(this.cmdSN, this.maxCmdSN)) return Promise.resolve();
    return new Promise((resolveWindow) => this.windowQueue.push(resolveWindow));
  }

  private onData(chunk: Buffer): void {
    let events;
    try {
      events = this.framer.push(chunk);
    } catch (err) {
      this.fail(err as Error);
      this.socket.destroy();
      return;
    }
    for (const event of events) {
      if (event.kind !== 'pdu') {
        this.fail(new Error(`target sent an undecodable PDU (${event.kind})`));
        this.socket.destroy();
        return;
      }
      this.onPdu(event.pdu as TargetPdu);
    }
  }

  private onPdu(pdu: TargetPdu): void {
    if ('maxCmdSN' in pdu && pdu.opcode !== Opcode.LOGIN_RESPONSE) {
      if (serialLessOrEqual(this.maxCmdSN, pdu.maxCmdSN)) this.maxCmdSN = pdu.maxCmdSN;
      while (this.windowQueue.length > 0 && serialLessOrEqual(this.cmdSN, this.maxCmdSN)) this.windowQueue.shift()!();
    }
    const carriesStatus =
      pdu.opcode !== Opcode.R2T &&
      pdu.opcode !== Opcode.NOP_IN &&
      !(pdu.opcode === Opcode.SCSI_DATA_IN && !pdu.statusPresent) &&
      'statSN' in pdu;
    if (carriesStatus) this.expStatSN = (pdu.statSN + 1) >>> 0;

    switch (pdu.opcode) {
      case Opcode.NOP_IN:
        if (pdu.ttt !== RESERVED_TAG) {
          // RFC 7143 11.19: a target ping is answered with a NOP-Out carrying its TTT.
          this.send({
            opcode: Opcode.NOP_OUT,
            immediate: true,
            lun: pdu.lun,
            itt: RESERVED_TAG,
            ttt: pdu.ttt,
            cmdSN: this.cmdSN,
            expStatSN: this.expStatSN,
            ahs: Buffer.alloc(0),
            data: Buffer.alloc(0),
          });
          return;
        }
        break;
      case Opcode.R2T:
        this.onR2T(pdu);
        return;
      case Opcode.SCSI_DATA_IN:
        this.onDataIn(pdu);
        return;
      case Opcode.SCSI_RESPONSE:
        this.onResponse(pdu);
        return;
      case Opcode.REJECT:
        this.fail(new Error(`target rejected a PDU with reason 0x${pdu.reason.toString(16)}`));
        return;
      default:
        break;
    }
    if ('itt' in pdu) {
      const waiter = this.waiters.get(pdu.itt);
      if (waiter) {
        this.waiters.delete(pdu.itt);
        waiter.resolve(pdu);
      }
    }
  }

  private onR2T(r2t: R2T): void {
    const command = this.pending.get(r2t.itt);
    if (!command?.dataOut) return;
    const end = r2t.bufferOffset + r2t.desiredDataTransferLength;
    let dataSN = 0;
    for (let offset = r2t.bufferOffset; offset < end; ) {
      const length = Math.min(this.targetMaxRecvDataSegmentLength, end - offset);
      this.send({
        opcode: Opcode.SCSI_DATA_OUT,
        immediate: false,
        final: offset + length === end,
        lun: r2t.lun,
        itt: r2t.itt,
        ttt: r2t.ttt,
        expStatSN: this.expStatSN,
        dataSN: dataSN++,
        bufferOffset: offset,
        ahs: Buffer.alloc(0),
        data: command.dataOut.subarray(offset, offset + length),
      });
      offset += length;
    }
  }

  private onDataIn(pdu: DataIn): void {
    const command = this.pending.get(pdu.itt);
    if (!command) return;
    pdu.data.copy(command.dataIn, pdu.bufferOffset);
    if (pdu.statusPresent) {
      this.pending.delete(pdu.itt);
      command.resolve({
        status: pdu.status,
        sense: Buffer.alloc(0),
        dataIn: command.dataIn.subarray(0, command.dataIn.length - (pdu.underflow ? pdu.residualCount : 0)),
        residualCount: pdu.residualCount,
        overflow: pdu.overflow,
        underflow: pdu.underflow,
      });
    }
  }

  private onResponse(pdu: ScsiResponsePdu): void {
    const command = this.pending.get(pdu.itt);
    if (!command) return;
    this.pending.delete(pdu.itt);
    const senseLength = pdu.data.length >= 2 ? pdu.data.readUInt16BE(0) : 0;
    command.resolve({
      status: pdu.status,
      sense: pdu.data.subarray(2, 2 + senseLength),
      dataIn: command.dataIn.subarray(0, command.dataIn.length - (pdu.underflow ? pdu.residualCount : 0)),
      residualCount: pdu.residualCount,
      overflow: pdu.overflow,
      underflow: pdu.underflow,
    });
  }

  private fail(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    for (const command of this.pending.values()) command.reject(err);
    this.pending.clear();
    for (const waiter of this.waiters.values()) waiter.reject(err);
    this.waiters.clear();
  }
}

/** RFC 1982 serial number arithmetic on 32 bits. */
function serialLessOrEqual(a: number, b: number): boolean {
  return a === b || ((b - a) >>> 0) < 0x80000000;
}

/** RFC 7143 6.1: key=value pairs, each NUL-terminated. */
export function encodeKeys(keys: Record<string, string>): Buffer {
  return Buffer.from(Object.entries(keys).map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}

export function parseKeys(data: Buffer): Map<string, string> {
  const keys = new Map<string, string>();
  for (const pair of data.toString('utf8').split('\0')) {
    const eq = pair.indexOf('=');
    if (eq > 0) keys.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return keys;
}

/** RFC 1994 CHAP with MD5: MD5(identifier || secret || challenge). */
function chapResponse(id: number, secret: string, challenge: Buffer): Buffer {
  return createHash('md5').update(Buffer.from([id])).update(secret, 'utf8').update(challenge).digest();
}

function hexToBuffer(value: string): Buffer {
  return Buffer.from(value.replace(/^0x/i, ''), 'hex');
}

/** READ(16) / WRITE(16) CDBs (SBC-3 5.16 / 5.40). */
export function read16(lba: number, blockCount: number): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x88;
  cdb.writeBigUInt64BE(BigInt(lba), 2);
  cdb.writeUInt32BE(blockCount, 10);
  return cdb;
}

export function write16(lba: number, blockCount: number): Buffer {
  const cdb = read16(lba, blockCount);
  cdb[0] = 0x8a;
  return cdb;
}
