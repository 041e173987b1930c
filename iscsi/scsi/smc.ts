// SMC-3 media changer commands: READ ELEMENT STATUS, MOVE MEDIUM, INITIALIZE ELEMENT STATUS (+ WITH
// RANGE), POSITION TO ELEMENT, PREVENT ALLOW MEDIUM REMOVAL, and the SMC-3 7.3 mode pages. The
// inventory itself is a ChangerModel (iscsi/device.ts); this file decodes CDBs, builds the element
// status data and turns the model's faults into sense data.

import {
  changerFaultOf,
  type ChangerFault,
  type ChangerModel,
  type ElementAddressMap,
  type ElementStatus,
  type ElementType,
  type ScsiResponse,
} from '../device.js';
import { asciiField, invalidFieldInCdb, truncateToAllocationLength } from './cdb.js';
import { Op } from './constants.js';
import { defineOp, good, type CommandContext, type OpEntry } from './dispatcher.js';
import type { ModePageDefinition } from './mode-pages.js';
import { Sense, SenseError, type SenseCode } from './sense.js';

const CONTROL = 0x07;

/** The device-type state of a medium changer logical unit. */
export interface ChangerDevice {
  readonly model: ChangerModel;
  /** Nexuses (Nexus.id) that sent PREVENT ALLOW MEDIUM REMOVAL with PREVENT 01b (SPC-4 6.13:
   *  removal is prevented while any nexus prevents it). */
  readonly preventingNexuses: Set<string>;
}

/** SMC-3 6.10.1 table 31 ELEMENT TYPE CODE. */
export const ElementTypeCode = {
  ALL: 0,
  MEDIUM_TRANSPORT: 1,
  STORAGE: 2,
  IMPORT_EXPORT: 3,
  DATA_TRANSFER: 4,
} as const;

const TYPE_CODE: Record<ElementType, number> = {
  'medium-transport': ElementTypeCode.MEDIUM_TRANSPORT,
  storage: ElementTypeCode.STORAGE,
  'import-export': ElementTypeCode.IMPORT_EXPORT,
  'data-transfer': ElementTypeCode.DATA_TRANSFER,
};

/** The type of the element at `address`, or undefined when no element has that address. */
export function elementTypeAt(map: ElementAddressMap, address: number): ElementType | undefined {
  const within = (r: { first: number; count: number }) => address >= r.first && address < r.first + r.count;
  if (within(map.mediumTransport)) return 'medium-transport';
  if (within(map.storage)) return 'storage';
  if (within(map.importExport)) return 'import-export';
  if (within(map.dataTransfer)) return 'data-transfer';
  return undefined;
}

// ---- READ ELEMENT STATUS (SMC-3 6.10) -----------------------------------------------------------

export interface ReadElementStatusCommand {
  voltag: boolean;
  elementTypeCode: number;
  startingElementAddress: number;
  numberOfElements: number;
  curdata: boolean;
  dvcid: boolean;
  allocationLength: number;
}

export function decodeReadElementStatus(cdb: Buffer): ReadElementStatusCommand {
  const elementTypeCode = cdb[1]! & 0x0f;
  if (elementTypeCode > ElementTypeCode.DATA_TRANSFER) throw invalidFieldInCdb(1, 3);
  if (cdb[6]! & 0xfc) throw invalidFieldInCdb(6, 31 - Math.clz32(cdb[6]! & 0xfc));
  return {
    voltag: (cdb[1]! & 0x10) !== 0,
    elementTypeCode,
    startingElementAddress: cdb.readUInt16BE(2),
    numberOfElements: cdb.readUInt16BE(4),
    curdata: (cdb[6]! & 0x02) !== 0,
    dvcid: (cdb[6]! & 0x01) !== 0,
    allocationLength: cdb.readUIntBE(7, 3),
  };
}

/** SMC-3 6.10.3 volume tag information: 32 bytes of identifier (space padded), 2 reserved, and a
 *  2-byte VOLUME SEQUENCE NUMBER. All zeros when the element is empty. */
const VOLUME_TAG_LENGTH = 36;
/** DVCID identifier as the libraries do it (T10 vendor identification format): vendor (8),
 *  product (16), serial number (10). */
