// The tape library as backup software sees it: a real `shelfgate start --tapes …` process with the
// default AWS layout (1,600 storage + 1,600 import/export slots, changer and ten drive targets),
// driven by ../shared/tools/vtl-probe (libiscsi) in variable block mode, and by our own initiator
// in fixed block mode (this copy of vtl-probe has no --fixed option).
//
// After "SPACE -1 filemark", SSC-4 7.7 (SPACE, filemarks backward) leaves the position on the
// beginning-of-partition side of that filemark, so "SPACE +1 block (meets the filemark)" crosses
// it: CHECK CONDITION, NO SENSE, FILEMARK DETECTED (00/01), FILEMARK=1, INFORMATION 1 (the whole
// count not spaced), which vtl-probe expects too. The test asserts that exact answer and GOOD (or
// the expected sense) for every other step.
import { rm } from 'node:fs/promises';
import t from 'tap';
import { startGateway } from '../helpers/gateway-process.js';
import { decodeSense } from '../helpers/expect-sense.js';
import { existsSync } from 'node:fs';
import { buildVtlProbe, parseVtlProbeOutput, runVtlProbe, vtlProbeSourceDir } from '../helpers/vtl-probe.js';
import {
  clearUnitAttentions,
  loginTarget,
  modeSelectBlockLength,
  modeSense6,
  moveMedium,
  mustBeGood,
  read6,
  readPositionShort,
  rewind,
  shortPositionBlock,
  write6,
  writeFilemarks6,
} from '../helpers/tape-commands.js';

const RECORD_BYTES = 262_144;
const RECORDS = 256;
/** AWS-Gateway-VTL element addresses: storage 1–1600, drives 10001–10010. */
const FIRST_SLOT = 1;
const FIRST_DRIVE = 10001;
const INITIATOR = 'iqn.2026-11.test:vtl-fixed';

// vtl-probe is an outside tool (../shared/tools): without it its test is reported as skipped, not
// passed, and the fixed-block tests with our own initiator still run.
const probeMissing =
  process.env.VTL_PROBE_BIN || existsSync(vtlProbeSourceDir()) ? false : `vtl-probe not found at ${vtlProbeSourceDir()} (set VTL_PROBE_SRC or VTL_PROBE_BIN)`;
const probe = probeMissing === false ? await buildVtlProbe() : null;
if (probe?.dir !== undefined) t.teardown(() => rm(probe.dir!, { recursive: true, force: true }));
const gateway = await startGateway({ extraArgs: ['--tapes', 'VTL:4', '--log-level', 'warn'] });
t.teardown(() => gateway.dispose());

const changerUrl = gateway.url('mediachanger');
const driveUrl = (index: number): string => gateway.url(`tapedrive-${String(index).padStart(2, '0')}`);

