// The gateway domain's error family (ARCHITECTURE.md "One error family per layer"): stable GW_*
// codes that become SCSI sense or HTTP 4xx, and a CLI exit with a message saying what to do.

export type GatewayErrorCode = 'GW_VOLUME_SHRINK' | 'GW_VOLUME_TYPE_CHANGED' | 'GW_LISTEN_FAILED'
  // runtime volumes and CHAP (src/gateway/volume-service.ts)
  | 'GW_VOLUME_EXISTS'
  | 'GW_VOLUME_NOT_FOUND'
  | 'GW_VOLUME_DECLARED_IN_CONFIG'
  | 'GW_VOLUME_LIMIT_EXCEEDED'
  | 'GW_VOLUME_INVALID_ARGUMENT'
  | 'GW_CHAP_NOT_FOUND'
  // tape library (src/gateway/tape-*.ts)
  | 'GW_TAPE_INVALID_ARGUMENT'
  | 'GW_TAPE_BARCODE_EXISTS'
  | 'GW_TAPE_NOT_FOUND'
  | 'GW_TAPE_INVALID_STATE'
  | 'GW_TAPE_LIMIT_EXCEEDED'
  | 'GW_NO_EMPTY_SLOT'
  // virtual tape shelf (src/gateway/tape-shelf.ts, tape-archiver.ts)
  | 'GW_TAPE_RETENTION_LOCKED'
  | 'GW_TAPE_POOL_MOVE_REFUSED'
  // tape pools (src/gateway/tape-pools.ts)
  | 'GW_POOL_NOT_FOUND'
  | 'GW_POOL_EXISTS'
  | 'GW_POOL_IN_USE'
  | 'GW_POOL_INVALID_ARGUMENT'
  // snapshots (src/gateway/snapshot-service.ts)
  | 'GW_SNAPSHOT_NOT_FOUND'
  | 'GW_SNAPSHOT_INVALID_ARGUMENT'
  | 'GW_SNAPSHOT_INVALID_STATE'
  // local disks: cache and upload buffer (src/gateway/local-disks.ts)
  | 'GW_DISK_NOT_FOUND'
  | 'GW_DISK_ALREADY_ALLOCATED'
  | 'GW_DISK_INVALID'
  | 'GW_DISK_LIMIT'
  // encryption (src/gateway/object-encryption.ts): the key is missing, wrong or unusable; a file
  // the configuration names cannot be read
  | 'GW_ENCRYPTION_KEY'
  | 'GW_INVALID_CONFIG'
  // many gateways on one bucket, recovery (src/gateway/gateway-claim.ts, gateway-recovery.ts)
  | 'GW_GATEWAY_ID_TAKEN'
  | 'GW_GATEWAY_NOT_FOUND'
  | 'GW_RECOVERY_INVALID_ARGUMENT';

export class GatewayError extends Error {
  readonly code: GatewayErrorCode;
  /** The configuration key to change, when the configuration asks for something impossible
   *  (e.g. "volumes[0].size"); the CLI then reports a config error. */
  readonly configPath?: string;

  constructor(code: GatewayErrorCode, message: string, opts: { cause?: unknown; configPath?: string } = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'GatewayError';
    this.code = code;
    this.configPath = opts.configPath;
  }
}
