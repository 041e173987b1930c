// The AWS-compatible endpoint: `POST /` with `X-Amz-Target: StorageGateway_20130630.<Operation>`
// and an awsJson1_1 body. Each request is SigV4-verified, its operation looked up in a table
// (name -> zod input schema -> handler), its body validated, then handled. Adding an operation is
// one entry in the table.

import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AwsApiError, invalidGatewayRequest, toAwsApiError } from './aws-error.js';
import { verifySigV4, type AccessKey } from './sigv4.js';
import { flattenUnionIssues } from '../union-issues.js';

export const TARGET_PREFIX = 'StorageGateway_20130630.';
export const AWS_JSON_CONTENT_TYPE = 'application/x-amz-json-1.1';
export const SIGNING_SERVICE = 'storagegateway';

export interface AwsOperation<Schema extends z.ZodType = z.ZodType> {
  input: Schema;
  handler(input: z.output<Schema>): Promise<Record<string, unknown>>;
}

/** Keeps the schema and handler types tied together in a table of operations. */
export function operation<Schema extends z.ZodType>(
  input: Schema,
  handler: (input: z.output<Schema>) => Promise<Record<string, unknown>>,
): AwsOperation<Schema> {
  return { input, handler };
}

export interface AwsEndpointOptions {
  operations: Readonly<Record<string, AwsOperation>>;
  keys: readonly AccessKey[];
  region: string;
  now?: () => number;
  onInternalError?: (err: unknown, operationName: string) => void;
}

export function registerAwsEndpoint(app: FastifyInstance, opts: AwsEndpointOptions): void {
  app.addContentTypeParser(AWS_JSON_CONTENT_TYPE, { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.post('/', async (req, reply) => {
    const target = req.headers['x-amz-target'];
    const operationName = typeof target === 'string' && target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : '';
    try {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      verifySigV4(
        { method: req.method, url: req.raw.url ?? '/', headers: req.headers, body },
        { keys: opts.keys, region: opts.region, service: SIGNING_SERVICE, nowMs: (opts.now ?? Date.now)() },
      );
      const op = Object.hasOwn(opts.operations, operationName) ? opts.operations[operationName] : undefined;
      if (op === undefined) {
        throw new AwsApiError(400, 'UnknownOperationException', `operation ${JSON.stringify(String(target ?? ''))} is not supported`);
      }
      let json: unknown;
      try {
        json = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
      } catch {
        throw new AwsApiError(400, 'SerializationException', 'the request body is not valid JSON');
      }
      const parsed = op.input.safeParse(json);
      if (!parsed.success) throw validationError(parsed.error);
      const output = await op.handler(parsed.data);
      return reply.type(AWS_JSON_CONTENT_TYPE).send(JSON.stringify(output));
    } catch (err) {
      const awsError = toAwsApiError(err);
      if (awsError.statusCode >= 500) opts.onInternalError?.(err, operationName);
      return reply
        .code(awsError.statusCode)
        .type(AWS_JSON_CONTENT_TYPE)
        .header('x-amzn-errortype', awsError.type)
        .send(JSON.stringify(awsError.body()));
    }
  });
}

/** "VolumeARN: must be at least 50 characters; Limit: …" as InvalidParameters. */
function validationError(error: z.ZodError): AwsApiError {
  const issues = flattenUnionIssues(error.issues);
  const messages = issues.map(formatAwsIssue);
  const first = issues[0];
  return invalidGatewayRequest(
    'InvalidParameters',
    `${messages.length} validation error${messages.length > 1 ? 's' : ''} detected: ${messages.join('; ')}`,
    first !== undefined && first.path.length > 0 ? { field: formatPath(first.path) } : undefined,
  );
}

function formatAwsIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `${issue.keys.join(', ')}: unknown field`;
  const path = formatPath(issue.path);
  return path === '' ? issue.message : `${path}: ${issue.message}`;
}

function formatPath(path: PropertyKey[]): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : out === '' ? String(key) : `.${String(key)}`;
  return out;
}
