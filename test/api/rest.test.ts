// The REST API (/v1/*) and its OpenAPI document, through inject().
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startAdminGateway } from '../helpers/admin-gateway.js';
import { runTool } from '../helpers/libiscsi.js';

const TOKEN = 'test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

t.test('Rest.Volumes: create, list, get, delete', async (t) => {
  const { inject } = await startAdminGateway(t, { volumes: ['cfg:1GiB'], listen: false });
  const created = await inject({ method: 'POST', url: '/v1/volumes', payload: { name: 'web', size: '2GiB' } });
  t.equal(created.statusCode, 201, 'created');
  t.match(created.json(), {
    name: 'web',
    type: 'stored',
    sizeBytes: 2 * 2 ** 30,
    targetName: 'iqn.2026-11.dev.shelfgate:shelfgate-web',
    origin: 'api',
    chapEnabled: false,
    writeCache: true,
    volumeId: /^vol-[0-9A-F]{8}$/,
  });
  const list = await inject({ method: 'GET', url: '/v1/volumes' });
  t.equal(list.statusCode, 200);
  t.same(
    (list.json() as { volumes: Array<{ name: string; origin: string }> }).volumes.map((v) => [v.name, v.origin]),
    [
      ['cfg', 'config'],
      ['web', 'api'],
    ],
  );
  t.match((await inject({ method: 'GET', url: '/v1/volumes/web' })).json(), { name: 'web', sizeBytes: 2 * 2 ** 30 });
  const duplicate = await inject({ method: 'POST', url: '/v1/volumes', payload: { name: 'web', size: '1GiB' } });
  t.equal(duplicate.statusCode, 409);
  t.equal(duplicate.json().error.code, 'GW_VOLUME_EXISTS');
  const deleted = await inject({ method: 'DELETE', url: '/v1/volumes/web' });
  t.equal(deleted.statusCode, 204);
  t.equal(deleted.body, '');
  const gone = await inject({ method: 'GET', url: '/v1/volumes/web' });
  t.equal(gone.statusCode, 404);
  t.equal(gone.json().error.code, 'GW_VOLUME_NOT_FOUND');
  const configured = await inject({ method: 'DELETE', url: '/v1/volumes/cfg' });
  t.equal(configured.statusCode, 409);
  t.match(configured.json().error.message, /configuration file/);
});

t.test('Rest.Volumes.Validation: 400 naming the field, nothing created', async (t) => {
  const { inject } = await startAdminGateway(t, { listen: false });
  const cases: Array<[unknown, RegExp]> = [
    [{ name: 'Bad_Name', size: '1GiB' }, /^name: /],
    [{ name: 'ok', size: '10MiB' }, /^size: a stored volume must be a whole number of GiB/],
    [{ name: 'ok', size: '1GB' }, /^size: .*GiB/],
    [{ name: 'ok', size: '1GiB', type: 'tape' }, /^type: /],
    [{ name: 'ok', size: '1GiB', extra: 1 }, /extra: unknown field/],
    [{ size: '1GiB' }, /^name: /],
  ];
  for (const [payload, message] of cases) {
    const res = await inject({ method: 'POST', url: '/v1/volumes', payload: payload as object });
    t.equal(res.statusCode, 400, JSON.stringify(payload));
    t.match(res.json().error.message, message, JSON.stringify(payload));
  }
  t.same((await inject({ method: 'GET', url: '/v1/volumes' })).json(), { volumes: [] });
  t.equal((await inject({ method: 'GET', url: '/v1/volumes/UPPER' })).statusCode, 400);
});

t.test('Rest.Gateway and sessions', async (t) => {
  const { inject, iscsiPort, admin } = await startAdminGateway(t, { volumes: ['a:1GiB'], listen: false });
  const res = await inject({ method: 'GET', url: '/v1/gateway' });
  t.equal(res.statusCode, 200);
  t.match(res.json(), {
    gatewayId: admin.settings.gatewayId,
    gatewayARN: `arn:aws:storagegateway:eu-west-1:123456789012:gateway/${admin.settings.gatewayId}`,
    name: 'shelfgate',
    iscsi: { host: '127.0.0.1', port: iscsiPort, advertise: [] },
    volumeCount: 1,
    sessionCount: 0,
  });
  t.same((await inject({ method: 'GET', url: '/v1/sessions' })).json(), { sessions: [] });
});

