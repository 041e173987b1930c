// SPC-4 primary commands shared by every device type: INQUIRY, TEST UNIT READY, REQUEST SENSE,
// MODE SENSE/SELECT(6/10), REPORT SUPPORTED OPERATION CODES, RESERVE/RELEASE(6), PERSISTENT
// RESERVE IN/OUT. `spcOps()` returns their op table entries; device types add their own.

import type { ScsiResponse } from '../device.js';
import { asciiField, invalidFieldInCdb, invalidFieldInParameterList, truncateToAllocationLength } from './cdb.js';
import { MaintenanceIn, Op, PrInAction, PrOutAction } from './constants.js';
import { defineOp, good, type CommandContext, type OpEntry } from './dispatcher.js';
import { ALL_PAGES, ALL_SUBPAGES } from './mode-pages.js';
import type { PrOutCommand } from './persistent-reservations.js';
import { buildSense, Sense, SenseError } from './sense.js';
import { VpdPageCode } from './vpd.js';

const CONTROL = 0x07; // NACA, obsolete, LINK bits of the CONTROL byte, as usage data

// ---- INQUIRY (SPC-4 6.6) ----------------------------------------------------------------------

interface InquiryCommand {
  evpd: boolean;
  pageCode: number;
  allocationLength: number;
}

export function decodeInquiry(cdb: Buffer): InquiryCommand {
  if (cdb[1]! & 0x02) throw invalidFieldInCdb(1, 1); // CmdDt (obsolete)
  const evpd = (cdb[1]! & 0x01) !== 0;
  const pageCode = cdb[2]!;
  if (!evpd && pageCode !== 0) throw invalidFieldInCdb(2);
  return { evpd, pageCode, allocationLength: cdb.readUInt16BE(3) };
}

/** SPC-4 6.6.2 standard INQUIRY data, 96 bytes. */
function standardInquiryData<D>(ctx: CommandContext<D>): Buffer {
  const lu = ctx.lu;
  const buf = Buffer.alloc(96);
  buf[0] = lu.peripheralDeviceType & 0x1f; // PERIPHERAL QUALIFIER 000b
  buf[1] = 0x00; // RMB 0
  buf[2] = 0x06; // VERSION: SPC-4
  buf[3] = 0x10 | 0x02; // HISUP, RESPONSE DATA FORMAT 2
  buf[4] = buf.length - 5; // ADDITIONAL LENGTH
  buf[5] = 0x00; // TPGS 00b, no 3PC, no PROTECT
  buf[6] = 0x00;
  buf[7] = 0x02; // CMDQUE
  asciiField(lu.identity.vendor, 8).copy(buf, 8);
  asciiField(lu.identity.product, 16).copy(buf, 16);
  asciiField(lu.identity.revision, 4).copy(buf, 32);
  lu.versionDescriptors.slice(0, 8).forEach((v, i) => buf.writeUInt16BE(v, 58 + 2 * i));
  return buf;
}

function vpdPage<D>(ctx: CommandContext<D>, pageCode: number): Buffer {
  const lu = ctx.lu;
  let body: Buffer;
  if (pageCode === VpdPageCode.SUPPORTED_VPD_PAGES) {
    // SPC-4 7.8.13
    body = Buffer.from([VpdPageCode.SUPPORTED_VPD_PAGES, ...lu.vpdPages.map((p) => p.pageCode)]);
  } else {
    const page = lu.vpdPages.find((p) => p.pageCode === pageCode);
    if (!page) throw invalidFieldInCdb(2);
    body = page.build(ctx);
  }
  const header = Buffer.alloc(4);
  header[0] = lu.peripheralDeviceType & 0x1f;
  header[1] = pageCode;
  header.writeUInt16BE(body.length, 2);
  return Buffer.concat([header, body]);
}

export function spcInquiry<D>(ctx: CommandContext<D>, cmd: InquiryCommand): ScsiResponse {
  const data = cmd.evpd ? vpdPage(ctx, cmd.pageCode) : standardInquiryData(ctx);
  return good(truncateToAllocationLength(data, cmd.allocationLength));
}

