// RFC 7143 12.1.3 CHAP (RFC 1994) in the security negotiation stage: MD5 (CHAP_A=5) only,
// one-way (target challenges initiator) and mutual (initiator challenges target too).

import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { IscsiError } from './errors.js';
import { MAX_LARGE_VALUE_BYTES, parseNumericalValue, type KeyValue } from './negotiation.js';
import { LoginStatus } from './pdu/types.js';

/** RFC 1994 / IANA PPP authentication algorithm 5: CHAP with MD5. */
export const CHAP_ALGORITHM_MD5 = 5;
export const CHAP_CHALLENGE_BYTES = 16;

export interface ChapSecret {
  user: string;
  secret: string;
}

/** RFC 1994 4.1: Response = MD5(Identifier || secret || Challenge). */
export function chapResponse(id: number, secret: string, challenge: Buffer): Buffer {
  return createHash('md5').update(Buffer.from([id & 0xff])).update(secret, 'utf8').update(challenge).digest();
}

/** RFC 7143 5.1 binary values: 0x hexadecimal or 0b base64 (case-insensitive prefixes). */
export function decodeBinaryValue(value: string): Buffer | null {
  if (value.length > MAX_LARGE_VALUE_BYTES) return null;
  const prefix = value.slice(0, 2).toLowerCase();
  const body = value.slice(2);
  if (prefix === '0x') {
    if (body.length === 0 || !/^[0-9a-fA-F]+$/.test(body)) return null;
    return Buffer.from(body.length % 2 === 1 ? `0${body}` : body, 'hex');
  }
  if (prefix === '0b') {
    if (body.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return null;
    return Buffer.from(body, 'base64');
  }
  return null;
}

export function encodeHexValue(buf: Buffer): string {
  return `0x${buf.toString('hex')}`;
}

function authFailure(message: string): IscsiError {
  return new IscsiError('ISCSI_LOGIN', message, { loginStatus: LoginStatus.AUTHENTICATION_FAILURE });
}

type ChapStage = 'awaitAlgorithm' | 'awaitResponse' | 'done';

/**
 * The target side of one CHAP exchange. `step` takes the CHAP_* keys of one login request and
 * returns the keys to answer; it throws an IscsiError (AUTHENTICATION FAILURE) when the
 * initiator fails to authenticate.
 */
export class ChapAuthenticator {
  private stage: ChapStage = 'awaitAlgorithm';
  private id = 0;
  private challenge: Buffer = Buffer.alloc(0);

  constructor(
    private readonly expected: ChapSecret,
    private readonly mutual: ChapSecret | undefined,
  ) {}

  get done(): boolean {
    return this.stage === 'done';
  }

  step(keys: ReadonlyMap<string, string>): KeyValue[] {
    switch (this.stage) {
      case 'awaitAlgorithm': {
        const algorithms = keys.get('CHAP_A');
        if (algorithms === undefined) return [];
        // RFC 7143 12.1.3: the target picks one algorithm from the initiator's list.
        const offered = algorithms.split(',').map((a) => parseNumericalValue(a));
        if (!offered.includes(CHAP_ALGORITHM_MD5)) {
          throw authFailure(`no supported CHAP algorithm in "${algorithms}"`);
        }
        this.id = randomInt(0, 256);
        this.challenge = randomBytes(CHAP_CHALLENGE_BYTES);
        this.stage = 'awaitResponse';
        return [
          ['CHAP_A', String(CHAP_ALGORITHM_MD5)],
          ['CHAP_I', String(this.id)],
          ['CHAP_C', encodeHexValue(this.challenge)],
        ];
      }
      case 'awaitResponse': {
        const name = keys.get('CHAP_N');
        const responseText = keys.get('CHAP_R');
        if (name === undefined || responseText === undefined) {
          throw authFailure('CHAP_N and CHAP_R expected');
        }
        const response = decodeBinaryValue(responseText);
        const expected = chapResponse(this.id, this.expected.secret, this.challenge);
        if (name !== this.expected.user || response === null || response.length !== expected.length ||
            !timingSafeEqual(response, expected)) {
          throw authFailure(`CHAP authentication failed for "${name}"`);
        }
        const answer = this.mutualAnswer(keys);
        this.stage = 'done';
        return answer;
      }
      case 'done':
        return [];
    }
  }

  /** RFC 7143 12.1.3: the initiator's own challenge, when it authenticates the target. */
  private mutualAnswer(keys: ReadonlyMap<string, string>): KeyValue[] {
    const idText = keys.get('CHAP_I');
    const challengeText = keys.get('CHAP_C');
    if (idText === undefined && challengeText === undefined) return [];
    if (idText === undefined || challengeText === undefined) throw authFailure('CHAP_I and CHAP_C must come together');
    if (this.mutual === undefined) throw authFailure('mutual CHAP requested but not configured');
    const id = parseNumericalValue(idText);
    const challenge = decodeBinaryValue(challengeText);
    if (id === null || id > 255 || challenge === null || challenge.length === 0) {
      throw authFailure('malformed CHAP_I or CHAP_C');
    }
    // RFC 7143 12.1.3: a target MUST refuse a challenge equal to the one it sent (reflection attack).
    if (challenge.equals(this.challenge)) throw authFailure('reflected CHAP challenge');
    return [
      ['CHAP_N', this.mutual.user],
      ['CHAP_R', encodeHexValue(chapResponse(id, this.mutual.secret, challenge))],
    ];
  }
}
