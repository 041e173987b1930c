// Tape durability (ARCHITECTURE.md "Nothing is acknowledged before it is durable locally"): a tape
// is loaded through the media changer target and written through tapedrive-01 — variable records
// of known patterns and sizes with a filemark every FILE_RECORDS records — recording every WRITE(6)
// and WRITE FILEMARKS the drive answered GOOD. The server is SIGKILLed mid-stream and restarted on
// the same data dir. The tape must still be in the drive, and after REWIND every acknowledged
// record and filemark must read back in order, byte-identical; the one command in flight at the
// kill may be there or not, and after it comes end-of-data (BLANK CHECK 00/05). The drive is in
// buffered mode 1 (SSC-4 8.3.3, the default): a WRITE is GOOD once the record is in the tape's
// data file, without fdatasync — the OS has it, so the kill loses nothing acknowledged.
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { decodeSense } from '../helpers/expect-sense.js';
import { startGateway } from '../helpers/gateway-process.js';
import type { TestInitiator } from '../helpers/initiator.js';
import {
  clearUnitAttentions,
  loginTarget,
  modeSense6,
  moveMedium,
  mustBeGood,
  read6,
  rewind,
  spaceToEndOfData,
  write6,
  writeFilemarks6,
} from '../helpers/tape-commands.js';

const INITIATOR = 'iqn.2026-11.test:tape-crash';
/** AWS-Gateway-VTL element addresses: storage slot 1, drive 1 = element 10001. */
const SLOT = 1;
const DRIVE = 10001;
const MAX_RECORD_BYTES = 262_144;
const FILE_RECORDS = 40;
const KILL_AFTER_ACKS = 500;

type TapeObject = { kind: 'record'; index: number } | { kind: 'filemark' };

const base = randomBytes(MAX_RECORD_BYTES);
/** Record `index`: 1 KiB to 256 KiB, stamped with its index at both ends. */
function record(index: number): Buffer {
  const lengthBytes = 1024 * (1 + ((index * 37) % 256));
  const data = Buffer.from(base.subarray(0, lengthBytes));
  data.writeUInt32BE(index, 0);
  data.writeUInt32BE(lengthBytes, 4);
  data.writeUInt32BE(index, lengthBytes - 4);
  return data;
}

const CHECK_CONDITION = 0x02;
const sense = (result: { sense: Buffer }): string => {
  const d = decodeSense(result.sense);
  return `${d.key}/${d.asc.toString(16).padStart(2, '0')}/${d.ascq.toString(16).padStart(2, '0')} FM=${(result.sense[2]! >> 7) & 1}`;
};

const gateway = await startGateway({ extraArgs: ['--tapes', 'CRSH:2', '--log-level', 'warn'] });
t.teardown(() => gateway.dispose());

const acked: TapeObject[] = [];
let inFlight: TapeObject | null = null;

t.test('TapeCrash.Kill9MidStream', async (t) => {
  const changer = await loginTarget(gateway.iscsiPort, INITIATOR, gateway.targetIqn('mediachanger'));
  mustBeGood('MOVE MEDIUM slot->drive', await changer.scsi(moveMedium(SLOT, DRIVE)));
  const drive = await loginTarget(gateway.iscsiPort, INITIATOR, gateway.targetIqn('tapedrive-01'));
  mustBeGood('REWIND', await drive.scsi(rewind()));
  const modeSense = mustBeGood('MODE SENSE(6)', await drive.scsi(modeSense6(0x3f), { readLength: 255 }));
  t.equal(modeSense.dataIn[2]! & 0x70, 0x10, 'BUFFERED MODE 1h: WRITEs are acknowledged without fdatasync');

  let killed: Promise<void> | null = null;
  let recordIndex = 0;
  try {
    while (killed === null || inFlight === null) {
      const next: TapeObject =
        recordIndex > 0 && recordIndex % FILE_RECORDS === 0 && acked.at(-1)?.kind === 'record'
          ? { kind: 'filemark' }
          : { kind: 'record', index: recordIndex };
      inFlight = next;
      const result =
        next.kind === 'filemark'
          ? await drive.scsi(writeFilemarks6(1))
          : await drive.scsi(write6(record(next.index).length), { dataOut: record(next.index) });
      mustBeGood(next.kind === 'filemark' ? 'WRITE FILEMARKS' : `WRITE(6) #${recordIndex}`, result);
      acked.push(next);
      inFlight = null;
      if (next.kind === 'record') recordIndex++;
      if (acked.length === KILL_AFTER_ACKS) killed = gateway.kill9();
    }
  } catch (err) {
    if (killed === null) throw err;
    // The connection died with the server; `inFlight` may or may not have reached the tape.
  }
  await killed;
  drive.destroy();
  changer.destroy();
  const filemarks = acked.filter((o) => o.kind === 'filemark').length;
  t.ok(acked.length >= KILL_AFTER_ACKS, `${acked.length} objects acknowledged (${filemarks} filemarks), ${inFlight === null ? 'none' : 'one'} in flight at SIGKILL`);
});

