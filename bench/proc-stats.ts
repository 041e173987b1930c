// /proc figures of a target process for the benchmark's extra columns: CPU seconds (utime + stime
// of every thread, so LevelDB's and libuv's worker threads count too) and peak resident set size
// (VmHWM, reset per row through /proc/PID/clear_refs where the kernel allows it).
import { readFile, writeFile } from 'node:fs/promises';
import { runTool } from '../test/helpers/libiscsi.js';

let clockTicksPerSecond: number | undefined;

async function clockTicks(): Promise<number> {
  if (clockTicksPerSecond === undefined) {
    const result = await runTool('getconf', ['CLK_TCK']).catch(() => null);
    const value = Number(result?.stdout.trim());
    clockTicksPerSecond = Number.isFinite(value) && value > 0 ? value : 100;
  }
  return clockTicksPerSecond;
}

/** utime + stime of `pid` in seconds (proc(5): fields 14 and 15 of /proc/PID/stat). */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field N is fields[N - 3].
  return (Number(fields[11]) + Number(fields[12])) / (await clockTicks());
}

async function statusKib(pid: number, key: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
}

/** Peak RSS of one process over a stretch of work: VmHWM after resetting it (writing 5 to
 *  clear_refs, Linux ≥ 4.0), plus VmRSS samples every 100 ms in case the reset is refused. */
export class PeakRss {
  private peakKib = 0;
  private hwmReset = false;
  private timer: NodeJS.Timeout | undefined;

  private constructor(private readonly pid: number) {}

  static async start(pid: number): Promise<PeakRss> {
    const tracker = new PeakRss(pid);
    tracker.hwmReset = await writeFile(`/proc/${pid}/clear_refs`, '5').then(
      () => true,
      () => false,
    );
    await tracker.sample();
    tracker.timer = setInterval(() => void tracker.sample(), 100);
    return tracker;
  }

  private async sample(): Promise<void> {
    this.peakKib = Math.max(this.peakKib, await statusKib(this.pid, 'VmRSS'));
  }

  async stop(): Promise<number> {
    clearInterval(this.timer);
    await this.sample();
    if (this.hwmReset) this.peakKib = Math.max(this.peakKib, await statusKib(this.pid, 'VmHWM'));
    return this.peakKib * 1024;
  }
}

/** Waits until every process in `pids` used less than `maxCpuFraction` of one core over a
 *  `windowMs` window (background work a row left behind — shelfgate's uploader, compaction — has
 *  finished), or `maxWaitMs` passed. Resolves to how long it waited. */
export async function waitIdle(pids: number[], opts: { maxCpuFraction?: number; windowMs?: number; maxWaitMs?: number } = {}): Promise<number> {
  const maxCpuFraction = opts.maxCpuFraction ?? 0.03;
  const windowMs = opts.windowMs ?? 1000;
  const maxWaitMs = opts.maxWaitMs ?? 120_000;
  const started = Date.now();
  for (;;) {
    const before = await Promise.all(pids.map(cpuSeconds));
    await new Promise((r) => setTimeout(r, windowMs));
    const after = await Promise.all(pids.map(cpuSeconds));
    const busiest = Math.max(...after.map((a, i) => (a - before[i]!) / (windowMs / 1000)));
    if (busiest < maxCpuFraction || Date.now() - started > maxWaitMs) return Date.now() - started;
  }
}