// ---- TEST UNIT READY (SPC-4 6.37) / REQUEST SENSE (SPC-4 6.29) ---------------------------------

interface RequestSenseCommand {
  descriptorFormat: boolean;
  allocationLength: number;
}

export function decodeRequestSense(cdb: Buffer): RequestSenseCommand {
  return { descriptorFormat: (cdb[1]! & 0x01) !== 0, allocationLength: cdb[4]! };
}

/** Returns (and clears) the pending unit attention, else NO SENSE; GOOD status either way. */
export function spcRequestSense<D>(ctx: CommandContext<D>, cmd: RequestSenseCommand): ScsiResponse {
  const pending = ctx.lu.unitAttentions.take(ctx.nexus.id) ?? Sense.NO_ADDITIONAL_SENSE_INFORMATION;
  return good(truncateToAllocationLength(buildSense(pending, {}, cmd.descriptorFormat), cmd.allocationLength));
}

// ---- MODE SENSE(6/10) (SPC-4 6.12, 6.13) ------------------------------------------------------

interface ModeSenseCommand {
  tenByte: boolean;
  dbd: boolean;
  llbaa: boolean;
  pc: number;
  pageCode: number;
  subpageCode: number;
  allocationLength: number;
}

export function decodeModeSense6(cdb: Buffer): ModeSenseCommand {
  return {
    tenByte: false,
    dbd: (cdb[1]! & 0x08) !== 0,
    llbaa: false,
    pc: cdb[2]! >> 6,
    pageCode: cdb[2]! & 0x3f,
    subpageCode: cdb[3]!,
    allocationLength: cdb[4]!,
  };
}

export function decodeModeSense10(cdb: Buffer): ModeSenseCommand {
  return {
    tenByte: true,
    dbd: (cdb[1]! & 0x08) !== 0,
    llbaa: (cdb[1]! & 0x10) !== 0,
    pc: cdb[2]! >> 6,
    pageCode: cdb[2]! & 0x3f,
    subpageCode: cdb[3]!,
    allocationLength: cdb.readUInt16BE(7),
  };
}

export function spcModeSense<D>(ctx: CommandContext<D>, cmd: ModeSenseCommand): ScsiResponse {
  const lu = ctx.lu;
  const headerOnly = cmd.pageCode === 0x00 && cmd.subpageCode === 0 && lu.modeHeader.pageZeroIsHeaderOnly === true;
  const pages = headerOnly ? [] : lu.modePages.sense(cmd.pageCode, cmd.subpageCode, cmd.pc);
  if (!pages) {
    if (cmd.pageCode !== ALL_PAGES && lu.modePages.sense(cmd.pageCode, ALL_SUBPAGES, cmd.pc)) throw invalidFieldInCdb(3);
    throw invalidFieldInCdb(2, 5);
  }
  const longLba = cmd.tenByte && cmd.llbaa;
  const blockDescriptor = !cmd.dbd && lu.modeHeader.blockDescriptor ? lu.modeHeader.blockDescriptor(longLba) : Buffer.alloc(0);
  const header = Buffer.alloc(cmd.tenByte ? 8 : 4);
  const total = header.length + blockDescriptor.length + pages.reduce((n, p) => n + p.length, 0);
  const dsp = lu.modeHeader.deviceSpecificParameter();
  if (cmd.tenByte) {
    header.writeUInt16BE(total - 2, 0); // MODE DATA LENGTH
    header[3] = dsp;
    header[4] = longLba && blockDescriptor.length > 0 ? 0x01 : 0x00; // LONGLBA
    header.writeUInt16BE(blockDescriptor.length, 6);
  } else {
    header[0] = total - 1;
    header[2] = dsp;
    header[3] = blockDescriptor.length;
  }
  const data = Buffer.concat([header, blockDescriptor, ...pages]);
  return good(truncateToAllocationLength(data, cmd.allocationLength));
}

// ---- MODE SELECT(6/10) (SPC-4 6.10, 6.11) -----------------------------------------------------

interface ModeSelectCommand {
  tenByte: boolean;
  /** SP: save pages. */
  savePages: boolean;
  parameterListLength: number;
}