const NOT_PRESENT = 'CHECK CONDITION key=NOT READY(0x2) asc/ascq=0x3a00 MEDIUM_NOT_PRESENT FM=0 EOM=0 ILI=0 info=0 residual=0';
/** Every step vtl-probe prints, in order, with the answer SSC-4 / SMC-3 require. */
const EXPECTED_STEPS: Array<[string, string]> = [
  ['INQUIRY', 'GOOD'], // changer
  ['INQUIRY', 'GOOD'], // drive
  ['TEST UNIT READY', NOT_PRESENT],
  [`MOVE MEDIUM ${FIRST_SLOT}->${FIRST_DRIVE}`, 'GOOD'],
  // SSC-4 4.2.8: a newly loaded medium is reported with NOT READY TO READY CHANGE (28/00).
  ['TEST UNIT READY', 'CHECK CONDITION key=UNIT_ATTENTION(0x6) asc/ascq=0x2800 (null) FM=0 EOM=0 ILI=0 info=0 residual=0'],
  ['TEST UNIT READY', 'GOOD'],
  ['READ BLOCK LIMITS', 'GOOD'],
  ['MODE SENSE(6) pg 0x10', 'GOOD'],
  ['REWIND', 'GOOD'],
  ['READ POSITION(short)', 'GOOD'],
  ['WRITE FILEMARKS 1', 'GOOD'],
  ['WRITE FILEMARKS 1', 'GOOD'],
  ['READ POSITION(short)', 'GOOD'],
  ['REWIND', 'GOOD'],
  ['READ POSITION(short)', 'GOOD'],
  // SSC-4 4.2.12 / 6.4: a variable READ(6) meeting a filemark: NO SENSE, 00/01, FM=1, INFORMATION = residue.
  ['READ(6)', `CHECK CONDITION key=NO SENSE(0x0) asc/ascq=0x0001 (null) FM=1 EOM=0 ILI=0 info=${RECORD_BYTES} residual=${RECORD_BYTES}`],
  ['REWIND', 'GOOD'],
  ['SPACE +1 filemark', 'GOOD'],
  ['READ(6)', 'GOOD'],
  ['SPACE -1 filemark', 'GOOD'],
  ['READ POSITION(short)', 'GOOD'],
  ['SPACE +1 block (meets the filemark)', 'CHECK CONDITION key=NO SENSE(0x0) asc/ascq=0x0001 (null) FM=1 EOM=0 ILI=0 info=1 residual=0'],
  ['SPACE to end-of-data', 'GOOD'],
  // SSC-4 4.2.12: BLANK CHECK, END-OF-DATA DETECTED (00/05).
  ['READ(6)', `CHECK CONDITION key=BLANK CHECK(0x8) asc/ascq=0x0005 (null) FM=0 EOM=0 ILI=0 info=${RECORD_BYTES} residual=${RECORD_BYTES}`],
  ['REWIND', 'GOOD'],
  ['PREVENT MEDIUM REMOVAL', 'GOOD'],
  // SMC-3 6.12: MEDIUM REMOVAL PREVENTED (53/02).
  ['MOVE MEDIUM drive->slot', 'CHECK CONDITION key=ILLEGAL_REQUEST(0x5) asc/ascq=0x5302 SCSI_SENSE_ASCQ_MEDIUM_REMOVAL_PREVENTED FM=0 EOM=0 ILI=0 info=0 residual=0'],
  ['ALLOW MEDIUM REMOVAL', 'GOOD'],
  ['LOAD/UNLOAD (unload)', 'GOOD'],
  [`MOVE MEDIUM ${FIRST_DRIVE}->${FIRST_SLOT}`, 'GOOD'],
  ['TEST UNIT READY', NOT_PRESENT],
];

t.test('VtlProbe.Variable262144', { skip: probeMissing }, async (t) => {
  const run = await runVtlProbe(probe!.binary, {
    changerUrl,
    driveUrl: driveUrl(1),
    slot: FIRST_SLOT,
    driveAddress: FIRST_DRIVE,
    recordBytes: RECORD_BYTES,
    records: RECORDS,
  });
  t.notOk(run.timedOut, 'vtl-probe finished');
  const out = parseVtlProbeOutput(run.stdout);
  t.comment(out.resultWrite);
  t.comment(out.resultRead);
  t.same(
    out.steps.map((s) => `${s.name}: ${s.outcome}`),
    EXPECTED_STEPS.map(([name, outcome]) => `${name}: ${outcome}`),
    'every step answers as SSC-4 / SMC-3 require',
  );
  t.same(out.malformed, [], 'READ ELEMENT STATUS pages are well formed (all types in one command too)');
  t.equal(out.mismatchingRecords, 0, 'every record reads back identical');
  t.equal(out.failed, 0, 'vtl-probe counts no failed step');
  t.equal(run.exitCode, 0, 'vtl-probe exits 0');

  // READ POSITION (short) in order: BOT; after file 2 (N records, FM, 3 records, FM); BOT again;
  // after SPACE -1 filemark, on the BOP side of the first filemark (object N).
  const positions = [...run.stdout.matchAll(/^ {2}BOP=(\d) EOP=(\d) first_block=(\d+) last_block=(\d+)$/gm)].map((m) => m.slice(1).join(' '));
  t.same(positions, ['1 0 0 0', `0 0 ${RECORDS + 5} ${RECORDS + 5}`, '1 0 0 0', `0 0 ${RECORDS} ${RECORDS}`], 'READ POSITION block numbers');
  // The drive element reports the loaded cartridge's barcode and where it came from.
  t.match(run.stdout, new RegExp(`drive +addr ${FIRST_DRIVE} Full +tag='VTL[0-9A-F]+' \\(from ${FIRST_SLOT}\\)`), 'drive element Full with VOLTAG');
  t.match(run.stdout, /\[type 2\] header: first=1 count=\d+ report_bytes=\d+/, 'storage elements reported within 64 KiB');
});

