// The AWS-compatible endpoint driven by the real @aws-sdk/client-storage-gateway (real SigV4
// signing over HTTP), plus libiscsi's iscsi-ls / iscsi-inq to see created targets on the portal.
import {
  CreateCachediSCSIVolumeCommand,
  CreateStorediSCSIVolumeCommand,
  DeleteChapCredentialsCommand,
  DeleteVolumeCommand,
  DescribeBandwidthRateLimitCommand,
  DescribeBandwidthRateLimitScheduleCommand,
  DescribeCacheCommand,
  DescribeCachediSCSIVolumesCommand,
  DescribeChapCredentialsCommand,
  DescribeGatewayInformationCommand,
  DescribeStorediSCSIVolumesCommand,
  DescribeUploadBufferCommand,
  InvalidGatewayRequestException,
  ListGatewaysCommand,
  ListVolumeInitiatorsCommand,
  ListVolumesCommand,
  StorageGatewayClient,
  UpdateBandwidthRateLimitCommand,
  UpdateBandwidthRateLimitScheduleCommand,
  UpdateChapCredentialsCommand,
  type VolumeInfo,
} from '@aws-sdk/client-storage-gateway';
import t, { type Test } from 'tap';
import { TEST_ACCESS_KEY, TEST_ACCOUNT, TEST_API_TOKEN, TEST_REGION, startAdminGateway, type AdminGateway } from '../helpers/admin-gateway.js';
import { TestInitiator } from '../helpers/initiator.js';
import { runTool } from '../helpers/libiscsi.js';

const IQN_PREFIX = 'iqn.2026-11.dev.shelfgate:shelfgate-';
const INITIATOR = 'iqn.2026-11.dev.shelfgate:test-initiator';

function client(
  gateway: AdminGateway,
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } = TEST_ACCESS_KEY,
  region = TEST_REGION,
): StorageGatewayClient {
  return new StorageGatewayClient({ endpoint: gateway.endpoint, region, credentials, maxAttempts: 1 });
}

async function gatewayArn(sgw: StorageGatewayClient): Promise<string> {
  const { Gateways } = await sgw.send(new ListGatewaysCommand({}));
  return Gateways?.[0]?.GatewayARN ?? '';
}

/** Expects an InvalidGatewayRequestException with this StorageGatewayError code. */
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

t.test('Gateway.DescribeAndList: ARN, id, persisted identity', async (t) => {
  const gateway = await startAdminGateway(t, { volumes: ['vol1:1GiB'] });
  const sgw = client(gateway);
  const list = await sgw.send(new ListGatewaysCommand({}));
  t.equal(list.Gateways?.length, 1);
  const arn = list.Gateways?.[0]?.GatewayARN ?? '';
  t.match(arn, new RegExp(`^arn:aws:storagegateway:${TEST_REGION}:${TEST_ACCOUNT}:gateway/sgw-[0-9A-F]{8}$`));
  t.equal(list.Gateways?.[0]?.GatewayOperationalState, 'ACTIVE');
  const info = await sgw.send(new DescribeGatewayInformationCommand({ GatewayARN: arn }));
  t.equal(info.GatewayARN, arn);
  t.equal(info.GatewayId, arn.split('/')[1]);
  t.equal(info.GatewayName, 'shelfgate');
  t.equal(info.GatewayState, 'STATE_RUNNING');
  t.same(info.GatewayNetworkInterfaces, [{ Ipv4Address: '127.0.0.1' }]);
  await rejectsWithCode(
    t,
    sgw.send(new DescribeGatewayInformationCommand({ GatewayARN: `arn:aws:storagegateway:${TEST_REGION}:${TEST_ACCOUNT}:gateway/sgw-00000000` })),
    'GatewayNotFound',
  );
});

t.test('Auth.WrongSignature: refused with 403 InvalidSignatureException', async (t) => {
  const gateway = await startAdminGateway(t);
  const bad = client(gateway, { accessKeyId: TEST_ACCESS_KEY.accessKeyId, secretAccessKey: 'not-the-secret' });
  await t.rejects(bad.send(new ListGatewaysCommand({})), { name: 'InvalidSignatureException', $metadata: { httpStatusCode: 403 } });
  const unknownKey = client(gateway, { accessKeyId: 'AKIAUNKNOWN', secretAccessKey: TEST_ACCESS_KEY.secretAccessKey });
  await t.rejects(unknownKey.send(new ListGatewaysCommand({})), { name: 'UnrecognizedClientException', $metadata: { httpStatusCode: 403 } });
  const otherRegion = client(gateway, TEST_ACCESS_KEY, 'us-west-2');
  await t.rejects(otherRegion.send(new ListGatewaysCommand({})), { name: 'InvalidSignatureException', message: /region/ });
});

