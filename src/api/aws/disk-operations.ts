// The local-storage operations of the Storage Gateway API (ListLocalDisks, AddCache,
// AddUploadBuffer, DescribeCache, DescribeUploadBuffer) as entries of the operation table, on the
// gateway's LocalDisks (src/gateway/local-disks.ts) and the storage engine's counters. shelfgate's
// disks are allocations of its data directory: a new one is named "local:<size>" (as
// CreateStorediSCSIVolume's DiskId), allocated ones "cache-N" / "upload-buffer-N".

import { z } from 'zod';
import type { LocalDisk, LocalDiskAllocation } from '../../gateway/local-disks.js';
import type { StorageService } from '../../gateway/storage-service.js';
import type { ServedVolumeView } from '../../gateway/volume-registry.js';
import type { AdminDeps } from '../admin-deps.js';
import type { GatewayArns } from './arn.js';
import { invalidGatewayRequest } from './aws-error.js';
import { operation, type AwsOperation } from './router.js';
import { GatewayARN, GatewayInput } from './shapes.js';

const AddDisksInput = z.object({
  GatewayARN,
  DiskIds: z.array(z.string().min(1, 'must be 1 to 300 characters').max(300, 'must be 1 to 300 characters')).min(1, 'must name at least one disk'),
});

/** AWS DiskAllocationType values. */
const ALLOCATION_TYPE: Record<LocalDiskAllocation, string> = { cache: 'CACHE STORAGE', uploadBuffer: 'UPLOAD BUFFER' };

export interface DiskOperationContext {
  deps: AdminDeps;
  arns: GatewayArns;
  checkGateway(gatewayArn: string): void;
}

function storageOf(deps: AdminDeps): Pick<StorageService, 'counters' | 'disks'> {
  if (deps.storage === undefined) throw invalidGatewayRequest('NotSupported', 'local disks need the storage engine');
  return deps.storage;
}

/** Without a storage engine (admin API tests on a bare volume registry) there is no cache and no
 *  upload buffer: no disks, zero bytes. */
const NO_STORAGE_COUNTERS = { cacheSizeBytes: 0, cacheUsedBytes: 0, cacheHitPercent: 0, uploadBufferUsedBytes: 0, uploadBufferSizeBytes: 0 };

export function diskOperations(ctx: DiskOperationContext): Record<string, AwsOperation> {
  const { deps, arns } = ctx;
  const diskInfo = (disk: LocalDisk) => ({
    DiskId: disk.diskId,
    DiskPath: `shelfgate:${disk.diskId}`,
    DiskNode: disk.diskId,
    DiskStatus: 'present',
    DiskSizeInBytes: disk.sizeBytes,
    DiskAllocationType: ALLOCATION_TYPE[disk.allocation],
  });
  // A stored volume's data lives in the same data directory: one disk per volume.
  const storedVolumeDisk = (volume: ServedVolumeView) => ({
    DiskId: `volume-${volume.serial}`,
    DiskPath: `shelfgate:volume-${volume.serial}`,
    DiskNode: `volume-${volume.serial}`,
    DiskStatus: 'present',
    DiskSizeInBytes: volume.sizeBytes,
    DiskAllocationType: 'STORED iSCSI VOLUME',
    DiskAllocationResource: arns.target(volume.targetName),
  });
  const addDisks = (allocation: LocalDiskAllocation) =>
    operation(AddDisksInput, async (input) => {
      ctx.checkGateway(input.GatewayARN);
      await storageOf(deps).disks.add(allocation, input.DiskIds);
      return { GatewayARN: arns.gateway };
    });

  return {
    ListLocalDisks: operation(GatewayInput, async (input) => {
      ctx.checkGateway(input.GatewayARN);
      return {
        GatewayARN: arns.gateway,
        Disks: [
          ...(deps.storage?.disks.disks().map(diskInfo) ?? []),
          ...deps.volumes
            .list()
            .filter((v) => v.type === 'stored')
            .map(storedVolumeDisk),
        ],
      };
    }),

    AddCache: addDisks('cache'),
    AddUploadBuffer: addDisks('uploadBuffer'),

    DescribeCache: operation(GatewayInput, async (input) => {
      ctx.checkGateway(input.GatewayARN);
      const counters = deps.storage?.counters() ?? NO_STORAGE_COUNTERS;
      const percentOfCache = (bytes: number) => (counters.cacheSizeBytes === 0 ? 0 : Math.min(100, (100 * bytes) / counters.cacheSizeBytes));
      return {
        GatewayARN: arns.gateway,
        DiskIds: deps.storage?.disks.disks('cache').map((d) => d.diskId) ?? [],
        CacheAllocatedInBytes: counters.cacheSizeBytes,
        CacheUsedPercentage: percentOfCache(counters.cacheUsedBytes),
        // Dirty = written, not yet uploaded: the upload queue, which also holds stored volumes'
        // dirty chunks (one queue per gateway).
        CacheDirtyPercentage: percentOfCache(counters.uploadBufferUsedBytes),
        CacheHitPercentage: counters.cacheHitPercent,
        CacheMissPercentage: deps.storage === undefined ? 0 : 100 - counters.cacheHitPercent,
      };
    }),

    DescribeUploadBuffer: operation(GatewayInput, async (input) => {
      ctx.checkGateway(input.GatewayARN);
      const counters = deps.storage?.counters() ?? NO_STORAGE_COUNTERS;
      return {
        GatewayARN: arns.gateway,
        DiskIds: deps.storage?.disks.disks('uploadBuffer').map((d) => d.diskId) ?? [],
        UploadBufferUsedInBytes: counters.uploadBufferUsedBytes,
        UploadBufferAllocatedInBytes: counters.uploadBufferSizeBytes,
      };
    }),
  };
}
