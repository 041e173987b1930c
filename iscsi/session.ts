// RFC 7143 4.2.2 an iSCSI session: its identity (initiator, ISID, TSIH, target), the I_T nexus it
// is, the CmdSN window (4.2.2.1) with in-order delivery of non-immediate commands, and its tasks.
// ErrorRecoveryLevel 0 with MaxConnections=1: when its connection goes, the session goes.

import type { Nexus, TargetConfig } from './device.js';
import type { Logger } from './log.js';
import type { SessionType } from './login.js';
import { initiatorPortName, isidHex, serialAdd, serialLe, serialLt, targetPortName } from './names.js';
import type { OperationalParams } from './negotiation.js';
import type { ScsiTask } from './task.js';

/** What a session needs of its connection. */
export interface SessionConnection {
  readonly cid: number;
  /** Drop the connection (its tasks are gone with it at ERL 0). */
  close(reason: string): void;
  /** RFC 7143 11.9.1 AsyncEvent 1: ask the initiator to log out within `time2WaitS` seconds. */
  requestLogout(time2WaitS: number): void;
}

export class Session {
  readonly tsih: number;
  readonly type: SessionType;
  readonly initiatorName: string;
  readonly isid: Buffer;
  readonly target: TargetConfig | undefined;
  readonly params: OperationalParams;
  readonly nexus: Nexus;
  connection: SessionConnection | null = null;

  /** RFC 7143 4.2.2.1: the next CmdSN expected, and the last one the initiator may send. */
  expCmdSN: number;
  maxCmdSN: number;
  /** Non-immediate commands that arrived ahead of ExpCmdSN, keyed by CmdSN. */
  private readonly waiting = new Map<number, () => void>();
  /** Active SCSI tasks by Initiator Task Tag. */
  readonly tasks = new Map<number, ScsiTask>();
  private ended = false;

  constructor(args: {
    tsih: number;
    type: SessionType;
    initiatorName: string;
    isid: Buffer;
    target: TargetConfig | undefined;
    params: OperationalParams;
    cmdSN: number;
    portalGroupTag: number;
    /** Non-immediate commands the initiator may have outstanding (MaxCmdSN - ExpCmdSN + 1). */
    commandWindow: number;
  }) {
    this.tsih = args.tsih;
    this.type = args.type;
    this.initiatorName = args.initiatorName;
    this.isid = args.isid;
    this.target = args.target;
    this.params = args.params;
    this.expCmdSN = args.cmdSN >>> 0;
    this.maxCmdSN = serialAdd(this.expCmdSN, args.commandWindow - 1);
    const portName = initiatorPortName(args.initiatorName, args.isid);
    this.nexus = {
      id: `${portName}|${args.tsih}`,
      initiatorPortName: portName,
      initiatorName: args.initiatorName,
      targetPortName: targetPortName(args.target?.name ?? '', args.portalGroupTag),
      relativeTargetPortId: args.portalGroupTag,
    };
  }

  get targetName(): string {
    return this.target?.name ?? '';
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /**
   * RFC 7143 4.2.2.1: immediate commands are delivered at once; a non-immediate command is
   * delivered when its CmdSN is ExpCmdSN (and the ones queued behind it follow), queued when it
   * is ahead within the window, and ignored (false) outside the window or as a duplicate.
   */
  admit(cmdSN: number, immediate: boolean, deliver: () => void): boolean {
    if (immediate) {
      deliver();
      return true;
    }
    if (cmdSN === this.expCmdSN) {
      this.expCmdSN = serialAdd(this.expCmdSN, 1);
      deliver();
      this.deliverWaiting();
      return true;
    }
    if (serialLt(this.expCmdSN, cmdSN) && serialLe(cmdSN, this.maxCmdSN) && !this.waiting.has(cmdSN)) {
      this.waiting.set(cmdSN, deliver);
      return true;
    }
    return false;
  }

  private deliverWaiting(): void {
    for (;;) {
      const next = this.waiting.get(this.expCmdSN);
      if (next === undefined) return;
      this.waiting.delete(this.expCmdSN);
      this.expCmdSN = serialAdd(this.expCmdSN, 1);
      next();
    }
  }

  /** A non-immediate command finished: its slot in the window is free again. */
  commandCompleted(): void {
    this.maxCmdSN = serialAdd(this.maxCmdSN, 1);
  }

  /** Ends the session: its tasks are aborted, the logical units forget the nexus. */
  end(log: Logger, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    for (const task of this.tasks.values()) task.state = 'aborted';
    this.tasks.clear();
    this.waiting.clear();
    const conn = this.connection;
    this.connection = null;
    conn?.close(reason);
    if (this.target !== undefined) {
      for (const lu of this.target.luns.values()) {
        try {
          lu.nexusLost(this.nexus.id);
        } catch (err) {
          log.error('nexusLost failed', { nexus: this.nexus.id, err: String(err) });
        }
      }
    }
    log.info('session ended', { initiator: this.initiatorName, isid: isidHex(this.isid), tsih: this.tsih, target: this.targetName, reason });
  }
}

/** All sessions of a server, by TSIH, and by the identity used for reinstatement (RFC 7143 6.3.5). */
export class SessionTable {
  private readonly byTsih = new Map<number, Session>();
  private lastTsih = 0;

  /** A TSIH not in use (never 0, RFC 7143 11.12.6). */
  allocateTsih(): number {
    for (;;) {
      this.lastTsih = this.lastTsih >= 0xffff ? 1 : this.lastTsih + 1;
      if (!this.byTsih.has(this.lastTsih)) return this.lastTsih;
    }
  }

  get(tsih: number): Session | undefined {
    return this.byTsih.get(tsih);
  }

  /** The session with this initiator name, ISID and target (session identity, RFC 7143 4.4.3). */
  findByIdentity(initiatorName: string, isid: Buffer, targetName: string): Session | undefined {
    for (const s of this.byTsih.values()) {
      if (s.initiatorName === initiatorName && s.isid.equals(isid) && s.targetName === targetName) return s;
    }
    return undefined;
  }

  add(session: Session): void {
    this.byTsih.set(session.tsih, session);
  }

  remove(session: Session): void {
    if (this.byTsih.get(session.tsih) === session) this.byTsih.delete(session.tsih);
  }

  all(): Session[] {
    return [...this.byTsih.values()];
  }
}
