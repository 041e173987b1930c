// zod schemas of the REST tape API (/v1/tapes, /v1/library, /v1/pools): request validation and,
// through the route table, the OpenAPI document.

import { z } from 'zod';
import { CHANGER_TYPES } from '../../config.js';
import { MAX_TAPE_SIZE_BYTES, MIN_TAPE_SIZE_BYTES } from '../../gateway/tape-catalog.js';
import { RETENTION_LOCK_TYPES, STORAGE_CLASSES } from '../../gateway/tape-pools.js';
import { TapeStatus } from '../../gateway/tape-status.js';

const GIB = 1024 ** 3;

const TapeSizeBytes = z
  .number()
  .int('must be an integer')
  .min(MIN_TAPE_SIZE_BYTES, 'must be at least 100 GiB (107374182400)')
  .max(MAX_TAPE_SIZE_BYTES, 'must be at most 15 TiB (16492674416640)')
  .refine((n) => n % GIB === 0, 'must be a whole number of GiB')
  .default(100 * GIB)
  .describe('whole GiB, 100 GiB to 15 TiB (default 100 GiB)');

export const Barcode = z.string().regex(/^[A-Z0-9]{5,16}$/, 'must be 5 to 16 characters A-Z, 0-9');
const PoolId = z.string().min(1, 'must not be empty').max(100, 'must be at most 100 characters').describe('GLACIER, DEEP_ARCHIVE or a custom pool id');
const SlotType = z.enum(['storage', 'import-export']).default('storage').describe('where the new cartridges appear');

const CreateTapesByPrefix = z.strictObject({
  prefix: z.string().regex(/^[A-Z]{1,4}$/, 'must be 1 to 4 letters A-Z').describe('barcodes are the prefix + random hex digits'),
  count: z.number().int('must be an integer').min(1, 'must be 1 to 10').max(10, 'must be 1 to 10'),
  sizeBytes: TapeSizeBytes,
  worm: z.boolean().default(false),
  poolId: PoolId.optional(),
  slotType: SlotType,
});

const CreateTapeWithBarcode = z.strictObject({
  barcode: Barcode,
  sizeBytes: TapeSizeBytes,
  worm: z.boolean().default(false),
  poolId: PoolId.optional(),
  slotType: SlotType,
});

export const CreateTapesBody = z.union([CreateTapesByPrefix, CreateTapeWithBarcode]);

export const TapeParams = z.strictObject({ barcode: Barcode });

const ElementType = z.enum(['medium-transport', 'storage', 'import-export', 'data-transfer']);

export const Tape = z.object({
  barcode: z.string(),
  tapeARN: z.string(),
  status: z.enum(Object.values(TapeStatus) as [string, ...string[]]),
  sizeBytes: z.number().int(),
  usedBytes: z.number().int(),
  worm: z.boolean(),
  poolId: z.string().optional(),
  createdAt: z.string(),
  element: z.object({ type: ElementType, address: z.number().int() }).optional().describe('the element holding the tape in the library'),
  progressPercent: z.number().optional().describe('while ARCHIVING or RETRIEVING'),
  lastError: z
    .object({ phase: z.enum(['archive', 'retrieve']), code: z.string(), message: z.string(), at: z.string() })
    .optional()
    .describe('why the last archive or retrieval ended without succeeding (a permanent cloud error); cleared by the next success'),
});

export const TapeList = z.object({ tapes: z.array(Tape) });

export const Library = z.object({
  changerType: z.enum(CHANGER_TYPES),
  pendingChangerType: z.enum(CHANGER_TYPES).optional().describe('set through UpdateVTLDeviceType; serves after the next start'),
  changerTarget: z.string(),
  drives: z.array(
    z.object({
      index: z.number().int().describe('1-based, as the tapedrive-NN target'),
      address: z.number().int(),
      targetName: z.string(),
      barcode: z.string().optional(),
      readBytes: z.number().int(),
      writeBytes: z.number().int(),
    }),
  ),
  elements: z.array(
    z.object({
      address: z.number().int(),
      type: ElementType,
      full: z.boolean(),
      barcode: z.string().optional(),
    }),
  ),
});

export const CreatePoolBody = z.strictObject({
  name: z.string().min(1, 'must not be empty').max(100, 'must be at most 100 characters'),
  storageClass: z.enum(STORAGE_CLASSES),
  retentionLockType: z.enum(RETENTION_LOCK_TYPES).default('NONE'),
  retentionLockTimeInDays: z.number().int('must be an integer').min(0, 'must be 0 to 36500').max(36500, 'must be 0 to 36500').default(0),
});

export const PoolParams = z.strictObject({ poolId: z.string().regex(/^pool-[0-9A-F]{8}$/, 'must be pool- and 8 hex digits') });

export const Pool = z.object({
  poolId: z.string(),
  poolARN: z.string(),
  name: z.string(),
  storageClass: z.enum(STORAGE_CLASSES),
  retentionLockType: z.enum(RETENTION_LOCK_TYPES),
  retentionLockTimeInDays: z.number().int(),
  createdAt: z.string(),
});

export const PoolList = z.object({ pools: z.array(Pool) });

/** A tape in the virtual tape shelf (AWS TapeArchive). */
export const TapeArchive = z.object({
  barcode: z.string(),
  tapeARN: z.string(),
  status: z.enum(Object.values(TapeStatus) as [string, ...string[]]),
  sizeBytes: z.number().int(),
  usedBytes: z.number().int(),
  worm: z.boolean(),
  poolId: z.string(),
  storageClass: z.enum(STORAGE_CLASSES),
  poolEntryDate: z.string(),
  retentionStartDate: z.string().optional(),
  archivedAt: z.string().optional().describe('CompletionTime of the archive'),
  retrievedAt: z.string().optional(),
  progressPercent: z.number().optional().describe('while RETRIEVING'),
});

export const TapeArchiveList = z.object({ archives: z.array(TapeArchive) });
