// RFC 7143 6 (text mode negotiation) and 13 (login/text operational text keys).
// The operational keys are a table of data, like tgt's usr/iscsi/param.c: legal range, result
// function, scope, who may send the key, when it is used and when it is irrelevant.

import { IscsiError } from './errors.js';
import { LoginStatus } from './pdu/types.js';

export type KeyValue = readonly [key: string, value: string];

/** RFC 7143 6.1: key names are at most 63 bytes; a value at most 255 bytes unless stated otherwise. */
export const MAX_KEY_NAME_BYTES = 63;
export const MAX_VALUE_BYTES = 255;
/** RFC 7143 6.1 / 13.1 binary values (CHAP challenges and responses) may be longer. */
export const MAX_LARGE_VALUE_BYTES = 8192;

/** What this target declares as its MaxRecvDataSegmentLength (RFC 7143 13.12). */
export const TARGET_MAX_RECV_DATA_SEGMENT_LENGTH = 262144;

/** RFC 7143 6.2.1: the special answers. */
export const Answer = {
  NOT_UNDERSTOOD: 'NotUnderstood',
  IRRELEVANT: 'Irrelevant',
  REJECT: 'Reject',
} as const;

/** RFC 7143 6.2.2 result functions, and declarations (6.1, no answer required). */
export type KeyType = 'numericalMin' | 'numericalMax' | 'booleanAnd' | 'booleanOr' | 'list' | 'declarative';

export interface KeyDefinition {
  name: string;
  type: KeyType;
  scope: 'session' | 'connection';
  /** 'LO' login operational stage only (the leading login for session keys); 'ALL' also full feature phase. */
  use: 'LO' | 'ALL';
  /** Who may send the key. */
  sender: 'initiator' | 'target' | 'both';
  /** RFC default when never negotiated. */
  defaultValue: string;
  /** Legal range for numerical keys. */
  min?: number;
  max?: number;
  /** Legal values for list keys, in no particular order. */
  values?: readonly string[];
  /** This target's value: its limit (numerical), its preference (boolean), what it supports (list). */
  targetValue: string;
  /** RFC 7143: "Irrelevant when: SessionType=Discovery". */
  irrelevantInDiscovery?: boolean;
  /** Declarations answered by the target with its own value (MaxRecvDataSegmentLength). */
  answeredWithOwnValue?: boolean;
  /** Withdrawn keys (RFC 7143 13.25 markers): always answered Irrelevant. */
  alwaysIrrelevant?: boolean;
}

const MAX_24 = 0xffffff;

