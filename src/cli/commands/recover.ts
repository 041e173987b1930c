// `shelfgate recover --from sgw-…` and `shelfgate gateways` (docs/disaster-recovery.md): adopt a
// lost gateway's tapes, archived tapes and volumes through POST /v1/recoveries, then show its
// progress on stderr until it is done (`--no-wait`: start it and return).

import type { CommandContext } from './admin-commands.js';
import { CliError } from './api-client.js';
import { formatTable } from './table.js';

export const RECOVER_HELP = `Usage: shelfgate recover --from GATEWAY_ID [options]

Adopts what a lost gateway on the same bucket left there: its library tapes (rebuilt in this
library), its archived tapes (retrievable from the archive store), and its volumes (restored
from their latest snapshot, fetched lazily). Idempotent: run it again after an interruption.

Options:
  --from ID            the lost gateway (sgw-XXXXXXXX, see \`shelfgate gateways\`), or legacy
                       for a bucket written before gateway prefixes
  --volume-source S    snapshot (default): each volume's latest snapshot, or its recovery
                       point when it has none; recovery-point: the last uploaded state
  --no-wait            start it and return (progress: shelfgate recover --from ID --status)
  --status             show the progress of the last recovery of ID
`;

export const GATEWAYS_HELP = `Usage: shelfgate gateways [options]

Every gateway with objects in the bucket (its id, name and first start); "self" is this one.
`;

interface Recovery {
  from: string;
  state: 'running' | 'completed' | 'failed';
  step: string;
  error?: string;
  tapes: { found: number; adopted: string[]; skipped: string[] };
  archivedTapes: { found: number; adopted: string[]; skipped: string[] };
  volumes: { found: number; adopted: Array<{ name: string; type: string; from: string }>; skipped: Array<{ name: string; reason: string }> };
}

const POLL_MS = 500;

function progressLine(r: Recovery): string {
  return (
    `${r.from} ${r.state} (${r.step}): tapes ${r.tapes.adopted.length}/${r.tapes.found}, ` +
    `archived tapes ${r.archivedTapes.adopted.length}/${r.archivedTapes.found}, volumes ${r.volumes.adopted.length}/${r.volumes.found}`
  );
}

function summary(r: Recovery): string {
  const rows: string[][] = [
    ...r.tapes.adopted.map((b) => ['tape', b, 'rebuilt in the library']),
    ...r.tapes.skipped.map((b) => ['tape', b, 'skipped: this gateway has that barcode']),
    ...r.archivedTapes.adopted.map((b) => ['archived tape', b, 'on the shelf (retrieve it to read it)']),
    ...r.archivedTapes.skipped.map((b) => ['archived tape', b, 'skipped (see the gateway log)']),
    ...r.volumes.adopted.map((v) => ['volume', v.name, `${v.type}, from ${v.from}`]),
    ...r.volumes.skipped.map((v) => ['volume', v.name, `skipped: ${v.reason}`]),
  ];
  return rows.length === 0 ? 'nothing to adopt\n' : formatTable(['KIND', 'NAME', 'OUTCOME'], rows);
}

export async function recoverCommand(ctx: CommandContext): Promise<void> {
  if (ctx.positionals.length > 0) throw new CliError(`recover takes no arguments (got ${ctx.positionals.join(' ')})`, 2);
  const from = ctx.values.from;
  if (typeof from !== 'string') throw new CliError('recover needs --from GATEWAY_ID (see shelfgate gateways)', 2);
  const path = `/v1/recoveries/${encodeURIComponent(from)}`;
  let recovery: Recovery;
  if (ctx.values.status === true) {
    recovery = await ctx.client.get<Recovery>(path);
  } else {
    const volumeSource = ctx.values['volume-source'];
    if (volumeSource !== undefined && volumeSource !== 'snapshot' && volumeSource !== 'recovery-point') {
      throw new CliError('--volume-source is snapshot or recovery-point', 2);
    }
    recovery = await ctx.client.post<Recovery>('/v1/recoveries', { from, ...(typeof volumeSource === 'string' ? { volumeSource } : {}) });
    if (ctx.values['no-wait'] !== true) {
      let shown = '';
      for (;;) {
        const line = progressLine(recovery);
        if (line !== shown) process.stderr.write(`${line}\n`);
        shown = line;
        if (recovery.state !== 'running') break;
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        recovery = await ctx.client.get<Recovery>(path);
      }
    }
  }
  ctx.print(ctx.json ? `${JSON.stringify(recovery, null, 2)}\n` : `${progressLine(recovery)}\n${summary(recovery)}`);
  if (recovery.state === 'failed') throw new CliError(`recovery of ${from} failed: ${recovery.error ?? 'unknown error'}; run the same command again to resume`, 1);
}

export async function gatewaysCommand(ctx: CommandContext): Promise<void> {
  if (ctx.positionals.length > 0) throw new CliError('gateways takes no arguments', 2);
  const { gateways } = await ctx.client.get<{ gateways: Array<{ gatewayId: string; name?: string; createdAt?: string; self: boolean }> }>('/v1/account/gateways');
  ctx.print(
    ctx.json
      ? `${JSON.stringify(gateways, null, 2)}\n`
      : formatTable(['GATEWAY', 'NAME', 'FIRST START', ''], gateways.map((g) => [g.gatewayId, g.name ?? '', g.createdAt ?? '', g.self ? 'self' : ''])),
  );
}
