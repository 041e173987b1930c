// REST routes of volume snapshots (/v1/snapshots): list, create (from a volume, by name), show one
// (status and progress, for `shelfgate snapshots create --wait`), delete.

import { z } from 'zod';
import type { SnapshotRecord } from '../../store/snapshot-catalog.js';
import type { AdminDeps } from '../admin-deps.js';
import type { RestRoute } from './routes.js';
import { RestError } from './routes.js';
import { ErrorBody, VolumeName } from './schemas.js';

export const SnapshotBody = z.object({
  snapshotId: z.string(),
  volumeName: z.string(),
  description: z.string(),
  status: z.enum(['pending', 'completed', 'error']),
  progress: z.number().int().describe('percent, 0-100'),
  startTime: z.string().describe('the point in time the snapshot holds'),
  volumeSizeBytes: z.number().int(),
  chunkCount: z.number().int().describe('1 MiB chunks holding data'),
  uploadedChunks: z.number().int().describe('chunk objects this snapshot uploaded (the rest were shared)'),
  error: z.string().optional(),
});

export const SnapshotList = z.object({ snapshots: z.array(SnapshotBody) });

export const CreateSnapshotBody = z.strictObject({
  volume: VolumeName,
  description: z.string().min(1, 'must be 1 to 255 characters').max(255, 'must be 1 to 255 characters'),
});

export const SnapshotParams = z.strictObject({ snapshotId: z.string().regex(/^snap-([0-9a-f]{8}|[0-9a-f]{17})$/, 'must be snap- and 8 or 17 hex digits') });

export function snapshotBody(r: SnapshotRecord): z.output<typeof SnapshotBody> {
  return {
    snapshotId: r.snapId,
    volumeName: r.volumeName,
    description: r.description,
    status: r.status,
    progress: r.progress,
    startTime: r.startTime,
    volumeSizeBytes: r.volumeSizeBytes,
    chunkCount: r.chunkCount,
    uploadedChunks: r.uploadedChunks,
    ...(r.error !== undefined ? { error: r.error } : {}),
  };
}

export function snapshotRoutes(deps: AdminDeps): RestRoute[] {
  const service = () => {
    if (deps.snapshots === undefined) throw new RestError(501, 'NOT_SUPPORTED', 'snapshots need the storage engine');
    return deps.snapshots.service;
  };
  const errors = { 400: ErrorBody, 401: ErrorBody };
  return [
    {
      method: 'GET',
      url: '/v1/snapshots',
      summary: 'All snapshots, oldest first',
      responses: { 200: SnapshotList, ...errors },
      handler: async () => ({ status: 200, body: { snapshots: service().list().map(snapshotBody) } }),
    },
    {
      method: 'POST',
      url: '/v1/snapshots',
      summary: 'Snapshot a volume now (point in time); it uploads in the background (status pending)',
      body: CreateSnapshotBody,
      responses: { 201: SnapshotBody, 404: ErrorBody, ...errors },
      handler: async ({ body }) => {
        const input = body as z.output<typeof CreateSnapshotBody>;
        const volume = deps.volumes.get(input.volume);
        return { status: 201, body: snapshotBody(await service().create(volume.id, input.description)) };
      },
    },
    {
      method: 'GET',
      url: '/v1/snapshots/:snapshotId',
      summary: 'One snapshot, of this gateway or any other on the bucket: status and progress',
      params: SnapshotParams,
      responses: { 200: SnapshotBody, 404: ErrorBody, ...errors },
      handler: async ({ params }) => ({ status: 200, body: snapshotBody(await service().describe((params as { snapshotId: string }).snapshotId)) }),
    },
    {
      method: 'DELETE',
      url: '/v1/snapshots/:snapshotId',
      summary: 'Delete a snapshot (its manifest; chunk objects other snapshots share stay)',
      params: SnapshotParams,
      responses: { 204: null, 404: ErrorBody, 409: ErrorBody, ...errors },
      handler: async ({ params }) => {
        await service().delete((params as { snapshotId: string }).snapshotId);
        return { status: 204 };
      },
    },
  ];
}