const DVCID_IDENTIFIER_LENGTH = 34;
/** Bytes 0–11 of every element descriptor, plus the 4-byte identifier header (SMC-3 6.10.2). */
const DESCRIPTOR_BASE_LENGTH = 12;
const IDENTIFIER_HEADER_LENGTH = 4;

function descriptorLength(type: ElementType, cmd: ReadElementStatusCommand): number {
  return (
    DESCRIPTOR_BASE_LENGTH +
    (cmd.voltag ? VOLUME_TAG_LENGTH : 0) +
    IDENTIFIER_HEADER_LENGTH +
    (cmd.dvcid && type === 'data-transfer' ? DVCID_IDENTIFIER_LENGTH : 0)
  );
}

/** One element descriptor (SMC-3 6.10.4 medium transport, 6.10.5 storage, 6.10.6 import/export,
 *  6.10.7 data transfer). */
export function elementDescriptor(e: ElementStatus, cmd: ReadElementStatusCommand): Buffer {
  const d = Buffer.alloc(descriptorLength(e.type, cmd));
  d.writeUInt16BE(e.address, 0);
  let flags = e.full ? 0x01 : 0x00; // FULL
  if (e.type === 'import-export') {
    if (e.full && e.placedByOperator) flags |= 0x02; // IMPEXP
    flags |= 0x30; // InENAB, ExENAB: the element imports and exports
  }
  if (e.type !== 'medium-transport' && e.access) flags |= 0x08; // ACCESS
  d[2] = flags;
  // Bytes 4–5 ASC/ASCQ (no exception), 6–8 obsolete SCSI bus fields, all zero.
  if (e.full) {
    d[9] = (e.sourceAddress !== undefined ? 0x80 : 0x00) | 0x01; // SVALID, MEDIUM TYPE 1 (data medium)
    if (e.sourceAddress !== undefined) d.writeUInt16BE(e.sourceAddress, 10);
  }
  let offset = DESCRIPTOR_BASE_LENGTH;
  if (cmd.voltag) {
    if (e.full && e.barcode !== undefined) asciiField(e.barcode, 32).copy(d, offset);
    offset += VOLUME_TAG_LENGTH;
  }
  if (cmd.dvcid && e.type === 'data-transfer') {
    d[offset] = 0x02; // CODE SET: ASCII
    d[offset + 1] = 0x01; // ASSOCIATION 0, IDENTIFIER TYPE 1: T10 vendor identification
    d[offset + 3] = DVCID_IDENTIFIER_LENGTH;
    const dev = e.device ?? { vendor: '', product: '', serial: '' };
    asciiField(dev.vendor, 8).copy(d, offset + 4);
    asciiField(dev.product, 16).copy(d, offset + 12);
    asciiField(dev.serial, 10).copy(d, offset + 28);
  }
  return d;
}

/** SMC-3 6.10.2 element status data: header, then one element status page per run of elements of
 *  one type, in ascending element address order (type 0 reports every type in one response).
 *  When the ALLOCATION LENGTH cannot hold every descriptor, only the complete descriptors that fit
 *  are returned and the headers count exactly those (as StorageTek libraries document: "only
 *  complete element descriptors are transferred"), so an initiator that walks the report by its
 *  byte counts never runs past its buffer; it asks again from the next STARTING ELEMENT ADDRESS.
 *  An allocation length too small for even one descriptor is a probe for the report's size: then
 *  the header reports everything available (and is truncated like any other parameter data). */
export function elementStatusData(elements: readonly ElementStatus[], cmd: ReadElementStatusCommand): Buffer {
  const selected = elements
    .filter((e) => (cmd.elementTypeCode === ElementTypeCode.ALL || TYPE_CODE[e.type] === cmd.elementTypeCode) && e.address >= cmd.startingElementAddress)
    .sort((a, b) => a.address - b.address)
    .slice(0, cmd.numberOfElements);
  const fitting = completeDescriptorsWithin(selected, cmd);
  const reported = fitting.length > 0 ? fitting : selected;
  const pages: Buffer[] = [];
  let i = 0;
  while (i < reported.length) {
    const type = reported[i]!.type;
    const descriptors: Buffer[] = [];
    while (i < reported.length && reported[i]!.type === type) descriptors.push(elementDescriptor(reported[i++]!, cmd));
    const header = Buffer.alloc(8);
    header[0] = TYPE_CODE[type];
    header[1] = cmd.voltag ? 0x80 : 0x00; // PVOLTAG; no alternate volume tags
    header.writeUInt16BE(descriptorLength(type, cmd), 2);
    header.writeUIntBE(descriptors.reduce((n, d) => n + d.length, 0), 5, 3); // BYTE COUNT OF DESCRIPTOR DATA AVAILABLE
    pages.push(header, ...descriptors);
  }
  const body = Buffer.concat(pages);
  const header = Buffer.alloc(8);
  header.writeUInt16BE(reported[0]?.address ?? 0, 0); // FIRST ELEMENT ADDRESS REPORTED
  header.writeUInt16BE(reported.length, 2); // NUMBER OF ELEMENTS AVAILABLE
  header.writeUIntBE(body.length, 5, 3); // BYTE COUNT OF REPORT AVAILABLE
  return Buffer.concat([header, body]);
}