t.test('VtlProbe.Fixed65536', async (t) => {
  const BLOCK_BYTES = 65_536;
  const BLOCKS_PER_COMMAND = 16;
  const COMMANDS = 8;
  const changer = await loginTarget(gateway.iscsiPort, INITIATOR, gateway.targetIqn('mediachanger'));
  t.teardown(() => changer.destroy());
  mustBeGood('MOVE MEDIUM slot->drive', await changer.scsi(moveMedium(FIRST_SLOT + 1, FIRST_DRIVE + 1)));
  const drive = await loginTarget(gateway.iscsiPort, INITIATOR, gateway.targetIqn('tapedrive-02'));
  t.teardown(() => drive.destroy());
  t.equal((await clearUnitAttentions(drive)).status, 0, 'TEST UNIT READY: GOOD with the tape loaded');

  const select = modeSelectBlockLength(BLOCK_BYTES);
  mustBeGood('MODE SELECT(6) block length 65536', await drive.scsi(select.cdb, { dataOut: select.dataOut }));
  const sense = mustBeGood('MODE SENSE(6)', await drive.scsi(modeSense6(0x10), { readLength: 255 }));
  t.equal(sense.dataIn[3], 8, 'one block descriptor');
  t.equal(sense.dataIn.readUIntBE(4 + 5, 3), BLOCK_BYTES, 'block descriptor: block length 65536');

  const pattern = (command: number): Buffer => {
    const data = Buffer.alloc(BLOCKS_PER_COMMAND * BLOCK_BYTES);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32BE(((command << 24) ^ (i * 2654435761)) >>> 0, i);
    return data;
  };
  mustBeGood('REWIND', await drive.scsi(rewind()));
  for (let c = 0; c < COMMANDS; c++) {
    mustBeGood(`WRITE(6) fixed #${c}`, await drive.scsi(write6(BLOCKS_PER_COMMAND, true), { dataOut: pattern(c) }));
  }
  mustBeGood('WRITE FILEMARKS 1', await drive.scsi(writeFilemarks6(1)));
  const position = mustBeGood('READ POSITION', await drive.scsi(readPositionShort(), { readLength: 20 }));
  t.equal(shortPositionBlock(position.dataIn), COMMANDS * BLOCKS_PER_COMMAND + 1, 'READ POSITION: one logical object per fixed block + the filemark');

  mustBeGood('REWIND', await drive.scsi(rewind()));
  let mismatches = 0;
  for (let c = 0; c < COMMANDS; c++) {
    const read = mustBeGood(`READ(6) fixed #${c}`, await drive.scsi(read6(BLOCKS_PER_COMMAND, true), { readLength: BLOCKS_PER_COMMAND * BLOCK_BYTES }));
    if (read.dataIn.toString('hex') !== pattern(c).toString('hex')) mismatches++;
  }
  t.equal(mismatches, 0, `${COMMANDS} x ${BLOCKS_PER_COMMAND} fixed 64 KiB blocks read back identical`);

  // SSC-4 6.4: a fixed READ(6) meeting a filemark: NO SENSE 00/01, FM=1, INFORMATION = blocks not read.
  const atFilemark = await drive.scsi(read6(BLOCKS_PER_COMMAND, true), { readLength: BLOCKS_PER_COMMAND * BLOCK_BYTES });
  t.equal(atFilemark.status, 0x02, 'READ(6) at the filemark: CHECK CONDITION');
  const decoded = decodeSense(atFilemark.sense);
  t.equal(`${decoded.key}/${decoded.asc}/${decoded.ascq}`, '0/0/1', 'NO SENSE, FILEMARK DETECTED');
  t.equal(atFilemark.sense[2]! & 0x80, 0x80, 'FILEMARK bit');
  t.equal(decoded.information, BLOCKS_PER_COMMAND, 'INFORMATION: all 16 blocks not transferred');
  t.equal(atFilemark.residualCount, BLOCKS_PER_COMMAND * BLOCK_BYTES, 'residual: every byte');

  // Back to variable block mode, unload, and return the cartridge to its slot.
  const variable = modeSelectBlockLength(0);
  mustBeGood('MODE SELECT(6) variable', await drive.scsi(variable.cdb, { dataOut: variable.dataOut }));
  mustBeGood('LOAD UNLOAD (unload)', await drive.scsi(Buffer.from([0x1b, 0, 0, 0, 0, 0])));
  mustBeGood('MOVE MEDIUM drive->slot', await changer.scsi(moveMedium(FIRST_DRIVE + 1, FIRST_SLOT + 1)));
  await drive.logout();
  await changer.logout();
});
