// `npm run bench`: shelfgate and Debian's tgt side by side, driven by the same clients
// (iscsi-perf, qemu-img, the in-repo test initiator; vtl-probe for the tape rows, bench/tape.ts),
// written up as docs/benchmarks.md.
// Both targets get a 1 GiB disk on the same filesystem (os.tmpdir()): tgt a sparse file with its
// default rdwr backing store, shelfgate its Level data dir. A run takes about 5 minutes
// (BENCH_SECONDS per timed row, default 10).
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { repoRoot, startGateway } from '../test/helpers/gateway-process.js';
import { TestInitiator, write16 } from '../test/helpers/initiator.js';
import { runTool } from '../test/helpers/libiscsi.js';
import { TGT_DISK_LUN, TGT_TARGET_IQN, startTgt } from '../test/helpers/tgt.js';
import { runTapeBench } from './tape.js';

const DISK_BYTES = 1024 * 1024 * 1024;
const BENCH_SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const VOLUME = 'bench';
const INITIATOR = 'iqn.2026-11.test:bench';

interface Target {
  label: 'tgt' | 'shelfgate';
  url: string;
  port: number;
  iqn: string;
  lun: number;
}

interface Measure {
  value: number;
  /** e.g. "MB/s", "IOPS" */
  unit: string;
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
      return blocksPerRequest * 512 >= 1024 * 1024 ? { value: Number(last[2]), unit: 'MB/s' } : { value: Number(last[1]), unit: 'IOPS' };
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
      return { value: Math.round(DISK_BYTES / 1e6 / seconds), unit: 'MB/s' };
    },
  };
}

/** qemu-img bench -w: sequential 4 KiB writes through qemu's libiscsi driver. */
function qemuBenchWriteRow(name: string, queueDepth: number): Row {
  const count = 50_000;
  const args = ['bench', '-w', '-c', String(count), '-d', String(queueDepth), '-s', '4096', '-S', '4096', '-f', 'raw'];
  return {
    name,
    command: `qemu-img ${args.join(' ')} URL`,
    higherIsBetter: true,
    async run(target) {
      const output = await mustRun('qemu-img', [...args, target.url], 10 * 60_000);
      const seconds = /Run completed in ([\d.]+) seconds/.exec(output);
      if (!seconds) throw new Error(`no run time in qemu-img bench output:\n${output}`);
      return { value: Math.round(count / Number(seconds[1])), unit: 'IOPS' };
    },
  };
}

/** libiscsi has no random-write tool, so the in-repo test initiator (same for both targets)
 *  keeps `queueDepth` 4 KiB WRITE(16)s at random aligned LBAs in flight for BENCH_SECONDS. */
