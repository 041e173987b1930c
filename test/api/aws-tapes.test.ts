// The tape gateway operations driven by the real @aws-sdk/client-storage-gateway (real SigV4):
// CreateTapes / CreateTapeWithBarcode / DescribeTapes / ListTapes / DeleteTape, the VTL devices,
// and tape pools — with pagination and the AWS error codes.
import {
  CreateTapePoolCommand,
  CreateTapesCommand,
  CreateTapeWithBarcodeCommand,
  DeleteTapeCommand,
  DeleteTapePoolCommand,
  DescribeTapesCommand,
  DescribeVTLDevicesCommand,
  InvalidGatewayRequestException,
  ListGatewaysCommand,
  ListTapePoolsCommand,
  ListTapesCommand,
  StorageGatewayClient,
  UpdateVTLDeviceTypeCommand,
} from '@aws-sdk/client-storage-gateway';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { TEST_ACCESS_KEY, TEST_ACCOUNT, TEST_REGION, startAdminGateway, type AdminGateway } from '../helpers/admin-gateway.js';

const GIB = 1024 ** 3;
const TAPES = { storageSlots: 20, importExportSlots: 4 };

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

t.test('CreateTapes.ClientTokenIdempotent: same token, same tapes; other parameters refused', async (t) => {
  const gateway = await startAdminGateway(t, { tapes: TAPES });
  const sgw = client(gateway);
  const GatewayARN = await gatewayArn(sgw);
  const request = { GatewayARN, TapeSizeInBytes: 100 * GIB, ClientToken: 'token-0001', NumTapesToCreate: 3, TapeBarcodePrefix: 'TST' };
  const first = await sgw.send(new CreateTapesCommand(request));
  t.equal(first.TapeARNs?.length, 3);
  for (const arn of first.TapeARNs ?? []) t.match(arn, new RegExp(`^arn:aws:storagegateway:${TEST_REGION}:${TEST_ACCOUNT}:tape/TST[0-9A-F]{7}$`));
  const again = await sgw.send(new CreateTapesCommand(request));
  t.same(again.TapeARNs, first.TapeARNs, 'the retry answers the same tapes');
  await rejectsWithCode(t, sgw.send(new CreateTapesCommand({ ...request, NumTapesToCreate: 2 })), 'InvalidParameters', /ClientToken/);
  const listed = await sgw.send(new ListTapesCommand({}));
  t.equal(listed.TapeInfos?.length, 3, 'no tapes beyond the first three');
});

t.test('CreateTapes.InvalidParameters: prefix, size, count, token, pool', async (t) => {
  const gateway = await startAdminGateway(t, { tapes: TAPES });
  const sgw = client(gateway);
  const GatewayARN = await gatewayArn(sgw);
  const ok = { GatewayARN, TapeSizeInBytes: 100 * GIB, ClientToken: 'token-0002', NumTapesToCreate: 1, TapeBarcodePrefix: 'AB' };
  await rejectsWithCode(t, sgw.send(new CreateTapesCommand({ ...ok, TapeBarcodePrefix: 'ab1' })), 'InvalidParameters', /TapeBarcodePrefix/);
  await rejectsWithCode(t, sgw.send(new CreateTapesCommand({ ...ok, TapeBarcodePrefix: 'ABCDE' })), 'InvalidParameters', /TapeBarcodePrefix/);
  await rejectsWithCode(t, sgw.send(new CreateTapesCommand({ ...ok, TapeSizeInBytes: 100 * GIB + 1 })), 'InvalidParameters', /TapeSizeInBytes: must be a whole number of GiB/);
  await rejectsWithCode(t, sgw.send(new CreateTapesCommand({ ...ok, TapeSizeInBytes: 99 * GIB })), 'InvalidParameters', /TapeSizeInBytes/);
  await rejectsWithCode(t, sgw.send(new CreateTapesCommand({ ...ok, TapeSizeInBytes: 15 * 1024 * GIB + GIB })), 'InvalidParameters', /TapeSizeInBytes/);
  await rejectsWithCode(t, sgw.send(new CreateTapesCommand({ ...ok, NumTapesToCreate: 11 })), 'InvalidParameters', /NumTapesToCreate/);
  await rejectsWithCode(t, sgw.send(new CreateTapesCommand({ ...ok, ClientToken: 'abcd' })), 'InvalidParameters', /ClientToken/);
  await rejectsWithCode(t, sgw.send(new CreateTapesCommand({ ...ok, PoolId: 'pool-00000000' })), 'InvalidParameters', /PoolId: no tape pool/);
  await rejectsWithCode(
    t,
    sgw.send(new CreateTapesCommand({ ...ok, GatewayARN: `arn:aws:storagegateway:${TEST_REGION}:${TEST_ACCOUNT}:gateway/sgw-00000000` })),
    'GatewayNotFound',
  );
  t.same((await sgw.send(new ListTapesCommand({}))).TapeInfos, [], 'nothing was created');
});

