// The data directory is made private at start (docs/security.md "Files"). The gateway may run as a
// service user whose data dir is the root of a data disk: the disk's root-owned lost+found must be
// left alone, not stop the start (found by the appliance VM test: EACCES, scandir lost+found).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../helpers/gateway-process.js';

const module = join(repoRoot(), 'dist/src/store/private-files.js');
const haveRunuser = spawnSync('runuser', ['--help']).status === 0;
const skip =
  userInfo().uid !== 0
    ? 'needs root to make files of two users'
    : !haveRunuser
      ? 'runuser (util-linux) not found'
      : spawnSync('runuser', ['-u', 'nobody', '--', 'test', '-r', module]).status !== 0
        ? `user nobody cannot read ${module} (the checkout is in a private directory)`
        : false;

t.test('PrivateFiles.OtherUsersEntriesLeftAlone', { skip }, async (t) => {
  const top = mkdtempSync(join(tmpdir(), 'shelfgate-private-'));
  t.teardown(() => rmSync(top, { recursive: true, force: true }));
  chmodSync(top, 0o755);
  const nobody = Number(execFileSync('id', ['-u', 'nobody']).toString().trim());
  const dataDir = join(top, 'data');
  mkdirSync(dataDir, { mode: 0o755 });
  chownSync(dataDir, nobody, -1);
  chmodSync(dataDir, 0o755);
  mkdirSync(join(dataDir, 'lost+found'), { mode: 0o700 }); // root's, as mkfs.ext4 leaves it
  writeFileSync(join(dataDir, 'file'), 'x');
  chownSync(join(dataDir, 'file'), nobody, -1);
  chmodSync(join(dataDir, 'file'), 0o644);
  const script = `import { makeDataDirPrivate } from ${JSON.stringify(module)};
const warnings = [];
const fixed = await makeDataDirPrivate(${JSON.stringify(dataDir)}, { warn: (m) => warnings.push(m) });
console.log(JSON.stringify({ fixed, warnings }));`;
  const run = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  const out = JSON.parse(run.stdout) as { fixed: number; warnings: string[] };
  t.equal(out.fixed, 2, 'the data dir and its file fixed');
  t.match(out.warnings.join('\n'), /may not read or change were left as they are/);
  t.equal(statSync(dataDir).mode & 0o777, 0o700);
  t.equal(statSync(join(dataDir, 'file')).mode & 0o777, 0o600);
  t.equal(statSync(join(dataDir, 'lost+found')).mode & 0o777, 0o700, 'lost+found untouched');
});
