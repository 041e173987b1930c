// RFC 7143 6.3 login phase as an explicit stage machine:
//   initial -> security (CSG 0) -> operational (CSG 1) -> fullFeature (NSG 3), any -> failed.
// One Login Request in, one Login Response out; CHAP in the security stage (chap.ts), operational
// keys through the Negotiator (negotiation.ts). The connection turns the outcome into a session.

import { ChapAuthenticator } from './chap.js';
import { initiatorAllowed } from './discovery.js';
import { IscsiError } from './errors.js';
import {
  Negotiator,
  encodeTextData,
  parseTextData,
  type KeyValue,
  type OperationalParams,
} from './negotiation.js';
import { LoginStatus, Opcode, type LoginRequest, type LoginResponse } from './pdu/types.js';
import type { TargetConfig, TargetRegistry } from './device.js';

/** RFC 7143 11.12.3 CSG/NSG values. */
export const LoginStageCode = {
  SECURITY: 0,
  OPERATIONAL: 1,
  FULL_FEATURE: 3,
} as const;

export type LoginStage = 'initial' | 'security' | 'operational' | 'fullFeature' | 'failed';

const ALLOWED_TRANSITIONS: Record<LoginStage, readonly LoginStage[]> = {
  initial: ['security', 'operational', 'failed'],
  security: ['operational', 'fullFeature', 'failed'],
  operational: ['fullFeature', 'failed'],
  fullFeature: [],
  failed: [],
};

/** The iSCSI versions this target speaks (RFC 7143 11.12.4: version 0). */
const VERSION = 0;

export type SessionType = 'normal' | 'discovery';

/** A completed login, handed to the connection to create, reinstate or continue a session. */
export interface LoginResult {
  sessionType: SessionType;
  initiatorName: string;
  initiatorAlias?: string;
  target?: TargetConfig;
  isid: Buffer;
  /** The TSIH the initiator sent: 0 for a new session. */
  tsih: number;
  cid: number;
  /** CmdSN of the leading login request: the session's first ExpCmdSN. */
  cmdSN: number;
  params: OperationalParams;
}

export interface LoginHost {
  readonly registry: TargetRegistry;
  readonly portalGroupTag: number;
  /** Text held across Login Requests with the C bit (limits.ts); past it: 0302 out of resources. */
  readonly maxTextBytes: number;
  /** RFC 7143 6.3.1: a login with a nonzero TSIH adds or reinstates a connection; 0 if acceptable,
   *  else the login status to fail with (SESSION DOES NOT EXIST, TOO MANY CONNECTIONS). */
  checkContinuation(args: { tsih: number; isid: Buffer; initiatorName: string; targetName: string; cid: number }): number;
  /** Called once, on the transition to full feature phase; returns the session's TSIH. */
  bind(result: LoginResult): number;
}

/** The Login Response without the sequence numbers, which the connection stamps. */
export type LoginReplyPdu = Omit<LoginResponse, 'statSN' | 'expCmdSN' | 'maxCmdSN'>;

export interface LoginReply {
  response: LoginReplyPdu;
  /** 'continue': more login requests expected; 'fullFeature': the session is bound; 'failed': close. */
  outcome: 'continue' | 'fullFeature' | 'failed';
  result?: LoginResult;
  /** Why a login failed, for the log. */
  error?: string;
}

const LEADING_KEYS = new Set(['InitiatorName', 'TargetName', 'SessionType']);

function loginError(status: number, message: string): IscsiError {
  return new IscsiError('ISCSI_LOGIN', message, { loginStatus: status });
}

function isSecurityKey(key: string): boolean {
  return key === 'AuthMethod' || key.startsWith('CHAP_');
}

export class LoginMachine {
  private stage: LoginStage = 'initial';
  private readonly negotiator = new Negotiator();
  private first: LoginRequest | undefined;
  private leadingKeysSeen = false;
  private pendingText: Buffer[] = [];
  private pendingTextBytes = 0;
  private sessionType: SessionType = 'normal';
  private initiatorNameValue = '';
  private initiatorAlias: string | undefined;
  private target: TargetConfig | undefined;
  private authMethod: 'None' | 'CHAP' | undefined;
  private chap: ChapAuthenticator | undefined;
  private tsih = 0;

