// Pure decode/encode of the 48-byte Basic Header Segment for every PDU in types.ts
// (RFC 7143 11.2 common layout, 11.3–11.19 per opcode). Decoding throws only IscsiError.
//
// Common BHS (RFC 7143 11.2.1):
//   byte 0      .|I| Opcode(6)        byte 1..3  opcode-specific (F bit = 0x80 of byte 1)
//   byte 4      TotalAHSLength (4-byte words)   bytes 5..7  DataSegmentLength (24-bit)
//   bytes 8..15 LUN or opcode-specific          bytes 16..19 Initiator Task Tag
//   bytes 20..47 opcode-specific
// Reserved fields are ignored on decode (initiators differ in what they leave there) and
// written as zero on encode.

import { IscsiError } from '../errors.js';
import { AhsType, parseAhs } from './ahs.js';
import {
  Opcode,
  RESERVED_TAG,
  RejectReason,
  type AsyncMessage,
  type DataIn,
  type DataOut,
  type LoginRequest,
  type LoginResponse,
  type LogoutRequest,
  type LogoutResponse,
  type NopIn,
  type NopOut,
  type Pdu,
  type R2T,
  type Reject,
  type ScsiCommandPdu,
  type ScsiResponsePdu,
  type SnackRequest,
  type TaskMgmtRequest,
  type TaskMgmtResponse,
  type TextRequest,
  type TextResponse,
} from './types.js';

/** Length of the Basic Header Segment (RFC 7143 11.2.1). */
export const BHS_LENGTH = 48;

/** Largest DataSegmentLength the 24-bit field can carry. */
export const MAX_DATA_SEGMENT_LENGTH = 0xffffff;

/** Largest TotalAHSLength in bytes (255 four-byte words). */
export const MAX_AHS_LENGTH = 255 * 4;

const FLAG_IMMEDIATE = 0x40;
const OPCODE_MASK = 0x3f;
const FLAG_FINAL = 0x80;
const FLAG_CONTINUE = 0x40;
const CDB_IN_BHS_LENGTH = 16;
const ISID_LENGTH = 6;

/** RFC 7143 11.2.1.5 TotalAHSLength in bytes, from a BHS. */
export function totalAhsLengthBytes(bhs: Buffer): number {
  return bhs[4]! * 4;
}

/** RFC 7143 11.2.1.6 DataSegmentLength, from a BHS. */
export function dataSegmentLengthBytes(bhs: Buffer): number {
  return (bhs[5]! << 16) | (bhs[6]! << 8) | bhs[7]!;
}

/**
 * Decodes one PDU. `ahs` and `data` are taken as they are (no copy): the caller hands over
 * buffers nobody reuses. ISID and CDB are copied out of `bhs`.
 */