function decodeModeSelect(cdb: Buffer, tenByte: boolean): ModeSelectCommand {
  const parameterListLength = tenByte ? cdb.readUInt16BE(7) : cdb[4]!;
  if ((cdb[1]! & 0x10) === 0 && parameterListLength > 0) throw invalidFieldInCdb(1, 4); // PF: only SPC pages
  return { tenByte, savePages: (cdb[1]! & 0x01) !== 0, parameterListLength };
}

export const decodeModeSelect6 = (cdb: Buffer): ModeSelectCommand => decodeModeSelect(cdb, false);
export const decodeModeSelect10 = (cdb: Buffer): ModeSelectCommand => decodeModeSelect(cdb, true);

/** The mode pages of a MODE SELECT parameter list after its header and block descriptors have
 *  been checked (SPC-4 7.5.5, 7.5.6), as the list and the offset of its first page; null when the
 *  command carries no parameter list. */
function modeSelectPages<D>(ctx: CommandContext<D>, cmd: ModeSelectCommand): { list: Buffer; offset: number } | null {
  const lu = ctx.lu;
  // SPC-4 6.10: SP = 1 on a logical unit that implements no saved pages is INVALID FIELD IN CDB.
  // Where some page is saveable (the disk's caching page, see mode-pages.ts), SP = 1 saves the
  // saveable pages sent — their saved values are their current ones — and changes the others'
  // current values only.
  if (cmd.savePages && !lu.modePages.savesAny) throw invalidFieldInCdb(1, 0);
  if (cmd.parameterListLength === 0) return null;
  const data = ctx.req.dataOut ?? Buffer.alloc(0);
  const headerLength = cmd.tenByte ? 8 : 4;
  if (data.length < cmd.parameterListLength || cmd.parameterListLength < headerLength) {
    throw new SenseError(Sense.PARAMETER_LIST_LENGTH_ERROR);
  }
  const list = data.subarray(0, cmd.parameterListLength);
  // SPC-4 7.5.5: MODE DATA LENGTH is reserved in MODE SELECT parameter data.
  if ((cmd.tenByte ? list.readUInt16BE(0) : list[0]!) !== 0) throw invalidFieldInParameterList(0);
  const blockDescriptorLength = cmd.tenByte ? list.readUInt16BE(6) : list[3]!;
  if (headerLength + blockDescriptorLength > list.length) throw new SenseError(Sense.PARAMETER_LIST_LENGTH_ERROR);
  if (blockDescriptorLength > 0) {
    const check = lu.modeHeader.checkBlockDescriptor;
    if (!check) throw invalidFieldInParameterList(cmd.tenByte ? 6 : 3);
    const longLba = cmd.tenByte && (list[4]! & 0x01) !== 0;
    const size = longLba ? 16 : 8;
    if (blockDescriptorLength % size !== 0) throw invalidFieldInParameterList(cmd.tenByte ? 6 : 3);
    for (let off = headerLength; off < headerLength + blockDescriptorLength; off += size) {
      check(list.subarray(off, off + size), off);
    }
  }
  return { list, offset: headerLength + blockDescriptorLength };
}

/** MODE SELECT for logical units whose mode pages are not device-backed (e.g. the tape drive's
 *  sscModeSelect); spcModeSelectAsync is the general form the SPC op table uses. */
export function spcModeSelect<D>(ctx: CommandContext<D>, cmd: ModeSelectCommand): ScsiResponse {
  const pages = modeSelectPages(ctx, cmd);
  if (pages !== null && ctx.lu.modePages.select(pages.list, pages.offset)) {
    // SPC-4 6.11: other I_T nexuses learn of the change by a unit attention.
    ctx.lu.unitAttentions.establishForAll(Sense.MODE_PARAMETERS_CHANGED, ctx.nexus.id);
  }
  return good();
}

/** MODE SELECT(6/10) (SPC-4 6.10, 6.11), device-backed page fields (the caching page's WCE) included. */
export async function spcModeSelectAsync<D>(ctx: CommandContext<D>, cmd: ModeSelectCommand): Promise<ScsiResponse> {
  const pages = modeSelectPages(ctx, cmd);
  if (pages !== null && (await ctx.lu.modePages.selectAsync(pages.list, pages.offset))) {
    // SPC-4 6.11: other I_T nexuses learn of the change by a unit attention.
    ctx.lu.unitAttentions.establishForAll(Sense.MODE_PARAMETERS_CHANGED, ctx.nexus.id);
  }
  return good();
}

