// Errors fastify produces itself, before a route's handler runs (no route: 404; a body over the
// limit: 413; malformed JSON, an unsupported content type: 400/415), in the shape the client of
// that part of the API expects: the AWS JSON error (`__type`, `message`, `x-amzn-ErrorType`) on the
// AWS endpoint (`POST /`), and `{ error: { code, message } }` everywhere else (docs/api.md).
// Every response also carries `x-amzn-RequestId`, as AWS's do (the SDKs expose it as RequestId).

import { randomUUID } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AWS_JSON_CONTENT_TYPE } from './aws/router.js';

/** The AWS error type for each status fastify produces on `POST /`. */
const AWS_TYPE_BY_STATUS: Record<number, string> = {
  400: 'SerializationException',
  404: 'UnknownOperationException',
  413: 'RequestEntityTooLargeException',
  415: 'SerializationException',
};

/** The REST error code for each status fastify produces elsewhere. */
const REST_CODE_BY_STATUS: Record<number, string> = {
  400: 'INVALID_REQUEST',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
};

export function registerFrameworkErrors(app: FastifyInstance): void {
  app.addHook('onRequest', async (_req, reply) => {
    reply.header('x-amzn-RequestId', randomUUID());
  });
  app.setNotFoundHandler((req, reply) => {
    send(req, reply, 404, `no route ${req.method} ${req.url.split('?')[0]}; see /docs for the REST API`);
  });
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    send(req, reply, status, status === 500 ? 'internal error; see the gateway log' : err.message);
  });
}

function send(req: FastifyRequest, reply: FastifyReply, status: number, message: string): void {
  const awsEndpoint = req.method === 'POST' && req.url.split('?')[0] === '/';
  if (awsEndpoint) {
    const type = status >= 500 ? 'InternalServerError' : (AWS_TYPE_BY_STATUS[status] ?? 'ValidationException');
    void reply
      .code(status)
      .type(AWS_JSON_CONTENT_TYPE)
      .header('x-amzn-errortype', type)
      .send(JSON.stringify({ __type: type, message }));
    return;
  }
  const code = status >= 500 ? 'INTERNAL' : (REST_CODE_BY_STATUS[status] ?? 'INVALID_REQUEST');
  void reply.code(status).send({ error: { code, message } });
}