export function decodePdu(bhs: Buffer, ahs: Buffer, data: Buffer): Pdu {
  if (bhs.length !== BHS_LENGTH) {
    throw protocolError(`BHS is ${bhs.length} bytes, not ${BHS_LENGTH}`);
  }
  if (totalAhsLengthBytes(bhs) !== ahs.length) {
    throw protocolError(`TotalAHSLength ${totalAhsLengthBytes(bhs)} but ${ahs.length} AHS bytes`);
  }
  if (dataSegmentLengthBytes(bhs) !== data.length) {
    throw protocolError(`DataSegmentLength ${dataSegmentLengthBytes(bhs)} but ${data.length} data bytes`);
  }
  const opcode = bhs[0]! & OPCODE_MASK;
  const immediate = (bhs[0]! & FLAG_IMMEDIATE) !== 0;
  const b1 = bhs[1]!;
  const final = (b1 & FLAG_FINAL) !== 0;
  const u32 = (offset: number): number => bhs.readUInt32BE(offset);
  const lun = (): bigint => bhs.readBigUInt64BE(8);
  const base = { immediate, ahs, data };

  switch (opcode) {
    // RFC 7143 11.18 NOP-Out
    case Opcode.NOP_OUT:
      return { ...base, opcode, lun: lun(), itt: u32(16), ttt: u32(20), cmdSN: u32(24), expStatSN: u32(28) } satisfies NopOut;

    // RFC 7143 11.3 SCSI Command
    case Opcode.SCSI_COMMAND:
      return {
        ...base,
        opcode,
        final,
        read: (b1 & 0x40) !== 0,
        write: (b1 & 0x20) !== 0,
        taskAttr: b1 & 0x07,
        lun: lun(),
        itt: u32(16),
        expectedDataTransferLength: u32(20),
        cmdSN: u32(24),
        expStatSN: u32(28),
        cdb: joinCdb(bhs, ahs),
      } satisfies ScsiCommandPdu;

    // RFC 7143 11.5 Task Management Function Request
    case Opcode.TASK_MGMT_REQUEST:
      requireNoData(opcode, data);
      return {
        ...base,
        opcode,
        function: b1 & 0x7f,
        lun: lun(),
        itt: u32(16),
        referencedTaskTag: u32(20),
        cmdSN: u32(24),
        expStatSN: u32(28),
        refCmdSN: u32(32),
        expDataSN: u32(36),
      } satisfies TaskMgmtRequest;

    // RFC 7143 11.12 Login Request
    case Opcode.LOGIN_REQUEST:
      return {
        ...base,
        opcode,
        transit: (b1 & 0x80) !== 0,
        continue: (b1 & FLAG_CONTINUE) !== 0,
        csg: (b1 >> 2) & 0x03,
        nsg: b1 & 0x03,
        versionMax: bhs[2]!,
        versionMin: bhs[3]!,
        isid: Buffer.from(bhs.subarray(8, 8 + ISID_LENGTH)),
        tsih: bhs.readUInt16BE(14),
        itt: u32(16),
        cid: bhs.readUInt16BE(20),
        cmdSN: u32(24),
        expStatSN: u32(28),
      } satisfies LoginRequest;

    // RFC 7143 11.10 Text Request
    case Opcode.TEXT_REQUEST:
      return {
        ...base,
        opcode,
        final,
        continue: (b1 & FLAG_CONTINUE) !== 0,
        lun: lun(),
        itt: u32(16),
        ttt: u32(20),
        cmdSN: u32(24),
        expStatSN: u32(28),
      } satisfies TextRequest;

    // RFC 7143 11.7.1 SCSI Data-Out
    case Opcode.SCSI_DATA_OUT:
      return {
        ...base,
        opcode,
        final,
        lun: lun(),
        itt: u32(16),
        ttt: u32(20),
        expStatSN: u32(28),
        dataSN: u32(36),
        bufferOffset: u32(40),
      } satisfies DataOut;

    // RFC 7143 11.14 Logout Request
    case Opcode.LOGOUT_REQUEST:
      requireNoData(opcode, data);
      return {
        ...base,
        opcode,
        reasonCode: b1 & 0x7f,
        itt: u32(16),
        cid: bhs.readUInt16BE(20),
        cmdSN: u32(24),
        expStatSN: u32(28),
      } satisfies LogoutRequest;

    // RFC 7143 11.16 SNACK Request
    case Opcode.SNACK_REQUEST:
      requireNoData(opcode, data);
      return {
        ...base,
        opcode,
        type: b1 & 0x0f,
        lun: lun(),
        itt: u32(16),
        ttt: u32(20),
        expStatSN: u32(28),
        begRun: u32(40),
        runLength: u32(44),
      } satisfies SnackRequest;

    // RFC 7143 11.19 NOP-In
    case Opcode.NOP_IN:
      return {
        ...base,
        opcode,
        lun: lun(),
        itt: u32(16),
        ttt: u32(20),
        statSN: u32(24),
        expCmdSN: u32(28),
        maxCmdSN: u32(32),
      } satisfies NopIn;

    // RFC 7143 11.4 SCSI Response
    case Opcode.SCSI_RESPONSE:
      return {
        ...base,
        opcode,
        bidiOverflow: (b1 & 0x10) !== 0,
        bidiUnderflow: (b1 & 0x08) !== 0,
        overflow: (b1 & 0x04) !== 0,
        underflow: (b1 & 0x02) !== 0,
        response: bhs[2]!,
        status: bhs[3]!,
        itt: u32(16),
        snackTag: u32(20),
        statSN: u32(24),
        expCmdSN: u32(28),
        maxCmdSN: u32(32),
        expDataSN: u32(36),
        bidiResidualCount: u32(40),
        residualCount: u32(44),
      } satisfies ScsiResponsePdu;

    // RFC 7143 11.6 Task Management Function Response
    case Opcode.TASK_MGMT_RESPONSE:
      requireNoData(opcode, data);
      return {
        ...base,
        opcode,
        response: bhs[2]!,
        itt: u32(16),
        statSN: u32(24),
        expCmdSN: u32(28),
        maxCmdSN: u32(32),
      } satisfies TaskMgmtResponse;

    // RFC 7143 11.13 Login Response
    case Opcode.LOGIN_RESPONSE:
      return {
        ...base,
        opcode,
        transit: (b1 & 0x80) !== 0,
        continue: (b1 & FLAG_CONTINUE) !== 0,
        csg: (b1 >> 2) & 0x03,
        nsg: b1 & 0x03,
        versionMax: bhs[2]!,
        versionActive: bhs[3]!,
        isid: Buffer.from(bhs.subarray(8, 8 + ISID_LENGTH)),
        tsih: bhs.readUInt16BE(14),
        itt: u32(16),
        statSN: u32(24),
        expCmdSN: u32(28),
        maxCmdSN: u32(32),
        statusClass: bhs[36]!,
        statusDetail: bhs[37]!,
      } satisfies LoginResponse;

    // RFC 7143 11.11 Text Response
    case Opcode.TEXT_RESPONSE:
      return {
        ...base,
        opcode,
        final,
        continue: (b1 & FLAG_CONTINUE) !== 0,
        lun: lun(),
        itt: u32(16),
        ttt: u32(20),
        statSN: u32(24),
        expCmdSN: u32(28),
        maxCmdSN: u32(32),
      } satisfies TextResponse;

    // RFC 7143 11.7.1 SCSI Data-In
    case Opcode.SCSI_DATA_IN:
      return {
        ...base,
        opcode,
        final,
        acknowledge: (b1 & 0x40) !== 0,
        overflow: (b1 & 0x04) !== 0,
        underflow: (b1 & 0x02) !== 0,
        statusPresent: (b1 & 0x01) !== 0,
        status: bhs[3]!,
        lun: lun(),
        itt: u32(16),
        ttt: u32(20),
        statSN: u32(24),
        expCmdSN: u32(28),
        maxCmdSN: u32(32),
        dataSN: u32(36),
        bufferOffset: u32(40),
        residualCount: u32(44),
      } satisfies DataIn;

    // RFC 7143 11.15 Logout Response
    case Opcode.LOGOUT_RESPONSE:
      requireNoData(opcode, data);
      return {
        ...base,
        opcode,
        response: bhs[2]!,
        itt: u32(16),
        statSN: u32(24),
        expCmdSN: u32(28),
        maxCmdSN: u32(32),
        time2Wait: bhs.readUInt16BE(40),
        time2Retain: bhs.readUInt16BE(42),
      } satisfies LogoutResponse;

    // RFC 7143 11.8 Ready To Transfer
    case Opcode.R2T:
      requireNoData(opcode, data);
      return {
        ...base,
        opcode,
        lun: lun(),
        itt: u32(16),
        ttt: u32(20),
        statSN: u32(24),
        expCmdSN: u32(28),
        maxCmdSN: u32(32),
        r2tSN: u32(36),
        bufferOffset: u32(40),
        desiredDataTransferLength: u32(44),
      } satisfies R2T;

    // RFC 7143 11.9 Asynchronous Message
    case Opcode.ASYNC_MESSAGE:
      return {
        ...base,
        opcode,
        lun: lun(),
        statSN: u32(24),
        expCmdSN: u32(28),
        maxCmdSN: u32(32),
        asyncEvent: bhs[36]!,
        asyncVCode: bhs[37]!,
        parameter1: bhs.readUInt16BE(38),
        parameter2: bhs.readUInt16BE(40),
        parameter3: bhs.readUInt16BE(42),
      } satisfies AsyncMessage;

    // RFC 7143 11.17 Reject
    case Opcode.REJECT:
      return {
        ...base,
        opcode,
        reason: bhs[2]!,
        statSN: u32(24),
        expCmdSN: u32(28),
        maxCmdSN: u32(32),
        dataSN: u32(36),
      } satisfies Reject;

    default:
      // RFC 7143 11.17.1: an opcode the target does not know is rejected as "command not supported".
      throw new IscsiError('ISCSI_UNSUPPORTED_OPCODE', `unsupported opcode 0x${opcode.toString(16)}`, {
        rejectReason: RejectReason.COMMAND_NOT_SUPPORTED,
      });
  }
}

