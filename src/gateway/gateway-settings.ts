// Gateway-wide settings the admin API reads and changes: the gateway id (AWS style "sgw-" + 8 hex
// digits, generated on first start and kept), the bandwidth rate limits and their schedule.
// The limits are validated and stored here; the uploader's rate limiter (rate-limiter.ts) reads
// them live.

import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Database } from '../store/database.js';
import { getSetting, putSetting } from '../store/settings-catalog.js';

const GATEWAY_ID_SETTING = 'gateway-id';
const BANDWIDTH_SETTING = 'bandwidth-rate-limit';
const SCHEDULE_SETTING = 'bandwidth-rate-limit-schedule';

/** Bits per second; an absent direction is unlimited. */
export interface BandwidthRateLimit {
  averageUploadRateLimitInBitsPerSec?: number;
  averageDownloadRateLimitInBitsPerSec?: number;
}

/** One interval of the weekly schedule (AWS BandwidthRateLimitInterval; days 0 = Sunday). */
export interface BandwidthRateLimitInterval extends BandwidthRateLimit {
  startHourOfDay: number;
  startMinuteOfHour: number;
  endHourOfDay: number;
  endMinuteOfHour: number;
  daysOfWeek: number[];
}

const bandwidthSchema = z.object({
  averageUploadRateLimitInBitsPerSec: z.number().int().positive().optional(),
  averageDownloadRateLimitInBitsPerSec: z.number().int().positive().optional(),
});
const scheduleSchema = z.array(
  bandwidthSchema.extend({
    startHourOfDay: z.number().int().min(0).max(23),
    startMinuteOfHour: z.number().int().min(0).max(59),
    endHourOfDay: z.number().int().min(0).max(23),
    endMinuteOfHour: z.number().int().min(0).max(59),
    daysOfWeek: z.array(z.number().int().min(0).max(6)),
  }),
);

export class GatewaySettings {
  readonly gatewayId: string;
  private readonly db: Database;
  private bandwidth: BandwidthRateLimit;
  private schedule: BandwidthRateLimitInterval[];
  /** Updates run one at a time so the stored value is always the last one applied. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(db: Database, gatewayId: string, bandwidth: BandwidthRateLimit, schedule: BandwidthRateLimitInterval[]) {
    this.db = db;
    this.gatewayId = gatewayId;
    this.bandwidth = bandwidth;
    this.schedule = schedule;
  }

  static async open(db: Database): Promise<GatewaySettings> {
    let gatewayId = await getSetting(db, GATEWAY_ID_SETTING, z.string().regex(/^sgw-[0-9A-F]{8}$/));
    if (gatewayId === undefined) {
      gatewayId = `sgw-${randomBytes(4).toString('hex').toUpperCase()}`;
      await putSetting(db, GATEWAY_ID_SETTING, gatewayId);
    }
    const bandwidth: BandwidthRateLimit = (await getSetting(db, BANDWIDTH_SETTING, bandwidthSchema)) ?? {};
    const schedule: BandwidthRateLimitInterval[] = (await getSetting(db, SCHEDULE_SETTING, scheduleSchema)) ?? [];
    return new GatewaySettings(db, gatewayId, bandwidth, schedule);
  }

  bandwidthRateLimit(): BandwidthRateLimit {
    return { ...this.bandwidth };
  }

  /** Sets the given directions, leaving the others as they are. */
  updateBandwidthRateLimit(change: BandwidthRateLimit): Promise<void> {
    return this.serialized(async () => {
      const next = { ...this.bandwidth, ...change };
      await putSetting(this.db, BANDWIDTH_SETTING, next);
      this.bandwidth = next;
    });
  }

  /** Removes the limit of one direction or both (AWS DeleteBandwidthRateLimit). */
  deleteBandwidthRateLimit(which: 'upload' | 'download' | 'all'): Promise<void> {
    return this.serialized(async () => {
      const next = { ...this.bandwidth };
      if (which !== 'download') delete next.averageUploadRateLimitInBitsPerSec;
      if (which !== 'upload') delete next.averageDownloadRateLimitInBitsPerSec;
      await putSetting(this.db, BANDWIDTH_SETTING, next);
      this.bandwidth = next;
    });
  }

  bandwidthRateLimitSchedule(): BandwidthRateLimitInterval[] {
    return this.schedule.map((interval) => ({ ...interval, daysOfWeek: [...interval.daysOfWeek] }));
  }

  /** Replaces the whole schedule (an empty list removes it). */
  updateBandwidthRateLimitSchedule(intervals: BandwidthRateLimitInterval[]): Promise<void> {
    return this.serialized(async () => {
      await putSetting(this.db, SCHEDULE_SETTING, intervals);
      this.schedule = intervals.map((interval) => ({ ...interval, daysOfWeek: [...interval.daysOfWeek] }));
    });
  }

  private serialized(step: () => Promise<void>): Promise<void> {
    const run = this.queue.then(step, step);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
