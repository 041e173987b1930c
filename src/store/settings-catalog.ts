// Gateway-wide settings (gateway id, bandwidth rate limits and schedule): one JSON value per
// setting name in key space SETTINGS (keys.ts). A reader passes the setting's zod schema: a value
// that does not match it is STORE_CORRUPT (stored-json.ts).

import { z } from 'zod';
import type { Database } from './database.js';
import { settingsKey } from './keys.js';
import { encodeStoredJson, parseStoredJson } from './stored-json.js';

/** The setting's value checked against `schema`, or undefined when it was never set. Without a
 *  schema the value is only checked to be JSON (callers that still narrow it themselves). */
export async function getSetting(db: Database, name: string): Promise<unknown>;
export async function getSetting<T>(db: Database, name: string, schema: z.ZodType<T>): Promise<T | undefined>;
export async function getSetting(db: Database, name: string, schema: z.ZodType = z.unknown()): Promise<unknown> {
  const value = await db.level.get(settingsKey(name));
  return value === undefined ? undefined : parseStoredJson(schema, value, `setting ${name}`);
}

/** Durable when it resolves (goes through the group commit). */
export async function putSetting(db: Database, name: string, value: unknown): Promise<void> {
  await db.groupCommit.commit([{ type: 'put', key: settingsKey(name), value: encodeStoredJson(value) }]);
}
