// libiscsi's conformance suite (iscsi-test-cu, ALL family, destructive tests allowed) against a
// shelfgate volume the size of the tgt baseline's disk. The committed baseline
// test/e2e/iscsi-test-cu/tgt-1.0.85.txt (regenerate: `npm run test-cu-report -- --tgt`) is what
// Debian's tgt does with the same client: the floor. The committed test/e2e/iscsi-test-cu/shelfgate.txt
// (regenerate: `npm run test-cu-report`, then review the diff) is what shelfgate did when it was last
// recorded: every test it lists as PASS must still pass, so a test only shelfgate passes cannot turn
// into SKIP or FAIL unnoticed.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot, startGateway } from '../helpers/gateway-process.js';
import { TEST_CU_VOLUME, TEST_CU_VOLUME_SPEC, countOutcomes, parseTestCuList, runTestCu } from '../helpers/libiscsi.js';

const baseline = parseTestCuList(await readFile(join(repoRoot(), 'test/e2e/iscsi-test-cu/tgt-1.0.85.txt'), 'utf8'));
const recorded = parseTestCuList(await readFile(join(repoRoot(), 'test/e2e/iscsi-test-cu/shelfgate.txt'), 'utf8'));

const gateway = await startGateway({ volumes: [TEST_CU_VOLUME_SPEC] });
t.teardown(() => gateway.dispose());
const cwd = await mkdtemp(join(tmpdir(), 'shelfgate-test-cu-'));
t.teardown(() => rm(cwd, { recursive: true, force: true }));

const { results, output } = await runTestCu(gateway.url(TEST_CU_VOLUME), { cwd });
const outcomes = new Map(results.map((r) => [r.name, r]));

t.test('TestCu.Ran', async (t) => {
  t.notOk(output.timedOut, 'iscsi-test-cu finished within its timeout');
  t.equal(results.length, baseline.size, `every test ran (${results.length} of ${baseline.size})`, {
    outputTail: output.stdout.slice(-3000),
    stderr: output.stderr.slice(-3000),
  });
  t.ok(gateway.alive(), 'shelfgate survived the whole suite');
});

t.test('TestCu.NoRegressionAgainstTgt', async (t) => {
  for (const [name, tgtOutcome] of baseline) {
    if (tgtOutcome !== 'PASS') continue;
    const ours = outcomes.get(name);
    t.equal(ours?.outcome, 'PASS', `${name} passes on tgt 1.0.85`, { messages: ours?.messages ?? ['did not run'] });
  }
});

t.test('TestCu.NoRegressionAgainstRecordedList', async (t) => {
  t.equal(recorded.size, baseline.size, 'the recorded list covers the same tests as the baseline');
  for (const [name, recordedOutcome] of recorded) {
    if (recordedOutcome !== 'PASS') continue;
    const ours = outcomes.get(name);
    t.equal(ours?.outcome, 'PASS', `${name} passed when shelfgate.txt was recorded`, { messages: ours?.messages ?? ['did not run'] });
  }
});

t.test('TestCu.MultipathIO', async (t) => {
  // Two sessions to the same LUN (the baseline run has one URL, so it skips these): a LUN reset on
  // one path must raise a unit attention on every path, and COMPARE AND WRITE stays atomic.
  const url = gateway.url(TEST_CU_VOLUME);
  const { results, output } = await runTestCu(url, { cwd, url2: url, test: 'ALL.MultipathIO' });
  t.ok(results.length >= 4, `the multipath tests ran (${results.length})`, { outputTail: output.stdout.slice(-2000) });
  for (const r of results) t.equal(r.outcome, 'PASS', r.name, { messages: r.messages });
});

t.test('TestCu.PassCountAtLeastTgt', async (t) => {
  const ours = countOutcomes(results.map((r) => r.outcome));
  const tgt = countOutcomes(baseline.values());
  t.ok(ours.PASS >= tgt.PASS, `shelfgate ${ours.PASS} PASS / ${ours.FAIL} FAIL / ${ours.SKIP} SKIP; tgt ${tgt.PASS} / ${tgt.FAIL} / ${tgt.SKIP}`);
});
