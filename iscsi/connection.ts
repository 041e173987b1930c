// One iSCSI connection (RFC 7143 4.2.4): framing, the login phase (login.ts), then full feature
// phase — SCSI commands with R2T/Data-Out/Data-In (task.ts), NOP-Out/NOP-In, Text, Task
// Management, Logout and Reject — with StatSN per connection and the session's CmdSN window.

import { giveBackReadBuffer } from './read-buffer-pool.js';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { ScsiStatus, type ScsiResponse, type TargetRegistry } from './device.js';
import { sendTargets } from './discovery.js';
import { IscsiError } from './errors.js';
import { PduFramer, serializePduParts, type FramerEvent } from './framer.js';
import { ByteBudget, type IscsiLimits } from './limits.js';
import type { LoginThrottle } from './login-throttle.js';
import type { Logger } from './log.js';
import { LoginMachine, type LoginHost, type LoginReplyPdu, type LoginResult } from './login.js';
import { decodeLun, serialAdd, serialLe, serialLt } from './names.js';
import {
  Negotiator,
  TARGET_MAX_RECV_DATA_SEGMENT_LENGTH,
  parseTextData,
  type KeyValue,
  type OperationalParams,
} from './negotiation.js';
import { encodeBhs } from './pdu/codec.js';
import {
  LoginStatus,
  Opcode,
  RESERVED_TAG,
  RejectReason,
  type DataOut,
  type LoginRequest,
  type LogoutRequest,
  type NopOut,
  type Pdu,
  type ScsiCommandPdu,
  type TargetPdu,
  type TaskMgmtRequest,
  type TextRequest,
} from './pdu/types.js';
import { buildFixedSense, Sense, type SenseCode } from './scsi/sense.js';
import { Session, type SessionConnection, type SessionTable } from './session.js';
import {
  PROTOCOL_SERVICE_CRC_ERROR,
  ScsiTask,
  fabricCommand,
  planDataIn,
  residual,
  writeBufferFor,
} from './task.js';
import { TextExchange } from './text.js';

/** RFC 7143 11.5.1 task management function codes. */
export const TaskMgmtFunction = {
  ABORT_TASK: 1,
  ABORT_TASK_SET: 2,
  CLEAR_ACA: 3,
  CLEAR_TASK_SET: 4,
  LOGICAL_UNIT_RESET: 5,
  TARGET_WARM_RESET: 6,
  TARGET_COLD_RESET: 7,
  TASK_REASSIGN: 8,
} as const;

/** RFC 7143 11.6.1 task management responses. */
export const TaskMgmtResponseCode = {
  FUNCTION_COMPLETE: 0,
  TASK_DOES_NOT_EXIST: 1,
  LUN_DOES_NOT_EXIST: 2,
  TASK_STILL_ALLEGIANT: 3,
  TASK_ALLEGIANCE_REASSIGNMENT_NOT_SUPPORTED: 4,
  FUNCTION_NOT_SUPPORTED: 5,
  FUNCTION_AUTHORIZATION_FAILED: 6,
  FUNCTION_REJECTED: 255,
} as const;

/** RFC 7143 11.14.1 logout reasons and 11.15.1 responses. */
export const LogoutReason = { CLOSE_SESSION: 0, CLOSE_CONNECTION: 1, REMOVE_FOR_RECOVERY: 2 } as const;
export const LogoutResponseCode = { CLOSED: 0, CID_NOT_FOUND: 1, RECOVERY_NOT_SUPPORTED: 2, CLEANUP_FAILED: 3 } as const;

/** RFC 7143 11.9.1 AsyncEvent codes. */
export const AsyncEvent = { SCSI_ASYNC_EVENT: 0, LOGOUT_REQUEST: 1, DROP_CONNECTION: 2, DROP_ALL_CONNECTIONS: 3 } as const;

/** How long a closing connection may take to flush its last PDU. */
const CLOSE_FLUSH_MS = 5000;

const EMPTY = Buffer.alloc(0);

/** RFC 7143 11.13.5 status class 2: the initiator's error (authentication, authorization, …). */
const LOGIN_STATUS_CLASS_INITIATOR_ERROR = 2;

/** The InitiatorName key of a login request's text, '' when absent or unreadable. */
function initiatorNameOf(data: Buffer): string {
  try {
    return parseTextData(data).find(([k]) => k === 'InitiatorName')?.[1] ?? '';
  } catch {
    return '';
  }
}

/** What connections share: the server's configuration and session table. */
export interface ConnectionContext {
  readonly registry: TargetRegistry;
  readonly log: Logger;
  readonly portalGroupTag: number;
  /** The portals SendTargets gives out (e.g. the address of a NAT or a container's published
   *  port); empty: the address and port this connection reached. */
  readonly advertisedPortals: readonly LocalPortal[];
  /** Ping an idle connection after this long (0: never). */
  readonly nopInIntervalMs: number;
  /** Drop the connection when a ping is not answered within this. */
  readonly nopInTimeoutMs: number;
  readonly sessions: SessionTable;
  readonly limits: IscsiLimits;
  /** The portal-wide budgets the connections' budgets draw from (limits.ts). */
  readonly writeBudget: ByteBudget;
  readonly responseBudget: ByteBudget;
  /** A connection was closed because it went past a limit (counted for /metrics). */
  limitExceeded(kind: string): void;
  /** Failed logins per initiator name and peer address (undefined: not throttled). */
  readonly loginThrottle: LoginThrottle | undefined;
  /** A login failed with an initiator error, or was refused by the throttle (for /metrics). */
  loginFailed(refused: boolean): void;
  /** Counts for /metrics: PDUs framed (decodable or not), logins that reached full feature phase. */
  readonly counts: { pdusReceived: number; fullFeatureLogins: number };
  dropTargetSessions(targetName: string): void;
  connectionClosed(conn: Connection): void;
}

export interface LocalPortal {
  address: string;
  port: number;
}

/** The initiator's end of the TCP connection. */
export interface PeerAddress {
  address: string;
  port: number;
}

type ConnectionState = 'login' | 'fullFeature' | 'closing' | 'closed';

