// `shelfgate snapshots create|list|delete` on /v1/snapshots (create --wait draws the upload's
// progress on stderr until the snapshot is completed).

import type { CommandContext } from './admin-commands.js';
import { CliError } from './api-client.js';
import { formatBytes, formatTable } from './table.js';

export const SNAPSHOTS_HELP = `Usage: shelfgate snapshots <action> [options]

Actions:
  create VOLUME --description TEXT [--wait]
                   a point-in-time snapshot of the volume; only chunks changed since its
                   previous snapshot are uploaded. --wait shows progress on stderr until
                   it is completed
  list [--all]     every snapshot of this gateway, oldest first; --all: also every completed
                   snapshot of the other gateways on the bucket (GATEWAY column)
  delete SNAP_ID   delete a snapshot (chunks shared with other snapshots stay)

Common options:
  --api URL        the gateway's admin API (default http://127.0.0.1:8080; env SHELFGATE_API)
  --token TOKEN    the gateway's API token (env SHELFGATE_API_TOKEN); on the gateway's own machine it is
                   read from DATA-DIR/api-token when the API is on a loopback address
  --data-dir DIR   the gateway's data directory (default ./shelfgate-data; env SHELFGATE_DATA_DIR)
  --json           print JSON for scripts instead of a table
  -h, --help       show help
`;

interface Snapshot {
  snapshotId: string;
  gatewayId?: string;
  volumeName: string;
  description: string;
  status: 'pending' | 'completed' | 'error';
  progress: number;
  startTime: string;
  volumeSizeBytes: number;
  chunkCount: number;
  uploadedChunks: number;
  error?: string;
}

const PROGRESS_BAR_WIDTH = 30;
const POLL_MS = 500;

function snapshotTable(snapshots: Snapshot[], withGateway = false): string {
  return formatTable(
    [...(withGateway ? ['GATEWAY'] : []), 'SNAPSHOT', 'VOLUME', 'STATUS', 'PROGRESS', 'SIZE', 'CHUNKS', 'UPLOADED', 'START', 'DESCRIPTION'],
    snapshots.map((s) => [
      ...(withGateway ? [s.gatewayId ?? ''] : []),
      s.snapshotId,
      s.volumeName,
      s.status,
      `${s.progress}%`,
      formatBytes(s.volumeSizeBytes),
      String(s.chunkCount),
      String(s.uploadedChunks),
      s.startTime,
      s.description,
    ]),
  );
}

function progressBar(percent: number): string {
  const filled = Math.round((Math.min(100, Math.max(0, percent)) / 100) * PROGRESS_BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'.'.repeat(PROGRESS_BAR_WIDTH - filled)}] ${String(percent).padStart(3)}%`;
}

/** Polls the snapshot while pending, drawing its progress on stderr (one line per change when
 *  stderr is not a terminal). */
async function waitForSnapshot(ctx: CommandContext, snapshotId: string): Promise<Snapshot> {
  const tty = process.stderr.isTTY;
  let shown: string | undefined;
  for (;;) {
    const snapshot = await ctx.client.get<Snapshot>(`/v1/snapshots/${snapshotId}`);
    const line = `${snapshotId} ${snapshot.status} ${progressBar(snapshot.progress)}`;
    if (line !== shown) process.stderr.write(tty ? `\r${line}` : `${line}\n`);
    shown = line;
    if (snapshot.status !== 'pending') {
      if (tty) process.stderr.write('\n');
      return snapshot;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

export async function snapshotsCommand(ctx: CommandContext): Promise<void> {
  const [action, ...rest] = ctx.positionals;
  switch (action) {
    case 'list': {
      if (rest.length > 0) throw new CliError('snapshots list takes no arguments', 2);
      const all = ctx.values.all === true;
      const { snapshots } = await ctx.client.get<{ snapshots: Snapshot[] }>(all ? '/v1/account/snapshots' : '/v1/snapshots');
      ctx.print(ctx.json ? `${JSON.stringify(snapshots, null, 2)}\n` : snapshots.length === 0 ? 'no snapshots\n' : snapshotTable(snapshots, all));
      return;
    }
    case 'create': {
      if (rest.length !== 1) throw new CliError('snapshots create takes one VOLUME name', 2);
      const description = ctx.values.description;
      if (typeof description !== 'string') throw new CliError('snapshots create needs --description TEXT', 2);
      let snapshot = await ctx.client.post<Snapshot>('/v1/snapshots', { volume: rest[0], description });
      if (ctx.values.wait === true) snapshot = await waitForSnapshot(ctx, snapshot.snapshotId);
      ctx.print(ctx.json ? `${JSON.stringify(snapshot, null, 2)}\n` : snapshotTable([snapshot]));
      if (snapshot.status === 'error') throw new CliError(`snapshot ${snapshot.snapshotId} failed: ${snapshot.error ?? 'unknown error'}`, 1);
      return;
    }
    case 'delete': {
      if (rest.length !== 1) throw new CliError('snapshots delete takes one SNAP_ID', 2);
      await ctx.client.delete(`/v1/snapshots/${encodeURIComponent(rest[0]!)}`);
      if (!ctx.json) ctx.print(`deleted ${rest[0]}\n`);
      return;
    }
    default:
      throw new CliError(action === undefined ? 'snapshots needs an action: create, list or delete' : `unknown action ${action}`, 2);
  }
}
