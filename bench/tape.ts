// Tape rows of `npm run bench`: shelfgate's tape library against tgt's VTL with the same client,
// ../shared/tools/vtl-probe (libiscsi; one WRITE(6)/READ(6) at a time, as backup software and the
// Linux st driver do), 1 GiB per run (BENCH_TAPE_GIB) in 256 KiB and in 64 KiB variable records.
// This copy of vtl-probe has no fixed-block mode, so the 64 KiB row uses variable records of the
// fixed-mode size.
// tgt's VTL is set up as tgt's own example (targets.conf.vtl.L700) does it: tape LUN 1 with the
// ssc backing store, changer LUN 3 with element ranges given through `tgtadm --params`, one
// cartridge made with tgtimg in slot 1000, drive element 500. shelfgate: `--tapes BNCH:1`, the
// default AWS layout, changer target + tapedrive-01 (slot 1, drive element 10001).
// While a target streams, its CPU seconds (utime + stime, split at vtl-probe's "RESULT write" line,
// which `stdbuf -oL` makes arrive as it is printed) and shelfgate's peak resident set size are read
// from /proc (reported, not judged).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startGateway } from '../test/helpers/gateway-process.js';
import { runTool } from '../test/helpers/libiscsi.js';
import { freePort } from '../test/helpers/tgt.js';
import { buildVtlProbe, parseVtlProbeOutput, type VtlProbeOutput } from '../test/helpers/vtl-probe.js';
import { GatewayProfiler } from './gateway-profiler.js';
import { PeakRss, cpuSeconds, waitIdle } from './proc-stats.js';

const TGT_VTL_IQN = 'iqn.2026-11.test:vtl';
const TGT_DRIVE_LUN = 1;
const TGT_CHANGER_LUN = 3;
const TGT_SLOT = 1000;
const TGT_DRIVE_ADDRESS = 500;
/** Data per run: 1 GiB, or BENCH_TAPE_GIB (e.g. 10 to watch RSS over a long stream). */
const STREAM_GIB = Number(process.env.BENCH_TAPE_GIB ?? 1);
const STREAM_BYTES = STREAM_GIB * 1024 * 1024 * 1024;
/** tgtimg sizes are in MB; room for the stream plus the second file vtl-probe writes. */
const TGT_TAPE_MB = (STREAM_GIB + 1) * 1024;
const SHELFGATE_SLOT = 1;
const SHELFGATE_DRIVE_ADDRESS = 10001;
const GiB = 2 ** 30;

interface TapeRow {
  name: string;
  recordBytes: number;
}

const ROWS: TapeRow[] = [
  { name: '256 KiB records', recordBytes: 262_144 },
  { name: '64 KiB records', recordBytes: 65_536 },
];

interface TgtVtl {
  port: number;
  pid: number;
  commands: string[];
  stop(): Promise<void>;
}

