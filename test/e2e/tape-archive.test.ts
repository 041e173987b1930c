// The virtual tape shelf end to end, against a real gateway process (issue 4 "must show"): through
// the media changer and tapedrive-01 over iSCSI, two files (records + a filemark each) are written
// to a tape, which is unloaded, returned to its slot and moved to an I/E slot (export). The AWS API
// (real SDK, SigV4) is polled until the tape is ARCHIVED, RetrieveTapeArchive brings it back, and
// once RETRIEVED it is found with READ ELEMENT STATUS, loaded into the drive and read back
// byte-identical; a WRITE(6) is refused with DATA PROTECT / WRITE PROTECTED (07/27/00). Ejected
// again it returns to the shelf, and `shelfgate tapes retrieve --wait` brings it back.
import {
  CreateTapeWithBarcodeCommand,
  DescribeTapeArchivesCommand,
  DescribeTapesCommand,
  ListGatewaysCommand,
  RetrieveTapeArchiveCommand,
  StorageGatewayClient,
} from '@aws-sdk/client-storage-gateway';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { decodeSense } from '../helpers/expect-sense.js';
import { cliPath, repoRoot, startGateway } from '../helpers/gateway-process.js';
import { clearUnitAttentions, loginTarget, moveMedium, mustBeGood, read6, rewind, write6, writeFilemarks6 } from '../helpers/tape-commands.js';

const ACCESS_KEY = { accessKeyId: 'AKIASHELFGATEARCHIVE', secretAccessKey: 'archive/secret/key/0123456789abcdefghij' };
const REGION = 'us-east-1';
const GIB = 1024 ** 3;
const INITIATOR = 'iqn.2026-11.test:tape-archive';
const BARCODE = 'SHELF001';
/** AWS-Gateway-VTL element addresses (iscsi/scsi/personalities/aws-gateway-vtl.ts). */
const DRIVE = 10001;
const FIRST_IE_SLOT = 1601;
/** SMC-3 6.10.1 ELEMENT TYPE CODE: storage element. */
const STORAGE_ELEMENT = 0x02;
const CHECK_CONDITION = 0x02;
const POLL_MS = 200;
/** The local archive store's simulated retrieval time: long enough for the CLI to see RETRIEVING. */
const RETRIEVAL_DELAY_MS = 1500;
const POLL_ROUNDS = 300;

/** Two files of variable-length records. */
const FILES: Buffer[][] = [
  Array.from({ length: 12 }, (_, i) => randomBytes(1024 * (1 + ((i * 7) % 64)))),
  Array.from({ length: 5 }, (_, i) => randomBytes(65_536 + 512 * i)),
];

/** SMC-3 6.10 READ ELEMENT STATUS, VOLTAG=1, for the storage elements. */
function readStorageElementStatus(): Buffer {
  const cdb = Buffer.alloc(12);
  cdb[0] = 0xb8;
  cdb[1] = 0x10 | STORAGE_ELEMENT;
  cdb.writeUInt16BE(0xffff, 4);
  cdb.writeUIntBE(0xffff, 7, 3);
  return cdb;
}

/** The address of the full element whose primary volume tag (SMC-3 6.10.3, bytes 12-43) is `barcode`. */
function elementHolding(data: Buffer, barcode: string): number | undefined {
  const reportBytes = data.readUIntBE(5, 3);
  const end = Math.min(data.length, 8 + reportBytes);
  for (let offset = 8; offset + 8 <= end; ) {
    const pvoltag = (data[offset + 1]! & 0x80) !== 0;
    const descriptorLength = data.readUInt16BE(offset + 2);
    const pageEnd = offset + 8 + data.readUIntBE(offset + 5, 3);
    for (let d = offset + 8; d + descriptorLength <= pageEnd; d += descriptorLength) {
      const full = (data[d + 2]! & 0x01) !== 0;
      if (full && pvoltag && data.subarray(d + 12, d + 44).toString('ascii').trimEnd() === barcode) return data.readUInt16BE(d);
    }
    offset = pageEnd;
  }
  return undefined;
}

