// The data directory is created, or refused with the path and the reason, before LevelDB sees it.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ensureDataDirectory } from '../../src/store/data-dir.js';
import { openDatabase } from '../../src/store/database.js';
import { mountTmpfs } from '../helpers/tmpfs.js';

const dir = await mkdtemp(join(tmpdir(), 'shelfgate-data-dir-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

t.test('DataDir.CreatesParents', async (t) => {
  const path = join(dir, 'a', 'b', 'c');
  await ensureDataDirectory(path);
  t.ok((await stat(path)).isDirectory());
});

t.test('DataDir.RefusesProcfs', async (t) => {
  // Node's recursive mkdir would loop for ever here.
  await t.rejects(ensureDataDirectory('/proc/shelfgate-x/data'), {
    code: 'STORE_OPEN_FAILED',
    message: /data directory \/proc\/shelfgate-x\/data: \/proc is on procfs/,
  });
});

t.test('DataDir.RefusesAFile', async (t) => {
  const file = join(dir, 'a-file');
  await writeFile(file, 'x');
  await t.rejects(ensureDataDirectory(join(file, 'data')), { message: /a-file exists and is not a directory/ });
});

const readOnly = mountTmpfs(4, 'shelfgate-ro-');
t.test('DataDir.ReadOnlyFileSystem', { skip: readOnly.path === null ? readOnly.reason : false }, async (t) => {
  const fs = readOnly;
  if (fs.path === null) return;
  t.teardown(() => fs.dispose());
  const dataDir = join(fs.path, 'data');
  const db = await openDatabase(dataDir);
  await db.close();
  execFileSync('mount', ['-o', 'remount,ro', fs.path]);
  await t.rejects(openDatabase(dataDir), {
    code: 'STORE_OPEN_FAILED',
    message: new RegExp(`^data directory ${dataDir}: read-only file system: ${dataDir} must be readable and writable`),
  });
});
