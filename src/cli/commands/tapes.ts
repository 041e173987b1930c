// `shelfgate tapes create|list|describe|delete|retrieve` on /v1/tapes (retrieve: RetrieveTapeArchive,
// with a progress bar on stderr under --wait).

import { parseSize } from '../../size.js';
import type { CommandContext } from './admin-commands.js';
import { CliError } from './api-client.js';
import { formatBytes, formatTable } from './table.js';

export const TAPES_HELP = `Usage: shelfgate tapes <action> [options]

Actions:
  create --prefix P --count N [--size SIZE] [--worm] [--pool ID] [--import-export]
                   N (1-10) tapes with barcodes P (1-4 letters A-Z) + random hex
  create --barcode B [--size SIZE] [--worm] [--pool ID] [--import-export]
                   one tape with barcode B (5-16 characters A-Z, 0-9)
                   SIZE: 100GiB (default) to 15TiB, whole GiB
  list             every tape in the library
  describe BARCODE one tape
  delete BARCODE   delete an AVAILABLE tape that is not in a drive, with its data
  retrieve BARCODE [--wait]
                   bring an ARCHIVED tape back from the shelf (read-only); --wait
                   shows progress on stderr until it is RETRIEVED

Common options:
  --api URL        the gateway's admin API (default http://127.0.0.1:8080; env SHELFGATE_API)
  --token TOKEN    the gateway's API token (env SHELFGATE_API_TOKEN); on the gateway's own machine it is
                   read from DATA-DIR/api-token when the API is on a loopback address
  --data-dir DIR   the gateway's data directory (default ./shelfgate-data; env SHELFGATE_DATA_DIR)
  --json           print JSON for scripts instead of a table
  -h, --help       show help
`;

interface Tape {
  barcode: string;
  tapeARN: string;
  status: string;
  sizeBytes: number;
  usedBytes: number;
  worm: boolean;
  poolId?: string;
  createdAt: string;
  element?: { type: string; address: number };
  progressPercent?: number;
}

const RETRIEVE_POLL_MS = 500;
const PROGRESS_BAR_WIDTH = 30;

