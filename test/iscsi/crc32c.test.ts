// CRC32C against the RFC 3720 B.4 test vectors, continuation, and the wire byte order of digests.

import t from 'tap';
import { crc32c, readDigest, writeDigest } from '../../iscsi/crc32c.js';
import { hex } from '../fixtures/pdu-fixtures.js';

t.test('RFC 3720 B.4 test vectors', async (t) => {
  t.equal(crc32c(Buffer.alloc(32, 0x00)).toString(16), '8a9136aa', '32 bytes of zeros');
  t.equal(crc32c(Buffer.alloc(32, 0xff)).toString(16), '62a8ab43', '32 bytes of ones');
  const incrementing = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
  t.equal(crc32c(incrementing).toString(16), '46dd794e', '32 incrementing bytes');
  const decrementing = Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i));
  t.equal(crc32c(decrementing).toString(16), '113fdb5c', '32 decrementing bytes');
  const read10 = Buffer.from(
    hex(
      '01c00000 00000000 00000000 00000000',
      '14000000 00000400 00000014 00000018',
      '28000000 00000000 02000000 00000000',
    ),
    'hex',
  );
  t.equal(crc32c(read10).toString(16), 'd9963a56', 'iSCSI SCSI Read (10) command PDU');
});

t.test('empty input and standard check value', async (t) => {
  t.equal(crc32c(Buffer.alloc(0)), 0);
  t.equal(crc32c(Buffer.from('123456789')).toString(16), 'e3069283');
});

t.test('continuation over any split equals one pass', async (t) => {
  const data = Buffer.from(Array.from({ length: 67 }, (_, i) => (i * 37 + 11) & 0xff));
  const whole = crc32c(data);
  for (let at = 0; at <= data.length; at++) {
    t.equal(crc32c(data.subarray(at), crc32c(data.subarray(0, at))), whole, `split at ${at}`);
  }
});

t.test('unaligned views of a larger buffer', async (t) => {
  const big = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
  const view = big.subarray(3, 35);
  t.equal(crc32c(view), crc32c(Buffer.from(view)));
});

t.test('digest goes on the wire least significant byte first', async (t) => {
  const out = Buffer.alloc(4);
  writeDigest(out, 0, crc32c(Buffer.alloc(32)));
  t.equal(out.toString('hex'), 'aa36918a', 'RFC 3720 B.4 lists the bytes aa 36 91 8a');
  t.equal(readDigest(out, 0).toString(16), '8a9136aa');
});