  constructor(private readonly host: LoginHost) {}

  /** The InitiatorName of the leading login request, once it has been read ('' before). */
  get initiatorName(): string {
    return this.initiatorNameValue;
  }

  /** The one place the stage changes. */
  private transition(to: LoginStage): void {
    if (!ALLOWED_TRANSITIONS[this.stage].includes(to)) {
      throw loginError(LoginStatus.INITIATOR_ERROR, `login stage ${this.stage} cannot go to ${to}`);
    }
    this.stage = to;
  }

  handle(req: LoginRequest): LoginReply {
    try {
      return this.process(req);
    } catch (err) {
      const status =
        err instanceof IscsiError && err.loginStatus !== undefined ? err.loginStatus : LoginStatus.TARGET_ERROR;
      this.stage = 'failed';
      return {
        response: this.responseFor(req, { transit: false, nsg: 0, data: Buffer.alloc(0), status }),
        outcome: 'failed',
        error: err instanceof Error ? err.message : String(err),
      };
    }
  }

  private responseFor(
    req: LoginRequest,
    r: { transit: boolean; nsg: number; data: Buffer; status: number; continue?: boolean },
  ): LoginReplyPdu {
    return {
      opcode: Opcode.LOGIN_RESPONSE,
      immediate: false,
      ahs: Buffer.alloc(0),
      data: r.data,
      transit: r.transit,
      continue: r.continue ?? false,
      csg: req.csg,
      nsg: r.nsg,
      versionMax: VERSION,
      versionActive: VERSION,
      isid: req.isid,
      tsih: this.tsih,
      itt: req.itt,
      statusClass: r.status >> 8,
      statusDetail: r.status & 0xff,
    };
  }

