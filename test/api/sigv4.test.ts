// SigV4 verification against the AWS Signature Version 4 test suite's "get-vanilla" case, plus
// tampering: any change to a signed part fails; malformed and unknown credentials.
import t from 'tap';
import { AwsApiError } from '../../src/api/aws/aws-error.js';
import { verifySigV4, type SignedRequest } from '../../src/api/aws/sigv4.js';

const KEY = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const NOW_MS = Date.UTC(2015, 7, 30, 12, 36, 0);

/** aws-sig-v4-test-suite/get-vanilla */
const getVanilla: SignedRequest = {
  method: 'GET',
  url: '/',
  headers: {
    host: 'example.amazonaws.com',
    'x-amz-date': '20150830T123600Z',
    authorization:
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, ' +
      'Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
  },
  body: Buffer.alloc(0),
};

function verify(req: SignedRequest, nowMs = NOW_MS): { accessKeyId: string } {
  return verifySigV4(req, { keys: [KEY], region: 'us-east-1', service: 'service', nowMs });
}

function rejection(fn: () => unknown): { type: string; statusCode: number } | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (!(err instanceof AwsApiError)) throw err;
    return { type: err.type, statusCode: err.statusCode };
  }
}

t.test('SigV4.GetVanilla: the AWS test-suite signature verifies', async (t) => {
  t.same(verify(getVanilla), { accessKeyId: 'AKIDEXAMPLE' });
});

t.test('SigV4.Tampered: method, path, query, signed header, body, time', async (t) => {
  const mismatch = { type: 'InvalidSignatureException', statusCode: 403 };
  t.same(rejection(() => verify({ ...getVanilla, method: 'POST' })), mismatch, 'method');
  t.same(rejection(() => verify({ ...getVanilla, url: '/other' })), mismatch, 'path');
  t.same(rejection(() => verify({ ...getVanilla, url: '/?a=b' })), mismatch, 'query');
  t.same(rejection(() => verify({ ...getVanilla, headers: { ...getVanilla.headers, host: 'evil.example.com' } })), mismatch, 'host');
  t.same(rejection(() => verify({ ...getVanilla, body: Buffer.from('x') })), mismatch, 'body');
  t.same(
    rejection(() => verify({ ...getVanilla, headers: { ...getVanilla.headers, 'x-amz-content-sha256': '0'.repeat(64) } })),
    mismatch,
    'x-amz-content-sha256 not the body hash',
  );
  t.same(rejection(() => verify(getVanilla, NOW_MS + 16 * 60_000)), mismatch, 'more than 15 minutes late');
  t.same(verify(getVanilla, NOW_MS + 14 * 60_000), { accessKeyId: 'AKIDEXAMPLE' }, 'within 15 minutes');
  t.same(rejection(() => verify({ ...getVanilla, headers: { ...getVanilla.headers, host: undefined } })), mismatch, 'signed header missing');
});

t.test('SigV4.Malformed and unknown keys', async (t) => {
  const { authorization: _, ...unsigned } = getVanilla.headers;
  t.same(rejection(() => verify({ ...getVanilla, headers: unsigned })), { type: 'MissingAuthenticationTokenException', statusCode: 403 });
  t.same(rejection(() => verify({ ...getVanilla, headers: { ...unsigned, authorization: 'AWS4-HMAC-SHA256 Credential=x' } })), {
    type: 'IncompleteSignatureException',
    statusCode: 400,
  });
  const otherKey = String(getVanilla.headers.authorization).replace('AKIDEXAMPLE', 'AKIDOTHER');
  t.same(rejection(() => verify({ ...getVanilla, headers: { ...unsigned, authorization: otherKey } })), {
    type: 'UnrecognizedClientException',
    statusCode: 403,
  });
});
