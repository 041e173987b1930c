// Issue 11 item 7 for every command of every device type: a CDB bit that the command's CDB USAGE
// DATA (SPC-4 6.35.3, what REPORT SUPPORTED OPERATION CODES tells initiators) marks as not
// examined, and any bit of the CONTROL byte (SAM-5 5.2: no ACA, no linked commands, no vendor
// bits), is ILLEGAL REQUEST / INVALID FIELD IN CDB with SKSV, C/D = 1 and the field and bit
// pointer at that bit (SPC-4 4.5.2.4.2). The exact bytes of the rows are checked against
// the standard in test/e2e/cdb-edges.test.ts; this sweep checks the mechanism covers every op.
import t from 'tap';
import type { ScsiResponse } from '../../../iscsi/device.js';
import { createDiskLogicalUnit } from '../../../iscsi/scsi/disk.js';
import type { OpEntry } from '../../../iscsi/scsi/dispatcher.js';
import { sbcOps } from '../../../iscsi/scsi/sbc.js';
import { spcOps } from '../../../iscsi/scsi/spc.js';
import { awsGatewayVtl } from '../../../iscsi/scsi/personalities/aws-gateway-vtl.js';
import { decodeSense } from '../../helpers/expect-sense.js';
import { MemoryBackend } from '../../helpers/memory-backend.js';
import { MemoryTape, tapeDriveWith, testNexus } from '../../helpers/memory-tape.js';
// After memory-tape (tape-drive.ts): ssc.ts and tape-drive.ts import each other.
import { sscOps } from '../../../iscsi/scsi/ssc.js';
import { closeVtlFixture, openVtlFixture } from '../../helpers/vtl-fixture.js';

type Run = (cdb: Buffer) => Promise<ScsiResponse>;
/** What the sweep needs of an op table entry. */
type OpShape = Pick<OpEntry<never>, 'name' | 'opcode' | 'serviceAction' | 'usage'>;

/** Every stray bit of every op: returns the cases that were not refused exactly so. */
async function sweep(entries: readonly OpShape[], run: Run): Promise<{ cases: number; wrong: string[] }> {
  const wrong: string[] = [];
  let cases = 0;
  for (const entry of entries) {
    const control = entry.usage.length - 1;
    for (let byte = 1; byte <= control; byte++) {
      let examined = byte === control ? 0 : entry.usage[byte]!;
      if (byte === 1 && entry.serviceAction !== undefined) examined |= 0x1f;
      for (let bit = 7; bit >= 0; bit--) {
        if (examined & (1 << bit)) continue;
        const cdb = Buffer.alloc(entry.usage.length);
        cdb[0] = entry.opcode;
        if (entry.serviceAction !== undefined) cdb[1] = entry.serviceAction;
        cdb[byte] = cdb[byte]! | (1 << bit);
        cases++;
        const r = await run(cdb);
        const d = r.sense !== undefined ? decodeSense(r.sense) : undefined;
        const ok = r.status === 0x02 && d?.key === 0x05 && d.asc === 0x24 && d.ascq === 0 && d.commandField === true && d.fieldPointer === byte && d.bitPointer === bit;
        if (!ok) wrong.push(`${entry.name} byte ${byte} bit ${bit}: status ${r.status} sense ${r.sense?.toString('hex') ?? '-'}`);
      }
    }
  }
  return { cases, wrong };
}

t.test('CdbBits.Disk: every SBC/SPC command of a volume', async (t) => {
  const backend = new MemoryBackend({ blockSize: 512, blockCount: 2048, serial: 'SG0000000042', naaId: '5001405abcdef012' });
  const lu = createDiskLogicalUnit(backend, { vendor: 'SHELFGTE', product: 'VOLUME', revision: '0001' });
  const run: Run = (cdb) => lu.execute({ nexus: testNexus, cdb, taskAttr: 1, expectedDataTransferLength: 4096, dataOut: null });
  await run(Buffer.from([0, 0, 0, 0, 0, 0])); // the power-on unit attention
  // The disk's op table (disk.ts): SPC-4 then SBC-3 ops.
  const { cases, wrong } = await sweep([...spcOps(), ...sbcOps()], run);
  t.ok(cases > 100, `${cases} stray bits tried`);
  t.same(wrong, []);
  t.same(await backend.read(0, 2048), Buffer.alloc(2048 * 512), 'nothing was written');
});

t.test('CdbBits.Tape: every SSC/SPC command of a tape drive', async (t) => {
  const { run } = await tapeDriveWith(new MemoryTape());
  const { cases, wrong } = await sweep(sscOps(), (cdb) => run(cdb));
  t.ok(cases > 100, `${cases} stray bits tried`);
  t.same(wrong, []);
});

t.test('CdbBits.Changer: every SMC/SPC command of the media changer', async (t) => {
  const f = await openVtlFixture(awsGatewayVtl);
  t.teardown(() => closeVtlFixture(f));
  await f.ready();
  const { cases, wrong } = await sweep(f.changer.opTable.entries, (cdb) => f.run([...cdb]));
  t.ok(cases > 50, `${cases} stray bits tried`);
  t.same(wrong, []);
});
