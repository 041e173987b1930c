// zod input schemas of the Storage Gateway operations we serve, with AWS's documented limits
// (API reference, "Request Parameters"); field names are AWS's exactly.

import { z } from 'zod';

const length = (min: number, max: number) =>
  z.string().min(min, `must be at least ${min} characters`).max(max, `must be at most ${max} characters`);

export const GatewayARN = length(50, 500);
export const VolumeARN = length(50, 500);
export const TargetARN = length(50, 800);
export const Marker = length(1, 1000);
export const Limit = z.number().int('must be an integer').min(1, 'must be at least 1');
/** CHAP secrets: 12 to 16 characters (AWS UpdateChapCredentials). */
const ChapSecret = z.string().min(12, 'must be 12 to 16 characters').max(16, 'must be 12 to 16 characters');
const InitiatorName = length(1, 255).regex(/^[0-9a-z:.-]+$/, 'must contain only lower-case letters, digits, ":", "." and "-"');
/** Our target names are volume names (AWS allows ";" too; an IQN part cannot have it). */
const TargetName = length(1, 200).regex(/^[-.a-z0-9]+$/, 'must contain only lower-case letters, digits, "-" and "."');
const NetworkInterfaceId = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}$/, 'must be an IPv4 address');
const SnapshotId = z.string().regex(/^snap-([0-9A-Fa-f]{8}|[0-9A-Fa-f]{17})$/, 'must be snap- and 8 or 17 hex digits');
const KMSKey = length(7, 2048);
const Tags = z.array(z.object({ Key: length(1, 128), Value: z.string().max(256, 'must be at most 256 characters') })).max(50, 'at most 50 tags');
const ClientToken = length(5, 100);
const UploadRate = z.number().int('must be an integer').min(51200, 'must be at least 51200 bits per second');
const DownloadRate = z.number().int('must be an integer').min(102400, 'must be at least 102400 bits per second');

export const GatewayInput = z.object({ GatewayARN });
export const PageInput = z.object({ Marker: Marker.optional(), Limit: Limit.optional() });
export const ListVolumesInput = z.object({ GatewayARN: GatewayARN.optional(), Marker: Marker.optional(), Limit: Limit.optional() });
export const VolumeInput = z.object({ VolumeARN });
export const TargetInput = z.object({ TargetARN });
export const DescribeVolumesInput = z.object({ VolumeARNs: z.array(VolumeARN) });

export const CreateStorediSCSIVolumeInput = z.object({
  GatewayARN,
  DiskId: length(1, 300).describe('shelfgate: "local:<size>", e.g. "local:100GiB" — a new volume of that size in the local store'),
  SnapshotId: SnapshotId.optional(),
  PreserveExistingData: z.boolean(),
  TargetName,
  NetworkInterfaceId,
  KMSEncrypted: z.boolean().optional(),
  KMSKey: KMSKey.optional(),
  Tags: Tags.optional(),
});

export const CreateCachediSCSIVolumeInput = z.object({
  GatewayARN,
  VolumeSizeInBytes: z.number().int('must be an integer').min(1, 'must be positive'),
  SnapshotId: SnapshotId.optional(),
  TargetName,
  SourceVolumeARN: VolumeARN.optional(),
  NetworkInterfaceId,
  ClientToken,
  KMSEncrypted: z.boolean().optional(),
  KMSKey: KMSKey.optional(),
  Tags: Tags.optional(),
});

export const UpdateChapCredentialsInput = z.object({
  TargetARN,
  SecretToAuthenticateInitiator: ChapSecret,
  InitiatorName,
  SecretToAuthenticateTarget: ChapSecret.optional(),
});

export const DeleteChapCredentialsInput = z.object({ TargetARN, InitiatorName });

export const UpdateBandwidthRateLimitInput = z.object({
  GatewayARN,
  AverageUploadRateLimitInBitsPerSec: UploadRate.optional(),
  AverageDownloadRateLimitInBitsPerSec: DownloadRate.optional(),
});

export const DeleteBandwidthRateLimitInput = z.object({ GatewayARN, BandwidthType: z.enum(['UPLOAD', 'DOWNLOAD', 'ALL']) });

const hour = z.number().int().min(0, 'must be 0 to 23').max(23, 'must be 0 to 23');
const minute = z.number().int().min(0, 'must be 0 to 59').max(59, 'must be 0 to 59');

const BandwidthRateLimitInterval = z
  .object({
    StartHourOfDay: hour,
    StartMinuteOfHour: minute,
    EndHourOfDay: hour,
    EndMinuteOfHour: minute,
    DaysOfWeek: z
      .array(z.number().int().min(0, 'must be 0 (Sunday) to 6').max(6, 'must be 0 (Sunday) to 6'))
      .min(1, 'must name at least one day')
      .max(7, 'must name at most 7 days'),
    AverageUploadRateLimitInBitsPerSec: UploadRate.optional(),
    AverageDownloadRateLimitInBitsPerSec: DownloadRate.optional(),
  })
  .superRefine((interval, ctx) => {
    if (interval.StartHourOfDay * 60 + interval.StartMinuteOfHour > interval.EndHourOfDay * 60 + interval.EndMinuteOfHour) {
      ctx.addIssue({ code: 'custom', path: ['EndHourOfDay'], message: 'the interval must end after it starts' });
    }
    if (new Set(interval.DaysOfWeek).size !== interval.DaysOfWeek.length) {
      ctx.addIssue({ code: 'custom', path: ['DaysOfWeek'], message: 'must not repeat a day' });
    }
  });

export const UpdateBandwidthRateLimitScheduleInput = z.object({
  GatewayARN,
  BandwidthRateLimitIntervals: z.array(BandwidthRateLimitInterval).max(20, 'at most 20 intervals'),
});
