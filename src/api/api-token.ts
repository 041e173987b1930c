// The admin API's bearer token (docs/security.md). Unless the configuration sets `api.token` or
// turns authentication off (`api.auth: none`), the first start generates one and keeps it in
// <dataDir>/api-token (mode 0600); later starts read it. The CLI reads the same file when it runs
// on the gateway's machine, so local commands need no --token.

import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const API_TOKEN_FILE = 'api-token';

export function apiTokenPath(dataDir: string): string {
  return join(dataDir, API_TOKEN_FILE);
}

/** The token kept in `dataDir`, or undefined when there is none (or it cannot be read). */
export async function readApiToken(dataDir: string): Promise<string | undefined> {
  try {
    const token = (await readFile(apiTokenPath(dataDir), 'utf8')).trim();
    return token === '' ? undefined : token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The kept token, generated (256 random bits, base64url) and written 0600 when there is none.
 *  `generated` is true the one time it is created, so the caller can print it once. */
export async function ensureApiToken(dataDir: string): Promise<{ token: string; generated: boolean; path: string }> {
  const path = apiTokenPath(dataDir);
  const existing = await readApiToken(dataDir);
  if (existing !== undefined) return { token: existing, generated: false, path };
  const token = randomBytes(32).toString('base64url');
  try {
    // 'wx': never overwrite a token another process wrote in between.
    await writeFile(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const raced = await readApiToken(dataDir);
    if (raced !== undefined) return { token: raced, generated: false, path };
    throw err;
  }
  return { token, generated: true, path };
}
