// The REST routes of the virtual tape shelf through inject(): GET /v1/archives, POST
// /v1/tapes/:barcode/cancel-archival and /retrieve, DELETE /v1/archives/:barcode. The archiver
// runs one round at a time.
import t from 'tap';
import { startAdminGateway, type AdminGateway } from '../helpers/admin-gateway.js';

const TAPES = { storageSlots: 4, importExportSlots: 2 };

async function exportWrittenTape(gateway: AdminGateway, barcode: string): Promise<void> {
  const created = await gateway.inject({ method: 'POST', url: '/v1/tapes', payload: { barcode } });
  if (created.statusCode !== 201) throw new Error(created.body);
  const { media, library } = gateway.vtl!;
  const medium = await media.open(barcode);
  await medium.writeRecord(Buffer.alloc(2048, 0x3c));
  await medium.writeFilemarks(1);
  await media.close(medium);
  await library.moveMedium(library.elementOf(barcode)!.address, library.emptyElements('import-export')[0]!);
}

async function runUntil(gateway: AdminGateway, barcode: string, status: string): Promise<void> {
  for (let round = 0; round < 200; round++) {
    if (gateway.vtl!.catalog.get(barcode)?.status === status) return;
    if (await gateway.admin.tapes!.archiver.runOnce()) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`tape ${barcode} never ${status}`);
}

t.test('RestArchives.Lifecycle: cancel-archival, archive, retrieve, delete', async (t) => {
  const gateway = await startAdminGateway(t, { listen: false, tapes: TAPES });
  const { inject } = gateway;
  await exportWrittenTape(gateway, 'RSA00001');
  const cancelled = await inject({ method: 'POST', url: '/v1/tapes/RSA00001/cancel-archival' });
  t.equal(cancelled.statusCode, 200);
  t.match(cancelled.json(), { barcode: 'RSA00001', status: 'AVAILABLE', element: { type: 'storage' } });
  const again = await inject({ method: 'POST', url: '/v1/tapes/RSA00001/cancel-archival' });
  t.equal(again.statusCode, 409, 'not IN TRANSIT TO VTS any more');

  const { library } = gateway.vtl!;
  await library.moveMedium(library.elementOf('RSA00001')!.address, library.emptyElements('import-export')[0]!);
  await runUntil(gateway, 'RSA00001', 'ARCHIVED');
  const archives = await inject({ method: 'GET', url: '/v1/archives' });
  t.equal(archives.statusCode, 200);
  t.match(archives.json(), { archives: [{ barcode: 'RSA00001', status: 'ARCHIVED', usedBytes: 2048, poolId: 'GLACIER', storageClass: 'GLACIER' }] });

  const retrieving = await inject({ method: 'POST', url: '/v1/tapes/RSA00001/retrieve' });
  t.equal(retrieving.statusCode, 200);
  t.match(retrieving.json(), { status: 'RETRIEVING', progressPercent: 0 });
  t.equal((await inject({ method: 'DELETE', url: '/v1/archives/RSA00001' })).statusCode, 409, 'RETRIEVING: not deletable');
  await runUntil(gateway, 'RSA00001', 'RETRIEVED');
  t.match((await inject({ method: 'GET', url: '/v1/tapes/RSA00001' })).json(), { status: 'RETRIEVED', element: { type: 'storage' } });

  // Eject the retrieved tape: back to the shelf (ARCHIVED), then delete the archive.
  await library.moveMedium(library.elementOf('RSA00001')!.address, library.emptyElements('import-export')[0]!);
  await runUntil(gateway, 'RSA00001', 'ARCHIVED');
  t.equal((await inject({ method: 'DELETE', url: '/v1/archives/RSA00001' })).statusCode, 204);
  t.same((await inject({ method: 'GET', url: '/v1/archives' })).json(), { archives: [] });
  t.equal((await inject({ method: 'DELETE', url: '/v1/archives/NOSUCH01' })).statusCode, 404);
});
