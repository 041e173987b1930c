// One background worker's view of the cloud: failing or healthy. Workers retry cloud calls with
// backoff (retry.ts) for as long as it takes; the log says it once per state change — one warning
// when the first attempt fails ("failing"), one line when an attempt succeeds again ("recovered",
// with how many attempts failed in between) — instead of a line per attempt. The counters feed
// /metrics (shelfgate_cloud_*).

import type { Logger, LogFields } from '../../iscsi/log.js';

export interface CloudOutageCounters {
  /** Attempts that failed. */
  failedAttempts: number;
  /** Times the worker went from healthy to failing. */
  outages: number;
}

export class CloudOutage {
  readonly counters: CloudOutageCounters = { failedAttempts: 0, outages: 0 };
  readonly #worker: string;
  readonly #log: Logger;
  readonly #now: () => number;
  #failingSinceMs: number | null = null;
  #failuresThisOutage = 0;

  /** `worker` names it in logs and metrics ('upload', 'archive'). */
  constructor(worker: string, log: Logger, now: () => number = Date.now) {
    this.#worker = worker;
    this.#log = log;
    this.#now = now;
  }

  get worker(): string {
    return this.#worker;
  }

  get failing(): boolean {
    return this.#failingSinceMs !== null;
  }

  /** An attempt failed; logs only when this starts an outage. */
  failed(err: unknown, fields: LogFields = {}): void {
    this.counters.failedAttempts++;
    this.#failuresThisOutage++;
    if (this.#failingSinceMs !== null) return;
    this.#failingSinceMs = this.#now();
    this.counters.outages++;
    const { code, message } = describe(err);
    this.#log.warn(`cloud ${this.#worker} failing; retrying with backoff (logged again when it recovers)`, { ...fields, code, error: message });
  }

  /** An attempt succeeded; logs only when this ends an outage. */
  succeeded(): void {
    if (this.#failingSinceMs === null) return;
    const failedForMs = this.#now() - this.#failingSinceMs;
    this.#log.info(`cloud ${this.#worker} recovered`, { failedAttempts: this.#failuresThisOutage, failedForMs });
    this.#failingSinceMs = null;
    this.#failuresThisOutage = 0;
  }
}

function describe(err: unknown): { code: string | undefined; message: string } {
  const code = (err as { code?: unknown } | null)?.code;
  return { code: typeof code === 'string' ? code : undefined, message: err instanceof Error ? err.message : String(err) };
}
