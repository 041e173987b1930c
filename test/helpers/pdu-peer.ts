// A raw PDU-level initiator for fabric tests: one end of a stream.duplexPair() served by an
// IscsiServer in-process. Tests build the exact PDUs they want (bad stages, CmdSN gaps,
// unsolicited Data-Out …) and read back the target's PDUs one at a time.
import { duplexPair, type Duplex } from 'node:stream';
import { PduFramer, serializePdu } from '../../iscsi/framer.js';
import type { TargetConfig } from '../../iscsi/device.js';
import { IscsiServer, type IscsiServerOptions } from '../../iscsi/server.js';
import {
  Opcode,
  RESERVED_TAG,
  type DataOut,
  type LoginRequest,
  type LoginResponse,
  type LogoutRequest,
  type NopOut,
  type Pdu,
  type ScsiCommandPdu,
  type TargetPdu,
  type TaskMgmtRequest,
  type TextRequest,
} from '../../iscsi/pdu/types.js';

const EMPTY = Buffer.alloc(0);
/** Guard against a test hanging forever when the target stays silent (not a timing assertion). */
const RECEIVE_GUARD_MS = 5000;

export const TEST_ISID = Buffer.from([0x80, 0x12, 0x34, 0x56, 0x00, 0x01]);

/** An in-process server over a fixed list of targets (no listening socket). */
export function testServer(targets: TargetConfig[], opts: Partial<IscsiServerOptions> = {}): IscsiServer {
  return new IscsiServer({
    registry: { list: () => targets, get: (name) => targets.find((t) => t.name === name) },
    nopInIntervalMs: 0,
    ...opts,
  });
}

