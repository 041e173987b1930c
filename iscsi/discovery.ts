// RFC 7143 13.3 SendTargets and Appendix C (SendTargets operation): which targets an initiator
// may see, and at which portal.

import type { KeyValue } from './negotiation.js';
import type { TargetConfig, TargetRegistry } from './device.js';

/** A portal as SendTargets reports it: the address initiators are to use, with its group tag. */
export interface Portal {
  address: string;
  port: number;
  portalGroupTag: number;
}

/** Whether an initiator may log in to (and so discover) a target. */
export function initiatorAllowed(target: TargetConfig, initiatorName: string): boolean {
  return target.allowedInitiators === undefined || target.allowedInitiators.includes(initiatorName);
}

/** RFC 7143 13.8 TargetAddress value: domainname[:port][,portal-group-tag], IPv6 in brackets. */
export function targetAddress(portal: Portal): string {
  let address = portal.address;
  if (address.startsWith('::ffff:') && address.includes('.')) address = address.slice('::ffff:'.length);
  const host = address.includes(':') ? `[${address}]` : address;
  return `${host}:${portal.port},${portal.portalGroupTag}`;
}

/**
 * RFC 7143 13.3: answer a SendTargets key. In a discovery session "All" lists every target the
 * initiator may see and a name lists that target; in a normal session only the session's own
 * target is reported (an empty value, its name, or All).
 */
export function sendTargets(args: {
  registry: TargetRegistry;
  initiatorName: string;
  value: string;
  /** The TargetAddress values, in order (RFC 7143 Appendix C: a target may list several): the
   *  configured advertised portals, or the one the initiator connected to. */
  portals: readonly Portal[];
  /** The session's target in a normal session; undefined in a discovery session. */
  sessionTarget?: TargetConfig;
}): KeyValue[] {
  const { registry, initiatorName, value, portals, sessionTarget } = args;
  let targets: TargetConfig[];
  if (sessionTarget !== undefined) {
    targets = value === '' || value === 'All' || value === sessionTarget.name ? [sessionTarget] : [];
  } else if (value === 'All') {
    targets = registry.list().filter((t) => initiatorAllowed(t, initiatorName));
  } else {
    const t = registry.get(value);
    targets = t !== undefined && initiatorAllowed(t, initiatorName) ? [t] : [];
  }
  const addresses = portals.map(targetAddress);
  const pairs: KeyValue[] = [];
  for (const t of targets) {
    pairs.push(['TargetName', t.name]);
    for (const address of addresses) pairs.push(['TargetAddress', address]);
  }
  return pairs;
}
