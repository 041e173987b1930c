// `npm run bench`: shelfgate and Debian's tgt side by side, driven by the same clients
// (iscsi-perf, qemu-img, the in-repo test initiator; vtl-probe for the tape rows, bench/tape.ts),
// written up as docs/benchmarks.md (issue 9).
// Two pairs, each measured in the same run with the same clients:
//   - "write cache": shelfgate volume with writeCache true (WCE=1: GOOD once the OS has the data)
//     against tgt's default rdwr backing store (buffered I/O, GOOD from the page cache);
//   - "sync": shelfgate volume with writeCache false (WCE=0: every write on stable storage before
//     GOOD) against tgt with `--bsoflags sync` (backing file opened O_SYNC).
// One gateway process serves both volumes (config file); two tgtd processes serve one LUN each.
// All four 1 GiB disks are on the same filesystem (os.tmpdir()). Besides throughput, each row
// records the target process's CPU seconds (utime + stime, all threads, until it is idle again so
// the uploader's share of a write row is counted) per GiB moved and its peak RSS.
// A full run takes about 12 minutes (BENCH_SECONDS per timed row, default 10).
//
// Environment:
//   BENCH_SECONDS=N        length of each timed row (default 10)
//   BENCH_ROWS=REGEX       only rows whose name matches (a partial run does not write the docs)
//   BENCH_TAPE=0           skip the tape rows (bench/tape.ts)
//   BENCH_CPU_PROFILE=DIR  profile the gateway's main thread during each shelfgate row
//                          (bench/cpu-profile-preload.ts); writes DIR/*.cpuprofile and
//                          DIR/summary.md, not the docs (profiling slows the gateway down)
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { repoRoot, startGateway, type GatewayProcess } from '../test/helpers/gateway-process.js';
import { TestInitiator, write16 } from '../test/helpers/initiator.js';
import { runTool } from '../test/helpers/libiscsi.js';
import { TGT_DISK_LUN, TGT_TARGET_IQN, startTgt, type TgtProcess } from '../test/helpers/tgt.js';
import { GatewayProfiler, profileDirFromEnv } from './gateway-profiler.js';
import { PeakRss, cpuSeconds, waitIdle } from './proc-stats.js';
import { runTapeBench } from './tape.js';

const DISK_BYTES = 1024 * 1024 * 1024;
const GiB = 2 ** 30;
const BENCH_SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ROW_FILTER = process.env.BENCH_ROWS ? new RegExp(process.env.BENCH_ROWS, 'i') : null;
const RUN_TAPE = process.env.BENCH_TAPE !== '0';
const PROFILE_DIR = profileDirFromEnv() === null ? null : resolve(profileDirFromEnv()!);
const WRITES_DOCS = ROW_FILTER === null && PROFILE_DIR === null && RUN_TAPE;
const VOLUME_WCE1 = 'bench-wce1';
const VOLUME_WCE0 = 'bench-wce0';
const INITIATOR = 'iqn.2026-11.test:bench';
/** How long a measurement's CPU figure keeps counting after the client is done (uploader work). */
const TAIL_MAX_MS = 180_000;

type Pair = 'cache' | 'sync';
const PAIRS: Array<{ pair: Pair; title: string }> = [
  { pair: 'cache', title: 'WCE=1 vs tgt default' },
  { pair: 'sync', title: 'WCE=0 vs tgt sync' },
];

interface Target {
  label: 'tgt' | 'shelfgate';
  pair: Pair;
  url: string;
  port: number;
  iqn: string;
  lun: number;
  /** The process that serves this target (tgtd or the gateway), for /proc figures. */
  pid: number;
}

interface Measure {
  value: number;
  /** e.g. "MB/s", "IOPS" */
  unit: string;
  /** Bytes moved during the measurement (for CPU seconds per GiB). */
  bytes: number;
}

interface Observed extends Measure {
  cpuSeconds: number;
  peakRssBytes: number;
}

interface Row {
  name: string;
  /** The client command with URL as a placeholder. */
  command: string;
  higherIsBetter: boolean;
  run(target: Target): Promise<Measure>;
}

