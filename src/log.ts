// The gateway's Logger (iscsi/log.ts interface): one line per event on stderr, either human
// ("2026-11-26T10:00:00.000Z INFO  volume ready name=vol1 sizeBytes=...") or JSON, so stdout stays
// free for the machine-readable ready line.

import type { LogFields, Logger } from '../iscsi/log.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = 'human' | 'json';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Defaults to process.stderr. */
  stream?: { write(line: string): unknown };
  /** Fields added to every line (e.g. { component: 'iscsi' }). */
  bindings?: LogFields;
}

/** A Logger that can add fixed fields for one component. */
export interface GatewayLogger extends Logger {
  child(bindings: LogFields): GatewayLogger;
}

export function createLogger(opts: LoggerOptions): GatewayLogger {
  const stream = opts.stream ?? process.stderr;
  const threshold = RANK[opts.level];
  const emit = (level: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields): void => {
    if (RANK[level] < threshold) return;
    const all = { ...opts.bindings, ...fields };
    const time = new Date().toISOString();
    stream.write(opts.format === 'json' ? jsonLine(time, level, msg, all) : humanLine(time, level, msg, all));
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (bindings) => createLogger({ ...opts, bindings: { ...opts.bindings, ...bindings } }),
  };
}

function jsonLine(time: string, level: string, msg: string, fields: LogFields): string {
  return `${JSON.stringify({ time, level, msg, ...fields }, replacer)}\n`;
}

function humanLine(time: string, level: string, msg: string, fields: LogFields): string {
  const parts = [time, level.toUpperCase().padEnd(5), msg];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    const text = typeof value === 'string' ? value : JSON.stringify(value, replacer);
    parts.push(`${key}=${/[\s"=]/.test(text) ? JSON.stringify(text) : text}`);
  }
  return `${parts.join(' ')}\n`;
}

/** Errors become { name, message, code }; bigints become strings. */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: value.message, ...(code !== undefined ? { code } : {}) };
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}
