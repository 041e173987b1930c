// Sense data bytes (SPC-4 4.5): fixed and descriptor formats, field pointers, INFORMATION.

import t from 'tap';
import { buildDescriptorSense, buildFixedSense, Sense } from '../../../iscsi/scsi/sense.js';

t.test('fixed format: INVALID FIELD IN CDB with field and bit pointer', async (t) => {
  t.equal(
    buildFixedSense(Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 1, bitPointer: 7 }).toString('hex'),
    // 70h, key 5, additional length 10, ASC/ASCQ 24/00, SKSV|C/D|BPV|bit 7, field 0001
    '700005000000000a00000000240000cf0001',
  );
});

t.test('fixed format: INVALID FIELD IN PARAMETER LIST has C/D = 0', async (t) => {
  t.equal(buildFixedSense(Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: 20 }).toString('hex'), '700005000000000a00000000260000800014');
});

t.test('fixed format: MISCOMPARE with INFORMATION sets VALID', async (t) => {
  t.equal(
    buildFixedSense(Sense.MISCOMPARE_DURING_VERIFY_OPERATION, { information: 0x207 }).toString('hex'),
    'f0000e000002070a000000001d0000000000',
  );
});

t.test('fixed format: stream bits for tapes', async (t) => {
  t.equal(
    buildFixedSense(Sense.NO_ADDITIONAL_SENSE_INFORMATION, { filemark: true, incorrectLength: true, information: 1 }).toString('hex'),
    // VALID, FILEMARK|ILI with key 0, INFORMATION 1
    'f000a0000000010a00000000000000000000',
  );
});

t.test('descriptor format: information, stream commands and sense key specific descriptors', async (t) => {
  t.equal(buildDescriptorSense(Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE).toString('hex'), '7205210000000000');
  t.equal(
    buildDescriptorSense(Sense.MISCOMPARE_DURING_VERIFY_OPERATION, { information: 0x207 }).toString('hex'),
    '720e1d000000000c' + '000a800000000000' + '00000207',
  );
  t.equal(
    buildDescriptorSense(Sense.INVALID_FIELD_IN_CDB, { fieldPointer: 2, endOfMedium: true }).toString('hex'),
    '720524000000000c' + '04020040' + '02060000c00002' + '00',
  );
});
