// docs/backup-software.md shows the Bacula and Amanda configurations the VM suites run
// (test/vm/backup-*.test.ts). Each block there follows a line `<!-- file: PATH -->` and must equal
// that file of the repository, so the documented configuration is the tested one.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from './helpers/gateway-process.js';

const EXPECTED_FILES = [
  'test/vm/guest/bacula/bacula-dir.conf',
  'test/vm/guest/bacula/bacula-sd.conf',
  'test/vm/guest/bacula/bacula-fd.conf',
  'test/vm/guest/bacula/bconsole.conf',
  'test/vm/guest/amanda/amanda.conf',
  'test/vm/guest/amanda/disklist',
];

t.test('Docs.BackupSoftware: the configurations shown are the tested files', async (t) => {
  const doc = readFileSync(join(repoRoot(), 'docs/backup-software.md'), 'utf8');
  const blocks = new Map<string, string>();
  for (const match of doc.matchAll(/<!-- file: (\S+) -->\n```[a-z]*\n([\s\S]*?)```\n/g)) blocks.set(match[1]!, match[2]!);
  t.same([...blocks.keys()].sort(), [...EXPECTED_FILES].sort(), 'every tested configuration file is shown');
  for (const path of EXPECTED_FILES) {
    t.equal(blocks.get(path), readFileSync(join(repoRoot(), path), 'utf8'), `${path} as the docs show it`);
  }
});
