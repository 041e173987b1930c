// Errors of the AWS-compatible endpoint in AWS's awsJson1_1 shape: `__type` and `message`, and for
// InvalidGatewayRequestException also `error: { errorCode, errorDetails }` (StorageGatewayError),
// which the AWS SDKs expose on the exception object.

import { GatewayError, type GatewayErrorCode } from '../../gateway/gateway-error.js';

/** StorageGatewayError errorCode values we produce (AWS ErrorCode enum). */
export type AwsErrorCode =
  | 'InvalidParameters'
  | 'GatewayNotFound'
  | 'VolumeNotFound'
  | 'TargetNotFound'
  | 'TargetAlreadyExists'
  | 'ChapCredentialNotFound'
  | 'MaximumVolumeCountExceeded'
  | 'NotSupported'
  | 'TapeCartridgeNotFound'
  | 'MaximumTapeCartridgeCountExceeded'
  | 'SnapshotIdInvalid'
  | 'SnapshotScheduleNotFound'
  | 'DiskDoesNotExist'
  | 'DiskAlreadyAllocated';

export class AwsApiError extends Error {
  readonly statusCode: number;
  readonly type: string;
  readonly errorCode: AwsErrorCode | undefined;
  readonly errorDetails: Record<string, string>;

  constructor(
    statusCode: number,
    type: string,
    message: string,
    opts: { errorCode?: AwsErrorCode; errorDetails?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = 'AwsApiError';
    this.statusCode = statusCode;
    this.type = type;
    this.errorCode = opts.errorCode;
    this.errorDetails = opts.errorDetails ?? {};
  }

  body(): Record<string, unknown> {
    return {
      __type: this.type,
      message: this.message,
      ...(this.errorCode !== undefined ? { error: { errorCode: this.errorCode, errorDetails: this.errorDetails } } : {}),
    };
  }
}

/** HTTP 400 InvalidGatewayRequestException with a StorageGatewayError code. */
export function invalidGatewayRequest(
  errorCode: AwsErrorCode,
  message: string,
  errorDetails?: Record<string, string>,
): AwsApiError {
  return new AwsApiError(400, 'InvalidGatewayRequestException', message, {
    errorCode,
    ...(errorDetails !== undefined ? { errorDetails } : {}),
  });
}

const GATEWAY_ERROR_CODES: Partial<Record<GatewayErrorCode, AwsErrorCode>> = {
  GW_VOLUME_EXISTS: 'TargetAlreadyExists',
  GW_VOLUME_NOT_FOUND: 'VolumeNotFound',
  GW_VOLUME_DECLARED_IN_CONFIG: 'InvalidParameters',
  GW_VOLUME_LIMIT_EXCEEDED: 'MaximumVolumeCountExceeded',
  GW_VOLUME_INVALID_ARGUMENT: 'InvalidParameters',
  GW_CHAP_NOT_FOUND: 'ChapCredentialNotFound',
  GW_TAPE_NOT_FOUND: 'TapeCartridgeNotFound',
  GW_TAPE_LIMIT_EXCEEDED: 'MaximumTapeCartridgeCountExceeded',
  // No empty slot left for a new cartridge: the library is full, which AWS reports as its count limit.
  GW_NO_EMPTY_SLOT: 'MaximumTapeCartridgeCountExceeded',
  GW_TAPE_INVALID_ARGUMENT: 'InvalidParameters',
  // AWS has no code of its own for a reused barcode or a tape in the wrong state (e.g. in a drive).
  GW_TAPE_BARCODE_EXISTS: 'InvalidParameters',
  GW_TAPE_INVALID_STATE: 'InvalidParameters',
  GW_POOL_NOT_FOUND: 'InvalidParameters',
  GW_POOL_EXISTS: 'InvalidParameters',
  GW_POOL_IN_USE: 'InvalidParameters',
  GW_POOL_INVALID_ARGUMENT: 'InvalidParameters',
  // Retention lock / DEEP_ARCHIVE -> GLACIER: AWS refuses with InvalidGatewayRequestException too.
  GW_TAPE_RETENTION_LOCKED: 'InvalidParameters',
  GW_TAPE_POOL_MOVE_REFUSED: 'InvalidParameters',
  GW_SNAPSHOT_NOT_FOUND: 'SnapshotIdInvalid',
  GW_SNAPSHOT_INVALID_ARGUMENT: 'InvalidParameters',
  GW_SNAPSHOT_INVALID_STATE: 'InvalidParameters',
  GW_DISK_NOT_FOUND: 'DiskDoesNotExist',
  GW_DISK_ALREADY_ALLOCATED: 'DiskAlreadyAllocated',
  GW_DISK_INVALID: 'InvalidParameters',
  GW_DISK_LIMIT: 'InvalidParameters',
  GW_GATEWAY_NOT_FOUND: 'GatewayNotFound',
  GW_RECOVERY_INVALID_ARGUMENT: 'InvalidParameters',
};

/** A domain error as AWS reports it; anything unexpected is an InternalServerError (500). */
export function toAwsApiError(err: unknown): AwsApiError {
  if (err instanceof AwsApiError) return err;
  if (err instanceof GatewayError) {
    const errorCode = GATEWAY_ERROR_CODES[err.code];
    // errorDetails keeps shelfgate's own code where one AWS code covers several of ours.
    if (errorCode !== undefined) return invalidGatewayRequest(errorCode, err.message, { code: err.code });
  }
  return new AwsApiError(500, 'InternalServerError', 'internal error; see the gateway log');
}
