// The cost of client-side encryption on the upload path (issue 17): 1 MiB chunks put into the
// embedded local object store (fsync per object, as the uploader writes them) and read back, four
// at a time like the uploader, with encryption off (LocalObjectStore) and on (EncryptingObjectStore
// with a local key file over the same kind of store); and the AES-256-GCM envelope alone (seal and
// open of 1 MiB in memory, one core). Run: npm run build && node dist/bench/encryption.js
// Environment: BENCH_CHUNKS=N (default 256 chunks of 1 MiB per row).
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { EncryptingObjectStore } from '../src/cloud/encrypting-object-store.js';
import { LocalKeyProvider } from '../src/cloud/local-key-provider.js';
import { LocalObjectStore } from '../src/cloud/local-object-store.js';
import { openObject, sealObject } from '../src/cloud/object-envelope.js';
import type { ObjectStore } from '../src/cloud/object-store.js';

const MIB = 1024 * 1024;
const CHUNKS = Number(process.env.BENCH_CHUNKS ?? 256);
const CONCURRENCY = 4;

const chunks = Array.from({ length: CHUNKS }, () => randomBytes(MIB));
const keys = chunks.map((c, i) => `volumes/1/chunks/${i.toString(16).padStart(8, '0')}/${createHash('sha256').update(c).digest('hex')}`);

async function eachConcurrently(work: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < CHUNKS) await work(next++);
    }),
  );
  return (CHUNKS * MIB) / 1e6 / ((performance.now() - start) / 1000);
}

async function row(name: string, store: ObjectStore): Promise<{ name: string; putMBs: number; getMBs: number }> {
  const putMBs = await eachConcurrently(async (i) => void (await store.put(keys[i]!, chunks[i]!)));
  const getMBs = await eachConcurrently(async (i) => {
    if (!(await store.get(keys[i]!)).equals(chunks[i]!)) throw new Error(`chunk ${i} read back wrong`);
  });
  return { name, putMBs, getMBs };
}

const dir = await mkdtemp(join(tmpdir(), 'shelfgate-bench-encryption-'));
try {
  const rows: Array<{ name: string; putMBs: number; getMBs: number }> = [];
  const rounds = 3;
  for (let round = 0; round < rounds; round++) {
    const plain = await LocalObjectStore.open(join(dir, `plain-${round}`));
    rows.push(await row('off', plain));
    await plain.close();
    const provider = await LocalKeyProvider.open(join(dir, `key-${round}`), { create: true });
    const encrypted = await EncryptingObjectStore.open({ inner: await LocalObjectStore.open(join(dir, `enc-${round}`)), provider });
    rows.push(await row('on', encrypted));
    await encrypted.close();
  }
  const dataKey = randomBytes(32);
  const groupId = randomBytes(16).toString('hex');
  let start = performance.now();
  const sealed = chunks.map((c, i) => sealObject(keys[i]!, c, groupId, dataKey));
  const sealMBs = (CHUNKS * MIB) / 1e6 / ((performance.now() - start) / 1000);
  start = performance.now();
  sealed.forEach((s, i) => {
    if (openObject(keys[i]!, s, dataKey) === null) throw new Error('open failed');
  });
  const openMBs = (CHUNKS * MIB) / 1e6 / ((performance.now() - start) / 1000);

  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const summary = (name: string) => ({
    put: median(rows.filter((r) => r.name === name).map((r) => r.putMBs)),
    get: median(rows.filter((r) => r.name === name).map((r) => r.getMBs)),
  });
  const off = summary('off');
  const on = summary('on');
  const pct = (a: number, b: number) => `${(((b - a) / a) * 100).toFixed(1)} %`;
  console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}; ${CHUNKS} × 1 MiB, ${CONCURRENCY} at a time, median of ${rounds} rounds`);
  console.log(`| encryption | put MB/s | get MB/s |`);
  console.log(`|---|---|---|`);
  console.log(`| off | ${off.put.toFixed(0)} | ${off.get.toFixed(0)} |`);
  console.log(`| on  | ${on.put.toFixed(0)} (${pct(off.put, on.put)}) | ${on.get.toFixed(0)} (${pct(off.get, on.get)}) |`);
  console.log(`AES-256-GCM envelope alone, one core: seal ${sealMBs.toFixed(0)} MB/s, open ${openMBs.toFixed(0)} MB/s`);
  console.log(`all rounds: ${rows.map((r) => `${r.name} put ${r.putMBs.toFixed(0)} get ${r.getMBs.toFixed(0)}`).join('; ')}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
