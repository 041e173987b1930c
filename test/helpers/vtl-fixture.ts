// A tape library on a real Level database in a temporary directory: catalog, tape media store,
// library with stub drives, service and the media changer LU — and a way to reopen it (restart).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Nexus, ScsiResponse } from '../../iscsi/device.js';
import { silentLogger } from '../../iscsi/log.js';
import { createMediaChangerLogicalUnit, type ChangerPersonality } from '../../iscsi/scsi/media-changer.js';
import { TapeCatalog } from '../../src/gateway/tape-catalog.js';
import { TapeLibrary } from '../../src/gateway/tape-library.js';
import { TapeService } from '../../src/gateway/tape-service.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { TapeMediumStore } from '../../src/store/tape-medium-store.js';
import { StubTapeDrive } from './stub-tape-drive.js';

export const nexusA: Nexus = {
  id: 'a',
  initiatorPortName: 'iqn.1994-05.com.example:a,i,0x400001370000',
  initiatorName: 'iqn.1994-05.com.example:a',
  targetPortName: 'iqn.2026-11.dev.shelfgate:shelfgate-mediachanger,t,0x0001',
  relativeTargetPortId: 1,
};
export const nexusB: Nexus = { ...nexusA, id: 'b', initiatorPortName: 'iqn.1994-05.com.example:b,i,0x400001370000', initiatorName: 'iqn.1994-05.com.example:b' };

export interface VtlFixture {
  dir: string;
  db: Database;
  drives: StubTapeDrive[];
  catalog: TapeCatalog;
  media: TapeMediumStore;
  library: TapeLibrary;
  service: TapeService;
  changer: ReturnType<typeof createMediaChangerLogicalUnit>;
  run(cdb: number[], nexus?: Nexus): Promise<ScsiResponse>;
  /** Runs TEST UNIT READY once so the power-on unit attention is out of the way. */
  ready(nexus?: Nexus): Promise<void>;
}

export interface VtlFixtureOptions {
  /** TapeLibrary requireDriveUnload (the strict IBM behaviour). */
  requireDriveUnload?: boolean;
}

async function build(dir: string, personality: ChangerPersonality, db: Database, options: VtlFixtureOptions): Promise<VtlFixture> {
  const drives = Array.from({ length: personality.addressMap.dataTransfer.count }, (_, i) => new StubTapeDrive(`SGDRIVE${String(i + 1).padStart(3, '0')}`));
  const media = new TapeMediumStore(db);
  const catalog = await TapeCatalog.open(db);
  const library = await TapeLibrary.open({
    addressMap: personality.addressMap,
    drives,
    driveIdentity: { vendor: 'IBM', product: 'ULT3580-TD5' },
    catalog,
    media,
    log: silentLogger,
    requireDriveUnload: options.requireDriveUnload ?? false,
  });
  const service = new TapeService({ library, catalog, media, log: silentLogger });
  const changer = createMediaChangerLogicalUnit(library, personality, { serial: 'SGCHANGER1', naaId: '5a2c0de000000001' });
  const run = (cdb: number[], nexus: Nexus = nexusA) =>
    changer.execute({ nexus, cdb: Buffer.from(cdb), taskAttr: 1, expectedDataTransferLength: 1 << 20, dataOut: null });
  return {
    dir,
    db,
    drives,
    catalog,
    media,
    library,
    service,
    changer,
    run,
    ready: async (nexus = nexusA) => {
      await run([0, 0, 0, 0, 0, 0], nexus);
    },
  };
}

export async function openVtlFixture(personality: ChangerPersonality, dir?: string, options: VtlFixtureOptions = {}): Promise<VtlFixture> {
  const where = dir ?? (await mkdtemp(join(tmpdir(), 'shelfgate-vtl-')));
  return build(where, personality, await openDatabase(where), options);
}

/** Closes the fixture; `keep` leaves the directory for a reopen. */
export async function closeVtlFixture(f: VtlFixture, keep = false): Promise<void> {
  f.changer.close();
  await f.library.close();
  await f.db.close();
  if (!keep) await rm(f.dir, { recursive: true, force: true });
}

export const GIB = 1024 ** 3;

/** READ ELEMENT STATUS CDB. */
export function readElementStatus(opts: { type: number; start?: number; count?: number; voltag?: boolean; dvcid?: boolean; alloc?: number }): number[] {
  const start = opts.start ?? 0;
  const count = opts.count ?? 0xffff;
  const alloc = opts.alloc ?? 0xffffff;
  return [0xb8, (opts.voltag ? 0x10 : 0) | opts.type, start >> 8, start & 0xff, count >> 8, count & 0xff, opts.dvcid ? 0x01 : 0, alloc >> 16, (alloc >> 8) & 0xff, alloc & 0xff, 0, 0];
}

export function moveMedium(source: number, destination: number, transport = 0): number[] {
  return [0xa5, 0, transport >> 8, transport & 0xff, source >> 8, source & 0xff, destination >> 8, destination & 0xff, 0, 0, 0, 0];
}