async function mustRun(command: string, args: string[], timeoutMs: number): Promise<string> {
  const result = await runTool(command, args, { timeoutMs });
  if (result.exitCode !== 0 && !result.timedOut) throw new Error(`${command} ${args.join(' ')} exited ${result.exitCode}: ${result.stderr}`);
  return result.stdout + result.stderr;
}

/** iscsi-perf (libiscsi-bin) reads only; its last line is "iops average N (X MB/s)". */
function iscsiPerfRow(name: string, queueDepth: number, blocksPerRequest: number, random: boolean): Row {
  const args = ['-m', String(queueDepth), '-b', String(blocksPerRequest), '-t', String(BENCH_SECONDS), ...(random ? ['-r'] : [])];
  return {
    name,
    command: `iscsi-perf ${args.join(' ')} URL`,
    higherIsBetter: true,
    async run(target) {
      const output = await mustRun('iscsi-perf', [...args, target.url], (BENCH_SECONDS + 30) * 1000);
      const averages = [...output.matchAll(/iops average (\d+) \((\d+) MB\/s\)/g)];
      const last = averages.at(-1);
      if (!last) throw new Error(`no iops average in iscsi-perf output:\n${output.slice(-2000)}`);
      const iops = Number(last[1]);
      const bytes = iops * blocksPerRequest * 512 * BENCH_SECONDS;
      return blocksPerRequest * 512 >= 1024 * 1024 ? { value: Number(last[2]), unit: 'MB/s', bytes } : { value: iops, unit: 'IOPS', bytes };
    },
  };
}

function qemuConvertRow(name: string, direction: 'in' | 'out', imageFile: string, outputFile: string): Row {
  const argsFor = (url: string): string[] =>
    direction === 'in' ? ['convert', '-n', '-f', 'raw', '-O', 'raw', imageFile, url] : ['convert', '-f', 'raw', '-O', 'raw', url, outputFile];
  return {
    name,
    command: `qemu-img ${argsFor('URL').join(' ').replace(imageFile, 'random-1GiB.raw').replace(outputFile, 'copy.raw')}`,
    higherIsBetter: true,
    async run(target) {
      const started = performance.now();
      await mustRun('qemu-img', argsFor(target.url), 15 * 60_000);
      const seconds = (performance.now() - started) / 1000;
      if (direction === 'out') await rm(outputFile, { force: true });
      return { value: Math.round(DISK_BYTES / 1e6 / seconds), unit: 'MB/s', bytes: DISK_BYTES };
    },
  };
}

/** libiscsi has no random-write tool and Debian's fio has no libiscsi engine, so the in-repo test
 *  initiator (same for every target) keeps `queueDepth` 4 KiB WRITE(16)s in flight for
 *  BENCH_SECONDS, at uniformly random 4 KiB-aligned LBAs over the whole 1 GiB disk, each with
 *  different data (random blocks with a sequence number in the first 8 bytes). */
function randomWriteRow(name: string, queueDepth: number): Row {
  return {
    name,
    command: `test/helpers/initiator.ts: WRITE(16) 4 KiB at random 4 KiB-aligned LBAs over 1 GiB, ${queueDepth} in flight, ${BENCH_SECONDS} s`,
    higherIsBetter: true,
    async run(target) {
      const initiator = await TestInitiator.connect('127.0.0.1', target.port);
      try {
        await initiator.login({ initiatorName: INITIATOR, targetName: target.iqn });
        await initiator.scsi(Buffer.from([0x00, 0, 0, 0, 0, 0]), { lun: target.lun });
        const payloads = Array.from({ length: queueDepth * 2 }, () => randomBytes(4096));
        const slots = DISK_BYTES / 4096;
        let state = 12345;
        const nextSlot = (): number => {
          // xorshift32: a full-period generator (an LCG mod 2^32 taken mod 2^18 repeats too soon).
          state ^= state << 13;
          state ^= state >>> 17;
          state ^= state << 5;
          return (state >>> 0) % slots;
        };
        let completed = 0;
        const deadline = performance.now() + BENCH_SECONDS * 1000;
        const lane = async (laneIndex: number): Promise<void> => {
          let round = 0;
          while (performance.now() < deadline) {
            const payload = payloads[(laneIndex * 2 + (round++ & 1)) % payloads.length]!;
            payload.writeDoubleBE(completed + laneIndex / 1000, 0);
            const result = await initiator.scsi(write16(nextSlot() * 8, 8), { dataOut: payload, lun: target.lun });
            if (result.status !== 0) throw new Error(`WRITE(16) status ${result.status}`);
            completed++;
          }
        };
        const started = performance.now();
        await Promise.all(Array.from({ length: queueDepth }, (_, i) => lane(i)));
        const seconds = (performance.now() - started) / 1000;
        return { value: Math.round(completed / seconds), unit: 'IOPS', bytes: completed * 4096 };
      } finally {
        initiator.destroy();
      }
    },
  };
}