t.test('TapeCrash.ReadBackAfterRestart', async (t) => {
  await gateway.restart();
  const drive: TestInitiator = await loginTarget(gateway.iscsiPort, INITIATOR, gateway.targetIqn('tapedrive-01'));
  t.teardown(() => drive.destroy());
  const ready = await clearUnitAttentions(drive);
  t.equal(ready.status, 0, 'TEST UNIT READY: GOOD — the tape is still in the drive after the restart');
  mustBeGood('REWIND', await drive.scsi(rewind()));

  const wrong: string[] = [];
  for (const [position, object] of acked.entries()) {
    if (object.kind === 'filemark') {
      const result = await drive.scsi(read6(MAX_RECORD_BYTES), { readLength: MAX_RECORD_BYTES });
      if (result.status !== CHECK_CONDITION || sense(result) !== '0/00/01 FM=1') wrong.push(`object ${position}: expected a filemark, got status ${result.status}`);
      continue;
    }
    const expected = record(object.index);
    const result = await drive.scsi(read6(expected.length), { readLength: expected.length });
    if (result.status !== 0) wrong.push(`object ${position} (record ${object.index}): status ${result.status} ${sense(result)}`);
    else if (result.dataIn.toString('hex') !== expected.toString('hex')) wrong.push(`object ${position} (record ${object.index}): data differs`);
    if (wrong.length > 10) break;
  }
  t.same(wrong, [], `all ${acked.length} acknowledged records and filemarks read back identical, in order`);

  // After them: the command in flight at the kill (if it made it), then end-of-data.
  let next = await drive.scsi(read6(MAX_RECORD_BYTES), { readLength: MAX_RECORD_BYTES });
  const pending = inFlight as TapeObject | null;
  if (pending !== null && next.status !== CHECK_CONDITION) {
    const expected = pending.kind === 'record' ? record(pending.index) : null;
    t.ok(expected !== null && next.dataIn.subarray(0, expected.length).toString('hex') === expected.toString('hex'), 'the in-flight record is complete when present');
    next = await drive.scsi(read6(MAX_RECORD_BYTES), { readLength: MAX_RECORD_BYTES });
  } else if (pending?.kind === 'filemark' && sense(next) === '0/00/01 FM=1') {
    next = await drive.scsi(read6(MAX_RECORD_BYTES), { readLength: MAX_RECORD_BYTES });
  }
  t.equal(next.status, CHECK_CONDITION, 'then CHECK CONDITION');
  t.equal(sense(next), '8/00/05 FM=0', 'BLANK CHECK, END-OF-DATA DETECTED');

  // The tape stays writable: append at end-of-data and read it back.
  mustBeGood('SPACE to end-of-data', await drive.scsi(spaceToEndOfData()));
  const extra = record(999_999);
  mustBeGood('WRITE(6) after restart', await drive.scsi(write6(extra.length), { dataOut: extra }));
  mustBeGood('WRITE FILEMARKS after restart', await drive.scsi(writeFilemarks6(1)));

  // And back to its slot through the changer.
  mustBeGood('LOAD UNLOAD (unload)', await drive.scsi(Buffer.from([0x1b, 0, 0, 0, 0, 0])));
  const changer = await loginTarget(gateway.iscsiPort, INITIATOR, gateway.targetIqn('mediachanger'));
  t.teardown(() => changer.destroy());
  mustBeGood('MOVE MEDIUM drive->slot', await changer.scsi(moveMedium(DRIVE, SLOT)));
});
