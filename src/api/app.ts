// The admin API as a fastify app that never listens (main.ts does): tests use app.inject().
//   GET  /health                 up or degraded, nothing else (open: for load balancers and probes)
//   POST /                       AWS Storage Gateway wire protocol (X-Amz-Target, SigV4)
//   /v1/*                        REST API (bearer token unless api.auth is none)
//   GET  /docs, /docs/openapi.json   OpenAPI 3.1 document of the REST API (token unless api.public)
//   GET  /metrics                Prometheus text format (token unless api.public)
// Every request's Host header must be a name of this gateway (host-check.ts, DNS rebinding).

import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from '../../iscsi/log.js';
import type { AdminDeps } from './admin-deps.js';
import type { StoreHealth } from '../store/store-health.js';
import { storageGatewayOperations } from './aws/operations.js';
import { registerAwsEndpoint } from './aws/router.js';
import { registerFrameworkErrors } from './framework-errors.js';
import { registerMetrics } from './metrics.js';
import { openApiDocument } from './rest/openapi.js';
import { hostOfHeader } from './host-check.js';
import { checkBearer, RestError, registerRestRoutes, restRoutes } from './rest/routes.js';

/** The access key id whose SigV4 secret key is the API token. */
export const TOKEN_ACCESS_KEY_ID = 'shelfgate';

export interface SessionInfo {
  initiatorName: string;
  targetName: string;
  isid: string;
  tsih: number;
  connections: number;
}

export interface AppDeps {
  /** Conditions of the stores (disk full, I/O errors): /health says `degraded` while any holds. */
  storeHealth?: StoreHealth;
  /** The admin API proper; without it only /health is served. */
  admin?: AdminDeps;
  /** Host header names accepted (apiHostNames); absent = any Host (in-process tests only). */
  allowedHosts?: ReadonlySet<string>;
  /** Endpoints served without the token (api.public). */
  publicEndpoints?: readonly ('metrics' | 'docs')[];
  log?: Logger;
}

export function buildApp(deps: AppDeps): FastifyInstance {
  const app = Fastify({ logger: false });
  registerFrameworkErrors(app);
  const allowedHosts = deps.allowedHosts;
  if (allowedHosts !== undefined) {
    app.addHook('onRequest', async (req, reply) => {
      const host = hostOfHeader(req.headers.host);
      if (allowedHosts.has(host)) return;
      deps.log?.warn('API request refused: Host is not a name of this gateway', { host: req.headers.host, peer: req.ip });
      return reply.code(421).send({
        error: {
          code: 'HOST_NOT_ALLOWED',
          message: `Host ${JSON.stringify(req.headers.host ?? '')} is not a name of this gateway; add it to api.allowedHosts to accept it`,
        },
      });
    });
  }
  // Liveness only: whatever else the gateway knows needs the token (GET /v1/health).
  app.get('/health', async () => ({ status: (deps.storeHealth?.conditions() ?? []).length > 0 ? ('degraded' as const) : ('ok' as const) }));
  const admin = deps.admin;
  if (admin === undefined) return app;

  registerAwsEndpoint(app, {
    operations: storageGatewayOperations(admin),
    // The API token is also a SigV4 secret key (access key id `shelfgate`), so AWS SDKs and the
    // AWS CLI work with a fresh gateway; api.accessKeys add more.
    keys: admin.token !== undefined ? [...admin.accessKeys, { accessKeyId: TOKEN_ACCESS_KEY_ID, secretAccessKey: admin.token }] : admin.accessKeys,
    region: admin.region,
    onInternalError: (err, operationName) => deps.log?.error('AWS API operation failed', { operation: operationName, err }),
  });
  const routes = restRoutes(admin);
  registerRestRoutes(app, admin, routes, (err, route) => deps.log?.error('REST request failed', { route, err }));
  const document = openApiDocument(routes, { version: admin.softwareVersion });
  const open = new Set(deps.publicEndpoints ?? []);
  const guard = (endpoint: 'metrics' | 'docs') => async (req: FastifyRequest, reply: FastifyReply) => {
    if (open.has(endpoint)) return;
    try {
      checkBearer(req, admin.token);
    } catch (err) {
      const restError = err as RestError;
      return reply.code(restError.statusCode).header('www-authenticate', 'Bearer').send({ error: { code: restError.code, message: restError.message } });
    }
  };
  app.get('/docs/openapi.json', { onRequest: guard('docs') }, async () => document);
  app.get('/docs', { onRequest: guard('docs') }, async (_req, reply) => reply.type('text/html; charset=utf-8').send(docsPage(document)));
  registerMetrics(app, admin, guard('metrics'));
  return app;
}

/** A dependency-free page listing the REST operations, linking the JSON document. */
function docsPage(document: Record<string, unknown>): string {
  const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const rows: string[] = [];
  for (const [path, operations] of Object.entries(document.paths as Record<string, Record<string, { summary: string }>>)) {
    for (const [method, op] of Object.entries(operations)) {
      rows.push(`<tr><td><code>${method.toUpperCase()}</code></td><td><code>${escape(path)}</code></td><td>${escape(op.summary)}</td></tr>`);
    }
  }
  return (
    '<!doctype html><html><head><meta charset="utf-8"><title>shelfgate API</title></head><body>' +
    '<h1>shelfgate REST API</h1><p>OpenAPI document: <a href="/docs/openapi.json">/docs/openapi.json</a></p>' +
    `<table>${rows.join('')}</table></body></html>`
  );
}
