// IBM ULT3580-TD5 (LTO-5 full-height drive), the only tape drive type of an AWS Tape Gateway
// (DescribeVTLDevices: vendor "IBM", product "ULT3580-TD5"). Everything model specific is here as
// data; iscsi/scsi/ssc.ts and tape-drive.ts hold no model knowledge.

import type { DeviceIdentity } from '../lun.js';
import { controlPage, informationalExceptionsPage, type ModePageDefinition } from '../mode-pages.js';

/** One density support data block descriptor of REPORT DENSITY SUPPORT (SSC-4 6.x, table
 *  "Density support data block descriptor"). */
export interface TapeDensity {
  primaryDensityCode: number;
  secondaryDensityCode: number;
  /** WRTOK: the drive writes this density (LTO-5 reads LTO-3, writes LTO-4 and LTO-5). */
  writable: boolean;
  /** DEFLT: the density used when MODE SELECT asks for density code 00h. */
  isDefault: boolean;
  bitsPerMm: number;
  /** MEDIA WIDTH in tenths of millimetres. */
  mediaWidthTenthsMm: number;
  tracks: number;
  /** CAPACITY in megabytes (10^6 bytes), native. */
  capacityMegabytes: number;
  assigningOrganization: string;
  densityName: string;
  description: string;
}

/** READ BLOCK LIMITS (SSC-4 6.x): GRANULARITY (2^n bytes), MAXIMUM/MINIMUM BLOCK LENGTH LIMIT. */
export interface TapeBlockLimits {
  granularity: number;
  maximumBlockLengthBytes: number;
  minimumBlockLengthBytes: number;
}

export interface TapeDrivePersonality {
  identity: DeviceIdentity;
  /** Every density the drive knows, for REPORT DENSITY SUPPORT with MEDIA=0. */
  densities: readonly TapeDensity[];
  /** The density code of the (LTO-5) media the gateway loads: block descriptor, MEDIA=1. */
  mediumDensityCode: number;
  blockLimits: TapeBlockLimits;
  /** Block length after power on: 0 = variable-block mode. */
  defaultBlockLengthBytes: number;
  modePages(): ModePageDefinition[];
}

function page(pageCode: number, body: number[], changeableBody: number[]): ModePageDefinition {
  return {
    pageCode,
    subpageCode: 0,
    defaults: Buffer.from([pageCode, body.length, ...body]),
    changeable: Buffer.from([0, 0, ...changeableBody]),
  };
}

const zeros = (n: number): number[] => new Array<number>(n).fill(0);

/** SSC-4 8.3.5 read-write error recovery mode page (01h): no retry tuning to offer. */
const readWriteErrorRecoveryPage = (): ModePageDefinition => page(0x01, zeros(10), zeros(10));

/** SPC-4 7.5.9 disconnect-reconnect mode page (02h): meaningless over iSCSI, all zero. */
const disconnectReconnectPage = (): ModePageDefinition => page(0x02, zeros(14), zeros(14));

/** SSC-4 8.3.2 data compression mode page (0Fh): DCE and DCC set, DDE set; DCE changeable
 *  (Linux st's MTCOMPRESSION). Records are stored as written either way. */
const dataCompressionPage = (): ModePageDefinition =>
  page(
    0x0f,
    [0xc0, 0x80, 0, 0, 0, 0x01, 0, 0, 0, 0x01, 0, 0, 0, 0],
    [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  );

/** SSC-4 8.3.3 device configuration mode page (10h): LOIS (block identifiers are logical object
 *  identifiers), EEG and SEW (early warning reported, data synchronised there), SELECT DATA
 *  COMPRESSION ALGORITHM 01h (changeable, as older st versions set it). */
const deviceConfigurationPage = (): ModePageDefinition =>
  page(
    0x10,
    [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x18, 0x00, 0x00, 0x00, 0x01, 0x00],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0],
  );

/** SSC-4 8.3.4 medium partition mode page (11h): one partition, no additional ones definable;
 *  FDP/SDP/IDP 0, MEDIUM FORMAT RECOGNITION 03h. */
const mediumPartitionPage = (): ModePageDefinition => page(0x11, [0x00, 0x00, 0x00, 0x03, 0x00, 0x00], zeros(6));

export const ibmUlt3580Td5: TapeDrivePersonality = {
  identity: { vendor: 'IBM', product: 'ULT3580-TD5', revision: 'SG01' },
  densities: [
    {
      primaryDensityCode: 0x44,
      secondaryDensityCode: 0x44,
      writable: false,
      isDefault: false,
      bitsPerMm: 9638,
      mediaWidthTenthsMm: 127,
      tracks: 704,
      capacityMegabytes: 400_000,
      assigningOrganization: 'LTO-CVE',
      densityName: 'U-316',
      description: 'Ultrium 3/16T',
    },
    {
      primaryDensityCode: 0x46,
      secondaryDensityCode: 0x46,
      writable: true,
      isDefault: false,
      bitsPerMm: 13250,
      mediaWidthTenthsMm: 127,
      tracks: 896,
      capacityMegabytes: 800_000,
      assigningOrganization: 'LTO-CVE',
      densityName: 'U-416',
      description: 'Ultrium 4/16T',
    },
    {
      primaryDensityCode: 0x58,
      secondaryDensityCode: 0x58,
      writable: true,
      isDefault: true,
      bitsPerMm: 15142,
      mediaWidthTenthsMm: 127,
      tracks: 1280,
      capacityMegabytes: 1_500_000,
      assigningOrganization: 'LTO-CVE',
      densityName: 'U-516',
      description: 'Ultrium 5/16T',
    },
  ],
  mediumDensityCode: 0x58,
  // AWS: maximum block size 1 MiB. Granularity 2^0: any length from 1 byte.
  blockLimits: { granularity: 0, maximumBlockLengthBytes: 0x10_0000, minimumBlockLengthBytes: 1 },
  // IBM LTO drives power on in variable-block mode; AWS's "default 64 KiB block size" is what
  // backup software should select (MODE SELECT block length 65536 for fixed mode).
  defaultBlockLengthBytes: 0,
  modePages: () => [
    readWriteErrorRecoveryPage(),
    disconnectReconnectPage(),
    controlPage(),
    dataCompressionPage(),
    deviceConfigurationPage(),
    mediumPartitionPage(),
    informationalExceptionsPage(),
  ],
};