t.test('Auth.ApiToken: SigV4 with access key id shelfgate and the API token as secret key', async (t) => {
  const gateway = await startAdminGateway(t, { token: TEST_API_TOKEN });
  const withToken = client(gateway, { accessKeyId: 'shelfgate', secretAccessKey: TEST_API_TOKEN });
  t.equal((await withToken.send(new ListGatewaysCommand({}))).Gateways?.length, 1, 'accepted');
  const wrong = client(gateway, { accessKeyId: 'shelfgate', secretAccessKey: 'not-the-api-token-at-all' });
  await t.rejects(wrong.send(new ListGatewaysCommand({})), { name: 'InvalidSignatureException', $metadata: { httpStatusCode: 403 } });
  // api.auth none: the token key does not exist; configured keys still work.
  const open = await startAdminGateway(t, { token: null });
  await t.rejects(client(open, { accessKeyId: 'shelfgate', secretAccessKey: TEST_API_TOKEN }).send(new ListGatewaysCommand({})), {
    name: 'UnrecognizedClientException',
  });
  t.equal((await client(open).send(new ListGatewaysCommand({}))).Gateways?.length, 1);
});

t.test('Auth.Unsigned and raw protocol errors', async (t) => {
  const gateway = await startAdminGateway(t);
  const headers = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'StorageGateway_20130630.ListGateways' };
  const unsigned = await fetch(`${gateway.endpoint}/`, { method: 'POST', headers, body: '{}' });
  t.equal(unsigned.status, 403);
  t.same(await unsigned.json(), { __type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' });
  const stale = await gateway.app.inject({
    method: 'POST',
    url: '/',
    headers: {
      ...headers,
      'x-amz-date': '20200101T000000Z',
      authorization: `AWS4-HMAC-SHA256 Credential=${TEST_ACCESS_KEY.accessKeyId}/20200101/${TEST_REGION}/storagegateway/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`,
    },
    payload: '{}',
  });
  t.equal(stale.statusCode, 403);
  t.match(stale.json(), { __type: 'InvalidSignatureException', message: /^Signature expired/ });
});

t.test('Auth.SessionToken: a security token is refused as AWS refuses an invalid one', async (t) => {
  const gateway = await startAdminGateway(t);
  const withToken = client(gateway, { ...TEST_ACCESS_KEY, sessionToken: 'FwoGZXIvYXdzEBogus//token' });
  await t.rejects(withToken.send(new ListGatewaysCommand({})), {
    name: 'UnrecognizedClientException',
    message: 'The security token included in the request is invalid.',
    $metadata: { httpStatusCode: 403 },
  });
});

t.test('Protocol.RequestIdAndFrameworkErrors: RequestId on every answer, AWS error shapes from fastify too', async (t) => {
  const gateway = await startAdminGateway(t);
  const list = await client(gateway).send(new ListGatewaysCommand({}));
  t.match(list.$metadata.requestId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'the SDK reads x-amzn-RequestId');
  const headers = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'StorageGateway_20130630.ListGateways' };
  // fastify's default body limit is 1 MiB: the answer comes before any handler runs.
  const huge = await fetch(`${gateway.endpoint}/`, { method: 'POST', headers, body: 'x'.repeat(2 * 1024 * 1024) });
  t.equal(huge.status, 413);
  t.equal(huge.headers.get('x-amzn-errortype'), 'RequestEntityTooLargeException');
  t.ok(huge.headers.get('x-amzn-requestid'), 'x-amzn-RequestId on an error too');
  t.match(await huge.json(), { __type: 'RequestEntityTooLargeException', message: /body/i });
  const wrongType = await fetch(`${gateway.endpoint}/`, { method: 'POST', headers: { ...headers, 'content-type': 'text/csv' }, body: 'a,b' });
  t.equal(wrongType.status, 415);
  t.match(await wrongType.json(), { __type: 'SerializationException' });
  // The REST side keeps its own shape for what fastify answers.
  const missing = await fetch(`${gateway.endpoint}/v1/no-such-thing`);
  t.equal(missing.status, 404);
  t.same(await missing.json(), { error: { code: 'NOT_FOUND', message: 'no route GET /v1/no-such-thing; see /docs for the REST API' } });
  const badJson = await fetch(`${gateway.endpoint}/v1/volumes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":' });
  t.equal(badJson.status, 400);
  t.match(await badJson.json(), { error: { code: 'INVALID_REQUEST', message: /JSON/ } });
});

t.test('Operation.Unknown: 400 UnknownOperationException', async (t) => {
  const gateway = await startAdminGateway(t);
  const sgw = client(gateway);
  // A signed request for an operation we do not serve: reuse the SDK's signer via middleware.
  sgw.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers: Record<string, string> };
      request.headers['x-amz-target'] = 'StorageGateway_20130630.FrobnicateGateway';
      return next(args);
    },
    { step: 'build', name: 'renameOperation' },
  );
  await t.rejects(sgw.send(new ListGatewaysCommand({})), { name: 'UnknownOperationException', $metadata: { httpStatusCode: 400 } });
});

t.test('Volumes.CreateStored: served at once, in SendTargets, usable by libiscsi, deleted', async (t) => {
  const gateway = await startAdminGateway(t, { volumes: ['vol1:1GiB'] });
  const sgw = client(gateway);
  const GatewayARN = await gatewayArn(sgw);
  const created = await sgw.send(
    new CreateStorediSCSIVolumeCommand({
      GatewayARN,
      DiskId: 'local:2GiB',
      PreserveExistingData: false,
      TargetName: 'newvol',
      NetworkInterfaceId: '127.0.0.1',
    }),
  );
  t.match(created.VolumeARN, new RegExp(`^${GatewayARN}/volume/vol-[0-9A-F]{8}$`));
  t.equal(created.TargetARN, `${GatewayARN}/target/${IQN_PREFIX}newvol`);
  t.equal(created.VolumeSizeInBytes, 2 * 2 ** 30);

  const ls = await runTool('iscsi-ls', ['-i', INITIATOR, '-s', `iscsi://127.0.0.1:${gateway.iscsiPort}`]);
  t.equal(ls.exitCode, 0, 'iscsi-ls', { stderr: ls.stderr });
  t.match(ls.stdout, `Target:${IQN_PREFIX}newvol`);
  const inq = await runTool('iscsi-readcapacity16', ['-i', INITIATOR, `iscsi://127.0.0.1:${gateway.iscsiPort}/${IQN_PREFIX}newvol/0`]);
  t.equal(inq.exitCode, 0, 'iscsi-readcapacity16', { stderr: inq.stderr });
  t.match(inq.stdout, /LOGICAL BLOCK LENGTH IN BYTES:512/);
  t.match(inq.stdout, /Total size:2147483648/);

  const described = await sgw.send(new DescribeStorediSCSIVolumesCommand({ VolumeARNs: [created.VolumeARN ?? ''] }));
  t.match(described.StorediSCSIVolumes, [
    {
      VolumeARN: created.VolumeARN,
      VolumeType: 'STORED',
      VolumeStatus: 'AVAILABLE',
      VolumeSizeInBytes: 2 * 2 ** 30,
      VolumeDiskId: 'local:2GiB',
      TargetName: 'newvol',
      VolumeiSCSIAttributes: { TargetARN: created.TargetARN, NetworkInterfacePort: gateway.iscsiPort, LunNumber: 0, ChapEnabled: false },
    },
  ]);
  t.type(described.StorediSCSIVolumes?.[0]?.CreatedDate, Date);

  await rejectsWithCode(
    t,
    sgw.send(new CreateStorediSCSIVolumeCommand({ GatewayARN, DiskId: 'local:1GiB', PreserveExistingData: false, TargetName: 'newvol', NetworkInterfaceId: '127.0.0.1' })),
    'TargetAlreadyExists',
  );
  await sgw.send(new DeleteVolumeCommand({ VolumeARN: created.VolumeARN }));
  const after = await runTool('iscsi-ls', ['-i', INITIATOR, '-s', `iscsi://127.0.0.1:${gateway.iscsiPort}`]);
  t.notMatch(after.stdout, 'newvol');
  await rejectsWithCode(t, sgw.send(new DeleteVolumeCommand({ VolumeARN: created.VolumeARN })), 'VolumeNotFound');
  const config = (await sgw.send(new ListVolumesCommand({ GatewayARN }))).VolumeInfos?.[0];
  await rejectsWithCode(t, sgw.send(new DeleteVolumeCommand({ VolumeARN: config?.VolumeARN })), 'InvalidParameters', /configuration file/);
});

t.test('Volumes.Validation: AWS limits, messages name the field', async (t) => {
  const gateway = await startAdminGateway(t);
  const sgw = client(gateway);
  const GatewayARN = await gatewayArn(sgw);
  const base = { GatewayARN, DiskId: 'local:1GiB', PreserveExistingData: false, TargetName: 'v', NetworkInterfaceId: '127.0.0.1' };
  await rejectsWithCode(t, sgw.send(new CreateStorediSCSIVolumeCommand({ ...base, TargetName: 'Upper' })), 'InvalidParameters', /TargetName/);
  await rejectsWithCode(t, sgw.send(new CreateStorediSCSIVolumeCommand({ ...base, DiskId: 'local:10MiB' })), 'InvalidParameters', /DiskId: a stored volume must be a whole number of GiB/);
  await rejectsWithCode(t, sgw.send(new CreateStorediSCSIVolumeCommand({ ...base, DiskId: 'sdb' })), 'InvalidParameters', /DiskId/);
  await rejectsWithCode(t, sgw.send(new CreateStorediSCSIVolumeCommand({ ...base, NetworkInterfaceId: 'eth0' })), 'InvalidParameters', /NetworkInterfaceId/);
  await rejectsWithCode(t, sgw.send(new CreateStorediSCSIVolumeCommand({ ...base, GatewayARN: 'short' })), 'InvalidParameters', /GatewayARN/);
  await rejectsWithCode(
    t,
    sgw.send(new CreateCachediSCSIVolumeCommand({ GatewayARN, VolumeSizeInBytes: 1.5 * 2 ** 30, TargetName: 'c', NetworkInterfaceId: '127.0.0.1', ClientToken: 'abc' })),
    'InvalidParameters',
    /ClientToken/,
  );
  await rejectsWithCode(t, sgw.send(new ListVolumesCommand({ Limit: 0 })), 'InvalidParameters', /Limit/);
});

t.test('Volumes.CreateCached and ListVolumes pagination', async (t) => {
  const gateway = await startAdminGateway(t, { volumes: ['cfg:1GiB'] });
  const sgw = client(gateway);
  const GatewayARN = await gatewayArn(sgw);
  const cached = await sgw.send(
    new CreateCachediSCSIVolumeCommand({ GatewayARN, VolumeSizeInBytes: 2 ** 30, TargetName: 'cache1', NetworkInterfaceId: '127.0.0.1', ClientToken: 'token-1' }),
  );
  const cachedDescription = await sgw.send(new DescribeCachediSCSIVolumesCommand({ VolumeARNs: [cached.VolumeARN ?? ''] }));
  t.match(cachedDescription.CachediSCSIVolumes, [{ VolumeARN: cached.VolumeARN, VolumeType: 'CACHED', VolumeSizeInBytes: 2 ** 30 }]);
  for (const name of ['p1', 'p2', 'p3', 'p4']) {
    await sgw.send(new CreateStorediSCSIVolumeCommand({ GatewayARN, DiskId: 'local:1GiB', PreserveExistingData: false, TargetName: name, NetworkInterfaceId: '127.0.0.1' }));
  }
  const all: VolumeInfo[] = [];
  const markers: string[] = [];
  let Marker: string | undefined;
  do {
    const page = await sgw.send(new ListVolumesCommand({ GatewayARN, Limit: 2, ...(Marker !== undefined ? { Marker } : {}) }));
    t.ok((page.VolumeInfos ?? []).length <= 2);
    all.push(...(page.VolumeInfos ?? []));
    Marker = page.Marker;
    if (Marker !== undefined) markers.push(Marker);
  } while (Marker !== undefined);
  t.equal(all.length, 6);
  t.equal(markers.length, 2, 'three pages of 2');
  t.equal(new Set(all.map((v) => v.VolumeARN)).size, 6, 'no volume twice');
  t.same(all.map((v) => v.VolumeARN), [...all.map((v) => v.VolumeARN)].sort(), 'sorted by ARN');
  t.match(all.find((v) => v.VolumeARN === cached.VolumeARN), { VolumeType: 'CACHED', GatewayARN, VolumeAttachmentStatus: 'ATTACHED' });
  await rejectsWithCode(t, sgw.send(new ListVolumesCommand({ Marker: 'not-ours!' })), 'InvalidParameters', /Marker/);
});

t.test('Chap.UpdateDescribeDelete: CHAP enforced at login, sessions dropped, initiators listed', async (t) => {
  const gateway = await startAdminGateway(t, { volumes: ['chapvol:1GiB'] });
  const sgw = client(gateway);
  const GatewayARN = await gatewayArn(sgw);
  const volume = (await sgw.send(new ListVolumesCommand({ GatewayARN }))).VolumeInfos?.[0];
  const TargetARN = `${GatewayARN}/target/${IQN_PREFIX}chapvol`;
  const url = `iscsi://127.0.0.1:${gateway.iscsiPort}/${IQN_PREFIX}chapvol/0`;
  t.same((await sgw.send(new DescribeChapCredentialsCommand({ TargetARN }))).ChapCredentials, []);
  t.same((await sgw.send(new ListVolumeInitiatorsCommand({ VolumeARN: volume?.VolumeARN }))).Initiators, []);
  const initiator = await TestInitiator.connect('127.0.0.1', gateway.iscsiPort);
  t.teardown(() => initiator.destroy());
  await initiator.login({ initiatorName: INITIATOR, targetName: `${IQN_PREFIX}chapvol` });
  t.same((await sgw.send(new ListVolumeInitiatorsCommand({ VolumeARN: volume?.VolumeARN }))).Initiators, [INITIATOR]);

  await rejectsWithCode(
    t,
    sgw.send(new UpdateChapCredentialsCommand({ TargetARN, InitiatorName: INITIATOR, SecretToAuthenticateInitiator: 'short' })),
    'InvalidParameters',
    /SecretToAuthenticateInitiator/,
  );
  await rejectsWithCode(
    t,
    sgw.send(
      new UpdateChapCredentialsCommand({ TargetARN, InitiatorName: INITIATOR, SecretToAuthenticateInitiator: 'secret-one-12', SecretToAuthenticateTarget: 'secret-one-12' }),
    ),
    'InvalidParameters',
    /differ/,
  );
  await rejectsWithCode(
    t,
    sgw.send(new UpdateChapCredentialsCommand({ TargetARN: `${GatewayARN}/target/${IQN_PREFIX}nosuch`, InitiatorName: INITIATOR, SecretToAuthenticateInitiator: 'secret-one-12' })),
    'TargetNotFound',
  );
  await sgw.send(new UpdateChapCredentialsCommand({ TargetARN, InitiatorName: INITIATOR, SecretToAuthenticateInitiator: 'secret-one-12' }));
  await t.rejects(initiator.ping(), 'the session logged in without CHAP was dropped');
  t.same((await sgw.send(new ListVolumeInitiatorsCommand({ VolumeARN: volume?.VolumeARN }))).Initiators, []);
  t.same((await sgw.send(new DescribeChapCredentialsCommand({ TargetARN }))).ChapCredentials, [
    { TargetARN, InitiatorName: INITIATOR, SecretToAuthenticateInitiator: 'secret-one-12' },
  ]);
  const refused = await runTool('iscsi-inq', ['-i', INITIATOR, url]);
  t.not(refused.exitCode, 0, 'login without CHAP is refused');
  const chapUrl = `iscsi://${INITIATOR}%secret-one-12@127.0.0.1:${gateway.iscsiPort}/${IQN_PREFIX}chapvol/0`;
  const accepted = await runTool('iscsi-inq', ['-i', INITIATOR, chapUrl]);
  t.equal(accepted.exitCode, 0, 'login with CHAP', { stderr: accepted.stderr });

  // Mutual CHAP: the target answers as its own iSCSI name, as AWS gateways do.
  await sgw.send(
    new UpdateChapCredentialsCommand({ TargetARN, InitiatorName: INITIATOR, SecretToAuthenticateInitiator: 'secret-one-12', SecretToAuthenticateTarget: 'secret-two-12' }),
  );
  const mutual = await runTool('iscsi-inq', ['-i', INITIATOR, `${chapUrl}?target_user=${IQN_PREFIX}chapvol&target_password=secret-two-12`]);
  t.equal(mutual.exitCode, 0, 'login with mutual CHAP', { stderr: mutual.stderr });
  const wrongTarget = await runTool('iscsi-inq', ['-i', INITIATOR, `${chapUrl}?target_user=${IQN_PREFIX}chapvol&target_password=not-the-secret`]);
  t.not(wrongTarget.exitCode, 0, 'the initiator refuses a target that does not know the mutual secret');
  t.match((await sgw.send(new DescribeChapCredentialsCommand({ TargetARN }))).ChapCredentials, [{ SecretToAuthenticateTarget: 'secret-two-12' }]);

  await rejectsWithCode(t, sgw.send(new DeleteChapCredentialsCommand({ TargetARN, InitiatorName: 'iqn.2026-11.other:x' })), 'ChapCredentialNotFound');
  await sgw.send(new DeleteChapCredentialsCommand({ TargetARN, InitiatorName: INITIATOR }));
  t.same((await sgw.send(new DescribeChapCredentialsCommand({ TargetARN }))).ChapCredentials, []);
  const open = await runTool('iscsi-inq', ['-i', INITIATOR, url]);
  t.equal(open.exitCode, 0, 'login without CHAP after delete', { stderr: open.stderr });
});

t.test('Gateway.CacheUploadBufferBandwidth', async (t) => {
  const gateway = await startAdminGateway(t);
  const sgw = client(gateway);
  const GatewayARN = await gatewayArn(sgw);
  t.match(await sgw.send(new DescribeCacheCommand({ GatewayARN })), { GatewayARN, DiskIds: [], CacheAllocatedInBytes: 0 });
  t.match(await sgw.send(new DescribeUploadBufferCommand({ GatewayARN })), { GatewayARN, DiskIds: [], UploadBufferUsedInBytes: 0, UploadBufferAllocatedInBytes: 0 });

  const before = await sgw.send(new DescribeBandwidthRateLimitCommand({ GatewayARN }));
  t.equal(before.AverageUploadRateLimitInBitsPerSec, undefined);
  await sgw.send(new UpdateBandwidthRateLimitCommand({ GatewayARN, AverageUploadRateLimitInBitsPerSec: 102400 }));
  await sgw.send(new UpdateBandwidthRateLimitCommand({ GatewayARN, AverageDownloadRateLimitInBitsPerSec: 204800 }));
  t.match(await sgw.send(new DescribeBandwidthRateLimitCommand({ GatewayARN })), {
    AverageUploadRateLimitInBitsPerSec: 102400,
    AverageDownloadRateLimitInBitsPerSec: 204800,
  });
  await rejectsWithCode(
    t,
    sgw.send(new UpdateBandwidthRateLimitCommand({ GatewayARN, AverageUploadRateLimitInBitsPerSec: 100 })),
    'InvalidParameters',
    /AverageUploadRateLimitInBitsPerSec/,
  );

  const interval = { StartHourOfDay: 8, StartMinuteOfHour: 0, EndHourOfDay: 17, EndMinuteOfHour: 59, DaysOfWeek: [1, 2, 3, 4, 5], AverageUploadRateLimitInBitsPerSec: 51200 };
  await sgw.send(new UpdateBandwidthRateLimitScheduleCommand({ GatewayARN, BandwidthRateLimitIntervals: [interval] }));
  t.same((await sgw.send(new DescribeBandwidthRateLimitScheduleCommand({ GatewayARN }))).BandwidthRateLimitIntervals, [interval]);
  await rejectsWithCode(
    t,
    sgw.send(new UpdateBandwidthRateLimitScheduleCommand({ GatewayARN, BandwidthRateLimitIntervals: [{ ...interval, DaysOfWeek: [7] }] })),
    'InvalidParameters',
    /BandwidthRateLimitIntervals\[0\]\.DaysOfWeek\[0\]/,
  );
  await rejectsWithCode(
    t,
    sgw.send(new UpdateBandwidthRateLimitScheduleCommand({ GatewayARN, BandwidthRateLimitIntervals: Array.from({ length: 21 }, () => interval) })),
    'InvalidParameters',
    /at most 20/,
  );
});
