// Power loss, simulated as RocksDB's fault-injection file system does (test/helpers/
// power-cut-file-system.ts): the volume store runs random writes, FUA writes, UNMAPs and
// SYNCHRONIZE CACHE with concurrent commands, background checkpoints, segment rolls and cleaning;
// then the power is cut at a random point (some commands still in flight) and every byte not
// covered by a completed fdatasync is dropped or torn. After the cut the store must open cleanly
// and, for every 4 KiB block, read either the last value that was flushed (acknowledged before a
// completed SYNCHRONIZE CACHE, or acknowledged FUA / write-cache-off) or a value written after it
// (never garbage, never an older value).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { openDatabase } from '../../src/store/database.js';
import { SegmentBlockStore, type VolumeStoreContext } from '../../src/store/segment-block-store.js';
import { putVolume, type VolumeRecord } from '../../src/store/volume-catalog.js';
import { PowerCutFileSystem, type CutMode } from '../helpers/power-cut-file-system.js';

const ITERATIONS = Number(process.env.POWER_CUT_ITERATIONS ?? 200);
/** To replay one failing cut: POWER_CUT_FIRST=<iteration> POWER_CUT_ITERATIONS=1. */
const FIRST = Number(process.env.POWER_CUT_FIRST ?? 0);
const SECTOR = 512;
const BLOCK = 4096;
const SECTORS_PER_BLOCK = BLOCK / SECTOR;
const VOLUME_BLOCKS = 512; // 2 MiB: two map pages, many overwrites

const record: VolumeRecord = {
  id: 1,
  name: 'cut',
  type: 'stored',
  sizeBytes: VOLUME_BLOCKS * BLOCK,
  blockSize: SECTOR,
  chunkSizeBytes: 16 * 1024,
  createdAt: '2026-12-07T00:00:00.000Z',
  serial: 'vol-CUT00001',
  naaId: '5a2c0de000000001',
};

