// The REST API for people and scripts (/v1/*), on the same services as the AWS-compatible
// endpoint. Routes are a table (method, url, schemas, handler) that also generates the OpenAPI
// document, so the document cannot drift from what is served.

import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { GatewayError, type GatewayErrorCode } from '../../gateway/gateway-error.js';
import type { ServedVolumeView } from '../../gateway/volume-registry.js';
import { parseSize } from '../../size.js';
import type { AdminDeps } from '../admin-deps.js';
import { GatewayArns } from '../aws/arn.js';
import * as schema from './schemas.js';
import { recoveryRoutes } from './recovery-routes.js';
import { snapshotRoutes } from './snapshot-routes.js';
import { tapeRoutes } from './tape-routes.js';
import { flattenUnionIssues } from '../union-issues.js';

export interface RestRoute {
  method: 'GET' | 'POST' | 'DELETE';
  /** fastify syntax, e.g. /v1/volumes/:name */
  url: string;
  summary: string;
  params?: z.ZodType;
  body?: z.ZodType;
  /** HTTP status -> response schema (null: no body). */
  responses: Record<number, z.ZodType | null>;
  handler(input: { params: unknown; body: unknown }): Promise<{ status: number; body?: unknown }>;
}

export class RestError extends Error {
  readonly statusCode: number;
  readonly code: string;

  constructor(statusCode: number, code: string, message: string) {
    super(message);
    this.name = 'RestError';
    this.statusCode = statusCode;
    this.code = code;
  }
}

const GATEWAY_ERROR_STATUS: Partial<Record<GatewayErrorCode, number>> = {
  GW_VOLUME_NOT_FOUND: 404,
  GW_CHAP_NOT_FOUND: 404,
  GW_VOLUME_EXISTS: 409,
  GW_VOLUME_DECLARED_IN_CONFIG: 409,
  GW_VOLUME_LIMIT_EXCEEDED: 409,
  GW_VOLUME_INVALID_ARGUMENT: 400,
  GW_TAPE_NOT_FOUND: 404,
  GW_TAPE_INVALID_ARGUMENT: 400,
  GW_TAPE_BARCODE_EXISTS: 409,
  GW_TAPE_INVALID_STATE: 409,
  GW_TAPE_LIMIT_EXCEEDED: 409,
  GW_NO_EMPTY_SLOT: 409,
  GW_POOL_NOT_FOUND: 404,
  GW_POOL_EXISTS: 409,
  GW_POOL_IN_USE: 409,
  GW_POOL_INVALID_ARGUMENT: 400,
  GW_TAPE_RETENTION_LOCKED: 409,
  GW_TAPE_POOL_MOVE_REFUSED: 409,
  GW_SNAPSHOT_NOT_FOUND: 404,
  GW_GATEWAY_NOT_FOUND: 404,
  GW_RECOVERY_INVALID_ARGUMENT: 400,
  GW_SNAPSHOT_INVALID_ARGUMENT: 400,
  GW_SNAPSHOT_INVALID_STATE: 409,
};