/** SSC-4 7.3 LOAD UNLOAD with LOAD=0: unload. */
const unload = (): Buffer => Buffer.from([0x1b, 0, 0, 0, 0, 0]);

const sense = (result: { sense: Buffer }): string => {
  const d = decodeSense(result.sense);
  return [d.key, d.asc, d.ascq].map((n) => n.toString(16).padStart(2, '0')).join('/');
};

t.test('TapeArchive.RoundTripOverIscsi', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-tape-archive-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const configFile = join(dir, 'shelfgate.json');
  await writeFile(configFile, JSON.stringify({ gateway: { region: REGION }, api: { accessKeys: [ACCESS_KEY] }, tapeLibrary: { archive: { type: 'local', retrievalDelayMs: RETRIEVAL_DELAY_MS } } }));
  const gateway = await startGateway({ configFile, extraArgs: ['--tape-slots', '8:2', '--log-level', 'warn'] });
  t.teardown(() => gateway.dispose());
  const sgw = new StorageGatewayClient({ endpoint: `http://127.0.0.1:${gateway.apiPort}`, region: REGION, credentials: ACCESS_KEY, maxAttempts: 1 });
  const GatewayARN = (await sgw.send(new ListGatewaysCommand({}))).Gateways?.[0]?.GatewayARN ?? '';
  const { TapeARN } = await sgw.send(new CreateTapeWithBarcodeCommand({ GatewayARN, TapeBarcode: BARCODE, TapeSizeInBytes: 100 * GIB }));
  const tapeStatus = async (): Promise<string | undefined> =>
    (await sgw.send(new DescribeTapesCommand({ GatewayARN, TapeARNs: [TapeARN!] }))).Tapes?.[0]?.TapeStatus;
  const waitFor = async (status: string): Promise<void> => {
    for (let round = 0; round < POLL_ROUNDS; round++) {
      if ((await tapeStatus()) === status) return;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    throw new Error(`tape ${BARCODE} is ${await tapeStatus()}, never ${status}\n${gateway.stderr()}`);
  };

  const changer = await loginTarget(gateway.iscsiPort, INITIATOR, gateway.targetIqn('mediachanger'));
  t.teardown(() => changer.destroy());
  const slotOf = async (): Promise<number> => {
    // The library changed behind the changer (archive, retrieval): first the UNIT ATTENTION
    // (06/28/01 IMPORT OR EXPORT ELEMENT ACCESSED) a backup application clears.
    await clearUnitAttentions(changer);
    const status = mustBeGood('READ ELEMENT STATUS', await changer.scsi(readStorageElementStatus(), { readLength: 0xffff }));
    const address = elementHolding(status.dataIn, BARCODE);
    if (address === undefined) throw new Error(`READ ELEMENT STATUS: no storage element holds ${BARCODE}`);
    return address;
  };

  // Write two files through the drive, then unload and export the tape.
  const slot = await slotOf();
  mustBeGood('MOVE MEDIUM slot->drive', await changer.scsi(moveMedium(slot, DRIVE)));
  const writer = await loginTarget(gateway.iscsiPort, INITIATOR, gateway.targetIqn('tapedrive-01'));
  mustBeGood('REWIND', await writer.scsi(rewind()));
  for (const [fileIndex, file] of FILES.entries()) {
    for (const [i, record] of file.entries()) mustBeGood(`WRITE(6) file ${fileIndex} record ${i}`, await writer.scsi(write6(record.length), { dataOut: record }));
    mustBeGood(`WRITE FILEMARKS file ${fileIndex}`, await writer.scsi(writeFilemarks6(1)));
  }
  mustBeGood('LOAD UNLOAD (unload)', await writer.scsi(unload()));
  writer.destroy();
  mustBeGood('MOVE MEDIUM drive->slot', await changer.scsi(moveMedium(DRIVE, slot)));
  mustBeGood('MOVE MEDIUM slot->I/E (export)', await changer.scsi(moveMedium(slot, FIRST_IE_SLOT)));

  await waitFor('ARCHIVED');
  const archived = (await sgw.send(new DescribeTapeArchivesCommand({ TapeARNs: [TapeARN!] }))).TapeArchives?.[0];
  t.equal(archived?.TapeStatus, 'ARCHIVED', 'DescribeTapeArchives: ARCHIVED');
  const dataBytes = FILES.flat().reduce((sum, r) => sum + r.length, 0);
  t.equal(archived?.TapeUsedInBytes, dataBytes, 'TapeUsedInBytes: every record byte');

  t.equal((await sgw.send(new RetrieveTapeArchiveCommand({ GatewayARN, TapeARN: TapeARN! }))).TapeARN, TapeARN);
  await waitFor('RETRIEVED');

  // Found by the backup application in the changer's inventory, loaded and read back.
  const retrievedSlot = await slotOf();
  t.pass(`READ ELEMENT STATUS: ${BARCODE} in storage element ${retrievedSlot}`);
  mustBeGood('MOVE MEDIUM slot->drive (retrieved)', await changer.scsi(moveMedium(retrievedSlot, DRIVE)));
  const reader = await loginTarget(gateway.iscsiPort, INITIATOR, gateway.targetIqn('tapedrive-01'));
  t.teardown(() => reader.destroy());
  mustBeGood('REWIND', await reader.scsi(rewind()));
  for (const [fileIndex, file] of FILES.entries()) {
    const differing: number[] = [];
    for (const [i, record] of file.entries()) {
      const result = mustBeGood(`READ(6) file ${fileIndex} record ${i}`, await reader.scsi(read6(record.length), { readLength: record.length }));
      if (result.dataIn.toString('hex') !== record.toString('hex')) differing.push(i);
    }
    t.same(differing, [], `file ${fileIndex}: ${file.length} records read back byte-identical`);
    const filemark = await reader.scsi(read6(1024), { readLength: 1024 });
    t.equal(filemark.status, CHECK_CONDITION, `file ${fileIndex} ends in a filemark`);
    t.equal(sense(filemark), '00/00/01', 'NO SENSE, FILEMARK DETECTED');
    t.equal((filemark.sense[2]! >> 7) & 1, 1, 'FILEMARK bit');
  }
  const eod = await reader.scsi(read6(1024), { readLength: 1024 });
  t.equal(sense(eod), '08/00/05', 'then BLANK CHECK, END-OF-DATA DETECTED');

  const refused = await reader.scsi(write6(512), { dataOut: Buffer.alloc(512, 0xee) });
  t.equal(refused.status, CHECK_CONDITION, 'WRITE(6) on the retrieved tape: CHECK CONDITION');
  t.equal(sense(refused), '07/27/00', 'DATA PROTECT, WRITE PROTECTED');
  mustBeGood('LOAD UNLOAD (unload)', await reader.scsi(unload()));
  mustBeGood('MOVE MEDIUM drive->slot', await changer.scsi(moveMedium(DRIVE, retrievedSlot)));

  // Ejecting the RETRIEVED tape returns it to the shelf; the CLI retrieves it again, drawing the
  // RETRIEVING progress on stderr.
  mustBeGood('MOVE MEDIUM slot->I/E (eject retrieved)', await changer.scsi(moveMedium(retrievedSlot, FIRST_IE_SLOT)));
  await waitFor('ARCHIVED');
  const cli = await runCli(['tapes', 'retrieve', BARCODE, '--wait', '--api', `http://127.0.0.1:${gateway.apiPort}`, '--data-dir', gateway.dataDir]);
  t.equal(cli.code, 0, 'shelfgate tapes retrieve --wait exits 0');
  t.match(cli.stdout, new RegExp(`^BARCODE +STATUS .*\n${BARCODE} +RETRIEVED `), 'prints the RETRIEVED tape');
  t.match(cli.stderr, new RegExp(`${BARCODE} RETRIEVING \\[[#.]{30}\\] +\\d+%`), 'a progress bar on stderr while RETRIEVING');
  t.equal(await tapeStatus(), 'RETRIEVED');
});

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath(), ...args], { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
