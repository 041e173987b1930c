// Archive throughput of a tape-sized stream to each ArchiveStore backend:
// `node dist/bench/archive.js [--gib N] [--part-mib M] [--concurrency C] [--backend local|glacier|s3-archive]…`
// (defaults: 2 GiB, 64 MiB parts, 2 parts in flight, all three backends). Each row archives the
// stream (tree hash per part, upload, complete), then requests an Expedited retrieval (the test
// endpoints complete it at once) and reads the whole archive back verified, in part-sized reads.
// Backends: local = LocalArchiveStore in a fresh os.tmpdir() directory; glacier = the real
// client-glacier against test/helpers/glacier-endpoint.ts (SigV4, tree-hash and SHA-256 checks on
// every part); s3-archive = client-s3 against s3rver behind test/helpers/s3-restore-endpoint.ts.
// All on one machine, so the numbers measure the client + endpoint CPU path, not a network.
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ArchiveStore } from '../src/cloud/archive-store.js';
import { GlacierArchiveStore } from '../src/cloud/glacier-archive-store.js';
import { LocalArchiveStore } from '../src/cloud/local-archive-store.js';
import { S3ArchiveStore } from '../src/cloud/s3-archive-store.js';
import { GLACIER_TEST_CREDENTIALS, GLACIER_TEST_REGION, GlacierEndpoint } from '../test/helpers/glacier-endpoint.js';
import { S3RestoreEndpoint } from '../test/helpers/s3-restore-endpoint.js';
import { S3RVER_CREDENTIALS } from '../test/helpers/s3rver.js';

const MiB = 1024 * 1024;
const BACKENDS = ['local', 'glacier', 's3-archive'] as const;
type Backend = (typeof BACKENDS)[number];

interface Args {
  sizeBytes: number;
  partSizeBytes: number;
  concurrency: number;
  backends: Backend[];
}

function parseArgs(argv: string[]): Args {
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const backends = argv.flatMap((arg, i) => (arg === '--backend' ? [argv[i + 1] as Backend] : []));
  return {
    sizeBytes: Math.round(Number(value('--gib') ?? 2) * 1024 * MiB),
    partSizeBytes: Number(value('--part-mib') ?? 64) * MiB,
    concurrency: Number(value('--concurrency') ?? 2),
    backends: backends.length > 0 ? backends : [...BACKENDS],
  };
}

/** Part `index` of the stream: a fixed random-looking block with the index stamped in, so parts differ. */
function partOf(template: Buffer, index: number, lengthBytes: number): Buffer {
  const part = Buffer.from(template.subarray(0, lengthBytes));
  for (let offset = 0; offset + 8 <= lengthBytes; offset += MiB) {
    part.writeUInt32BE(index, offset);
    part.writeUInt32BE(offset / MiB, offset + 4);
  }
  return part;
}

function template(lengthBytes: number): Buffer {
  const buf = Buffer.allocUnsafe(lengthBytes);
  let x = 0x9e3779b9;
  for (let i = 0; i + 4 <= lengthBytes; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeInt32LE(x | 0, i);
  }
  return buf;
}

async function openBackend(backend: Backend, partSizeBytes: number): Promise<{ store: ArchiveStore; close(): Promise<void> }> {
  const retry = { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 };
  switch (backend) {
    case 'local': {
      const directory = await mkdtemp(join(tmpdir(), 'shelfgate-bench-archive-'));
      return { store: new LocalArchiveStore({ directory, partSizeBytes }), close: () => rm(directory, { recursive: true, force: true }) };
    }
    case 'glacier': {
      const endpoint = await GlacierEndpoint.start();
      const store = new GlacierArchiveStore({
        vaultName: 'bench',
        createVault: true,
        endpoint: endpoint.url,
        region: GLACIER_TEST_REGION,
        credentials: GLACIER_TEST_CREDENTIALS,
        partSizeBytes,
        retry,
      });
      return { store, close: async () => (await store.close(), await endpoint.close()) };
    }
    case 's3-archive': {
      const endpoint = await S3RestoreEndpoint.start();
      const store = new S3ArchiveStore({
        bucket: endpoint.bucket,
        storageClass: 'GLACIER',
        endpoint: endpoint.url,
        forcePathStyle: true,
        credentials: S3RVER_CREDENTIALS,
        partSizeBytes,
        retry,
      });
      return { store, close: async () => (await store.close(), await endpoint.close()) };
    }
  }
}

async function benchBackend(backend: Backend, args: Args, block: Buffer): Promise<void> {
  const { store, close } = await openBackend(backend, args.partSizeBytes);
  try {
    const partCount = Math.ceil(args.sizeBytes / args.partSizeBytes);
    const started = performance.now();
    const upload = await store.beginArchive('tape-BENCH01', { description: 'bench', sizeBytes: args.sizeBytes });
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < partCount) {
        const index = next++;
        const lengthBytes = Math.min(args.partSizeBytes, args.sizeBytes - index * args.partSizeBytes);
        await upload.uploadPart(index, partOf(block, index, lengthBytes));
      }
    };
    await Promise.all(Array.from({ length: Math.min(args.concurrency, partCount) }, worker));
    const { archiveId } = await upload.complete();
    const archiveMs = performance.now() - started;
    const { jobId } = await store.requestRetrieval(archiveId, { tier: 'Expedited' });
    const readStarted = performance.now();
    for (let offsetBytes = 0; offsetBytes < args.sizeBytes; offsetBytes += args.partSizeBytes) {
      const got = await store.readRetrieved(jobId, { offsetBytes, lengthBytes: args.partSizeBytes });
      if (got.length !== Math.min(args.partSizeBytes, args.sizeBytes - offsetBytes)) {
        throw new Error(`short read at ${offsetBytes}`);
      }
    }
    const readMs = performance.now() - readStarted;
    const rate = (ms: number): string => `${(args.sizeBytes / MiB / (ms / 1000)).toFixed(0).padStart(5)} MiB/s`;
    console.log(
      `${backend.padEnd(11)} archive ${rate(archiveMs)} (${(archiveMs / 1000).toFixed(1)} s)   verified read-back ${rate(readMs)} (${(readMs / 1000).toFixed(1)} s)   load ${loadavg()
        .map((n) => n.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    await close();
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  console.log(
    `archive ${(args.sizeBytes / 1024 / MiB).toFixed(2)} GiB in ${args.partSizeBytes / MiB} MiB parts, ${args.concurrency} in flight`,
  );
  const block = template(args.partSizeBytes);
  for (const backend of args.backends) {
    await benchBackend(backend, args, block);
  }
}

await main();
