// Marker/Limit pagination as Storage Gateway's List*/Describe* operations do it: the response's
// Marker is opaque and present only when more items follow. Ours encodes the sort key of the
// last item returned, so a page is stable when items are added or removed between requests.

import { invalidGatewayRequest } from './aws-error.js';

/** AWS: "Limit … default 100" for ListVolumes, ListGateways, DescribeTapes. */
export const DEFAULT_PAGE_LIMIT = 100;

export function paginate<T>(
  items: T[],
  keyOf: (item: T) => string,
  request: { Marker?: string | undefined; Limit?: number | undefined },
): { page: T[]; marker: string | undefined } {
  const sorted = [...items].sort((a, b) => compare(keyOf(a), keyOf(b)));
  let start = 0;
  if (request.Marker !== undefined) {
    const after = Buffer.from(request.Marker, 'base64url').toString('utf8');
    if (after === '' || encodeMarker(after) !== request.Marker) {
      throw invalidGatewayRequest('InvalidParameters', 'Marker: not a marker this gateway returned', { field: 'Marker' });
    }
    start = sorted.findIndex((item) => compare(keyOf(item), after) > 0);
    if (start < 0) start = sorted.length;
  }
  const limit = request.Limit ?? DEFAULT_PAGE_LIMIT;
  const page = sorted.slice(start, start + limit);
  const more = start + limit < sorted.length;
  return { page, marker: more && page.length > 0 ? encodeMarker(keyOf(page[page.length - 1])) : undefined };
}

function encodeMarker(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
