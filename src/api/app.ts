// The admin API as a fastify app that never listens (main.ts does): tests use app.inject().
//   GET  /health                 liveness, volumes and sessions
//   POST /                       AWS Storage Gateway wire protocol (X-Amz-Target, SigV4)
//   /v1/*                        REST API (bearer token when api.token is set)
//   GET  /docs, /docs/openapi.json   OpenAPI 3.1 document of the REST API
//   GET  /metrics                Prometheus text format

import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from '../../iscsi/log.js';
import type { VolumeInfo } from '../gateway/volume-registry.js';
import type { AdminDeps } from './admin-deps.js';
import type { StoreHealth } from '../store/store-health.js';
import { storageGatewayOperations } from './aws/operations.js';
import { registerAwsEndpoint } from './aws/router.js';
import { registerFrameworkErrors } from './framework-errors.js';
import { registerMetrics } from './metrics.js';
import { openApiDocument } from './rest/openapi.js';
import { registerRestRoutes, restRoutes } from './rest/routes.js';

export interface SessionInfo {
  initiatorName: string;
  targetName: string;
  isid: string;
  tsih: number;
  connections: number;
}

export interface AppDeps {
  volumes(): VolumeInfo[];
  sessions(): SessionInfo[];
  /** Conditions of the stores (disk full, I/O errors): /health says `degraded` while any holds. */
  storeHealth?: StoreHealth;
  /** The admin API proper; without it only /health is served. */
  admin?: AdminDeps;
  log?: Logger;
}

export function buildApp(deps: AppDeps): FastifyInstance {
  const app = Fastify({ logger: false });
  registerFrameworkErrors(app);
  app.get('/health', async () => {
    const conditions = deps.storeHealth?.conditions() ?? [];
    return {
      status: conditions.length > 0 ? ('degraded' as const) : ('ok' as const),
      ...(conditions.length > 0 ? { conditions } : {}),
      volumes: deps.volumes(),
      sessions: deps.sessions(),
    };
  });
  const admin = deps.admin;
  if (admin === undefined) return app;

  registerAwsEndpoint(app, {
    operations: storageGatewayOperations(admin),
    keys: admin.accessKeys,
    region: admin.region,
    onInternalError: (err, operationName) => deps.log?.error('AWS API operation failed', { operation: operationName, err }),
  });
  const routes = restRoutes(admin);
  registerRestRoutes(app, admin, routes, (err, route) => deps.log?.error('REST request failed', { route, err }));
  const document = openApiDocument(routes, { version: admin.softwareVersion });
  app.get('/docs/openapi.json', async () => document);
  app.get('/docs', async (_req, reply) => reply.type('text/html; charset=utf-8').send(docsPage(document)));
  registerMetrics(app, admin);
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
