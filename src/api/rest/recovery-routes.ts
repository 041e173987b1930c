// REST routes of many gateways on one bucket (docs/disaster-recovery.md): the gateways and the
// snapshots of the whole bucket (the account's), and the recovery of a lost gateway
// (`shelfgate recover --from sgw-…`): start, then poll its progress.

import { z } from 'zod';
import { gatewayRecoverySchema } from '../../gateway/gateway-recovery.js';
import type { AdminDeps } from '../admin-deps.js';
import type { RestRoute } from './routes.js';
import { RestError } from './routes.js';
import { ErrorBody } from './schemas.js';
import { snapshotBody, SnapshotBody } from './snapshot-routes.js';

const AccountSnapshot = SnapshotBody.extend({
  gatewayId: z.string().describe('the gateway that took it (its prefix holds the manifest)'),
  volumeType: z.enum(['cached', 'stored']).optional(),
});
const AccountSnapshotList = z.object({ snapshots: z.array(AccountSnapshot) });

const GatewayList = z.object({
  gateways: z.array(z.object({ gatewayId: z.string(), name: z.string().optional(), createdAt: z.string().optional(), self: z.boolean() })),
});

const RecoverBody = z.strictObject({
  from: z.string().describe('the lost gateway: sgw-XXXXXXXX, or legacy for a bucket written before gateway prefixes'),
  volumeSource: z.enum(['snapshot', 'recovery-point']).optional().describe('restore volumes from their latest snapshot (default) or their last uploaded state'),
});
const RecoverParams = z.strictObject({ from: z.string() });

/** docs/disaster-recovery.md: what was found, adopted and skipped so far. */
export const RecoveryBody = gatewayRecoverySchema;

export function recoveryRoutes(deps: AdminDeps): RestRoute[] {
  const account = () => {
    if (deps.account === undefined) throw new RestError(501, 'NOT_SUPPORTED', 'needs the storage engine');
    return deps.account;
  };
  const errors = { 400: ErrorBody, 401: ErrorBody };
  return [
    {
      method: 'GET',
      url: '/v1/account/gateways',
      summary: 'Every gateway with objects in the bucket',
      responses: { 200: GatewayList, ...errors },
      handler: async () => ({ status: 200, body: { gateways: await account().gateways() } }),
    },
    {
      method: 'GET',
      url: '/v1/account/snapshots',
      summary: "This gateway's snapshots and every completed snapshot of the other gateways on the bucket",
      responses: { 200: AccountSnapshotList, ...errors },
      handler: async () => ({
        status: 200,
        body: {
          snapshots: (await account().snapshots.listAccount()).map((s) => ({
            ...snapshotBody(s),
            gatewayId: s.gatewayId,
            ...(s.volumeType !== undefined ? { volumeType: s.volumeType } : {}),
          })),
        },
      }),
    },
    {
      method: 'POST',
      url: '/v1/recoveries',
      summary: 'Adopt the tapes, archived tapes and volumes of a lost gateway (idempotent; poll GET for progress)',
      body: RecoverBody,
      responses: { 202: RecoveryBody, 404: ErrorBody, ...errors },
      handler: async ({ body }) => {
        const input = body as z.output<typeof RecoverBody>;
        const progress = await account().recovery.start(input.from, input.volumeSource !== undefined ? { volumeSource: input.volumeSource } : {});
        return { status: 202, body: progress };
      },
    },
    {
      method: 'GET',
      url: '/v1/recoveries/:from',
      summary: 'Progress of the recovery of a gateway',
      params: RecoverParams,
      responses: { 200: RecoveryBody, 404: ErrorBody, ...errors },
      handler: async ({ params }) => ({ status: 200, body: await account().recovery.get((params as { from: string }).from) }),
    },
  ];
}
