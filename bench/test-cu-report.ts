// `npm run test-cu-report`: runs libiscsi's iscsi-test-cu (all tests, --dataloss) against a
// shelfgate volume and writes the per-test outcome to test/e2e/iscsi-test-cu/shelfgate.txt for
// humans. With --tgt it regenerates the baseline test/e2e/iscsi-test-cu/tgt-1.0.85.txt from
// Debian's tgtd instead. Both targets get a 1 GiB disk with 512-byte blocks.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, repoRoot } from '../test/helpers/gateway-process.js';
import {
  TEST_CU_DISK_BYTES,
  TEST_CU_VOLUME,
  TEST_CU_VOLUME_SPEC,
  countOutcomes,
  formatTestCuResults,
  runTestCu,
  runTool,
  type TestCuResult,
} from '../test/helpers/libiscsi.js';
import { startTgt } from '../test/helpers/tgt.js';

async function libiscsiVersion(): Promise<string> {
  const result = await runTool('dpkg-query', ['-W', '-f=${Version}', 'libiscsi-bin']);
  return result.exitCode === 0 ? result.stdout.trim() : 'unknown';
}

async function runAgainst(target: 'tgt' | 'shelfgate', cwd: string): Promise<{ results: TestCuResult[]; command: string }> {
  if (target === 'tgt') {
    const tgt = await startTgt({ sizeBytes: TEST_CU_DISK_BYTES });
    try {
      const { results } = await runTestCu(tgt.url(), { cwd });
      return { results, command: `iscsi-test-cu --dataloss --test=ALL ${tgt.url()}` };
    } finally {
      await tgt.stop();
    }
  }
  const gateway = await startGateway({ volumes: [TEST_CU_VOLUME_SPEC] });
  try {
    const { results } = await runTestCu(gateway.url(TEST_CU_VOLUME), { cwd });
    return { results, command: `iscsi-test-cu --dataloss --test=ALL ${gateway.url(TEST_CU_VOLUME)}` };
  } finally {
    await gateway.dispose();
  }
}

async function main(): Promise<void> {
  const target = process.argv.includes('--tgt') ? 'tgt' : 'shelfgate';
  const cwd = await mkdtemp(join(tmpdir(), 'shelfgate-test-cu-'));
  try {
    const { results, command } = await runAgainst(target, cwd);
    if (results.length === 0) throw new Error('iscsi-test-cu reported no tests');
    const counts = countOutcomes(results.map((r) => r.outcome));
    const file = join(repoRoot(), 'test/e2e/iscsi-test-cu', target === 'tgt' ? 'tgt-1.0.85.txt' : 'shelfgate.txt');
    const header = [
      `# iscsi-test-cu (libiscsi-bin ${await libiscsiVersion()}) against ${target === 'tgt' ? 'Debian tgt 1.0.85 (tgtd, rdwr backing file)' : 'shelfgate'}`,
      `# ${command.replace(/127\.0\.0\.1:\d+/, '127.0.0.1:PORT')}`,
      `# 1 GiB disk, 512-byte blocks. SKIP = libiscsi printed [SKIPPED] (CUnit counts those as passed).`,
      `# ${counts.PASS} PASS, ${counts.FAIL} FAIL, ${counts.SKIP} SKIP, ${results.length} total`,
      '',
    ].join('\n');
    await writeFile(file, header + formatTestCuResults(results));
    console.log(`${file}: ${counts.PASS} PASS, ${counts.FAIL} FAIL, ${counts.SKIP} SKIP`);
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
}

await main();
