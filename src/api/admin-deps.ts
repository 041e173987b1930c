// What the admin API needs from the gateway (main.ts wires it): the services underneath both the
// AWS-compatible endpoint and the REST API, and the identity that goes into ARNs.

import type { GatewayRecovery } from '../gateway/gateway-recovery.js';
import type { GatewaySettings } from '../gateway/gateway-settings.js';
import type { SnapshotScheduler } from '../gateway/snapshot-scheduler.js';
import type { SnapshotService } from '../gateway/snapshot-service.js';
import type { StorageService } from '../gateway/storage-service.js';
import type { StoreHealth } from '../store/store-health.js';
import type { TapeAdmin } from '../gateway/tape-admin.js';
import type { VolumeService } from '../gateway/volume-service.js';
import type { AccessKey } from './aws/sigv4.js';
import type { IscsiLimitStats } from '../../iscsi/server.js';

export interface AdminDeps {
  volumes: VolumeService;
  settings: GatewaySettings;
  gatewayName: string;
  /** AWS region for SigV4 scopes and ARNs. */
  region: string;
  /** 12-digit AWS account id in ARNs. */
  accountId: string;
  /** SigV4 access keys; none = the AWS-compatible endpoint refuses every request. */
  accessKeys: readonly AccessKey[];
  /** Bearer token the REST API (/v1/*) requires, when set. */
  token?: string;
  /** Client-side encryption of the bucket (KMSEncrypted / KMSKey on the AWS operations). */
  encryption?: { keySource: 'none' | 'local' | 'kms'; kmsKeyId?: string | undefined };
  /** Where initiators connect (NetworkInterfaceId / NetworkInterfacePort). */
  iscsiPortal(): { host: string; port: number };
  /** iscsi.advertise: the portals discovery gives out; empty = the address each initiator reached. */
  iscsiAdvertise?: ReadonlyArray<{ host: string; port: number }>;
  softwareVersion: string;
  /** The virtual tape library, when it is enabled (tape operations answer NotSupported otherwise). */
  tapes?: TapeAdmin;
  /** Volume snapshots and their schedules (snapshot operations answer NotSupported without). */
  snapshots?: { service: SnapshotService; scheduler: SnapshotScheduler };
  /** The storage engine (cache, upload buffer, uploader), for /metrics and the local-disk
   *  operations (AddCache, DescribeCache, …). */
  storage?: Pick<StorageService, 'counters' | 'disks'> & Partial<Pick<StorageService, 'uploader'>>;
  /** Disk-full and I/O-error episodes of the stores, for /metrics. */
  storeHealth?: StoreHealth;
  /** The iSCSI portal's limits and login throttle (iscsi/server.ts limitStats), for /metrics. */
  iscsiStats?(): IscsiLimitStats;
  /** The bucket shared with other gateways: its gateways, the account's snapshots, recovery. */
  account?: {
    gateways(): Promise<Array<{ gatewayId: string; name?: string; createdAt?: string; self: boolean }>>;
    snapshots: SnapshotService;
    recovery: GatewayRecovery;
  };
}
