// Disk full never loses an acknowledged tape write (ARCHITECTURE.md "Data path"): a real
// `shelfgate start` process with its data directory on a 64 MiB tmpfs (mounted here; CI runs as
// root — elsewhere the test is skipped with the reason). A tape is loaded through the changer and
// written in buffered mode (the default) through tapedrive-01; a filler file then takes the free
// space. WRITE(6) goes on until the drive answers CHECK CONDITION, MEDIUM ERROR, WRITE ERROR
// (03/0C/00), and GET /v1/health says `degraded` with a disk-full condition for the tape. After the
// filler is deleted writes are GOOD again and /health is `ok`. The gateway is then restarted with
// SIGTERM and, after more buffered writes, killed with SIGKILL and restarted: every record and
// filemark answered GOOD — before, during and after the episode — reads back byte-identical.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, statfs, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { decodeSense, senseText } from '../helpers/expect-sense.js';
import { mountTmpfs } from '../helpers/tmpfs.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import type { ScsiResult, TestInitiator } from '../helpers/initiator.js';
import { loginTarget, moveMedium, mustBeGood, read6, rewind, spaceToEndOfData, write6, writeFilemarks6 } from '../helpers/tape-commands.js';

const INITIATOR = 'iqn.2026-11.test:tape-disk-full';
/** AWS-Gateway-VTL element addresses: storage slot 1, drive 1 = element 10001. */
const SLOT = 1;
const DRIVE = 10001;
const RECORD_BYTES = 256 * 1024;
const MiB = 1024 * 1024;

type TapeObject = { kind: 'record'; index: number } | { kind: 'filemark' };

const base = randomBytes(RECORD_BYTES);
function record(index: number): Buffer {
  const data = Buffer.from(base);
  data.writeUInt32BE(index, 0);
  data.writeUInt32BE(index, RECORD_BYTES - 4);
  return data;
}

const tmpfs = mountTmpfs(64, 'shelfgate-disk-full-');
if (tmpfs.path === null) {
  t.plan(0, `skipped: ${tmpfs.reason}`);
  process.exit(0);
}
const mount = tmpfs.path;
const dataDir = join(mount, 'data');
mkdirSync(dataDir);
const gateway: GatewayProcess = await startGateway({ dataDir, extraArgs: ['--tapes', 'FULL:1', '--log-level', 'warn'] });
t.teardown(async () => {
  await gateway.dispose();
  tmpfs.dispose();
});

/** Everything the drive answered GOOD, in tape order. */
const acked: TapeObject[] = [];
let recordIndex = 0;

async function health(): Promise<{ status: string; conditions?: Array<{ component: string; kind: string }> }> {
  // /health says only ok/degraded; the conditions are behind the token (GET /v1/health).
  const response = await gateway.apiFetch('/v1/health');
  return (await response.json()) as { status: string; conditions?: Array<{ component: string; kind: string }> };
}

async function writeRecord(drive: TestInitiator): Promise<ScsiResult> {
  const data = record(recordIndex);
  const result = await drive.scsi(write6(data.length), { dataOut: data });
  if (result.status === 0) acked.push({ kind: 'record', index: recordIndex });
  recordIndex++;
  return result;
}

async function writeFilemark(drive: TestInitiator): Promise<void> {
  mustBeGood('WRITE FILEMARKS', await drive.scsi(writeFilemarks6(1)));
  acked.push({ kind: 'filemark' });
}

/** REWIND, then every acknowledged object in order, then end-of-data. */
async function readBack(t: Test, drive: TestInitiator, what: string): Promise<void> {
  mustBeGood('REWIND', await drive.scsi(rewind()));
  const wrong: string[] = [];
  for (const [position, object] of acked.entries()) {
    const result = await drive.scsi(read6(RECORD_BYTES), { readLength: RECORD_BYTES });
    if (object.kind === 'filemark') {
      if (senseText(result) !== '0/00/01') wrong.push(`object ${position}: expected a filemark, got ${senseText(result)}`);
    } else if (result.status !== 0) {
      wrong.push(`object ${position} (record ${object.index}): ${senseText(result)}`);
    } else if (!result.dataIn.equals(record(object.index))) {
      wrong.push(`object ${position} (record ${object.index}): data differs`);
    }
    if (wrong.length > 10) break;
  }
  t.same(wrong, [], `${what}: all ${acked.length} acknowledged objects read back identical, in order`);
  const end = await drive.scsi(read6(RECORD_BYTES), { readLength: RECORD_BYTES });
  t.equal(senseText(end), '8/00/05', `${what}: then BLANK CHECK, END-OF-DATA DETECTED`);
}

