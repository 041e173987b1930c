// A sequential-access (SSC-4) logical unit: one tape drive of the library. The drive is an
// explicit state machine (empty → loaded ⇄ unloaded → empty) driven by the media changer
// (insertMedium / removeMedium) and LOAD UNLOAD; the commands are ssc.ts's op table.
//
// Command order. A tape is sequential, so commands to one drive execute one after another, in
// the order the fabric hands them over (CmdSN order). But waiting for each record to be stored
// before starting the next WRITE would cap throughput at one write (or sync) per record. So the
// queue lets a WRITE(6) / WRITE FILEMARKS(6) release it as soon as it has handed its records to
// the TapeMedium (which takes them in call order and group-commits them): the next WRITE starts at
// once and its records join the same or the next batch, while each command still answers GOOD
// only when its own records are stored. Every other command first waits until those pipelined
// writes have settled, so it sees the tape as the writes left it (position, EOD, or their
// failure). INQUIRY, REQUEST SENSE and REPORT SUPPORTED OPERATION CODES answer without queueing.
//
// Buffered mode (SSC-4 8.3.3, the mode parameter header's BUFFERED MODE field, per drive): 1 (the
// default, as LTO drives ship) answers a WRITE once the record is in the tape's data file — the
// operating system has it — and flushes (fdatasync) on WRITE FILEMARKS with IMMED=0, REWIND,
// LOAD UNLOAD, LOCATE, SPACE, READ, ERASE and when the cartridge leaves the drive; 0 (MODE SELECT)
// answers every WRITE only once it is on stable storage. docs/tape-library.md "Durability".

import { createHash } from 'node:crypto';
import type { LogicalUnit, ScsiRequest, ScsiResponse, TapeMedium } from '../device.js';
import { silentLogger, type Logger } from '../log.js';
import { invalidFieldInParameterList } from './cdb.js';
import { MaintenanceIn, Op, PeripheralDeviceType, VersionDescriptor } from './constants.js';
import { OpTable } from './dispatcher.js';
import { ScsiLogicalUnit } from './lun.js';
import { ibmUlt3580Td5, type TapeDrivePersonality } from './personalities/ibm-ult3580-td5.js';
import { Sense, SenseError, type SenseCode } from './sense.js';
import { sscOps } from './ssc.js';
import { deviceIdentificationPage, unitSerialNumberPage } from './vpd.js';

// ---- the drive state machine --------------------------------------------------------------------

/** - empty: no cartridge (NOT READY, MEDIUM NOT PRESENT).
 *  - loaded: ready; READ/WRITE/SPACE… work; the changer may not take it ('not-unloaded').
 *  - unloaded: LOAD UNLOAD with LOAD=0 done; NOT READY (INITIALIZING COMMAND REQUIRED), the
 *    cartridge still in the drive waiting for the changer (or LOAD=1). */
export type DriveState =
  | { readonly kind: 'empty' }
  | { readonly kind: 'loaded'; readonly medium: TapeMedium }
  | { readonly kind: 'unloaded'; readonly medium: TapeMedium };

export type DriveEvent = { kind: 'insert'; medium: TapeMedium } | { kind: 'load' } | { kind: 'unload' } | { kind: 'remove' };

export function transition(state: DriveState, event: DriveEvent): DriveState {
  switch (event.kind) {
    case 'insert':
      if (state.kind === 'empty') return { kind: 'loaded', medium: event.medium };
      break;
    case 'load':
      if (state.kind !== 'empty') return { kind: 'loaded', medium: state.medium };
      break;
    case 'unload':
      if (state.kind !== 'empty') return { kind: 'unloaded', medium: state.medium };
      break;
    case 'remove':
      if (state.kind === 'unloaded') return { kind: 'empty' };
      break;
  }
  throw new Error(`tape drive: ${event.kind} is not possible when ${state.kind}`);
}

// ---- the device state the SSC handlers work on ------------------------------------------------

/** SSC-4 8.3.3 BUFFERED MODE values this drive takes: 0h (unbuffered) and 1h (buffered). 2h (buffered,
 *  with writes of other I_T nexuses flushed first) is not offered. */
export type BufferedMode = 0 | 1;
export const DEFAULT_BUFFERED_MODE: BufferedMode = 1;

