// An in-memory TapeMedium (iscsi/device.ts) for SSC unit tests, and a drive harness (below): one partition of records and
// filemarks followed by EOD, with the same positioning rules as the LevelDB store
// (src/store/tape-medium.ts). Writes change the position at once and resolve when "stored": at
// once, or when the test opens `durabilityGate` (to observe pipelined WRITEs). `calls` records
// `, sync` for writes that asked to be durable (TapeWriteOptions.sync: buffered mode 0, WRITE
// FILEMARKS with IMMED=0).

import type {
  Nexus,
  ScsiResponse,
  TapeMedium,
  TapePosition,
  TapeReadResult,
  TapeSpaceResult,
  TapeWriteOptions,
  TapeWriteResult,
} from '../../iscsi/device.js';
import { createTapeDriveLogicalUnit, type TapeDriveLogicalUnit } from '../../iscsi/scsi/tape-drive.js';

/** Carries `tapeFault` like the store's TapeStoreError, so the drive maps it to sense data. */
export class MemoryTapeFault extends Error {
  constructor(readonly tapeFault: 'write-protected' | 'worm-overwrite' | 'end-of-medium' | 'write-error') {
    super(`tape fault: ${tapeFault}`);
  }
}

export class MemoryTape implements TapeMedium {
  readonly barcode: string;
  readonly capacityBytes: number;
  readonly earlyWarningBytes: number;
  readonly worm: boolean;
  /** Records (Buffer) and filemarks (null) from BOP to EOD. */
  readonly objects: Array<Buffer | null> = [];
  #position = 0;
  #writeProtected: boolean;
  /** While set, write calls resolve only after it resolves (their position change is immediate). */
  durabilityGate: Promise<void> | undefined;
  /** Every call, in call order, for tests of ordering and pipelining. */
  readonly calls: string[] = [];
  /** While set, writes fail with this fault and store nothing (e.g. 'write-error': disk full). */
  failWrites: 'write-error' | undefined;

  constructor(opts: { barcode?: string; capacityBytes?: number; earlyWarningBytes?: number; worm?: boolean; writeProtected?: boolean } = {}) {
    this.barcode = opts.barcode ?? 'TEST00001';
    this.capacityBytes = opts.capacityBytes ?? 64 * 1024 * 1024;
    this.earlyWarningBytes = opts.earlyWarningBytes ?? 1024 * 1024;
    this.worm = opts.worm ?? false;
    this.#writeProtected = opts.writeProtected ?? false;
  }

  setWriteProtected(writeProtected: boolean): void {
    this.#writeProtected = writeProtected;
  }

  writeProtected(): boolean {
    return this.#writeProtected;
  }

  usedBytes(): number {
    return this.#bytesBefore(this.objects.length);
  }

  position(): TapePosition {
    return {
      logicalObjectId: this.#position,
      fileNumber: this.#fileNumberAt(this.#position),
      bop: this.#position === 0,
      eod: this.#position === this.objects.length,
      beyondEarlyWarning: this.#beyondEarlyWarning(),
    };
  }

