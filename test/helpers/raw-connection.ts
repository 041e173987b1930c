// A raw iSCSI connection over real TCP for hostile-input tests: exact PDUs (or bytes) out, the
// target's PDUs framed and queued, and a record of when and how the target closed. Also the
// resident set size of a process, for the memory ceilings of issue 11.
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { PduFramer, serializePdu } from '../../iscsi/framer.js';
import { Opcode, RESERVED_TAG, type LoginResponse, type Pdu, type TargetPdu } from '../../iscsi/pdu/types.js';
import { encodeKeys } from './initiator.js';

const EMPTY = Buffer.alloc(0);
/** Guard against a test hanging when the target stays silent (not a timing assertion). */
const RECEIVE_GUARD_MS = 30_000;

export class RawConnection {
  readonly socket: Socket;
  private readonly framer = new PduFramer();
  private readonly inbox: TargetPdu[] = [];
  private wake: (() => void) | undefined;
  /** performance.now() when the socket closed, else undefined. */
  closedAtMs: number | undefined;
  readonly closed: Promise<void>;
  readonly isid = Buffer.from([0x80, 0x11, 0x22, 0x33, 0x44, Math.floor(Math.random() * 256)]);
  cmdSN = 1;
  expStatSN = 0;
  /** PDUs the target sent that our framer could not decode. */
  undecodable = 0;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const ev of this.framer.push(chunk)) {
          if (ev.kind !== 'pdu') {
            this.undecodable++;
            continue;
          }
          const pdu = ev.pdu as TargetPdu;
          if ('statSN' in pdu) this.expStatSN = (pdu.statSN + 1) >>> 0;
          this.inbox.push(pdu);
        }
      } catch {
        this.undecodable++;
        socket.destroy();
      }
      this.wake?.();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.closedAtMs = performance.now();
        this.wake?.();
        resolve();
      }),
    );
  }

  static async open(port: number): Promise<RawConnection> {
    const socket = connect({ host: '127.0.0.1', port, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawConnection(socket);
  }

  get isClosed(): boolean {
    return this.closedAtMs !== undefined;
  }

  /** Writes a PDU; resolves once it is handed to the kernel (false when the socket is gone). */
  send(pdu: Pdu): Promise<boolean> {
    return this.sendRaw(Buffer.concat(serializePdu(pdu, { headerDigest: false, dataDigest: false })));
  }

  sendRaw(bytes: Buffer): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.socket.destroyed || !this.socket.writable) return resolve(false);
      this.socket.write(bytes, (err) => resolve(!err));
    });
  }

  /** The next PDU from the target, or null once the connection closed. */
  async next(): Promise<TargetPdu | null> {
    const guard = performance.now() + RECEIVE_GUARD_MS;
    for (;;) {
      const pdu = this.inbox.shift();
      if (pdu !== undefined) return pdu;
      if (this.isClosed) return null;
      if (performance.now() > guard) throw new Error('no PDU from the target');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** PDUs received so far, without waiting. */
  drainInbox(): TargetPdu[] {
    return this.inbox.splice(0);
  }

  loginPdu(fields: { csg: number; nsg: number; transit: boolean; continue?: boolean; data: Buffer; itt?: number }): Pdu {
    return {
      opcode: Opcode.LOGIN_REQUEST,
      immediate: true,
      transit: fields.transit,
      continue: fields.continue ?? false,
      csg: fields.csg,
      nsg: fields.nsg,
      versionMax: 0,
      versionMin: 0,
      isid: this.isid,
      tsih: 0,
      itt: fields.itt ?? 1,
      cid: 1,
      cmdSN: this.cmdSN,
      expStatSN: this.expStatSN,
      ahs: EMPTY,
      data: fields.data,
    };
  }

  /** A Normal (target given) or Discovery session, AuthMethod None; throws unless it succeeds. */
  async login(initiatorName: string, targetName?: string, operational: Record<string, string> = {}): Promise<void> {
    const leading: Record<string, string> = targetName === undefined
      ? { InitiatorName: initiatorName, SessionType: 'Discovery', AuthMethod: 'None' }
      : { InitiatorName: initiatorName, TargetName: targetName, SessionType: 'Normal', AuthMethod: 'None' };
    await this.send(this.loginPdu({ csg: 0, nsg: 1, transit: true, data: encodeKeys(leading) }));
    const first = (await this.next()) as LoginResponse | null;
    if (first === null || first.opcode !== Opcode.LOGIN_RESPONSE || first.statusClass !== 0) throw new Error('security stage failed');
    const keys = { HeaderDigest: 'None', DataDigest: 'None', MaxRecvDataSegmentLength: '262144', ...operational };
    await this.send(this.loginPdu({ csg: 1, nsg: 3, transit: true, data: encodeKeys(keys) }));
    const second = (await this.next()) as LoginResponse | null;
    if (second === null || second.opcode !== Opcode.LOGIN_RESPONSE || second.statusClass !== 0 || !second.transit) {
      throw new Error('operational stage failed');
    }
  }

  scsiCommand(fields: { cdb: Buffer; itt: number; edtl: number; read?: boolean; write?: boolean; immediate?: boolean; lun?: bigint; data?: Buffer; final?: boolean }): Pdu {
    const cdb = Buffer.alloc(16);
    fields.cdb.copy(cdb);
    const immediate = fields.immediate ?? false;
    const pdu: Pdu = {
      opcode: Opcode.SCSI_COMMAND,
      immediate,
      final: fields.final ?? true,
      read: fields.read ?? false,
      write: fields.write ?? false,
      taskAttr: 1,
      lun: fields.lun ?? 0n,
      itt: fields.itt,
      expectedDataTransferLength: fields.edtl,
      cmdSN: this.cmdSN,
      expStatSN: this.expStatSN,
      cdb,
      ahs: EMPTY,
      data: fields.data ?? EMPTY,
    };
    if (!immediate) this.cmdSN = (this.cmdSN + 1) >>> 0;
    return pdu;
  }

  nopOut(itt: number, data: Buffer = EMPTY): Pdu {
    return { opcode: Opcode.NOP_OUT, immediate: true, lun: 0n, itt, ttt: RESERVED_TAG, cmdSN: this.cmdSN, expStatSN: this.expStatSN, ahs: EMPTY, data };
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Resident set size of a process in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (match === null) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

/** Samples a process's RSS every 50 ms until stopped; `peak` is the largest seen. */
export function watchRss(pid: number): { readonly peak: number; stop(): number } {
  let peak = rssBytes(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssBytes(pid));
    } catch {
      // the process ended; the caller's checks say so
    }
  }, 50);
  return {
    get peak() {
      return peak;
    },
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

export const MiB = 1024 * 1024;
