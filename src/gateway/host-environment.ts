// Where the gateway runs, for advice in the log: inside a container, a listener on a wildcard
// address is reached through a published port of another address, which the gateway cannot see.

import { existsSync } from 'node:fs';

/** Docker creates /.dockerenv, podman /run/.containerenv and sets `container` in the
 *  environment of PID 1's children (as systemd-nspawn and LXC do). */
export function runningInContainer(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.container !== undefined && env.container !== '') || existsSync('/.dockerenv') || existsSync('/run/.containerenv');
}

/** 0.0.0.0 or :: (every address of the machine). */
export function isWildcardAddress(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}
