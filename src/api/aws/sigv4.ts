// AWS Signature Version 4 verification (AWS General Reference, "Signature Version 4 signing
// process"): rebuild the canonical request from what arrived, derive the signing key from the
// configured secret for the credential scope's date/region/service, and compare signatures in
// constant time. The request time must be within 15 minutes of ours.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { AwsApiError } from './aws-error.js';

export interface AccessKey {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface SignedRequest {
  method: string;
  /** The raw request target, e.g. "/" or "/a%20b?x=1". */
  url: string;
  /** Lower-case names, as node's http module gives them. */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface SigV4Options {
  keys: readonly AccessKey[];
  region: string;
  service: string;
  nowMs: number;
  maxSkewMs?: number;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
const DEFAULT_MAX_SKEW_MS = 15 * 60 * 1000;
const AUTHORIZATION_PATTERN = /^AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/;
const AMZ_DATE_PATTERN = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

const SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

/** Returns the access key id that signed the request; throws AwsApiError (403/400) otherwise. */
export function verifySigV4(req: SignedRequest, opts: SigV4Options): { accessKeyId: string } {
  const authorization = header(req, 'authorization');
  if (authorization === undefined) {
    throw new AwsApiError(403, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
  }
  const match = AUTHORIZATION_PATTERN.exec(authorization.trim());
  if (match === null) {
    throw new AwsApiError(
      400,
      'IncompleteSignatureException',
      `Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' with ${ALGORITHM}`,
    );
  }
  const [, credential, signedHeadersList, signature] = match;
  const scopeParts = credential.split('/');
  if (scopeParts.length !== 5 || scopeParts[4] !== 'aws4_request') {
    throw new AwsApiError(400, 'IncompleteSignatureException', `Credential must be <key>/<date>/<region>/<service>/aws4_request`);
  }
  // shelfgate has only long-term access keys: a session token (temporary credentials from STS) can
  // name nothing it knows, so it is refused as AWS refuses an invalid one.
  if (header(req, 'x-amz-security-token') !== undefined) {
    throw new AwsApiError(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
  }
  const [accessKeyId, scopeDate, scopeRegion, scopeService] = scopeParts;
  const key = opts.keys.find((k) => k.accessKeyId === accessKeyId);
  if (key === undefined) {
    throw new AwsApiError(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
  }
  const amzDate = header(req, 'x-amz-date');
  const dateMatch = amzDate === undefined ? null : AMZ_DATE_PATTERN.exec(amzDate);
  if (amzDate === undefined || dateMatch === null) {
    throw new AwsApiError(400, 'IncompleteSignatureException', 'X-Amz-Date must be present as YYYYMMDDTHHMMSSZ');
  }
  const requestMs = Date.UTC(+dateMatch[1], +dateMatch[2] - 1, +dateMatch[3], +dateMatch[4], +dateMatch[5], +dateMatch[6]);
  const maxSkewMs = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  if (Math.abs(opts.nowMs - requestMs) > maxSkewMs) {
    throw new AwsApiError(
      403,
      'InvalidSignatureException',
      `Signature expired: ${amzDate} is outside the ${maxSkewMs / 60000} minute window around ${formatAmzDate(opts.nowMs)}`,
    );
  }
  if (scopeDate !== amzDate.slice(0, 8)) {
    throw new AwsApiError(403, 'InvalidSignatureException', `Credential should be scoped to date ${amzDate.slice(0, 8)}, not ${scopeDate}`);
  }
  if (scopeRegion !== opts.region) {
    throw new AwsApiError(403, 'InvalidSignatureException', `Credential should be scoped to a valid region: ${opts.region}, not ${scopeRegion}`);
  }
  if (scopeService !== opts.service) {
    throw new AwsApiError(403, 'InvalidSignatureException', `Credential should be scoped to correct service: '${opts.service}'`);
  }
  const signedHeaders = signedHeadersList.split(';');
  if (!signedHeaders.includes('host')) {
    throw new AwsApiError(403, 'InvalidSignatureException', "'Host' must be a signed header");
  }
  const payloadHash = sha256Hex(req.body);
  const claimedPayloadHash = header(req, 'x-amz-content-sha256');
  if (claimedPayloadHash !== undefined && claimedPayloadHash !== 'UNSIGNED-PAYLOAD' && claimedPayloadHash !== payloadHash) {
    throw new AwsApiError(403, 'InvalidSignatureException', "The provided 'x-amz-content-sha256' header does not match what was computed.");
  }
  const canonical = canonicalRequest(req, signedHeaders, payloadHash);
  if (canonical === undefined) throw new AwsApiError(403, 'InvalidSignatureException', SIGNATURE_MISMATCH);
  const scope = `${scopeDate}/${scopeRegion}/${scopeService}/aws4_request`;
  const stringToSign = `${ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(Buffer.from(canonical, 'utf8'))}`;
  const expected = createHmac('sha256', signingKey(key.secretAccessKey, scopeDate, scopeRegion, scopeService))
    .update(stringToSign, 'utf8')
    .digest();
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
    throw new AwsApiError(403, 'InvalidSignatureException', SIGNATURE_MISMATCH);
  }
  return { accessKeyId };
}

/** The canonical request, or undefined when a signed header is missing. */
export function canonicalRequest(req: SignedRequest, signedHeaders: string[], payloadHash: string): string | undefined {
  const queryStart = req.url.indexOf('?');
  const path = queryStart < 0 ? req.url : req.url.slice(0, queryStart);
  const query = queryStart < 0 ? '' : req.url.slice(queryStart + 1);
  const lines: string[] = [];
  for (const name of signedHeaders) {
    const value = header(req, name);
    if (value === undefined) return undefined;
    lines.push(`${name}:${value.trim().replace(/\s+/g, ' ')}\n`);
  }
  return [req.method, canonicalUri(path), canonicalQuery(query), lines.join(''), signedHeaders.join(';'), payloadHash].join('\n');
}

/** Non-S3 services: every path segment is URI-encoded (again) after normalization. */
function canonicalUri(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const normalized = `/${segments.join('/')}${path.endsWith('/') && segments.length > 0 ? '/' : ''}`;
  return normalized.split('/').map(uriEncode).join('/');
}

function canonicalQuery(query: string): string {
  if (query === '') return '';
  const pairs = query.split('&').map((part) => {
    const eq = part.indexOf('=');
    const key = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1).replace(/\+/g, ' '));
    return [uriEncode(key), uriEncode(value)] as const;
  });
  pairs.sort(([ka, va], [kb, vb]) => (ka < kb ? -1 : ka > kb ? 1 : va < vb ? -1 : va > vb ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** RFC 3986 unreserved characters stay; everything else is %XX (upper-case hex). */
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function signingKey(secretAccessKey: string, date: string, region: string, service: string): Buffer {
  const kDate = createHmac('sha256', `AWS4${secretAccessKey}`).update(date, 'utf8').digest();
  const kRegion = createHmac('sha256', kDate).update(region, 'utf8').digest();
  const kService = createHmac('sha256', kRegion).update(service, 'utf8').digest();
  return createHmac('sha256', kService).update('aws4_request', 'utf8').digest();
}

function header(req: SignedRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function formatAmzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}