async function startTgtVtl(dir: string): Promise<TgtVtl> {
  const mediaHome = join(dir, 'tgt-tapes');
  await mkdir(mediaHome, { recursive: true });
  const commands: string[] = [];
  const run = async (command: string, args: string[]): Promise<void> => {
    const result = await runTool(command, args, { timeoutMs: 60_000 });
    if (result.exitCode !== 0) throw new Error(`${command} ${args.join(' ')}: ${result.stderr}${result.stdout}`);
    commands.push(`${command} ${args.join(' ')}`);
  };
  // tgt needs a backing file behind an empty drive: a cleaning-cartridge image stands in for "no tape".
  await run('tgtimg', ['--op', 'new', '--device-type', 'tape', '--barcode', 'NOTAPE', '--size', '1', '--type', 'clean', '--file', join(mediaHome, 'notape')]);
  await run('tgtimg', ['--op', 'new', '--device-type', 'tape', '--barcode', 'A00000001', '--size', String(TGT_TAPE_MB), '--type', 'data', '--file', join(mediaHome, 'A00000001')]);
  await writeFile(join(dir, 'smc'), '');

  const port = await freePort();
  const controlPort = String(1 + (port % 32767));
  const tgtdArgs = ['-f', '-C', controlPort, '--iscsi', `portal=127.0.0.1:${port}`];
  commands.push(`tgtd ${tgtdArgs.join(' ')}`);
  const child: ChildProcess = spawn('tgtd', tgtdArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderrText = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderrText = (stderrText + chunk).slice(-16_384);
  });
  const exited = once(child, 'exit');
  const tgtadm = (...args: string[]): Promise<void> => run('tgtadm', ['-C', controlPort, '--lld', 'iscsi', ...args]);
  const changer = ['--op', 'update', '--mode', 'logicalunit', '--tid', '1', '--lun', String(TGT_CHANGER_LUN), '--params'];
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await tgtadm('--op', 'new', '--mode', 'target', '--tid', '1', '-T', TGT_VTL_IQN);
        break;
      } catch (err) {
        if (attempt > 100 || child.exitCode !== null) throw new Error(`tgtd did not start: ${stderrText}`, { cause: err });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await tgtadm('--op', 'new', '--mode', 'logicalunit', '--tid', '1', '--lun', String(TGT_DRIVE_LUN), '--device-type', 'tape', '--bstype', 'ssc', '-b', join(mediaHome, 'notape'));
    await tgtadm('--op', 'new', '--mode', 'logicalunit', '--tid', '1', '--lun', String(TGT_CHANGER_LUN), '--device-type', 'changer', '-b', join(dir, 'smc'));
    await tgtadm(...changer, `element_type=1,start_address=1,quantity=1,media_home=${mediaHome}`);
    await tgtadm(...changer, `element_type=2,start_address=${TGT_SLOT},quantity=10,media_home=${mediaHome}`);
    await tgtadm(...changer, `element_type=3,start_address=10,quantity=2,media_home=${mediaHome}`);
    await tgtadm(...changer, `element_type=4,start_address=${TGT_DRIVE_ADDRESS},quantity=1,media_home=${mediaHome}`);
    await tgtadm(...changer, `element_type=4,address=${TGT_DRIVE_ADDRESS},tid=1,lun=${TGT_DRIVE_LUN}`);
    await tgtadm(...changer, `element_type=2,address=${TGT_SLOT},barcode=A00000001,sides=1`);
    await tgtadm('--op', 'bind', '--mode', 'target', '--tid', '1', '-I', 'ALL');
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw err;
  }
  return {
    port,
    pid: child.pid ?? -1,
    commands,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await runTool('tgtadm', ['-C', controlPort, '--lld', 'iscsi', '--op', 'delete', '--mode', 'target', '--tid', '1', '--force']);
      await runTool('tgtadm', ['-C', controlPort, '--op', 'delete', '--mode', 'system']);
      await exited;
      clearTimeout(timer);
    },
  };
}

interface ProbeArgs {
  changerUrl: string;
  driveUrl: string;
  slot: number;
  driveAddress: number;
  recordBytes: number;
  records: number;
}

interface MeasuredProbe {
  stdout: string;
  parsed: VtlProbeOutput;
  writeCpuSeconds: number;
  readCpuSeconds: number;
  peakRssBytes: number;
}

/** Runs vtl-probe (line-buffered through stdbuf) against a target served by `pid`: the target's CPU
 *  seconds up to the "RESULT write" line count for the write half, the rest for the read half. */