t.test('CreateTapeWithBarcode.BadBarcode: InvalidGatewayRequestException InvalidParameters; barcodes never reused', async (t) => {
  const gateway = await startAdminGateway(t, { tapes: TAPES });
  const sgw = client(gateway);
  const GatewayARN = await gatewayArn(sgw);
  await rejectsWithCode(t, sgw.send(new CreateTapeWithBarcodeCommand({ GatewayARN, TapeSizeInBytes: 100 * GIB, TapeBarcode: 'abc12' })), 'InvalidParameters', /TapeBarcode/);
  await rejectsWithCode(t, sgw.send(new CreateTapeWithBarcodeCommand({ GatewayARN, TapeSizeInBytes: 100 * GIB, TapeBarcode: 'AB1' })), 'InvalidParameters', /TapeBarcode/);
  const { TapeARN } = await sgw.send(new CreateTapeWithBarcodeCommand({ GatewayARN, TapeSizeInBytes: 200 * GIB, TapeBarcode: 'SHELF001', Worm: true }));
  t.equal(TapeARN, tapeArn('SHELF001'));
  const { Tapes } = await sgw.send(new DescribeTapesCommand({ GatewayARN, TapeARNs: [tapeArn('SHELF001')] }));
  t.match(Tapes, [{ TapeARN: tapeArn('SHELF001'), TapeBarcode: 'SHELF001', TapeSizeInBytes: 200 * GIB, TapeStatus: 'AVAILABLE', TapeUsedInBytes: 0, Worm: true }]);
  t.type(Tapes?.[0]?.TapeCreatedDate, Date);
  await rejectsWithCode(t, sgw.send(new CreateTapeWithBarcodeCommand({ GatewayARN, TapeSizeInBytes: 100 * GIB, TapeBarcode: 'SHELF001' })), 'InvalidParameters', /SHELF001/);
  await sgw.send(new DeleteTapeCommand({ GatewayARN, TapeARN: tapeArn('SHELF001') }));
  await rejectsWithCode(t, sgw.send(new DeleteTapeCommand({ GatewayARN, TapeARN: tapeArn('SHELF001') })), 'TapeCartridgeNotFound');
  await rejectsWithCode(t, sgw.send(new DeleteTapeCommand({ GatewayARN, TapeARN: tapeArn('NOSUCH01') })), 'TapeCartridgeNotFound');
  await rejectsWithCode(t, sgw.send(new CreateTapeWithBarcodeCommand({ GatewayARN, TapeSizeInBytes: 100 * GIB, TapeBarcode: 'SHELF001' })), 'InvalidParameters', /never reused/);
  t.same((await sgw.send(new DescribeTapesCommand({ GatewayARN }))).Tapes, [], 'a deleted tape is not described');
});

