// A tiny in-memory direct-access logical unit for fabric tests: TEST UNIT READY, INQUIRY (standard
// and VPD 00h/80h/83h), READ CAPACITY (10)/(16), READ/WRITE (10)/(16), SYNCHRONIZE CACHE (10).
// Just enough for libiscsi tools; the real SBC implementation is iscsi/scsi/disk.ts.
import { ScsiStatus, type LogicalUnit, type ScsiRequest, type ScsiResponse } from '../../iscsi/device.js';
import { Op, ServiceActionIn16 } from '../../iscsi/scsi/constants.js';
import { buildFixedSense, Sense, type SenseCode } from '../../iscsi/scsi/sense.js';

const SYNCHRONIZE_CACHE_10 = 0x35;

function checkCondition(sense: SenseCode, fieldPointer?: number): ScsiResponse {
  return { status: ScsiStatus.CHECK_CONDITION, sense: buildFixedSense(sense, fieldPointer === undefined ? {} : { fieldPointer }) };
}

function good(dataIn?: Buffer, allocationLength?: number): ScsiResponse {
  if (dataIn === undefined) return { status: ScsiStatus.GOOD };
  return { status: ScsiStatus.GOOD, dataIn: allocationLength === undefined ? dataIn : dataIn.subarray(0, allocationLength) };
}

function padded(text: string, length: number): Buffer {
  return Buffer.from(text.padEnd(length, ' ').slice(0, length), 'ascii');
}

export class MemoryLun implements LogicalUnit {
  readonly peripheralDeviceType = 0x00;
  readonly blockSize: number;
  readonly blockCount: number;
  readonly data: Buffer;
  /** Every CDB executed, for tests that check what reached the LU. */
  readonly executed: Buffer[] = [];
  resets: string[] = [];
  lostNexuses: string[] = [];
  /** When set, execute() waits for this before answering (tests of aborts and ordering). */
  gate: Promise<void> | undefined;
  /** When set, execute() throws this (tests of the HARDWARE ERROR path). */
  failWith: Error | undefined;

  constructor(opts: { blockCount?: number; blockSize?: number } = {}) {
    this.blockSize = opts.blockSize ?? 512;
    this.blockCount = opts.blockCount ?? 2048;
    this.data = Buffer.alloc(this.blockSize * this.blockCount);
  }

  async execute(req: ScsiRequest): Promise<ScsiResponse> {
    this.executed.push(req.cdb);
    if (this.gate !== undefined) await this.gate;
    if (this.failWith !== undefined) throw this.failWith;
    const cdb = req.cdb;
    switch (cdb[0]) {
      case Op.TEST_UNIT_READY:
        return good();
      case Op.INQUIRY:
        return this.inquiry(cdb);
      case Op.READ_CAPACITY_10: {
        const d = Buffer.alloc(8);
        d.writeUInt32BE(Math.min(this.blockCount - 1, 0xffffffff), 0);
        d.writeUInt32BE(this.blockSize, 4);
        return good(d);
      }
      case Op.SERVICE_ACTION_IN_16: {
        if ((cdb[1]! & 0x1f) !== ServiceActionIn16.READ_CAPACITY_16) return checkCondition(Sense.INVALID_FIELD_IN_CDB, 1);
        const d = Buffer.alloc(32);
        d.writeBigUInt64BE(BigInt(this.blockCount - 1), 0);
        d.writeUInt32BE(this.blockSize, 8);
        return good(d, cdb.readUInt32BE(10));
      }
      case Op.READ_10:
        return this.read(cdb.readUInt32BE(2), cdb.readUInt16BE(7));
      case Op.READ_16:
        return this.read(Number(cdb.readBigUInt64BE(2)), cdb.readUInt32BE(10));
      case Op.WRITE_10:
        return this.write(cdb.readUInt32BE(2), cdb.readUInt16BE(7), req);
      case Op.WRITE_16:
        return this.write(Number(cdb.readBigUInt64BE(2)), cdb.readUInt32BE(10), req);
      case SYNCHRONIZE_CACHE_10:
        return good();
      default:
        return checkCondition(Sense.INVALID_COMMAND_OPERATION_CODE, 0);
    }
  }

  private inquiry(cdb: Buffer): ScsiResponse {
    const allocationLength = cdb.readUInt16BE(3);
    if ((cdb[1]! & 0x01) === 0) {
      const d = Buffer.alloc(36);
      d[0] = this.peripheralDeviceType;
      d[2] = 0x06; // SPC-4
      d[3] = 0x02;
      d[4] = 31;
      d[7] = 0x02; // CMDQUE
      padded('SHELFGTE', 8).copy(d, 8);
      padded('MEMORY LUN', 16).copy(d, 16);
      padded('0001', 4).copy(d, 32);
      return good(d, allocationLength);
    }
    const page = cdb[2]!;
    let body: Buffer;
    if (page === 0x00) body = Buffer.from([0x00, 0x80, 0x83]);
    else if (page === 0x80) body = Buffer.from('MEMLUN0001', 'ascii');
    else if (page === 0x83) {
      // One NAA IEEE Registered designator (SPC-4 7.8.6.6.3).
      body = Buffer.from([0x01, 0x03, 0x00, 0x08, 0x60, 0x01, 0x40, 0x50, 0x00, 0x00, 0x00, 0x01]);
    } else return checkCondition(Sense.INVALID_FIELD_IN_CDB, 2);
    const d = Buffer.alloc(4 + body.length);
    d[0] = this.peripheralDeviceType;
    d[1] = page;
    d.writeUInt16BE(body.length, 2);
    body.copy(d, 4);
    return good(d, allocationLength);
  }

  private read(lba: number, blocks: number): ScsiResponse {
    if (lba + blocks > this.blockCount) return checkCondition(Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
    return good(this.data.subarray(lba * this.blockSize, (lba + blocks) * this.blockSize));
  }

  private write(lba: number, blocks: number, req: ScsiRequest): ScsiResponse {
    if (lba + blocks > this.blockCount) return checkCondition(Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
    const lengthBytes = blocks * this.blockSize;
    const data = req.dataOut ?? Buffer.alloc(0);
    data.copy(this.data, lba * this.blockSize, 0, Math.min(lengthBytes, data.length));
    return {
      status: ScsiStatus.GOOD,
      dataOutResidual: Math.max(0, data.length - lengthBytes),
      dataOutOverflow: Math.max(0, lengthBytes - data.length),
    };
  }

  reset(kind: 'lun' | 'target-warm' | 'target-cold'): void {
    this.resets.push(kind);
  }

  nexusLost(nexusId: string): void {
    this.lostNexuses.push(nexusId);
  }
}