async function runProbeMeasured(
  binary: string,
  args: ProbeArgs,
  pid: number,
  env: NodeJS.ProcessEnv = process.env,
  profile: { profiler: GatewayProfiler; title: string } | null = null,
): Promise<MeasuredProbe> {
  await runTool('sync', [], { timeoutMs: 300_000 });
  await waitIdle([pid]);
  const rss = await PeakRss.start(pid);
  if (profile !== null) await profile.profiler.start();
  const cpuStart = await cpuSeconds(pid);
  let cpuAtWriteResult: Promise<number> | undefined;
  let profileSwitched: Promise<void> = Promise.resolve();
  const argv = [binary, args.changerUrl, args.driveUrl, String(args.slot), String(args.driveAddress), String(args.recordBytes), String(args.records)];
  const child = spawn('stdbuf', ['-oL', ...argv], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    stdout += chunk;
    if (cpuAtWriteResult === undefined && stdout.includes('RESULT write:')) {
      cpuAtWriteResult = cpuSeconds(pid);
      // One profile for the write half, one for the read half.
      if (profile !== null) profileSwitched = profile.profiler.stop(`${profile.title}, write`).then(() => profile.profiler.start());
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-16_384);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 15 * 60_000);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  const cpuEnd = await cpuSeconds(pid);
  const peakRssBytes = await rss.stop();
  if (profile !== null) {
    await profileSwitched;
    await profile.profiler.stop(`${profile.title}, read`);
  }
  let parsed: VtlProbeOutput;
  try {
    parsed = parseVtlProbeOutput(stdout);
  } catch (err) {
    throw new Error(`vtl-probe exited ${code}: ${stderr}`, { cause: err });
  }
  const cpuMid = (await cpuAtWriteResult) ?? cpuEnd;
  return { stdout, parsed, writeCpuSeconds: cpuMid - cpuStart, readCpuSeconds: cpuEnd - cpuMid, peakRssBytes };
}

function mustPass(target: string, output: string, parsed: VtlProbeOutput): void {
  if (parsed.mismatchingRecords !== 0) throw new Error(`${target}: ${parsed.mismatchingRecords} mismatching records\n${output.slice(-3000)}`);
}