t.test('DescribeTapes.Pagination: Marker/Limit walk every tape once, in ARN order', async (t) => {
  const gateway = await startAdminGateway(t, { tapes: TAPES });
  const sgw = client(gateway);
  const GatewayARN = await gatewayArn(sgw);
  const { TapeARNs } = await sgw.send(
    new CreateTapesCommand({ GatewayARN, TapeSizeInBytes: 100 * GIB, ClientToken: 'token-0003', NumTapesToCreate: 5, TapeBarcodePrefix: 'PG' }),
  );
  const seen: string[] = [];
  let Marker: string | undefined;
  let pages = 0;
  do {
    const page = await sgw.send(new DescribeTapesCommand({ GatewayARN, Limit: 2, ...(Marker !== undefined ? { Marker } : {}) }));
    seen.push(...(page.Tapes ?? []).map((tape) => tape.TapeARN ?? ''));
    Marker = page.Marker;
    pages++;
  } while (Marker !== undefined);
  t.equal(pages, 3);
  t.same(seen, [...(TapeARNs ?? [])].sort());
  const list = await sgw.send(new ListTapesCommand({ Limit: 4 }));
  t.equal(list.TapeInfos?.length, 4);
  t.ok(list.Marker);
  t.match(list.TapeInfos?.[0], { GatewayARN, TapeSizeInBytes: 100 * GIB, TapeStatus: 'AVAILABLE' });
  const rest = await sgw.send(new ListTapesCommand({ Marker: list.Marker }));
  t.equal(rest.TapeInfos?.length, 1);
  t.equal(rest.Marker, undefined);
  await rejectsWithCode(t, sgw.send(new ListTapesCommand({ Marker: 'not a marker!' })), 'InvalidParameters', /Marker/);
});

t.test('VTLDevices.Describe: one changer and ten drives with their iSCSI targets; UpdateVTLDeviceType', async (t) => {
  const gateway = await startAdminGateway(t, { tapes: TAPES });
  const sgw = client(gateway);
  const GatewayARN = await gatewayArn(sgw);
  const gatewayId = (GatewayARN.split('/')[1] ?? '').toUpperCase();
  const all = await sgw.send(new DescribeVTLDevicesCommand({ GatewayARN }));
  t.equal(all.VTLDevices?.length, 11);
  const changerArn = `${GatewayARN}/device/AMZN_${gatewayId}_MEDIACHANGER_00001`;
  t.same(all.VTLDevices?.[0], {
    VTLDeviceARN: changerArn,
    VTLDeviceType: 'Medium Changer',
    VTLDeviceVendor: 'AWS',
    VTLDeviceProductIdentifier: 'Gateway-VTL',
    DeviceiSCSIAttributes: {
      TargetARN: `${GatewayARN}/target/iqn.2026-11.dev.shelfgate:shelfgate-mediachanger`,
      NetworkInterfaceId: '127.0.0.1',
      NetworkInterfacePort: gateway.iscsiPort,
      ChapEnabled: false,
    },
  });
  t.match(all.VTLDevices?.[10], {
    VTLDeviceARN: `${GatewayARN}/device/AMZN_${gatewayId}_TAPEDRIVE_00010`,
    VTLDeviceType: 'Tape Drive',
    VTLDeviceVendor: 'IBM',
    VTLDeviceProductIdentifier: 'ULT3580-TD5',
    DeviceiSCSIAttributes: { TargetARN: `${GatewayARN}/target/iqn.2026-11.dev.shelfgate:shelfgate-tapedrive-10` },
  });
  const page = await sgw.send(new DescribeVTLDevicesCommand({ GatewayARN, Limit: 10 }));
  t.equal(page.VTLDevices?.length, 10);
  const last = await sgw.send(new DescribeVTLDevicesCommand({ GatewayARN, Marker: page.Marker }));
  t.equal(last.VTLDevices?.length, 1);
  const one = await sgw.send(new DescribeVTLDevicesCommand({ GatewayARN, VTLDeviceARNs: [changerArn] }));
  t.same(one.VTLDevices?.map((d) => d.VTLDeviceType), ['Medium Changer']);

  const updated = await sgw.send(new UpdateVTLDeviceTypeCommand({ VTLDeviceARN: changerArn, DeviceType: 'STK-L700' }));
  t.equal(updated.VTLDeviceARN, changerArn);
  t.equal(gateway.admin.tapes?.pendingChangerType(), 'STK-L700', 'applies on the next start');
  await rejectsWithCode(t, sgw.send(new UpdateVTLDeviceTypeCommand({ VTLDeviceARN: changerArn, DeviceType: 'HP-MSL' })), 'InvalidParameters', /DeviceType/);
  await rejectsWithCode(
    t,
    sgw.send(new UpdateVTLDeviceTypeCommand({ VTLDeviceARN: `${GatewayARN}/device/AMZN_${gatewayId}_TAPEDRIVE_00001`, DeviceType: 'STK-L700' })),
    'InvalidParameters',
    /medium changer/,
  );
});

