// Runs the Debian libiscsi-bin tools (iscsi-ls, iscsi-inq, iscsi-readcapacity16, iscsi-test-cu,
// iscsi-perf …) and qemu-img as real clients, with a timeout, and parses the outputs tests need.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

export interface ToolResult {
  stdout: string;
  stderr: string;
  /** Exit code; 128 + signal number when a signal ended it (e.g. 137 after our timeout's SIGKILL). */
  exitCode: number;
  timedOut: boolean;
}

export interface ToolOptions {
  timeoutMs?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/** Spawns `command args…` (no shell) and collects its output; never rejects on a non-zero exit. */
export function runTool(command: string, args: string[], opts: ToolOptions = {}): Promise<ToolResult> {
  return new Promise((resolveRun, rejectRun) => {
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.once('error', (err) => {
      clearTimeout(timer);
      rejectRun(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        exitCode: code ?? 128 + (signal === null ? 0 : constants.signals[signal]),
        timedOut,
      });
    });
  });
}

/** The outcome libiscsi's iscsi-test-cu gives one test: CUnit's verdict (passed / FAILED), and
 *  SKIP for a passed test during which libiscsi printed "[SKIPPED]" (it returned early). A
 *  "[FAILED]" line under a CUnit pass (e.g. a unit attention in a suite's cleanup) stays PASS. */
export type TestCuOutcome = 'PASS' | 'FAIL' | 'SKIP';

export interface TestCuResult {
  /** FAMILY.SUITE.TEST as `iscsi-test-cu -l` names it, e.g. "ALL.Read10.BeyondEol". */
  name: string;
  outcome: TestCuOutcome;
  /** The [FAILED]/[SKIPPED] lines libiscsi printed for this test. */
  messages: string[];
}

/**
 * Parses iscsi-test-cu's default verbose (CUnit basic) output:
 *   Suite: Read10
 *     Test: BeyondEol ...
 *       [SKIPPED] …            (libiscsi's messages while the test runs)
 *   passed | FAILED
 *       1. test_x.c:70  - CU_ASSERT…
 */
export function parseTestCuOutput(output: string): TestCuResult[] {
  const results: TestCuResult[] = [];
  let suite = '';
  let current: { name: string; messages: string[]; text: string } | null = null;
  const finish = (failed: boolean): void => {
    if (current === null) return;
    const skipped = current.messages.some((m) => m.includes('[SKIPPED]'));
    results.push({ name: current.name, outcome: failed ? 'FAIL' : skipped ? 'SKIP' : 'PASS', messages: current.messages });
    current = null;
  };
  for (const line of output.split('\n')) {
    const suiteMatch = /^Suite: (\S+)/.exec(line.trim());
    if (suiteMatch) {
      suite = suiteMatch[1]!;
      continue;
    }
    const testMatch = /^\s*Test: (\S+) \.\.\.(.*)$/.exec(line);
    if (testMatch) {
      current = { name: `ALL.${suite}.${testMatch[1]}`, messages: [], text: '' };
      const rest = testMatch[2]!.trim();
      // A suite's cleanup may print right after the verdict, on the same line: "...passed    [FAILED] …".
      if (rest.startsWith('passed')) finish(false);
      else if (rest.startsWith('FAILED')) finish(true);
      else if (rest !== '') current.messages.push(rest);
      continue;
    }
    if (current === null) continue;
    const trimmed = line.trim();
    // The verdict starts its line, possibly followed by output of the suite's cleanup.
    if (trimmed.startsWith('passed')) finish(false);
    else if (trimmed.startsWith('FAILED')) finish(true);
    else if (trimmed.startsWith('[')) current.messages.push(trimmed);
  }
  return results;
}

/** One line per test, "PASS ALL.Read10.BeyondEol", the format of test/e2e/iscsi-test-cu/*.txt;
 *  a FAIL or SKIP line ends with libiscsi's first message for it as a comment. */
export function formatTestCuResults(results: TestCuResult[]): string {
  return results
    .map((r) => {
      const reason = r.outcome === 'PASS' ? undefined : r.messages.find((m) => m.startsWith(r.outcome === 'FAIL' ? '[FAILED]' : '[SKIPPED]'));
      return `${r.outcome} ${r.name}${reason === undefined ? '' : `  # ${reason}`}\n`;
    })
    .join('');
}

/** Reads the format formatTestCuResults writes; '#' starts a comment. */
export function parseTestCuList(text: string): Map<string, TestCuOutcome> {
  const outcomes = new Map<string, TestCuOutcome>();
  for (const line of text.split('\n')) {
    const match = /^(PASS|FAIL|SKIP) (\S+)(?:\s+#.*)?$/.exec(line.trim());
    if (match) outcomes.set(match[2]!, match[1] as TestCuOutcome);
  }
  return outcomes;
}

export function countOutcomes(outcomes: Iterable<TestCuOutcome>): Record<TestCuOutcome, number> {
  const counts: Record<TestCuOutcome, number> = { PASS: 0, FAIL: 0, SKIP: 0 };
  for (const outcome of outcomes) counts[outcome]++;
  return counts;
}

export const TEST_CU_TIMEOUT_MS = 20 * 60_000;
/** The disk both tgt's baseline and shelfgate's run use: 1 GiB, 512-byte blocks. */
export const TEST_CU_DISK_BYTES = 1024 * 1024 * 1024;
export const TEST_CU_VOLUME = 'cu';
/** `--volume` argument for a shelfgate volume of TEST_CU_DISK_BYTES. */
export const TEST_CU_VOLUME_SPEC = `${TEST_CU_VOLUME}:1GiB`;

/** Runs the ALL family of iscsi-test-cu (every test once; SCSI, iSCSI and LINUX are subsets; destructive tests included) against one LUN; `url2`
 *  enables the multipath tests. Runs in a scratch cwd because CUnit may drop files there. */
export async function runTestCu(url: string, opts: { cwd: string; url2?: string; test?: string; timeoutMs?: number }): Promise<{ results: TestCuResult[]; output: ToolResult }> {
  const args = ['--dataloss', `--test=${opts.test ?? 'ALL'}`, url];
  if (opts.url2 !== undefined) args.push(opts.url2);
  const output = await runTool('iscsi-test-cu', args, { cwd: opts.cwd, timeoutMs: opts.timeoutMs ?? TEST_CU_TIMEOUT_MS });
  return { results: parseTestCuOutput(output.stdout), output };
}

/** The "Key:Value" lines iscsi-inq and iscsi-readcapacity16 print; repeated keys keep every value. */
export function parseToolFields(stdout: string): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  for (const line of stdout.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim();
    const values = fields.get(key) ?? [];
    values.push(line.slice(colon + 1).trim());
    fields.set(key, values);
  }
  return fields;
}

/** The first value of `key`, failing loudly when the tool did not print it. */
export function field(fields: Map<string, string[]>, key: string): string {
  const value = fields.get(key)?.[0];
  if (value === undefined) throw new Error(`tool output has no "${key}:" line`);
  return value;
}
