// The snapshot operations of the Volume Gateway API (CreateSnapshot, ListVolumeRecoveryPoints,
// CreateSnapshotFromVolumeRecoveryPoint, Describe/Update/DeleteSnapshotSchedule) as entries of the
// operation table, on the gateway's SnapshotService and SnapshotScheduler. Field names and shapes
// follow the AWS API reference. Listing and deleting snapshots is the EC2 API's job at AWS; here
// it is the REST API's (/v1/snapshots).
//
// Recovery points: AWS keeps one per cached volume, the latest state fully uploaded. shelfgate
// takes a snapshot from the volume's current state (the local cache is the newest consistent
// copy), so VolumeRecoveryPointTime is the moment of the request.

import { z } from 'zod';
import type { SnapshotScheduler } from '../../gateway/snapshot-scheduler.js';
import type { SnapshotService } from '../../gateway/snapshot-service.js';
import type { ServedVolumeView } from '../../gateway/volume-registry.js';
import type { AdminDeps } from '../admin-deps.js';
import type { GatewayArns } from './arn.js';
import { invalidGatewayRequest } from './aws-error.js';
import { operation, type AwsOperation } from './router.js';
import { GatewayInput, VolumeARN } from './shapes.js';

const Tags = z.array(z.object({ Key: z.string().min(1).max(128), Value: z.string().max(256) })).optional();

const CreateSnapshotInput = z.object({
  VolumeARN,
  SnapshotDescription: z.string().min(1, 'must be 1 to 255 characters').max(255, 'must be 1 to 255 characters'),
  Tags,
});

const UpdateSnapshotScheduleInput = z.object({
  VolumeARN,
  StartAt: z.number().int('must be an integer').min(0, 'must be 0 to 23').max(23, 'must be 0 to 23'),
  RecurrenceInHours: z.number().int('must be an integer').min(1, 'must be 1 to 24').max(24, 'must be 1 to 24'),
  Description: z.string().min(1).max(255).optional(),
  Tags,
});

export interface SnapshotOperationContext {
  deps: AdminDeps;
  arns: GatewayArns;
  checkGateway(gatewayArn: string): void;
  volumeByArn(volumeArn: string): ServedVolumeView;
}

export function snapshotsOf(deps: AdminDeps): { service: SnapshotService; scheduler: SnapshotScheduler } {
  if (deps.snapshots === undefined) throw invalidGatewayRequest('NotSupported', 'snapshots need the storage engine');
  return deps.snapshots;
}

export function snapshotOperations(ctx: SnapshotOperationContext): Record<string, AwsOperation> {
  const { deps, arns } = ctx;
  const scheduleOf = (volume: ServedVolumeView) => {
    const schedule = snapshotsOf(deps).scheduler.describe(volume);
    return {
      VolumeARN: arns.volume(volume.serial),
      ...(schedule !== undefined
        ? { StartAt: schedule.startAtHour, RecurrenceInHours: schedule.recurrenceInHours, Description: schedule.description }
        : {}),
      Timezone: 'GMT',
      Tags: [],
    };
  };
  return {
    CreateSnapshot: operation(CreateSnapshotInput, async (input) => {
      const volume = ctx.volumeByArn(input.VolumeARN);
      const record = await snapshotsOf(deps).service.create(volume.id, input.SnapshotDescription);
      return { VolumeARN: arns.volume(volume.serial), SnapshotId: record.snapId };
    }),

    ListVolumeRecoveryPoints: operation(GatewayInput, async (input) => {
      ctx.checkGateway(input.GatewayARN);
      const now = new Date().toISOString();
      return {
        GatewayARN: arns.gateway,
        VolumeRecoveryPointInfos: deps.volumes
          .list()
          .filter((v) => v.type === 'cached')
          .map((v) => ({
            VolumeARN: arns.volume(v.serial),
            VolumeSizeInBytes: v.sizeBytes,
            VolumeUsageInBytes: v.sizeBytes,
            VolumeRecoveryPointTime: now,
          })),
      };
    }),

    CreateSnapshotFromVolumeRecoveryPoint: operation(CreateSnapshotInput, async (input) => {
      const volume = ctx.volumeByArn(input.VolumeARN);
      if (volume.type !== 'cached') {
        throw invalidGatewayRequest('InvalidParameters', 'VolumeARN: recovery points exist for cached volumes only', { field: 'VolumeARN' });
      }
      const record = await snapshotsOf(deps).service.create(volume.id, input.SnapshotDescription);
      return { SnapshotId: record.snapId, VolumeARN: arns.volume(volume.serial), VolumeRecoveryPointTime: record.startTime };
    }),

    DescribeSnapshotSchedule: operation(z.object({ VolumeARN }), async (input) => scheduleOf(ctx.volumeByArn(input.VolumeARN))),

    UpdateSnapshotSchedule: operation(UpdateSnapshotScheduleInput, async (input) => {
      const volume = ctx.volumeByArn(input.VolumeARN);
      await snapshotsOf(deps).scheduler.update({
        volumeId: volume.id,
        startAtHour: input.StartAt,
        recurrenceInHours: input.RecurrenceInHours,
        description: input.Description ?? `${deps.settings.gatewayId}:${volume.serial}:Schedule`,
      });
      return { VolumeARN: arns.volume(volume.serial) };
    }),

    DeleteSnapshotSchedule: operation(z.object({ VolumeARN }), async (input) => {
      const volume = ctx.volumeByArn(input.VolumeARN);
      await snapshotsOf(deps).scheduler.remove(volume);
      return { VolumeARN: arns.volume(volume.serial) };
    }),
  };
}

/** CreateCachediSCSIVolume / CreateStorediSCSIVolume with SnapshotId or SourceVolumeARN: the
 *  snapshot to restore from (a clone is a new snapshot of the source's current state). */
export async function snapshotToRestore(
  deps: AdminDeps,
  source: { snapshotId?: string | undefined; sourceVolume?: ServedVolumeView | undefined; sizeBytes: number },
): Promise<string | undefined> {
  if (source.snapshotId === undefined && source.sourceVolume === undefined) return undefined;
  const { service } = snapshotsOf(deps);
  if (source.sourceVolume !== undefined) {
    if (source.sizeBytes < source.sourceVolume.sizeBytes) {
      throw invalidGatewayRequest('InvalidParameters', 'VolumeSizeInBytes: a clone must be at least as large as its source volume', {
        field: 'VolumeSizeInBytes',
      });
    }
    const clone = await service.create(source.sourceVolume.id, `clone of ${source.sourceVolume.name}`);
    const done = await service.waitFor(clone.snapId);
    if (done.status !== 'completed') {
      throw invalidGatewayRequest('InvalidParameters', `SourceVolumeARN: the snapshot of the source failed: ${done.error ?? done.status}`);
    }
    return done.snapId;
  }
  // A snapshot of this gateway or of any other gateway on the bucket (the account's snapshots).
  const record = await service.describe(source.snapshotId!);
  if (record.status !== 'completed') {
    throw invalidGatewayRequest('InvalidParameters', `SnapshotId: snapshot ${record.snapId} is ${record.status}`, { field: 'SnapshotId' });
  }
  return record.snapId;
}
