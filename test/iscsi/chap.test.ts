// CHAP (RFC 1994, RFC 7143 12.1.3) pieces: binary value encodings and the exchange state machine.
import { createHash } from 'node:crypto';
import t from 'tap';
import { ChapAuthenticator, chapResponse, decodeBinaryValue, encodeHexValue } from '../../iscsi/chap.js';
import { IscsiError } from '../../iscsi/errors.js';
import { LoginStatus } from '../../iscsi/pdu/types.js';

t.test('BinaryValues', async (t) => {
  t.equal(decodeBinaryValue('0x00ff10')?.toString('hex'), '00ff10');
  t.equal(decodeBinaryValue('0XABC')?.toString('hex'), '0abc', 'odd hex digit count is left-padded');
  t.equal(decodeBinaryValue('0bAP8Q')?.toString('hex'), '00ff10');
  t.equal(decodeBinaryValue('0B3q2+7w==')?.toString('hex'), 'deadbeef');
  t.equal(decodeBinaryValue('00ff'), null, 'a prefix is required');
  t.equal(decodeBinaryValue('0x'), null);
  t.equal(decodeBinaryValue('0xzz'), null);
  t.equal(decodeBinaryValue(`0x${'a'.repeat(9000)}`), null, 'longer than 8192 characters');
  t.equal(encodeHexValue(Buffer.from([1, 2, 254])), '0x0102fe');
});

t.test('ChapResponse is MD5(id, secret, challenge)', async (t) => {
  const challenge = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
  const expected = createHash('md5').update(Buffer.from([0x2a])).update('s3cret').update(challenge).digest('hex');
  t.equal(chapResponse(0x2a, 's3cret', challenge).toString('hex'), expected);
});

t.test('ChapAuthenticator', async (t) => {
  const chap = new ChapAuthenticator({ user: 'u', secret: 'secret-one-23' }, { user: 't', secret: 'secret-two-45' });
  t.same(chap.step(new Map()), [], 'nothing until CHAP_A');
  const offer = new Map(chap.step(new Map([['CHAP_A', '6,5']])));
  t.equal(offer.get('CHAP_A'), '5');
  const id = Number(offer.get('CHAP_I'));
  t.ok(id >= 0 && id <= 255);
  const challenge = decodeBinaryValue(offer.get('CHAP_C')!)!;
  t.equal(challenge.length, 16);
  const answer = chap.step(
    new Map([
      ['CHAP_N', 'u'],
      ['CHAP_R', `0b${chapResponse(id, 'secret-one-23', challenge).toString('base64')}`],
      ['CHAP_I', '3'],
      ['CHAP_C', '0x01020304'],
    ]),
  );
  t.same(answer, [['CHAP_N', 't'], ['CHAP_R', encodeHexValue(chapResponse(3, 'secret-two-45', Buffer.from([1, 2, 3, 4])))]]);
  t.ok(chap.done);
});

t.test('ChapAuthenticator failures are AUTHENTICATION FAILURE', async (t) => {
  const expectAuthFailure = (fn: () => unknown, name: string): void => {
    try {
      fn();
      t.fail(name);
    } catch (err) {
      t.equal(err instanceof IscsiError ? err.loginStatus : undefined, LoginStatus.AUTHENTICATION_FAILURE, name);
    }
  };
  expectAuthFailure(() => new ChapAuthenticator({ user: 'u', secret: 's' }, undefined).step(new Map([['CHAP_A', '6,7']])), 'no MD5 offered');
  const oneWay = new ChapAuthenticator({ user: 'u', secret: 's' }, undefined);
  const offer = new Map(oneWay.step(new Map([['CHAP_A', '5']])));
  const id = Number(offer.get('CHAP_I'));
  const challenge = decodeBinaryValue(offer.get('CHAP_C')!)!;
  expectAuthFailure(
    () => oneWay.step(new Map([['CHAP_N', 'u'], ['CHAP_R', encodeHexValue(chapResponse(id, 's', challenge))], ['CHAP_I', '1'], ['CHAP_C', '0x0101']])),
    'mutual CHAP requested but not configured',
  );
});
