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
  /** Aborted when task management ends the task (ABORT TASK, LUN RESET …, SAM-5 7): long
   *  operations, done in bounded steps, stop at the next step. */
  signal?: AbortSignal;
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
  /** For write commands: bytes the CDB called for beyond the Data-Out received (sets the overflow
   *  residual, RFC 7143 11.4.5.1; the device processed only the whole blocks it was given). */
  dataOutOverflow?: number;
}

/** The device behind one LUN. Implementations must tolerate concurrent `execute` calls. */
export interface LogicalUnit {
  /** SPC peripheral device type: 0x00 direct access, 0x01 sequential access, 0x08 medium changer. */
  readonly peripheralDeviceType: number;
  execute(req: ScsiRequest): Promise<ScsiResponse>;
  /** Task management side effects (SAM-5 7): LUN RESET / TARGET WARM|COLD RESET clear reservations
   *  as the standard says and establish a unit attention for every nexus, the issuer's included
   *  (SAM-5 6.3.2; libiscsi's MultipathIO.Reset checks every path, as tgt and LIO behave). */
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

/** Per-command durability (SBC-3 5.35 WRITE(10) FUA: force unit access). */
export interface WriteOptions {
  fua?: boolean;
}

/** Block storage behind a direct-access logical unit (SBC). LBAs and counts are in logical blocks.
 *  Every method may throw; a thrown error with `transient: true` becomes NOT READY (retryable). */
export interface BlockBackend {
  readonly blockSize: number;
  /** Current capacity in logical blocks (may grow: the LU reports CAPACITY DATA HAS CHANGED). */
  blockCount(): number;
  /** Returns exactly blockCount * blockSize bytes; unwritten blocks read as zeros. */
  read(lba: number, blockCount: number): Promise<Buffer>;
  /** data.length is a multiple of blockSize. With the write cache enabled (SBC-3 6.4.5 WCE=1) it
   *  resolves once the operating system holds the data, so a crash of the process loses nothing
   *  acknowledged; with `fua` (FUA bit) or WCE=0 only once the data is on stable storage.
   *  `data` may be kept by the backend until the promise settles: do not reuse it. */
  write(lba: number, data: Buffer, opts?: WriteOptions): Promise<void>;
  /** Deallocate; unmapped blocks read as zeros. Same durability rule as `write`. */
  unmap(lba: number, blockCount: number, opts?: WriteOptions): Promise<void>;
  /** Whether each block range is mapped, as runs (GET LBA STATUS). Covers [lba, lba + blockCount). */
  mapStatus(lba: number, blockCount: number): Promise<Array<{ lba: number; blockCount: number; mapped: boolean }>>;
  /** SYNCHRONIZE CACHE: everything acknowledged so far is on stable storage when it resolves. */
  flush(): Promise<void>;
  /** SBC-3 6.4.5 caching mode page WCE: the volatile write cache is enabled. */
  writeCacheEnabled(): boolean;
  /** MODE SELECT of WCE; the backend persists it (the saved value) before resolving. Turning the
   *  cache off first flushes it. */
  setWriteCacheEnabled(enabled: boolean): Promise<void>;
  /** Stable identity for VPD 0x80/0x83 (unit serial number, NAA). */
  readonly serial: string;
  /** 64-bit NAA IEEE Registered identifier payload (16 hex digits), stable per volume. */
  readonly naaId: string;
}

// ---------------------------------------------------------------------------------------------
// Tape media (SSC-4). A sequential-access logical unit drives one TapeMedium while a cartridge is
// loaded. The medium is one partition of logical objects: records (logical blocks) and filemarks,
// followed by end-of-data (EOD). The SSC-4 logical object identifier (READ POSITION, LOCATE)
// counts records AND filemarks from beginning-of-partition (BOP = 0); the logical file identifier
// is the number of filemarks between BOP and the position. Set marks are not supported.

/** Conditions a drive reports as sense data. A TapeMedium method throws an error carrying
 *  `tapeFault` for these; an error with `transient: true` becomes NOT READY (retryable).
 *  - 'write-protected':  DATA PROTECT, WRITE PROTECTED
 *  - 'worm-overwrite':   DATA PROTECT, WORM MEDIUM - OVERWRITE ATTEMPTED (SSC-4 WORM media)
 *  - 'end-of-medium':    VOLUME OVERFLOW, END-OF-PARTITION/MEDIUM DETECTED; nothing was written
 *  - 'write-error':      MEDIUM ERROR, WRITE ERROR (03/0C/00): the objects of this call could not
 *                        be stored (disk full, I/O error); nothing acknowledged before is touched,
 *                        the position is after the last object that was stored
 */
export type TapeFault = 'write-protected' | 'worm-overwrite' | 'end-of-medium' | 'write-error';

export function tapeFaultOf(err: unknown): TapeFault | undefined {
  if (typeof err === 'object' && err !== null && 'tapeFault' in err) {
    const fault = (err as { tapeFault: unknown }).tapeFault;
    if (fault === 'write-protected' || fault === 'worm-overwrite' || fault === 'end-of-medium' || fault === 'write-error') return fault;
  }
  return undefined;
}

/** The logical position (what SSC-4 READ POSITION reports). */
export interface TapePosition {
  /** Logical object identifier of the object at the position (records + filemarks before it). */
  logicalObjectId: number;
  /** Logical file identifier: filemarks before the position. */
  fileNumber: number;
  /** At beginning-of-partition (BOP). */
  bop: boolean;
  /** At end-of-data: the next READ finds EOD (BLANK CHECK), the next WRITE appends. */
  eod: boolean;
  /** The position is at or beyond early warning (EOP/EOM side): WRITE completes with EOM set. */
  beyondEarlyWarning: boolean;
}

/** What READ found at the position (the position moves past records and filemarks, not EOD). */
export type TapeReadResult =
  | { kind: 'record'; data: Buffer }
  | { kind: 'filemark' }
  | { kind: 'end-of-data' };

/** Outcome of SSC-4 SPACE(6)/SPACE(16). `spaced` counts what was crossed (the residual is
 *  |count| - spaced); `stoppedAt` says why it stopped early:
 *  - 'filemark': spacing records met a filemark — forward the position is on its EOP side (after
 *    it), reverse on its BOP side (the next READ returns it); the filemark is not counted.
 *  - 'end-of-data': forward movement reached EOD (BLANK CHECK, EOD DETECTED).
 *  - 'beginning-of-partition': reverse movement reached BOP (EOM bit, BOP DETECTED).
 *  Spacing filemarks in reverse ends on the BOP side of the last filemark crossed. */
export interface TapeSpaceResult {
  spaced: number;
  stoppedAt: 'filemark' | 'end-of-data' | 'beginning-of-partition' | null;
}

/** Outcome of a write that was stored. */
export interface TapeWriteResult {
  /** The medium is now at or beyond early warning (SSC-4 early warning: report EOM with NO SENSE). */
  beyondEarlyWarning: boolean;
}

/** When a write call resolves (SSC-4 8.3.3 BUFFERED MODE, the drive decides per command). */
export interface TapeWriteOptions {
  /** false (default, buffered mode 1): once the objects' frames are in the tape's data file — the
   *  operating system has them, so a crash of the process loses nothing acknowledged, a power loss
   *  may lose what was not flushed. true (buffered mode 0, WRITE FILEMARKS with IMMED=0): once
   *  they and everything written before them are on stable storage (fdatasync, group-committed). */
  sync?: boolean;
}

/** A loaded tape cartridge. Calls are executed in call order; WRITE-type calls change the position
 *  at once and resolve when stored (TapeWriteOptions), so a drive may issue the next WRITE before
 *  the previous one resolved (its records go into the same or the next batch: group commit). A
 *  write call never resolves before every earlier write of the medium is stored as far (a crash
 *  recovers a prefix of the log). Writing anywhere before EOD first discards everything from the
 *  position on (new EOD), unless the medium is WORM ('worm-overwrite'). The positioning calls
 *  (read, space, locate, rewind), erase and flush first make everything written so far durable
 *  (SSC-4: a buffered drive writes its buffer to the medium before it moves). Every method may
 *  throw `transient` store errors; a write that could not be stored throws 'write-error'. */
export interface TapeMedium {
  readonly barcode: string;
  readonly capacityBytes: number;
  /** Early warning is reached when fewer than this many bytes remain. */
  readonly earlyWarningBytes: number;
  readonly worm: boolean;
  writeProtected(): boolean;
  /** Record bytes between BOP and EOD (acknowledged or pending). */
  usedBytes(): number;
  position(): TapePosition;
  /** WRITE: one record (length ≥ 1) at the position. `data` is kept, not copied: do not reuse it. */
  writeRecord(data: Buffer, opts?: TapeWriteOptions): Promise<TapeWriteResult>;
  /** WRITE FILEMARKS: `count` filemarks at the position. Count 0 writes nothing: with `sync` it
   *  resolves once everything written so far is durable (a flush), else once it is stored. */
  writeFilemarks(count: number, opts?: TapeWriteOptions): Promise<TapeWriteResult>;
  /** Resolves when everything written so far is durable. */
  flush(): Promise<void>;
  /** READ: the object at the position. With `into`, a record that fits is read straight into
   *  `into`'s first bytes and `data` is a view of it (no copy; fixed-block READ of many blocks). */
  read(into?: Buffer): Promise<TapeReadResult>;
  /** SPACE logical blocks (count < 0 = reverse). */
  spaceRecords(count: number): Promise<TapeSpaceResult>;
  /** SPACE filemarks (count < 0 = reverse). */
  spaceFilemarks(count: number): Promise<TapeSpaceResult>;
  /** SPACE to end-of-data. */
  spaceToEndOfData(): Promise<void>;
  /** LOCATE to a logical object identifier; beyond EOD the position is EOD and `beyondEndOfData`
   *  is true (BLANK CHECK, EOD DETECTED). */
  locate(logicalObjectId: number): Promise<{ beyondEndOfData: boolean }>;
  /** LOCATE(16) with DEST_TYPE logical file: the BOP side of the first object of file `fileNumber`. */
  locateFile(fileNumber: number): Promise<{ beyondEndOfData: boolean }>;
  /** REWIND to BOP. */
  rewind(): Promise<void>;
  /** ERASE: EOD at the position (everything after it is gone). Durable when it resolves. */
  erase(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Media changers (SMC-3). A medium changer logical unit reports and moves cartridges between
// elements; which element holds which cartridge is the gateway's business (its tape library).
// Element addresses are the personality's (iscsi/scsi/personalities/*), shared by both sides.

/** SMC-3 6.10.1 ELEMENT TYPE CODE values, by name. */
export type ElementType = 'medium-transport' | 'storage' | 'import-export' | 'data-transfer';

/** A contiguous range of element addresses of one type (SMC-3 7.3.3 element address assignment). */
export interface ElementRange {
  first: number;
  count: number;
}

export interface ElementAddressMap {
  mediumTransport: ElementRange;
  storage: ElementRange;
  importExport: ElementRange;
  dataTransfer: ElementRange;
}

/** What READ ELEMENT STATUS reports about one element (SMC-3 6.10.2–6.10.6). */
export interface ElementStatus {
  address: number;
  type: ElementType;
  /** FULL: a cartridge is in the element. */
  full: boolean;
  /** ACCESS: the medium transport may take a cartridge from / put one into the element. */
  access: boolean;
  /** IMPEXP (import/export elements): the cartridge was placed by an operator (imported) rather
   *  than by the medium transport. */
  placedByOperator?: boolean;
  /** PRIMARY VOLUME TAG: the cartridge's barcode. */
  barcode?: string;
  /** SVALID + SOURCE STORAGE ELEMENT ADDRESS: the element the cartridge was last moved from. */
  sourceAddress?: number;
  /** Data transfer elements: the drive's T10 identity, reported with DVCID (SMC-3 6.10.5). */
  device?: { vendor: string; product: string; serial: string };
}

/** Conditions a MOVE MEDIUM reports as sense data. A ChangerModel throws an error carrying
 *  `changerFault` for these (the SMC layer maps them to ILLEGAL REQUEST sense):
 *  - 'source-empty' 3B/0E, 'destination-full' 3B/0D, 'invalid-element' 21/01,
 *  - 'medium-removal-prevented' 53/02 (the drive's initiator prevents removal),
 *  - 'drive-not-unloaded' 53/01 (the cartridge is still loaded in the drive). */
export type ChangerFault =
  | 'source-empty'
  | 'destination-full'
  | 'invalid-element'
  | 'medium-removal-prevented'
  | 'drive-not-unloaded';

export function changerFaultOf(err: unknown): ChangerFault | undefined {
  if (typeof err === 'object' && err !== null && 'changerFault' in err) {
    const fault = (err as { changerFault: unknown }).changerFault;
    if (
      fault === 'source-empty' ||
      fault === 'destination-full' ||
      fault === 'invalid-element' ||
      fault === 'medium-removal-prevented' ||
      fault === 'drive-not-unloaded'
    ) {
      return fault;
    }
  }
  return undefined;
}

/** The library behind a medium changer logical unit. */
export interface ChangerModel {
  readonly addressMap: ElementAddressMap;
  /** Every element, in ascending address order. */
  elements(): ElementStatus[];
  /** MOVE MEDIUM (SMC-3 6.6): resolves when the move is durable; throws `changerFault` errors. */
  moveMedium(sourceAddress: number, destinationAddress: number): Promise<void>;
  /** PREVENT ALLOW MEDIUM REMOVAL (SMC-3 6.13): while prevented, cartridges moved into an
   *  import/export element stay there (the operator cannot take them: no export happens). */
  setRemovalPrevented(prevented: boolean): Promise<void>;
  /** The inventory changed other than by MOVE MEDIUM (cartridges added, exported, deleted):
   *  the logical unit reports a unit attention to every nexus. Returns an unsubscribe function. */
  onInventoryChanged(listener: () => void): () => void;
}
