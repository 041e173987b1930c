// `shelfgate volumes create|list|delete` on /v1/volumes.

import type { CommandContext } from './admin-commands.js';
import { CliError } from './api-client.js';
import { formatBytes, formatTable } from './table.js';

export const VOLUMES_HELP = `Usage: shelfgate volumes <action> [options]

Actions:
  create NAME --size SIZE [--type stored|cached]
                   a new volume, served at once as iqn.2026-11.dev.shelfgate:<gateway>-NAME
  list             every volume
  delete NAME      delete a volume created through the API, with its data

Common options:
  --api URL        the gateway's admin API (default http://127.0.0.1:8080; env SHELFGATE_API)
  --token TOKEN    the gateway's API token (env SHELFGATE_API_TOKEN); on the gateway's own machine it is
                   read from DATA-DIR/api-token when the API is on a loopback address
  --data-dir DIR   the gateway's data directory (default ./shelfgate-data; env SHELFGATE_DATA_DIR)
  --json           print JSON for scripts instead of a table
  -h, --help       show help
`;

interface Volume {
  name: string;
  volumeId: string;
  type: string;
  sizeBytes: number;
  targetName: string;
  createdAt: string;
  origin: string;
  chapEnabled: boolean;
}

function volumeTable(volumes: Volume[]): string {
  return formatTable(
    ['NAME', 'TYPE', 'SIZE', 'ID', 'ORIGIN', 'CHAP', 'TARGET'],
    volumes.map((v) => [v.name, v.type, formatBytes(v.sizeBytes), v.volumeId, v.origin, v.chapEnabled ? 'yes' : 'no', v.targetName]),
  );
}

export async function volumesCommand(ctx: CommandContext): Promise<void> {
  const [action, ...rest] = ctx.positionals;
  switch (action) {
    case 'list': {
      if (rest.length > 0) throw new CliError('volumes list takes no arguments', 2);
      const { volumes } = await ctx.client.get<{ volumes: Volume[] }>('/v1/volumes');
      ctx.print(ctx.json ? `${JSON.stringify(volumes, null, 2)}\n` : volumes.length === 0 ? 'no volumes; create one with `shelfgate volumes create vol1 --size 100GiB`\n' : volumeTable(volumes));
      return;
    }
    case 'create': {
      if (rest.length !== 1) throw new CliError('volumes create takes one NAME', 2);
      if (ctx.values.size === undefined) throw new CliError('volumes create needs --size, e.g. --size 100GiB', 2);
      const type = ctx.values.type ?? 'stored';
      if (type !== 'stored' && type !== 'cached') throw new CliError(`--type ${String(type)}: must be stored or cached`, 2);
      const volume = await ctx.client.post<Volume>('/v1/volumes', { name: rest[0], size: ctx.values.size, type });
      ctx.print(ctx.json ? `${JSON.stringify(volume, null, 2)}\n` : volumeTable([volume]));
      return;
    }
    case 'delete': {
      if (rest.length !== 1) throw new CliError('volumes delete takes one NAME', 2);
      await ctx.client.delete(`/v1/volumes/${encodeURIComponent(rest[0]!)}`);
      ctx.print(ctx.json ? `${JSON.stringify({ deleted: rest[0] })}\n` : `deleted ${rest[0]}\n`);
      return;
    }
    default:
      throw new CliError(action === undefined ? 'which action? create, list or delete' : `unknown action ${JSON.stringify(action)}`, 2);
  }
}
