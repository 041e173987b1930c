// Gateway-wide settings (gateway id, bandwidth rate limits and schedule): one JSON value per
// setting name in key space SETTINGS (keys.ts).

import type { Database } from './database.js';
import { settingsKey } from './keys.js';
import { StoreError } from './store-error.js';

export async function getSetting(db: Database, name: string): Promise<unknown> {
  const value = await db.level.get(settingsKey(name));
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value.toString('utf8')) as unknown;
  } catch (err) {
    throw new StoreError('STORE_CORRUPT', `unreadable setting ${name}: ${String(err)}`, { cause: err });
  }
}

/** Durable when it resolves (goes through the group commit). */
export async function putSetting(db: Database, name: string, value: unknown): Promise<void> {
  await db.groupCommit.commit([{ type: 'put', key: settingsKey(name), value: Buffer.from(JSON.stringify(value), 'utf8') }]);
}