t.test('UpdateVTLDeviceType.Restart: the stored changer type serves after a restart, tapes kept', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'shelfgate-vtl-type-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const first = await startAdminGateway(t, { tapes: TAPES, dataDir });
  const sgw1 = client(first);
  const GatewayARN = await gatewayArn(sgw1);
  await sgw1.send(new CreateTapeWithBarcodeCommand({ GatewayARN, TapeSizeInBytes: 100 * GIB, TapeBarcode: 'KEEP0001' }));
  const changerArn = (await sgw1.send(new DescribeVTLDevicesCommand({ GatewayARN, Limit: 1 }))).VTLDevices?.[0]?.VTLDeviceARN ?? '';
  await sgw1.send(new UpdateVTLDeviceTypeCommand({ VTLDeviceARN: changerArn, DeviceType: 'STK-L700' }));
  t.match((await sgw1.send(new DescribeVTLDevicesCommand({ GatewayARN, Limit: 1 }))).VTLDevices?.[0], { VTLDeviceVendor: 'AWS' }, 'not before the restart');
  await first.close();

  const second = await startAdminGateway(t, { tapes: TAPES, dataDir });
  const sgw2 = client(second);
  t.match((await sgw2.send(new DescribeVTLDevicesCommand({ GatewayARN, Limit: 1 }))).VTLDevices?.[0], {
    VTLDeviceARN: changerArn,
    VTLDeviceVendor: 'STK',
    VTLDeviceProductIdentifier: 'L700',
  });
  t.equal(second.admin.tapes?.pendingChangerType(), undefined);
  t.same((await sgw2.send(new ListTapesCommand({}))).TapeInfos?.map((i) => i.TapeBarcode), ['KEEP0001']);
});