export function restRoutes(deps: AdminDeps): RestRoute[] {
  const arns = new GatewayArns({ region: deps.region, accountId: deps.accountId, gatewayId: deps.settings.gatewayId });
  const volumeBody = (v: ServedVolumeView): z.output<typeof schema.Volume> => ({
    name: v.name,
    volumeId: v.serial,
    type: v.type,
    sizeBytes: v.sizeBytes,
    targetName: v.targetName,
    createdAt: v.createdAt,
    origin: v.origin,
    chapEnabled: v.chap !== undefined,
    writeCache: v.writeCache,
  });
  const errors = { 400: schema.ErrorBody, 401: schema.ErrorBody };
  return [
    {
      method: 'GET',
      url: '/v1/gateway',
      summary: 'The gateway: id, ARN, iSCSI portal, counts',
      responses: { 200: schema.Gateway, ...errors },
      handler: async () => ({
        status: 200,
        body: {
          gatewayId: deps.settings.gatewayId,
          gatewayARN: arns.gateway,
          name: deps.gatewayName,
          region: deps.region,
          softwareVersion: deps.softwareVersion,
          iscsi: { ...deps.iscsiPortal(), advertise: [...(deps.iscsiAdvertise ?? [])] },
          volumeCount: deps.volumes.list().length,
          sessionCount: deps.volumes.sessions().length,
        },
      }),
    },
    {
      method: 'GET',
      url: '/v1/volumes',
      summary: 'All served volumes, by name',
      responses: { 200: schema.VolumeList, ...errors },
      handler: async () => ({ status: 200, body: { volumes: deps.volumes.list().map(volumeBody) } }),
    },
    {
      method: 'POST',
      url: '/v1/volumes',
      summary: 'Create a volume; its target is served at once',
      body: schema.CreateVolumeBody,
      responses: { 201: schema.Volume, 409: schema.ErrorBody, ...errors },
      handler: async ({ body }) => {
        const input = body as z.output<typeof schema.CreateVolumeBody>;
        let sizeBytes: number;
        try {
          sizeBytes = parseSize(input.size);
        } catch (err) {
          throw new RestError(400, 'INVALID_PARAMETER', `size: ${(err as Error).message}`);
        }
        const snapshots = deps.snapshots?.service;
        if (input.snapshotId !== undefined && snapshots === undefined) throw new RestError(501, 'NOT_SUPPORTED', 'snapshots need the storage engine');
        const snapshotId = input.snapshotId;
        const volume = await deps.volumes.create({
          name: input.name,
          type: input.type,
          sizeBytes,
          ...(snapshotId !== undefined ? { prepare: (record) => snapshots!.restoreInto(snapshotId, record) } : {}),
        });
        return { status: 201, body: volumeBody(volume) };
      },
    },
    {
      method: 'GET',
      url: '/v1/volumes/:name',
      summary: 'One volume',
      params: schema.VolumeParams,
      responses: { 200: schema.Volume, 404: schema.ErrorBody, ...errors },
      handler: async ({ params }) => ({ status: 200, body: volumeBody(deps.volumes.get((params as { name: string }).name)) }),
    },
    {
      method: 'DELETE',
      url: '/v1/volumes/:name',
      summary: 'Delete a volume created through the API, with its data; its sessions are dropped',
      params: schema.VolumeParams,
      responses: { 204: null, 404: schema.ErrorBody, 409: schema.ErrorBody, ...errors },
      handler: async ({ params }) => {
        await deps.volumes.delete((params as { name: string }).name);
        return { status: 204 };
      },
    },
    {
      method: 'GET',
      url: '/v1/health',
      summary: 'Health with the reasons: the store conditions (disk full, I/O errors) that hold',
      responses: { 200: schema.Health, ...errors },
      handler: async () => {
        const conditions = deps.storeHealth?.conditions() ?? [];
        return { status: 200, body: { status: conditions.length > 0 ? 'degraded' : 'ok', conditions } };
      },
    },
    {
      method: 'GET',
      url: '/v1/sessions',
      summary: 'Logged-in iSCSI sessions',
      responses: { 200: schema.SessionList, ...errors },
      handler: async () => ({ status: 200, body: { sessions: deps.volumes.sessions() } }),
    },
    ...tapeRoutes(deps, arns),
    ...snapshotRoutes(deps),
    ...recoveryRoutes(deps),
  ];
}

export function registerRestRoutes(
  app: FastifyInstance,
  deps: AdminDeps,
  routes: RestRoute[],
  onInternalError?: (err: unknown, route: string) => void,
): void {
  for (const route of routes) {
    app.route({
      method: route.method,
      url: route.url,
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        try {
          checkBearer(req, deps.token);
          const params = route.params === undefined ? undefined : parseOrThrow(route.params, req.params, 'path');
          const body = route.body === undefined ? undefined : parseOrThrow(route.body, req.body ?? {}, 'body');
          const result = await route.handler({ params, body });
          reply.code(result.status);
          return result.body === undefined ? reply.send() : reply.send(result.body);
        } catch (err) {
          const restError = toRestError(err);
          if (restError.statusCode >= 500) onInternalError?.(err, `${route.method} ${route.url}`);
          if (restError.statusCode === 401) reply.header('www-authenticate', 'Bearer');
          return reply.code(restError.statusCode).send({ error: { code: restError.code, message: restError.message } });
        }
      },
    });
  }
}

/** The bearer token check of /v1/*, /metrics and /docs; no token = authentication is off. */
export function checkBearer(req: FastifyRequest, token: string | undefined): void {
  if (token === undefined) return;
  const header = req.headers.authorization ?? '';
  const presented = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '', 'utf8');
  const expected = Buffer.from(token, 'utf8');
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
    throw new RestError(401, 'UNAUTHORIZED', 'Authorization: Bearer TOKEN is required; the API token is api.token, or on the gateway\'s machine: shelfgate status --show-token --data-dir DIR');
  }
}

function parseOrThrow(zodSchema: z.ZodType, value: unknown, where: string): unknown {
  const parsed = zodSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const message = flattenUnionIssues(parsed.error.issues)
    .map((issue) => {
      const path = issue.path.map(String).join('.');
      if (issue.code === 'unrecognized_keys') return `${issue.keys.join(', ')}: unknown field`;
      return path === '' ? `${where}: ${issue.message}` : `${path}: ${issue.message}`;
    })
    .join('; ');
  throw new RestError(400, 'INVALID_PARAMETER', message);
}

function toRestError(err: unknown): RestError {
  if (err instanceof RestError) return err;
  if (err instanceof GatewayError) {
    const status = GATEWAY_ERROR_STATUS[err.code];
    if (status !== undefined) return new RestError(status, err.code, err.message);
  }
  return new RestError(500, 'INTERNAL', 'internal error; see the gateway log');
}