function rng(seed: number): () => number {
  let x = (seed * 2654435761) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

/** Block content that names its write: every 8 bytes = writeId u32, block u32. */
function blockContent(writeId: number, block: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  for (let i = 0; i < BLOCK; i += 8) {
    b.writeUInt32BE(writeId, i);
    b.writeUInt32BE(block, i + 4);
  }
  return b;
}

/** 0 for zeros, the write id for a whole block of one write, -1 for anything else. */
function identify(data: Buffer, block: number): number {
  if (data.every((byte) => byte === 0)) return 0;
  const id = data.readUInt32BE(0);
  return id > 0 && data.equals(blockContent(id, block)) ? id : -1;
}

interface Model {
  /** Per block: values (write ids, 0 = unmapped) in the order their commands were issued. */
  history: number[][];
  /** Per block: index in history of the last value known durable, -1 = none (zeros are). */
  durable: number[];
  /** Per block: index in history of the last acknowledged value. */
  acked: number[];
}

t.test(`PowerCut.RandomCutPoints: ${ITERATIONS} cuts, every flushed write survives`, async (t) => {
  let failures = 0;
  let syncs = 0;
  let torn = 0;
  let dropped = 0;
  for (let iteration = FIRST; iteration < FIRST + ITERATIONS && failures === 0; iteration++) {
    const random = rng(iteration + 1);
    const pick = (n: number): number => Math.floor(random() * n);
    const dataDir = await mkdtemp(join(tmpdir(), 'shelfgate-cut-'));
    const fs = new PowerCutFileSystem();
    let db = await openDatabase(dataDir);
    await putVolume(db, record);
    const writeCache = pick(3) !== 0;
    const ctx = (): VolumeStoreContext => ({
      db,
      volumesDir: join(dataDir, 'volumes'),
      fs,
      segmentBytes: 64 * 1024 + pick(4) * 64 * 1024,
      checkpointIntervalMs: 1 + pick(20),
    });
    const store = await SegmentBlockStore.open(ctx(), record, { writeCache });
    const model: Model = {
      history: Array.from({ length: VOLUME_BLOCKS }, () => []),
      durable: new Array<number>(VOLUME_BLOCKS).fill(-1),
      acked: new Array<number>(VOLUME_BLOCKS).fill(-1),
    };
    let nextWriteId = 1;
    // A command that completes after the cut never reported its status to anyone.
    let powerOn = true;
    const groups = 5 + pick(40);
    const runGroup = (wait: boolean): Array<Promise<unknown>> => {
      const used = new Set<number>();
      const ops: Array<Promise<unknown>> = [];
      const width = 1 + pick(4);
      for (let k = 0; k < width; k++) {
        const kind = pick(20);
        if (kind < 2) {
          // SYNCHRONIZE CACHE: what was acknowledged when it was issued is durable when it ends.
          const snapshot = [...model.acked];
          ops.push(
            store.flush().then(() => {
              if (powerOn) snapshot.forEach((h, b) => (model.durable[b] = Math.max(model.durable[b]!, h)));
            }),
          );
          continue;
        }
        const count = 1 + pick(kind < 4 ? 64 : 24);
        const first = pick(VOLUME_BLOCKS - count);
        let overlaps = false;
        for (let b = first; b < first + count; b++) if (used.has(b)) overlaps = true;
        if (overlaps) continue;
        for (let b = first; b < first + count; b++) used.add(b);
        const isUnmap = kind === 19;
        const fua = kind === 18 || kind === 17;
        const writeId = isUnmap ? 0 : nextWriteId++;
        const indexes = new Map<number, number>();
        for (let b = first; b < first + count; b++) {
          model.history[b]!.push(writeId);
          indexes.set(b, model.history[b]!.length - 1);
        }
        const done = (): void => {
          if (!powerOn) return;
          for (const [b, h] of indexes) {
            model.acked[b] = Math.max(model.acked[b]!, h);
            if (fua || !writeCache) model.durable[b] = Math.max(model.durable[b]!, h);
          }
        };
        if (isUnmap) {
          ops.push(store.unmap(first * SECTORS_PER_BLOCK, count * SECTORS_PER_BLOCK, { fua }).then(done));
        } else {
          const data = Buffer.concat(Array.from({ length: count }, (_, i) => blockContent(writeId, first + i)));
          ops.push(store.write(first * SECTORS_PER_BLOCK, data, { fua }).then(done));
        }
      }
      if (!wait) for (const op of ops) op.catch(() => undefined);
      return ops;
    };
    for (let g = 0; g < groups; g++) await Promise.all(runGroup(true));
    // The cut: some commands are in flight, background checkpoints may be running.
    runGroup(false);
    await new Promise((r) => setImmediate(r));
    powerOn = false;
    await store.crash();
    syncs += fs.datasyncs;
    const mode: CutMode = pick(2) === 0 ? 'drop-all' : 'random';
    const cut = await fs.cut(mode, random);
    torn += cut.tornWrites;
    dropped += cut.droppedWrites;
    await db.close();

    db = await openDatabase(dataDir);
    const reopened = await SegmentBlockStore.open(ctx(), record);
    const all = await reopened.read(0, VOLUME_BLOCKS * SECTORS_PER_BLOCK);
    for (let b = 0; b < VOLUME_BLOCKS; b++) {
      const got = identify(all.subarray(b * BLOCK, (b + 1) * BLOCK), b);
      const history = model.history[b]!;
      const from = model.durable[b]!;
      const allowed = new Set(from < 0 ? [0, ...history] : history.slice(from));
      if (!allowed.has(got)) {
        failures++;
        t.fail(`iteration ${iteration} (${mode}, write cache ${writeCache}): block ${b} reads ${got === -1 ? 'garbage' : `write ${got}`}, allowed ${[...allowed].join(',')}`);
        break;
      }
    }
    // The store keeps working after the cut.
    await reopened.write(0, blockContent(999_999, 0));
    t.equal(identify(await reopened.read(0, SECTORS_PER_BLOCK), 0), 999_999, `iteration ${iteration}: writable after the cut`);
    await reopened.close();
    await db.close();
    await rm(dataDir, { recursive: true, force: true });
  }
  t.equal(failures, 0, `${ITERATIONS} cut points: no flushed write lost, no garbage (${syncs} fdatasyncs, ${dropped} writes dropped, ${torn} torn)`);
  t.ok(syncs > 0 && dropped + torn > 0, 'the cuts discarded unsynced writes');
});
