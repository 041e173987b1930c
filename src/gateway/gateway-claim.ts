// A gateway claims its id in the bucket (docs/object-layout.md "Many gateways on one bucket"):
// `gateways/<id>/gateway.json`, put create-only once. On a first start a taken id is replaced by
// a new one before anything is stored under it; later, a claim that finds another gateway's
// marker stops cloud work with an error the operator can act on. An unreachable bucket does not
// delay the start: the claim is retried in the background (ids are 32 random bits, the claim
// guards against a copied data dir and a reused id, not against races of the first seconds).

import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../../iscsi/log.js';
import { CloudError, isTransientCloudError } from '../cloud/cloud-error.js';
import type { ObjectStore } from '../cloud/object-store.js';
import { GATEWAY_MARKER_KEY, encodeGatewayMarker, gatewayPrefix, parseGatewayMarker } from '../store/gateway-layout.js';
import { GatewayError } from './gateway-error.js';
import type { GatewaySettings } from './gateway-settings.js';

export type ClaimResult = 'claimed' | 'pending';

/** Claims the id now when the bucket answers; 'pending' when it does not (the caller retries
 *  with claimInBackground). Throws GW_GATEWAY_ID_TAKEN when another gateway holds the id. */
export async function claimGatewayId(opts: { bucket: ObjectStore; settings: GatewaySettings; gatewayName: string; log: Logger }): Promise<ClaimResult> {
  const { bucket, settings, gatewayName, log } = opts;
  if (settings.claimed) return 'claimed';
  for (let drawn = 0; ; drawn++) {
    const key = gatewayPrefix(settings.gatewayId) + GATEWAY_MARKER_KEY;
    try {
      await bucket.put(
        key,
        encodeGatewayMarker({ format: 1, gatewayId: settings.gatewayId, name: gatewayName, createdAt: new Date().toISOString() }),
        { createOnly: true },
      );
      await settings.markClaimed();
      log.info('gateway id claimed in the bucket', { gatewayId: settings.gatewayId, key });
      return 'claimed';
    } catch (err) {
      if (isTransientCloudError(err)) return 'pending';
      if (!(err instanceof CloudError) || err.code !== 'CLOUD_EXISTS') throw err;
    }
    // The marker exists: ours from a start that crashed before recording the claim, or another's.
    const existing = await bucket.head(key);
    if (existing === null) continue;
    const marker = parseGatewayMarker(await bucket.get(key), key);
    if (!settings.firstStart && marker.name === gatewayName) {
      await settings.markClaimed();
      return 'claimed';
    }
    if (settings.firstStart && drawn < 8) {
      const taken = settings.gatewayId;
      await settings.replaceGatewayId();
      log.warn('gateway id taken in the bucket; drew another', { taken, gatewayId: settings.gatewayId });
      continue;
    }
    throw new GatewayError(
      'GW_GATEWAY_ID_TAKEN',
      `gateway id ${settings.gatewayId} belongs to gateway "${marker.name}" in this bucket (${key}); ` +
        'two gateways must not share a data dir: start this one with an empty data dir (it draws a new id) or on another bucket',
    );
  }
}

/** Retries a pending claim until it succeeds or `signal` aborts; errors other than an outage are
 *  logged once and end the attempts. */
export async function claimInBackground(opts: Parameters<typeof claimGatewayId>[0] & { signal: AbortSignal }): Promise<void> {
  for (let attempt = 0; !opts.signal.aborted; attempt++) {
    try {
      if ((await claimGatewayId(opts)) === 'claimed') return;
    } catch (err) {
      opts.log.error('gateway id claim failed', { gatewayId: opts.settings.gatewayId, err: String(err) });
      return;
    }
    await delay(Math.min(30_000, 1_000 * 2 ** Math.min(attempt, 5)), undefined, { signal: opts.signal }).catch(() => undefined);
  }
}
