// The Storage Gateway operations shelfgate serves: one table entry per operation (name -> zod input
// schema -> handler), all on the services in AdminDeps. Field names and shapes follow the AWS API
// reference exactly, so the AWS SDKs and CLI parse our answers.

import { networkInterfaces } from 'node:os';
import type { ServedVolumeView } from '../../gateway/volume-registry.js';
import { volumeSizeProblem } from '../../gateway/volume-service.js';
import { parseSize } from '../../size.js';
import type { AdminDeps } from '../admin-deps.js';
import { GatewayArns } from './arn.js';
import { invalidGatewayRequest } from './aws-error.js';
import { checkKmsEncrypted } from './kms-encrypted.js';
import { diskOperations } from './disk-operations.js';
import { paginate } from './pagination.js';
import { operation, type AwsOperation } from './router.js';
import * as shape from './shapes.js';
import { snapshotOperations, snapshotsOf, snapshotToRestore } from './snapshot-operations.js';
import { tapeOperations } from './tape-operations.js';

/** Our gateway serves stored volumes (and, until the S3 engine lands, cached ones from the same
 *  local store). */
const GATEWAY_TYPE = 'STORED';
const DISK_ID_PATTERN = /^local:(.+)$/;

export function storageGatewayOperations(deps: AdminDeps): Record<string, AwsOperation> {
  const arns = new GatewayArns({ region: deps.region, accountId: deps.accountId, gatewayId: deps.settings.gatewayId });

  const checkGateway = (gatewayArn: string): void => {
    if (gatewayArn !== arns.gateway) {
      throw invalidGatewayRequest('GatewayNotFound', `GatewayARN: no gateway ${gatewayArn} (this is ${arns.gateway})`, {
        field: 'GatewayARN',
      });
    }
  };
  const volumeByArn = (volumeArn: string): ServedVolumeView => {
    const volumeId = arns.volumeIdOf(volumeArn);
    const volume = deps.volumes.list().find((v) => v.serial === volumeId);
    if (volume === undefined) throw invalidGatewayRequest('VolumeNotFound', `VolumeARN: no volume ${volumeArn}`, { field: 'VolumeARN' });
    return volume;
  };
  const volumeByTargetArn = (targetArn: string): ServedVolumeView => {
    const targetName = arns.targetNameOf(targetArn);
    const volume = deps.volumes.list().find((v) => v.targetName === targetName);
    if (volume === undefined) throw invalidGatewayRequest('TargetNotFound', `TargetARN: no target ${targetArn}`, { field: 'TargetARN' });
    return volume;
  };
  const volumeType = (volume: ServedVolumeView): string => (volume.type === 'stored' ? 'STORED' : 'CACHED');
  const iscsiAttributes = (volume: ServedVolumeView) => {
    const portal = initiatorPortal(deps);
    return {
      TargetARN: arns.target(volume.targetName),
      NetworkInterfaceId: portal.host,
      NetworkInterfacePort: portal.port,
      LunNumber: 0,
      ChapEnabled: volume.chap !== undefined,
    };
  };
  const volumeInfo = (volume: ServedVolumeView) => ({
    VolumeARN: arns.volume(volume.serial),
    VolumeId: volume.serial,
    GatewayARN: arns.gateway,
    GatewayId: deps.settings.gatewayId,
    VolumeType: volumeType(volume),
    VolumeSizeInBytes: volume.sizeBytes,
    VolumeAttachmentStatus: 'ATTACHED',
  });
  const iscsiVolume = (volume: ServedVolumeView) => ({
    VolumeARN: arns.volume(volume.serial),
    VolumeId: volume.serial,
    VolumeType: volumeType(volume),
    VolumeStatus: 'AVAILABLE',
    VolumeAttachmentStatus: 'ATTACHED',
    VolumeSizeInBytes: volume.sizeBytes,
    VolumeiSCSIAttributes: iscsiAttributes(volume),
    CreatedDate: Date.parse(volume.createdAt) / 1000,
    TargetName: volume.name,
    ...(volume.type === 'stored' ? { VolumeDiskId: `local:${volume.sizeBytes / 2 ** 30}GiB`, PreservedExistingData: false } : {}),
  });
  /** AWS DescribeStorediSCSIVolumes / DescribeCachediSCSIVolumes: the listed volumes, by ARN. */
  const describeVolumes = (volumeArns: string[], type: ServedVolumeView['type']) => {
    const volumes = volumeArns.map(volumeByArn).filter((v) => v.type === type);
    return volumes.map(iscsiVolume).sort((a, b) => (a.VolumeARN < b.VolumeARN ? -1 : a.VolumeARN > b.VolumeARN ? 1 : 0));
  };
  const createVolume = async (
    input: { GatewayARN: string; TargetName: string; SnapshotId?: string | undefined; KMSEncrypted?: boolean | undefined; KMSKey?: string | undefined },
    type: 'stored' | 'cached',
    size: { bytes: number; field: string },
    sourceVolume?: ServedVolumeView,
  ) => {
    checkGateway(input.GatewayARN);
    const sizeProblem = volumeSizeProblem(type, size.bytes);
    if (sizeProblem !== undefined) throw invalidGatewayRequest('InvalidParameters', `${size.field}: ${sizeProblem}`, { field: size.field });
    checkKmsEncrypted(input, deps.encryption);
    // A volume from a snapshot (or a clone) reads the snapshot's chunk objects lazily.
    const snapId = await snapshotToRestore(deps, { snapshotId: input.SnapshotId, sourceVolume, sizeBytes: size.bytes });
    const volume = await deps.volumes.create({
      name: input.TargetName,
      type,
      sizeBytes: size.bytes,
      ...(snapId !== undefined ? { prepare: (record) => snapshotsOf(deps).service.restoreInto(snapId, record) } : {}),
    });
    return { VolumeARN: arns.volume(volume.serial), TargetARN: arns.target(volume.targetName) };
  };
  const rateLimit = () => {
    const limit = deps.settings.bandwidthRateLimit();
    return {
      GatewayARN: arns.gateway,
      ...(limit.averageUploadRateLimitInBitsPerSec !== undefined ? { AverageUploadRateLimitInBitsPerSec: limit.averageUploadRateLimitInBitsPerSec } : {}),
      ...(limit.averageDownloadRateLimitInBitsPerSec !== undefined
        ? { AverageDownloadRateLimitInBitsPerSec: limit.averageDownloadRateLimitInBitsPerSec }
        : {}),
    };
  };

  return {
    ...tapeOperations({ deps, arns, checkGateway, initiatorPortal: () => initiatorPortal(deps) }),
    ...snapshotOperations({ deps, arns, checkGateway, volumeByArn }),
    ...diskOperations({ deps, arns, checkGateway }),

    DescribeGatewayInformation: operation(shape.GatewayInput, async (input) => {
      checkGateway(input.GatewayARN);
      return {
        GatewayARN: arns.gateway,
        GatewayId: deps.settings.gatewayId,
        GatewayName: deps.gatewayName,
        GatewayTimezone: 'GMT',
        GatewayState: 'STATE_RUNNING',
        GatewayNetworkInterfaces: [{ Ipv4Address: initiatorPortal(deps).host }],
        GatewayType: GATEWAY_TYPE,
        HostEnvironment: 'OTHER',
        SoftwareVersion: deps.softwareVersion,
      };
    }),

    ListGateways: operation(shape.PageInput, async (input) => {
      const gateways = [
        {
          GatewayId: deps.settings.gatewayId,
          GatewayARN: arns.gateway,
          GatewayType: GATEWAY_TYPE,
          GatewayOperationalState: 'ACTIVE',
          GatewayName: deps.gatewayName,
          HostEnvironment: 'OTHER',
        },
      ];
      const { page, marker } = paginate(gateways, (g) => g.GatewayARN, input);
      return { Gateways: page, ...(marker !== undefined ? { Marker: marker } : {}) };
    }),

    ListVolumes: operation(shape.ListVolumesInput, async (input) => {
      if (input.GatewayARN !== undefined) checkGateway(input.GatewayARN);
      const { page, marker } = paginate(deps.volumes.list().map(volumeInfo), (v) => v.VolumeARN, input);
      return { GatewayARN: arns.gateway, VolumeInfos: page, ...(marker !== undefined ? { Marker: marker } : {}) };
    }),

    DescribeStorediSCSIVolumes: operation(shape.DescribeVolumesInput, async (input) => ({
      StorediSCSIVolumes: describeVolumes(input.VolumeARNs, 'stored'),
    })),

    DescribeCachediSCSIVolumes: operation(shape.DescribeVolumesInput, async (input) => ({
      CachediSCSIVolumes: describeVolumes(input.VolumeARNs, 'cached'),
    })),

    CreateStorediSCSIVolume: operation(shape.CreateStorediSCSIVolumeInput, async (input) => {
      const match = DISK_ID_PATTERN.exec(input.DiskId);
      let sizeBytes: number;
      try {
        if (match === null) throw new Error('must be "local:<size>", e.g. "local:100GiB"');
        sizeBytes = parseSize(match[1]);
      } catch (err) {
        throw invalidGatewayRequest('InvalidParameters', `DiskId: ${(err as Error).message}`, { field: 'DiskId' });
      }
      if (input.PreserveExistingData) {
        throw invalidGatewayRequest('InvalidParameters', 'PreserveExistingData: a new local-store disk has no data to preserve', {
          field: 'PreserveExistingData',
        });
      }
      const created = await createVolume(input, 'stored', { bytes: sizeBytes, field: 'DiskId' });
      return { ...created, VolumeSizeInBytes: sizeBytes };
    }),

    CreateCachediSCSIVolume: operation(shape.CreateCachediSCSIVolumeInput, async (input) => {
      if (input.SourceVolumeARN !== undefined && input.SnapshotId !== undefined) {
        throw invalidGatewayRequest('InvalidParameters', 'SnapshotId and SourceVolumeARN are mutually exclusive', { field: 'SourceVolumeARN' });
      }
      const source = input.SourceVolumeARN !== undefined ? volumeByArn(input.SourceVolumeARN) : undefined;
      return createVolume(input, 'cached', { bytes: input.VolumeSizeInBytes, field: 'VolumeSizeInBytes' }, source);
    }),

    DeleteVolume: operation(shape.VolumeInput, async (input) => {
      const volume = volumeByArn(input.VolumeARN);
      await deps.volumes.delete(volume.name);
      return { VolumeARN: input.VolumeARN };
    }),

    ListVolumeInitiators: operation(shape.VolumeInput, async (input) => ({
      Initiators: deps.volumes.initiators(volumeByArn(input.VolumeARN).name),
    })),

    DescribeChapCredentials: operation(shape.TargetInput, async (input) => {
      const volume = volumeByTargetArn(input.TargetARN);
      const chap = volume.chap;
      return {
        ChapCredentials:
          chap === undefined
            ? []
            : [
                {
                  TargetARN: arns.target(volume.targetName),
                  InitiatorName: chap.initiatorName,
                  SecretToAuthenticateInitiator: chap.secretToAuthenticateInitiator,
                  ...(chap.secretToAuthenticateTarget !== undefined ? { SecretToAuthenticateTarget: chap.secretToAuthenticateTarget } : {}),
                },
              ],
      };
    }),

    UpdateChapCredentials: operation(shape.UpdateChapCredentialsInput, async (input) => {
      const volume = volumeByTargetArn(input.TargetARN);
      if (input.SecretToAuthenticateTarget !== undefined && input.SecretToAuthenticateTarget === input.SecretToAuthenticateInitiator) {
        throw invalidGatewayRequest('InvalidParameters', 'SecretToAuthenticateTarget: must differ from SecretToAuthenticateInitiator', {
          field: 'SecretToAuthenticateTarget',
        });
      }
      await deps.volumes.updateChap(volume.name, {
        initiatorName: input.InitiatorName,
        secretToAuthenticateInitiator: input.SecretToAuthenticateInitiator,
        ...(input.SecretToAuthenticateTarget !== undefined ? { secretToAuthenticateTarget: input.SecretToAuthenticateTarget } : {}),
      });
      return { TargetARN: arns.target(volume.targetName), InitiatorName: input.InitiatorName };
    }),

    DeleteChapCredentials: operation(shape.DeleteChapCredentialsInput, async (input) => {
      const volume = volumeByTargetArn(input.TargetARN);
      await deps.volumes.deleteChap(volume.name, input.InitiatorName);
      return { TargetARN: arns.target(volume.targetName), InitiatorName: input.InitiatorName };
    }),

    // Bandwidth limits are validated and stored; the uploader that enforces them is a later issue.
    DescribeBandwidthRateLimit: operation(shape.GatewayInput, async (input) => {
      checkGateway(input.GatewayARN);
      return rateLimit();
    }),

    UpdateBandwidthRateLimit: operation(shape.UpdateBandwidthRateLimitInput, async (input) => {
      checkGateway(input.GatewayARN);
      if (input.AverageUploadRateLimitInBitsPerSec === undefined && input.AverageDownloadRateLimitInBitsPerSec === undefined) {
        throw invalidGatewayRequest('InvalidParameters', 'AverageUploadRateLimitInBitsPerSec or AverageDownloadRateLimitInBitsPerSec is required');
      }
      await deps.settings.updateBandwidthRateLimit({
        ...(input.AverageUploadRateLimitInBitsPerSec !== undefined ? { averageUploadRateLimitInBitsPerSec: input.AverageUploadRateLimitInBitsPerSec } : {}),
        ...(input.AverageDownloadRateLimitInBitsPerSec !== undefined
          ? { averageDownloadRateLimitInBitsPerSec: input.AverageDownloadRateLimitInBitsPerSec }
          : {}),
      });
      return { GatewayARN: arns.gateway };
    }),

    DeleteBandwidthRateLimit: operation(shape.DeleteBandwidthRateLimitInput, async (input) => {
      checkGateway(input.GatewayARN);
      const which = input.BandwidthType === 'UPLOAD' ? 'upload' : input.BandwidthType === 'DOWNLOAD' ? 'download' : 'all';
      await deps.settings.deleteBandwidthRateLimit(which);
      return { GatewayARN: arns.gateway };
    }),

    DescribeBandwidthRateLimitSchedule: operation(shape.GatewayInput, async (input) => {
      checkGateway(input.GatewayARN);
      return {
        GatewayARN: arns.gateway,
        BandwidthRateLimitIntervals: deps.settings.bandwidthRateLimitSchedule().map((i) => ({
          StartHourOfDay: i.startHourOfDay,
          StartMinuteOfHour: i.startMinuteOfHour,
          EndHourOfDay: i.endHourOfDay,
          EndMinuteOfHour: i.endMinuteOfHour,
          DaysOfWeek: i.daysOfWeek,
          ...(i.averageUploadRateLimitInBitsPerSec !== undefined ? { AverageUploadRateLimitInBitsPerSec: i.averageUploadRateLimitInBitsPerSec } : {}),
          ...(i.averageDownloadRateLimitInBitsPerSec !== undefined
            ? { AverageDownloadRateLimitInBitsPerSec: i.averageDownloadRateLimitInBitsPerSec }
            : {}),
        })),
      };
    }),

    UpdateBandwidthRateLimitSchedule: operation(shape.UpdateBandwidthRateLimitScheduleInput, async (input) => {
      checkGateway(input.GatewayARN);
      await deps.settings.updateBandwidthRateLimitSchedule(
        input.BandwidthRateLimitIntervals.map((i) => ({
          startHourOfDay: i.StartHourOfDay,
          startMinuteOfHour: i.StartMinuteOfHour,
          endHourOfDay: i.EndHourOfDay,
          endMinuteOfHour: i.EndMinuteOfHour,
          daysOfWeek: i.DaysOfWeek,
          ...(i.AverageUploadRateLimitInBitsPerSec !== undefined ? { averageUploadRateLimitInBitsPerSec: i.AverageUploadRateLimitInBitsPerSec } : {}),
          ...(i.AverageDownloadRateLimitInBitsPerSec !== undefined
            ? { averageDownloadRateLimitInBitsPerSec: i.AverageDownloadRateLimitInBitsPerSec }
            : {}),
        })),
      );
      return { GatewayARN: arns.gateway };
    }),
  };
}

/** The portal initiators reach: the first advertised one (iscsi.advertise), else the listen
 *  address, or for a wildcard listener the first external IPv4 address of this machine (AWS
 *  reports the gateway's interface). */
function initiatorPortal(deps: AdminDeps): { host: string; port: number } {
  const advertised = deps.iscsiAdvertise?.[0];
  if (advertised !== undefined) return advertised;
  const listen = deps.iscsiPortal();
  if (listen.host !== '0.0.0.0' && listen.host !== '::') return listen;
  for (const addresses of Object.values(networkInterfaces())) {
    const external = addresses?.find((a) => a.family === 'IPv4' && !a.internal);
    if (external !== undefined) return { host: external.address, port: listen.port };
  }
  return { host: '127.0.0.1', port: listen.port };
}