/** RFC 7143 13 — the operational keys. */
export const OPERATIONAL_KEYS: readonly KeyDefinition[] = [
  // RFC 7143 13.1
  { name: 'HeaderDigest', type: 'list', scope: 'connection', use: 'LO', sender: 'both', defaultValue: 'None', values: ['CRC32C', 'None'], targetValue: 'CRC32C,None' },
  { name: 'DataDigest', type: 'list', scope: 'connection', use: 'LO', sender: 'both', defaultValue: 'None', values: ['CRC32C', 'None'], targetValue: 'CRC32C,None' },
  // RFC 7143 13.2
  { name: 'MaxConnections', type: 'numericalMin', scope: 'session', use: 'LO', sender: 'both', defaultValue: '1', min: 1, max: 65535, targetValue: '1', irrelevantInDiscovery: true },
  // RFC 7143 13.10
  { name: 'InitialR2T', type: 'booleanOr', scope: 'session', use: 'LO', sender: 'both', defaultValue: 'Yes', targetValue: 'No', irrelevantInDiscovery: true },
  // RFC 7143 13.11
  { name: 'ImmediateData', type: 'booleanAnd', scope: 'session', use: 'LO', sender: 'both', defaultValue: 'Yes', targetValue: 'Yes', irrelevantInDiscovery: true },
  // RFC 7143 13.12 — declarative, per direction
  { name: 'MaxRecvDataSegmentLength', type: 'declarative', scope: 'connection', use: 'ALL', sender: 'both', defaultValue: '8192', min: 512, max: MAX_24, targetValue: String(TARGET_MAX_RECV_DATA_SEGMENT_LENGTH), answeredWithOwnValue: true },
  // RFC 7143 13.13
  { name: 'MaxBurstLength', type: 'numericalMin', scope: 'session', use: 'LO', sender: 'both', defaultValue: '262144', min: 512, max: MAX_24, targetValue: String(MAX_24), irrelevantInDiscovery: true },
  // RFC 7143 13.14
  { name: 'FirstBurstLength', type: 'numericalMin', scope: 'session', use: 'LO', sender: 'both', defaultValue: '65536', min: 512, max: MAX_24, targetValue: String(MAX_24), irrelevantInDiscovery: true },
  // RFC 7143 13.15 / 13.16 (DefaultTime2Wait takes the maximum)
  { name: 'DefaultTime2Wait', type: 'numericalMax', scope: 'session', use: 'LO', sender: 'both', defaultValue: '2', min: 0, max: 3600, targetValue: '2' },
  { name: 'DefaultTime2Retain', type: 'numericalMin', scope: 'session', use: 'LO', sender: 'both', defaultValue: '20', min: 0, max: 3600, targetValue: '20' },
  // RFC 7143 13.17
  { name: 'MaxOutstandingR2T', type: 'numericalMin', scope: 'session', use: 'LO', sender: 'both', defaultValue: '1', min: 1, max: 65535, targetValue: '16', irrelevantInDiscovery: true },
  // RFC 7143 13.18 / 13.19
  { name: 'DataPDUInOrder', type: 'booleanOr', scope: 'session', use: 'LO', sender: 'both', defaultValue: 'Yes', targetValue: 'No', irrelevantInDiscovery: true },
  { name: 'DataSequenceInOrder', type: 'booleanOr', scope: 'session', use: 'LO', sender: 'both', defaultValue: 'Yes', targetValue: 'No', irrelevantInDiscovery: true },
  // RFC 7143 13.20: this target implements ErrorRecoveryLevel 0 only
  { name: 'ErrorRecoveryLevel', type: 'numericalMin', scope: 'session', use: 'LO', sender: 'both', defaultValue: '0', min: 0, max: 2, targetValue: '0' },
  // RFC 7143 13.23 / 13.24
  { name: 'TaskReporting', type: 'list', scope: 'session', use: 'LO', sender: 'both', defaultValue: 'RFC3720', values: ['RFC3720', 'ResponseFence', 'FastAbort'], targetValue: 'RFC3720' },
  // RFC 7144 13.1 (iSCSIProtocolLevel): this target speaks RFC 7143, level 1
  { name: 'iSCSIProtocolLevel', type: 'numericalMin', scope: 'session', use: 'LO', sender: 'both', defaultValue: '0', min: 0, max: 31, targetValue: '1' },
  // RFC 7143 13.25 / RFC 3720 A.3: markers, withdrawn; this target never uses them
  { name: 'OFMarker', type: 'booleanAnd', scope: 'connection', use: 'LO', sender: 'both', defaultValue: 'No', targetValue: 'No' },
  { name: 'IFMarker', type: 'booleanAnd', scope: 'connection', use: 'LO', sender: 'both', defaultValue: 'No', targetValue: 'No' },
  { name: 'OFMarkInt', type: 'declarative', scope: 'connection', use: 'LO', sender: 'both', defaultValue: '2048', targetValue: '', alwaysIrrelevant: true },
  { name: 'IFMarkInt', type: 'declarative', scope: 'connection', use: 'LO', sender: 'both', defaultValue: '2048', targetValue: '', alwaysIrrelevant: true },
  // RFC 7143 13.4–13.7: declarations
  { name: 'InitiatorName', type: 'declarative', scope: 'session', use: 'LO', sender: 'initiator', defaultValue: '', targetValue: '' },
  { name: 'InitiatorAlias', type: 'declarative', scope: 'session', use: 'ALL', sender: 'initiator', defaultValue: '', targetValue: '' },
  { name: 'TargetName', type: 'declarative', scope: 'session', use: 'LO', sender: 'initiator', defaultValue: '', targetValue: '' },
  { name: 'SessionType', type: 'declarative', scope: 'session', use: 'LO', sender: 'initiator', defaultValue: 'Normal', values: ['Normal', 'Discovery'], targetValue: '' },
  { name: 'TargetAlias', type: 'declarative', scope: 'session', use: 'ALL', sender: 'target', defaultValue: '', targetValue: '' },
  { name: 'TargetAddress', type: 'declarative', scope: 'session', use: 'ALL', sender: 'target', defaultValue: '', targetValue: '' },
  { name: 'TargetPortalGroupTag', type: 'declarative', scope: 'session', use: 'LO', sender: 'target', defaultValue: '', targetValue: '' },
];

const KEY_TABLE = new Map(OPERATIONAL_KEYS.map((k) => [k.name, k]));

