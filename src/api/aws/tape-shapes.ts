// zod input schemas of the tape operations, with AWS's documented limits (API reference, "Request
// Parameters"); field names are AWS's exactly.

import { z } from 'zod';
import { CHANGER_TYPES } from '../../config.js';
import { RETENTION_LOCK_TYPES, STORAGE_CLASSES } from '../../gateway/tape-pools.js';
import { GatewayARN, Limit, Marker } from './shapes.js';

const GIB = 1024 ** 3;
const length = (min: number, max: number) =>
  z.string().min(min, `must be at least ${min} characters`).max(max, `must be at most ${max} characters`);

export const TapeARN = length(50, 500).regex(/^arn:(aws(|-cn|-us-gov|-iso[A-Za-z0-9_-]*)):storagegateway:[a-z\-0-9]+:[0-9]+:tape\/[0-9A-Z]{5,16}$/, 'must be a tape ARN (…:tape/<barcode>)');
/** 100 GiB – 15 TiB, a whole number of GiB (AWS CreateTapes). */
const TapeSizeInBytes = z
  .number()
  .int('must be an integer')
  .min(100 * GIB, 'must be at least 100 GiB (107374182400)')
  .max(15 * 1024 * GIB, 'must be at most 15 TiB (16492674416640)')
  .refine((n) => n % GIB === 0, 'must be a whole number of GiB');
const ClientToken = length(5, 100);
const PoolId = length(1, 100);
const Tags = z.array(z.object({ Key: length(1, 128), Value: z.string().max(256, 'must be at most 256 characters') })).max(50, 'at most 50 tags');
const KMSKey = length(7, 2048);
const PoolARN = length(50, 500);
const VTLDeviceARN = length(50, 500);

export const CreateTapesInput = z.object({
  GatewayARN,
  TapeSizeInBytes,
  ClientToken,
  NumTapesToCreate: z.number().int('must be an integer').min(1, 'must be 1 to 10').max(10, 'must be 1 to 10'),
  TapeBarcodePrefix: length(1, 4).regex(/^[A-Z]*$/, 'must be 1 to 4 upper-case letters A-Z'),
  KMSEncrypted: z.boolean().optional(),
  KMSKey: KMSKey.optional(),
  PoolId: PoolId.optional(),
  Worm: z.boolean().optional(),
  Tags: Tags.optional(),
});

export const CreateTapeWithBarcodeInput = z.object({
  GatewayARN,
  TapeSizeInBytes,
  TapeBarcode: length(5, 16).regex(/^[A-Z0-9]*$/, 'must be 5 to 16 characters A-Z, 0-9'),
  KMSEncrypted: z.boolean().optional(),
  KMSKey: KMSKey.optional(),
  PoolId: PoolId.optional(),
  Worm: z.boolean().optional(),
  Tags: Tags.optional(),
});

export const DescribeTapesInput = z.object({
  GatewayARN,
  TapeARNs: z.array(TapeARN).optional(),
  Marker: Marker.optional(),
  Limit: Limit.optional(),
});

export const ListTapesInput = z.object({ TapeARNs: z.array(TapeARN).optional(), Marker: Marker.optional(), Limit: Limit.optional() });

export const DeleteTapeInput = z.object({ GatewayARN, TapeARN, BypassGovernanceRetention: z.boolean().optional() });

export const DescribeVTLDevicesInput = z.object({
  GatewayARN,
  VTLDeviceARNs: z.array(VTLDeviceARN).optional(),
  Marker: Marker.optional(),
  Limit: Limit.optional(),
});

export const UpdateVTLDeviceTypeInput = z.object({
  VTLDeviceARN,
  DeviceType: z.enum(CHANGER_TYPES, { error: `must be one of ${CHANGER_TYPES.join(', ')}` }),
});

export const ListTapePoolsInput = z.object({ PoolARNs: z.array(PoolARN).optional(), Marker: Marker.optional(), Limit: Limit.optional() });

export const CreateTapePoolInput = z.object({
  PoolName: length(1, 100),
  StorageClass: z.enum(STORAGE_CLASSES, { error: `must be ${STORAGE_CLASSES.join(' or ')}` }),
  RetentionLockType: z.enum(RETENTION_LOCK_TYPES, { error: `must be ${RETENTION_LOCK_TYPES.join(', ')}` }).optional(),
  RetentionLockTimeInDays: z.number().int('must be an integer').min(0, 'must be 0 to 36500').max(36500, 'must be 0 to 36500').optional(),
  Tags: Tags.optional(),
});

export const DeleteTapePoolInput = z.object({ PoolARN });

export const DescribeTapeArchivesInput = z.object({ TapeARNs: z.array(TapeARN).optional(), Marker: Marker.optional(), Limit: Limit.optional() });

export const RetrieveTapeArchiveInput = z.object({ TapeARN, GatewayARN });

export const CancelArchivalInput = z.object({ GatewayARN, TapeARN });

export const CancelRetrievalInput = z.object({ GatewayARN, TapeARN });

export const DeleteTapeArchiveInput = z.object({ TapeARN, BypassGovernanceRetention: z.boolean().optional() });

export const AssignTapePoolInput = z.object({ TapeARN, PoolId, BypassGovernanceRetention: z.boolean().optional() });