t.test('Rest.BearerToken: required on /v1, /metrics and /docs by default; /health open and says only up/degraded', async (t) => {
  const { app } = await startAdminGateway(t, { token: TOKEN, listen: false, volumes: ['held:1GiB'] });
  const missing = await app.inject({ method: 'GET', url: '/v1/volumes' });
  t.equal(missing.statusCode, 401);
  t.equal(missing.headers['www-authenticate'], 'Bearer');
  t.equal((await app.inject({ method: 'GET', url: '/v1/volumes', headers: { authorization: 'Bearer wrong' } })).statusCode, 401);
  // The row: with no credentials a volume was created (201) and one deleted (204).
  t.equal((await app.inject({ method: 'POST', url: '/v1/volumes', payload: { name: 'x', size: '1GiB' } })).statusCode, 401, 'create refused');
  const created = await app.inject({ method: 'POST', url: '/v1/volumes', headers: auth, payload: { name: 'x', size: '1GiB' } });
  t.equal(created.statusCode, 201);
  const refused = await app.inject({ method: 'DELETE', url: '/v1/volumes/x' });
  t.equal(refused.statusCode, 401);
  t.equal((await app.inject({ method: 'GET', url: '/v1/volumes/x', headers: auth })).statusCode, 200, 'not deleted');
  for (const url of ['/metrics', '/docs', '/docs/openapi.json']) {
    t.equal((await app.inject({ method: 'GET', url })).statusCode, 401, `${url} without the token`);
    t.equal((await app.inject({ method: 'GET', url, headers: auth })).statusCode, 200, `${url} with the token`);
  }
  const health = await app.inject({ method: 'GET', url: '/health' });
  t.equal(health.statusCode, 200);
  t.same(health.json(), { status: 'ok' }, '/health: status only, no volumes or sessions');
  t.same((await app.inject({ method: 'GET', url: '/v1/health', headers: auth })).json(), { status: 'ok', conditions: [] });
});