  private process(req: LoginRequest): LoginReply {
    if (this.stage === 'failed' || this.stage === 'fullFeature') {
      throw loginError(LoginStatus.INITIATOR_ERROR, `Login Request in stage ${this.stage}`);
    }
    if (this.first === undefined) {
      // RFC 7143 11.12.4: Version-min above what we speak.
      if (req.versionMin > VERSION) {
        throw loginError(LoginStatus.UNSUPPORTED_VERSION, `unsupported iSCSI version ${req.versionMin}`);
      }
      this.first = req;
      this.tsih = req.tsih;
    } else if (!req.isid.equals(this.first.isid) || req.tsih !== this.first.tsih || req.cid !== this.first.cid) {
      throw loginError(LoginStatus.INITIATOR_ERROR, 'ISID, TSIH or CID changed during login');
    }

    // RFC 7143 11.12.3: CSG must be the current stage; T and C are exclusive; NSG moves forward.
    if (req.csg !== LoginStageCode.SECURITY && req.csg !== LoginStageCode.OPERATIONAL) {
      throw loginError(LoginStatus.INITIATOR_ERROR, `invalid CSG ${req.csg}`);
    }
    if (this.stage === 'initial') {
      this.transition(req.csg === LoginStageCode.SECURITY ? 'security' : 'operational');
    } else if (req.csg !== (this.stage === 'security' ? LoginStageCode.SECURITY : LoginStageCode.OPERATIONAL)) {
      throw loginError(LoginStatus.INITIATOR_ERROR, `CSG ${req.csg} in stage ${this.stage}`);
    }
    if (req.transit && req.continue) throw loginError(LoginStatus.INITIATOR_ERROR, 'T and C both set');
    if (req.transit) {
      const validNext = req.nsg === LoginStageCode.OPERATIONAL || req.nsg === LoginStageCode.FULL_FEATURE;
      if (!validNext || req.nsg <= req.csg) {
        throw loginError(LoginStatus.INITIATOR_ERROR, `invalid transition CSG ${req.csg} -> NSG ${req.nsg}`);
      }
    }

    // RFC 7143 11.12.2: text spanning several Login Requests (C bit) is acknowledged empty.
    if (req.continue) {
      // Bounded by configuration, not by how many continuations a peer sends (limits.ts).
      this.pendingTextBytes += req.data.length;
      if (this.pendingTextBytes > this.host.maxTextBytes) {
        this.pendingText = [];
        throw loginError(LoginStatus.OUT_OF_RESOURCES, `login text over ${this.host.maxTextBytes} bytes across continuation PDUs`);
      }
      this.pendingText.push(req.data);
      return { response: this.responseFor(req, { transit: false, nsg: 0, data: Buffer.alloc(0), status: 0 }), outcome: 'continue' };
    }
    const text = this.pendingText.length === 0 ? req.data : Buffer.concat([...this.pendingText, req.data]);
    this.pendingText = [];
    this.pendingTextBytes = 0;
    const pairs = parseTextData(text);
    const keys = new Map<string, string>();
    for (const [k, v] of pairs) {
      if (keys.has(k)) throw loginError(LoginStatus.INITIATOR_ERROR, `key ${k} sent twice`);
      keys.set(k, v);
    }

    const answers: KeyValue[] = [];
    if (!this.leadingKeysSeen) {
      // The leading keys come with the first complete request text (possibly after C-bit PDUs).
      this.leadingKeysSeen = true;
      answers.push(...this.leadingLogin(this.first, keys));
    } else this.checkLeadingKeysUnchanged(keys);

    const securityKeys = new Map<string, string>();
    const operational: KeyValue[] = [];
    for (const [k, v] of keys) {
      if (LEADING_KEYS.has(k)) continue;
      if (isSecurityKey(k)) securityKeys.set(k, v);
      else operational.push([k, v]);
    }
    if (this.stage === 'security') {
      answers.push(...this.security(securityKeys));
    } else if (securityKeys.size > 0) {
      throw loginError(LoginStatus.INITIATOR_ERROR, 'security keys outside the security stage');
    }
    answers.push(
      ...this.negotiator.respond(operational, { discovery: this.sessionType === 'discovery', phase: 'login' }),
    );
    const alias = keys.get('InitiatorAlias');
    if (alias !== undefined) this.initiatorAlias = alias;

    // May we move on? Only once authentication (when required) has succeeded.
    let transit = req.transit;
    if (transit && this.stage === 'security' && !this.authenticated()) {
      if (this.chap === undefined) {
        throw loginError(LoginStatus.AUTHENTICATION_FAILURE, 'authentication required');
      }
      transit = false; // CHAP still in progress: stay in the security stage (RFC 7143 6.3)
    }
    if (!transit) {
      return { response: this.responseFor(req, { transit: false, nsg: 0, data: encodeTextData(answers), status: 0 }), outcome: 'continue' };
    }
    if (req.nsg === LoginStageCode.OPERATIONAL) {
      this.transition('operational');
      return {
        response: this.responseFor(req, { transit: true, nsg: req.nsg, data: encodeTextData(answers), status: 0 }),
        outcome: 'continue',
      };
    }
    // Transit to full feature phase: declare our MaxRecvDataSegmentLength if not done yet.
    if (!this.negotiator.ownMaxRecvDataSegmentLengthDeclared) {
      answers.push(this.negotiator.declareOwnMaxRecvDataSegmentLength());
    }
    const result: LoginResult = {
      sessionType: this.sessionType,
      initiatorName: this.initiatorNameValue,
      initiatorAlias: this.initiatorAlias,
      target: this.target,
      isid: this.first.isid,
      tsih: this.first.tsih,
      cid: this.first.cid,
      cmdSN: this.first.cmdSN,
      params: this.negotiator.params(),
    };
    this.tsih = this.host.bind(result);
    this.transition('fullFeature');
    return {
      response: this.responseFor(req, { transit: true, nsg: req.nsg, data: encodeTextData(answers), status: 0 }),
      outcome: 'fullFeature',
      result,
    };
  }

