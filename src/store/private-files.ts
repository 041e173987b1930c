// Files are private (docs/security.md): the data directory holds volume data, tape data, the
// Level database (with CHAP secrets set through the API) and the API token, so it is 0700 and
// every file in it 0600. `makeDataDirPrivate` runs at start, before anything is opened: it
// creates the directory 0700, and fixes (with one warning) anything group- or world-accessible
// that an older version, a restore or a careless copy left behind. New files stay private
// because the gateway process runs with umask 077 (`start` sets it).

import { chmod, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDataDirectory } from './data-dir.js';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;
/** Group and other permission bits. */
const SHARED_BITS = 0o077;

export interface PrivateFilesLogger {
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** Creates `dataDir` (0700) if needed and removes group/other access from it and everything in
 *  it. Returns how many entries were fixed. Symbolic links are neither followed nor changed. */
export async function makeDataDirPrivate(dataDir: string, log: PrivateFilesLogger): Promise<number> {
  await ensureDataDirectory(dataDir);
  const fixed: string[] = [];
  // Entries of another user that this one may not read or change (a file system's root-owned
  // lost+found when the data dir is the root of a data disk): not the gateway's, left alone.
  const notOurs: string[] = [];
  const denied = (err: unknown): boolean => ['EACCES', 'EPERM'].includes((err as NodeJS.ErrnoException).code ?? '');
  const visit = async (path: string): Promise<void> => {
    const stat = await lstat(path);
    if (stat.isSymbolicLink()) return;
    if ((stat.mode & SHARED_BITS) !== 0) {
      try {
        await chmod(path, stat.isDirectory() ? PRIVATE_DIR_MODE : PRIVATE_FILE_MODE);
        fixed.push(path);
      } catch (err) {
        if (!denied(err) || path === dataDir) throw err;
        notOurs.push(path);
        return;
      }
    }
    if (stat.isDirectory()) {
      let entries: string[];
      try {
        entries = await readdir(path);
      } catch (err) {
        if (!denied(err) || path === dataDir) throw err;
        notOurs.push(path);
        return;
      }
      for (const entry of entries) await visit(join(path, entry));
    }
  };
  await visit(dataDir);
  if (notOurs.length > 0) {
    log.warn('entries of the data directory that this user may not read or change were left as they are', {
      dataDir,
      first: notOurs.slice(0, 3),
    });
  }
  if (fixed.length > 0) {
    log.warn('the data directory was readable by other users: removed group and other access (data dir 0700, files 0600)', {
      dataDir,
      fixed: fixed.length,
      first: fixed.slice(0, 3),
    });
  }
  return fixed.length;
}