t.test('Rest.AuthNone: api.auth none serves /v1 and /metrics without a token', async (t) => {
  const open = await startAdminGateway(t, { token: null, listen: false });
  t.equal((await open.app.inject({ method: 'POST', url: '/v1/volumes', payload: { name: 'y', size: '1GiB' } })).statusCode, 201, 'auth none: no token needed');
  t.equal((await open.app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200);
});

t.test('Rest.HostCheck: a Host that is not a name of the gateway is refused (DNS rebinding)', async (t) => {
  const { app, endpoint } = await startAdminGateway(t, { token: TOKEN });
  for (const host of ['evil.example', 'evil.example:8080', '10.255.255.1']) {
    const res = await app.inject({ method: 'GET', url: '/v1/volumes', headers: { ...auth, host } });
    t.equal(res.statusCode, 421, host);
    t.equal(res.json().error.code, 'HOST_NOT_ALLOWED');
    t.equal((await app.inject({ method: 'GET', url: '/health', headers: { host } })).statusCode, 421, `/health with Host ${host}`);
  }
  for (const host of ['localhost', 'LOCALHOST:8080', '127.0.0.1:1', '[::1]:8080']) {
    t.equal((await app.inject({ method: 'GET', url: '/v1/volumes', headers: { ...auth, host } })).statusCode, 200, host);
  }
  // Over real TCP: fetch sends Host 127.0.0.1:PORT.
  t.equal((await fetch(`${endpoint}/v1/volumes`, { headers: auth })).status, 200);
});

t.test('Rest.Concurrency: simultaneous creates of one name make one volume', async (t) => {
  const { inject } = await startAdminGateway(t, { listen: false });
  const results = await Promise.all(
    Array.from({ length: 6 }, () => inject({ method: 'POST', url: '/v1/volumes', payload: { name: 'same', size: '1GiB' } })),
  );
  t.same(results.map((r) => r.statusCode).sort(), [201, 409, 409, 409, 409, 409]);
  const many = await Promise.all(
    Array.from({ length: 5 }, (_, i) => inject({ method: 'POST', url: '/v1/volumes', payload: { name: `v${i}`, size: '1GiB' } })),
  );
  t.same(many.map((r) => r.statusCode), [201, 201, 201, 201, 201]);
  const ids = (await inject({ method: 'GET', url: '/v1/volumes' })).json().volumes.map((v: { volumeId: string }) => v.volumeId);
  t.equal(new Set(ids).size, 6, 'distinct volume ids');
});

/** Structural checks of an OpenAPI 3.x document (OpenAPI Specification 3.1.0 section 4.8). */
function validateOpenApi(doc: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (typeof doc.openapi !== 'string' || !/^3\.\d+\.\d+$/.test(doc.openapi)) problems.push('openapi: must be 3.x.y');
  const info = doc.info;
  if (!isObject(info) || typeof info.title !== 'string' || typeof info.version !== 'string') problems.push('info: title and version required');
  if (!isObject(doc.paths)) return [...problems, 'paths: required object'];
  const schemes = isObject(doc.components) && isObject(doc.components.securitySchemes) ? doc.components.securitySchemes : {};
  const operationIds = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths)) {
    if (!path.startsWith('/')) problems.push(`${path}: must start with /`);
    if (!isObject(item)) {
      problems.push(`${path}: path item must be an object`);
      continue;
    }
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    for (const [method, op] of Object.entries(item)) {
      const where = `${method.toUpperCase()} ${path}`;
      if (!['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'].includes(method)) problems.push(`${where}: unknown method`);
      if (!isObject(op)) continue;
      if (typeof op.operationId === 'string') {
        if (operationIds.has(op.operationId)) problems.push(`${where}: duplicate operationId`);
        operationIds.add(op.operationId);
      }
      if (!isObject(op.responses) || Object.keys(op.responses).length === 0) problems.push(`${where}: responses required`);
      for (const [status, response] of Object.entries(isObject(op.responses) ? op.responses : {})) {
        if (!/^([1-5]\d\d|[1-5]XX|default)$/.test(status)) problems.push(`${where} ${status}: bad status key`);
        if (!isObject(response) || typeof response.description !== 'string') problems.push(`${where} ${status}: description required`);
      }
      const params = Array.isArray(op.parameters) ? (op.parameters as Array<Record<string, unknown>>) : [];
      for (const name of templated) {
        if (!params.some((p) => p.name === name && p.in === 'path' && p.required === true)) problems.push(`${where}: path parameter ${name} undeclared`);
      }
      if (op.requestBody !== undefined && !(isObject(op.requestBody) && isObject(op.requestBody.content))) problems.push(`${where}: requestBody.content required`);
      for (const requirement of Array.isArray(op.security) ? (op.security as Array<Record<string, unknown>>) : []) {
        for (const scheme of Object.keys(requirement)) if (!(scheme in schemes)) problems.push(`${where}: unknown security scheme ${scheme}`);
      }
    }
  }
  return problems;
}