export class Connection implements SessionConnection, LoginHost {
  cid = 0;
  session: Session | null = null;
  private state: ConnectionState = 'login';
  private statSN = 0;
  private statSNStarted = false;
  private readonly framer = new PduFramer({
    maxDataSegmentLength: TARGET_MAX_RECV_DATA_SEGMENT_LENGTH,
    placeData: (bhs, dataLength) => this.placeData(bhs, dataLength),
  });
  /** Write buffers allocated for immediate data placed by the framer, by the placed slice. */
  private readonly immediateWriteBuffers = new WeakMap<Buffer, Buffer>();
  /** A write whose Data-Out is complete but whose buffer the framer is still copying an extra
   *  (overlapping) Data-Out into: it runs once that PDU is through (see deferIfPlacing). */
  private deferredTask: ScsiTask | undefined;
  private digests = { headerDigest: false, dataDigest: false };
  private readonly login: LoginMachine;
  private loginCmdSN = 0;
  private params!: OperationalParams;
  private readonly text: TextExchange;
  private readonly textNegotiator = new Negotiator();
  private lastTtt = 0;
  private drainWaiters: Array<() => void> = [];
  private corkedForTurn = false;
  private idleWaiters: Array<() => void> = [];
  /** Responses being written (a task leaves the task map before its Data-In is all sent). */
  private responsesInProgress = 0;
  private readonly loginTimer: NodeJS.Timeout;
  /** Checks the stall limits (a PDU, the output, R2Ts) a few times per stallTimeoutMs. */
  private readonly progressTimer: NodeJS.Timeout;
  /** When the PDU being received began (0: between PDUs). */
  private pduStartedMs = 0;
  /** Since when the peer has not read what we wrote (0: it has). */
  private outputBlockedMs = 0;
  /** This connection's share of the portal's write-buffer and response budgets. */
  private readonly writeBudget: ByteBudget;
  private readonly responseBudget: ByteBudget;
  /** Tasks holding budget, to give it back once (and all of it when the connection closes). */
  private readonly reservingTasks = new Set<ScsiTask>();
  /** Tasks waiting, in order, for budget before they solicit data (R2T) or run. */
  private readonly budgetQueue: Array<{ task: ScsiTask; kind: 'write' | 'response'; bytes: number; go: () => void }> = [];
  private readonly budgetRetry = (): void => this.runBudgetQueue();
  private nopTimer: NodeJS.Timeout | undefined;
  private nopTimeout: NodeJS.Timeout | undefined;
  private pendingPingTtt: number | undefined;
  private receivedSincePing = true;

  constructor(
    private readonly socket: Duplex,
    private readonly ctx: ConnectionContext,
    private readonly portal: LocalPortal,
    private readonly peerAddress: PeerAddress = { address: 'unknown', port: 0 },
  ) {
    const limits = ctx.limits;
    this.login = new LoginMachine(this);
    this.text = new TextExchange(() => this.allocateTtt(), limits.maxTextBytes);
    this.writeBudget = new ByteBudget(limits.connectionWriteBufferBytes, ctx.writeBudget);
    this.responseBudget = new ByteBudget(limits.connectionResponseBytes, ctx.responseBudget);
    this.loginTimer = setTimeout(() => {
      if (this.state === 'login') this.closeForLimit('login', `login not complete within ${limits.loginTimeoutMs} ms`);
    }, limits.loginTimeoutMs);
    this.loginTimer.unref();
    this.progressTimer = setInterval(() => this.checkProgress(), Math.max(10, Math.min(1000, limits.stallTimeoutMs / 4)));
    this.progressTimer.unref();
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('error', (err: Error) => this.close(`socket error: ${err.message}`));
    socket.on('end', () => this.close('peer closed'));
    socket.on('close', () => this.close('socket closed'));
  }

  get registry(): TargetRegistry {
    return this.ctx.registry;
  }

  get portalGroupTag(): number {
    return this.ctx.portalGroupTag;
  }

  /** "address:port" of the peer, for the log. */
  get peer(): string {
    return `${this.peerAddress.address}:${this.peerAddress.port}`;
  }

  get maxTextBytes(): number {
    return this.ctx.limits.maxTextBytes;
  }

  private get isOpen(): boolean {
    return this.state === 'login' || this.state === 'fullFeature';
  }

  get isFullFeature(): boolean {
    return this.state === 'fullFeature';
  }

