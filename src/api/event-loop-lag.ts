// Event-loop lag as /metrics shows it (issue 11: no command may monopolise the loop): a timer due
// every SAMPLE_INTERVAL_MS notes how late it fires; each lateness goes into fixed buckets, so the
// histogram's counts are exact (Prometheus histogram, seconds).

export const LAG_BUCKETS_SECONDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
const SAMPLE_INTERVAL_MS = 20;

export interface LagHistogram {
  /** Cumulative count per upper bound in LAG_BUCKETS_SECONDS order, then +Inf. */
  buckets: number[];
  sumSeconds: number;
  count: number;
}

export class EventLoopLagMonitor {
  private readonly counts = new Array<number>(LAG_BUCKETS_SECONDS.length + 1).fill(0);
  private sumSeconds = 0;
  private count = 0;
  private timer: NodeJS.Timeout | undefined;
  private dueMs = 0;

  start(): void {
    if (this.timer !== undefined) return;
    this.dueMs = performance.now() + SAMPLE_INTERVAL_MS;
    this.timer = setInterval(() => this.sample(), SAMPLE_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private sample(): void {
    const now = performance.now();
    const lagSeconds = Math.max(0, now - this.dueMs) / 1000;
    this.dueMs = now + SAMPLE_INTERVAL_MS;
    let i = LAG_BUCKETS_SECONDS.findIndex((le) => lagSeconds <= le);
    if (i < 0) i = LAG_BUCKETS_SECONDS.length;
    this.counts[i]!++;
    this.sumSeconds += lagSeconds;
    this.count++;
  }

  histogram(): LagHistogram {
    let running = 0;
    const buckets = this.counts.map((c) => (running += c));
    return { buckets, sumSeconds: this.sumSeconds, count: this.count };
  }
}
