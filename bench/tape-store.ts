// Tape medium store throughput, below iSCSI: `node dist/bench/tape-store.js [--rss-gib N]`.
// Rows: WRITE at queue depth 1 (what vtl-probe and Linux st do: one WRITE(6) at a time, each
// acknowledged only when durable) and 8 (a pipelining drive), then READ at QD1 from the start of
// the tape (page cache warm), for 4096 x 256 KiB and 4096 x 64 KiB records (fixed-mode size).
// `--rss-gib N` also streams N GiB of 256 KiB records at QD8 and reports the peak RSS.
// The data directory is a fresh one under os.tmpdir(); the machine load is printed with each row
// because the numbers are only comparable at similar load.
import { loadavg, tmpdir } from 'node:os';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openDatabase } from '../src/store/database.js';
import { TapeMediumStore } from '../src/store/tape-medium-store.js';
import type { StoredTapeMedium } from '../src/store/tape-medium.js';

const MiB = 1024 * 1024;
const RECORD_COUNT = Number(process.env.BENCH_TAPE_RECORDS ?? 4096);

function parseArgs(argv: string[]): { rssGib: number } {
  const i = argv.indexOf('--rss-gib');
  return { rssGib: i >= 0 ? Number(argv[i + 1]) : 0 };
}

function load(): string {
  return loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');
}

/** Distinct record contents (so nothing can be deduplicated), reused round-robin. */
function recordPool(recordBytes: number): Buffer[] {
  return Array.from({ length: 8 }, (_, k) => Buffer.alloc(recordBytes, 0x41 + k));
}

async function writeRecords(tape: StoredTapeMedium, count: number, recordBytes: number, queueDepth: number): Promise<void> {
  const pool = recordPool(recordBytes);
  const inFlight = new Set<Promise<unknown>>();
  for (let n = 0; n < count; n++) {
    // A drive hands over each record's own buffer; the store keeps it until durable.
    const data = Buffer.from(pool[n % pool.length]!);
    const write: Promise<unknown> = tape.writeRecord(data).then(() => inFlight.delete(write));
    inFlight.add(write);
    if (inFlight.size >= queueDepth) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}

async function readRecords(tape: StoredTapeMedium, count: number, recordBytes: number): Promise<void> {
  for (let n = 0; n < count; n++) {
    const r = await tape.read();
    if (r.kind !== 'record' || r.data.length !== recordBytes) throw new Error(`object ${n}: unexpected ${r.kind}`);
  }
}

function row(name: string, bytes: number, ms: number): void {
  const mibPerS = bytes / MiB / (ms / 1000);
  console.log(`${name.padEnd(34)} ${mibPerS.toFixed(0).padStart(6)} MiB/s  ${ms.toFixed(0).padStart(6)} ms  load ${load()}`);
}

async function timed(step: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await step();
  return performance.now() - start;
}

async function main(): Promise<void> {
  const { rssGib } = parseArgs(process.argv.slice(2));
  const dataDir = await mkdtemp(join(tmpdir(), 'shelfgate-bench-tape-'));
  const db = await openDatabase(dataDir);
  const store = new TapeMediumStore(db);
  try {
    console.log(`tape store, ${RECORD_COUNT} records per row, data dir ${dataDir}`);
    let tapeNumber = 0;
    for (const recordBytes of [256 * 1024, 64 * 1024]) {
      const kib = recordBytes / 1024;
      for (const queueDepth of [1, 8]) {
        const tape = await store.create({ barcode: `BENCH${tapeNumber++}`, capacityBytes: 64 * 1024 * MiB });
        const bytes = RECORD_COUNT * recordBytes;
        row(`write ${kib} KiB QD${queueDepth}`, bytes, await timed(() => writeRecords(tape, RECORD_COUNT, recordBytes, queueDepth)));
        if (queueDepth === 1) {
          await tape.rewind();
          row(`read  ${kib} KiB QD1`, bytes, await timed(() => readRecords(tape, RECORD_COUNT, recordBytes)));
        }
        await store.close(tape);
      }
    }
    if (rssGib > 0) {
      const tape = await store.create({ barcode: 'BENCHRSS', capacityBytes: (rssGib + 1) * 1024 * MiB });
      let peakRss = process.memoryUsage.rss();
      const sampler = setInterval(() => {
        peakRss = Math.max(peakRss, process.memoryUsage.rss());
      }, 50);
      const recordBytes = 256 * 1024;
      const count = (rssGib * 1024 * MiB) / recordBytes;
      const ms = await timed(() => writeRecords(tape, count, recordBytes, 8));
      clearInterval(sampler);
      row(`write ${rssGib} GiB 256 KiB QD8`, count * recordBytes, ms);
      console.log(`peak RSS ${(peakRss / MiB).toFixed(0)} MiB`);
      await store.close(tape);
    }
  } finally {
    await store.closeAll();
    await db.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
