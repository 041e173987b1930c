// Per-I_T-nexus unit attention conditions (SAM-5 5.14, SPC-4 5.11 / table 52 exceptions).
// A condition is established for one nexus or for every nexus the logical unit knows, queued in
// order, reported on the next command (except INQUIRY, REPORT LUNS and REQUEST SENSE, which the
// dispatcher handles) and cleared when reported.

import { Sense, type SenseCode } from './sense.js';

export class UnitAttentions {
  readonly #pending = new Map<string, SenseCode[]>();

  /** First command on a nexus: SAM-5 5.14 — report the power on / reset that preceded it. */
  noteNexus(nexusId: string): void {
    if (!this.#pending.has(nexusId)) {
      this.#pending.set(nexusId, [Sense.POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED]);
    }
  }

  /** Queues `sense` for one nexus (no duplicates). */
  establishFor(nexusId: string, sense: SenseCode): void {
    const queue = this.#pending.get(nexusId);
    if (!queue) {
      this.#pending.set(nexusId, [sense]);
    } else if (!queue.includes(sense)) {
      queue.push(sense);
    }
  }

  /** Queues `sense` for every known nexus except `exceptNexusId`. */
  establishForAll(sense: SenseCode, exceptNexusId?: string): void {
    for (const nexusId of this.#pending.keys()) {
      if (nexusId !== exceptNexusId) this.establishFor(nexusId, sense);
    }
  }

  /** After a reset every nexus has exactly the reset condition pending (SAM-5 6.3.2): the reset
   *  discarded whatever the queues held. */
  resetAll(sense: SenseCode): void {
    for (const nexusId of this.#pending.keys()) this.#pending.set(nexusId, [sense]);
  }

  peek(nexusId: string): SenseCode | undefined {
    return this.#pending.get(nexusId)?.[0];
  }

  /** Removes and returns the oldest pending condition for the nexus. */
  take(nexusId: string): SenseCode | undefined {
    return this.#pending.get(nexusId)?.shift();
  }

  forget(nexusId: string): void {
    this.#pending.delete(nexusId);
  }
}
