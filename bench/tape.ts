// Tape rows of `npm run bench`: shelfgate's tape library against tgt's VTL with the same client,
// ../shared/tools/vtl-probe (libiscsi; one WRITE(6)/READ(6) at a time, as backup software and the
// Linux st driver do), 1 GiB per run (BENCH_TAPE_GIB) in 256 KiB and in 64 KiB variable records.
// This copy of vtl-probe has no fixed-block mode, so the 64 KiB row uses variable records of the
// fixed-mode size.
// tgt's VTL is set up as tgt's own example (targets.conf.vtl.L700) does it: tape LUN 1 with the
// ssc backing store, changer LUN 3 with element ranges given through `tgtadm --params`, one
// cartridge made with tgtimg in slot 1000, drive element 500. shelfgate: `--tapes BNCH:1`, the
// default AWS layout, changer target + tapedrive-01 (slot 1, drive element 10001).
// While shelfgate streams, its resident set size is sampled from /proc (reported, not judged).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startGateway } from '../test/helpers/gateway-process.js';
import { runTool } from '../test/helpers/libiscsi.js';
import { freePort } from '../test/helpers/tgt.js';
import { buildVtlProbe, parseVtlProbeOutput, runVtlProbe, type VtlProbeOutput } from '../test/helpers/vtl-probe.js';

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
const RSS_SAMPLE_MS = 250;

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

/** Peak VmRSS of `pid` while `work` runs, sampled every RSS_SAMPLE_MS. */
async function peakRssWhile<T>(pid: number, work: Promise<T>): Promise<{ result: T; peakRssBytes: number }> {
  let peakRssBytes = 0;
  const sample = async (): Promise<void> => {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const kib = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
    peakRssBytes = Math.max(peakRssBytes, kib * 1024);
  };
  const timer = setInterval(() => void sample(), RSS_SAMPLE_MS);
  try {
    const result = await work;
    await sample();
    return { result, peakRssBytes };
  } finally {
    clearInterval(timer);
  }
}

function mustPass(target: string, output: string, parsed: VtlProbeOutput): void {
  if (parsed.mismatchingRecords !== 0) throw new Error(`${target}: ${parsed.mismatchingRecords} mismatching records\n${output.slice(-3000)}`);
}

/** Runs the tape rows; returns the markdown section for docs/benchmarks.md. */
export async function runTapeBench(work: string): Promise<string[]> {
  const probe = await buildVtlProbe();
  const tgt = await startTgtVtl(join(work, 'tgt-vtl'));
  const gateway = await startGateway({ dataDir: join(work, 'shelfgate-tape-data'), extraArgs: ['--tapes', 'BNCH:1', '--log-level', 'warn'] });
  const results: Array<{ row: TapeRow; tgt: VtlProbeOutput; shelfgate: VtlProbeOutput; peakRssBytes: number }> = [];
  try {
    for (const row of ROWS) {
      const records = STREAM_BYTES / row.recordBytes;
      const tgtRun = await runVtlProbe(
        probe.binary,
        {
          changerUrl: `iscsi://127.0.0.1:${tgt.port}/${TGT_VTL_IQN}/${TGT_CHANGER_LUN}`,
          driveUrl: `iscsi://127.0.0.1:${tgt.port}/${TGT_VTL_IQN}/${TGT_DRIVE_LUN}`,
          slot: TGT_SLOT,
          driveAddress: TGT_DRIVE_ADDRESS,
          recordBytes: row.recordBytes,
          records,
        },
        // tgt 1.0.85 dies on READ ELEMENT STATUS for all element types (vtl-probe README).
        { env: { ...process.env, VTL_PROBE_SKIP_ALL_TYPES: '1' } },
      );
      const tgtParsed = parseVtlProbeOutput(tgtRun.stdout);
      mustPass('tgt', tgtRun.stdout, tgtParsed);
      console.log(`tape ${row.name} — tgt: ${tgtParsed.resultWrite} | ${tgtParsed.resultRead}`);

      const { result: sgRun, peakRssBytes } = await peakRssWhile(
        gateway.pid,
        runVtlProbe(probe.binary, {
          changerUrl: gateway.url('mediachanger'),
          driveUrl: gateway.url('tapedrive-01'),
          slot: SHELFGATE_SLOT,
          driveAddress: SHELFGATE_DRIVE_ADDRESS,
          recordBytes: row.recordBytes,
          records,
        }),
      );
      const sgParsed = parseVtlProbeOutput(sgRun.stdout);
      mustPass('shelfgate', sgRun.stdout, sgParsed);
      console.log(`tape ${row.name} — shelfgate: ${sgParsed.resultWrite} | ${sgParsed.resultRead} | peak RSS ${(peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
      results.push({ row, tgt: tgtParsed, shelfgate: sgParsed, peakRssBytes });
    }
  } finally {
    await gateway.dispose();
    await tgt.stop();
    if (probe.dir !== undefined) await rm(probe.dir, { recursive: true, force: true });
  }

  const mib = (n: number): string => `${n.toFixed(1)} MiB/s`;
  return [
    '## Tape library: vtl-probe against tgt\'s VTL',
    '',
    'Same client for both: `vtl-probe CHANGER_URL DRIVE_URL SLOT DRIVE_ADDR RECSIZE NRECS` (../shared/tools/vtl-probe,',
    `libiscsi), ${STREAM_GIB} GiB per run, one command at a time. tgt (ssc backing store) acknowledges a record once it is in the`,
    'page cache; shelfgate syncs every record before GOOD (group commit). Reads follow the writes (page cache warm).',
    'This copy of vtl-probe has no fixed-block mode; the 64 KiB row uses variable records of that size.',
    '',
    '| Tape benchmark | tgt | shelfgate | shelfgate / tgt | shelfgate peak RSS |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...results.flatMap(({ row, tgt: a, shelfgate: b, peakRssBytes }) => [
      `| WRITE(6), ${row.name} | ${mib(a.writeMiBps)} | ${mib(b.writeMiBps)} | ${(b.writeMiBps / a.writeMiBps).toFixed(2)} | ${(peakRssBytes / 2 ** 20).toFixed(0)} MiB |`,
      `| READ(6), ${row.name} | ${mib(a.readMiBps)} | ${mib(b.readMiBps)} | ${(b.readMiBps / a.readMiBps).toFixed(2)} | |`,
    ]),
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
}
