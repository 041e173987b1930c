// Shared by the appliance suites (test/vm/appliance-*.test.ts): free ports, the checks an initiator
// on the host makes against a gateway reached at HOST:PORT — discovery and login to every target
// (iscsi-ls), a volume write and read, a tape moved by the changer and written — and the checks
// after a restart that find that data again.
import net from 'node:net';
import { TestInitiator, read16, write16 } from './initiator.js';
import { runTool } from './libiscsi.js';
import { pattern } from './pattern.js';
import { clearUnitAttentions, moveMedium, mustBeGood, read6, rewind, write6, writeFilemarks6 } from './tape-commands.js';

export const IQN_PREFIX = 'iqn.2026-11.dev.shelfgate:';
const INITIATOR = 'iqn.2026-11.dev.shelfgate.test:appliance-host';
const BLOCK_BYTES = 512;
/** Written at this LBA of the volume (beyond the first MiB, in the middle of nowhere special). */
const VOLUME_LBA = 123_456;
const VOLUME_BYTES = 256 * 1024;
const TAPE_RECORD_BYTES = 64 * 1024;

/** A TCP port free on 127.0.0.1 right now (for a port mapping that must be known in advance). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Listed {
  target: string;
  portal: string;
  luns: number;
}

/** iscsi-ls -s at the portal: every "Target:NAME Portal:HOST:PORT,TAG" with its count of LUN
 *  lines (listed only after a login at that portal succeeded). */
export async function discoverAndLogin(host: string, port: number): Promise<Listed[]> {
  const result = await runTool('iscsi-ls', ['-i', INITIATOR, '-s', `iscsi://${host}:${port}`], { timeoutMs: 120_000 });
  if (result.exitCode !== 0) throw new Error(`iscsi-ls exited ${result.exitCode}: ${result.stderr}`);
  return result.stdout
    .split(/^(?=Target:)/m)
    .filter((section) => section.startsWith('Target:'))
    .map((section) => {
      const head = /^Target:(\S+) Portal:(\S+)$/m.exec(section)!;
      return { target: head[1]!, portal: head[2]!, luns: [...section.matchAll(/^Lun:\d+\s/gm)].length };
    });
}

async function login(host: string, port: number, targetName: string): Promise<TestInitiator> {
  const initiator = await TestInitiator.connect(host, port);
  await initiator.login({ initiatorName: INITIATOR, targetName });
  await clearUnitAttentions(initiator);
  return initiator;
}

/** Writes a pattern to the volume target (WRITE(16), then SYNCHRONIZE CACHE(10)) and reads it back. */
export async function writeVolume(host: string, port: number, targetName: string): Promise<Buffer> {
  const data = pattern(VOLUME_BYTES, 12);
  const initiator = await login(host, port, targetName);
  try {
    mustBeGood('WRITE(16)', await initiator.scsi(write16(VOLUME_LBA, VOLUME_BYTES / BLOCK_BYTES), { dataOut: data }));
    mustBeGood('SYNCHRONIZE CACHE(10)', await initiator.scsi(Buffer.from([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0])));
    const read = mustBeGood('READ(16)', await initiator.scsi(read16(VOLUME_LBA, VOLUME_BYTES / BLOCK_BYTES), { readLength: VOLUME_BYTES }));
    if (!read.dataIn.equals(data)) throw new Error('the volume did not read back what was written');
    await initiator.logout();
  } finally {
    initiator.destroy();
  }
  return data;
}

/** READ(16) of what writeVolume wrote. */
export async function readVolume(host: string, port: number, targetName: string): Promise<Buffer> {
  const initiator = await login(host, port, targetName);
  try {
    const read = mustBeGood('READ(16)', await initiator.scsi(read16(VOLUME_LBA, VOLUME_BYTES / BLOCK_BYTES), { readLength: VOLUME_BYTES }));
    await initiator.logout();
    return read.dataIn;
  } finally {
    initiator.destroy();
  }
}

export function expectedVolumeData(): Buffer {
  return pattern(VOLUME_BYTES, 12);
}

export function expectedTapeRecord(): Buffer {
  return pattern(TAPE_RECORD_BYTES, 34);
}

export interface LibraryView {
  changerTarget: string;
  drives: Array<{ index: number; address: number; targetName: string; barcode?: string }>;
  elements: Array<{ address: number; type: string; full: boolean; barcode?: string }>;
}

/** GET /v1/library with the bearer token. */
export async function library(apiBase: string, token: string): Promise<LibraryView> {
  const response = await fetch(`${apiBase}/v1/library`, { headers: { authorization: `Bearer ${token}` } });
  if (response.status !== 200) throw new Error(`GET /v1/library: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as LibraryView;
}

/** SMC-3 MOVE MEDIUM of the first full storage slot's tape into drive 1 (through the changer
 *  target at HOST:PORT), then one variable-length record and a filemark written by the drive
 *  target (SSC-4 WRITE(6), WRITE FILEMARKS(6)). Returns the tape's barcode. */
export async function loadAndWriteTape(host: string, port: number, view: LibraryView): Promise<string> {
  const slot = view.elements.find((e) => e.type === 'storage' && e.full);
  const drive = view.drives.find((d) => d.index === 1);
  if (slot?.barcode === undefined || drive === undefined) throw new Error(`no tape in a storage slot or no drive 1: ${JSON.stringify(view.elements.slice(0, 4))}`);
  const changer = await login(host, port, view.changerTarget);
  try {
    mustBeGood('MOVE MEDIUM', await changer.scsi(moveMedium(slot.address, drive.address)));
    await changer.logout();
  } finally {
    changer.destroy();
  }
  const tape = await login(host, port, drive.targetName);
  try {
    mustBeGood('WRITE(6)', await tape.scsi(write6(TAPE_RECORD_BYTES), { dataOut: expectedTapeRecord() }));
    mustBeGood('WRITE FILEMARKS(6)', await tape.scsi(writeFilemarks6(1)));
    await tape.logout();
  } finally {
    tape.destroy();
  }
  return slot.barcode;
}

/** REWIND and READ(6) of the first record on the tape in `driveTarget`. */
export async function readTapeRecord(host: string, port: number, driveTarget: string): Promise<Buffer> {
  const tape = await login(host, port, driveTarget);
  try {
    mustBeGood('REWIND', await tape.scsi(rewind()));
    const read = mustBeGood('READ(6)', await tape.scsi(read6(TAPE_RECORD_BYTES), { readLength: TAPE_RECORD_BYTES }));
    await tape.logout();
    return read.dataIn;
  } finally {
    tape.destroy();
  }
}
