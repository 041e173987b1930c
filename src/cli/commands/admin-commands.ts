// `shelfgate tapes|volumes|status`: subcommands that talk to a running gateway's REST API.
// Human tables by default, `--json` for scripts (the API's own JSON). Exit codes as `start`:
// 0 ok, 1 the gateway refused or is unreachable (the message says what to do), 2 usage.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { apiTokenPath, readApiToken } from '../../api/api-token.js';
import { ApiClient, CliError, DEFAULT_API_URL, TOKEN_ENV } from './api-client.js';
import { gatewaysCommand, GATEWAYS_HELP, recoverCommand, RECOVER_HELP } from './recover.js';
import { snapshotsCommand, SNAPSHOTS_HELP } from './snapshots.js';
import { statusCommand } from './status.js';
import { tapesCommand, TAPES_HELP } from './tapes.js';
import { volumesCommand, VOLUMES_HELP } from './volumes.js';

export const ADMIN_COMMANDS_HELP = `  tapes        create, list, describe and delete virtual tapes
  volumes      create, list and delete volumes
  snapshots    create, list and delete volume snapshots
  status       the gateway, its sessions and its tape library
  gateways     every gateway with objects in the bucket
  recover      adopt the tapes, archived tapes and volumes of a lost gateway
`;

export const COMMON_OPTIONS_HELP = `Common options:
  --api URL        the gateway's admin API (default ${DEFAULT_API_URL}; env SHELFGATE_API)
  --token TOKEN    the gateway's API token (env ${TOKEN_ENV}); on the gateway's own machine it is
                   read from DATA-DIR/api-token when the API is on a loopback address
  --data-dir DIR   the gateway's data directory (default ./shelfgate-data; env SHELFGATE_DATA_DIR)
  --json           print JSON for scripts instead of a table
  -h, --help       show help
`;

const STATUS_HELP = `Usage: shelfgate status [options]

The gateway (id, ARN, iSCSI portal), its sessions and, when enabled, its tape library.

  --elements       with --json: list every library element (default: counts per element type)
  --show-token     print the API token kept in DATA-DIR/api-token and exit (run it on the
                   gateway's machine, as the gateway's user)

${COMMON_OPTIONS_HELP}`;

const HELP: Record<string, string> = {
  tapes: TAPES_HELP,
  volumes: VOLUMES_HELP,
  snapshots: SNAPSHOTS_HELP,
  status: STATUS_HELP,
  recover: `${RECOVER_HELP}\n${COMMON_OPTIONS_HELP}`,
  gateways: `${GATEWAYS_HELP}\n${COMMON_OPTIONS_HELP}`,
};

export interface CommandContext {
  client: ApiClient;
  json: boolean;
  /** The subcommand's positionals after the action (e.g. the barcode). */
  positionals: string[];
  values: Record<string, string | boolean | string[] | undefined>;
  print(text: string): void;
}

/** Options each command accepts besides the common ones. */
const COMMAND_OPTIONS: Record<string, ParseArgsConfig['options']> = {
  tapes: {
    prefix: { type: 'string' },
    count: { type: 'string' },
    barcode: { type: 'string' },
    size: { type: 'string' },
    worm: { type: 'boolean' },
    pool: { type: 'string' },
    'import-export': { type: 'boolean' },
    wait: { type: 'boolean' },
  },
  volumes: { size: { type: 'string' }, type: { type: 'string' } },
  snapshots: { description: { type: 'string' }, wait: { type: 'boolean' }, all: { type: 'boolean' } },
  status: { elements: { type: 'boolean' }, 'show-token': { type: 'boolean' } },
  recover: { from: { type: 'string' }, 'volume-source': { type: 'string' }, 'no-wait': { type: 'boolean' }, status: { type: 'boolean' } },
  gateways: {},
};

export function isAdminCommand(command: string): boolean {
  return Object.hasOwn(COMMAND_OPTIONS, command);
}

export async function runAdminCommand(
  command: string,
  args: string[],
  io: { env: NodeJS.ProcessEnv; stdout: (text: string) => void; stderr: (text: string) => void },
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        api: { type: 'string' },
        token: { type: 'string' },
        'data-dir': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        ...COMMAND_OPTIONS[command],
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    io.stderr(`shelfgate ${command}: ${(err as Error).message}\n\n${HELP[command]}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    io.stdout(HELP[command]!);
    return 0;
  }
  try {
    const dataDir = (values['data-dir'] as string | undefined) ?? io.env.SHELFGATE_DATA_DIR ?? DEFAULT_DATA_DIR;
    if (command === 'status' && (values as Record<string, unknown>)['show-token'] === true) {
      const token = await readLocalToken(dataDir);
      if (token === undefined) {
        throw new CliError(`no API token in ${apiTokenPath(dataDir)}: pass the gateway's --data-dir (the gateway writes it on its first start unless api.token or api.auth: none is configured)`);
      }
      io.stdout(`${token}\n`);
      return 0;
    }
    const baseUrl = (values.api as string | undefined) ?? io.env.SHELFGATE_API ?? DEFAULT_API_URL;
    // The kept token is only offered to a gateway on this machine, never sent elsewhere.
    const token = (values.token as string | undefined) ?? io.env[TOKEN_ENV] ?? (isLoopbackUrl(baseUrl) ? await readLocalToken(dataDir) : undefined);
    const client = new ApiClient({ baseUrl, token });
    const ctx: CommandContext = { client, json: values.json === true, positionals, values, print: io.stdout };
    if (command === 'status') {
      if (positionals.length > 0) throw new CliError(`status takes no arguments (got ${positionals.join(' ')})`, 2);
      await statusCommand(ctx);
    } else if (command === 'tapes') {
      await tapesCommand(ctx);
    } else if (command === 'snapshots') {
      await snapshotsCommand(ctx);
    } else if (command === 'recover') {
      await recoverCommand(ctx);
    } else if (command === 'gateways') {
      await gatewaysCommand(ctx);
    } else {
      await volumesCommand(ctx);
    }
    return 0;
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    io.stderr(`shelfgate ${command}: ${err.message}\n${err.exitCode === 2 ? `\n${HELP[command]}` : ''}`);
    return err.exitCode;
  }
}

const DEFAULT_DATA_DIR = './shelfgate-data';

/** The token the gateway keeps in its data dir; undefined when there is none or it is not ours
 *  to read (another user's gateway). */
async function readLocalToken(dataDir: string): Promise<string | undefined> {
  try {
    return await readApiToken(dataDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EACCES') {
      throw new CliError(`cannot read ${apiTokenPath(dataDir)} (permission denied): run as the gateway's user, or pass --token`);
    }
    throw err;
  }
}

function isLoopbackUrl(url: string): boolean {
  try {
    const host = new URL(url).hostname;
    return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
  } catch {
    return false;
  }
}
