// Retries with capped exponential backoff and full jitter ("Exponential Backoff And Jitter", AWS
// Architecture Blog 2015): attempt n waits a uniform random time in [0, min(maxDelayMs,
// baseDelayMs * 2^n)), which spreads the retries of many concurrent uploads after an outage.
// Only transient CloudErrors are retried; the last error is rethrown unchanged.

import { isTransientCloudError } from './cloud-error.js';

export interface RetryPolicy {
  /** Total attempts including the first; 1 = no retry. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 5_000 };

/** The backoff before retry number `retryIndex` (0-based); `random` is in [0, 1). */
export function backoffDelayMs(policy: RetryPolicy, retryIndex: number, random: number = Math.random()): number {
  const ceilingMs = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retryIndex);
  return Math.floor(random * ceilingMs);
}

export async function withRetry<T>(
  policy: RetryPolicy,
  operation: (attempt: number) => Promise<T>,
  opts: { isRetryable?: (err: unknown) => boolean; signal?: AbortSignal } = {},
): Promise<T> {
  const isRetryable = opts.isRetryable ?? isTransientCloudError;
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (err) {
      if (attempt + 1 >= policy.maxAttempts || !isRetryable(err) || opts.signal?.aborted) {
        throw err;
      }
      await sleep(backoffDelayMs(policy, attempt), opts.signal);
      if (opts.signal?.aborted) {
        throw err;
      }
    }
  }
}

function sleep(delayMs: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, delayMs);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