/** The leading elements whose complete descriptors (with their page headers) fit in the
 *  ALLOCATION LENGTH after the 8-byte element status data header. */
function completeDescriptorsWithin(selected: readonly ElementStatus[], cmd: ReadElementStatusCommand): readonly ElementStatus[] {
  let usedBytes = 8;
  let previousType: ElementType | undefined;
  let count = 0;
  for (const e of selected) {
    const pageHeaderBytes = e.type === previousType ? 0 : 8;
    const next = usedBytes + pageHeaderBytes + descriptorLength(e.type, cmd);
    if (next > cmd.allocationLength) break;
    usedBytes = next;
    previousType = e.type;
    count++;
  }
  return selected.slice(0, count);
}

export function smcReadElementStatus(ctx: CommandContext<ChangerDevice>, cmd: ReadElementStatusCommand): ScsiResponse {
  const elements = ctx.device.model.elements();
  const anyAtOrAbove = elements.some(
    (e) => (cmd.elementTypeCode === ElementTypeCode.ALL || TYPE_CODE[e.type] === cmd.elementTypeCode) && e.address >= cmd.startingElementAddress,
  );
  // No element of the requested type at or above STARTING ELEMENT ADDRESS (as IBM and Quantum
  // libraries report it).
  if (!anyAtOrAbove) throw new SenseError(Sense.INVALID_ELEMENT_ADDRESS, { fieldPointer: 2 });
  return good(truncateToAllocationLength(elementStatusData(elements, cmd), cmd.allocationLength));
}

// ---- MOVE MEDIUM (SMC-3 6.6) --------------------------------------------------------------------

interface MoveMediumCommand {
  transportElementAddress: number;
  sourceAddress: number;
  destinationAddress: number;
}

function decodeMoveMedium(cdb: Buffer): MoveMediumCommand {
  if (cdb[10]! & 0x01) throw invalidFieldInCdb(10, 0); // INVERT: cartridges have one side
  return {
    transportElementAddress: cdb.readUInt16BE(2),
    sourceAddress: cdb.readUInt16BE(4),
    destinationAddress: cdb.readUInt16BE(6),
  };
}

const FAULT_SENSE: Record<ChangerFault, SenseCode> = {
  'source-empty': Sense.MEDIUM_SOURCE_ELEMENT_EMPTY,
  'destination-full': Sense.MEDIUM_DESTINATION_ELEMENT_FULL,
  'invalid-element': Sense.INVALID_ELEMENT_ADDRESS,
  'medium-removal-prevented': Sense.MEDIUM_REMOVAL_PREVENTED,
  'drive-not-unloaded': Sense.UNLOAD_TAPE_FAILURE,
};

/** The transport address must name a medium transport element, or be 0 (the default one). */
function checkTransportAddress(map: ElementAddressMap, address: number): void {
  if (address !== 0 && elementTypeAt(map, address) !== 'medium-transport') {
    throw new SenseError(Sense.INVALID_ELEMENT_ADDRESS, { fieldPointer: 2 });
  }
}

/** Source and destination of a move are storage, import/export or data transfer elements. */
function checkMoveAddress(map: ElementAddressMap, address: number, fieldPointer: number): void {
  const type = elementTypeAt(map, address);
  if (type === undefined || type === 'medium-transport') throw new SenseError(Sense.INVALID_ELEMENT_ADDRESS, { fieldPointer });
}