  writeRecord(data: Buffer, opts: TapeWriteOptions = {}): Promise<TapeWriteResult> {
    this.calls.push(`writeRecord(${data.length}${opts.sync === true ? ', sync' : ''})`);
    try {
      if (this.failWrites) throw new MemoryTapeFault(this.failWrites);
      this.#checkWritable();
      if (this.#bytesBefore(this.#position) + data.length > this.capacityBytes) throw new MemoryTapeFault('end-of-medium');
    } catch (err) {
      return Promise.reject(err);
    }
    this.objects.length = this.#position;
    this.objects.push(data);
    this.#position++;
    return this.#durable({ beyondEarlyWarning: this.#beyondEarlyWarning() });
  }

  writeFilemarks(count: number, opts: TapeWriteOptions = {}): Promise<TapeWriteResult> {
    this.calls.push(`writeFilemarks(${count}${opts.sync === true ? ', sync' : ''})`);
    if (count > 0) {
      try {
        if (this.failWrites) throw new MemoryTapeFault(this.failWrites);
        this.#checkWritable();
      } catch (err) {
        return Promise.reject(err);
      }
      this.objects.length = this.#position;
      for (let i = 0; i < count; i++) this.objects.push(null);
      this.#position += count;
    }
    return this.#durable({ beyondEarlyWarning: this.#beyondEarlyWarning() });
  }

  flush(): Promise<void> {
    this.calls.push('flush');
    return this.#durable(undefined);
  }

  /** With `into`, a record that fits is copied into it and `data` is a view of `into` (as the
   *  store reads it there with pread). */
  async read(into?: Buffer): Promise<TapeReadResult> {
    this.calls.push(into === undefined ? 'read' : `read(into ${into.length})`);
    if (this.#position >= this.objects.length) return { kind: 'end-of-data' };
    const object = this.objects[this.#position++]!;
    if (object === null) return { kind: 'filemark' };
    if (into !== undefined && object.length <= into.length) {
      object.copy(into);
      return { kind: 'record', data: into.subarray(0, object.length) };
    }
    return { kind: 'record', data: object };
  }

  async spaceRecords(count: number): Promise<TapeSpaceResult> {
    this.calls.push(`spaceRecords(${count})`);
    let spaced = 0;
    if (count > 0) {
      while (spaced < count) {
        if (this.#position >= this.objects.length) return { spaced, stoppedAt: 'end-of-data' };
        if (this.objects[this.#position] === null) {
          this.#position++; // forward: the EOP side of the filemark
          return { spaced, stoppedAt: 'filemark' };
        }
        this.#position++;
        spaced++;
      }
    } else {
      while (spaced < -count) {
        if (this.#position === 0) return { spaced, stoppedAt: 'beginning-of-partition' };
        if (this.objects[this.#position - 1] === null) {
          this.#position--; // reverse: the BOP side of the filemark
          return { spaced, stoppedAt: 'filemark' };
        }
        this.#position--;
        spaced++;
      }
    }
    return { spaced, stoppedAt: null };
  }

  async spaceFilemarks(count: number): Promise<TapeSpaceResult> {
    this.calls.push(`spaceFilemarks(${count})`);
    let spaced = 0;
    if (count > 0) {
      while (spaced < count) {
        if (this.#position >= this.objects.length) return { spaced, stoppedAt: 'end-of-data' };
        if (this.objects[this.#position++] === null) spaced++;
      }
    } else {
      while (spaced < -count) {
        if (this.#position === 0) return { spaced, stoppedAt: 'beginning-of-partition' };
        if (this.objects[--this.#position] === null) spaced++;
      }
    }
    return { spaced, stoppedAt: null };
  }

  async spaceToEndOfData(): Promise<void> {
    this.calls.push('spaceToEndOfData');
    this.#position = this.objects.length;
  }

  async locate(logicalObjectId: number): Promise<{ beyondEndOfData: boolean }> {
    this.calls.push(`locate(${logicalObjectId})`);
    this.#position = Math.min(logicalObjectId, this.objects.length);
    return { beyondEndOfData: logicalObjectId > this.objects.length };
  }

  async locateFile(fileNumber: number): Promise<{ beyondEndOfData: boolean }> {
    this.calls.push(`locateFile(${fileNumber})`);
    let seen = 0;
    for (let i = 0; i < this.objects.length && seen < fileNumber; i++) {
      if (this.objects[i] === null && ++seen === fileNumber) {
        this.#position = i + 1;
        return { beyondEndOfData: false };
      }
    }
    if (fileNumber === 0) {
      this.#position = 0;
      return { beyondEndOfData: false };
    }
    this.#position = this.objects.length;
    return { beyondEndOfData: true };
  }

  async rewind(): Promise<void> {
    this.calls.push('rewind');
    this.#position = 0;
  }

  async erase(): Promise<void> {
    this.calls.push('erase');
    this.#checkWritable();
    this.objects.length = this.#position;
  }

  #checkWritable(): void {
    if (this.#writeProtected) throw new MemoryTapeFault('write-protected');
    if (this.worm && this.#position < this.objects.length) throw new MemoryTapeFault('worm-overwrite');
  }

  #bytesBefore(objectId: number): number {
    let n = 0;
    for (let i = 0; i < objectId; i++) n += this.objects[i]?.length ?? 0;
    return n;
  }

  #fileNumberAt(objectId: number): number {
    let n = 0;
    for (let i = 0; i < objectId; i++) if (this.objects[i] === null) n++;
    return n;
  }

  #beyondEarlyWarning(): boolean {
    return this.#bytesBefore(this.#position) >= this.capacityBytes - this.earlyWarningBytes;
  }

  async #durable<T>(value: T): Promise<T> {
    if (this.durabilityGate) await this.durabilityGate;
    return value;
  }
}

// ---- a drive harness for SSC tests ----------------------------------------------------------

export const testNexus: Nexus = {
  id: 'iqn.1994-05.com.example:backup,i,0x400001370000|1',
  initiatorPortName: 'iqn.1994-05.com.example:backup,i,0x400001370000',
  initiatorName: 'iqn.1994-05.com.example:backup',
  targetPortName: 'iqn.2026-11.dev.shelfgate:shelfgate-tapedrive-01,t,0x0001',
  relativeTargetPortId: 1,
};

export const otherNexus: Nexus = {
  ...testNexus,
  id: 'iqn.1994-05.com.example:other,i,0x400001370000|2',
  initiatorPortName: 'iqn.1994-05.com.example:other,i,0x400001370000',
  initiatorName: 'iqn.1994-05.com.example:other',
};

export type RunCommand = (cdb: number[] | Buffer, dataOut?: Buffer | null, nexus?: Nexus) => Promise<ScsiResponse>;

/** A tape drive LU with the power-on unit attention consumed; with `tape`, the cartridge is
 *  inserted and the NOT READY TO READY unit attention consumed too. */
export async function tapeDriveWith(tape?: TapeMedium): Promise<{ lu: TapeDriveLogicalUnit; run: RunCommand }> {
  const lu = createTapeDriveLogicalUnit({ serialNumber: 'SG00000001' });
  const run: RunCommand = (cdb, dataOut = null, nexus = testNexus) =>
    lu.execute({
      nexus,
      cdb: Buffer.isBuffer(cdb) ? cdb : Buffer.from(cdb),
      taskAttr: 1,
      expectedDataTransferLength: dataOut?.length ?? 0x1000000,
      dataOut,
    });
  await run([0x03, 0, 0, 0, 18, 0]); // REQUEST SENSE: clears POWER ON RESET
  if (tape) {
    lu.insertMedium(tape);
    await run([0x03, 0, 0, 0, 18, 0]); // clears NOT READY TO READY CHANGE
  }
  return { lu, run };
}

const u24 = (n: number): number[] => [(n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

/** SSC-4 CDBs. */
export const cdb = {
  testUnitReady: () => [0x00, 0, 0, 0, 0, 0],
  rewind: () => [0x01, 0, 0, 0, 0, 0],
  requestSense: () => [0x03, 0, 0, 0, 252, 0],
  readBlockLimits: () => [0x05, 0, 0, 0, 0, 0],
  read6: (length: number, flags = 0) => [0x08, flags, ...u24(length), 0],
  write6: (length: number, flags = 0) => [0x0a, flags, ...u24(length), 0],
  writeFilemarks6: (count: number, flags = 0) => [0x10, flags, ...u24(count), 0],
  space6: (code: number, count: number) => [0x11, code, ...u24(count & 0xffffff), 0],
  space16: (code: number, count: number) => {
    const b = Buffer.alloc(16);
    b[0] = 0x91;
    b[1] = code;
    b.writeBigInt64BE(BigInt(count), 4);
    return b;
  },
  inquiry: (evpd = false, page = 0) => [0x12, evpd ? 1 : 0, page, 0, 255, 0],
  modeSelect6: (parameterListLength: number) => [0x15, 0x10, 0, 0, parameterListLength, 0],
  modeSense6: (page: number, dbd = false) => [0x1a, dbd ? 0x08 : 0, page, 0, 255, 0],
  erase6: (long = true) => [0x19, long ? 1 : 0, 0, 0, 0, 0],
  loadUnload: (bits: number) => [0x1b, 0, 0, 0, bits, 0],
  preventAllow: (prevent: boolean) => [0x1e, 0, 0, 0, prevent ? 1 : 0, 0],
  locate10: (id: number, flags = 0, partition = 0) => [0x2b, flags, 0, (id >>> 24) & 0xff, ...u24(id), 0, partition, 0],
  locate16: (id: number, destType = 0) => {
    const b = Buffer.alloc(16);
    b[0] = 0x92;
    b[1] = destType << 3;
    b.writeBigUInt64BE(BigInt(id), 4);
    return b;
  },
  readPosition: (serviceAction = 0, allocationLength = 0) => [0x34, serviceAction, 0, 0, 0, 0, 0, allocationLength >> 8, allocationLength & 0xff, 0],
  reportDensitySupport: (media = false) => [0x44, media ? 1 : 0, 0, 0, 0, 0, 0, 0x10, 0, 0],
  logSense: (page: number, parameterPointer = 0) => [0x4d, 0, 0x40 | page, 0, 0, parameterPointer >> 8, parameterPointer & 0xff, 0x10, 0, 0],
};

/** MODE SELECT(6) parameter list: header + one block descriptor (density, block length). */
export function blockDescriptorParameterList(densityCode: number, blockLengthBytes: number): Buffer {
  return Buffer.from([0, 0, 0x10, 8, densityCode, 0, 0, 0, 0, ...u24(blockLengthBytes)]);
}

/** FILEMARK / EOM / ILI and the signed INFORMATION of fixed-format sense data, as one string so
 *  a failure shows all of them: e.g. "FM=1 EOM=0 ILI=0 info=4". */
export function streamSense(response: ScsiResponse): string {
  const s = response.sense;
  if (!s || s.length < 18) return 'no fixed-format sense';
  const valid = (s[0]! & 0x80) !== 0;
  return `FM=${(s[2]! >> 7) & 1} EOM=${(s[2]! >> 6) & 1} ILI=${(s[2]! >> 5) & 1} info=${valid ? s.readInt32BE(3) : 'invalid'}`;
}
