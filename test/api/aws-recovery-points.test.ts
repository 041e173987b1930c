// Cached-volume recovery points (ListVolumeRecoveryPoints, CreateSnapshotFromVolumeRecoveryPoint)
// driven by the real @aws-sdk/client-storage-gateway against the gateway as main.ts wires it
// (storage engine and snapshot service included), in process on 127.0.0.1 ephemeral ports.
// Recovery points exist for cached volumes only; a stored volume is refused.
import {
  CreateCachediSCSIVolumeCommand,
  CreateSnapshotFromVolumeRecoveryPointCommand,
  InvalidGatewayRequestException,
  ListGatewaysCommand,
  ListVolumeRecoveryPointsCommand,
  ListVolumesCommand,
  StorageGatewayClient,
} from '@aws-sdk/client-storage-gateway';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { resolveConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startGateway } from '../../src/main.js';
import { GiB } from '../../src/size.js';
import { TEST_ACCESS_KEY, TEST_ACCOUNT, TEST_REGION } from '../helpers/admin-gateway.js';

t.test('VolumeRecoveryPoints.CachedVolume', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'shelfgate-recovery-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const config = resolveConfig(
    {
      gateway: { region: TEST_REGION, accountId: TEST_ACCOUNT },
      api: { accessKeys: [{ accessKeyId: TEST_ACCESS_KEY.accessKeyId, secretAccessKey: TEST_ACCESS_KEY.secretAccessKey }] },
    },
    { dataDir, iscsiListen: '127.0.0.1:0', apiListen: '127.0.0.1:0', volumes: ['stored1:1GiB'] },
  );
  const gateway = await startGateway(config, createLogger({ level: 'silent', format: 'human' }));
  t.teardown(() => gateway.close());
  const sgw = new StorageGatewayClient({
    endpoint: `http://127.0.0.1:${gateway.api.port}`,
    region: TEST_REGION,
    // A copy: the SDK marks the credentials object it is given.
    credentials: { ...TEST_ACCESS_KEY },
    maxAttempts: 1,
  });
  const GatewayARN = (await sgw.send(new ListGatewaysCommand({}))).Gateways?.[0]?.GatewayARN ?? '';

  t.same((await sgw.send(new ListVolumeRecoveryPointsCommand({ GatewayARN }))).VolumeRecoveryPointInfos, [], 'a stored volume has none');

  const { VolumeARN } = await sgw.send(
    new CreateCachediSCSIVolumeCommand({
      GatewayARN,
      VolumeSizeInBytes: 2 * GiB,
      TargetName: 'cached1',
      NetworkInterfaceId: '127.0.0.1',
      ClientToken: 'recovery-points-1',
    }),
  );
  const listed = await sgw.send(new ListVolumeRecoveryPointsCommand({ GatewayARN }));
  t.equal(listed.GatewayARN, GatewayARN);
  t.equal(listed.VolumeRecoveryPointInfos?.length, 1);
  const [point] = listed.VolumeRecoveryPointInfos ?? [];
  t.equal(point?.VolumeARN, VolumeARN);
  t.equal(point?.VolumeSizeInBytes, 2 * GiB);
  t.type(point?.VolumeUsageInBytes, 'number');
  t.ok(!Number.isNaN(Date.parse(point?.VolumeRecoveryPointTime ?? '')), 'VolumeRecoveryPointTime is a timestamp');

  const requestedAt = new Date().toISOString();
  const snapshot = await sgw.send(new CreateSnapshotFromVolumeRecoveryPointCommand({ VolumeARN, SnapshotDescription: 'from recovery point' }));
  t.match(snapshot.SnapshotId, /^snap-[0-9a-f]{17}$/);
  t.equal(snapshot.VolumeARN, VolumeARN);
  t.ok((snapshot.VolumeRecoveryPointTime ?? '') >= requestedAt, 'the recovery point is the state at the request');

  const stored = (await sgw.send(new ListVolumesCommand({ GatewayARN }))).VolumeInfos?.find((v) => v.VolumeType === 'STORED');
  try {
    await sgw.send(new CreateSnapshotFromVolumeRecoveryPointCommand({ VolumeARN: stored?.VolumeARN, SnapshotDescription: 'stored' }));
    t.fail('a stored volume has no recovery point');
  } catch (err) {
    t.type(err, InvalidGatewayRequestException);
    t.equal((err as InvalidGatewayRequestException).error?.errorCode, 'InvalidParameters');
    t.match((err as Error).message, /VolumeARN/);
  }
});