t.test('TapePools.Lifecycle: create, list, tapes in a pool, delete refused while in use', async (t) => {
  const gateway = await startAdminGateway(t, { tapes: TAPES });
  const sgw = client(gateway);
  const GatewayARN = await gatewayArn(sgw);
  const { PoolARN } = await sgw.send(
    new CreateTapePoolCommand({ PoolName: 'compliance-7y', StorageClass: 'DEEP_ARCHIVE', RetentionLockType: 'COMPLIANCE', RetentionLockTimeInDays: 2555 }),
  );
  t.match(PoolARN, new RegExp(`^arn:aws:storagegateway:${TEST_REGION}:${TEST_ACCOUNT}:tapepool/pool-[0-9A-F]{8}$`));
  const poolId = PoolARN?.split('/')[1] ?? '';
  t.same((await sgw.send(new ListTapePoolsCommand({}))).PoolInfos, [
    { PoolARN, PoolName: 'compliance-7y', StorageClass: 'DEEP_ARCHIVE', RetentionLockType: 'COMPLIANCE', RetentionLockTimeInDays: 2555, PoolStatus: 'ACTIVE' },
  ]);
  await rejectsWithCode(t, sgw.send(new CreateTapePoolCommand({ PoolName: 'compliance-7y', StorageClass: 'GLACIER' })), 'InvalidParameters', /exists/);
  await rejectsWithCode(t, sgw.send(new CreateTapePoolCommand({ PoolName: 'x', StorageClass: 'STANDARD' as 'GLACIER' })), 'InvalidParameters', /StorageClass/);
  await rejectsWithCode(
    t,
    sgw.send(new CreateTapePoolCommand({ PoolName: 'y', StorageClass: 'GLACIER', RetentionLockType: 'GOVERNANCE', RetentionLockTimeInDays: 36501 })),
    'InvalidParameters',
    /RetentionLockTimeInDays/,
  );
  const { TapeARN } = await sgw.send(new CreateTapeWithBarcodeCommand({ GatewayARN, TapeSizeInBytes: 100 * GIB, TapeBarcode: 'POOL0001', PoolId: poolId }));
  t.match((await sgw.send(new ListTapesCommand({}))).TapeInfos, [{ TapeARN, PoolId: poolId }]);
  await rejectsWithCode(t, sgw.send(new DeleteTapePoolCommand({ PoolARN })), 'InvalidParameters', /has tapes/);
  await sgw.send(new DeleteTapeCommand({ GatewayARN, TapeARN }));
  t.same(await sgw.send(new DeleteTapePoolCommand({ PoolARN })).then((r) => r.PoolARN), PoolARN);
  t.same((await sgw.send(new ListTapePoolsCommand({}))).PoolInfos, []);
  await rejectsWithCode(t, sgw.send(new DeleteTapePoolCommand({ PoolARN })), 'InvalidParameters', /no tape pool/);
});

t.test('Tapes.NoLibrary: NotSupported', async (t) => {
  const gateway = await startAdminGateway(t);
  const sgw = client(gateway);
  await rejectsWithCode(t, sgw.send(new ListTapesCommand({})), 'NotSupported', /no tape library/);
});

t.test('CreateTapes.KMSEncrypted: accepted for the gateway KMS key, refused otherwise with what to configure', async (t) => {
  const gateway = await startAdminGateway(t, { tapes: TAPES });
  const sgw = client(gateway);
  const GatewayARN = await gatewayArn(sgw);
  const request = { GatewayARN, TapeSizeInBytes: 100 * GIB, NumTapesToCreate: 1, TapeBarcodePrefix: 'KMS' };
  await rejectsWithCode(t, sgw.send(new CreateTapesCommand({ ...request, ClientToken: 'kms-0', KMSEncrypted: true })), 'NotSupported', /set encryption.keySource: kms/);
  await rejectsWithCode(t, sgw.send(new CreateTapesCommand({ ...request, ClientToken: 'kms-1', KMSKey: 'alias/shelfgate' })), 'InvalidParameters', /only be set when KMSEncrypted is true/);
  gateway.admin.encryption = { keySource: 'kms', kmsKeyId: 'alias/shelfgate' };
  await rejectsWithCode(t, sgw.send(new CreateTapesCommand({ ...request, ClientToken: 'kms-2', KMSEncrypted: true, KMSKey: 'alias/other' })), 'NotSupported', /encrypted with alias\/shelfgate/);
  const created = await sgw.send(new CreateTapesCommand({ ...request, ClientToken: 'kms-3', KMSEncrypted: true, KMSKey: 'alias/shelfgate' }));
  t.equal(created.TapeARNs?.length, 1, 'the gateway key named: created');
  const plain = await sgw.send(new CreateTapesCommand({ ...request, ClientToken: 'kms-4', KMSEncrypted: true }));
  t.equal(plain.TapeARNs?.length, 1, 'KMSEncrypted without KMSKey: the gateway key');
});
