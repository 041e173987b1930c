#!/usr/bin/env node
// The `shelfgate` command. `start` prints exactly one line on stdout when both listeners are up:
//   shelfgate ready iscsi=HOST:PORT api=HOST:PORT
// and logs to stderr. SIGINT/SIGTERM ask initiators to log out and shut down cleanly (exit 0); a
// second signal exits at once. Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config.js';
import { GatewayError } from '../gateway/gateway-error.js';
import { createLogger } from '../log.js';
import { formatListenAddress, startGateway } from '../main.js';
import { ADMIN_COMMANDS_HELP, isAdminCommand, runAdminCommand } from './commands/admin-commands.js';

/** How long SIGTERM waits for initiators to answer the logout request. */
const SHUTDOWN_GRACE_MS = 5_000;

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

const MAIN_HELP = `Usage: shelfgate <command> [options]

An iSCSI gateway in the style of AWS Storage Gateway.

Commands:
  start        run the gateway (iSCSI targets and the admin API)
${ADMIN_COMMANDS_HELP}
Options:
  -h, --help     show help (also: shelfgate start --help)
  -v, --version  print the version
`;

const START_HELP = `Usage: shelfgate start [options]

Options:
  --config FILE             configuration file (YAML or JSON); flags override it
  --data-dir DIR            where the database lives (default ./shelfgate-data)
  --iscsi-listen HOST:PORT  iSCSI portal (default 0.0.0.0:3260; port 0 = any free port)
  --advertise HOST[:PORT]   the address and port initiators reach the portal at, given out by
                            discovery (SendTargets), e.g. the host and published port of a
                            container or a NAT; PORT defaults to the listen port (repeatable;
                            default: the address each initiator connected to)
  --api-listen HOST:PORT    admin API (default 127.0.0.1:8080; port 0 = any free port)
  --volume NAME:SIZE        declare a stored volume, e.g. vol1:100GiB (repeatable)
  --gateway-name NAME       gateway name, part of every target IQN (default shelfgate)
  --tapes PREFIX:COUNT[:SIZE]
                            on the first start, create COUNT tapes with barcode prefix PREFIX
                            (1-4 letters A-Z) of SIZE (default 100GiB), e.g. VTL:10 (repeatable)
  --changer-type TYPE       AWS-Gateway-VTL (default), STK-L700 or IBM-03584L32-0402
  --tape-slots STORAGE:IE   storage and import/export slot counts (default 1600:1600)
  --log-level LEVEL         debug, info, warn, error or silent (default info; env SHELFGATE_LOG_LEVEL)
  --log-format FORMAT       human or json (default human; env SHELFGATE_LOG_FORMAT)
  -h, --help                show this help

Environment (below the flags, above the config file): SHELFGATE_DATA_DIR, SHELFGATE_ISCSI_LISTEN,
SHELFGATE_ADVERTISE (HOST[:PORT] values separated by commas), SHELFGATE_API_LISTEN,
SHELFGATE_API_TOKEN or SHELFGATE_API_TOKEN_FILE (a file holding the admin API token).

Volume targets are named iqn.2026-11.dev.shelfgate:<gateway-name>-<volume-name>, LUN 0.
The tape library: iqn.2026-11.dev.shelfgate:<gateway-name>-mediachanger and
…-tapedrive-01 … -tapedrive-10, LUN 0 each.
When ready, prints one line on stdout: shelfgate ready iscsi=HOST:PORT api=HOST:PORT
`;

function version(): string {
  // dist/src/cli/main.js and src/cli/main.ts both find package.json by walking up.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'shelfgate' && pkg.version !== undefined) return pkg.version;
    } catch {
      // not here; keep walking up
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

async function start(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        config: { type: 'string' },
        'data-dir': { type: 'string' },
        'iscsi-listen': { type: 'string' },
        advertise: { type: 'string', multiple: true },
        'api-listen': { type: 'string' },
        volume: { type: 'string', multiple: true },
        'gateway-name': { type: 'string' },
        tapes: { type: 'string', multiple: true },
        'changer-type': { type: 'string' },
        'tape-slots': { type: 'string' },
        'log-level': { type: 'string' },
        'log-format': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`shelfgate start: ${(err as Error).message}\n\n${START_HELP}`);
    return EXIT_USAGE;
  }
  if (values.help === true) {
    process.stdout.write(START_HELP);
    return EXIT_OK;
  }

  let config;
  try {
    config = await loadConfig({
      ...(values.config !== undefined ? { file: values.config } : {}),
      overrides: {
        dataDir: values['data-dir'],
        iscsiListen: values['iscsi-listen'],
        advertise: values.advertise,
        apiListen: values['api-listen'],
        gatewayName: values['gateway-name'],
        logLevel: values['log-level'],
        logFormat: values['log-format'],
        volumes: values.volume,
        tapes: values.tapes,
        changerType: values['changer-type'],
        tapeSlots: values['tape-slots'],
      },
      env: process.env,
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.lines.join('\n')}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }

  const log = createLogger({ level: config.log.level, format: config.log.format });
  // docs/security.md: every file the gateway creates (Level's included) is private to its user.
  process.umask(0o077);
  let gateway;
  try {
    gateway = await startGateway(config, log);
  } catch (err) {
    if (err instanceof GatewayError && err.configPath !== undefined) {
      process.stderr.write(`config error: ${err.configPath}: ${err.message}\n`);
      return EXIT_USAGE;
    }
    log.error(`cannot start: ${(err as Error).message}`, { code: (err as { code?: string }).code });
    return EXIT_FAILURE;
  }

  const running = gateway;
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn('second signal: exiting without a clean shutdown', { signal });
        process.exit(EXIT_FAILURE);
      }
      stopping = true;
      log.info('shutting down: asking initiators to log out', { signal, graceMs: SHUTDOWN_GRACE_MS });
      running.close({ graceMs: SHUTDOWN_GRACE_MS }).then(
        () => {
          log.info('stopped');
          resolve(EXIT_OK);
        },
        (err: unknown) => {
          log.error('shutdown failed', { err });
          resolve(EXIT_FAILURE);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    log.info('ready', { iscsi: formatListenAddress(running.iscsi), api: formatListenAddress(running.api) });
    process.stdout.write(`shelfgate ready iscsi=${formatListenAddress(running.iscsi)} api=${formatListenAddress(running.api)}\n`);
  });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(MAIN_HELP);
    return command === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (command === '-v' || command === '--version') {
    process.stdout.write(`shelfgate ${version()}\n`);
    return EXIT_OK;
  }
  if (command === 'start') return start(rest);
  if (isAdminCommand(command)) {
    return runAdminCommand(command, rest, { env: process.env, stdout: (text) => process.stdout.write(text), stderr: (text) => process.stderr.write(text) });
  }
  process.stderr.write(`shelfgate: unknown command ${JSON.stringify(command)}\n\n${MAIN_HELP}`);
  return EXIT_USAGE;
}

main(process.argv.slice(2)).then(
  // Exit explicitly: a stray timer or socket must not keep a stopped gateway alive.
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`shelfgate: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(EXIT_FAILURE);
  },
);