/**
 * Encodes the 48-byte BHS of `pdu`, with TotalAHSLength taken from `pdu.ahs` and
 * DataSegmentLength from `pdu.data`, or from `dataSegmentLength` when the data segment is sent as
 * separate buffers (the header-only path of serializePduParts: `pdu.data` is then not looked at).
 * A SCSI Command with a CDB longer than 16 bytes must carry its Extended CDB AHS in `pdu.ahs`
 * (see extendedCdbAhs). Numeric fields are truncated to their wire width (serial numbers wrap
 * modulo 2^32).
 */
export function encodeBhs(pdu: Pdu, dataSegmentLength: number = pdu.data.length): Buffer {
  const bhs = Buffer.alloc(BHS_LENGTH);
  if (pdu.ahs.length % 4 !== 0 || pdu.ahs.length > MAX_AHS_LENGTH) {
    throw new RangeError(`AHS length ${pdu.ahs.length} is not a multiple of 4 up to ${MAX_AHS_LENGTH}`);
  }
  if (dataSegmentLength > MAX_DATA_SEGMENT_LENGTH) {
    throw new RangeError(`data segment of ${dataSegmentLength} bytes exceeds ${MAX_DATA_SEGMENT_LENGTH}`);
  }
  bhs[0] = (pdu.immediate ? FLAG_IMMEDIATE : 0) | pdu.opcode;
  bhs[4] = pdu.ahs.length / 4;
  // RFC 7143 11.2.1.6 DataSegmentLength (24 bits).
  bhs[5] = dataSegmentLength >>> 16;
  bhs[6] = (dataSegmentLength >>> 8) & 0xff;
  bhs[7] = dataSegmentLength & 0xff;
  const u32 = (offset: number, value: number): void => {
    bhs.writeUInt32BE(value >>> 0, offset);
  };
  const u16 = (offset: number, value: number): void => {
    bhs.writeUInt16BE(value & 0xffff, offset);
  };
  const u8 = (offset: number, value: number): void => {
    bhs[offset] = value & 0xff;
  };
  const lun = (value: bigint): void => {
    bhs.writeBigUInt64BE(BigInt.asUintN(64, value), 8);
  };
  const flag = (on: boolean, bit: number): number => (on ? bit : 0);

  switch (pdu.opcode) {
    case Opcode.NOP_OUT:
      bhs[1] = FLAG_FINAL;
      lun(pdu.lun);
      u32(16, pdu.itt);
      u32(20, pdu.ttt);
      u32(24, pdu.cmdSN);
      u32(28, pdu.expStatSN);
      break;
    case Opcode.SCSI_COMMAND:
      bhs[1] = flag(pdu.final, FLAG_FINAL) | flag(pdu.read, 0x40) | flag(pdu.write, 0x20) | (pdu.taskAttr & 0x07);
      lun(pdu.lun);
      u32(16, pdu.itt);
      u32(20, pdu.expectedDataTransferLength);
      u32(24, pdu.cmdSN);
      u32(28, pdu.expStatSN);
      if (pdu.cdb.length > CDB_IN_BHS_LENGTH && pdu.ahs.length === 0) {
        throw new RangeError(`a ${pdu.cdb.length}-byte CDB needs an Extended CDB AHS`);
      }
      pdu.cdb.copy(bhs, 32, 0, Math.min(pdu.cdb.length, CDB_IN_BHS_LENGTH));
      break;
    case Opcode.TASK_MGMT_REQUEST:
      bhs[1] = FLAG_FINAL | (pdu.function & 0x7f);
      lun(pdu.lun);
      u32(16, pdu.itt);
      u32(20, pdu.referencedTaskTag);
      u32(24, pdu.cmdSN);
      u32(28, pdu.expStatSN);
      u32(32, pdu.refCmdSN);
      u32(36, pdu.expDataSN);
      break;
    case Opcode.LOGIN_REQUEST:
      bhs[1] = flag(pdu.transit, 0x80) | flag(pdu.continue, FLAG_CONTINUE) | ((pdu.csg & 3) << 2) | (pdu.nsg & 3);
      u8(2, pdu.versionMax);
      u8(3, pdu.versionMin);
      pdu.isid.copy(bhs, 8, 0, ISID_LENGTH);
      u16(14, pdu.tsih);
      u32(16, pdu.itt);
      u16(20, pdu.cid);
      u32(24, pdu.cmdSN);
      u32(28, pdu.expStatSN);
      break;
    case Opcode.TEXT_REQUEST:
      bhs[1] = flag(pdu.final, FLAG_FINAL) | flag(pdu.continue, FLAG_CONTINUE);
      lun(pdu.lun);
      u32(16, pdu.itt);
      u32(20, pdu.ttt);
      u32(24, pdu.cmdSN);
      u32(28, pdu.expStatSN);
      break;
    case Opcode.SCSI_DATA_OUT:
      bhs[1] = flag(pdu.final, FLAG_FINAL);
      lun(pdu.lun);
      u32(16, pdu.itt);
      u32(20, pdu.ttt);
      u32(28, pdu.expStatSN);
      u32(36, pdu.dataSN);
      u32(40, pdu.bufferOffset);
      break;
    case Opcode.LOGOUT_REQUEST:
      bhs[1] = FLAG_FINAL | (pdu.reasonCode & 0x7f);
      u32(16, pdu.itt);
      u16(20, pdu.cid);
      u32(24, pdu.cmdSN);
      u32(28, pdu.expStatSN);
      break;
    case Opcode.SNACK_REQUEST:
      bhs[1] = FLAG_FINAL | (pdu.type & 0x0f);
      lun(pdu.lun);
      u32(16, pdu.itt);
      u32(20, pdu.ttt);
      u32(28, pdu.expStatSN);
      u32(40, pdu.begRun);
      u32(44, pdu.runLength);
      break;
    case Opcode.NOP_IN:
      bhs[1] = FLAG_FINAL;
      lun(pdu.lun);
      u32(16, pdu.itt);
      u32(20, pdu.ttt);
      u32(24, pdu.statSN);
      u32(28, pdu.expCmdSN);
      u32(32, pdu.maxCmdSN);
      break;
    case Opcode.SCSI_RESPONSE:
      bhs[1] =
        FLAG_FINAL |
        flag(pdu.bidiOverflow, 0x10) |
        flag(pdu.bidiUnderflow, 0x08) |
        flag(pdu.overflow, 0x04) |
        flag(pdu.underflow, 0x02);
      u8(2, pdu.response);
      u8(3, pdu.status);
      u32(16, pdu.itt);
      u32(20, pdu.snackTag);
      u32(24, pdu.statSN);
      u32(28, pdu.expCmdSN);
      u32(32, pdu.maxCmdSN);
      u32(36, pdu.expDataSN);
      u32(40, pdu.bidiResidualCount);
      u32(44, pdu.residualCount);
      break;
    case Opcode.TASK_MGMT_RESPONSE:
      bhs[1] = FLAG_FINAL;
      u8(2, pdu.response);
      u32(16, pdu.itt);
      u32(24, pdu.statSN);
      u32(28, pdu.expCmdSN);
      u32(32, pdu.maxCmdSN);
      break;
    case Opcode.LOGIN_RESPONSE:
      bhs[1] = flag(pdu.transit, 0x80) | flag(pdu.continue, FLAG_CONTINUE) | ((pdu.csg & 3) << 2) | (pdu.nsg & 3);
      u8(2, pdu.versionMax);
      u8(3, pdu.versionActive);
      pdu.isid.copy(bhs, 8, 0, ISID_LENGTH);
      u16(14, pdu.tsih);
      u32(16, pdu.itt);
      u32(24, pdu.statSN);
      u32(28, pdu.expCmdSN);
      u32(32, pdu.maxCmdSN);
      u8(36, pdu.statusClass);
      u8(37, pdu.statusDetail);
      break;
    case Opcode.TEXT_RESPONSE:
      bhs[1] = flag(pdu.final, FLAG_FINAL) | flag(pdu.continue, FLAG_CONTINUE);
      lun(pdu.lun);
      u32(16, pdu.itt);
      u32(20, pdu.ttt);
      u32(24, pdu.statSN);
      u32(28, pdu.expCmdSN);
      u32(32, pdu.maxCmdSN);
      break;
    case Opcode.SCSI_DATA_IN:
      bhs[1] =
        flag(pdu.final, FLAG_FINAL) |
        flag(pdu.acknowledge, 0x40) |
        flag(pdu.overflow, 0x04) |
        flag(pdu.underflow, 0x02) |
        flag(pdu.statusPresent, 0x01);
      u8(3, pdu.status);
      lun(pdu.lun);
      u32(16, pdu.itt);
      u32(20, pdu.ttt);
      u32(24, pdu.statSN);
      u32(28, pdu.expCmdSN);
      u32(32, pdu.maxCmdSN);
      u32(36, pdu.dataSN);
      u32(40, pdu.bufferOffset);
      u32(44, pdu.residualCount);
      break;
    case Opcode.LOGOUT_RESPONSE:
      bhs[1] = FLAG_FINAL;
      u8(2, pdu.response);
      u32(16, pdu.itt);
      u32(24, pdu.statSN);
      u32(28, pdu.expCmdSN);
      u32(32, pdu.maxCmdSN);
      u16(40, pdu.time2Wait);
      u16(42, pdu.time2Retain);
      break;
    case Opcode.R2T:
      bhs[1] = FLAG_FINAL;
      lun(pdu.lun);
      u32(16, pdu.itt);
      u32(20, pdu.ttt);
      u32(24, pdu.statSN);
      u32(28, pdu.expCmdSN);
      u32(32, pdu.maxCmdSN);
      u32(36, pdu.r2tSN);
      u32(40, pdu.bufferOffset);
      u32(44, pdu.desiredDataTransferLength);
      break;
    case Opcode.ASYNC_MESSAGE:
      bhs[1] = FLAG_FINAL;
      lun(pdu.lun);
      u32(16, RESERVED_TAG);
      u32(24, pdu.statSN);
      u32(28, pdu.expCmdSN);
      u32(32, pdu.maxCmdSN);
      u8(36, pdu.asyncEvent);
      u8(37, pdu.asyncVCode);
      u16(38, pdu.parameter1);
      u16(40, pdu.parameter2);
      u16(42, pdu.parameter3);
      break;
    case Opcode.REJECT:
      bhs[1] = FLAG_FINAL;
      u8(2, pdu.reason);
      u32(16, RESERVED_TAG);
      u32(24, pdu.statSN);
      u32(28, pdu.expCmdSN);
      u32(32, pdu.maxCmdSN);
      u32(36, pdu.dataSN);
      break;
  }
  return bhs;
}