/** The negotiated operational parameters of one connection and its session. */
export interface OperationalParams {
  /** What the initiator declared: the largest data segment we may send it. */
  initiatorMaxRecvDataSegmentLength: number;
  /** What we declared: the largest data segment the initiator may send us. */
  targetMaxRecvDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  immediateData: boolean;
  initialR2T: boolean;
  maxOutstandingR2T: number;
  dataPDUInOrder: boolean;
  dataSequenceInOrder: boolean;
  defaultTime2Wait: number;
  defaultTime2Retain: number;
  errorRecoveryLevel: number;
  maxConnections: number;
  headerDigest: boolean;
  dataDigest: boolean;
}

function negotiationError(message: string, loginStatus: number = LoginStatus.INITIATOR_ERROR): IscsiError {
  return new IscsiError('ISCSI_NEGOTIATION', message, { loginStatus });
}

const KEY_NAME = /^[A-Za-z0-9.\-+@_]+$/;

/** RFC 7143 6.1: key=value pairs, each terminated by a NUL. Throws on malformed text. */
export function parseTextData(data: Buffer): KeyValue[] {
  const pairs: KeyValue[] = [];
  let start = 0;
  while (start < data.length) {
    let end = data.indexOf(0, start);
    if (end < 0) end = data.length;
    if (end > start) {
      const text = data.toString('utf8', start, end);
      const eq = text.indexOf('=');
      if (eq <= 0) throw negotiationError(`malformed text key "${text.slice(0, 64)}"`);
      const key = text.slice(0, eq);
      if (key.length > MAX_KEY_NAME_BYTES || !KEY_NAME.test(key)) {
        throw negotiationError(`invalid key name "${key.slice(0, 64)}"`);
      }
      pairs.push([key, text.slice(eq + 1)]);
    }
    start = end + 1;
  }
  return pairs;
}