async function toolVersion(command: string, args: string[], pattern: RegExp): Promise<string> {
  const result = await runTool(command, args, { timeoutMs: 10_000 }).catch(() => null);
  return pattern.exec(`${result?.stdout ?? ''}${result?.stderr ?? ''}`)?.[1] ?? 'unknown';
}

async function main(): Promise<void> {
  const loadBefore = loadavg()[0]!;
  const loadSamples: number[] = [];
  const work = await mkdtemp(join(tmpdir(), 'shelfgate-bench-'));
  const imageFile = join(work, 'random-1GiB.raw');
  const outputFile = join(work, 'copy.raw');
  const tgtCache = await startTgt({ sizeBytes: DISK_BYTES, backingDir: work, backingFileName: 'tgt-disk.img' });
  let tgtSync: TgtProcess | undefined;
  let gateway: GatewayProcess | undefined;
  try {
    tgtSync = await startTgt({ sizeBytes: DISK_BYTES, backingDir: work, backingFileName: 'tgt-disk-sync.img', bsoflags: 'sync' });
    const configFile = join(work, 'shelfgate-bench.json');
    const config = {
      volumes: [
        { name: VOLUME_WCE1, type: 'stored', size: '1GiB', writeCache: true },
        { name: VOLUME_WCE0, type: 'stored', size: '1GiB', writeCache: false },
      ],
    };
    await writeFile(configFile, JSON.stringify(config, null, 2));
    const launched = await GatewayProfiler.launch(PROFILE_DIR, 'volumes', () =>
      startGateway({ configFile, dataDir: join(work, 'shelfgate-data'), extraArgs: ['--log-level', 'warn'] }),
    );
    gateway = launched.gateway;
    const profiler = launched.profiler;
    await mustRun('sh', ['-c', `head -c ${DISK_BYTES} /dev/urandom > '${imageFile}'`], 120_000);
    const targets: Record<Pair, Target[]> = {
      cache: [
        { label: 'tgt', pair: 'cache', url: tgtCache.url(), port: tgtCache.port, iqn: TGT_TARGET_IQN, lun: TGT_DISK_LUN, pid: tgtCache.pid },
        { label: 'shelfgate', pair: 'cache', url: gateway.url(VOLUME_WCE1), port: gateway.iscsiPort, iqn: gateway.targetIqn(VOLUME_WCE1), lun: 0, pid: gateway.pid },
      ],
      sync: [
        { label: 'tgt', pair: 'sync', url: tgtSync.url(), port: tgtSync.port, iqn: TGT_TARGET_IQN, lun: TGT_DISK_LUN, pid: tgtSync.pid },
        { label: 'shelfgate', pair: 'sync', url: gateway.url(VOLUME_WCE0), port: gateway.iscsiPort, iqn: gateway.targetIqn(VOLUME_WCE0), lun: 0, pid: gateway.pid },
      ],
    };
    const allPids = [tgtCache.pid, tgtSync.pid, gateway.pid];
    // Convert-in first: it fills every disk with the same random data, so every read below reads
    // written blocks rather than holes.
    const fill = qemuConvertRow('qemu-img convert 1 GiB in (write)', 'in', imageFile, outputFile);
    const allRows: Row[] = [
      fill,
      qemuConvertRow('qemu-img convert 1 GiB out (read)', 'out', imageFile, outputFile),
      iscsiPerfRow('1 MiB sequential read, QD1', 1, 2048, false),
      iscsiPerfRow('1 MiB sequential read, QD32', 32, 2048, false),
      iscsiPerfRow('4 KiB random read, QD1', 1, 8, true),
      iscsiPerfRow('4 KiB random read, QD32', 32, 8, true),
      randomWriteRow('4 KiB random write, QD1', 1),
      randomWriteRow('4 KiB random write, QD32', 32),
    ];
    const rows = allRows.filter((row) => ROW_FILTER === null || ROW_FILTER.test(row.name));
    if (!rows.includes(fill)) {
      console.log('filling the disks (qemu-img convert, not measured)');
      for (const target of [...targets.cache, ...targets.sync]) await fill.run(target);
    }

    const tailCapped: string[] = [];
    const measureOne = async (row: Row, target: Target): Promise<Observed> => {
      // Start each measurement from a quiet machine: dirty pages written back, and no target still
      // busy with what the previous row left behind (shelfgate's uploader, LevelDB compaction).
      const quietStarted = performance.now();
      await mustRun('sync', [], 300_000);
      await waitIdle(allPids);
      const quietMs = performance.now() - quietStarted;
      const started = performance.now();
      loadSamples.push(loadavg()[0]!);
      const rss = await PeakRss.start(target.pid);
      const cpuBefore = await cpuSeconds(target.pid);
      const profiling = profiler !== null && target.label === 'shelfgate';
      if (profiling) await profiler.start();
      const measure = await row.run(target);
      if (profiling) await profiler.stop(`${row.name} — shelfgate ${PAIRS.find((p) => p.pair === target.pair)!.title}`);
      // The work a row causes includes what the target finishes after the client is done.
      const measuredMs = performance.now() - started;
      const tailMs = await waitIdle([target.pid], { maxWaitMs: TAIL_MAX_MS });
      const cpuAfter = await cpuSeconds(target.pid);
      const peakRssBytes = await rss.stop();
      const capped = tailMs >= TAIL_MAX_MS;
      if (capped) tailCapped.push(`${row.name} (${target.label}, ${target.pair})`);
      console.log(`  [${target.label} ${target.pair}: quiet after ${(quietMs / 1000).toFixed(1)} s, ran ${(measuredMs / 1000).toFixed(1)} s, idle again after ${(tailMs / 1000).toFixed(1)} s${capped ? ' (capped)' : ''}]`);
      return { ...measure, cpuSeconds: cpuAfter - cpuBefore, peakRssBytes };
    };

    const results: Array<{ row: Row; pair: Pair; tgt: Observed; shelfgate: Observed }> = [];
    for (const row of rows) {
      for (const { pair, title } of PAIRS) {
        const measured: Partial<Record<Target['label'], Observed>> = {};
        for (const target of targets[pair]) {
          const m = await measureOne(row, target);
          measured[target.label] = m;
          console.log(
            `${row.name} [${title}] ${target.label}: ${m.value} ${m.unit}, ${(m.cpuSeconds / (m.bytes / GiB)).toFixed(2)} CPU s/GiB, peak RSS ${(m.peakRssBytes / 2 ** 20).toFixed(0)} MiB`,
          );
        }
        results.push({ row, pair, tgt: measured.tgt!, shelfgate: measured.shelfgate! });
      }
    }

    const perGiB = (m: Observed): string => (m.bytes > 0 ? (m.cpuSeconds / (m.bytes / GiB)).toFixed(2) : '–');
    const table = [
      '| Benchmark | Pair | tgt | shelfgate | shelfgate / tgt | shelfgate CPU s/GiB | tgt CPU s/GiB | shelfgate peak RSS |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...results.map(({ row, pair, tgt: a, shelfgate: b }) => {
        const ratio = row.higherIsBetter ? b.value / a.value : a.value / b.value;
        const mark = ratio < 1 ? ' ✗' : '';
        return `| ${row.name} | ${PAIRS.find((p) => p.pair === pair)!.title} | ${a.value} ${a.unit} | ${b.value} ${b.unit} | ${ratio.toFixed(2)}${mark} | ${perGiB(b)} | ${perGiB(a)} | ${(b.peakRssBytes / 2 ** 20).toFixed(0)} MiB |`;
      }),
    ];
    console.log(['', ...table, ''].join('\n'));

    const tape = RUN_TAPE ? await runTapeBench(work, { profileDir: PROFILE_DIR }) : { lines: [], profileSummaries: [] };
    const tapeLines = tape.lines;
    if (PROFILE_DIR !== null) {
      const summary = ['# Gateway CPU profiles (main thread, self time)', '', ...table, '', ...(profiler?.summaries ?? []), ...tape.lines, '', ...tape.profileSummaries];
      await writeFile(join(PROFILE_DIR, 'summary.md'), summary.join('\n'));
      console.log(`wrote ${join(PROFILE_DIR, 'summary.md')}`);
    }

    if (!WRITES_DOCS) {
      console.log(tapeLines.join('\n'));
      console.log('partial or profiled run: docs/benchmarks.md not written');
      return;
    }

    const [commit, tgtVersion, libiscsiVersion, qemuVersion] = await Promise.all([
      codeVersion(),
      toolVersion('dpkg-query', ['-W', '-f=${Version}', 'tgt'], /(.+)/),
      toolVersion('dpkg-query', ['-W', '-f=${Version}', 'libiscsi-bin'], /(.+)/),
      toolVersion('qemu-img', ['--version'], /qemu-img version (\S+)/),
    ]);
    const cpu = cpus();
    const loadDuring = [...loadSamples, loadavg()[0]!];
    const shellCommand = (c: string, tgt: TgtProcess): string =>
      c.replaceAll(work, '$WORK').replace(/\d{4,5}/g, (n) => (n === String(tgt.port) ? 'PORT' : n));
    const lines = [
      '# Benchmarks: shelfgate vs Debian tgt',
      '',
      'Generated by `npm run bench` (bench/run.ts); numbers from one run, same clients for all targets.',
      '',
      `- Date: ${new Date().toISOString()}; code: ${commit}`,
      `- Machine: nproc ${cpu.length} (${cpu[0]?.model.trim() ?? 'unknown CPU'}), ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Linux ${release()}, Node ${process.version}`,
      `- 1-minute load average: ${loadBefore.toFixed(1)} before the run; during the run (sampled before each measurement) ` +
        `min ${Math.min(...loadDuring).toFixed(1)}, median ${median(loadDuring).toFixed(1)}, max ${Math.max(...loadDuring).toFixed(1)}. ` +
        'The clients and the targets share the 2 CPUs.',
      `- tgt ${tgtVersion}: two tgtd processes, \`rdwr\` backing store on a sparse 1 GiB file each (LUN ${TGT_DISK_LUN}); one default (buffered I/O,`,
      '  writes acknowledged from the page cache), one with `--bsoflags sync` (file opened O_SYNC: every write on stable storage before GOOD).',
      `- shelfgate: one gateway process, two 1 GiB stored volumes (LUN 0): \`${VOLUME_WCE1}\` with \`writeCache: true\` (WCE=1, acknowledged once`,
      `  the OS has the data) and \`${VOLUME_WCE0}\` with \`writeCache: false\` (WCE=0, on stable storage before GOOD).`,
      `- Storage: all on the same ext4 filesystem, ${tmpdir()} (tgt's backing files and shelfgate's data dir side by side).`,
      `- Clients: libiscsi-bin ${libiscsiVersion} (iscsi-perf), qemu-img ${qemuVersion} (libiscsi block driver), the in-repo test initiator`,
      `  (random writes: Debian's fio has no libiscsi engine).`,
      `- Timed rows run ${BENCH_SECONDS} s each; the disks are filled with the same 1 GiB of random data first (the convert-in row).`,
      '- Before every measurement: `sync`, then wait until tgtd and the gateway are idle (< 3 % of a core over 1 s).',
      '- CPU s/GiB: utime + stime of the target process (all threads) from /proc/PID/stat, from the start of the',
      '  measurement until the process is idle again (so the uploader work a write row causes is counted), per GiB',
      '  moved by the client. Peak RSS: VmHWM of the gateway, reset before each measurement (`echo 5 > /proc/PID/clear_refs`),',
      '  and VmRSS sampled every 100 ms. The gateway serves both volumes, so its RSS includes the other volume\'s state.',
      '- Ratio: shelfgate / tgt, higher is better; ✗ marks rows below 1.0.',
      ...(tailCapped.length === 0
        ? []
        : [`- Still busy ${TAIL_MAX_MS / 1000} s after the client finished (CPU figure cut there): ${tailCapped.join('; ')}.`]),
      '',
      ...table,
      '',
      '## Commands',
      '',
      `\`npm run bench\` (BENCH_SECONDS=${BENCH_SECONDS}). URL is \`iscsi://127.0.0.1:PORT/${TGT_TARGET_IQN}/${TGT_DISK_LUN}\` for each tgt and`,
      `\`iscsi://127.0.0.1:PORT/iqn.2026-11.dev.shelfgate:shelfgate-${VOLUME_WCE1}/0\` or \`…-${VOLUME_WCE0}/0\` for shelfgate.`,
      '',
      ...rows.map((row) => `- ${row.name}: \`${row.command}\``),
      '',
      'tgt setup (default, then sync):',
      '',
      '```sh',
      ...tgtCache.commands.map((c) => shellCommand(c, tgtCache)),
      ...tgtSync.commands.map((c) => shellCommand(c, tgtSync!)),
      '```',
      '',
      'shelfgate (`shelfgate-bench.json`):',
      '',
      '```sh',
      `cat > $WORK/shelfgate-bench.json <<'EOF'`,
      JSON.stringify(config),
      'EOF',
      'node dist/src/cli/main.js start --data-dir $WORK/shelfgate-data --iscsi-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 --config $WORK/shelfgate-bench.json --log-level warn',
      '```',
      '',
      'Profiles of the gateway during each shelfgate row (slower; does not write this page):',
      '',
      '```sh',
      'BENCH_CPU_PROFILE=/tmp/shelfgate-prof npm run bench                    # every shelfgate row → /tmp/shelfgate-prof/summary.md',
      'BENCH_CPU_PROFILE=/tmp/shelfgate-prof BENCH_TAPE=0 BENCH_ROWS="random write" npm run bench   # some rows only',
      '```',
      '',
      ...tapeLines,
    ];
    const target = join(repoRoot(), 'docs/benchmarks.md');
    lines.push(...(await keptSections(target)));
    await writeFile(target, lines.join('\n') + '\n');
    console.log('wrote docs/benchmarks.md');
  } finally {
    await gateway?.dispose();
    await tgtSync?.stop();
    await tgtCache.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/** The commit measured (BENCH_COMMIT overrides, e.g. for a `git archive` export without .git),
 *  marked "+ uncommitted changes" when the working tree differs from it. */
async function codeVersion(): Promise<string> {
  if (process.env.BENCH_COMMIT) return `commit ${process.env.BENCH_COMMIT}`;
  const head = await runTool('git', ['-C', repoRoot(), 'rev-parse', '--short', 'HEAD'], { timeoutMs: 10_000 }).catch(() => null);
  if (head === null || head.exitCode !== 0) return 'unknown commit';
  const status = await runTool('git', ['-C', repoRoot(), 'status', '--porcelain', '--untracked-files=no'], { timeoutMs: 30_000 }).catch(() => null);
  const dirty = status !== null && status.stdout.trim() !== '';
  return `commit ${head.stdout.trim()}${dirty ? ' + uncommitted changes' : ''}`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/** Sections of docs/benchmarks.md that other benchmarks write (bench/archive.ts) or that are
 *  written by hand (the profiles): a new run keeps them as they are. */
const KEPT_SECTIONS = ['## Archive stores', '## Where the time goes'];

async function keptSections(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return [];
  }
  const sections = text.split(/\n(?=## )/);
  return sections.filter((s) => KEPT_SECTIONS.some((title) => s.startsWith(title))).flatMap((s) => ['', s.trimEnd()]);
}

await main();
