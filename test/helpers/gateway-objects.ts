// The objects of one gateway in a bucket (docs/object-layout.md "Many gateways on one bucket"):
// tests that start a single gateway read its prefix without knowing its id.
import type { ObjectStore } from '../../src/cloud/object-store.js';
import { PrefixedObjectStore } from '../../src/cloud/prefixed-object-store.js';
import { gatewayPrefix, listGatewayIds } from '../../src/store/gateway-layout.js';

/** A view of `gateways/<id>/` for the only gateway in the bucket; the bucket itself while no
 *  gateway has stored anything (callers poll until objects appear). */
export async function soleGatewayObjects(bucket: ObjectStore): Promise<ObjectStore> {
  const ids = await listGatewayIds(bucket);
  if (ids.length > 1) throw new Error(`the bucket holds ${ids.length} gateways (${ids.join(', ')}); name one`);
  return ids.length === 0 ? bucket : new PrefixedObjectStore(bucket, gatewayPrefix(ids[0]!));
}
