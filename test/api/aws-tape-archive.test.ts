// The virtual tape shelf operations driven by the real @aws-sdk/client-storage-gateway: a tape
// exported to an I/E slot is archived (DescribeTapeArchives), retrieved (RetrieveTapeArchive),
// CancelArchival / CancelRetrieval, DeleteTapeArchive and AssignTapePool under retention locks
// (a clock the test advances), with AWS's error shapes. The archiver runs one round at a time.
import {
  AssignTapePoolCommand,
  CancelArchivalCommand,
  CancelRetrievalCommand,
  CreateTapePoolCommand,
  CreateTapeWithBarcodeCommand,
  DeleteTapeArchiveCommand,
  DescribeTapeArchivesCommand,
  DescribeTapesCommand,
  InvalidGatewayRequestException,
  ListGatewaysCommand,
  RetrieveTapeArchiveCommand,
  StorageGatewayClient,
} from '@aws-sdk/client-storage-gateway';
import t, { type Test } from 'tap';
import { TEST_ACCESS_KEY, TEST_ACCOUNT, TEST_REGION, startAdminGateway, type AdminGateway } from '../helpers/admin-gateway.js';

const GIB = 1024 ** 3;
const DAY_MS = 86_400_000;
const TAPES = { storageSlots: 4, importExportSlots: 2 };

function client(gateway: AdminGateway): StorageGatewayClient {
  return new StorageGatewayClient({ endpoint: gateway.endpoint, region: TEST_REGION, credentials: TEST_ACCESS_KEY, maxAttempts: 1 });
}

async function gatewayArn(sgw: StorageGatewayClient): Promise<string> {
  const { Gateways } = await sgw.send(new ListGatewaysCommand({}));
  return Gateways?.[0]?.GatewayARN ?? '';
}

async function rejectsWithCode(t: Test, promise: Promise<unknown>, errorCode: string, message?: RegExp): Promise<void> {
  try {
    await promise;
    t.fail(`expected InvalidGatewayRequestException ${errorCode}`);
  } catch (err) {
    t.type(err, InvalidGatewayRequestException);
    t.equal((err as InvalidGatewayRequestException).error?.errorCode, errorCode);
    t.equal((err as InvalidGatewayRequestException).$metadata.httpStatusCode, 400);
    if (message !== undefined) t.match((err as Error).message, message);
  }
}

const tapeArn = (barcode: string) => `arn:aws:storagegateway:${TEST_REGION}:${TEST_ACCOUNT}:tape/${barcode}`;

/** A tape with two records and a filemark, in a storage slot. */
async function createWrittenTape(gateway: AdminGateway, sgw: StorageGatewayClient, GatewayARN: string, barcode: string, PoolId = 'GLACIER'): Promise<void> {
  await sgw.send(new CreateTapeWithBarcodeCommand({ GatewayARN, TapeBarcode: barcode, TapeSizeInBytes: 100 * GIB, PoolId }));
  const media = gateway.vtl!.media;
  const medium = await media.open(barcode);
  await medium.writeRecord(Buffer.alloc(4096, 0xa5));
  await medium.writeRecord(Buffer.alloc(1024, 0x5a));
  await medium.writeFilemarks(1);
  await media.close(medium);
}

/** Moves the tape to an I/E slot: IN TRANSIT TO VTS. */
async function exportTape(gateway: AdminGateway, barcode: string): Promise<void> {
  const library = gateway.vtl!.library;
  const [ieSlot] = library.emptyElements('import-export');
  await library.moveMedium(library.elementOf(barcode)!.address, ieSlot!);
}

async function runUntil(gateway: AdminGateway, barcode: string, status: string): Promise<void> {
  const { archiver } = gateway.admin.tapes!;
  for (let round = 0; round < 200; round++) {
    if (gateway.vtl!.catalog.get(barcode)?.status === status) return;
    if (await archiver.runOnce()) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`tape ${barcode} never ${status}`);
}

