// Bandwidth rate limits for uploads and downloads (AWS UpdateBandwidthRateLimit and
// UpdateBandwidthRateLimitSchedule; settings stored by gateway-settings.ts): a token bucket in
// bits, whose rate is looked up at every acquire so API changes and schedule boundaries apply at
// once. A transfer takes its tokens up front and waits until the bucket is no longer in debt, so a
// 1 MiB chunk under a 51,200 bit/s limit waits about 164 s and the long-run average is the limit.
//
// Schedule (AWS BandwidthRateLimitInterval): when a schedule exists, the limits of the interval
// that contains the current time apply and outside every interval transfers are unlimited;
// without a schedule the gateway-wide limits apply. Days are 0 = Sunday … 6 = Saturday, in the
// gateway's local time zone (the process's TZ), end minute inclusive like AWS (00:00–23:59 = all day).

import type { TransferLimiter } from '../store/storage-engine.js';
import type { BandwidthRateLimit, BandwidthRateLimitInterval } from './gateway-settings.js';

/** AWS minimums (UpdateBandwidthRateLimit). */
export const MIN_UPLOAD_RATE_BITS_PER_SEC = 51_200;
export const MIN_DOWNLOAD_RATE_BITS_PER_SEC = 102_400;

export type TransferDirection = 'upload' | 'download';

export interface RateLimitSource {
  bandwidthRateLimit(): BandwidthRateLimit;
  bandwidthRateLimitSchedule(): BandwidthRateLimitInterval[];
}

/** The limit in bits/s at `now`, or undefined when unlimited. */
export function effectiveRateLimit(source: RateLimitSource, direction: TransferDirection, now: Date): number | undefined {
  const schedule = source.bandwidthRateLimitSchedule();
  let limits: BandwidthRateLimit | undefined = source.bandwidthRateLimit();
  if (schedule.length > 0) limits = schedule.find((interval) => intervalContains(interval, now));
  const bitsPerSec =
    direction === 'upload' ? limits?.averageUploadRateLimitInBitsPerSec : limits?.averageDownloadRateLimitInBitsPerSec;
  if (bitsPerSec === undefined) return undefined;
  return Math.max(bitsPerSec, direction === 'upload' ? MIN_UPLOAD_RATE_BITS_PER_SEC : MIN_DOWNLOAD_RATE_BITS_PER_SEC);
}

export function intervalContains(interval: BandwidthRateLimitInterval, now: Date): boolean {
  if (!interval.daysOfWeek.includes(now.getDay())) return false;
  const minute = now.getHours() * 60 + now.getMinutes();
  const start = interval.startHourOfDay * 60 + interval.startMinuteOfHour;
  const end = interval.endHourOfDay * 60 + interval.endMinuteOfHour;
  return minute >= start && minute <= end;
}

export class RateLimiter implements TransferLimiter {
  private readonly rateBitsPerSec: () => number | undefined;
  private readonly burstMs: number;
  private readonly now: () => number;
  private tokensBits = 0;
  private lastRefillMs: number;
  /** Waiting transfers go one at a time, in order. */
  private tail: Promise<void> = Promise.resolve();
  /** Bytes that went through, limited or not (for metrics). */
  transferredBytes = 0;

  constructor(opts: { rateBitsPerSec: () => number | undefined; burstMs?: number; now?: () => number }) {
    this.rateBitsPerSec = opts.rateBitsPerSec;
    this.burstMs = opts.burstMs ?? 1_000;
    this.now = opts.now ?? (() => Date.now());
    this.lastRefillMs = this.now();
  }

  static forDirection(source: RateLimitSource, direction: TransferDirection): RateLimiter {
    return new RateLimiter({ rateBitsPerSec: () => effectiveRateLimit(source, direction, new Date()) });
  }

  /** Resolves when `lengthBytes` may be sent without exceeding the current limit on average. */
  acquire(lengthBytes: number): Promise<void> {
    this.transferredBytes += lengthBytes;
    const turn = this.tail.then(() => this.take(lengthBytes * 8));
    this.tail = turn.catch(() => undefined);
    return turn;
  }

  /** How long a transfer of `bits` would wait now, after taking them (0 = unlimited or in credit). */
  reserve(bits: number): number {
    const rate = this.rateBitsPerSec();
    const nowMs = this.now();
    if (rate === undefined) {
      this.tokensBits = 0;
      this.lastRefillMs = nowMs;
      return 0;
    }
    const burstBits = (rate * this.burstMs) / 1000;
    this.tokensBits = Math.min(burstBits, this.tokensBits + ((nowMs - this.lastRefillMs) * rate) / 1000);
    this.lastRefillMs = nowMs;
    this.tokensBits -= bits;
    return this.tokensBits >= 0 ? 0 : Math.ceil((-this.tokensBits * 1000) / rate);
  }

  private async take(bits: number): Promise<void> {
    const waitMs = this.reserve(bits);
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}