export function keys(pairs: Record<string, string>): Buffer {
  return Buffer.from(Object.entries(pairs).map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}

export function parseKeys(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of data.toString('utf8').split('\0')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    out.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return out;
}

export class PduPeer {
  readonly stream: Duplex;
  private readonly framer = new PduFramer();
  private readonly inbox: TargetPdu[] = [];
  private waiter: ((pdu: TargetPdu | null) => void) | undefined;
  private closed = false;
  digests = { headerDigest: false, dataDigest: false };
  cmdSN = 1;
  expStatSN = 0;

  constructor(server: IscsiServer, portal = { address: '127.0.0.1', port: 3260 }) {
    const [ours, theirs] = duplexPair();
    this.stream = ours;
    server.accept(theirs, portal);
    ours.on('data', (chunk: Buffer) => {
      for (const ev of this.framer.push(chunk)) {
        if (ev.kind !== 'pdu') throw new Error(`target sent an undecodable PDU (${ev.kind})`);
        this.deliver(ev.pdu as TargetPdu);
      }
    });
    ours.on('end', () => this.onClose());
    ours.on('close', () => this.onClose());
    ours.on('error', () => this.onClose());
  }

  private deliver(pdu: TargetPdu): void {
    if ('statSN' in pdu) this.expStatSN = (pdu.statSN + 1) >>> 0;
    if (this.waiter !== undefined) {
      const w = this.waiter;
      this.waiter = undefined;
      w(pdu);
    } else this.inbox.push(pdu);
  }

  private onClose(): void {
    this.closed = true;
    if (this.waiter !== undefined) {
      const w = this.waiter;
      this.waiter = undefined;
      w(null);
    }
  }

  setDigests(headerDigest: boolean, dataDigest: boolean): void {
    this.digests = { headerDigest, dataDigest };
    this.framer.setDigests(headerDigest, dataDigest);
  }

  send(pdu: Pdu): void {
    for (const part of serializePdu(pdu, this.digests)) this.stream.write(part);
  }

  sendRaw(bytes: Buffer): void {
    this.stream.write(bytes);
  }

  /** The next PDU from the target, or null when the connection closed. */
  next(): Promise<TargetPdu | null> {
    const queued = this.inbox.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const guard = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error('no PDU from the target'));
      }, RECEIVE_GUARD_MS);
      this.waiter = (pdu) => {
        clearTimeout(guard);
        resolve(pdu);
      };
    });
  }

  /** The next PDU, which must have this opcode. */
  async expect<O extends TargetPdu['opcode']>(opcode: O): Promise<Extract<TargetPdu, { opcode: O }>> {
    const pdu = await this.next();
    if (pdu === null) throw new Error(`connection closed while waiting for opcode 0x${opcode.toString(16)}`);
    if (pdu.opcode !== opcode) {
      throw new Error(`expected opcode 0x${opcode.toString(16)}, got 0x${pdu.opcode.toString(16)}`);
    }
    return pdu as Extract<TargetPdu, { opcode: O }>;
  }

  /** Resolves when the target has closed the connection (after any PDUs still queued). */
  async closedByTarget(): Promise<boolean> {
    for (;;) {
      const pdu = await this.next();
      if (pdu === null) return true;
    }
  }

  destroy(): void {
    this.stream.destroy();
  }

  // ---- builders ----------------------------------------------------------------------------------

  login(fields: Partial<LoginRequest> & { keys?: Record<string, string> }): void {
    const { keys: k, ...rest } = fields;
    const pdu: LoginRequest = {
      opcode: Opcode.LOGIN_REQUEST,
      immediate: true,
      ahs: EMPTY,
      data: k === undefined ? EMPTY : keys(k),
      transit: true,
      continue: false,
      csg: 0,
      nsg: 1,
      versionMax: 0,
      versionMin: 0,
      isid: TEST_ISID,
      tsih: 0,
      itt: 0x1000,
      cid: 1,
      cmdSN: this.cmdSN,
      expStatSN: this.expStatSN,
      ...rest,
    };
    this.send(pdu);
  }

  async loginResponse(): Promise<LoginResponse> {
    return this.expect(Opcode.LOGIN_RESPONSE);
  }

  /** A plain two-stage login without authentication; returns the final response's keys. */
  async loginNormal(
    targetName: string,
    operational: Record<string, string> = {},
    initiatorName = 'iqn.2026-11.test:initiator',
    isid = TEST_ISID,
  ): Promise<{ security: LoginResponse; final: LoginResponse }> {
    this.login({ isid, keys: { InitiatorName: initiatorName, TargetName: targetName, SessionType: 'Normal', AuthMethod: 'None' } });
    const security = await this.loginResponse();
    this.login({ isid, csg: 1, nsg: 3, keys: operational });
    const final = await this.loginResponse();
    return { security, final };
  }

  async loginDiscovery(initiatorName = 'iqn.2026-11.test:initiator'): Promise<LoginResponse> {
    this.login({ csg: 1, nsg: 3, keys: { InitiatorName: initiatorName, SessionType: 'Discovery' } });
    return this.loginResponse();
  }

  scsiCommand(fields: Partial<ScsiCommandPdu> & { cdb: Buffer }): ScsiCommandPdu {
    const cdb = Buffer.alloc(16);
    fields.cdb.copy(cdb);
    const pdu: ScsiCommandPdu = {
      opcode: Opcode.SCSI_COMMAND,
      immediate: false,
      ahs: EMPTY,
      data: EMPTY,
      final: true,
      read: false,
      write: false,
      taskAttr: 1,
      lun: 0n,
      itt: 1,
      expectedDataTransferLength: 0,
      cmdSN: this.cmdSN,
      expStatSN: this.expStatSN,
      ...fields,
    };
    pdu.cdb = cdb;
    if (!pdu.immediate && fields.cmdSN === undefined) this.cmdSN++;
    this.send(pdu);
    return pdu;
  }

  dataOut(fields: Partial<DataOut>): void {
    this.send({
      opcode: Opcode.SCSI_DATA_OUT,
      immediate: false,
      ahs: EMPTY,
      data: EMPTY,
      final: true,
      lun: 0n,
      itt: 1,
      ttt: RESERVED_TAG,
      expStatSN: this.expStatSN,
      dataSN: 0,
      bufferOffset: 0,
      ...fields,
    });
  }

  nopOut(fields: Partial<NopOut>): void {
    const pdu: NopOut = {
      opcode: Opcode.NOP_OUT,
      immediate: true,
      ahs: EMPTY,
      data: EMPTY,
      lun: 0n,
      itt: 0x2000,
      ttt: RESERVED_TAG,
      cmdSN: this.cmdSN,
      expStatSN: this.expStatSN,
      ...fields,
    };
    if (!pdu.immediate && fields.cmdSN === undefined) this.cmdSN++;
    this.send(pdu);
  }

  taskMgmt(fields: Partial<TaskMgmtRequest> & { function: number }): void {
    this.send({
      opcode: Opcode.TASK_MGMT_REQUEST,
      immediate: true,
      ahs: EMPTY,
      data: EMPTY,
      lun: 0n,
      itt: 0x3000,
      referencedTaskTag: RESERVED_TAG,
      cmdSN: this.cmdSN,
      expStatSN: this.expStatSN,
      refCmdSN: 0,
      expDataSN: 0,
      ...fields,
    });
  }

  text(fields: Partial<TextRequest> & { keys?: Record<string, string> }): void {
    const { keys: k, ...rest } = fields;
    const pdu: TextRequest = {
      opcode: Opcode.TEXT_REQUEST,
      immediate: false,
      ahs: EMPTY,
      data: k === undefined ? EMPTY : keys(k),
      final: true,
      continue: false,
      lun: 0n,
      itt: 0x4000,
      ttt: RESERVED_TAG,
      cmdSN: this.cmdSN,
      expStatSN: this.expStatSN,
      ...rest,
    };
    if (!pdu.immediate && fields.cmdSN === undefined) this.cmdSN++;
    this.send(pdu);
  }

  logout(fields: Partial<LogoutRequest> = {}): void {
    const pdu: LogoutRequest = {
      opcode: Opcode.LOGOUT_REQUEST,
      immediate: false,
      ahs: EMPTY,
      data: EMPTY,
      reasonCode: 0,
      itt: 0x5000,
      cid: 1,
      cmdSN: this.cmdSN,
      expStatSN: this.expStatSN,
      ...fields,
    };
    if (!pdu.immediate && fields.cmdSN === undefined) this.cmdSN++;
    this.send(pdu);
  }
}

/** SBC-3 READ(10) / WRITE(10) CDBs. */
export function read10(lba: number, blocks: number): Buffer {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x28;
  cdb.writeUInt32BE(lba, 2);
  cdb.writeUInt16BE(blocks, 7);
  return cdb;
}

export function write10(lba: number, blocks: number): Buffer {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x2a;
  cdb.writeUInt32BE(lba, 2);
  cdb.writeUInt16BE(blocks, 7);
  return cdb;
}