// ---- REPORT SUPPORTED OPERATION CODES (SPC-4 6.35) ---------------------------------------------

interface ReportSupportedOpcodesCommand {
  rctd: boolean;
  reportingOptions: number;
  requestedOpcode: number;
  requestedServiceAction: number;
  allocationLength: number;
}

export function decodeReportSupportedOpcodes(cdb: Buffer): ReportSupportedOpcodesCommand {
  const reportingOptions = cdb[2]! & 0x07;
  if (reportingOptions > 3) throw invalidFieldInCdb(2, 2);
  return {
    rctd: (cdb[2]! & 0x80) !== 0,
    reportingOptions,
    requestedOpcode: cdb[3]!,
    requestedServiceAction: cdb.readUInt16BE(4),
    allocationLength: cdb.readUInt32BE(6),
  };
}

/** SPC-4 6.35.4 command timeouts descriptor. */
function timeoutsDescriptor<D>(e: OpEntry<D>): Buffer {
  const buf = Buffer.alloc(12);
  buf.writeUInt16BE(0x0a, 0);
  buf.writeUInt32BE(e.nominalTimeoutSec ?? 0, 4);
  buf.writeUInt32BE(e.recommendedTimeoutSec ?? 0, 8);
  return buf;
}

export function spcReportSupportedOpcodes<D>(ctx: CommandContext<D>, cmd: ReportSupportedOpcodesCommand): ScsiResponse {
  const table = ctx.lu.opTable;
  let data: Buffer;
  if (cmd.reportingOptions === 0) {
    // SPC-4 6.35.2 all_commands parameter data
    const descriptors = table.entries.map((e) => {
      const d = Buffer.alloc(8);
      d[0] = e.opcode;
      d.writeUInt16BE(e.serviceAction ?? 0, 2);
      d[5] = (cmd.rctd ? 0x02 : 0) | (e.serviceAction !== undefined ? 0x01 : 0); // CTDP, SERVACTV
      d.writeUInt16BE(e.usage.length, 6);
      return cmd.rctd ? Buffer.concat([d, timeoutsDescriptor(e)]) : d;
    });
    const body = Buffer.concat(descriptors);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(body.length, 0);
    data = Buffer.concat([header, body]);
  } else {
    // SPC-4 6.35.3 one_command parameter data
    const hasActions = table.hasServiceActions(cmd.requestedOpcode);
    let entry: OpEntry<D> | undefined;
    if (cmd.reportingOptions === 1) {
      if (hasActions) throw invalidFieldInCdb(2, 2);
      entry = table.find(cmd.requestedOpcode);
    } else if (cmd.reportingOptions === 2) {
      if (!hasActions && table.find(cmd.requestedOpcode)) throw invalidFieldInCdb(2, 2);
      entry = table.find(cmd.requestedOpcode, cmd.requestedServiceAction);
    } else {
      entry = hasActions ? table.find(cmd.requestedOpcode, cmd.requestedServiceAction) : table.find(cmd.requestedOpcode);
    }
    const head = Buffer.alloc(4);
    if (!entry) {
      head[1] = 0x01; // SUPPORT 001b: not supported
      data = head;
    } else {
      head[1] = (cmd.rctd ? 0x80 : 0) | 0x03; // CTDP, SUPPORT 011b: supported per standard
      head.writeUInt16BE(entry.usage.length, 2);
      const parts: Buffer[] = [head, Buffer.from(entry.usage)];
      if (cmd.rctd) parts.push(timeoutsDescriptor(entry));
      data = Buffer.concat(parts);
    }
  }
  return good(truncateToAllocationLength(data, cmd.allocationLength));
}

// ---- RESERVE(6) / RELEASE(6) (SPC-2 7.21, 7.17) -------------------------------------------------

