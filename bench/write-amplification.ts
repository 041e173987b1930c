// Write amplification of the volume segment store (docs/storage-engine.md "Cleaning"): random
// writes over a volume, driven straight at SegmentBlockStore (no iSCSI), then the bytes the log
// took (records, headers, the cleaner's relocations) against the bytes written, and the space the
// log holds against the live data.
//   node dist/bench/write-amplification.js [volumeMiB=256] [writtenMiB=2048] [writeKiB=4]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openDatabase } from '../src/store/database.js';
import { SegmentBlockStore } from '../src/store/segment-block-store.js';
import { putVolume } from '../src/store/volume-catalog.js';

const MiB = 1024 * 1024;
const [volumeMiB = 256, writtenMiB = 2048, writeKiB = 4] = process.argv.slice(2).map(Number);
const BLOCK = 512;
const QUEUE_DEPTH = 32;

const dir = await mkdtemp(join(tmpdir(), 'shelfgate-wa-'));
const db = await openDatabase(dir);
const record = {
  id: 1,
  name: 'wa',
  type: 'stored' as const,
  sizeBytes: volumeMiB * MiB,
  blockSize: BLOCK,
  chunkSizeBytes: 16 * 1024,
  createdAt: new Date().toISOString(),
  serial: 'vol-WA000001',
  naaId: '5a2c0de0000000aa',
};
await putVolume(db, record);
const store = await SegmentBlockStore.open({ db, volumesDir: join(dir, 'volumes') }, record);
const writeBytes = writeKiB * 1024;
const slots = (volumeMiB * MiB) / writeBytes;
const data = Buffer.alloc(writeBytes, 0xa5);
let seed = 12345;
const next = (): number => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % slots;
};
// Fill the volume once so every later write overwrites live data.
for (let offset = 0; offset < volumeMiB * MiB; offset += MiB) await store.write(offset / BLOCK, Buffer.alloc(MiB, 1));
const filled = store.stats();
const started = performance.now();
let remaining = (writtenMiB * MiB) / writeBytes;
await Promise.all(
  Array.from({ length: QUEUE_DEPTH }, async () => {
    while (remaining-- > 0) await store.write((next() * writeBytes) / BLOCK, data);
  }),
);
await store.checkpoint();
const seconds = (performance.now() - started) / 1000;
const s = store.stats();
const client = s.clientWrittenBytes - filled.clientWrittenBytes;
const appended = s.appendedBytes - filled.appendedBytes;
console.log(
  JSON.stringify(
    {
      volumeMiB,
      writtenMiB,
      writeKiB,
      seconds: Number(seconds.toFixed(1)),
      writeAmplification: Number((appended / client).toFixed(2)),
      relocatedMiB: Number((s.relocatedBytes / MiB).toFixed(1)),
      logMiB: Number((s.logBytes / MiB).toFixed(1)),
      liveMiB: Number((s.liveBytes / MiB).toFixed(1)),
      spaceAmplification: Number((s.logBytes / s.liveBytes).toFixed(2)),
      segments: s.segments,
    },
    null,
    2,
  ),
);
await store.close();
await db.close();
await rm(dir, { recursive: true, force: true });
