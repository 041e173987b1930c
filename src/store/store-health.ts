// The stores' health (ARCHITECTURE.md "Data path": a full or failing disk refuses the new command
// with exact sense and never touches what was acknowledged). A store that cannot write reports a
// condition here; /health says `degraded` with the reasons while any condition holds, the metrics
// count the episodes, and each episode is logged once when it starts and once when it ends.
//
// One StoreHealth is created by main.ts and passed to every store explicitly.

export type StoreConditionKind = 'disk-full' | 'io-error';

export interface StoreCondition {
  /** Who reports it, e.g. "volume vol1" or "tape VTL00001". */
  component: string;
  kind: StoreConditionKind;
  /** What happened and what the operator can do, in one sentence. */
  reason: string;
  /** ISO 8601 start of the episode. */
  since: string;
}

export interface StoreHealthLogger {
  warn(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
}

export class StoreHealth {
  private readonly active = new Map<string, StoreCondition>();
  private readonly log: StoreHealthLogger | null;
  /** Episodes started, per kind (Prometheus counters). */
  readonly episodes: Record<StoreConditionKind, number> = { 'disk-full': 0, 'io-error': 0 };
  /** Commands refused because of a condition, per kind. */
  readonly refusedCommands: Record<StoreConditionKind, number> = { 'disk-full': 0, 'io-error': 0 };

  constructor(log: StoreHealthLogger | null = null) {
    this.log = log;
  }

  /** A command was refused because of `kind`; starts an episode for `component` if none is open. */
  degrade(component: string, kind: StoreConditionKind, reason: string): void {
    this.refusedCommands[kind]++;
    const key = `${component}\u0000${kind}`;
    if (this.active.has(key)) return;
    this.active.set(key, { component, kind, reason, since: new Date().toISOString() });
    this.episodes[kind]++;
    this.log?.warn(`${component}: ${reason}`, { kind });
  }

  /** The component wrote successfully again: ends its episodes (of `kind`, or all). */
  recover(component: string, kind?: StoreConditionKind): void {
    for (const [key, condition] of this.active) {
      if (condition.component !== component || (kind !== undefined && condition.kind !== kind)) continue;
      this.active.delete(key);
      this.log?.info(`${component}: ${condition.kind} condition cleared; writes succeed again`, { since: condition.since });
    }
  }

  isDegraded(): boolean {
    return this.active.size > 0;
  }

  conditions(): StoreCondition[] {
    return [...this.active.values()];
  }
}
