// ../shared/tools/vtl-probe (a libiscsi client that drives a media changer + tape drive the way
// backup software does): built from a copy of its directory (the shared tree is read-only) with
// its own Makefile, and its per-command output parsed for tests and the benchmark.
import { cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { repoRoot } from './gateway-process.js';
import { runTool, type ToolResult } from './libiscsi.js';

/** The tool's source directory: ../shared/tools/vtl-probe next to the repository (or VTL_PROBE_SRC). */
export function vtlProbeSourceDir(): string {
  return process.env.VTL_PROBE_SRC ?? resolve(repoRoot(), '../shared/tools/vtl-probe');
}

/** The binary .ci/run built (VTL_PROBE_BIN), or else: copies the tool into a fresh directory under
 *  os.tmpdir(), runs `make` there (needs Debian libiscsi-dev) and returns the binary's path and
 *  the build directory to remove afterwards. */
export async function buildVtlProbe(): Promise<{ binary: string; dir?: string }> {
  if (process.env.VTL_PROBE_BIN !== undefined && process.env.VTL_PROBE_BIN !== '') return { binary: process.env.VTL_PROBE_BIN };
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-vtl-probe-'));
  await cp(vtlProbeSourceDir(), dir, { recursive: true });
  const make = await runTool('make', ['-C', dir], { timeoutMs: 120_000 });
  if (make.exitCode !== 0) throw new Error(`make -C ${dir} failed (is libiscsi-dev installed?):\n${make.stdout}${make.stderr}`);
  return { binary: join(dir, 'vtl-probe'), dir };
}

export interface VtlProbeStep {
  /** The command as vtl-probe names it, e.g. "SPACE +1 block", "MOVE MEDIUM 1->10001". */
  name: string;
  /** "GOOD" or the rest of the line: "CHECK CONDITION key=… asc/ascq=0x…  FM=… info=… residual=…". */
  outcome: string;
}

export interface VtlProbeOutput {
  steps: VtlProbeStep[];
  /** The "RESULT write: …" and "RESULT read: …" lines. */
  resultWrite: string;
  resultRead: string;
  writeMiBps: number;
  readMiBps: number;
  mismatchingRecords: number;
  passed: number;
  failed: number;
  /** Lines reporting a malformed element status page. */
  malformed: string[];
}

/** Parses one run's stdout; throws when a summary line is missing (the tool died mid-way). */
export function parseVtlProbeOutput(stdout: string): VtlProbeOutput {
  const steps: VtlProbeStep[] = [];
  let resultWrite: string | undefined;
  let resultRead: string | undefined;
  let summary: RegExpExecArray | null = null;
  const malformed: string[] = [];
  for (const line of stdout.split('\n')) {
    // "%-22s lun %d: …" — names may be wider than 22 characters.
    const step = /^(\S.*?)\s+lun \d+: (.*)$/.exec(line);
    if (step) steps.push({ name: step[1]!, outcome: step[2]!.trim() });
    if (line.startsWith('RESULT write:')) resultWrite = line;
    if (line.startsWith('RESULT read:')) resultRead = line;
    if (line.includes('MALFORMED')) malformed.push(line.trim());
    summary = /^vtl-probe: (\d+) passed, (\d+) failed$/.exec(line) ?? summary;
  }
  if (resultWrite === undefined || resultRead === undefined || summary === null) {
    throw new Error(`vtl-probe output is incomplete:\n${stdout.slice(-4000)}`);
  }
  const mibps = (line: string): number => Number(/= ([\d.]+) MiB\/s/.exec(line)?.[1] ?? NaN);
  return {
    steps,
    resultWrite,
    resultRead,
    writeMiBps: mibps(resultWrite),
    readMiBps: mibps(resultRead),
    mismatchingRecords: Number(/(\d+) mismatching records/.exec(resultRead)?.[1] ?? NaN),
    passed: Number(summary[1]),
    failed: Number(summary[2]),
    malformed,
  };
}

/** `vtl-probe CHANGER_URL DRIVE_URL SLOT DRIVE_ADDR RECSIZE NRECS`; never rejects on exit status. */
export function runVtlProbe(
  binary: string,
  args: { changerUrl: string; driveUrl: string; slot: number; driveAddress: number; recordBytes: number; records: number },
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<ToolResult> {
  return runTool(
    binary,
    [args.changerUrl, args.driveUrl, String(args.slot), String(args.driveAddress), String(args.recordBytes), String(args.records)],
    { timeoutMs: opts.timeoutMs ?? 10 * 60_000, env: opts.env ?? process.env },
  );
}