/** Runs the tape rows; returns the markdown section for docs/benchmarks.md. */
export async function runTapeBench(work: string, opts: { profileDir?: string | null } = {}): Promise<{ lines: string[]; profileSummaries: string[] }> {
  const probe = await buildVtlProbe();
  const tgt = await startTgtVtl(join(work, 'tgt-vtl'));
  const { gateway, profiler } = await GatewayProfiler.launch(opts.profileDir ?? null, 'tapes', () =>
    startGateway({ dataDir: join(work, 'shelfgate-tape-data'), extraArgs: ['--tapes', 'BNCH:1', '--log-level', 'warn'] }),
  );
  const results: Array<{ row: TapeRow; tgt: MeasuredProbe; shelfgate: MeasuredProbe }> = [];
  try {
    for (const row of ROWS) {
      const records = STREAM_BYTES / row.recordBytes;
      const tgtRun = await runProbeMeasured(
        probe.binary,
        {
          changerUrl: `iscsi://127.0.0.1:${tgt.port}/${TGT_VTL_IQN}/${TGT_CHANGER_LUN}`,
          driveUrl: `iscsi://127.0.0.1:${tgt.port}/${TGT_VTL_IQN}/${TGT_DRIVE_LUN}`,
          slot: TGT_SLOT,
          driveAddress: TGT_DRIVE_ADDRESS,
          recordBytes: row.recordBytes,
          records,
        },
        tgt.pid,
        // tgt 1.0.85 dies on READ ELEMENT STATUS for all element types (vtl-probe README).
        { ...process.env, VTL_PROBE_SKIP_ALL_TYPES: '1' },
      );
      mustPass('tgt', tgtRun.stdout, tgtRun.parsed);
      console.log(`tape ${row.name} — tgt: ${tgtRun.parsed.resultWrite} | ${tgtRun.parsed.resultRead}`);

      const sgRun = await runProbeMeasured(
        probe.binary,
        {
          changerUrl: gateway.url('mediachanger'),
          driveUrl: gateway.url('tapedrive-01'),
          slot: SHELFGATE_SLOT,
          driveAddress: SHELFGATE_DRIVE_ADDRESS,
          recordBytes: row.recordBytes,
          records,
        },
        gateway.pid,
        process.env,
        profiler === null ? null : { profiler, title: `tape ${row.name} — shelfgate` },
      );
      mustPass('shelfgate', sgRun.stdout, sgRun.parsed);
      console.log(
        `tape ${row.name} — shelfgate: ${sgRun.parsed.resultWrite} | ${sgRun.parsed.resultRead} | CPU ${sgRun.writeCpuSeconds.toFixed(1)} s + ${sgRun.readCpuSeconds.toFixed(1)} s | peak RSS ${(sgRun.peakRssBytes / 2 ** 20).toFixed(0)} MiB`,
      );
      results.push({ row, tgt: tgtRun, shelfgate: sgRun });
    }
  } finally {
    await gateway.dispose();
    await tgt.stop();
    if (probe.dir !== undefined) await rm(probe.dir, { recursive: true, force: true });
  }

  const mib = (n: number): string => `${n.toFixed(1)} MiB/s`;
  const lines = [
    '## Tape library: vtl-probe against tgt\'s VTL',
    '',
    'Same client for both: `vtl-probe CHANGER_URL DRIVE_URL SLOT DRIVE_ADDR RECSIZE NRECS` (../shared/tools/vtl-probe,',
    `libiscsi), ${STREAM_GIB} GiB per run, one command at a time. tgt (ssc backing store) acknowledges a record once it is in the`,
    'page cache; so does shelfgate in its default SSC-4 buffered mode 1 (GOOD once the frame is in the OS; flushed before',
    'filemarks, REWIND, SPACE, LOCATE, READ and unload). Reads follow the writes (page cache warm).',
    'This copy of vtl-probe has no fixed-block mode; the 64 KiB row uses variable records of that size.',
    '',
    'CPU s/GiB: utime + stime of the target process (all threads) from /proc/PID/stat; the write half runs until vtl-probe',
    'prints its RESULT write line (so it includes the load, the filemark and the rewind), the read half from there to the end.',
    'Peak RSS: the gateway\'s VmHWM (reset before the run) and VmRSS sampled every 100 ms, over the write and the read.',
    '',
    '| Tape benchmark | tgt | shelfgate | shelfgate / tgt | shelfgate CPU s/GiB | tgt CPU s/GiB | shelfgate peak RSS |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.flatMap(({ row, tgt: a, shelfgate: b }) => {
      const ratio = (x: number, y: number): string => `${(x / y).toFixed(2)}${x / y < 1 ? ' ✗' : ''}`;
      const perGiB = (cpu: number): string => (cpu / (STREAM_BYTES / GiB)).toFixed(2);
      return [
        `| WRITE(6), ${row.name} | ${mib(a.parsed.writeMiBps)} | ${mib(b.parsed.writeMiBps)} | ${ratio(b.parsed.writeMiBps, a.parsed.writeMiBps)} | ${perGiB(b.writeCpuSeconds)} | ${perGiB(a.writeCpuSeconds)} | ${(b.peakRssBytes / 2 ** 20).toFixed(0)} MiB |`,
        `| READ(6), ${row.name} | ${mib(a.parsed.readMiBps)} | ${mib(b.parsed.readMiBps)} | ${ratio(b.parsed.readMiBps, a.parsed.readMiBps)} | ${perGiB(b.readCpuSeconds)} | ${perGiB(a.readCpuSeconds)} | |`,
      ];
    }),
    '',
    'tgt VTL setup:',
    '',
    '```sh',
    ...tgt.commands.map((c) => c.replaceAll(work, '$WORK').replace(/\d{4,5}/g, (n) => (n === String(tgt.port) ? 'PORT' : n))),
    `VTL_PROBE_SKIP_ALL_TYPES=1 vtl-probe iscsi://127.0.0.1:PORT/${TGT_VTL_IQN}/${TGT_CHANGER_LUN} iscsi://127.0.0.1:PORT/${TGT_VTL_IQN}/${TGT_DRIVE_LUN} ${TGT_SLOT} ${TGT_DRIVE_ADDRESS} RECSIZE NRECS`,
    '```',
    '',
    'shelfgate:',
    '',
    '```sh',
    'node dist/src/cli/main.js start --data-dir $WORK/shelfgate-tape-data --iscsi-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 --tapes BNCH:1 --log-level warn',
    `vtl-probe iscsi://127.0.0.1:PORT/iqn.2026-11.dev.shelfgate:shelfgate-mediachanger/0 iscsi://127.0.0.1:PORT/iqn.2026-11.dev.shelfgate:shelfgate-tapedrive-01/0 ${SHELFGATE_SLOT} ${SHELFGATE_DRIVE_ADDRESS} RECSIZE NRECS`,
    '```',
    '',
  ];
  return { lines, profileSummaries: profiler?.summaries ?? [] };
}