export class TapeDrive {
  readonly personality: TapeDrivePersonality;
  #state: DriveState = { kind: 'empty' };
  /** 0 = variable-block mode; else the fixed block length (MODE SELECT block descriptor). */
  blockLengthBytes: number;
  /** Set by a MODE SELECT block descriptor, applied once the whole parameter list is valid. */
  pendingBlockLengthBytes: number | undefined;
  /** SSC-4 8.3.3 BUFFERED MODE: 0 unbuffered (WRITE answers once durable), 1 buffered. */
  bufferedMode: BufferedMode = DEFAULT_BUFFERED_MODE;
  /** For the error counter log pages; since the cartridge was loaded or LOG SELECT reset them. */
  readonly counters = { bytesWritten: 0, bytesRead: 0 };
  /** I_T nexuses holding PREVENT MEDIUM REMOVAL (SPC-4 6.13: per nexus). */
  readonly #preventions = new Set<string>();

  #queueTail: Promise<void> = Promise.resolve();
  #releaseRunning: (() => void) | undefined;
  readonly #pendingWrites = new Set<Promise<unknown>>();

  constructor(personality: TapeDrivePersonality) {
    this.personality = personality;
    this.blockLengthBytes = personality.defaultBlockLengthBytes;
  }

  get state(): DriveState {
    return this.#state;
  }

  transition(event: DriveEvent): void {
    this.#state = transition(this.#state, event);
    if (event.kind === 'insert') this.resetCounters();
  }

  loadedMedium(): TapeMedium | undefined {
    return this.#state.kind === 'empty' ? undefined : this.#state.medium;
  }

