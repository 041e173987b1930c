// The tape gateway operations (CreateTapes … DeleteTapePool) as entries of the operation table, on
// the tape library's services. Field names and shapes follow the AWS API reference exactly.

import { createHash } from 'node:crypto';
import { shelvedTapes, type TapeAdmin } from '../../gateway/tape-admin.js';
import type { TapePool } from '../../gateway/tape-pools.js';
import type { TapeInfo } from '../../gateway/tape-service.js';
import { TapeStatus } from '../../gateway/tape-status.js';
import type { TapeShelfRecord } from '../../store/tape-shelf-store.js';
import { CHANGER_PERSONALITIES, changerTargetName, DRIVE_COUNT, driveTargetName } from '../../gateway/vtl-targets.js';
import { ibmUlt3580Td5 } from '../../../iscsi/scsi/personalities/ibm-ult3580-td5.js';
import type { AdminDeps } from '../admin-deps.js';
import type { GatewayArns } from './arn.js';
import { invalidGatewayRequest } from './aws-error.js';
import { checkKmsEncrypted } from './kms-encrypted.js';
import { paginate } from './pagination.js';
import { operation, type AwsOperation } from './router.js';
import * as shape from './tape-shapes.js';

interface TapeOperationContext {
  deps: AdminDeps;
  arns: GatewayArns;
  checkGateway(gatewayArn: string): void;
  /** NetworkInterfaceId / NetworkInterfacePort initiators reach the portal at. */
  initiatorPortal(): { host: string; port: number };
}

const MAX_REMEMBERED_CLIENT_TOKENS = 1000;

/** Where CreateTapes keeps ClientTokens: same token and same request -> the same tapes. */
interface CreateTapesAttempt {
  fingerprint: string;
  result: Promise<string[]>;
}

