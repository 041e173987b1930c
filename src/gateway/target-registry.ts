// Every target the gateway serves, as the one TargetRegistry the iSCSI fabric looks names up in:
// the volume targets (which the admin API adds and removes at run time) beside the tape library's
// media changer and ten drive targets (fixed for the life of the process). SendTargets lists them
// in that order; a name belongs to exactly one source.

import type { TargetConfig, TargetRegistry } from '../../iscsi/device.js';

export class GatewayTargetRegistry implements TargetRegistry {
  readonly #sources: readonly TargetRegistry[];

  /** `sources` are asked in order; the first that knows a name serves it. */
  constructor(sources: readonly TargetRegistry[]) {
    this.#sources = sources;
  }

  list(): TargetConfig[] {
    return this.#sources.flatMap((source) => source.list());
  }

  get(name: string): TargetConfig | undefined {
    for (const source of this.#sources) {
      const target = source.get(name);
      if (target !== undefined) return target;
    }
    return undefined;
  }
}

/** A registry over a fixed list of targets (the tape library's). */
export function staticTargetRegistry(targets: readonly TargetConfig[]): TargetRegistry {
  const byName = new Map(targets.map((target) => [target.name, target]));
  return {
    list: () => [...targets],
    get: (name) => byName.get(name),
  };
}