function decodeReserveRelease6(cdb: Buffer): null {
  // Third-party and extent reservations are obsolete (SPC-2 7.21.1).
  if (cdb[1]! & 0x1f) throw invalidFieldInCdb(1);
  return null;
}

// ---- PERSISTENT RESERVE IN / OUT (SPC-4 6.15, 6.16) --------------------------------------------

interface PrInCommand {
  serviceAction: number;
  allocationLength: number;
}

export function decodePrIn(cdb: Buffer): PrInCommand {
  return { serviceAction: cdb[1]! & 0x1f, allocationLength: cdb.readUInt16BE(7) };
}

export function decodePrOut(cdb: Buffer): PrOutCommand {
  return {
    serviceAction: cdb[1]! & 0x1f,
    scope: cdb[2]! >> 4,
    type: cdb[2]! & 0x0f,
    parameterListLength: cdb.readUInt32BE(5),
  };
}

export function spcPersistentReserveIn<D>(ctx: CommandContext<D>, cmd: PrInCommand): ScsiResponse {
  return good(truncateToAllocationLength(ctx.lu.reservations.prIn(cmd.serviceAction), cmd.allocationLength));
}

export function spcPersistentReserveOut<D>(ctx: CommandContext<D>, cmd: PrOutCommand): ScsiResponse {
  const lu = ctx.lu;
  const data = ctx.req.dataOut ?? Buffer.alloc(0);
  lu.reservations.prOut(ctx.nexus, cmd, data.subarray(0, cmd.parameterListLength), (it, sense) =>
    lu.establishForItNexus(it, sense),
  );
  return good();
}

// ---- the op table entries ---------------------------------------------------------------------

const none = (): null => null;