  /** RFC 7143 13.4–13.7: InitiatorName, SessionType and TargetName in the leading Login Request. */
  private leadingLogin(req: LoginRequest, keys: Map<string, string>): KeyValue[] {
    const initiatorName = keys.get('InitiatorName');
    if (initiatorName === undefined || initiatorName === '') {
      throw loginError(LoginStatus.MISSING_PARAMETER, 'InitiatorName missing');
    }
    this.initiatorNameValue = initiatorName;
    const sessionType = keys.get('SessionType') ?? 'Normal';
    if (sessionType !== 'Normal' && sessionType !== 'Discovery') {
      throw loginError(LoginStatus.SESSION_TYPE_NOT_SUPPORTED, `SessionType ${sessionType}`);
    }
    this.sessionType = sessionType === 'Normal' ? 'normal' : 'discovery';
    if (this.sessionType === 'discovery') return [];

    const targetName = keys.get('TargetName');
    if (targetName === undefined || targetName === '') {
      throw loginError(LoginStatus.MISSING_PARAMETER, 'TargetName missing in a normal session');
    }
    const target = this.host.registry.get(targetName);
    if (target === undefined) throw loginError(LoginStatus.NOT_FOUND, `no target ${targetName}`);
    if (!initiatorAllowed(target, initiatorName)) {
      throw loginError(LoginStatus.AUTHORIZATION_FAILURE, `${initiatorName} may not log in to ${targetName}`);
    }
    this.target = target;
    if (target.chap !== undefined && req.csg !== LoginStageCode.SECURITY) {
      throw loginError(LoginStatus.AUTHENTICATION_FAILURE, 'authentication required but security stage skipped');
    }
    if (req.tsih !== 0) {
      const status = this.host.checkContinuation({
        tsih: req.tsih,
        isid: req.isid,
        initiatorName,
        targetName,
        cid: req.cid,
      });
      if (status !== 0) throw loginError(status, `cannot continue session TSIH ${req.tsih}`);
    }
    // RFC 7143 13.9: the target reports its portal group tag in the first Login Response.
    const answers: KeyValue[] = [['TargetPortalGroupTag', String(this.host.portalGroupTag)]];
    if (target.alias !== undefined) answers.push(['TargetAlias', target.alias]);
    return answers;
  }

  private checkLeadingKeysUnchanged(keys: Map<string, string>): void {
    const same = (k: string, v: string): boolean => !keys.has(k) || keys.get(k) === v;
    if (!same('InitiatorName', this.initiatorNameValue) || (this.target !== undefined && !same('TargetName', this.target.name))) {
      throw loginError(LoginStatus.INITIATOR_ERROR, 'InitiatorName or TargetName changed during login');
    }
  }

  private authRequired(): boolean {
    return this.sessionType === 'normal' && this.target?.chap !== undefined;
  }

  private authenticated(): boolean {
    return !this.authRequired() || (this.chap !== undefined && this.chap.done);
  }

  /** RFC 7143 12: AuthMethod, then the CHAP exchange. */
  private security(keys: Map<string, string>): KeyValue[] {
    const answers: KeyValue[] = [];
    const offered = keys.get('AuthMethod');
    if (offered !== undefined) {
      const methods = offered.split(',');
      if (this.authRequired()) {
        if (!methods.includes('CHAP')) {
          throw loginError(LoginStatus.AUTHENTICATION_FAILURE, `target requires CHAP, offered ${offered}`);
        }
        this.authMethod = 'CHAP';
        this.chap = new ChapAuthenticator(this.target!.chap!, this.target!.mutualChap);
        answers.push(['AuthMethod', 'CHAP']);
      } else if (methods.includes('None')) {
        this.authMethod = 'None';
        answers.push(['AuthMethod', 'None']);
      } else {
        answers.push(['AuthMethod', 'Reject']);
      }
    }
    const chapKeys = new Map([...keys].filter(([k]) => k.startsWith('CHAP_')));
    if (chapKeys.size > 0) {
      if (this.chap === undefined) throw loginError(LoginStatus.INITIATOR_ERROR, 'CHAP keys without AuthMethod=CHAP');
      answers.push(...this.chap.step(chapKeys));
    }
    return answers;
  }
}
