// Creating the data directory, with errors a user can act on. Node's recursive mkdir never returns on
// procfs (it retries ENOENT for ever), so the nearest existing ancestor is checked first: it must be a
// directory on a real file system that this process may write to.

import { constants } from 'node:fs';
import { access, mkdir, stat, statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { StoreError } from './store-error.js';

/** statfs(2) f_type of file systems that cannot hold a data directory (linux/magic.h). */
const PSEUDO_FILE_SYSTEMS = new Map<number, string>([
  [0x9fa0, 'procfs'],
  [0x62656572, 'sysfs'],
  [0x64626720, 'debugfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
]);

/** Makes `dir` (and its parents) if needed; throws STORE_OPEN_FAILED naming the path and what to do. */
export async function ensureDataDirectory(dir: string): Promise<void> {
  const path = resolve(dir);
  let ancestor = path;
  for (;;) {
    const info = await stat(ancestor).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return null;
      throw failure(path, `cannot inspect ${ancestor}: ${err.message}`, err);
    });
    if (info !== null) {
      if (!info.isDirectory()) throw failure(path, `${ancestor} exists and is not a directory`);
      break;
    }
    const parent = dirname(ancestor);
    if (parent === ancestor) break;
    ancestor = parent;
  }
  const fsType = PSEUDO_FILE_SYSTEMS.get((await statfs(ancestor)).type);
  if (fsType !== undefined) throw failure(path, `${ancestor} is on ${fsType}, which cannot hold files; choose a directory on a disk`);
  await ensureWritable(ancestor, path);
  try {
    await mkdir(path, { recursive: true });
  } catch (err) {
    throw failure(path, `cannot create it: ${(err as Error).message}`, err);
  }
}

/** Checks that an existing directory can be read and written (a read-only data dir, a copy owned by
 *  another user), before a library gives a vaguer error. */
export async function ensureWritable(dir: string, dataDir = dir): Promise<void> {
  try {
    await access(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'EROFS' ? 'read-only file system' : 'permission denied';
    throw failure(dataDir, `${reason}: ${dir} must be readable and writable by this user`, err);
  }
}

function failure(path: string, reason: string, cause?: unknown): StoreError {
  return new StoreError('STORE_OPEN_FAILED', `data directory ${path}: ${reason} (pass another --data-dir)`, { cause });
}