export async function smcMoveMedium(ctx: CommandContext<ChangerDevice>, cmd: MoveMediumCommand): Promise<ScsiResponse> {
  const model = ctx.device.model;
  checkTransportAddress(model.addressMap, cmd.transportElementAddress);
  checkMoveAddress(model.addressMap, cmd.sourceAddress, 4);
  checkMoveAddress(model.addressMap, cmd.destinationAddress, 6);
  try {
    await model.moveMedium(cmd.sourceAddress, cmd.destinationAddress);
  } catch (err) {
    const fault = changerFaultOf(err);
    if (fault === undefined) throw err;
    throw new SenseError(FAULT_SENSE[fault], {}, err instanceof Error ? err.message : undefined);
  }
  return good();
}

// ---- POSITION TO ELEMENT (SMC-3 6.9) ------------------------------------------------------------

interface PositionToElementCommand {
  transportElementAddress: number;
  destinationAddress: number;
}

function decodePositionToElement(cdb: Buffer): PositionToElementCommand {
  if (cdb[8]! & 0x01) throw invalidFieldInCdb(8, 0); // INVERT
  return { transportElementAddress: cdb.readUInt16BE(2), destinationAddress: cdb.readUInt16BE(4) };
}

/** A virtual transport is wherever it needs to be: only the addresses are checked. */
function smcPositionToElement(ctx: CommandContext<ChangerDevice>, cmd: PositionToElementCommand): ScsiResponse {
  const map = ctx.device.model.addressMap;
  checkTransportAddress(map, cmd.transportElementAddress);
  if (elementTypeAt(map, cmd.destinationAddress) === undefined) {
    throw new SenseError(Sense.INVALID_ELEMENT_ADDRESS, { fieldPointer: 4 });
  }
  return good();
}

// ---- INITIALIZE ELEMENT STATUS (SMC-3 6.2) / WITH RANGE (SMC-3 6.3) -----------------------------

interface InitializeWithRangeCommand {
  range: boolean;
  startingElementAddress: number;
  numberOfElements: number;
}

function decodeInitializeWithRange(cdb: Buffer): InitializeWithRangeCommand {
  return { range: (cdb[1]! & 0x01) !== 0, startingElementAddress: cdb.readUInt16BE(2), numberOfElements: cdb.readUInt16BE(6) };
}

/** The inventory is always current (there is no scanner to run), so both commands only check
 *  their fields and complete. */
function smcInitializeElementStatusWithRange(ctx: CommandContext<ChangerDevice>, cmd: InitializeWithRangeCommand): ScsiResponse {
  if (cmd.range && elementTypeAt(ctx.device.model.addressMap, cmd.startingElementAddress) === undefined) {
    throw new SenseError(Sense.INVALID_ELEMENT_ADDRESS, { fieldPointer: 2 });
  }
  return good();
}

// ---- PREVENT ALLOW MEDIUM REMOVAL (SMC-3 6.13) --------------------------------------------------

function decodePreventAllow(cdb: Buffer): { prevent: boolean } {
  const code = cdb[4]! & 0x03;
  if (code > 1) throw invalidFieldInCdb(4, code & 0x02 ? 1 : 0); // 10b/11b are obsolete for changers
  return { prevent: code === 1 };
}

export async function smcPreventAllowMediumRemoval(ctx: CommandContext<ChangerDevice>, cmd: { prevent: boolean }): Promise<ScsiResponse> {
  const set = ctx.device.preventingNexuses;
  if (cmd.prevent) set.add(ctx.nexus.id);
  else set.delete(ctx.nexus.id);
  await ctx.device.model.setRemovalPrevented(set.size > 0);
  return good();
}

// ---- the op table entries ---------------------------------------------------------------------

