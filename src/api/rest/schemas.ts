// zod schemas of the REST API (/v1/*): request validation and, through z.toJSONSchema, the
// OpenAPI document — one definition for both.

import { z } from 'zod';

export const VolumeName = z
  .string()
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters')
  .regex(/^[-.a-z0-9]+$/, 'must contain only lower-case letters, digits, "-" and "."');

export const CreateVolumeBody = z.strictObject({
  name: VolumeName.describe('becomes the target iqn.2026-11.dev.shelfgate:<gateway>-<name>'),
  type: z.enum(['stored', 'cached']).default('stored'),
  size: z
    .union([z.string(), z.number().int()])
    .describe('"100GiB", "2TiB" or bytes; whole GiB, 1GiB-16TiB stored, 1GiB-32TiB cached'),
  snapshotId: z
    .string()
    .regex(/^snap-([0-9a-f]{8}|[0-9a-f]{17})$/, 'must be snap- and 8 or 17 hex digits')
    .optional()
    .describe('a completed snapshot to restore: the volume reads its content at once, fetching chunks on first use'),
});

export const VolumeParams = z.strictObject({ name: VolumeName });

export const Volume = z.object({
  name: z.string(),
  volumeId: z.string().describe('AWS-style volume id, also the VPD unit serial number'),
  type: z.enum(['stored', 'cached']),
  sizeBytes: z.number().int(),
  targetName: z.string(),
  createdAt: z.string(),
  origin: z.enum(['config', 'api']).describe('config volumes are managed in the configuration file'),
  chapEnabled: z.boolean(),
  writeCache: z
    .boolean()
    .describe('SBC-3 caching mode page WCE: true acknowledges writes once the OS has them (SYNCHRONIZE CACHE and FUA flush); false writes through'),
});

export const VolumeList = z.object({ volumes: z.array(Volume) });

export const Session = z.object({
  initiatorName: z.string(),
  targetName: z.string(),
  isid: z.string(),
  tsih: z.number().int(),
  connections: z.number().int(),
});

export const SessionList = z.object({ sessions: z.array(Session) });

export const Gateway = z.object({
  gatewayId: z.string(),
  gatewayARN: z.string(),
  name: z.string(),
  region: z.string(),
  softwareVersion: z.string(),
  iscsi: z.object({
    host: z.string(),
    port: z.number().int(),
    advertise: z
      .array(z.object({ host: z.string(), port: z.number().int() }))
      .describe('the TargetAddress values discovery gives out (iscsi.advertise); empty: the address each initiator connected to'),
  }),
  volumeCount: z.number().int(),
  sessionCount: z.number().int(),
});

export const ErrorBody = z.object({
  error: z.object({ code: z.string(), message: z.string().describe('names the field at fault, e.g. "size: must be …"') }),
});

export const Health = z.object({
  status: z.enum(['ok', 'degraded']),
  conditions: z
    .array(z.object({ component: z.string(), kind: z.string(), reason: z.string(), since: z.string() }))
    .describe('disk-full and I/O-error conditions of the stores while they hold'),
});
