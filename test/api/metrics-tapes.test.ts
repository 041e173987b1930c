// /metrics for the tape library: tapes by status, and per-drive counters that move when a real
// iSCSI initiator loads a cartridge (MOVE MEDIUM on the changer) and writes and reads records.
import t from 'tap';
import { startAdminGateway } from '../helpers/admin-gateway.js';
import { loginTarget, moveMedium, mustBeGood, read6, rewind, write6 } from '../helpers/tape-commands.js';

const INITIATOR = 'iqn.2026-11.dev.shelfgate:metrics-tapes';
const RECORD_BYTES = 65536;

function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const labelText = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labelText}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

t.test('Metrics.TapeDrive.CountersMove: load, write, rewind, read', async (t) => {
  const gateway = await startAdminGateway(t, { listen: false, tapes: { storageSlots: 4, importExportSlots: 1 } });
  const created = await gateway.inject({ method: 'POST', url: '/v1/tapes', payload: { prefix: 'MET', count: 2 } });
  t.equal(created.statusCode, 201);
  const [tape] = (created.json() as { tapes: Array<{ barcode: string; element: { address: number } }> }).tapes;
  const scrape = async () => (await gateway.inject({ method: 'GET', url: '/metrics' })).body;

  const before = await scrape();
  t.equal(sample(before, 'shelfgate_tapes', { status: 'AVAILABLE' }), 2);
  t.equal(sample(before, 'shelfgate_tapes', { status: 'ARCHIVED' }), 0);
  t.equal(sample(before, 'shelfgate_tape_drive_loaded', { drive: '01' }), 0);
  t.equal(sample(before, 'shelfgate_tape_drive_write_bytes_total', { drive: '01' }), 0);
  t.match(before, '# TYPE shelfgate_tape_drive_write_bytes_total counter\n');
  t.equal(sample(before, 'shelfgate_cloud_failing', { worker: 'archive' }), 0, 'the archive worker is not failing');
  t.equal(sample(before, 'shelfgate_cloud_outages_total', { worker: 'archive' }), 0);
  t.match(before, '# TYPE shelfgate_cloud_failed_attempts_total counter\n');

  const library = gateway.vtl!.library;
  const changer = await loginTarget(gateway.iscsiPort, INITIATOR, 'iqn.2026-11.dev.shelfgate:shelfgate-mediachanger');
  t.teardown(() => changer.destroy());
  mustBeGood('MOVE MEDIUM', await changer.scsi(moveMedium(tape!.element.address, library.driveAddress(0))));
  const drive = await loginTarget(gateway.iscsiPort, INITIATOR, 'iqn.2026-11.dev.shelfgate:shelfgate-tapedrive-01');
  t.teardown(() => drive.destroy());
  for (const fill of [0x11, 0x22]) {
    mustBeGood('WRITE(6)', await drive.scsi(write6(RECORD_BYTES), { dataOut: Buffer.alloc(RECORD_BYTES, fill) }));
  }
  mustBeGood('REWIND', await drive.scsi(rewind()));
  const read = mustBeGood('READ(6)', await drive.scsi(read6(RECORD_BYTES), { readLength: RECORD_BYTES }));
  t.equal(read.dataIn.subarray(0, 4).toString('hex'), '11111111');

  const after = await scrape();
  t.equal(sample(after, 'shelfgate_tape_drive_loaded', { drive: '01' }), 1);
  t.equal(sample(after, 'shelfgate_tape_drive_write_bytes_total', { drive: '01' }), 2 * RECORD_BYTES);
  t.equal(sample(after, 'shelfgate_tape_drive_write_records_total', { drive: '01' }), 2);
  t.equal(sample(after, 'shelfgate_tape_drive_read_bytes_total', { drive: '01' }), RECORD_BYTES);
  t.equal(sample(after, 'shelfgate_tape_drive_write_bytes_total', { drive: '02' }), 0, 'the other drives did not move');
  const library2 = await gateway.inject({ method: 'GET', url: '/v1/library' });
  t.match(library2.json().drives[0], { barcode: tape!.barcode, writeBytes: 2 * RECORD_BYTES, readBytes: RECORD_BYTES });
  const described = await gateway.inject({ method: 'GET', url: `/v1/tapes/${tape!.barcode}` });
  t.match(described.json(), { usedBytes: 2 * RECORD_BYTES, element: { type: 'data-transfer' } });

  const other = (created.json() as { tapes: Array<{ barcode: string }> }).tapes[1]!;
  t.equal((await gateway.inject({ method: 'DELETE', url: `/v1/tapes/${other.barcode}` })).statusCode, 204);
  const deleted = await scrape();
  t.equal(sample(deleted, 'shelfgate_tapes', { status: 'DELETED' }), 1, 'a deleted tape is counted as DELETED');
  t.equal(
    sample(deleted, 'shelfgate_tapes', { status: 'AVAILABLE' }),
    sample(after, 'shelfgate_tapes', { status: 'AVAILABLE' })! - 1,
    'and no longer as AVAILABLE',
  );
});