  /** The medium of a ready drive, else the NOT READY condition as a SenseError. */
  requireLoaded(): TapeMedium {
    if (this.#state.kind === 'loaded') return this.#state.medium;
    throw new SenseError(this.notReadySense()!);
  }

  /** Why the drive is not ready (TEST UNIT READY, REQUEST SENSE), or undefined when ready. */
  notReadySense(): SenseCode | undefined {
    switch (this.#state.kind) {
      case 'empty':
        return Sense.MEDIUM_NOT_PRESENT;
      case 'unloaded':
        // IBM LTO after UNLOAD: a LOAD (initializing command) is required.
        return Sense.LOGICAL_UNIT_NOT_READY_INITIALIZING_COMMAND_REQUIRED;
      default:
        return undefined;
    }
  }

  setPrevention(nexusId: string, prevent: boolean): void {
    if (prevent) this.#preventions.add(nexusId);
    else this.#preventions.delete(nexusId);
  }

  clearPreventions(nexusId?: string): void {
    if (nexusId === undefined) this.#preventions.clear();
    else this.#preventions.delete(nexusId);
  }

  removalPrevented(): boolean {
    return this.#preventions.size > 0;
  }

  resetCounters(): void {
    this.counters.bytesWritten = 0;
    this.counters.bytesRead = 0;
  }

  /** Runs `job` after every earlier job (or its early release). Jobs that are not `pipelined`
   *  also wait for pipelined writes to settle. */
  enqueue<T>(pipelined: boolean, job: () => Promise<T>): Promise<T> {
    const previous = this.#queueTail;
    let release!: () => void;
    this.#queueTail = new Promise<void>((resolve) => (release = resolve));
    return (async () => {
      await previous;
      if (!pipelined) await this.settleWrites();
      let released = false;
      const releaseOnce = (): void => {
        if (released) return;
        released = true;
        if (this.#releaseRunning === releaseOnce) this.#releaseRunning = undefined;
        release();
      };
      this.#releaseRunning = releaseOnce;
      try {
        return await job();
      } finally {
        releaseOnce();
      }
    })();
  }

  /** A WRITE-type command handed everything to the medium: the next command may start. */
  releaseQueue(): void {
    this.#releaseRunning?.();
  }

  /** Remembers a write until it settles (the next non-write command waits for it). */
  trackWrite<T>(write: Promise<T>): Promise<T> {
    this.#pendingWrites.add(write);
    const forget = (): void => {
      this.#pendingWrites.delete(write);
    };
    write.then(forget, forget);
    return write;
  }

  async settleWrites(): Promise<void> {
    while (this.#pendingWrites.size > 0) await Promise.allSettled([...this.#pendingWrites]);
  }

  /** SSC-4 8.3.1 mode parameter block descriptor: DENSITY CODE, NUMBER OF BLOCKS (0: the rest of
   *  the medium), BLOCK LENGTH (0: variable). */
  blockDescriptor(): Buffer {
    const d = Buffer.alloc(8);
    d[0] = this.#state.kind === 'empty' ? 0x00 : this.personality.mediumDensityCode;
    d.writeUIntBE(this.blockLengthBytes, 5, 3);
    return d;
  }

  /** MODE SELECT: density 00h (default), 7Fh (no change) or the medium's; NUMBER OF BLOCKS 0; a
   *  block length of 0 (variable) or within the block limits (fixed). */
  checkBlockDescriptor(d: Buffer, offset: number): void {
    if (d.length !== 8) throw invalidFieldInParameterList(offset);
    const density = d[0]!;
    if (density !== 0x00 && density !== 0x7f && density !== this.personality.mediumDensityCode) {
      throw invalidFieldInParameterList(offset);
    }
    if (d.readUIntBE(1, 3) !== 0) throw invalidFieldInParameterList(offset + 1);
    const blockLength = d.readUIntBE(5, 3);
    const limits = this.personality.blockLimits;
    if (blockLength !== 0 && (blockLength < limits.minimumBlockLengthBytes || blockLength > limits.maximumBlockLengthBytes)) {
      throw invalidFieldInParameterList(offset + 5);
    }
    this.pendingBlockLengthBytes = blockLength;
  }

  /** SSC-4 8.3.3 DEVICE-SPECIFIC PARAMETER (mode parameter header): WP (bit 7), BUFFERED MODE
   *  (bits 6–4), SPEED 0 (bits 3–0, the default speed). */
  deviceSpecificParameter(): number {
    const medium = this.loadedMedium();
    return (medium?.writeProtected() ? 0x80 : 0x00) | (this.bufferedMode << 4);
  }

  /** How a write waits (iscsi/device.ts TapeWriteOptions): unbuffered writes are synced. */
  writeOptions(): { sync: boolean } {
    return { sync: this.bufferedMode === 0 };
  }
}

// ---- the logical unit -------------------------------------------------------------------------

/** The drive API the media changer (SMC) uses. */
export interface TapeDriveLogicalUnit extends LogicalUnit {
  /** Unit serial number (INQUIRY VPD 0x80), also reported by the changer as DVCID. */
  readonly serialNumber: string;
  /** MOVE MEDIUM into the drive: the cartridge is now loaded & positioned at BOP; every nexus gets
   *  UNIT ATTENTION 28/00 NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED. */
  insertMedium(medium: TapeMedium): void;
  /** Whether the changer may take the cartridge out now ('not-unloaded': only after unloading it). */
  removalState(): 'empty' | 'ready' | 'not-unloaded' | 'removal-prevented';
  /** Take the cartridge out (caller checked removalState() is 'ready' or 'not-unloaded'): pending
   *  writes go to stable storage first, and a loaded cartridge is unloaded (rewound) as the
   *  library's robot has the drive do before it grips it. Rejects with `changerFault`
   *  'medium-removal-prevented' if PREVENT MEDIUM REMOVAL arrived since the check. */
  removeMedium(): Promise<TapeMedium>;
  /** The loaded medium, if any (the changer's READ ELEMENT STATUS shows FULL). */
  loadedMedium(): TapeMedium | undefined;
}

/** Commands answered without waiting in the drive's queue. */
const UNQUEUED = new Set<number>([Op.INQUIRY, Op.REQUEST_SENSE]);
/** Commands that may release the queue before their writes are durable. */
const PIPELINED = new Set<number>([Op.WRITE_6, Op.WRITE_FILEMARKS_6]);

const tapeOpTable = new OpTable<TapeDrive>(sscOps());

class TapeDriveLu implements TapeDriveLogicalUnit {
  readonly peripheralDeviceType = PeripheralDeviceType.SEQUENTIAL_ACCESS;
  readonly serialNumber: string;
  readonly #drive: TapeDrive;
  readonly #lu: ScsiLogicalUnit<TapeDrive>;
  readonly #log: Logger;

  constructor(serialNumber: string, personality: TapeDrivePersonality, log: Logger) {
    this.serialNumber = serialNumber;
    this.#log = log;
    const drive = new TapeDrive(personality);
    this.#drive = drive;
    this.#lu = new ScsiLogicalUnit<TapeDrive>({
      peripheralDeviceType: PeripheralDeviceType.SEQUENTIAL_ACCESS,
      identity: personality.identity,
      serial: serialNumber,
      // NAA IEEE Registered designator payload derived from the serial (stable per drive).
      naaId: createHash('sha256').update(`shelfgate tape drive ${serialNumber}`).digest('hex').slice(0, 16),
      versionDescriptors: [VersionDescriptor.SAM_5, VersionDescriptor.ISCSI, VersionDescriptor.SPC_4, VersionDescriptor.SSC_4],
      opTable: tapeOpTable,
      device: drive,
      modePages: personality.modePages(),
      modeHeader: {
        deviceSpecificParameter: () => drive.deviceSpecificParameter(),
        blockDescriptor: () => drive.blockDescriptor(),
        checkBlockDescriptor: (d, offset) => drive.checkBlockDescriptor(d, offset),
        // Linux st reads the density and block length at every open with MODE SENSE(6), page
        // code 00h, allocation length 12 (drivers/scsi/st.c check_tape); refused, it falls back
        // to its default block size and loses `mt setblk`.
        pageZeroIsHeaderOnly: true,
      },
      // SPC-4 7.8: a tape drive has no block-device (B0h–B2h) pages.
      vpdPages: [unitSerialNumberPage(), deviceIdentificationPage()],
      mediumPresent: () => drive.state.kind !== 'empty',
      log,
    });
  }

  execute(req: ScsiRequest): Promise<ScsiResponse> {
    const opcode = req.cdb[0];
    const unqueued =
      opcode === undefined ||
      UNQUEUED.has(opcode) ||
      (opcode === Op.MAINTENANCE_IN && ((req.cdb[1] ?? 0) & 0x1f) === MaintenanceIn.REPORT_SUPPORTED_OPERATION_CODES);
    if (unqueued) return this.#lu.execute(req);
    return this.#drive.enqueue(PIPELINED.has(opcode), () => this.#lu.execute(req));
  }

  /** SPC-4 6.13: a reset ends every PREVENT MEDIUM REMOVAL; a power on restores the block length. */
  reset(kind: 'lun' | 'target-warm' | 'target-cold'): void {
    this.#lu.reset(kind);
    this.#drive.clearPreventions();
    if (kind === 'target-cold') {
      // Power on: the mode parameters are back at their defaults.
      this.#drive.blockLengthBytes = this.#drive.personality.defaultBlockLengthBytes;
      this.#drive.bufferedMode = DEFAULT_BUFFERED_MODE;
    }
  }

  nexusLost(nexusId: string): void {
    this.#lu.nexusLost(nexusId);
    this.#drive.clearPreventions(nexusId);
  }

  insertMedium(medium: TapeMedium): void {
    this.#drive.transition({ kind: 'insert', medium });
    // Position at BOP before any command that arrives after the move.
    this.#drive.enqueue(false, () => medium.rewind()).catch((err: unknown) => {
      this.#log.error('rewinding an inserted cartridge failed', { barcode: medium.barcode, err: String(err) });
    });
    this.#lu.unitAttentions.establishForAll(Sense.NOT_READY_TO_READY_CHANGE_MEDIUM_MAY_HAVE_CHANGED);
  }

  /** Prevention wins over the load state: the changer reports MEDIUM REMOVAL PREVENTED then. */
  removalState(): 'empty' | 'ready' | 'not-unloaded' | 'removal-prevented' {
    const state = this.#drive.state;
    if (state.kind === 'empty') return 'empty';
    if (this.#drive.removalPrevented()) return 'removal-prevented';
    return state.kind === 'loaded' ? 'not-unloaded' : 'ready';
  }

  removeMedium(): Promise<TapeMedium> {
    return this.#drive.enqueue(false, async () => {
      const state = this.#drive.state;
      if (state.kind === 'empty') throw new Error('tape drive: no cartridge to remove');
      // A PREVENT MEDIUM REMOVAL queued before this job holds (SPC-4 6.13).
      if (this.#drive.removalPrevented()) throw Object.assign(new Error('tape drive: medium removal prevented'), { changerFault: 'medium-removal-prevented' });
      await state.medium.flush();
      if (state.kind === 'loaded') {
        // What LOAD UNLOAD with LOAD=0 does (ssc.ts sscLoadUnload), commanded by the library.
        await state.medium.rewind();
        this.#drive.transition({ kind: 'unload' });
      }
      this.#drive.transition({ kind: 'remove' });
      return state.medium;
    });
  }

  loadedMedium(): TapeMedium | undefined {
    return this.#drive.loadedMedium();
  }
}

export function createTapeDriveLogicalUnit(opts: {
  serialNumber: string;
  log?: Logger;
  personality?: TapeDrivePersonality;
}): TapeDriveLogicalUnit {
  return new TapeDriveLu(opts.serialNumber, opts.personality ?? ibmUlt3580Td5, opts.log ?? silentLogger);
}