t.test('TapeArchive.ArchiveRetrieve: DescribeTapeArchives, RetrieveTapeArchive, CancelRetrieval', async (t) => {
  const gateway = await startAdminGateway(t, { tapes: TAPES });
  const sgw = client(gateway);
  const GatewayARN = await gatewayArn(sgw);
  await createWrittenTape(gateway, sgw, GatewayARN, 'ARC00001');
  t.same((await sgw.send(new DescribeTapeArchivesCommand({}))).TapeArchives, [], 'nothing archived yet');

  await exportTape(gateway, 'ARC00001');
  const inTransit = await sgw.send(new DescribeTapesCommand({ GatewayARN, TapeARNs: [tapeArn('ARC00001')] }));
  t.equal(inTransit.Tapes?.[0]?.TapeStatus, 'IN TRANSIT TO VTS');
  await runUntil(gateway, 'ARC00001', 'ARCHIVED');

  const archived = (await sgw.send(new DescribeTapeArchivesCommand({ TapeARNs: [tapeArn('ARC00001')] }))).TapeArchives?.[0];
  t.equal(archived?.TapeARN, tapeArn('ARC00001'));
  t.equal(archived?.TapeBarcode, 'ARC00001');
  t.equal(archived?.TapeStatus, 'ARCHIVED');
  t.equal(archived?.TapeSizeInBytes, 100 * GIB);
  t.equal(archived?.TapeUsedInBytes, 5120, 'the record bytes');
  t.equal(archived?.PoolId, 'GLACIER');
  t.equal(archived?.Worm, false);
  t.type(archived?.CompletionTime, Date);
  t.type(archived?.PoolEntryDate, Date);
  t.equal(archived?.RetrievedTo, undefined);

  const retrieved = await sgw.send(new RetrieveTapeArchiveCommand({ GatewayARN, TapeARN: tapeArn('ARC00001') }));
  t.equal(retrieved.TapeARN, tapeArn('ARC00001'));
  const retrieving = (await sgw.send(new DescribeTapeArchivesCommand({}))).TapeArchives?.[0];
  t.equal(retrieving?.TapeStatus, 'RETRIEVING');
  t.equal(retrieving?.RetrievedTo, GatewayARN);
  const tapeRetrieving = (await sgw.send(new DescribeTapesCommand({ GatewayARN, TapeARNs: [tapeArn('ARC00001')] }))).Tapes?.[0];
  t.equal(tapeRetrieving?.Progress, 0, 'DescribeTapes: Progress while RETRIEVING');
  await sgw.send(new CancelRetrievalCommand({ GatewayARN, TapeARN: tapeArn('ARC00001') }));
  t.equal((await sgw.send(new DescribeTapeArchivesCommand({}))).TapeArchives?.[0]?.TapeStatus, 'ARCHIVED', 'CancelRetrieval: back to ARCHIVED');

  await sgw.send(new RetrieveTapeArchiveCommand({ GatewayARN, TapeARN: tapeArn('ARC00001') }));
  await runUntil(gateway, 'ARC00001', 'RETRIEVED');
  const back = (await sgw.send(new DescribeTapesCommand({ GatewayARN, TapeARNs: [tapeArn('ARC00001')] }))).Tapes?.[0];
  t.equal(back?.TapeStatus, 'RETRIEVED');
  t.equal(back?.Progress, undefined, 'no Progress once RETRIEVED');
  await rejectsWithCode(t, sgw.send(new RetrieveTapeArchiveCommand({ GatewayARN, TapeARN: tapeArn('ARC00001') })), 'InvalidParameters', /RETRIEVED, not ARCHIVED/);
  await rejectsWithCode(t, sgw.send(new DeleteTapeArchiveCommand({ TapeARN: tapeArn('ARC00001') })), 'InvalidParameters', /eject it first/);
});

t.test('TapeArchive.CancelArchival: IN TRANSIT TO VTS back to AVAILABLE; refused later', async (t) => {
  const gateway = await startAdminGateway(t, { tapes: TAPES });
  const sgw = client(gateway);
  const GatewayARN = await gatewayArn(sgw);
  await createWrittenTape(gateway, sgw, GatewayARN, 'CAN00001');
  await rejectsWithCode(t, sgw.send(new CancelArchivalCommand({ GatewayARN, TapeARN: tapeArn('CAN00001') })), 'InvalidParameters', /only IN TRANSIT TO VTS/);
  await exportTape(gateway, 'CAN00001');
  const cancelled = await sgw.send(new CancelArchivalCommand({ GatewayARN, TapeARN: tapeArn('CAN00001') }));
  t.equal(cancelled.TapeARN, tapeArn('CAN00001'));
  const tape = (await sgw.send(new DescribeTapesCommand({ GatewayARN, TapeARNs: [tapeArn('CAN00001')] }))).Tapes?.[0];
  t.equal(tape?.TapeStatus, 'AVAILABLE');
  t.equal(gateway.vtl!.library.elementOf('CAN00001')?.type, 'storage');
  await rejectsWithCode(t, sgw.send(new CancelArchivalCommand({ GatewayARN, TapeARN: tapeArn('NOSUCH001') })), 'TapeCartridgeNotFound');
});

t.test('TapeArchive.RetentionLock: DeleteTapeArchive and AssignTapePool refused until expiry', async (t) => {
  const clock = { nowMs: Date.parse('2026-11-26T12:00:00Z') };
  const gateway = await startAdminGateway(t, { tapes: TAPES, now: () => clock.nowMs });
  const sgw = client(gateway);
  const GatewayARN = await gatewayArn(sgw);
  const { PoolARN } = await sgw.send(
    new CreateTapePoolCommand({ PoolName: 'hold', StorageClass: 'GLACIER', RetentionLockType: 'GOVERNANCE', RetentionLockTimeInDays: 10 }),
  );
  const poolId = PoolARN!.slice(PoolARN!.lastIndexOf('/') + 1);
  await createWrittenTape(gateway, sgw, GatewayARN, 'LCK00001', poolId);
  await exportTape(gateway, 'LCK00001');
  await runUntil(gateway, 'LCK00001', 'ARCHIVED');
  const archived = (await sgw.send(new DescribeTapeArchivesCommand({}))).TapeArchives?.[0];
  t.equal(archived?.PoolId, poolId);
  t.equal(archived?.RetentionStartDate?.toISOString(), '2026-11-26T12:00:00.000Z');

  const TapeARN = tapeArn('LCK00001');
  await rejectsWithCode(t, sgw.send(new DeleteTapeArchiveCommand({ TapeARN })), 'InvalidParameters', /GOVERNANCE retention lock until 2026-12-06T12:00:00.000Z/);
  await rejectsWithCode(t, sgw.send(new AssignTapePoolCommand({ TapeARN, PoolId: 'DEEP_ARCHIVE' })), 'InvalidParameters', /cannot move tape LCK00001/);
  clock.nowMs += 10 * DAY_MS;
  const moved = await sgw.send(new AssignTapePoolCommand({ TapeARN, PoolId: 'DEEP_ARCHIVE' }));
  t.equal(moved.TapeARN, TapeARN);
  t.equal((await sgw.send(new DescribeTapeArchivesCommand({}))).TapeArchives?.[0]?.PoolId, 'DEEP_ARCHIVE');
  const deleted = await sgw.send(new DeleteTapeArchiveCommand({ TapeARN }));
  t.equal(deleted.TapeARN, TapeARN);
  t.same((await sgw.send(new DescribeTapeArchivesCommand({}))).TapeArchives, [], 'the archive is gone');
});
