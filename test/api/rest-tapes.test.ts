// The REST tape API (/v1/tapes, /v1/library, /v1/pools) through inject().
import t from 'tap';
import { startAdminGateway } from '../helpers/admin-gateway.js';

const GIB = 1024 ** 3;
const TAPES = { storageSlots: 6, importExportSlots: 2 };

t.test('Rest.Tapes: create by prefix and by barcode, list, get, delete', async (t) => {
  const { inject } = await startAdminGateway(t, { listen: false, tapes: TAPES });
  const byPrefix = await inject({ method: 'POST', url: '/v1/tapes', payload: { prefix: 'RST', count: 2 } });
  t.equal(byPrefix.statusCode, 201, byPrefix.body);
  const created = (byPrefix.json() as { tapes: Array<{ barcode: string }> }).tapes;
  t.equal(created.length, 2);
  t.match(created[0], { barcode: /^RST[0-9A-F]{7}$/, status: 'AVAILABLE', sizeBytes: 100 * GIB, usedBytes: 0, worm: false, element: { type: 'storage' } });
  const byBarcode = await inject({
    method: 'POST',
    url: '/v1/tapes',
    payload: { barcode: 'IEX00001', sizeBytes: 200 * GIB, worm: true, slotType: 'import-export' },
  });
  t.equal(byBarcode.statusCode, 201, byBarcode.body);
  t.match(byBarcode.json(), { tapes: [{ barcode: 'IEX00001', sizeBytes: 200 * GIB, worm: true, element: { type: 'import-export' }, tapeARN: /:tape\/IEX00001$/ }] });

  const list = await inject({ method: 'GET', url: '/v1/tapes' });
  t.same((list.json() as { tapes: Array<{ barcode: string }> }).tapes.map((tape) => tape.barcode), ['IEX00001', ...created.map((c) => c.barcode).sort()]);
  t.match((await inject({ method: 'GET', url: '/v1/tapes/IEX00001' })).json(), { barcode: 'IEX00001', status: 'AVAILABLE' });
  t.equal((await inject({ method: 'DELETE', url: '/v1/tapes/IEX00001' })).statusCode, 204);
  const gone = await inject({ method: 'DELETE', url: '/v1/tapes/NOSUCH01' });
  t.equal(gone.statusCode, 404);
  t.equal(gone.json().error.code, 'GW_TAPE_NOT_FOUND');
  const reused = await inject({ method: 'POST', url: '/v1/tapes', payload: { barcode: 'IEX00001' } });
  t.equal(reused.statusCode, 409);
  t.equal(reused.json().error.code, 'GW_TAPE_BARCODE_EXISTS');
});

t.test('Rest.Tapes.Invalid: the message names the field', async (t) => {
  const { inject } = await startAdminGateway(t, { listen: false, tapes: TAPES });
  const cases: Array<[unknown, RegExp]> = [
    [{ prefix: 'abc', count: 1 }, /prefix: must be 1 to 4 letters A-Z/],
    [{ prefix: 'AB', count: 11 }, /count: must be 1 to 10/],
    [{ prefix: 'AB', count: 1, sizeBytes: 100 * GIB + 1 }, /sizeBytes: must be a whole number of GiB/],
    [{ barcode: 'x' }, /barcode: must be 5 to 16 characters/],
    [{ barcode: 'ABCDE', poolId: 'pool-00000000' }, /poolId: no tape pool/],
    // Matches neither form of the body (a union): the message names the field of the form meant.
    [{ prefix: 'AB', count: 'two' }, /^count: .*expected number/],
    [{ barcode: 'ABCDE', worm: 'yes' }, /^worm: .*expected boolean/],
  ];
  for (const [payload, message] of cases) {
    const res = await inject({ method: 'POST', url: '/v1/tapes', payload: payload as Record<string, unknown> });
    t.equal(res.statusCode, 400, JSON.stringify(payload));
    t.match(res.json().error.message, message);
  }
  const full = await inject({ method: 'POST', url: '/v1/tapes', payload: { prefix: 'F', count: 7 } });
  t.equal(full.statusCode, 409, 'more tapes than empty slots');
  t.equal(full.json().error.code, 'GW_NO_EMPTY_SLOT');
  t.same((await inject({ method: 'GET', url: '/v1/tapes' })).json(), { tapes: [] }, 'nothing created');
});

