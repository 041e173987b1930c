// Snapshot schedules (AWS UpdateSnapshotSchedule / DescribeSnapshotSchedule): a snapshot of the
// volume at StartAt o'clock (UTC, the gateway's timezone "GMT") and every RecurrenceInHours hours
// after it. Schedules are persisted in the snapshot catalog. Stored volumes always have one — the
// AWS default is once a day, and it cannot be removed, only changed; cached volumes have none
// until one is set. The clock is injectable: tick(now) takes the snapshots whose slot passed since
// the previous tick (slots missed while the gateway was down are not made up).

import type { Logger } from '../../iscsi/log.js';
import type { Database } from '../store/database.js';
import {
  deleteSnapshotSchedule,
  listSnapshotSchedules,
  putSnapshotSchedule,
  type SnapshotSchedule,
} from '../store/snapshot-catalog.js';
import type { VolumeRecord } from '../store/volume-catalog.js';
import { GatewayError } from './gateway-error.js';
import type { SnapshotService } from './snapshot-service.js';

/** The recurrences the AWS console offers (the API takes 1–24; these divide a day evenly). */
export const RECURRENCE_HOURS = [1, 2, 4, 8, 12, 24] as const;

/** AWS: stored volumes get a daily snapshot by default. */
export const DEFAULT_STORED_SCHEDULE = { startAtHour: 0, recurrenceInHours: 24 } as const;

const HOUR_MS = 3_600_000;
const DEFAULT_TICK_INTERVAL_MS = 60_000;

export interface SnapshotSchedulerOptions {
  db: Database;
  snapshots: Pick<SnapshotService, 'create'>;
  /** The served volumes (a schedule of a volume no longer served is ignored). */
  volumes(): Array<Readonly<VolumeRecord>>;
  log: Logger;
  now?: () => Date;
}

export class SnapshotScheduler {
  private readonly opts: SnapshotSchedulerOptions;
  private readonly now: () => Date;
  private readonly schedules = new Map<number, SnapshotSchedule>();
  private lastTickMs: number;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<string[]> | null = null;

  private constructor(opts: SnapshotSchedulerOptions, schedules: SnapshotSchedule[]) {
    this.opts = opts;
    this.now = opts.now ?? (() => new Date());
    this.lastTickMs = this.now().getTime();
    for (const schedule of schedules) this.schedules.set(schedule.volumeId, schedule);
  }

  static async open(opts: SnapshotSchedulerOptions): Promise<SnapshotScheduler> {
    return new SnapshotScheduler(opts, await listSnapshotSchedules(opts.db));
  }

  /** The volume's schedule: the one set, else the stored-volume default, else none. */
  describe(volume: Pick<VolumeRecord, 'id' | 'type' | 'name'>): SnapshotSchedule | undefined {
    const set = this.schedules.get(volume.id);
    if (set !== undefined) return { ...set };
    if (volume.type !== 'stored') return undefined;
    return { volumeId: volume.id, ...DEFAULT_STORED_SCHEDULE, description: `${volume.name}:Schedule` };
  }

  async update(schedule: SnapshotSchedule): Promise<void> {
    if (!Number.isInteger(schedule.startAtHour) || schedule.startAtHour < 0 || schedule.startAtHour > 23) {
      throw new GatewayError('GW_SNAPSHOT_INVALID_ARGUMENT', `StartAt must be an hour from 0 to 23 (got ${schedule.startAtHour})`);
    }
    if (!(RECURRENCE_HOURS as readonly number[]).includes(schedule.recurrenceInHours)) {
      throw new GatewayError(
        'GW_SNAPSHOT_INVALID_ARGUMENT',
        `RecurrenceInHours must be one of ${RECURRENCE_HOURS.join(', ')} (got ${schedule.recurrenceInHours})`,
      );
    }
    if (schedule.description.length > 255) {
      throw new GatewayError('GW_SNAPSHOT_INVALID_ARGUMENT', 'Description must be at most 255 characters');
    }
    await putSnapshotSchedule(this.opts.db, schedule);
    this.schedules.set(schedule.volumeId, { ...schedule });
  }

  /** AWS DeleteSnapshotSchedule: cached volumes only (a stored volume's schedule cannot be removed). */
  async remove(volume: Pick<VolumeRecord, 'id' | 'type' | 'name'>): Promise<void> {
    if (volume.type === 'stored') {
      throw new GatewayError('GW_SNAPSHOT_INVALID_STATE', `volume ${volume.name} is a stored volume: its snapshot schedule cannot be deleted`);
    }
    if (!this.schedules.has(volume.id)) throw new GatewayError('GW_SNAPSHOT_NOT_FOUND', `volume ${volume.name} has no snapshot schedule`);
    await deleteSnapshotSchedule(this.opts.db, volume.id);
    this.schedules.delete(volume.id);
  }

  /** Takes the snapshots whose slot lies in (previous tick, now]; answers their ids. */
  tick(now: Date = this.now()): Promise<string[]> {
    const run = (this.ticking ?? Promise.resolve([])).then(() => this.runDue(now.getTime()));
    this.ticking = run.catch(() => []);
    return run;
  }

  start(intervalMs = DEFAULT_TICK_INTERVAL_MS): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => {
      this.tick().catch((err: unknown) => this.opts.log.error('scheduled snapshots failed', { err: String(err) }));
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.ticking;
  }

  private async runDue(nowMs: number): Promise<string[]> {
    const fromMs = this.lastTickMs;
    this.lastTickMs = Math.max(this.lastTickMs, nowMs);
    const taken: string[] = [];
    for (const volume of this.opts.volumes()) {
      const schedule = this.describe(volume);
      if (schedule === undefined || !slotBetween(schedule, fromMs, nowMs)) continue;
      const description = schedule.description.length > 0 ? schedule.description : `${volume.name}:Schedule`;
      try {
        const record = await this.opts.snapshots.create(volume.id, description);
        taken.push(record.snapId);
        this.opts.log.info('scheduled snapshot', { volume: volume.name, snapId: record.snapId });
      } catch (err) {
        this.opts.log.warn('scheduled snapshot refused', { volume: volume.name, err: String(err) });
      }
    }
    return taken;
  }
}

/** Whether a slot (a whole UTC hour h with (h − StartAt) mod RecurrenceInHours = 0) lies in
 *  (fromMs, toMs]. */
export function slotBetween(schedule: Pick<SnapshotSchedule, 'startAtHour' | 'recurrenceInHours'>, fromMs: number, toMs: number): boolean {
  if (toMs <= fromMs) return false;
  if (toMs - fromMs >= 24 * HOUR_MS) return true;
  for (let hourMs = Math.floor(fromMs / HOUR_MS + 1) * HOUR_MS; hourMs <= toMs; hourMs += HOUR_MS) {
    const hour = new Date(hourMs).getUTCHours();
    if ((((hour - schedule.startAtHour) % schedule.recurrenceInHours) + schedule.recurrenceInHours) % schedule.recurrenceInHours === 0) {
      return true;
    }
  }
  return false;
}
