// REST routes of the tape library: /v1/tapes, /v1/library, /v1/pools, /v1/archives (the virtual
// tape shelf) — the same services as the AWS tape operations. A gateway without a tape library answers 404 TAPE_LIBRARY_DISABLED.

import type { z } from 'zod';
import { shelvedTapes, type TapeAdmin } from '../../gateway/tape-admin.js';
import type { TapePool } from '../../gateway/tape-pools.js';
import type { TapeInfo } from '../../gateway/tape-service.js';
import type { TapeShelfRecord } from '../../store/tape-shelf-store.js';
import { changerTargetName, DRIVE_COUNT, driveTargetName } from '../../gateway/vtl-targets.js';
import type { AdminDeps } from '../admin-deps.js';
import type { GatewayArns } from '../aws/arn.js';
import { RestError, type RestRoute } from './routes.js';
import { ErrorBody } from './schemas.js';
import * as schema from './tape-schemas.js';

export function tapeRoutes(deps: AdminDeps, arns: GatewayArns): RestRoute[] {
  const tapes = (): TapeAdmin => {
    if (deps.tapes === undefined) throw new RestError(404, 'TAPE_LIBRARY_DISABLED', 'this gateway has no tape library (tapeLibrary.enabled is false)');
    return deps.tapes;
  };
  const progressOf = (barcode: string): { progressPercent?: number } => {
    const progress = deps.tapes?.archiver.progress(barcode);
    return progress !== undefined ? { progressPercent: progress } : {};
  };
  const lastErrorOf = (barcode: string): { lastError?: NonNullable<TapeShelfRecord['lastError']> } => {
    const lastError = deps.tapes?.shelf.get(barcode)?.lastError;
    return lastError !== undefined ? { lastError } : {};
  };
  const archiveBody = (record: TapeShelfRecord, tape: TapeInfo): z.output<typeof schema.TapeArchive> => ({
    barcode: record.barcode,
    tapeARN: arns.tape(record.barcode),
    status: tape.status,
    sizeBytes: record.sizeBytes,
    usedBytes: record.manifest?.dataBytes ?? tape.usedBytes,
    worm: record.worm,
    poolId: record.poolId,
    storageClass: record.storageClass,
    poolEntryDate: record.poolEntryDate,
    ...(record.retentionStartDate !== undefined ? { retentionStartDate: record.retentionStartDate } : {}),
    ...(record.archivedAt !== undefined ? { archivedAt: record.archivedAt } : {}),
    ...(record.retrievedAt !== undefined ? { retrievedAt: record.retrievedAt } : {}),
    ...progressOf(record.barcode),
  });
  const tapeBody = (tape: TapeInfo): z.output<typeof schema.Tape> => ({
    barcode: tape.barcode,
    tapeARN: arns.tape(tape.barcode),
    status: tape.status,
    sizeBytes: tape.sizeBytes,
    usedBytes: tape.usedBytes,
    worm: tape.worm,
    ...(tape.poolId !== undefined ? { poolId: tape.poolId } : {}),
    createdAt: tape.createdAt,
    ...(tape.element !== undefined ? { element: tape.element } : {}),
    ...progressOf(tape.barcode),
    ...lastErrorOf(tape.barcode),
  });
  const poolBody = (pool: TapePool): z.output<typeof schema.Pool> => ({
    poolId: pool.poolId,
    poolARN: arns.tapePool(pool.poolId),
    name: pool.poolName,
    storageClass: pool.storageClass,
    retentionLockType: pool.retentionLockType,
    retentionLockTimeInDays: pool.retentionLockTimeInDays,
    createdAt: pool.createdAt,
  });
  const checkPool = (library: TapeAdmin, poolId: string | undefined): void => {
    if (poolId === undefined) return;
    try {
      library.pools.checkPoolId(poolId);
    } catch (err) {
      throw new RestError(400, 'INVALID_PARAMETER', `poolId: ${(err as Error).message}`);
    }
  };
  const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody };
  return [
    {
      method: 'GET',
      url: '/v1/tapes',
      summary: 'Tapes in the library (deleted ones are not listed), by barcode',
      responses: { 200: schema.TapeList, ...errors },
      handler: async () => {
        const list = await tapes().service.listTapes();
        return { status: 200, body: { tapes: list.map(tapeBody) } };
      },
    },
    {
      method: 'POST',
      url: '/v1/tapes',
      summary: 'Create tapes: {prefix, count} with generated barcodes, or {barcode} for one; they appear in empty slots',
      body: schema.CreateTapesBody,
      responses: { 201: schema.TapeList, 409: ErrorBody, ...errors },
      handler: async ({ body }) => {
        const input = body as z.output<typeof schema.CreateTapesBody>;
        const library = tapes();
        checkPool(library, input.poolId);
        const common = {
          sizeBytes: input.sizeBytes,
          worm: input.worm,
          slotType: input.slotType,
          ...(input.poolId !== undefined ? { poolId: input.poolId } : {}),
        };
        const barcodes =
          'barcode' in input
            ? [await library.service.createTapeWithBarcode({ barcode: input.barcode, ...common })]
            : await library.service.createTapes({ prefix: input.prefix, count: input.count, ...common });
        const created = await library.service.listTapes(barcodes);
        return { status: 201, body: { tapes: created.map(tapeBody) } };
      },
    },
    {
      method: 'GET',
      url: '/v1/tapes/:barcode',
      summary: 'One tape',
      params: schema.TapeParams,
      responses: { 200: schema.Tape, ...errors },
      handler: async ({ params }) => {
        const tape = await tapes().service.describeTape((params as { barcode: string }).barcode);
        return { status: 200, body: tapeBody(tape) };
      },
    },
    {
      method: 'DELETE',
      url: '/v1/tapes/:barcode',
      summary: 'Delete an AVAILABLE tape that is not in a drive, with its data (the barcode is never reused)',
      params: schema.TapeParams,
      responses: { 204: null, 409: ErrorBody, ...errors },
      handler: async ({ params }) => {
        await tapes().service.deleteTape((params as { barcode: string }).barcode);
        return { status: 204 };
      },
    },
    {
      method: 'POST',
      url: '/v1/tapes/:barcode/retrieve',
      summary: 'RetrieveTapeArchive: an ARCHIVED tape becomes RETRIEVING, then RETRIEVED (read-only) in an empty storage slot',
      params: schema.TapeParams,
      responses: { 200: schema.Tape, 409: ErrorBody, ...errors },
      handler: async ({ params }) => {
        const { barcode } = params as { barcode: string };
        const library = tapes();
        await library.archiver.retrieveTapeArchive(barcode);
        return { status: 200, body: tapeBody(await library.service.describeTape(barcode)) };
      },
    },
    {
      method: 'POST',
      url: '/v1/tapes/:barcode/cancel-archival',
      summary: 'CancelArchival: an IN TRANSIT TO VTS tape returns to an empty storage slot (AVAILABLE)',
      params: schema.TapeParams,
      responses: { 200: schema.Tape, 409: ErrorBody, ...errors },
      handler: async ({ params }) => {
        const { barcode } = params as { barcode: string };
        const library = tapes();
        await library.archiver.cancelArchival(barcode);
        return { status: 200, body: tapeBody(await library.service.describeTape(barcode)) };
      },
    },
    {
      method: 'GET',
      url: '/v1/archives',
      summary: 'The virtual tape shelf: archived tapes and those retrieved from it, by barcode',
      responses: { 200: schema.TapeArchiveList, ...errors },
      handler: async () => {
        const archives = (await shelvedTapes(tapes())).map(({ record, tape }) => archiveBody(record, tape));
        return { status: 200, body: { archives } };
      },
    },
    {
      method: 'DELETE',
      url: '/v1/archives/:barcode',
      summary: 'DeleteTapeArchive: an ARCHIVED tape and its archive (refused under a retention lock)',
      params: schema.TapeParams,
      responses: { 204: null, 409: ErrorBody, ...errors },
      handler: async ({ params }) => {
        await tapes().archiver.deleteTapeArchive((params as { barcode: string }).barcode);
        return { status: 204 };
      },
    },
    {
      method: 'GET',
      url: '/v1/library',
      summary: 'The media changer: type, drives (with throughput) and every element with its cartridge',
      responses: { 200: schema.Library, ...errors },
      handler: async () => {
        const library = tapes();
        const elements = library.library.elements().filter((e) => e.type !== 'medium-transport');
        const byAddress = new Map(elements.map((e) => [e.address, e]));
        const pending = library.pendingChangerType();
        return {
          status: 200,
          body: {
            changerType: library.changerType,
            ...(pending !== undefined ? { pendingChangerType: pending } : {}),
            changerTarget: changerTargetName(deps.gatewayName),
            drives: Array.from({ length: DRIVE_COUNT }, (_, i) => {
              const address = library.library.driveAddress(i);
              const barcode = byAddress.get(address)?.barcode;
              const counters = library.driveCounters[i];
              return {
                index: i + 1,
                address,
                targetName: driveTargetName(deps.gatewayName, i + 1),
                ...(barcode !== undefined ? { barcode } : {}),
                readBytes: counters?.readBytes ?? 0,
                writeBytes: counters?.writeBytes ?? 0,
              };
            }),
            elements: elements.map((e) => ({
              address: e.address,
              type: e.type,
              full: e.full,
              ...(e.barcode !== undefined ? { barcode: e.barcode } : {}),
            })),
          },
        };
      },
    },
    {
      method: 'GET',
      url: '/v1/pools',
      summary: 'Custom tape pools (GLACIER and DEEP_ARCHIVE always exist and are not listed)',
      responses: { 200: schema.PoolList, ...errors },
      handler: async () => ({ status: 200, body: { pools: tapes().pools.list().map(poolBody) } }),
    },
    {
      method: 'POST',
      url: '/v1/pools',
      summary: 'Create a custom tape pool (storage class and retention lock)',
      body: schema.CreatePoolBody,
      responses: { 201: schema.Pool, 409: ErrorBody, ...errors },
      handler: async ({ body }) => {
        const input = body as z.output<typeof schema.CreatePoolBody>;
        const pool = await tapes().pools.create({
          poolName: input.name,
          storageClass: input.storageClass,
          retentionLockType: input.retentionLockType,
          retentionLockTimeInDays: input.retentionLockTimeInDays,
        });
        return { status: 201, body: poolBody(pool) };
      },
    },
    {
      method: 'DELETE',
      url: '/v1/pools/:poolId',
      summary: 'Delete a custom tape pool no tape belongs to',
      params: schema.PoolParams,
      responses: { 204: null, 409: ErrorBody, ...errors },
      handler: async ({ params }) => {
        await tapes().pools.delete((params as { poolId: string }).poolId);
        return { status: 204 };
      },
    },
  ];
}