async function driveAfterRestart(): Promise<TestInitiator> {
  const drive = await loginTarget(gateway.iscsiPort, INITIATOR, gateway.targetIqn('tapedrive-01'));
  return drive;
}

t.test('Ssc.BufferedMode.DiskFull.WriteErrorThenRecovery', async (t) => {
  const changer = await loginTarget(gateway.iscsiPort, INITIATOR, gateway.targetIqn('mediachanger'));
  t.teardown(() => changer.destroy());
  mustBeGood('MOVE MEDIUM slot->drive', await changer.scsi(moveMedium(SLOT, DRIVE)));
  const drive = await loginTarget(gateway.iscsiPort, INITIATOR, gateway.targetIqn('tapedrive-01'));
  t.teardown(() => drive.destroy());
  mustBeGood('REWIND', await drive.scsi(rewind()));

  for (let i = 0; i < 8; i++) mustBeGood('WRITE(6) before', await writeRecord(drive));
  await writeFilemark(drive);
  t.equal((await health()).status, 'ok', '/health ok before the disk fills');

  // Take all but 20 MiB: SpaceGuard keeps 16 MiB (a quarter of 64 MiB) for the index.
  const filler = join(mount, 'filler');
  const fs = await statfs(mount);
  const fillBytes = Number(fs.bavail) * Number(fs.bsize) - 20 * MiB;
  const file = await open(filler, 'w');
  const chunk = Buffer.alloc(MiB, 0xee);
  for (let done = 0; done < fillBytes; done += chunk.length) await file.write(chunk, 0, Math.min(chunk.length, fillBytes - done));
  await file.close();

  let refused: ScsiResult | null = null;
  let during = 0;
  for (let i = 0; i < 400 && refused === null; i++) {
    const result = await writeRecord(drive);
    if (result.status === 0) during++;
    else refused = result;
  }
  t.ok(refused !== null, `a WRITE(6) was refused after ${during} more records were acknowledged`);
  t.equal(senseText(refused!), '3/0c/00', 'CHECK CONDITION, MEDIUM ERROR, WRITE ERROR');
  t.equal(decodeSense(refused!.sense).information, RECORD_BYTES, 'INFORMATION: the record was not written');
  const degraded = await health();
  t.equal(degraded.status, 'degraded', '/health: degraded');
  t.ok(
    degraded.conditions?.some((c) => c.kind === 'disk-full' && c.component.startsWith('tape FULL')),
    `a disk-full condition for the tape: ${JSON.stringify(degraded.conditions)}`,
  );
  t.equal(senseText(await writeRecord(drive)), '3/0c/00', 'still full: refused again');

  await unlink(filler);
  for (let i = 0; i < 8; i++) mustBeGood('WRITE(6) after space returned', await writeRecord(drive));
  await writeFilemark(drive);
  t.equal((await health()).status, 'ok', '/health ok again');
  // Buffered records with no filemark behind them: SIGTERM closes (flushes) the tape.
  for (let i = 0; i < 4; i++) mustBeGood('WRITE(6) before SIGTERM', await writeRecord(drive));
});

t.test('Ssc.BufferedMode.DiskFull.RestartSigterm', async (t) => {
  t.equal(await gateway.stop(), 0, 'SIGTERM: clean exit');
  await gateway.restart();
  const drive = await driveAfterRestart();
  t.teardown(() => drive.destroy());
  await readBack(t, drive, 'after SIGTERM');
  // Buffered records, no flush: kill -9 must not lose them (the OS has them).
  mustBeGood('SPACE to end-of-data', await drive.scsi(spaceToEndOfData()));
  for (let i = 0; i < 16; i++) mustBeGood('WRITE(6) before SIGKILL', await writeRecord(drive));
});

t.test('Ssc.BufferedMode.DiskFull.RestartSigkill', async (t) => {
  await gateway.kill9();
  await gateway.restart();
  const drive = await driveAfterRestart();
  t.teardown(() => drive.destroy());
  await readBack(t, drive, 'after SIGKILL');
});