t.test('Rest.OpenApi: a structurally valid OpenAPI 3 document generated from the zod schemas', async (t) => {
  const { inject } = await startAdminGateway(t, { listen: false });
  const res = await inject({ method: 'GET', url: '/docs/openapi.json' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /application\/json/);
  const doc = res.json() as Record<string, unknown>;
  t.same(validateOpenApi(doc), []);
  const paths = doc.paths as Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Record<string, unknown> }> } }>>;
  t.same(Object.keys(paths).sort(), [
    '/v1/account/gateways',
    '/v1/account/snapshots',
    '/v1/archives',
    '/v1/archives/{barcode}',
    '/v1/gateway',
    '/v1/health',
    '/v1/library',
    '/v1/pools',
    '/v1/pools/{poolId}',
    '/v1/recoveries',
    '/v1/recoveries/{from}',
    '/v1/sessions',
    '/v1/snapshots',
    '/v1/snapshots/{snapshotId}',
    '/v1/tapes',
    '/v1/tapes/{barcode}',
    '/v1/tapes/{barcode}/cancel-archival',
    '/v1/tapes/{barcode}/retrieve',
    '/v1/volumes',
    '/v1/volumes/{name}',
  ]);
  const createSchema = paths['/v1/volumes'].post.requestBody?.content['application/json'].schema;
  t.match(createSchema, { type: 'object', required: ['name', 'size'], properties: { name: { type: 'string', pattern: '^[-.a-z0-9]+$' } } });
  t.same(validateOpenApi({ openapi: '2.0', paths: { 'x/{id}': { get: {} } } }).length > 0, true, 'the validator catches problems');
  const page = await inject({ method: 'GET', url: '/docs' });
  t.match(page.headers['content-type'], /text\/html/);
  t.match(page.body, '/docs/openapi.json');
});

t.test('Rest.Restart: gateway id, API volumes and their CHAP survive a restart', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'shelfgate-api-restart-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const first = await startAdminGateway(t, { dataDir, listen: false });
  t.equal((await first.inject({ method: 'POST', url: '/v1/volumes', payload: { name: 'kept', size: '1GiB' } })).statusCode, 201);
  t.equal((await first.inject({ method: 'POST', url: '/v1/volumes', payload: { name: 'dropped', size: '1GiB' } })).statusCode, 201);
  t.equal((await first.inject({ method: 'DELETE', url: '/v1/volumes/dropped' })).statusCode, 204);
  await first.admin.volumes.updateChap('kept', { initiatorName: 'iqn.2026-11.test:host', secretToAuthenticateInitiator: 'secret-kept-1' });
  const kept = first.admin.volumes.get('kept');
  await first.close();

  const second = await startAdminGateway(t, { dataDir, listen: false });
  t.equal(second.admin.settings.gatewayId, first.admin.settings.gatewayId);
  t.same(second.admin.volumes.list().map((v) => v.name), ['kept']);
  t.match(second.admin.volumes.get('kept'), { serial: kept.serial, origin: 'api', chap: { initiatorName: 'iqn.2026-11.test:host' } });
});

t.test('Rest.DeleteRecreate: a volume created after a delete reads zeros, not the old data', async (t) => {
  const { inject, iscsiPort } = await startAdminGateway(t, { listen: false });
  const url = `iscsi://127.0.0.1:${iscsiPort}/iqn.2026-11.dev.shelfgate:shelfgate-reuse/0`;
  t.equal((await inject({ method: 'POST', url: '/v1/volumes', payload: { name: 'reuse', size: '1GiB' } })).statusCode, 201);
  const written = await runTool('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 64k', url]);
  t.equal(written.exitCode, 0, 'qemu-io write', { stderr: written.stderr });
  t.equal((await inject({ method: 'DELETE', url: '/v1/volumes/reuse' })).statusCode, 204);
  t.equal((await inject({ method: 'POST', url: '/v1/volumes', payload: { name: 'reuse', size: '1GiB' } })).statusCode, 201);
  const read = await runTool('qemu-io', ['-f', 'raw', '-c', 'read -P 0 0 64k', url]);
  t.equal(read.exitCode, 0, 'qemu-io read', { stderr: read.stderr });
  t.match(read.stdout, /read 65536\/65536 bytes/);
  t.notMatch(read.stdout + read.stderr, /Pattern verification failed/);
});

t.test('Rest.Volumes.TargetNameTaken: a volume cannot shadow another target', async (t) => {
  const { inject } = await startAdminGateway(t, { listen: false, otherTargets: ['iqn.2026-11.dev.shelfgate:shelfgate-changer'] });
  const res = await inject({ method: 'POST', url: '/v1/volumes', payload: { name: 'changer', size: '1GiB' } });
  t.equal(res.statusCode, 409);
  t.match(res.json().error.message, /shelfgate-changer exists already/);
});