export function encodeTextData(pairs: readonly KeyValue[]): Buffer {
  if (pairs.length === 0) return Buffer.alloc(0);
  return Buffer.from(pairs.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}

/** RFC 7143 5.1 numerical values: decimal, or hexadecimal with 0x. */
export function parseNumericalValue(value: string): number | null {
  if (/^[0-9]{1,10}$/.test(value)) return Number(value);
  if (/^0[xX][0-9a-fA-F]{1,8}$/.test(value)) return Number.parseInt(value.slice(2), 16);
  return null;
}

function parseBoolean(value: string): boolean | null {
  return value === 'Yes' ? true : value === 'No' ? false : null;
}

function yesNo(b: boolean): string {
  return b ? 'Yes' : 'No';
}

export interface NegotiationContext {
  discovery: boolean;
  phase: 'login' | 'fullFeature';
}

/**
 * The acceptor side (target) of operational negotiation for one connection: answers the
 * initiator's offers and declarations, remembers results, and refuses keys negotiated twice.
 */
export class Negotiator {
  private readonly values = new Map<string, string>();
  private readonly negotiated = new Set<string>();
  private declaredOwnMrdsl = false;

  constructor() {
    for (const k of OPERATIONAL_KEYS) this.values.set(k.name, k.defaultValue);
  }

  /** The current value of a key (negotiated or default). */
  value(name: string): string | undefined {
    return this.values.get(name);
  }

  /** Whether we already told the initiator our MaxRecvDataSegmentLength. */
  get ownMaxRecvDataSegmentLengthDeclared(): boolean {
    return this.declaredOwnMrdsl;
  }

  /** Our own declaration, for a login response that must carry it before full feature phase. */
  declareOwnMaxRecvDataSegmentLength(): KeyValue {
    this.declaredOwnMrdsl = true;
    return ['MaxRecvDataSegmentLength', String(TARGET_MAX_RECV_DATA_SEGMENT_LENGTH)];
  }

  /**
   * Answers a set of keys (one request, or one multi-PDU request joined). Unknown keys are
   * NotUnderstood. During login a duplicate or a key negotiated earlier in the login is a
   * protocol error (RFC 7143 6.2: login reject, initiator error); in full feature phase the
   * duplicate is answered Reject.
   */
  respond(pairs: readonly KeyValue[], ctx: NegotiationContext): KeyValue[] {
    const answers: KeyValue[] = [];
    const seenHere = new Set<string>();
    for (const [key, value] of pairs) {
      if (seenHere.has(key)) {
        if (ctx.phase === 'login') throw negotiationError(`key ${key} sent twice`);
        answers.push([key, Answer.REJECT]);
        continue;
      }
      seenHere.add(key);
      const answer = this.respondOne(key, value, ctx);
      if (answer !== null) answers.push([key, answer]);
    }
    return answers;
  }

  private respondOne(key: string, value: string, ctx: NegotiationContext): string | null {
    const def = KEY_TABLE.get(key);
    if (def === undefined) return Answer.NOT_UNDERSTOOD;
    // Answers to offers we never make, or special values from the initiator: nothing to do.
    if (value === Answer.NOT_UNDERSTOOD || value === Answer.IRRELEVANT || value === Answer.REJECT) return null;
    if (def.sender === 'target') return Answer.REJECT;
    if (ctx.phase === 'fullFeature' && def.use === 'LO') return Answer.REJECT;
    if (ctx.phase === 'login' && this.negotiated.has(key) && def.type !== 'declarative') {
      throw negotiationError(`key ${key} negotiated twice`);
    }
    this.negotiated.add(key);
    if (def.alwaysIrrelevant) return Answer.IRRELEVANT;
    if (Buffer.byteLength(value) > MAX_VALUE_BYTES) return Answer.REJECT;
    if (ctx.discovery && def.irrelevantInDiscovery) return Answer.IRRELEVANT;

    switch (def.type) {
      case 'declarative': {
        if (def.min !== undefined) {
          const n = parseNumericalValue(value);
          if (n === null || n < def.min || n > def.max!) return Answer.REJECT;
          this.values.set(key, String(n));
        } else {
          if (def.values !== undefined && !def.values.includes(value)) return Answer.REJECT;
          this.values.set(key, value);
        }
        if (def.answeredWithOwnValue) {
          this.declaredOwnMrdsl = true;
          return def.targetValue;
        }
        return null;
      }
      case 'numericalMin':
      case 'numericalMax': {
        const n = parseNumericalValue(value);
        if (n === null || n < def.min! || n > def.max!) return Answer.REJECT;
        const ours = Number(def.targetValue);
        let result = def.type === 'numericalMin' ? Math.min(n, ours) : Math.max(n, ours);
        if (key === 'FirstBurstLength') {
          // RFC 7143 13.14: irrelevant when InitialR2T=Yes and ImmediateData=No; never above MaxBurstLength.
          if (this.values.get('InitialR2T') === 'Yes' && this.values.get('ImmediateData') === 'No' &&
              this.negotiated.has('InitialR2T') && this.negotiated.has('ImmediateData')) {
            return Answer.IRRELEVANT;
          }
          if (this.negotiated.has('MaxBurstLength')) result = Math.min(result, Number(this.values.get('MaxBurstLength')));
        }
        this.values.set(key, String(result));
        return String(result);
      }
      case 'booleanAnd':
      case 'booleanOr': {
        const b = parseBoolean(value);
        if (b === null) return Answer.REJECT;
        const ours = def.targetValue === 'Yes';
        const result = def.type === 'booleanAnd' ? b && ours : b || ours;
        this.values.set(key, yesNo(result));
        return yesNo(result);
      }
      case 'list': {
        // RFC 7143 6.2.1: the first value of the initiator's list that we support.
        const supported = def.targetValue.split(',');
        const offered = value.split(',');
        if (offered.some((v) => v.length === 0)) return Answer.REJECT;
        const chosen = offered.find((v) => supported.includes(v));
        if (chosen === undefined) return Answer.REJECT;
        this.values.set(key, chosen);
        return chosen;
      }
    }
  }

  /** The negotiated parameters (defaults where nothing was said). */
  params(): OperationalParams {
    const num = (k: string): number => Number(this.values.get(k));
    const bool = (k: string): boolean => this.values.get(k) === 'Yes';
    const maxBurstLength = num('MaxBurstLength');
    return {
      initiatorMaxRecvDataSegmentLength: num('MaxRecvDataSegmentLength'),
      targetMaxRecvDataSegmentLength: this.declaredOwnMrdsl ? TARGET_MAX_RECV_DATA_SEGMENT_LENGTH : 8192,
      maxBurstLength,
      firstBurstLength: Math.min(num('FirstBurstLength'), maxBurstLength),
      immediateData: bool('ImmediateData'),
      initialR2T: bool('InitialR2T'),
      maxOutstandingR2T: num('MaxOutstandingR2T'),
      dataPDUInOrder: bool('DataPDUInOrder'),
      dataSequenceInOrder: bool('DataSequenceInOrder'),
      defaultTime2Wait: num('DefaultTime2Wait'),
      defaultTime2Retain: num('DefaultTime2Retain'),
      errorRecoveryLevel: num('ErrorRecoveryLevel'),
      maxConnections: num('MaxConnections'),
      headerDigest: this.values.get('HeaderDigest') === 'CRC32C',
      dataDigest: this.values.get('DataDigest') === 'CRC32C',
    };
  }
}