export function tapeOperations(ctx: TapeOperationContext): Record<string, AwsOperation> {
  const { deps, arns } = ctx;
  const library = (): TapeAdmin => {
    if (deps.tapes === undefined) {
      throw invalidGatewayRequest('NotSupported', 'this gateway has no tape library (tapeLibrary.enabled is false)');
    }
    return deps.tapes;
  };
  const barcodeOf = (tapeArn: string, field = 'TapeARN'): string => {
    const barcode = arns.tapeBarcodeOf(tapeArn);
    if (barcode === undefined) throw invalidGatewayRequest('TapeCartridgeNotFound', `${field}: no tape ${tapeArn} in this account and region`, { field });
    return barcode;
  };
  const drivesByAddress = (tapes: TapeAdmin): Map<number, number> => {
    const out = new Map<number, number>();
    for (let i = 0; i < DRIVE_COUNT; i++) out.set(tapes.library.driveAddress(i), i + 1);
    return out;
  };
  const tapeShape = (tapes: TapeAdmin, tape: TapeInfo) => {
    const drive = tape.element?.type === 'data-transfer' ? drivesByAddress(tapes).get(tape.element.address) : undefined;
    return {
      TapeARN: arns.tape(tape.barcode),
      TapeBarcode: tape.barcode,
      TapeCreatedDate: Date.parse(tape.createdAt) / 1000,
      TapeSizeInBytes: tape.sizeBytes,
      TapeStatus: tape.status,
      ...(drive !== undefined ? { VTLDevice: arns.vtlDevice('TAPEDRIVE', drive) } : {}),
      ...progressOf(tapes, tape.barcode),
      TapeUsedInBytes: tape.usedBytes,
      ...(tape.poolId !== undefined ? { PoolId: tape.poolId } : {}),
      Worm: tape.worm,
    };
  };
  /** AWS: Progress (percent) while ARCHIVING or RETRIEVING. */
  const progressOf = (tapes: TapeAdmin, barcode: string): { Progress?: number } => {
    const progress = tapes.archiver.progress(barcode);
    return progress !== undefined ? { Progress: progress } : {};
  };
  const archiveShape = (record: TapeShelfRecord, tape: TapeInfo) => {
    const seconds = (iso: string | undefined) => (iso !== undefined ? { value: Date.parse(iso) / 1000 } : undefined);
    const completion = seconds(record.archivedAt);
    const retention = seconds(record.retentionStartDate);
    const inLibrary = tape.status === TapeStatus.RETRIEVING || tape.status === TapeStatus.RETRIEVED;
    return {
      TapeARN: arns.tape(record.barcode),
      TapeBarcode: record.barcode,
      TapeCreatedDate: Date.parse(tape.createdAt) / 1000,
      TapeSizeInBytes: record.sizeBytes,
      ...(completion !== undefined ? { CompletionTime: completion.value } : {}),
      ...(inLibrary ? { RetrievedTo: arns.gateway } : {}),
      TapeStatus: tape.status,
      TapeUsedInBytes: record.manifest?.dataBytes ?? tape.usedBytes,
      PoolId: record.poolId,
      Worm: record.worm,
      ...(retention !== undefined ? { RetentionStartDate: retention.value } : {}),
      PoolEntryDate: Date.parse(record.poolEntryDate) / 1000,
    };
  };
  const tapeInfoShape = (tape: TapeInfo) => ({
    TapeARN: arns.tape(tape.barcode),
    TapeBarcode: tape.barcode,
    TapeSizeInBytes: tape.sizeBytes,
    TapeStatus: tape.status,
    GatewayARN: arns.gateway,
    ...(tape.poolId !== undefined ? { PoolId: tape.poolId } : {}),
  });
  const poolShape = (pool: TapePool) => ({
    PoolARN: arns.tapePool(pool.poolId),
    PoolName: pool.poolName,
    StorageClass: pool.storageClass,
    RetentionLockType: pool.retentionLockType,
    RetentionLockTimeInDays: pool.retentionLockTimeInDays,
    PoolStatus: 'ACTIVE',
  });
  /** Tapes in the library (deleted ones are gone), optionally only those named. */
  const listed = async (tapes: TapeAdmin, tapeArns: string[] | undefined): Promise<TapeInfo[]> => {
    const all = (await tapes.service.listTapes()).filter((t) => t.status !== 'DELETED');
    if (tapeArns === undefined) return all;
    const wanted = new Set(tapeArns.map((arn) => arns.tapeBarcodeOf(arn)));
    return all.filter((t) => wanted.has(t.barcode));
  };
  const checkOptions = (input: { KMSEncrypted?: boolean | undefined; KMSKey?: string | undefined; PoolId?: string | undefined }, tapes: TapeAdmin) => {
    checkKmsEncrypted(input, deps.encryption);
    if (input.PoolId !== undefined) {
      try {
        tapes.pools.checkPoolId(input.PoolId);
      } catch (err) {
        throw invalidGatewayRequest('InvalidParameters', `PoolId: ${(err as Error).message}`, { field: 'PoolId' });
      }
    }
  };
  const clientTokens = new Map<string, CreateTapesAttempt>();

  return {
    CreateTapes: operation(shape.CreateTapesInput, async (input) => {
      ctx.checkGateway(input.GatewayARN);
      const tapes = library();
      checkOptions(input, tapes);
      // AWS: a ClientToken makes CreateTapes idempotent — a retry with the same token and the same
      // parameters answers the same tapes; the same token with other parameters is refused.
      const { ClientToken: token, Tags: _tags, ...request } = input;
      const fingerprint = createHash('sha256').update(JSON.stringify(request)).digest('hex');
      let attempt = clientTokens.get(token);
      if (attempt !== undefined && attempt.fingerprint !== fingerprint) {
        throw invalidGatewayRequest('InvalidParameters', 'ClientToken: already used for a CreateTapes request with other parameters', {
          field: 'ClientToken',
        });
      }
      if (attempt === undefined) {
        const result = tapes.service.createTapes({
          prefix: input.TapeBarcodePrefix,
          count: input.NumTapesToCreate,
          sizeBytes: input.TapeSizeInBytes,
          ...(input.Worm !== undefined ? { worm: input.Worm } : {}),
          ...(input.PoolId !== undefined ? { poolId: input.PoolId } : {}),
        });
        attempt = { fingerprint, result };
        clientTokens.set(token, attempt);
        // Remember the most recent tokens only (a retry comes soon after the first attempt).
        if (clientTokens.size > MAX_REMEMBERED_CLIENT_TOKENS) clientTokens.delete(clientTokens.keys().next().value!);
        // A failed attempt does not hold the token: the caller may retry it.
        result.catch(() => clientTokens.delete(token));
      }
      return { TapeARNs: (await attempt.result).map((barcode) => arns.tape(barcode)) };
    }),

    CreateTapeWithBarcode: operation(shape.CreateTapeWithBarcodeInput, async (input) => {
      ctx.checkGateway(input.GatewayARN);
      const tapes = library();
      checkOptions(input, tapes);
      const barcode = await tapes.service.createTapeWithBarcode({
        barcode: input.TapeBarcode,
        sizeBytes: input.TapeSizeInBytes,
        ...(input.Worm !== undefined ? { worm: input.Worm } : {}),
        ...(input.PoolId !== undefined ? { poolId: input.PoolId } : {}),
      });
      return { TapeARN: arns.tape(barcode) };
    }),

    DescribeTapes: operation(shape.DescribeTapesInput, async (input) => {
      ctx.checkGateway(input.GatewayARN);
      const tapes = library();
      const described = (await listed(tapes, input.TapeARNs)).map((t) => tapeShape(tapes, t));
      const { page, marker } = paginate(described, (t) => t.TapeARN, input);
      return { Tapes: page, ...(marker !== undefined ? { Marker: marker } : {}) };
    }),

    ListTapes: operation(shape.ListTapesInput, async (input) => {
      const tapes = library();
      const infos = (await listed(tapes, input.TapeARNs)).map(tapeInfoShape);
      const { page, marker } = paginate(infos, (t) => t.TapeARN, input);
      return { TapeInfos: page, ...(marker !== undefined ? { Marker: marker } : {}) };
    }),

    DeleteTape: operation(shape.DeleteTapeInput, async (input) => {
      ctx.checkGateway(input.GatewayARN);
      const tapes = library();
      const barcode = barcodeOf(input.TapeARN);
      const tape = await tapes.service.describeTape(barcode);
      if (tape.status === 'DELETED') throw invalidGatewayRequest('TapeCartridgeNotFound', `TapeARN: tape ${barcode} was deleted`, { field: 'TapeARN' });
      // Retention locks apply to archived tapes (issue 4); a tape in the library has none yet, so
      // BypassGovernanceRetention changes nothing here.
      await tapes.service.deleteTape(barcode);
      return { TapeARN: input.TapeARN };
    }),

    DescribeTapeArchives: operation(shape.DescribeTapeArchivesInput, async (input) => {
      const tapes = library();
      const wanted = input.TapeARNs === undefined ? undefined : new Set(input.TapeARNs.map((arn) => arns.tapeBarcodeOf(arn)));
      const archives = (await shelvedTapes(tapes))
        .filter(({ record }) => wanted === undefined || wanted.has(record.barcode))
        .map(({ record, tape }) => archiveShape(record, tape));
      const { page, marker } = paginate(archives, (a) => a.TapeARN, input);
      return { TapeArchives: page, ...(marker !== undefined ? { Marker: marker } : {}) };
    }),

    RetrieveTapeArchive: operation(shape.RetrieveTapeArchiveInput, async (input) => {
      ctx.checkGateway(input.GatewayARN);
      await library().archiver.retrieveTapeArchive(barcodeOf(input.TapeARN));
      return { TapeARN: input.TapeARN };
    }),

    CancelArchival: operation(shape.CancelArchivalInput, async (input) => {
      ctx.checkGateway(input.GatewayARN);
      await library().archiver.cancelArchival(barcodeOf(input.TapeARN));
      return { TapeARN: input.TapeARN };
    }),

    CancelRetrieval: operation(shape.CancelRetrievalInput, async (input) => {
      ctx.checkGateway(input.GatewayARN);
      await library().archiver.cancelRetrieval(barcodeOf(input.TapeARN));
      return { TapeARN: input.TapeARN };
    }),

    DeleteTapeArchive: operation(shape.DeleteTapeArchiveInput, async (input) => {
      const tapes = library();
      const barcode = barcodeOf(input.TapeARN);
      await tapes.archiver.deleteTapeArchive(barcode, { bypassGovernanceRetention: input.BypassGovernanceRetention === true });
      return { TapeARN: input.TapeARN };
    }),

    AssignTapePool: operation(shape.AssignTapePoolInput, async (input) => {
      const tapes = library();
      const barcode = barcodeOf(input.TapeARN);
      checkOptions({ PoolId: input.PoolId }, tapes);
      await tapes.archiver.assignTapePool(barcode, input.PoolId, { bypassGovernanceRetention: input.BypassGovernanceRetention === true });
      return { TapeARN: input.TapeARN };
    }),

    DescribeVTLDevices: operation(shape.DescribeVTLDevicesInput, async (input) => {
      ctx.checkGateway(input.GatewayARN);
      const tapes = library();
      const portal = ctx.initiatorPortal();
      const attributes = (targetName: string) => ({
        TargetARN: arns.target(targetName),
        NetworkInterfaceId: portal.host,
        NetworkInterfacePort: portal.port,
        ChapEnabled: false,
      });
      const changer = CHANGER_PERSONALITIES[tapes.changerType].identity;
      const devices = [
        {
          VTLDeviceARN: arns.vtlDevice('MEDIACHANGER', 1),
          VTLDeviceType: 'Medium Changer',
          VTLDeviceVendor: changer.vendor,
          VTLDeviceProductIdentifier: changer.product,
          DeviceiSCSIAttributes: attributes(changerTargetName(deps.gatewayName)),
        },
        ...Array.from({ length: DRIVE_COUNT }, (_, i) => ({
          VTLDeviceARN: arns.vtlDevice('TAPEDRIVE', i + 1),
          VTLDeviceType: 'Tape Drive',
          VTLDeviceVendor: ibmUlt3580Td5.identity.vendor,
          VTLDeviceProductIdentifier: ibmUlt3580Td5.identity.product,
          DeviceiSCSIAttributes: attributes(driveTargetName(deps.gatewayName, i + 1)),
        })),
      ];
      const wanted = input.VTLDeviceARNs === undefined ? undefined : new Set(input.VTLDeviceARNs);
      const { page, marker } = paginate(
        devices.filter((d) => wanted === undefined || wanted.has(d.VTLDeviceARN)),
        (d) => d.VTLDeviceARN,
        input,
      );
      return { GatewayARN: arns.gateway, VTLDevices: page, ...(marker !== undefined ? { Marker: marker } : {}) };
    }),

    // AWS swaps the changer at once; shelfgate stores the type and applies it on the next start.
    UpdateVTLDeviceType: operation(shape.UpdateVTLDeviceTypeInput, async (input) => {
      const tapes = library();
      if (input.VTLDeviceARN !== arns.vtlDevice('MEDIACHANGER', 1)) {
        throw invalidGatewayRequest('InvalidParameters', `VTLDeviceARN: ${input.VTLDeviceARN} is not this gateway's medium changer`, {
          field: 'VTLDeviceARN',
        });
      }
      await tapes.updateChangerType(input.DeviceType);
      return { VTLDeviceARN: input.VTLDeviceARN };
    }),

    ListTapePools: operation(shape.ListTapePoolsInput, async (input) => {
      const tapes = library();
      const wanted = input.PoolARNs === undefined ? undefined : new Set(input.PoolARNs);
      const pools = tapes.pools
        .list()
        .map(poolShape)
        .filter((p) => wanted === undefined || wanted.has(p.PoolARN));
      const { page, marker } = paginate(pools, (p) => p.PoolARN, input);
      return { PoolInfos: page, ...(marker !== undefined ? { Marker: marker } : {}) };
    }),

    CreateTapePool: operation(shape.CreateTapePoolInput, async (input) => {
      const tapes = library();
      const pool = await tapes.pools.create({
        poolName: input.PoolName,
        storageClass: input.StorageClass,
        ...(input.RetentionLockType !== undefined ? { retentionLockType: input.RetentionLockType } : {}),
        ...(input.RetentionLockTimeInDays !== undefined ? { retentionLockTimeInDays: input.RetentionLockTimeInDays } : {}),
      });
      return { PoolARN: arns.tapePool(pool.poolId) };
    }),

    DeleteTapePool: operation(shape.DeleteTapePoolInput, async (input) => {
      const tapes = library();
      const poolId = arns.tapePoolIdOf(input.PoolARN);
      if (poolId === undefined) {
        throw invalidGatewayRequest('InvalidParameters', `PoolARN: no tape pool ${input.PoolARN} in this account and region`, { field: 'PoolARN' });
      }
      await tapes.pools.delete(poolId);
      return { PoolARN: input.PoolARN };
    }),
  };
}
