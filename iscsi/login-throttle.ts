// Failed logins (wrong CHAP secret, an initiator the ACL refuses, an unknown target: RFC 7143
// 11.13.5 status class 2) are throttled per initiator name and per peer address: each failure's
// Login Response is delayed, the delay doubling with the failures in a row (base, 2×base … up to
// maxDelayMs), and after refuseAfterFailures the name or address is refused outright (status 0301
// service unavailable) for refuseForMs. A successful login clears both. Entries are forgotten
// after forgetAfterMs of quiet, and at most MAX_ENTRIES are kept (oldest dropped first).

export interface LoginThrottleOptions {
  baseDelayMs: number;
  maxDelayMs: number;
  refuseAfterFailures: number;
  refuseForMs: number;
  forgetAfterMs: number;
}

export const DEFAULT_LOGIN_THROTTLE: LoginThrottleOptions = {
  baseDelayMs: 250,
  maxDelayMs: 8000,
  refuseAfterFailures: 10,
  refuseForMs: 60_000,
  forgetAfterMs: 15 * 60_000,
};

const MAX_ENTRIES = 10_000;

interface Entry {
  failures: number;
  lastFailureMs: number;
  refusedUntilMs: number;
}

export class LoginThrottle {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly opts: LoginThrottleOptions = DEFAULT_LOGIN_THROTTLE,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds this initiator name or peer address is still refused for (0: not refused). */
  refusedForMs(initiatorName: string, address: string): number {
    const now = this.now();
    let ms = 0;
    for (const key of keysOf(initiatorName, address)) {
      const e = this.live(key, now);
      if (e !== undefined && e.refusedUntilMs > now) ms = Math.max(ms, e.refusedUntilMs - now);
    }
    return ms;
  }

  /** Records a failed login; returns how long to hold its Login Response back. */
  recordFailure(initiatorName: string, address: string): { delayMs: number; failures: number } {
    const now = this.now();
    let failures = 0;
    for (const key of keysOf(initiatorName, address)) {
      const e = this.live(key, now) ?? { failures: 0, lastFailureMs: now, refusedUntilMs: 0 };
      e.failures++;
      e.lastFailureMs = now;
      if (e.failures >= this.opts.refuseAfterFailures) e.refusedUntilMs = now + this.opts.refuseForMs;
      this.entries.delete(key); // re-inserted last: the Map's order is the eviction order
      this.entries.set(key, e);
      failures = Math.max(failures, e.failures);
    }
    while (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    const delayMs = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** Math.min(30, failures - 1));
    return { delayMs, failures };
  }

  recordSuccess(initiatorName: string, address: string): void {
    for (const key of keysOf(initiatorName, address)) this.entries.delete(key);
  }

  private live(key: string, now: number): Entry | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (now - e.lastFailureMs > this.opts.forgetAfterMs && e.refusedUntilMs <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }
}

function keysOf(initiatorName: string, address: string): string[] {
  const keys = [`address ${address}`];
  if (initiatorName !== '') keys.push(`initiator ${initiatorName}`);
  return keys;
}