function randomWriteRow(name: string, queueDepth: number): Row {
  return {
    name,
    command: `test/helpers/initiator.ts: WRITE(16) 4 KiB at random 4 KiB-aligned LBAs, ${queueDepth} in flight, ${BENCH_SECONDS} s`,
    higherIsBetter: true,
    async run(target) {
      const initiator = await TestInitiator.connect('127.0.0.1', target.port);
      try {
        await initiator.login({ initiatorName: INITIATOR, targetName: target.iqn });
        await initiator.scsi(Buffer.from([0x00, 0, 0, 0, 0, 0]), { lun: target.lun });
        const payload = Buffer.alloc(4096, 0xa5);
        const slots = DISK_BYTES / 4096;
        let state = 12345;
        const nextSlot = (): number => {
          state = (Math.imul(state, 1103515245) + 12345) >>> 0;
          return state % slots;
        };
        let completed = 0;
        const deadline = performance.now() + BENCH_SECONDS * 1000;
        const lane = async (): Promise<void> => {
          while (performance.now() < deadline) {
            const result = await initiator.scsi(write16(nextSlot() * 8, 8), { dataOut: payload, lun: target.lun });
            if (result.status !== 0) throw new Error(`WRITE(16) status ${result.status}`);
            completed++;
          }
        };
        const started = performance.now();
        await Promise.all(Array.from({ length: queueDepth }, lane));
        return { value: Math.round(completed / ((performance.now() - started) / 1000)), unit: 'IOPS' };
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
  const work = await mkdtemp(join(tmpdir(), 'shelfgate-bench-'));
  const imageFile = join(work, 'random-1GiB.raw');
  const outputFile = join(work, 'copy.raw');
  const tgt = await startTgt({ sizeBytes: DISK_BYTES, backingDir: work });
  const gateway = await startGateway({ volumes: [`${VOLUME}:1GiB`], dataDir: join(work, 'shelfgate-data'), extraArgs: ['--log-level', 'warn'] });
  try {
    await mustRun('sh', ['-c', `head -c ${DISK_BYTES} /dev/urandom > '${imageFile}'`], 120_000);
    const targets: Target[] = [
      { label: 'tgt', url: tgt.url(), port: tgt.port, iqn: TGT_TARGET_IQN, lun: TGT_DISK_LUN },
      { label: 'shelfgate', url: gateway.url(VOLUME), port: gateway.iscsiPort, iqn: gateway.targetIqn(VOLUME), lun: 0 },
    ];
    // Convert-in first: it fills both disks with the same random data, so every read below reads
    // written blocks rather than holes.
    const rows: Row[] = [
      qemuConvertRow('qemu-img convert 1 GiB in (write)', 'in', imageFile, outputFile),
      qemuConvertRow('qemu-img convert 1 GiB out (read)', 'out', imageFile, outputFile),
      iscsiPerfRow('1 MiB sequential read, QD1', 1, 2048, false),
      iscsiPerfRow('1 MiB sequential read, QD32', 32, 2048, false),
      iscsiPerfRow('4 KiB random read, QD1', 1, 8, true),
      iscsiPerfRow('4 KiB random read, QD32', 32, 8, true),
      randomWriteRow('4 KiB random write, QD1', 1),
      randomWriteRow('4 KiB random write, QD32', 32),
      qemuBenchWriteRow('4 KiB sequential write, QD32 (qemu-img bench)', 32),
    ];
    const results: Array<{ row: Row; tgt: Measure; shelfgate: Measure }> = [];
    for (const row of rows) {
      const measured: Partial<Record<Target['label'], Measure>> = {};
      for (const target of targets) {
        measured[target.label] = await row.run(target);
        console.log(`${row.name} — ${target.label}: ${measured[target.label]!.value} ${measured[target.label]!.unit}`);
      }
      results.push({ row, tgt: measured.tgt!, shelfgate: measured.shelfgate! });
    }

    const [tgtVersion, libiscsiVersion, qemuVersion] = await Promise.all([
      toolVersion('dpkg-query', ['-W', '-f=${Version}', 'tgt'], /(.+)/),
      toolVersion('dpkg-query', ['-W', '-f=${Version}', 'libiscsi-bin'], /(.+)/),
      toolVersion('qemu-img', ['--version'], /qemu-img version (\S+)/),
    ]);
    const cpu = cpus();
    const lines = [
      '# Benchmarks: shelfgate vs Debian tgt',
      '',
      'Generated by `npm run bench` (bench/run.ts); numbers from one run, same clients for both targets.',
      '',
      `- Date: ${new Date().toISOString()}`,
      `- Machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Linux ${release()}, Node ${process.version}`,
      `- tgt ${tgtVersion} (tgtd, \`rdwr\` backing store: buffered I/O on a sparse 1 GiB file, LUN ${TGT_DISK_LUN}); shelfgate: stored volume, 1 GiB, LUN 0`,
      `- Storage: both on the same filesystem, ${tmpdir()} (tgt's backing file and shelfgate's data dir side by side).`,
      '  tgt acknowledges writes once they are in the page cache; shelfgate acknowledges only after its',
      '  Level batch is synced (ARCHITECTURE.md), so write rows compare different durability guarantees.',
      `- Clients: libiscsi-bin ${libiscsiVersion} (iscsi-perf), qemu-img ${qemuVersion} (libiscsi block driver), the in-repo test initiator`,
      `- Timed rows run ${BENCH_SECONDS} s each; the disks are filled with the same 1 GiB of random data first.`,
      `- 1-minute load average ${loadBefore.toFixed(1)} before and ${loadavg()[0]!.toFixed(1)} after the run (the clients and both targets share the CPUs).`,
      '',
      '| Benchmark | tgt | shelfgate | shelfgate / tgt |',
      '| --- | ---: | ---: | ---: |',
      ...results.map(({ row, tgt: a, shelfgate: b }) => {
        const ratio = row.higherIsBetter ? b.value / a.value : a.value / b.value;
        return `| ${row.name} | ${a.value} ${a.unit} | ${b.value} ${b.unit} | ${ratio.toFixed(2)} |`;
      }),
      '',
      '## Commands',
      '',
      'URL is `iscsi://127.0.0.1:PORT/iqn.2026-11.test:disk/1` for tgt and',
      '`iscsi://127.0.0.1:PORT/iqn.2026-11.dev.shelfgate:shelfgate-bench/0` for shelfgate.',
      '',
      ...results.map(({ row }) => `- ${row.name}: \`${row.command}\``),
      '',
      'tgt setup:',
      '',
      '```sh',
      ...tgt.commands.map((c) => c.replace(work, '$WORK').replace(/\d{4,5}/g, (n) => (n === String(tgt.port) ? 'PORT' : n))),
      '```',
      '',
      'shelfgate:',
      '',
      '```sh',
      `node dist/src/cli/main.js start --data-dir $WORK/shelfgate-data --iscsi-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 --volume ${VOLUME}:1GiB --log-level warn`,
      '```',
      '',
    ];
    // Tape library rows (bench/tape.ts): vtl-probe against tgt's VTL and shelfgate's library.
    lines.push(...(await runTapeBench(work)));
    const target = join(repoRoot(), 'docs/benchmarks.md');
    lines.push(...(await keptSections(target)));
    await writeFile(target, lines.join('\n'));
    console.log('wrote docs/benchmarks.md');
  } finally {
    await gateway.dispose();
    await tgt.stop();
    await rm(work, { recursive: true, force: true });
  }
}


/** Sections of docs/benchmarks.md that other benchmarks write (bench/archive.ts) or that are
 *  written by hand (the profile): a new run keeps them as they are. */
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
