// Vital product data pages (SPC-4 7.8, SBC-3 6.5). Each builder returns the page body after the
// 4-byte page header; spc.ts INQUIRY adds the header and answers SUPPORTED VPD PAGES (00h).

import { asciiField } from './cdb.js';
import type { CommandContext } from './dispatcher.js';
import type { VpdPage } from './lun.js';

export const VpdPageCode = {
  SUPPORTED_VPD_PAGES: 0x00,
  UNIT_SERIAL_NUMBER: 0x80,
  DEVICE_IDENTIFICATION: 0x83,
  BLOCK_LIMITS: 0xb0,
  BLOCK_DEVICE_CHARACTERISTICS: 0xb1,
  LOGICAL_BLOCK_PROVISIONING: 0xb2,
} as const;

/** SPC-4 7.8.15 unit serial number page. */
export function unitSerialNumberPage<D>(): VpdPage<D> {
  return {
    pageCode: VpdPageCode.UNIT_SERIAL_NUMBER,
    build: (ctx) => Buffer.from(ctx.lu.serial.replace(/[^\x20-\x7e]/g, ' '), 'ascii'),
  };
}

/** SPC-4 7.8.5.1 designation descriptor. */
function designator(opts: { codeSet: number; association: number; type: number; piv: boolean; value: Buffer }): Buffer {
  const head = Buffer.alloc(4);
  // PROTOCOL IDENTIFIER 5h (iSCSI) is meaningful when PIV is set.
  head[0] = (opts.piv ? 0x50 : 0x00) | opts.codeSet;
  head[1] = (opts.piv ? 0x80 : 0x00) | (opts.association << 4) | opts.type;
  head[3] = opts.value.length;
  return Buffer.concat([head, opts.value]);
}

const CodeSet = { BINARY: 1, ASCII: 2, UTF8: 3 } as const;
const Association = { LOGICAL_UNIT: 0, TARGET_PORT: 1 } as const;
const DesignatorType = { T10_VENDOR_ID: 1, NAA: 3, RELATIVE_TARGET_PORT: 4, SCSI_NAME_STRING: 8 } as const;

/** A SCSI name string (SPC-4 7.8.5.11): null terminated, padded to a multiple of 4 bytes. */
function scsiNameString(name: string): Buffer {
  const bytes = Buffer.from(name, 'utf8');
  const buf = Buffer.alloc(Math.ceil((bytes.length + 1) / 4) * 4);
  bytes.copy(buf);
  return buf;
}

/** SPC-4 7.8.5 device identification page: NAA IEEE Registered (type 3, NAA 5h) and T10 vendor ID
 *  for the logical unit, SCSI name string and relative target port identifier for the target port
 *  the command arrived on. */
export function deviceIdentificationPage<D>(): VpdPage<D> {
  return {
    pageCode: VpdPageCode.DEVICE_IDENTIFICATION,
    build: (ctx: CommandContext<D>) => {
      const lu = ctx.lu;
      const naa = Buffer.from(lu.naaId.padStart(16, '0').slice(-16), 'hex');
      naa[0] = (naa[0]! & 0x0f) | 0x50; // NAA 5h: IEEE Registered
      const relativePort = Buffer.alloc(4);
      relativePort.writeUInt16BE(ctx.nexus.relativeTargetPortId & 0xffff, 2);
      return Buffer.concat([
        designator({ codeSet: CodeSet.BINARY, association: Association.LOGICAL_UNIT, type: DesignatorType.NAA, piv: false, value: naa }),
        designator({
          codeSet: CodeSet.ASCII,
          association: Association.LOGICAL_UNIT,
          type: DesignatorType.T10_VENDOR_ID,
          piv: false,
          value: Buffer.concat([asciiField(lu.identity.vendor, 8), Buffer.from(lu.serial, 'ascii')]),
        }),
        designator({
          codeSet: CodeSet.UTF8,
          association: Association.TARGET_PORT,
          type: DesignatorType.SCSI_NAME_STRING,
          piv: true,
          value: scsiNameString(ctx.nexus.targetPortName),
        }),
        designator({
          codeSet: CodeSet.BINARY,
          association: Association.TARGET_PORT,
          type: DesignatorType.RELATIVE_TARGET_PORT,
          piv: true,
          value: relativePort,
        }),
      ]);
    },
  };
}

/** The limits a direct-access LU advertises in the block limits page and enforces. */
export interface BlockLimits {
  maximumTransferLengthBlocks: number;
  optimalTransferLengthBlocks: number;
  maximumUnmapLbaCount: number;
  maximumUnmapBlockDescriptorCount: number;
  maximumWriteSameLengthBlocks: number;
  maximumCompareAndWriteLengthBlocks: number;
}

/** SBC-3 6.5.3 block limits page (page length 3Ch). WSNZ = 0: WRITE SAME with 0 blocks means
 *  "to the end of the medium" within MAXIMUM WRITE SAME LENGTH. */
export function blockLimitsPage<D>(limits: BlockLimits): VpdPage<D> {
  return {
    pageCode: VpdPageCode.BLOCK_LIMITS,
    build: () => {
      const body = Buffer.alloc(0x3c);
      body[1] = limits.maximumCompareAndWriteLengthBlocks;
      body.writeUInt16BE(1, 2); // OPTIMAL TRANSFER LENGTH GRANULARITY
      body.writeUInt32BE(limits.maximumTransferLengthBlocks, 4);
      body.writeUInt32BE(limits.optimalTransferLengthBlocks, 8);
      body.writeUInt32BE(limits.maximumTransferLengthBlocks, 12); // MAXIMUM PREFETCH LENGTH
      body.writeUInt32BE(limits.maximumUnmapLbaCount, 16);
      body.writeUInt32BE(limits.maximumUnmapBlockDescriptorCount, 20);
      body.writeUInt32BE(1, 24); // OPTIMAL UNMAP GRANULARITY
      body.writeUInt32BE(0x8000_0000, 28); // UGAVALID, UNMAP GRANULARITY ALIGNMENT 0
      body.writeBigUInt64BE(BigInt(limits.maximumWriteSameLengthBlocks), 32);
      return body;
    },
  };
}

/** SBC-3 6.5.2 block device characteristics page: MEDIUM ROTATION RATE 1 (non-rotating). */
export function blockDeviceCharacteristicsPage<D>(): VpdPage<D> {
  return {
    pageCode: VpdPageCode.BLOCK_DEVICE_CHARACTERISTICS,
    build: () => {
      const body = Buffer.alloc(0x3c);
      body.writeUInt16BE(0x0001, 0);
      return body;
    },
  };
}

/** SBC-3 6.5.13 logical block provisioning page: thin provisioned, UNMAP and WRITE SAME(10/16)
 *  with UNMAP supported, unmapped blocks read as zeros (LBPRZ). */
export function logicalBlockProvisioningPage<D>(): VpdPage<D> {
  return {
    pageCode: VpdPageCode.LOGICAL_BLOCK_PROVISIONING,
    build: () => {
      const body = Buffer.alloc(4);
      body[0] = 0; // THRESHOLD EXPONENT
      body[1] = 0x80 | 0x40 | 0x20 | 0x04; // LBPU, LBPWS, LBPWS10, LBPRZ
      body[2] = 0x02; // PROVISIONING TYPE: thin
      return body;
    },
  };
}