function progressBar(percent: number): string {
  const filled = Math.round((Math.min(100, Math.max(0, percent)) / 100) * PROGRESS_BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'.'.repeat(PROGRESS_BAR_WIDTH - filled)}] ${percent.toFixed(0).padStart(3)}%`;
}

/** Polls the tape while RETRIEVING, drawing its progress on stderr (one line per change when
 *  stderr is not a terminal); resolves with the tape once it left RETRIEVING. */
async function waitForRetrieval(ctx: CommandContext, barcode: string): Promise<Tape> {
  const tty = process.stderr.isTTY;
  let shown: string | undefined;
  for (;;) {
    const tape = await ctx.client.get<Tape>(`/v1/tapes/${barcode}`);
    if (tape.status !== 'RETRIEVING') {
      if (shown !== undefined && tty) process.stderr.write('\n');
      return tape;
    }
    const line = `${decodeURIComponent(barcode)} RETRIEVING ${progressBar(tape.progressPercent ?? 0)}`;
    if (line !== shown) process.stderr.write(tty ? `\r${line}` : `${line}\n`);
    shown = line;
    await new Promise((resolve) => setTimeout(resolve, RETRIEVE_POLL_MS));
  }
}

/** A PROGRESS column only while some tape is ARCHIVING or RETRIEVING. */
function tapeTable(tapes: Tape[]): string {
  const progress = tapes.some((tape) => tape.progressPercent !== undefined);
  return formatTable(
    ['BARCODE', 'STATUS', 'SIZE', 'USED', 'WORM', 'POOL', 'ELEMENT', ...(progress ? ['PROGRESS'] : [])],
    tapes.map((tape) => [
      tape.barcode,
      tape.status,
      formatBytes(tape.sizeBytes),
      formatBytes(tape.usedBytes),
      tape.worm ? 'yes' : 'no',
      tape.poolId ?? '-',
      tape.element !== undefined ? `${tape.element.type} ${tape.element.address}` : '-',
      ...(progress ? [tape.progressPercent !== undefined ? `${tape.progressPercent.toFixed(0)}%` : '-'] : []),
    ]),
  );
}

function oneBarcode(ctx: CommandContext, action: string): string {
  if (ctx.positionals.length !== 2) throw new CliError(`tapes ${action} takes one BARCODE`, 2);
  const barcode = ctx.positionals[1]!;
  return encodeURIComponent(barcode);
}

export async function tapesCommand(ctx: CommandContext): Promise<void> {
  const action = ctx.positionals[0];
  const v = ctx.values;
  switch (action) {
    case 'list': {
      if (ctx.positionals.length !== 1) throw new CliError('tapes list takes no arguments', 2);
      const { tapes } = await ctx.client.get<{ tapes: Tape[] }>('/v1/tapes');
      ctx.print(ctx.json ? `${JSON.stringify(tapes, null, 2)}\n` : tapes.length === 0 ? 'no tapes; create some with `shelfgate tapes create --prefix TST --count 5`\n' : tapeTable(tapes));
      return;
    }
    case 'describe': {
      const tape = await ctx.client.get<Tape>(`/v1/tapes/${oneBarcode(ctx, action)}`);
      ctx.print(ctx.json ? `${JSON.stringify(tape, null, 2)}\n` : `${tapeTable([tape])}ARN: ${tape.tapeARN}\ncreated: ${tape.createdAt}\n`);
      return;
    }
    case 'delete': {
      const barcode = oneBarcode(ctx, action);
      await ctx.client.delete(`/v1/tapes/${barcode}`);
      ctx.print(ctx.json ? `${JSON.stringify({ deleted: decodeURIComponent(barcode) })}\n` : `deleted ${decodeURIComponent(barcode)}\n`);
      return;
    }
    case 'retrieve': {
      const barcode = oneBarcode(ctx, action);
      let tape = await ctx.client.post<Tape>(`/v1/tapes/${barcode}/retrieve`, {});
      if (v.wait === true) {
        tape = await waitForRetrieval(ctx, barcode);
        if (tape.status !== 'RETRIEVED') throw new CliError(`tape ${tape.barcode} is ${tape.status}, not RETRIEVED`, 1);
      }
      ctx.print(ctx.json ? `${JSON.stringify(tape, null, 2)}\n` : tapeTable([tape]));
      return;
    }
    case 'create': {
      if (ctx.positionals.length !== 1) throw new CliError(`tapes create takes options only (got ${ctx.positionals.slice(1).join(' ')})`, 2);
      let sizeBytes: number | undefined;
      if (v.size !== undefined) {
        try {
          sizeBytes = parseSize(v.size as string);
        } catch (err) {
          throw new CliError(`--size: ${(err as Error).message}`, 2);
        }
      }
      const common = {
        ...(sizeBytes !== undefined ? { sizeBytes } : {}),
        ...(v.worm === true ? { worm: true } : {}),
        ...(v.pool !== undefined ? { poolId: v.pool } : {}),
        ...(v['import-export'] === true ? { slotType: 'import-export' } : {}),
      };
      let body: Record<string, unknown>;
      if (v.barcode !== undefined) {
        if (v.prefix !== undefined || v.count !== undefined) throw new CliError('pass either --barcode or --prefix with --count', 2);
        body = { barcode: v.barcode, ...common };
      } else {
        if (v.prefix === undefined || v.count === undefined) throw new CliError('tapes create needs --prefix P --count N, or --barcode B', 2);
        const count = Number(v.count);
        if (!Number.isInteger(count)) throw new CliError(`--count ${String(v.count)}: must be a whole number 1 to 10`, 2);
        body = { prefix: v.prefix, count, ...common };
      }
      const { tapes } = await ctx.client.post<{ tapes: Tape[] }>('/v1/tapes', body);
      ctx.print(ctx.json ? `${JSON.stringify(tapes, null, 2)}\n` : tapeTable(tapes));
      return;
    }
    default:
      throw new CliError(action === undefined ? 'which action? create, list, describe, delete or retrieve' : `unknown action ${JSON.stringify(action)}`, 2);
  }
}
