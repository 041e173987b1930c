// CDBs for the e2e tape tests that drive shelfgate's changer and drive targets with our own
// initiator (test/helpers/initiator.ts), plus a login that clears the power-on unit attention.
import { TestInitiator, type ScsiResult } from './initiator.js';

const UNIT_ATTENTION = 0x06;

/** SMC-3 6.12 MOVE MEDIUM (transport element 0 = the default transport). */
export function moveMedium(sourceAddress: number, destinationAddress: number): Buffer {
  const cdb = Buffer.alloc(12);
  cdb[0] = 0xa5;
  cdb.writeUInt16BE(sourceAddress, 4);
  cdb.writeUInt16BE(destinationAddress, 6);
  return cdb;
}

/** SSC-4 6.9 WRITE(6); `transferLength` in bytes (variable) or blocks (fixed). */
export function write6(transferLength: number, fixed = false): Buffer {
  return Buffer.from([0x0a, fixed ? 1 : 0, (transferLength >> 16) & 0xff, (transferLength >> 8) & 0xff, transferLength & 0xff, 0]);
}

/** SSC-4 6.4 READ(6); SILI=0. */
export function read6(transferLength: number, fixed = false): Buffer {
  return Buffer.from([0x08, fixed ? 1 : 0, (transferLength >> 16) & 0xff, (transferLength >> 8) & 0xff, transferLength & 0xff, 0]);
}

/** SSC-4 6.10 WRITE FILEMARKS(6), IMMED=0. */
export function writeFilemarks6(count: number): Buffer {
  return Buffer.from([0x10, 0, (count >> 16) & 0xff, (count >> 8) & 0xff, count & 0xff, 0]);
}

/** SSC-4 7.6 REWIND, IMMED=0. */
export function rewind(): Buffer {
  return Buffer.from([0x01, 0, 0, 0, 0, 0]);
}

/** SSC-4 7.7 SPACE(6) code 3: to end-of-data. */
export function spaceToEndOfData(): Buffer {
  return Buffer.from([0x11, 0x03, 0, 0, 0, 0]);
}

/** SSC-4 7.4 READ POSITION short form; parse with shortPositionBlock(). */
export function readPositionShort(): Buffer {
  return Buffer.from([0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
}

/** First block location of a READ POSITION short form response (SSC-4 7.4.2). */
export function shortPositionBlock(data: Buffer): number {
  return data.readUInt32BE(4);
}

/** SPC-4 6.11 MODE SELECT(6), PF=1, with a header and one block descriptor (SSC-4 8.3.2): density
 *  code 0 (keep), block length `blockLengthBytes` (0 = variable block mode). Returns CDB and data. */
export function modeSelectBlockLength(blockLengthBytes: number): { cdb: Buffer; dataOut: Buffer } {
  const dataOut = Buffer.alloc(12);
  dataOut[2] = 0x10; // device-specific parameter: BUFFERED MODE 1
  dataOut[3] = 8; // block descriptor length
  dataOut.writeUIntBE(blockLengthBytes, 9, 3);
  return { cdb: Buffer.from([0x15, 0x10, 0, 0, dataOut.length, 0]), dataOut };
}

/** SPC-4 6.9 MODE SENSE(6), DBD=0, page `pageCode`. */
export function modeSense6(pageCode: number, allocationLength = 255): Buffer {
  return Buffer.from([0x1a, 0, pageCode & 0x3f, 0, allocationLength, 0]);
}

/** Connects and logs in to `targetName`, then runs TEST UNIT READY until the unit attentions a
 *  new nexus reports (power on, medium changed) are consumed. */
export async function loginTarget(port: number, initiatorName: string, targetName: string): Promise<TestInitiator> {
  const initiator = await TestInitiator.connect('127.0.0.1', port);
  await initiator.login({ initiatorName, targetName });
  await clearUnitAttentions(initiator);
  return initiator;
}

/** TEST UNIT READY until it answers anything but UNIT ATTENTION; returns that answer. */
export async function clearUnitAttentions(initiator: TestInitiator): Promise<ScsiResult> {
  for (let i = 0; i < 8; i++) {
    const result = await initiator.scsi(Buffer.from([0x00, 0, 0, 0, 0, 0]));
    if (!(result.status === 0x02 && (result.sense[2]! & 0x0f) === UNIT_ATTENTION)) return result;
  }
  throw new Error('TEST UNIT READY still reports UNIT ATTENTION after 8 tries');
}

/** Throws unless `result` is GOOD (status and sense in the message). */
export function mustBeGood(what: string, result: ScsiResult): ScsiResult {
  if (result.status !== 0) throw new Error(`${what}: status 0x${result.status.toString(16)} sense ${result.sense.toString('hex')}`);
  return result;
}
