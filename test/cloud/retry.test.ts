import t from 'tap';
import { CloudError } from '../../src/cloud/cloud-error.js';
import { backoffDelayMs, withRetry } from '../../src/cloud/retry.js';

t.test('Retry.Backoff: full jitter below a capped exponential ceiling', async (t) => {
  const policy = { maxAttempts: 10, baseDelayMs: 100, maxDelayMs: 1000 };
  t.same(
    [0, 1, 2, 3, 4, 5].map((n) => backoffDelayMs(policy, n, 0.999999)),
    [99, 199, 399, 799, 999, 999],
  );
  t.same([0, 3, 9].map((n) => backoffDelayMs(policy, n, 0)), [0, 0, 0]);
  t.equal(backoffDelayMs(policy, 2, 0.5), 200);
});

t.test('Retry.TransientOnly: transient errors retried up to maxAttempts, permanent ones at once', async (t) => {
  const policy = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1 };
  const attempts: number[] = [];
  await t.rejects(
    withRetry(policy, async (attempt) => {
      attempts.push(attempt);
      throw new CloudError('CLOUD_UNAVAILABLE', 'down');
    }),
    { code: 'CLOUD_UNAVAILABLE' },
  );
  t.same(attempts, [0, 1, 2]);

  attempts.length = 0;
  await t.rejects(
    withRetry(policy, async (attempt) => {
      attempts.push(attempt);
      throw new CloudError('CLOUD_NO_BUCKET', 'gone');
    }),
    { code: 'CLOUD_NO_BUCKET' },
  );
  t.same(attempts, [0]);

  t.equal(
    await withRetry(policy, async (attempt) => {
      if (attempt < 2) {
        throw new CloudError('CLOUD_THROTTLED', 'slow down');
      }
      return 'done';
    }),
    'done',
  );
});

t.test('Retry.Abort: an aborted signal stops retrying and rethrows the last error', async (t) => {
  const policy = { maxAttempts: 5, baseDelayMs: 60_000, maxDelayMs: 60_000 };
  const before = new AbortController();
  let attempts = 0;
  await t.rejects(
    withRetry(
      policy,
      async () => {
        attempts++;
        before.abort();
        throw new CloudError('CLOUD_UNAVAILABLE', `attempt ${attempts}`);
      },
      { signal: before.signal },
    ),
    { message: 'attempt 1' },
  );
  t.equal(attempts, 1, 'aborted before the backoff: no second attempt');

  // Aborted during a (up to 60 s) backoff: the wait ends at once (else tap's timeout fires).
  const during = new AbortController();
  const running = withRetry(
    policy,
    async () => {
      throw new CloudError('CLOUD_UNAVAILABLE', 'down');
    },
    { signal: during.signal },
  );
  setImmediate(() => during.abort());
  await t.rejects(running, { code: 'CLOUD_UNAVAILABLE' });
});
