// The seams between the iSCSI fabric, the SCSI device library and the gateway.
//
//   fabric (iscsi/server.ts …)  --ScsiRequest-->  LogicalUnit (iscsi/scsi/…)  --> BlockBackend (src/store/…)
//
// The fabric knows nothing of CDBs beyond transporting them; a LogicalUnit knows nothing of PDUs;
// a BlockBackend knows nothing of SCSI. `iscsi/` never imports `src/`.

/** SAM-5 status codes. */
export const ScsiStatus = {
  GOOD: 0x00,
  CHECK_CONDITION: 0x02,
  CONDITION_MET: 0x04,
  BUSY: 0x08,
  RESERVATION_CONFLICT: 0x18,
  TASK_SET_FULL: 0x28,
  ACA_ACTIVE: 0x30,
  TASK_ABORTED: 0x40,
} as const;
export type ScsiStatusValue = (typeof ScsiStatus)[keyof typeof ScsiStatus];

/** The I_T nexus a command arrived on (SAM-5 4.6). */
export interface Nexus {
  /** Unique for the life of the session (e.g. "iqn.initiator,i,0x<isid>|<tsih>"). */
  id: string;
  /** Initiator port name (RFC 7143 SCSI port names: "<iqn>,i,0x<isid hex>"). */
  initiatorPortName: string;
  initiatorName: string;
  /** Target port name ("<target iqn>,t,0x<tpgt hex>"). */
  targetPortName: string;
  /** Relative target port identifier reported in VPD 0x83 and PR data. */
  relativeTargetPortId: number;
}

/** One SCSI command as the fabric hands it to a logical unit. */
export interface ScsiRequest {
  nexus: Nexus;
  cdb: Buffer;
  /** SAM task attribute: 0 untagged, 1 simple, 2 ordered, 3 head of queue, 4 ACA. */
  taskAttr: number;
  /** The initiator's Expected Data Transfer Length (RFC 7143 11.3.4). */
  expectedDataTransferLength: number;
  /** All Data-Out for a write command, already collected (immediate + unsolicited + solicited);
   *  null for commands without the W bit. */
  dataOut: Buffer | null;
}

/** What a logical unit answers. The fabric computes residuals from `dataIn.length` against
 *  the Expected Data Transfer Length (SAM: overflow when the device had more to send). */
export interface ScsiResponse {
  status: ScsiStatusValue;
  /** Data-In for read commands (may be longer than allowed: the fabric truncates and sets overflow). */
  dataIn?: Buffer;
  /** Sense data (fixed or descriptor format) for CHECK CONDITION. */
  sense?: Buffer;
  /** For write commands: bytes of Data-Out the device did not consume (sets underflow residual). */
  dataOutResidual?: number;
}

/** The device behind one LUN. Implementations must tolerate concurrent `execute` calls. */
export interface LogicalUnit {
  /** SPC peripheral device type: 0x00 direct access, 0x01 sequential access, 0x08 medium changer. */
  readonly peripheralDeviceType: number;
  execute(req: ScsiRequest): Promise<ScsiResponse>;
  /** Task management side effects (SAM-5 7): LUN RESET / TARGET WARM|COLD RESET clear reservations
   *  as the standard says and establish unit attentions for every nexus. */
  reset(kind: 'lun' | 'target-warm' | 'target-cold'): void;
  /** A nexus logged out or was reinstated: forget its per-nexus state (unit attentions, RESERVE(6)). */
  nexusLost(nexusId: string): void;
}

/** A target as the fabric serves it (RFC 7143 section 4.2.7 names). */
export interface TargetConfig {
  /** iSCSI name, e.g. iqn.2026-11.dev.shelfgate:gw-vol1 */
  name: string;
  alias?: string;
  /** LUN number -> logical unit. */
  luns: Map<number, LogicalUnit>;
  /** One-way CHAP: the initiator must answer with this user/secret. */
  chap?: { user: string; secret: string };
  /** Mutual CHAP: the target answers the initiator's challenge with this user/secret. */
  mutualChap?: { user: string; secret: string };
  /** When set, only these initiator IQNs may log in (and see the target in SendTargets). */
  allowedInitiators?: string[];
}

/** Where the fabric looks targets up; the gateway can add and remove targets at run time. */
export interface TargetRegistry {
  list(): TargetConfig[];
  get(name: string): TargetConfig | undefined;
}

/** Block storage behind a direct-access logical unit (SBC). LBAs and counts are in logical blocks.
 *  Every method may throw; a thrown error with `transient: true` becomes NOT READY (retryable). */
export interface BlockBackend {
  readonly blockSize: number;
  /** Current capacity in logical blocks (may grow: the LU reports CAPACITY DATA HAS CHANGED). */
  blockCount(): number;
  /** Returns exactly blockCount * blockSize bytes; unwritten blocks read as zeros. */
  read(lba: number, blockCount: number): Promise<Buffer>;
  /** Resolves only when the data is durable locally. data.length is a multiple of blockSize. */
  write(lba: number, data: Buffer): Promise<void>;
  /** Deallocate; unmapped blocks read as zeros. Durable before it resolves. */
  unmap(lba: number, blockCount: number): Promise<void>;
  /** Whether each block range is mapped, as runs (GET LBA STATUS). Covers [lba, lba + blockCount). */
  mapStatus(lba: number, blockCount: number): Promise<Array<{ lba: number; blockCount: number; mapped: boolean }>>;
  /** Everything acknowledged so far is durable (a no-op where writes are synced already). */
  flush(): Promise<void>;
  /** Stable identity for VPD 0x80/0x83 (unit serial number, NAA). */
  readonly serial: string;
  /** 64-bit NAA IEEE Registered identifier payload (16 hex digits), stable per volume. */
  readonly naaId: string;
}
