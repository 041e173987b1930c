// Names and numbers the fabric derives: SCSI port names (RFC 7143 4.2.7.1, SAM-5 transport
// identifiers), LUN field encodings (SAM-5 4.7) and 32-bit serial number arithmetic (RFC 1982).

/** ISID as 12 lowercase hex digits. */
export function isidHex(isid: Buffer): string {
  return isid.toString('hex');
}

/** RFC 7143 4.2.7.1: "<iSCSI name>,i,0x<ISID>". */
export function initiatorPortName(initiatorName: string, isid: Buffer): string {
  return `${initiatorName},i,0x${isidHex(isid)}`;
}

/** RFC 7143 4.2.7.1: "<iSCSI name>,t,0x<TPGT>". */
export function targetPortName(targetName: string, portalGroupTag: number): string {
  return `${targetName},t,0x${portalGroupTag.toString(16).padStart(4, '0')}`;
}

/**
 * SAM-5 4.7 single level LUN from the 8-byte LUN field: peripheral device addressing (00b, bus 0)
 * or flat space addressing (01b). Anything else is a LUN this target does not have (null).
 */
export function decodeLun(lun: bigint): number | null {
  if ((lun & 0xffffffffffffn) !== 0n) return null;
  const first = Number(lun >> 48n);
  const method = first >> 14;
  if (method === 0) return (first >> 8) === 0 ? first & 0xff : null;
  if (method === 1) return first & 0x3fff;
  return null;
}

/** SAM-5 4.7: peripheral device addressing below 256, flat space addressing above. */
export function encodeLun(lun: number): Buffer {
  const buf = Buffer.alloc(8);
  if (lun < 256) buf[1] = lun;
  else buf.writeUInt16BE(0x4000 | (lun & 0x3fff), 0);
  return buf;
}

/** RFC 1982 serial number arithmetic for 32-bit sequence numbers (RFC 7143 4.2.2.1). */
export function serialLt(a: number, b: number): boolean {
  return a !== b && ((b - a) >>> 0) < 0x80000000;
}

export function serialLe(a: number, b: number): boolean {
  return a === b || serialLt(a, b);
}

export function serialAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}