export function smcOps(): OpEntry<ChangerDevice>[] {
  return [
    defineOp<ChangerDevice, null>({
      name: 'INITIALIZE ELEMENT STATUS',
      opcode: Op.INITIALIZE_ELEMENT_STATUS,
      dataDirection: 'none',
      access: 'write',
      usage: [Op.INITIALIZE_ELEMENT_STATUS, 0, 0, 0, 0, CONTROL],
      decode: () => null,
      execute: () => good(),
    }),
    defineOp<ChangerDevice, PositionToElementCommand>({
      name: 'POSITION TO ELEMENT',
      opcode: Op.POSITION_TO_ELEMENT,
      dataDirection: 'none',
      access: 'write',
      usage: [Op.POSITION_TO_ELEMENT, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x01, CONTROL],
      decode: decodePositionToElement,
      execute: smcPositionToElement,
    }),
    defineOp<ChangerDevice, InitializeWithRangeCommand>({
      name: 'INITIALIZE ELEMENT STATUS WITH RANGE',
      opcode: Op.INITIALIZE_ELEMENT_STATUS_WITH_RANGE,
      dataDirection: 'none',
      access: 'write',
      usage: [Op.INITIALIZE_ELEMENT_STATUS_WITH_RANGE, 0x03, 0xff, 0xff, 0, 0, 0xff, 0xff, 0, CONTROL],
      decode: decodeInitializeWithRange,
      execute: smcInitializeElementStatusWithRange,
    }),
    defineOp<ChangerDevice, { prevent: boolean }>({
      name: 'PREVENT ALLOW MEDIUM REMOVAL',
      opcode: Op.PREVENT_ALLOW_MEDIUM_REMOVAL,
      dataDirection: 'none',
      access: 'write',
      usage: [Op.PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 0x03, CONTROL],
      decode: decodePreventAllow,
      execute: smcPreventAllowMediumRemoval,
    }),
    defineOp<ChangerDevice, MoveMediumCommand>({
      name: 'MOVE MEDIUM',
      opcode: Op.MOVE_MEDIUM,
      dataDirection: 'none',
      access: 'write',
      nominalTimeoutSec: 10,
      recommendedTimeoutSec: 600,
      usage: [Op.MOVE_MEDIUM, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x01, CONTROL],
      decode: decodeMoveMedium,
      execute: smcMoveMedium,
    }),
    defineOp<ChangerDevice, ReadElementStatusCommand>({
      name: 'READ ELEMENT STATUS',
      opcode: Op.READ_ELEMENT_STATUS,
      dataDirection: 'in',
      access: 'read',
      usage: [Op.READ_ELEMENT_STATUS, 0x1f, 0xff, 0xff, 0xff, 0xff, 0x03, 0xff, 0xff, 0xff, 0, CONTROL],
      decode: decodeReadElementStatus,
      execute: smcReadElementStatus,
    }),
  ];
}

// ---- mode pages (SMC-3 7.3) ---------------------------------------------------------------------

function fixedPage(pageCode: number, body: Buffer): ModePageDefinition {
  const defaults = Buffer.concat([Buffer.from([pageCode, body.length]), body]);
  return { pageCode, subpageCode: 0, defaults, changeable: Buffer.alloc(defaults.length) };
}

/** SMC-3 7.3.3 element address assignment mode page (1Dh). */
export function elementAddressAssignmentPage(map: ElementAddressMap): ModePageDefinition {
  const body = Buffer.alloc(0x12);
  const ranges = [map.mediumTransport, map.storage, map.importExport, map.dataTransfer];
  ranges.forEach((r, i) => {
    body.writeUInt16BE(r.first, 4 * i);
    body.writeUInt16BE(r.count, 4 * i + 2);
  });
  return fixedPage(0x1d, body);
}

/** SMC-3 7.3.5 transport geometry parameters mode page (1Eh): one descriptor per transport, no
 *  ROTATE (cartridges are not two-sided), member number 0. */
export function transportGeometryPage(transportCount: number): ModePageDefinition {
  return fixedPage(0x1e, Buffer.alloc(2 * transportCount));
}

/** SMC-3 7.3.2 device capabilities mode page (1Fh): cartridges can rest in storage, import/export
 *  and data transfer elements (not in the transport) and move between any two of those; no
 *  EXCHANGE MEDIUM. */
export function deviceCapabilitiesPage(): ModePageDefinition {
  const body = Buffer.alloc(0x12);
  const STORDT_STORIE_STORST = 0x0e; // bit 3 DT, bit 2 I/E, bit 1 ST, bit 0 MT
  body[0] = STORDT_STORIE_STORST;
  body[2] = 0x00; // MT -> (the transport is never a source)
  body[3] = STORDT_STORIE_STORST; // ST -> DT, I/E, ST
  body[4] = STORDT_STORIE_STORST; // I/E -> DT, I/E, ST
  body[5] = STORDT_STORIE_STORST; // DT -> DT, I/E, ST
  return fixedPage(0x1f, body);
}