t.test('Rest.Library: changer type, drives, elements with barcodes', async (t) => {
  const { inject } = await startAdminGateway(t, { listen: false, tapes: TAPES });
  await inject({ method: 'POST', url: '/v1/tapes', payload: { barcode: 'LIB00001' } });
  const res = await inject({ method: 'GET', url: '/v1/library' });
  t.equal(res.statusCode, 200);
  const body = res.json() as {
    changerType: string;
    changerTarget: string;
    drives: Array<{ index: number; targetName: string; readBytes: number }>;
    elements: Array<{ type: string; full: boolean; barcode?: string }>;
  };
  t.equal(body.changerType, 'AWS-Gateway-VTL');
  t.equal(body.changerTarget, 'iqn.2026-11.dev.shelfgate:shelfgate-mediachanger');
  t.equal(body.drives.length, 10);
  t.match(body.drives[9], { index: 10, targetName: 'iqn.2026-11.dev.shelfgate:shelfgate-tapedrive-10', readBytes: 0, writeBytes: 0 });
  t.same(
    ['storage', 'import-export', 'data-transfer'].map((type) => body.elements.filter((e) => e.type === type).length),
    [6, 2, 10],
  );
  t.same(body.elements.filter((e) => e.full).map((e) => [e.type, e.barcode]), [['storage', 'LIB00001']]);
});

t.test('Rest.Pools: create, list, refuse deleting a pool in use', async (t) => {
  const { inject } = await startAdminGateway(t, { listen: false, tapes: TAPES });
  const created = await inject({ method: 'POST', url: '/v1/pools', payload: { name: 'gov-30', storageClass: 'GLACIER', retentionLockType: 'GOVERNANCE', retentionLockTimeInDays: 30 } });
  t.equal(created.statusCode, 201, created.body);
  const pool = created.json() as { poolId: string };
  t.match(pool, { poolId: /^pool-[0-9A-F]{8}$/, name: 'gov-30', storageClass: 'GLACIER', retentionLockType: 'GOVERNANCE', retentionLockTimeInDays: 30 });
  t.equal((await inject({ method: 'GET', url: '/v1/pools' })).json().pools.length, 1);
  const bad = await inject({ method: 'POST', url: '/v1/pools', payload: { name: 'n', storageClass: 'GLACIER', retentionLockTimeInDays: 5 } });
  t.equal(bad.statusCode, 400);
  t.match(bad.json().error.message, /retention lock type/);
  t.equal((await inject({ method: 'POST', url: '/v1/tapes', payload: { barcode: 'POOLT001', poolId: pool.poolId } })).statusCode, 201);
  const inUse = await inject({ method: 'DELETE', url: `/v1/pools/${pool.poolId}` });
  t.equal(inUse.statusCode, 409);
  t.equal(inUse.json().error.code, 'GW_POOL_IN_USE');
  t.equal((await inject({ method: 'DELETE', url: '/v1/tapes/POOLT001' })).statusCode, 204);
  t.equal((await inject({ method: 'DELETE', url: `/v1/pools/${pool.poolId}` })).statusCode, 204);
  t.equal((await inject({ method: 'DELETE', url: `/v1/pools/${pool.poolId}` })).statusCode, 404);
});

t.test('Rest.Tapes.NoLibrary: 404 TAPE_LIBRARY_DISABLED', async (t) => {
  const { inject } = await startAdminGateway(t, { listen: false });
  const res = await inject({ method: 'GET', url: '/v1/tapes' });
  t.equal(res.statusCode, 404);
  t.equal(res.json().error.code, 'TAPE_LIBRARY_DISABLED');
});
