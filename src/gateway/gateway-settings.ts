// Gateway-wide settings the admin API reads and changes: the gateway id (AWS style "sgw-" + 8 hex
// digits, generated on first start and kept), the bandwidth rate limits and their schedule.
// The limits are validated and stored here; the uploader's rate limiter (rate-limiter.ts) reads
// them live.

import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Database } from '../store/database.js';
import { getSetting, putSetting } from '../store/settings-catalog.js';

const GATEWAY_ID_SETTING = 'gateway-id';
/** 'gateway-prefix' (docs/object-layout.md "Many gateways on one bucket"); 'root-fallback' for a
 *  data dir that uploaded before per-gateway prefixes (its objects at the bucket root stay
 *  readable); absent until the first start that knows prefixes. */
const OBJECT_LAYOUT_SETTING = 'object-layout';
/** true once `gateways/<id>/gateway.json` is stored (gateway-claim.ts). */
const GATEWAY_CLAIMED_SETTING = 'gateway-claimed';
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

export type ObjectLayout = 'gateway-prefix' | 'root-fallback';

function newGatewayId(): string {
  return `sgw-${randomBytes(4).toString('hex').toUpperCase()}`;
}

export class GatewaySettings {
  #gatewayId: string;
  /** Whether this data dir was created by this start (nothing uploaded under its id yet). */
  readonly firstStart: boolean;
  readonly objectLayout: ObjectLayout;
  #claimed: boolean;
  private readonly db: Database;
  private bandwidth: BandwidthRateLimit;
  private schedule: BandwidthRateLimitInterval[];
  /** Updates run one at a time so the stored value is always the last one applied. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    db: Database,
    identity: { gatewayId: string; firstStart: boolean; objectLayout: ObjectLayout; claimed: boolean },
    bandwidth: BandwidthRateLimit,
    schedule: BandwidthRateLimitInterval[],
  ) {
    this.db = db;
    this.#gatewayId = identity.gatewayId;
    this.firstStart = identity.firstStart;
    this.objectLayout = identity.objectLayout;
    this.#claimed = identity.claimed;
    this.bandwidth = bandwidth;
    this.schedule = schedule;
  }

  static async open(db: Database): Promise<GatewaySettings> {
    let gatewayId = await getSetting(db, GATEWAY_ID_SETTING, z.string().regex(/^sgw-[0-9A-F]{8}$/));
    const firstStart = gatewayId === undefined;
    if (gatewayId === undefined) {
      gatewayId = newGatewayId();
      await putSetting(db, GATEWAY_ID_SETTING, gatewayId);
    }
    let objectLayout = await getSetting(db, OBJECT_LAYOUT_SETTING, z.enum(['gateway-prefix', 'root-fallback']));
    if (objectLayout === undefined) {
      objectLayout = firstStart ? 'gateway-prefix' : 'root-fallback';
      await putSetting(db, OBJECT_LAYOUT_SETTING, objectLayout);
    }
    const claimed = (await getSetting(db, GATEWAY_CLAIMED_SETTING, z.boolean())) === true;
    const bandwidth: BandwidthRateLimit = (await getSetting(db, BANDWIDTH_SETTING, bandwidthSchema)) ?? {};
    const schedule: BandwidthRateLimitInterval[] = (await getSetting(db, SCHEDULE_SETTING, scheduleSchema)) ?? [];
    return new GatewaySettings(db, { gatewayId, firstStart, objectLayout, claimed }, bandwidth, schedule);
  }

  /** AWS style: "sgw-" + 8 upper-case hex digits. */
  get gatewayId(): string {
    return this.#gatewayId;
  }

  /** Whether `gateways/<id>/gateway.json` is known to be this gateway's. */
  get claimed(): boolean {
    return this.#claimed;
  }

  async markClaimed(): Promise<void> {
    await putSetting(this.db, GATEWAY_CLAIMED_SETTING, true);
    this.#claimed = true;
  }

  /** A new id, on the first start only, when the bucket shows the drawn one is taken (before
   *  anything was stored under it). */
  async replaceGatewayId(): Promise<string> {
    if (!this.firstStart || this.#claimed) throw new Error('the gateway id can change only before its first claim');
    this.#gatewayId = newGatewayId();
    await putSetting(this.db, GATEWAY_ID_SETTING, this.#gatewayId);
    return this.#gatewayId;
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
