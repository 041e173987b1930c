// Many gateways on one bucket (docs/object-layout.md "Many gateways on one bucket"): each gateway
// writes only under `gateways/<gateway-id>/`, claims its id there once with a create-only
// `gateway.json`, and reads other gateways' prefixes (snapshots, recovery, garbage collection).
//
//   gateways/<sgw-XXXXXXXX>/gateway.json        the claim: id, name, first start (never rewritten)
//   gateways/<sgw-XXXXXXXX>/volumes/…           volume chunks and head.json (storage-engine.ts)
//   gateways/<sgw-XXXXXXXX>/snapshots/<snap>.json  snapshot manifests (snapshot-manifest.ts)
//   gateways/<sgw-XXXXXXXX>/tapes/…             tape data, index, library catalog (tape-object-layout.ts)
//   gateways/<sgw-XXXXXXXX>/shelf/<barcode>.json   archived tapes (tape-shelf-object.ts)
//
// The layout before it had the same keys at the bucket's root; that root is the pseudo gateway
// `legacy` (read only: recovery and fallback reads of upgraded data dirs).

import { z } from 'zod';
import type { ObjectStore } from '../cloud/object-store.js';
import { parseStoredJson } from './stored-json.js';

export const GATEWAYS_PREFIX = 'gateways/';
/** The bucket root as written before per-gateway prefixes. */
export const LEGACY_GATEWAY_ID = 'legacy';
export const GATEWAY_ID_PATTERN = /^sgw-[0-9A-F]{8}$/;
export const GATEWAY_MARKER_KEY = 'gateway.json';

/** Key prefix of a gateway's objects ('' for the legacy root layout). */
export function gatewayPrefix(gatewayId: string): string {
  return gatewayId === LEGACY_GATEWAY_ID ? '' : `${GATEWAYS_PREFIX}${gatewayId}/`;
}

export function isGatewayId(value: string): boolean {
  return GATEWAY_ID_PATTERN.test(value);
}

const gatewayMarkerSchema = z.object({
  format: z.literal(1),
  gatewayId: z.string().regex(GATEWAY_ID_PATTERN),
  name: z.string(),
  createdAt: z.string(),
});
export type GatewayMarker = z.infer<typeof gatewayMarkerSchema>;

export function encodeGatewayMarker(marker: GatewayMarker): Buffer {
  return Buffer.from(JSON.stringify(marker), 'utf8');
}

export function parseGatewayMarker(body: Buffer, key: string): GatewayMarker {
  return parseStoredJson(gatewayMarkerSchema, body, key);
}

/** The ids of every gateway with objects in the bucket, in order: one list request per gateway
 *  (after each id, the listing resumes past `gateways/<id>/…`: '0' sorts right after '/'). */
export async function listGatewayIds(bucket: Pick<ObjectStore, 'list'>): Promise<string[]> {
  const ids: string[] = [];
  let startAfter: string | undefined;
  for (;;) {
    let next: string | undefined;
    for await (const entry of bucket.list(GATEWAYS_PREFIX, { limit: 1, ...(startAfter !== undefined ? { startAfter } : {}) })) {
      next = entry.key.slice(GATEWAYS_PREFIX.length).split('/')[0];
    }
    if (next === undefined) return ids;
    if (isGatewayId(next)) ids.push(next);
    startAfter = `${GATEWAYS_PREFIX}${next}0`;
  }
}