/** RFC 7143 11.2.2.3: the CDB is the 16 BHS bytes followed by an Extended CDB AHS, if any. */
function joinCdb(bhs: Buffer, ahs: Buffer): Buffer {
  const head = bhs.subarray(32, 32 + CDB_IN_BHS_LENGTH);
  if (ahs.length === 0) return Buffer.from(head);
  let extension: Buffer | undefined;
  for (const entry of parseAhs(ahs)) {
    if (entry.type !== AhsType.EXTENDED_CDB) continue;
    if (extension !== undefined) {
      throw new IscsiError('ISCSI_INVALID_PDU_FIELD', 'more than one Extended CDB AHS', {
        rejectReason: RejectReason.INVALID_PDU_FIELD,
      });
    }
    extension = entry.body;
  }
  return extension === undefined ? Buffer.from(head) : Buffer.concat([head, extension]);
}

/** RFC 7143 11.5, 11.6, 11.8, 11.14, 11.15, 11.16: these PDUs have DataSegmentLength 0. */
function requireNoData(opcode: number, data: Buffer): void {
  if (data.length !== 0) {
    throw new IscsiError('ISCSI_INVALID_PDU_FIELD', `opcode 0x${opcode.toString(16)} carries no data segment`, {
      rejectReason: RejectReason.INVALID_PDU_FIELD,
    });
  }
}

function protocolError(message: string): IscsiError {
  return new IscsiError('ISCSI_PROTOCOL', message, { rejectReason: RejectReason.PROTOCOL_ERROR });
}
