// SAM-5 4.7 LUN encodings, SCSI port names (RFC 7143 4.2.7.1) and RFC 1982 serial arithmetic.
import t from 'tap';
import { decodeLun, encodeLun, initiatorPortName, serialLe, serialLt, targetPortName } from '../../iscsi/names.js';

t.test('Lun encodings', async (t) => {
  t.equal(encodeLun(0).toString('hex'), '0000000000000000');
  t.equal(encodeLun(255).toString('hex'), '00ff000000000000', 'peripheral device addressing');
  t.equal(encodeLun(256).toString('hex'), '4100000000000000', 'flat space addressing');
  t.equal(encodeLun(16383).toString('hex'), '7fff000000000000');
  for (const lun of [0, 1, 255, 256, 300, 16383]) t.equal(decodeLun(encodeLun(lun).readBigUInt64BE(0)), lun);
  t.equal(decodeLun(0x0105000000000000n), null, 'bus 1 is not ours');
  t.equal(decodeLun(0x8001000000000000n), null, 'logical unit addressing is not supported');
  t.equal(decodeLun(0x0001000100000000n), null, 'second level LUNs are not supported');
});

t.test('Port names', async (t) => {
  t.equal(initiatorPortName('iqn.2026-11.test:h', Buffer.from('80123456789a', 'hex')), 'iqn.2026-11.test:h,i,0x80123456789a');
  t.equal(targetPortName('iqn.2026-11.dev.shelfgate:v', 1), 'iqn.2026-11.dev.shelfgate:v,t,0x0001');
});

t.test('Serial number arithmetic', async (t) => {
  t.ok(serialLt(1, 2));
  t.ok(serialLt(0xffffffff, 0), 'wraps');
  t.notOk(serialLt(0, 0xffffffff));
  t.notOk(serialLt(5, 5));
  t.ok(serialLe(5, 5));
});