  // ---- input ------------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    // Closing: what is still sent is not even framed (a refused peer cannot make us work).
    if (this.state === 'closed' || this.state === 'closing') return;
    this.receivedSincePing = true;
    let events: FramerEvent[];
    try {
      events = this.framer.push(chunk);
    } catch (err) {
      this.ctx.log.warn('iSCSI framing lost, dropping connection', { err: String(err) });
      this.close('framing error');
      return;
    }
    this.ctx.counts.pdusReceived += events.length;
    for (const ev of events) {
      if (!this.isOpen) return;
      try {
        this.onEvent(ev);
      } catch (err) {
        this.ctx.log.error('PDU handling failed', { err: err instanceof Error ? err.stack : String(err) });
        if (err instanceof IscsiError && err.fatal) this.close(err.message);
      }
    }
    this.runDeferredTask();
    if (!this.isOpen) return;
    // RFC 7143 does not bound a PDU's arrival; we do (limits.stallTimeoutMs, checkProgress).
    if (this.framer.midPdu) {
      if (events.length > 0 || this.pduStartedMs === 0) this.pduStartedMs = performance.now();
    } else this.pduStartedMs = 0;
    // Answers to what was just read (NOP-In, Reject, Text) back up when the peer does not read:
    // stop reading it until it does; past four times the limit it is dropped.
    const backlog = this.socket.writableLength;
    if (backlog > 4 * this.ctx.limits.connectionResponseBytes) {
      this.closeForLimit('output', `${backlog} bytes of responses unread by the peer`);
    } else if (backlog > this.ctx.limits.connectionResponseBytes) {
      this.socket.pause();
      if (this.outputBlockedMs === 0) this.outputBlockedMs = performance.now();
    }
  }

  /** The stall limits (limits.stallTimeoutMs): a PDU, output, or solicited data making no progress. */
  private checkProgress(): void {
    if (!this.isOpen) return;
    const now = performance.now();
    const limitMs = this.ctx.limits.stallTimeoutMs;
    if (this.pduStartedMs > 0 && now - this.pduStartedMs > limitMs) {
      return this.closeForLimit('stall', `a PDU begun ${Math.round(now - this.pduStartedMs)} ms ago is not complete (limit ${limitMs} ms)`);
    }
    if (this.outputBlockedMs > 0 && now - this.outputBlockedMs > limitMs) {
      return this.closeForLimit('stall', `the peer has not read its responses for ${Math.round(now - this.outputBlockedMs)} ms (limit ${limitMs} ms)`);
    }
    for (const task of this.session?.tasks.values() ?? []) {
      if (task.awaitingSolicitedData && task.state === 'collecting' && now - task.lastDataProgressMs > limitMs) {
        return this.closeForLimit('stall', `R2T for task 0x${task.itt.toString(16)} unanswered for ${Math.round(now - task.lastDataProgressMs)} ms (limit ${limitMs} ms)`);
      }
    }
  }

  /** Closes a connection that went past a limit, with one log line naming peer and initiator. */
  private closeForLimit(kind: string, message: string): void {
    if (!this.isOpen) return;
    this.ctx.log.warn('iSCSI connection closed: limit exceeded', {
      limit: kind,
      peer: this.peer,
      initiator: this.session?.initiatorName ?? this.login.initiatorName ?? '',
      reason: message,
    });
    this.ctx.limitExceeded(kind);
    this.close(`limit exceeded: ${message}`);
  }

  private onEvent(ev: FramerEvent): void {
    if (ev.kind === 'reject') {
      if (this.state === 'login') return this.close('undecodable PDU during login');
      return this.sendReject(ev.bhs, ev.reason);
    }
    if (ev.kind === 'dataDigestError') return this.onDataDigestError(ev.bhs, ev.pdu);
    const pdu = ev.pdu;
    if (this.state === 'login') {
      if (pdu.opcode !== Opcode.LOGIN_REQUEST) return this.close(`opcode 0x${pdu.opcode.toString(16)} during login`);
      return this.onLogin(pdu);
    }
    this.onFullFeaturePdu(pdu);
  }

  private onFullFeaturePdu(pdu: Pdu): void {
    const session = this.session!;
    if (session.type === 'discovery' &&
        pdu.opcode !== Opcode.TEXT_REQUEST && pdu.opcode !== Opcode.LOGOUT_REQUEST && pdu.opcode !== Opcode.NOP_OUT) {
      // RFC 7143 4.3: a discovery session carries Text, Logout and NOP only.
      return this.rejectCommand(pdu, RejectReason.PROTOCOL_ERROR);
    }
    switch (pdu.opcode) {
      case Opcode.SCSI_COMMAND:
        return this.onScsiCommand(pdu);
      case Opcode.SCSI_DATA_OUT:
        return this.onDataOut(pdu);
      case Opcode.NOP_OUT:
        return this.onNopOut(pdu);
      case Opcode.TASK_MGMT_REQUEST:
        return this.onTaskMgmt(pdu);
      case Opcode.TEXT_REQUEST:
        return this.onText(pdu);
      case Opcode.LOGOUT_REQUEST:
        return this.onLogout(pdu);
      case Opcode.SNACK_REQUEST:
        // RFC 7143 11.16: SNACK needs ErrorRecoveryLevel > 0.
        return this.sendReject(encodeBhs(pdu), RejectReason.COMMAND_NOT_SUPPORTED);
      default:
        return this.sendReject(encodeBhs(pdu), RejectReason.PROTOCOL_ERROR);
    }
  }

  /** Rejects a command PDU; a non-immediate one still uses up its CmdSN so the window moves on. */
  private rejectCommand(pdu: Pdu, reason: number): void {
    this.sendReject(encodeBhs(pdu), reason);
    if ('cmdSN' in pdu && !pdu.immediate && pdu.opcode !== Opcode.LOGIN_REQUEST) {
      this.session?.admit(pdu.cmdSN, false, () => this.session?.commandCompleted());
    }
  }

  /** RFC 7143 7.8 / 11.17.1: a data digest error is rejected; at ERL 0 a write task fails. */
  private onDataDigestError(bhs: Buffer, pdu: Pdu): void {
    if (this.state === 'login') return this.close('data digest error during login');
    if (pdu.opcode === Opcode.SCSI_DATA_OUT) {
      this.sendReject(bhs, RejectReason.DATA_DIGEST_ERROR);
      const task = this.session?.tasks.get(pdu.itt);
      if (task !== undefined) this.failTask(task, PROTOCOL_SERVICE_CRC_ERROR);
      return;
    }
    this.sendReject(bhs, RejectReason.DATA_DIGEST_ERROR);
    if ('cmdSN' in pdu && !pdu.immediate && pdu.opcode !== Opcode.LOGIN_REQUEST) {
      this.session?.admit(pdu.cmdSN, false, () => this.session?.commandCompleted());
    }
  }

  // ---- data placement (framer.ts) -------------------------------------------------------------

  /**
   * Where a data segment lands, from its header, before the PDU is handed up: a write's data is
   * copied once, from the socket's chunks straight into the task's buffer of Expected Data
   * Transfer Length bytes — Data-Out at its Buffer Offset (RFC 7143 11.7.5), immediate data at 0
   * (11.3). Anything else (text, NOP data, PDUs we will refuse) is left to the framer.
   */
  private placeData(bhs: Buffer, dataLength: number): Buffer | undefined {
    if (this.state !== 'fullFeature' || this.session === null || this.session.type !== 'normal') return undefined;
    const opcode = bhs[0]! & 0x3f;
    if (opcode === Opcode.SCSI_DATA_OUT) {
      const task = this.session.tasks.get(bhs.readUInt32BE(16));
      return task?.placeDataOut(bhs.readUInt32BE(20), bhs.readUInt32BE(40), dataLength);
    }
    if (opcode === Opcode.SCSI_COMMAND && this.params.immediateData) {
      // Only within the write budget (and so never more than the write limit); otherwise the
      // immediate data stays in the framer's buffer until the task's buffer is reserved.
      const writeBuffer = writeBufferFor(bhs, dataLength, (bytes) =>
        this.budgetQueue.length === 0 && bytes <= this.ctx.limits.connectionWriteBufferBytes && this.writeBudget.tryReserve(bytes));
      if (writeBuffer === undefined) return undefined;
      const placed = writeBuffer.subarray(0, dataLength);
      this.immediateWriteBuffers.set(placed, writeBuffer);
      return placed;
    }
    return undefined;
  }

  /** True (and the task is remembered) when the framer is still filling this task's buffer: an
   *  initiator sent Data-Out beyond what completes the command; that PDU will fail the task. */
  private deferIfPlacing(task: ScsiTask): boolean {
    const placing = this.framer.placingInto;
    if (placing === undefined || !task.holdsBuffer(placing)) return false;
    this.deferredTask = task;
    return true;
  }

  private runDeferredTask(): void {
    const task = this.deferredTask;
    if (task === undefined || this.deferIfPlacing(task)) return;
    this.deferredTask = undefined;
    if (task.state === 'collecting' && task.allDataReceived && this.isOpen) this.executeTask(task);
  }

  // ---- login ------------------------------------------------------------------------------------

  private onLogin(req: LoginRequest): void {
    if (!this.statSNStarted) {
      // RFC 7143 11.13.4: the first Login Response starts the connection's StatSN.
      this.statSN = req.expStatSN;
      this.statSNStarted = true;
      this.cid = req.cid;
      this.loginCmdSN = req.cmdSN;
    }
    const throttle = this.ctx.loginThrottle;
    const initiatorName = this.login.initiatorName || initiatorNameOf(req.data);
    if (throttle !== undefined && this.login.initiatorName === '') {
      const refusedForMs = throttle.refusedForMs(initiatorName, this.peerAddress.address);
      if (refusedForMs > 0) {
        // RFC 7143 11.13.5 0301 service unavailable: the initiator may try again later.
        this.ctx.loginFailed(true);
        this.ctx.log.warn('login refused: too many failed logins', { peer: this.peer, initiator: initiatorName, refusedForMs });
        this.finishLogin(req, LoginStatus.SERVICE_UNAVAILABLE);
        return;
      }
    }
    const reply = this.login.handle(req);
    if (reply.outcome === 'failed') {
      const status = (reply.response.statusClass << 8) | reply.response.statusDetail;
      const fields = { status: `0x${status.toString(16).padStart(4, '0')}`, peer: this.peer, initiator: initiatorName, error: reply.error };
      if (throttle !== undefined && reply.response.statusClass === LOGIN_STATUS_CLASS_INITIATOR_ERROR) {
        // Held back, longer with every failure in a row (login-throttle.ts); nothing more is read.
        const { delayMs, failures } = throttle.recordFailure(initiatorName, this.peerAddress.address);
        this.ctx.loginFailed(false);
        this.ctx.log.warn('login failed', { ...fields, failures, delayMs });
        this.state = 'closing';
        this.socket.pause();
        setTimeout(() => {
          if (this.state !== 'closing') return; // closed meanwhile
          this.state = 'login';
          this.finishLogin(req, reply.response);
        }, delayMs).unref();
        return;
      }
      this.ctx.log.info('login failed', fields);
      this.finishLogin(req, reply.response);
      return;
    }
    const session = this.session;
    this.write({
      ...reply.response,
      statSN: this.nextStatSN(),
      expCmdSN: session?.expCmdSN ?? this.loginCmdSN,
      maxCmdSN: session?.maxCmdSN ?? this.loginCmdSN,
    });
    if (reply.outcome === 'fullFeature') {
      throttle?.recordSuccess(initiatorName, this.peerAddress.address);
      this.ctx.counts.fullFeatureLogins++;
      this.state = 'fullFeature';
      clearTimeout(this.loginTimer);
      // RFC 7143 13.1: digests start with the first PDU after the Login Response.
      this.digests = { headerDigest: this.params.headerDigest, dataDigest: this.params.dataDigest };
      this.framer.setDigests(this.params.headerDigest, this.params.dataDigest);
      this.startNopTimer();
    }
  }

  /** Sends a failing Login Response (`response`, or one with this status) and closes. */
  private finishLogin(req: LoginRequest, response: LoginReplyPdu | number): void {
    if (this.state !== 'login') return;
    const pdu: LoginReplyPdu = typeof response === 'number'
      ? {
          opcode: Opcode.LOGIN_RESPONSE, immediate: false, ahs: EMPTY, data: EMPTY, transit: false, continue: false,
          csg: req.csg, nsg: 0, versionMax: 0, versionActive: 0, isid: req.isid, tsih: 0, itt: req.itt,
          statusClass: response >> 8, statusDetail: response & 0xff,
        }
      : response;
    this.write({ ...pdu, statSN: this.nextStatSN(), expCmdSN: this.loginCmdSN, maxCmdSN: this.loginCmdSN });
    this.closeAfterFlush('login failed');
  }

  checkContinuation(args: { tsih: number; isid: Buffer; initiatorName: string; targetName: string; cid: number }): number {
    const s = this.ctx.sessions.get(args.tsih);
    if (s === undefined || s.isEnded || s.initiatorName !== args.initiatorName || !s.isid.equals(args.isid) ||
        s.targetName !== args.targetName) {
      return LoginStatus.SESSION_DOES_NOT_EXIST;
    }
    // MaxConnections is 1: only the connection with the same CID may be reinstated.
    if (s.connection !== null && s.connection.cid !== args.cid) return LoginStatus.TOO_MANY_CONNECTIONS;
    return 0;
  }

  bind(result: LoginResult): number {
    const { sessions, log } = this.ctx;
    if (result.tsih !== 0) {
      // RFC 7143 6.3.4 connection reinstatement: the old connection's tasks end with it (ERL 0).
      const session = sessions.get(result.tsih);
      if (session === undefined || session.isEnded) {
        throw new IscsiError('ISCSI_LOGIN', 'session gone', { loginStatus: LoginStatus.SESSION_DOES_NOT_EXIST });
      }
      const old = session.connection;
      session.connection = this;
      this.session = session;
      for (const task of [...session.tasks.values()]) this.abortTask(task);
      old?.close('connection reinstated');
      this.params = {
        ...session.params,
        initiatorMaxRecvDataSegmentLength: result.params.initiatorMaxRecvDataSegmentLength,
        targetMaxRecvDataSegmentLength: result.params.targetMaxRecvDataSegmentLength,
        headerDigest: result.params.headerDigest,
        dataDigest: result.params.dataDigest,
      };
      return session.tsih;
    }
    // RFC 7143 6.3.5 session reinstatement: same initiator, ISID and target replaces the old session.
    const targetName = result.target?.name ?? '';
    const existing = sessions.findByIdentity(result.initiatorName, result.isid, targetName);
    if (existing !== undefined) this.endSession(existing, 'session reinstated');
    const session = new Session({
      tsih: sessions.allocateTsih(),
      type: result.sessionType,
      initiatorName: result.initiatorName,
      isid: result.isid,
      target: result.target,
      params: result.params,
      cmdSN: result.cmdSN,
      portalGroupTag: this.ctx.portalGroupTag,
      commandWindow: this.ctx.limits.commandWindow,
    });
    sessions.add(session);
    session.connection = this;
    this.session = session;
    this.params = result.params;
    log.info('session started', {
      initiator: result.initiatorName,
      target: targetName,
      type: result.sessionType,
      tsih: session.tsih,
    });
    return session.tsih;
  }

  private endSession(session: Session, reason: string): void {
    session.end(this.ctx.log, reason);
    this.ctx.sessions.remove(session);
  }

  // ---- SCSI commands ----------------------------------------------------------------------------

  private onScsiCommand(cmd: ScsiCommandPdu): void {
    const session = this.session!;
    // A write buffer placeData reserved for this command's immediate data.
    const placedBuffer = this.immediateWriteBuffers.get(cmd.data);
    this.immediateWriteBuffers.delete(cmd.data);
    const refuse = (reason: number, message?: string): void => {
      if (placedBuffer !== undefined) this.writeBudget.release(placedBuffer.length);
      if (message !== undefined) this.ctx.log.warn('SCSI Command rejected', { itt: cmd.itt, peer: this.peer, initiator: session.initiatorName, reason: message });
      this.rejectCommand(cmd, reason);
    };
    const invalid = ScsiTask.validate(cmd, this.params, this.ctx.limits.connectionWriteBufferBytes);
    if (invalid !== null) return refuse(RejectReason.PROTOCOL_ERROR, invalid);
    if (session.tasks.has(cmd.itt)) return refuse(RejectReason.TASK_IN_PROGRESS);
    if (session.tasks.size >= this.ctx.limits.maxTasks) {
      // Non-immediate commands are bounded by the CmdSN window (commandWindow <= maxTasks);
      // immediate ones are not: RFC 7143 11.17.1 reason 0x06.
      return refuse(RejectReason.IMMEDIATE_COMMAND_REJECT, `more than ${this.ctx.limits.maxTasks} tasks in progress`);
    }
    const lun = decodeLun(cmd.lun);
    const lu = lun === null ? undefined : session.target!.luns.get(lun);
    const task = new ScsiTask(cmd, this.params, lun, lu, placedBuffer);
    if (placedBuffer !== undefined) {
      if (task.writeBufferNeeded === 0 && task.dataOut === placedBuffer) {
        task.writeBufferReserved = placedBuffer.length;
        this.reservingTasks.add(task);
      } else this.writeBudget.release(placedBuffer.length);
    }
    session.tasks.set(cmd.itt, task);
    if (!session.admit(cmd.cmdSN, cmd.immediate, () => this.startTask(task))) {
      // RFC 7143 4.2.2.1: outside the window or a duplicate: silently ignored.
      session.tasks.delete(cmd.itt);
      this.releaseBudget(task);
    }
  }

  /** The command's turn in CmdSN order: solicit its data or run it. */
  private startTask(task: ScsiTask): void {
    if (task.state === 'aborted') return;
    if (task.failure !== undefined) return this.completeWithSense(task, task.failure);
    task.state = 'collecting';
    this.proceed(task);
  }

  /**
   * Moves a collecting write on: its buffer is reserved first (limits.ts; waiting, in order, while
   * the budget is spent: no R2T goes out meanwhile), then R2Ts are sent, or, once all its data
   * is in, it runs.
   */
  private proceed(task: ScsiTask): void {
    if (task.state !== 'collecting' || !this.isOpen) return;
    const needed = task.writeBufferNeeded;
    if (needed > 0) {
      return this.reserveInOrder(task, 'write', needed, () => {
        task.provideBuffer(Buffer.alloc(needed));
        this.proceed(task);
      });
    }
    if (task.allDataReceived) {
      if (!this.deferIfPlacing(task)) this.executeTask(task);
    } else this.sendR2Ts(task);
  }

  // ---- budgets (limits.ts) -------------------------------------------------------------------------

  /** Reserves `bytes` for `task` now if nothing waits before it and they fit, else queues `go`. */
  private reserveInOrder(task: ScsiTask, kind: 'write' | 'response', bytes: number, go: () => void): void {
    if (this.budgetQueue.length === 0 && this.reserveNow(task, kind, bytes)) return go();
    this.budgetQueue.push({ task, kind, bytes, go });
    this.runBudgetQueue();
  }

  private reserveNow(task: ScsiTask, kind: 'write' | 'response', bytes: number): boolean {
    const budget = kind === 'write' ? this.writeBudget : this.responseBudget;
    if (!budget.tryReserve(bytes)) return false;
    if (kind === 'write') task.writeBufferReserved += bytes;
    else task.responseReserved += bytes;
    this.reservingTasks.add(task);
    return true;
  }

  private runBudgetQueue(): void {
    this.writeBudget.forget(this.budgetRetry);
    this.responseBudget.forget(this.budgetRetry);
    while (this.budgetQueue.length > 0 && this.isOpen) {
      const head = this.budgetQueue[0]!;
      if (head.task.state === 'aborted' || head.task.state === 'done') {
        this.budgetQueue.shift();
        continue;
      }
      if (!this.reserveNow(head.task, head.kind, head.bytes)) {
        (head.kind === 'write' ? this.writeBudget : this.responseBudget).whenReleased(this.budgetRetry);
        return;
      }
      this.budgetQueue.shift();
      head.go();
    }
  }

  /** Gives back what a task holds (once). */
  private releaseBudget(task: ScsiTask): void {
    if (!this.reservingTasks.delete(task)) return;
    this.writeBudget.release(task.writeBufferReserved);
    this.responseBudget.release(task.responseReserved);
    task.writeBufferReserved = task.responseReserved = 0;
  }

  private sendR2Ts(task: ScsiTask): void {
    task.lastDataProgressMs = performance.now();
    for (const r of task.nextR2Ts(() => this.allocateTtt())) {
      this.write({
        opcode: Opcode.R2T,
        immediate: false,
        ahs: EMPTY,
        data: EMPTY,
        lun: task.cmd.lun,
        itt: task.itt,
        ttt: r.ttt,
        ...this.sequenceNumbers(false),
        r2tSN: r.r2tSN,
        bufferOffset: r.bufferOffset,
        desiredDataTransferLength: r.desiredDataTransferLength,
      });
    }
  }

  private onDataOut(pdu: DataOut): void {
    const task = this.session!.tasks.get(pdu.itt);
    if (task === undefined) return; // the task was aborted or failed: its data is discarded
    const result = task.acceptDataOut(pdu);
    if (typeof result === 'object') {
      this.ctx.log.warn('Data-Out rejected', { itt: pdu.itt, reason: result.message });
      this.sendReject(encodeBhs(pdu), RejectReason.INVALID_PDU_FIELD);
      return this.failTask(task, result.error);
    }
    task.lastDataProgressMs = performance.now();
    if (task.state !== 'collecting') return; // still waiting for its CmdSN
    if (result === 'dataComplete' || result === 'burstComplete') this.proceed(task);
  }

  /** A task that cannot complete normally ends with CHECK CONDITION (at once, or at its CmdSN turn). */
  private failTask(task: ScsiTask, sense: SenseCode): void {
    if (task.state === 'waitingForCmdSN') task.failure = sense;
    else if (task.state === 'collecting') this.completeWithSense(task, sense);
  }

  private completeWithSense(task: ScsiTask, sense: SenseCode): void {
    task.state = 'executing';
    void this.finishTask(task, { status: ScsiStatus.CHECK_CONDITION, sense: buildFixedSense(sense) });
  }

  /** Runs the task once its Data-In fits the response budget (a read's EDTL, at most the
   *  connection's limit): commands whose answers the peer does not read wait here. */
  private executeTask(task: ScsiTask): void {
    task.state = 'executing';
    const bytes = task.cmd.read ? Math.min(task.cmd.expectedDataTransferLength, this.ctx.limits.connectionResponseBytes) : 0;
    if (bytes === 0) return void this.runTask(task);
    this.reserveInOrder(task, 'response', bytes, () => void this.runTask(task));
  }

  private async runTask(task: ScsiTask): Promise<void> {
    const session = this.session!;
    let response: ScsiResponse;
    const fabric = fabricCommand(task.cmd.cdb, task.lu, session.target!.luns.keys());
    if (fabric !== null) {
      response = 'sense' in fabric
        ? { status: ScsiStatus.CHECK_CONDITION, sense: fabric.sense }
        : { status: ScsiStatus.GOOD, dataIn: fabric.dataIn };
    } else {
      try {
        const execution = task.lu!.execute({
          nexus: session.nexus,
          cdb: task.cmd.cdb,
          taskAttr: task.cmd.taskAttr,
          expectedDataTransferLength: task.cmd.expectedDataTransferLength,
          dataOut: task.dataOut,
          signal: task.abortController.signal,
        });
        task.execution = execution;
        response = await execution;
      } catch (err) {
        this.ctx.log.error('logical unit failed', {
          lun: task.lun,
          op: `0x${task.cmd.cdb[0]!.toString(16)}`,
          err: err instanceof Error ? err.stack : String(err),
        });
        response = { status: ScsiStatus.CHECK_CONDITION, sense: buildFixedSense(Sense.INTERNAL_TARGET_FAILURE) };
      }
    }
    await this.finishTask(task, response);
  }

  private async finishTask(task: ScsiTask, response: ScsiResponse): Promise<void> {
    if (task.state === 'aborted' || this.state === 'closed') return;
    const session = this.session!;
    task.state = 'done';
    session.tasks.delete(task.itt);
    this.releaseSlot(task);
    this.responsesInProgress++;
    try {
      await this.sendTaskResponse(task, response);
    } catch (err) {
      this.ctx.log.error('sending a response failed', { itt: task.itt, err: String(err) });
      this.close('response failed');
    } finally {
      this.responsesInProgress--;
      this.releaseBudget(task);
    }
    this.notifyIdle();
  }

  /** The command's CmdSN slot is free again (RFC 7143 4.2.2.1: MaxCmdSN moves on). */
  private releaseSlot(task: ScsiTask): void {
    if (task.cmd.immediate || task.slotReleased) return;
    task.slotReleased = true;
    this.session?.commandCompleted();
  }

  /**
   * RFC 7143 11.7 / 11.4: Data-In (status in the last PDU when there is no sense), else a SCSI
   * Response carrying the sense; residuals per 11.4.5.
   */
  private async sendTaskResponse(task: ScsiTask, response: ScsiResponse): Promise<void> {
    const cmd = task.cmd;
    const edtl = cmd.expectedDataTransferLength;
    const sense = response.sense !== undefined && response.sense.length > 0 ? response.sense : undefined;
    const dataIn = cmd.read ? response.dataIn : undefined;
    if (dataIn !== undefined && dataIn.length > 0 && edtl > 0) {
      const res = residual(edtl, dataIn.length);
      const statusInData = sense === undefined;
      await this.sendDataIn(task, dataIn, Math.min(edtl, dataIn.length), statusInData ? response.status : null, res);
      if (!statusInData && task.state !== 'aborted') this.sendScsiResponse(task, response.status, sense, res);
      return;
    }
    let res: ReturnType<typeof residual>;
    if (cmd.write && !cmd.read) {
      const unused = Math.min(response.dataOutResidual ?? 0, edtl);
      // The Residual Count field is 32 bits (RFC 7143 11.4.5.1): a larger shortfall saturates.
      const missing = Math.min(response.dataOutOverflow ?? 0, 0xffff_ffff);
      res = missing > 0
        ? { overflow: true, underflow: false, residualCount: missing }
        : { overflow: false, underflow: unused > 0, residualCount: unused };
    } else {
      res = residual(edtl, response.dataIn?.length ?? 0);
    }
    this.sendScsiResponse(task, response.status, sense, res);
  }

  private sendScsiResponse(
    task: ScsiTask,
    status: number,
    sense: Buffer | undefined,
    res: { overflow: boolean; underflow: boolean; residualCount: number },
  ): void {
    // RFC 7143 11.4.7: the data segment is SenseLength (2 bytes) then the sense data, sent as
    // they are (no copy of the sense into one buffer).
    let data: Buffer[] = [];
    if (sense !== undefined) {
      const senseLength = Buffer.allocUnsafe(2);
      senseLength.writeUInt16BE(sense.length, 0);
      data = [senseLength, sense];
    }
    this.write({
      opcode: Opcode.SCSI_RESPONSE,
      immediate: false,
      ahs: EMPTY,
      data: EMPTY,
      bidiOverflow: false,
      bidiUnderflow: false,
      overflow: res.overflow,
      underflow: res.underflow,
      response: 0,
      status,
      itt: task.itt,
      snackTag: 0,
      ...this.sequenceNumbers(true),
      expDataSN: task.cmd.read ? task.dataSN : task.r2tSN,
      bidiResidualCount: 0,
      residualCount: res.residualCount,
    }, data);
  }

  private async sendDataIn(
    task: ScsiTask,
    data: Buffer,
    lengthBytes: number,
    status: number | null,
    res: { overflow: boolean; underflow: boolean; residualCount: number },
  ): Promise<void> {
    const socket = this.socket;
    socket.cork();
    try {
      for (const seg of planDataIn(lengthBytes, this.params.initiatorMaxRecvDataSegmentLength, this.params.maxBurstLength)) {
        if (task.state === 'aborted' || this.state === 'closed') return;
        const withStatus = seg.last && status !== null;
        // The PDU's data is a slice of the LU's read buffer, written as its own iovec.
        const writable = this.write({
          opcode: Opcode.SCSI_DATA_IN,
          immediate: false,
          ahs: EMPTY,
          data: EMPTY,
          final: seg.final,
          acknowledge: false,
          overflow: withStatus && res.overflow,
          underflow: withStatus && res.underflow,
          statusPresent: withStatus,
          status: withStatus ? status : 0,
          lun: task.cmd.lun,
          itt: task.itt,
          ttt: RESERVED_TAG,
          ...this.sequenceNumbers(withStatus),
          dataSN: task.dataSN++,
          bufferOffset: seg.offsetBytes,
          residualCount: withStatus ? res.residualCount : 0,
        }, [data.subarray(seg.offsetBytes, seg.offsetBytes + seg.lengthBytes)], seg.last ? () => giveBackReadBuffer(data) : undefined);
        if (!writable && !seg.last) {
          socket.uncork();
          await this.drained();
          socket.cork();
        }
      }
    } finally {
      socket.uncork();
    }
  }

  // ---- NOP, task management, text, logout --------------------------------------------------------

  private onNopOut(pdu: NopOut): void {
    if (pdu.ttt !== RESERVED_TAG) {
      // RFC 7143 11.18.3: the answer to our NOP-In ping.
      if (pdu.ttt === this.pendingPingTtt) this.clearPing();
      return;
    }
    if (pdu.itt === RESERVED_TAG) return; // RFC 7143 11.18.2: no answer wanted
    const session = this.session!;
    session.admit(pdu.cmdSN, pdu.immediate, () => {
      // RFC 7143 11.19: the ping answer echoes the ping data.
      this.write({
        opcode: Opcode.NOP_IN,
        immediate: false,
        ahs: EMPTY,
        data: pdu.data,
        lun: pdu.lun,
        itt: pdu.itt,
        ttt: RESERVED_TAG,
        ...this.sequenceNumbers(true),
      });
      if (!pdu.immediate) session.commandCompleted();
    });
  }

  private onTaskMgmt(req: TaskMgmtRequest): void {
    const session = this.session!;
    session.admit(req.cmdSN, req.immediate, () => void this.taskManagementResponse(req));
  }

  /**
   * SAM-5 7.1: the response goes out only once the logical unit has finished with every aborted
   * task, so no aborted write can land after the initiator was told it is gone.
   */
  private async taskManagementResponse(req: TaskMgmtRequest): Promise<void> {
    const session = this.session!;
    const aborted: Array<Promise<unknown>> = [];
    const response = this.taskManagement(req, aborted);
    if (!req.immediate) session.commandCompleted();
    if (aborted.length > 0) await Promise.allSettled(aborted);
    this.write({
      opcode: Opcode.TASK_MGMT_RESPONSE,
      immediate: false,
      ahs: EMPTY,
      data: EMPTY,
      response,
      itt: req.itt,
      ...this.sequenceNumbers(true),
    });
    this.notifyIdle();
    if (req.function === TaskMgmtFunction.TARGET_COLD_RESET && response === TaskMgmtResponseCode.FUNCTION_COMPLETE) {
      // RFC 7143 11.5.1: after a cold reset the target drops all of its connections.
      const targetName = session.targetName;
      setImmediate(() => this.ctx.dropTargetSessions(targetName));
    }
  }

  /** RFC 7143 11.5.1 / 11.6.1. Aborted tasks get no response of their own. */
  private taskManagement(req: TaskMgmtRequest, aborted: Array<Promise<unknown>>): number {
    const session = this.session!;
    const target = session.target!;
    const lun = decodeLun(req.lun);
    const lu = lun === null ? undefined : target.luns.get(lun);
    const tasksOfLun = (): ScsiTask[] => [...session.tasks.values()].filter((t) => t.lun === lun);
    const abort = (task: ScsiTask): void => {
      if (task.execution !== undefined) aborted.push(task.execution);
      this.abortTask(task);
    };
    try {
      switch (req.function) {
        case TaskMgmtFunction.ABORT_TASK: {
          const task = session.tasks.get(req.referencedTaskTag);
          if (task !== undefined) {
            abort(task);
            return TaskMgmtResponseCode.FUNCTION_COMPLETE;
          }
          // RFC 7143 11.6.1: a command not yet received but within the window and before this
          // request counts as received, so it will never run.
          if (serialLe(session.expCmdSN, req.refCmdSN) && serialLt(req.refCmdSN, req.cmdSN) &&
              session.admit(req.refCmdSN, false, () => session.commandCompleted())) {
            return TaskMgmtResponseCode.FUNCTION_COMPLETE;
          }
          return TaskMgmtResponseCode.TASK_DOES_NOT_EXIST;
        }
        case TaskMgmtFunction.ABORT_TASK_SET:
        case TaskMgmtFunction.CLEAR_TASK_SET:
          if (lu === undefined) return TaskMgmtResponseCode.LUN_DOES_NOT_EXIST;
          for (const t of tasksOfLun()) abort(t);
          return TaskMgmtResponseCode.FUNCTION_COMPLETE;
        case TaskMgmtFunction.CLEAR_ACA:
          // No ACA is ever established (NACA=0 only).
          return TaskMgmtResponseCode.FUNCTION_NOT_SUPPORTED;
        case TaskMgmtFunction.LOGICAL_UNIT_RESET:
          if (lu === undefined) return TaskMgmtResponseCode.LUN_DOES_NOT_EXIST;
          for (const t of tasksOfLun()) abort(t);
          lu.reset('lun');
          return TaskMgmtResponseCode.FUNCTION_COMPLETE;
        case TaskMgmtFunction.TARGET_WARM_RESET:
        case TaskMgmtFunction.TARGET_COLD_RESET: {
          for (const t of [...session.tasks.values()]) abort(t);
          const kind = req.function === TaskMgmtFunction.TARGET_WARM_RESET ? 'target-warm' : 'target-cold';
          for (const u of target.luns.values()) u.reset(kind);
          return TaskMgmtResponseCode.FUNCTION_COMPLETE;
        }
        case TaskMgmtFunction.TASK_REASSIGN:
          // ErrorRecoveryLevel 0: no task reassignment.
          return TaskMgmtResponseCode.TASK_ALLEGIANCE_REASSIGNMENT_NOT_SUPPORTED;
        default:
          return TaskMgmtResponseCode.FUNCTION_REJECTED;
      }
    } catch (err) {
      this.ctx.log.error('task management failed', { function: req.function, err: String(err) });
      return TaskMgmtResponseCode.FUNCTION_REJECTED;
    }
  }

  private abortTask(task: ScsiTask): void {
    task.state = 'aborted';
    task.abortController.abort();
    this.session?.tasks.delete(task.itt);
    this.releaseSlot(task);
    this.releaseBudget(task);
  }

  private onText(req: TextRequest): void {
    const session = this.session!;
    session.admit(req.cmdSN, req.immediate, () => {
      if (!req.immediate) session.commandCompleted();
      let reply;
      try {
        reply = this.text.handle(req, (pairs) => this.answerText(pairs), this.params.initiatorMaxRecvDataSegmentLength);
      } catch (err) {
        const reason = err instanceof IscsiError && err.rejectReason !== undefined ? err.rejectReason : RejectReason.PROTOCOL_ERROR;
        return this.sendReject(encodeBhs(req), reason);
      }
      this.write({
        opcode: Opcode.TEXT_RESPONSE,
        immediate: false,
        ahs: EMPTY,
        data: reply.data,
        final: reply.final,
        continue: reply.continue,
        lun: req.lun,
        itt: req.itt,
        ttt: reply.ttt,
        ...this.sequenceNumbers(true),
      });
    });
  }

  /** Text in full feature phase: SendTargets, and the keys that may be renegotiated. */
  private answerText(pairs: KeyValue[]): KeyValue[] {
    const session = this.session!;
    const answers: KeyValue[] = [];
    const rest: KeyValue[] = [];
    for (const [key, value] of pairs) {
      if (key === 'SendTargets') {
        answers.push(
          ...sendTargets({
            registry: this.ctx.registry,
            initiatorName: session.initiatorName,
            value,
            portals: (this.ctx.advertisedPortals.length > 0 ? this.ctx.advertisedPortals : [this.portal]).map((p) => ({
              address: p.address,
              port: p.port,
              portalGroupTag: this.ctx.portalGroupTag,
            })),
            sessionTarget: session.type === 'normal' ? session.target : undefined,
          }),
        );
      } else {
        rest.push([key, value]);
      }
    }
    answers.push(...this.textNegotiator.respond(rest, { discovery: session.type === 'discovery', phase: 'fullFeature' }));
    if (rest.some(([k]) => k === 'MaxRecvDataSegmentLength')) {
      this.params = {
        ...this.params,
        initiatorMaxRecvDataSegmentLength: Number(this.textNegotiator.value('MaxRecvDataSegmentLength')),
      };
    }
    return answers;
  }

  private onLogout(req: LogoutRequest): void {
    const session = this.session!;
    session.admit(req.cmdSN, req.immediate, () => {
      void this.logout(req).catch((err) => {
        this.ctx.log.error('logout failed', { err: String(err) });
        this.close('logout failed');
      });
    });
  }

  /** RFC 7143 11.14 / 11.15: outstanding commands complete first, then the response, then close. */
  private async logout(req: LogoutRequest): Promise<void> {
    const session = this.session!;
    let response: number;
    if (req.reasonCode === LogoutReason.CLOSE_SESSION) response = LogoutResponseCode.CLOSED;
    else if (req.reasonCode === LogoutReason.CLOSE_CONNECTION) {
      response = req.cid === this.cid ? LogoutResponseCode.CLOSED : LogoutResponseCode.CID_NOT_FOUND;
    } else if (req.reasonCode === LogoutReason.REMOVE_FOR_RECOVERY) {
      response = LogoutResponseCode.RECOVERY_NOT_SUPPORTED;
    } else {
      if (!req.immediate) session.commandCompleted();
      return this.sendReject(encodeBhs(req), RejectReason.INVALID_PDU_FIELD);
    }
    if (response === LogoutResponseCode.CLOSED) {
      while (!this.isIdle && this.state === 'fullFeature') {
        await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      }
    }
    if (this.state !== 'fullFeature') return;
    if (!req.immediate) session.commandCompleted();
    this.write({
      opcode: Opcode.LOGOUT_RESPONSE,
      immediate: false,
      ahs: EMPTY,
      data: EMPTY,
      response,
      itt: req.itt,
      ...this.sequenceNumbers(true),
      time2Wait: response === LogoutResponseCode.RECOVERY_NOT_SUPPORTED ? this.params.defaultTime2Wait : 0,
      time2Retain: 0,
    });
    if (response === LogoutResponseCode.CLOSED) {
      // ERL 0, one connection: closing the connection closes the session. The connection
      // itself closes only once the Logout Response is flushed.
      session.connection = null;
      this.endSession(session, 'logout');
      this.closeAfterFlush('logout');
    }
  }

  /** No task active and no response still being written. */
  private get isIdle(): boolean {
    return (this.session === null || this.session.tasks.size === 0) && this.responsesInProgress === 0;
  }

  private notifyIdle(): void {
    if (this.idleWaiters.length === 0 || !this.isIdle) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** RFC 7143 11.9.1 AsyncEvent 1: the target asks for a logout within `time2WaitS` seconds. */
  requestLogout(time2WaitS: number): void {
    if (this.state !== 'fullFeature') return;
    this.write({
      opcode: Opcode.ASYNC_MESSAGE,
      immediate: false,
      ahs: EMPTY,
      data: EMPTY,
      lun: 0n,
      ...this.sequenceNumbers(true),
      asyncEvent: AsyncEvent.LOGOUT_REQUEST,
      asyncVCode: 0,
      parameter1: 0,
      parameter2: 0,
      parameter3: time2WaitS,
    });
  }

  // ---- NOP-In keepalive (RFC 7143 11.19) ---------------------------------------------------------

  private startNopTimer(): void {
    const interval = this.ctx.nopInIntervalMs;
    if (interval <= 0) return;
    this.nopTimer = setInterval(() => this.maybePing(), interval);
    this.nopTimer.unref();
  }

  private maybePing(): void {
    if (this.state !== 'fullFeature' || this.pendingPingTtt !== undefined) return;
    if (this.receivedSincePing) {
      this.receivedSincePing = false;
      return;
    }
    const ttt = this.allocateTtt();
    this.pendingPingTtt = ttt;
    this.write({
      opcode: Opcode.NOP_IN,
      immediate: false,
      ahs: EMPTY,
      data: EMPTY,
      lun: 0n,
      itt: RESERVED_TAG,
      ttt,
      ...this.sequenceNumbers(false),
    });
    this.nopTimeout = setTimeout(() => {
      if (this.pendingPingTtt === ttt) {
        this.ctx.log.warn('NOP-In not answered, dropping connection', { initiator: this.session?.initiatorName });
        this.close('NOP-In timeout');
      }
    }, this.ctx.nopInTimeoutMs);
    this.nopTimeout.unref();
  }

  private clearPing(): void {
    this.pendingPingTtt = undefined;
    if (this.nopTimeout !== undefined) clearTimeout(this.nopTimeout);
    this.nopTimeout = undefined;
  }

  // ---- output -----------------------------------------------------------------------------------

  private allocateTtt(): number {
    this.lastTtt = this.lastTtt >= 0xfffffffe ? 1 : this.lastTtt + 1;
    return this.lastTtt;
  }

  private nextStatSN(): number {
    const statSN = this.statSN;
    this.statSN = serialAdd(this.statSN, 1);
    return statSN;
  }

  /** StatSN (advanced for PDUs that carry status) and the session's window. */
  private sequenceNumbers(advance: boolean): { statSN: number; expCmdSN: number; maxCmdSN: number } {
    const statSN = advance ? this.nextStatSN() : this.statSN;
    const s = this.session;
    return { statSN, expCmdSN: s?.expCmdSN ?? 0, maxCmdSN: s?.maxCmdSN ?? 0 };
  }

  private sendReject(header: Buffer, reason: number): void {
    this.write({
      opcode: Opcode.REJECT,
      immediate: false,
      ahs: EMPTY,
      data: Buffer.from(header.subarray(0, 48)),
      reason,
      ...this.sequenceNumbers(true),
      dataSN: 0,
    });
  }

  /**
   * Writes one PDU: header, data, padding and digests as separate buffers gathered by cork (one
   * writev), the data never copied. The data segment is `pdu.data`, or `dataParts` (consecutive
   * buffers, e.g. a slice of a read buffer) when given. False when the socket is full.
   */
  private write(pdu: TargetPdu, dataParts?: readonly Buffer[], onFlushed?: () => void): boolean {
    if (this.state === 'closed' || this.state === 'closing') return false;
    this.corkUntilIdle();
    const parts = serializePduParts(pdu, dataParts ?? (pdu.data.length > 0 ? [pdu.data] : []), this.digests);
    // The callback of the last part runs once the socket has handed every part to the kernel.
    const done = onFlushed === undefined ? undefined : (err?: Error | null): void => (err ? undefined : onFlushed());
    if (parts.length === 1) return this.socket.write(parts[0]!, done);
    this.socket.cork();
    let ok = true;
    parts.forEach((p, i) => (ok = this.socket.write(p, i === parts.length - 1 ? done : undefined)));
    this.socket.uncork();
    return ok;
  }

  /** Every PDU written in one turn of the event loop (the responses of all commands that
   *  completed in it) leaves in one writev when the loop reaches its check phase. */
  private corkUntilIdle(): void {
    if (this.corkedForTurn) return;
    this.corkedForTurn = true;
    this.socket.cork();
    setImmediate(() => {
      this.corkedForTurn = false;
      this.socket.uncork();
    });
  }

  private drained(): Promise<void> {
    if (!this.socket.writableNeedDrain || this.state === 'closed') return Promise.resolve();
    if (this.outputBlockedMs === 0) this.outputBlockedMs = performance.now();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private onDrain(): void {
    this.outputBlockedMs = 0;
    if (this.socket.isPaused()) this.socket.resume();
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  // ---- closing ----------------------------------------------------------------------------------

  /** Sends what is queued, then closes (after a failed login or a logout). */
  private closeAfterFlush(reason: string): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.state = 'closing';
    this.socket.pause();
    this.socket.end();
    setTimeout(() => this.close(reason), CLOSE_FLUSH_MS).unref();
  }

  /** Drops the connection now; at ERL 0 its session ends with it. */
  close(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.loginTimer);
    clearInterval(this.progressTimer);
    if (this.nopTimer !== undefined) clearInterval(this.nopTimer);
    this.clearPing();
    for (const task of [...this.reservingTasks]) this.releaseBudget(task);
    this.budgetQueue.length = 0;
    this.writeBudget.forget(this.budgetRetry);
    this.responseBudget.forget(this.budgetRetry);
    // end() first so that a stream peer (duplexPair in tests) sees the end; then let go at once.
    this.socket.end();
    setImmediate(() => this.socket.destroy());
    const session = this.session;
    if (session !== null && session.connection === this) this.endSession(session, reason);
    const waiters = [...this.drainWaiters, ...this.idleWaiters];
    this.drainWaiters = [];
    this.idleWaiters = [];
    for (const w of waiters) w();
    this.ctx.connectionClosed(this);
  }
}