/** SPC-4 commands every device type supports. */
export function spcOps<D>(): OpEntry<D>[] {
  const prIn = (serviceAction: number, name: string): OpEntry<D> =>
    defineOp<D, PrInCommand>({
      name: `PERSISTENT RESERVE IN / ${name}`,
      opcode: Op.PERSISTENT_RESERVE_IN,
      serviceAction,
      dataDirection: 'in',
      access: 'allowed',
      allowedUnderSpc2Reservation: true,
      usage: [Op.PERSISTENT_RESERVE_IN, serviceAction, 0, 0, 0, 0, 0, 0xff, 0xff, CONTROL],
      decode: decodePrIn,
      execute: spcPersistentReserveIn,
    });
  const prOut = (serviceAction: number, name: string): OpEntry<D> =>
    defineOp<D, PrOutCommand>({
      name: `PERSISTENT RESERVE OUT / ${name}`,
      opcode: Op.PERSISTENT_RESERVE_OUT,
      serviceAction,
      dataDirection: 'out',
      access: 'allowed', // SPC-4 5.9.1: PERSISTENT RESERVE OUT applies its own rules
      usage: [Op.PERSISTENT_RESERVE_OUT, serviceAction, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, CONTROL],
      decode: decodePrOut,
      execute: spcPersistentReserveOut,
    });
  return [
    defineOp<D, null>({
      name: 'TEST UNIT READY',
      opcode: Op.TEST_UNIT_READY,
      dataDirection: 'none',
      access: 'allowed',
      needsMedium: true,
      usage: [Op.TEST_UNIT_READY, 0, 0, 0, 0, CONTROL],
      decode: none,
      execute: () => good(),
    }),
    defineOp<D, RequestSenseCommand>({
      name: 'REQUEST SENSE',
      opcode: Op.REQUEST_SENSE,
      dataDirection: 'in',
      access: 'allowed',
      allowedUnderSpc2Reservation: true,
      bypassesUnitAttention: true,
      usage: [Op.REQUEST_SENSE, 0x01, 0, 0, 0xff, CONTROL],
      decode: decodeRequestSense,
      execute: spcRequestSense,
    }),
    defineOp<D, InquiryCommand>({
      name: 'INQUIRY',
      opcode: Op.INQUIRY,
      dataDirection: 'in',
      access: 'allowed',
      allowedUnderSpc2Reservation: true,
      bypassesUnitAttention: true,
      usage: [Op.INQUIRY, 0x01, 0xff, 0xff, 0xff, CONTROL],
      decode: decodeInquiry,
      execute: spcInquiry,
    }),
    defineOp<D, ModeSelectCommand>({
      name: 'MODE SELECT(6)',
      opcode: Op.MODE_SELECT_6,
      dataDirection: 'out',
      access: 'write',
      usage: [Op.MODE_SELECT_6, 0x11, 0, 0, 0xff, CONTROL],
      decode: decodeModeSelect6,
      execute: spcModeSelectAsync,
    }),
    defineOp<D, ModeSelectCommand>({
      name: 'MODE SELECT(10)',
      opcode: Op.MODE_SELECT_10,
      dataDirection: 'out',
      access: 'write',
      usage: [Op.MODE_SELECT_10, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, CONTROL],
      decode: decodeModeSelect10,
      execute: spcModeSelectAsync,
    }),
    defineOp<D, ModeSenseCommand>({
      name: 'MODE SENSE(6)',
      opcode: Op.MODE_SENSE_6,
      dataDirection: 'in',
      access: 'read',
      usage: [Op.MODE_SENSE_6, 0x08, 0xff, 0xff, 0xff, CONTROL],
      decode: decodeModeSense6,
      execute: spcModeSense,
    }),
    defineOp<D, ModeSenseCommand>({
      name: 'MODE SENSE(10)',
      opcode: Op.MODE_SENSE_10,
      dataDirection: 'in',
      access: 'read',
      usage: [Op.MODE_SENSE_10, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, CONTROL],
      decode: decodeModeSense10,
      execute: spcModeSense,
    }),
    defineOp<D, null>({
      name: 'RESERVE(6)',
      opcode: Op.RESERVE_6,
      dataDirection: 'none',
      access: 'allowed',
      allowedUnderSpc2Reservation: true,
      usage: [Op.RESERVE_6, 0, 0, 0, 0, CONTROL],
      decode: decodeReserveRelease6,
      execute: (ctx) => {
        ctx.lu.reservations.reserve6(ctx.nexus);
        return good();
      },
    }),
    defineOp<D, null>({
      name: 'RELEASE(6)',
      opcode: Op.RELEASE_6,
      dataDirection: 'none',
      access: 'allowed',
      allowedUnderSpc2Reservation: true,
      usage: [Op.RELEASE_6, 0, 0, 0, 0, CONTROL],
      decode: decodeReserveRelease6,
      execute: (ctx) => {
        ctx.lu.reservations.release6(ctx.nexus);
        return good();
      },
    }),
    prIn(PrInAction.READ_KEYS, 'READ KEYS'),
    prIn(PrInAction.READ_RESERVATION, 'READ RESERVATION'),
    prIn(PrInAction.REPORT_CAPABILITIES, 'REPORT CAPABILITIES'),
    prIn(PrInAction.READ_FULL_STATUS, 'READ FULL STATUS'),
    prOut(PrOutAction.REGISTER, 'REGISTER'),
    prOut(PrOutAction.RESERVE, 'RESERVE'),
    prOut(PrOutAction.RELEASE, 'RELEASE'),
    prOut(PrOutAction.CLEAR, 'CLEAR'),
    prOut(PrOutAction.PREEMPT, 'PREEMPT'),
    prOut(PrOutAction.PREEMPT_AND_ABORT, 'PREEMPT AND ABORT'),
    prOut(PrOutAction.REGISTER_AND_IGNORE_EXISTING_KEY, 'REGISTER AND IGNORE EXISTING KEY'),
    defineOp<D, ReportSupportedOpcodesCommand>({
      name: 'REPORT SUPPORTED OPERATION CODES',
      opcode: Op.MAINTENANCE_IN,
      serviceAction: MaintenanceIn.REPORT_SUPPORTED_OPERATION_CODES,
      dataDirection: 'in',
      access: 'allowed',
      allowedUnderSpc2Reservation: true,
      usage: [Op.MAINTENANCE_IN, MaintenanceIn.REPORT_SUPPORTED_OPERATION_CODES, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, CONTROL],
      decode: decodeReportSupportedOpcodes,
      execute: spcReportSupportedOpcodes,
    }),
  ];
}
