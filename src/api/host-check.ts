// DNS rebinding protection (docs/security.md): a browser tricked into sending requests to the
// admin API under another name still sends that name in `Host`. Requests whose Host header is
// not a name of this gateway are refused before any route runs.

import { hostname, networkInterfaces } from 'node:os';

/** The names a request may carry in Host: loopback names, the listen address, this machine's
 *  host name and interface addresses, and `extra` (api.allowedHosts). Lower case, no port. */
export function apiHostNames(listenHost: string, extra: readonly string[] = []): Set<string> {
  const names = new Set<string>(['localhost', '127.0.0.1', '::1', hostname().toLowerCase()]);
  names.add(normalise(listenHost));
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) names.add(normalise(a.address));
  }
  for (const name of extra) names.add(normalise(name));
  names.delete('0.0.0.0');
  names.delete('::');
  return names;
}

/** The host part of a Host header ("Name:8080", "[::1]:8080", "name."), lower case; "" if absent. */
export function hostOfHeader(header: string | undefined): string {
  if (header === undefined) return '';
  const value = header.trim();
  if (value.startsWith('[')) return normalise(value.slice(1, value.indexOf(']') === -1 ? undefined : value.indexOf(']')));
  const colon = value.indexOf(':');
  return normalise(colon === -1 ? value : value.slice(0, colon));
}

function normalise(host: string): string {
  return host.toLowerCase().replace(/\.$/, '').replace(/%.*$/, '');
}
