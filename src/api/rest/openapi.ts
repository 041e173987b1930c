// The OpenAPI 3.1 document of the REST API, generated from the route table and its zod schemas
// (OpenAPI 3.1 schemas are JSON Schema 2020-12, which z.toJSONSchema produces).

import { z } from 'zod';
import type { RestRoute } from './routes.js';

export const OPENAPI_VERSION = '3.1.0';

export function openApiDocument(routes: RestRoute[], info: { version: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const operation: Record<string, unknown> = {
      operationId: operationId(route),
      summary: route.summary,
      security: [{ bearerAuth: [] }, {}],
      responses: Object.fromEntries(
        Object.entries(route.responses).map(([status, responseSchema]) => [
          status,
          {
            description: describeStatus(Number(status)),
            ...(responseSchema === null ? {} : { content: { 'application/json': { schema: jsonSchema(responseSchema, 'output') } } }),
          },
        ]),
      ),
    };
    if (route.params !== undefined) {
      const paramsSchema = jsonSchema(route.params, 'input') as { properties?: Record<string, unknown> };
      operation.parameters = Object.entries(paramsSchema.properties ?? {}).map(([name, s]) => ({ name, in: 'path', required: true, schema: s }));
    }
    if (route.body !== undefined) {
      operation.requestBody = { required: true, content: { 'application/json': { schema: jsonSchema(route.body, 'input') } } };
    }
    (paths[path] ??= {})[route.method.toLowerCase()] = operation;
  }
  return {
    openapi: OPENAPI_VERSION,
    info: {
      title: 'shelfgate REST API',
      version: info.version,
      description:
        'Volumes, tapes, the tape library, tape pools, sessions and gateway status. The AWS Storage Gateway wire protocol (POST / with X-Amz-Target) is served ' +
        'beside it for AWS SDKs and the AWS CLI.',
    },
    paths,
    components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'the API token (api.token, or <dataDir>/api-token); not needed when api.auth is none' } } },
  };
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io }) as Record<string, unknown>;
  return rest;
}

function operationId(route: RestRoute): string {
  const words = route.url
    .split('/')
    .filter((part) => part !== '' && part !== 'v1')
    .map((part) => (part.startsWith(':') ? `By${part[1].toUpperCase()}${part.slice(2)}` : part[0].toUpperCase() + part.slice(1)));
  return route.method.toLowerCase() + words.join('');
}

function describeStatus(status: number): string {
  const text: Record<number, string> = {
    200: 'OK',
    201: 'Created',
    204: 'No Content',
    400: 'Invalid request (the message names the field)',
    401: 'Bearer token missing or wrong',
    404: 'Not found',
    409: 'Conflict with the current state',
  };
  return text[status] ?? 'Response';
}
