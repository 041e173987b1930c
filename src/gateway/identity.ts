// The SCSI identity our volumes present. AWS Storage Gateway volumes answer INQUIRY with vendor
// "AMAZON" and product "Storage Gateway"; we emulate that so initiator-side tooling (multipath
// rules, backup software device lists) treats shelfgate volumes the same way.

import { randomBytes } from 'node:crypto';

/** SPC-4 6.6.2 standard INQUIRY data: T10 vendor (8), product (16), revision (4) — padded by the LU. */
export const VOLUME_INQUIRY_IDENTITY = {
  vendor: 'AMAZON',
  product: 'Storage Gateway',
  revision: '1.0',
} as const;

/** 24-bit IEEE company id used in our NAA IEEE Registered designators (SPC-4 7.8.6.6.5).
 *  0xA2C0DE has the CID "local" bit pattern (second nibble 2), so it can collide with no OUI. */
const NAA_COMPANY_ID = 0xa2c0de;

/** A new volume id in AWS's style ("vol-" + 8 hex digits), used as the VPD 0x80 serial number. */
export function newVolumeSerial(): string {
  return `vol-${randomBytes(4).toString('hex').toUpperCase()}`;
}

/** A new NAA type 5 (IEEE Registered) designator: 4-bit NAA, 24-bit company id, 36-bit vendor
 *  specific (random), as 16 hex digits. */
export function newNaaId(): string {
  const vendorSpecific = randomBytes(5);
  vendorSpecific[0] &= 0x0f; // 36 bits
  return `5${NAA_COMPANY_ID.toString(16).padStart(6, '0')}${vendorSpecific.toString('hex').slice(1)}`;
}
