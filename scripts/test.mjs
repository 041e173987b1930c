// `npm test` after the build: every suite under test/ with tap, then the suites under test/vm/, which
// boot virtual machines under qemu (TCG) and so run after the rest, one file at a time, never beside
// other tests. Arguments (e.g. --reporter=tap from .ci/run) go to every tap run. Exits non-zero if
// any run failed.
//
// Time budget: when SHELFGATE_TEST_DEADLINE is set (seconds since the epoch; .ci/run sets it to its
// start + 45 minutes), a VM suite starts only if the time it needs on a machine with nothing cached
// (image builds included) is left; otherwise it is reported as skipped, with the reason and the
// command that runs it. The suites go in order of what they prove, most first.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";

const args = process.argv.slice(2);
const tap = (extra, env = process.env) => spawnSync("npx", ["tap", ...args, ...extra], { stdio: "inherit", env }).status ?? 1;

/** Minutes each VM suite needs with nothing cached on this machine kind (2 cores), measured. */
const VM_SUITES = [
  ["guest-initiator.test.ts", 20], // builds the Debian guest (~13 min), then ~3 min of tests
  ["appliance-container.test.ts", 12], // stand-in base (~4 min) + image (~6 min) + tests
  ["backup-bacula.test.ts", 7], // the guest image from guest-initiator, ~5.5 min of Bacula
  ["appliance-vm.test.ts", 28], // appliance build (~12.5 min) + two TCG boots (~5 min each)
];

let status = tap([]);
const vmDir = "test/vm";
const present = existsSync(vmDir) ? readdirSync(vmDir).filter((f) => f.endsWith(".test.ts")) : [];
const ordered = [
  ...VM_SUITES.filter(([file]) => present.includes(file)),
  ...present.filter((file) => !VM_SUITES.some(([known]) => known === file)).sort().map((file) => [file, 10]),
];
const deadline = Number(process.env.SHELFGATE_TEST_DEADLINE ?? "0");
const skipped = [];
for (const [file, minutes] of ordered) {
  const left = deadline > 0 ? (deadline - Date.now() / 1000) / 60 : Infinity;
  if (left < minutes) {
    skipped.push([
      file,
      `time budget: needs about ${minutes} min with nothing cached, ${Math.max(0, Math.floor(left))} min left of the run's ` +
        `(SHELFGATE_TEST_DEADLINE); run it alone with npx tap test/vm/${file}`,
    ]);
    continue;
  }
  const vmStatus = tap(["--jobs=1", `${vmDir}/${file}`]);
  if (status === 0) status = vmStatus;
}
if (skipped.length > 0) {
  // A tap file of its own reports each suite left out as a skip with its reason, never a pass.
  mkdirSync("dist/vm-budget", { recursive: true });
  const stub = "dist/vm-budget/skipped.test.mjs";
  writeFileSync(
    stub,
    `import t from 'tap';\n` + skipped.map(([file, reason]) => `t.test(${JSON.stringify(`test/vm/${file}`)}, { skip: ${JSON.stringify(reason)} }, () => {});\n`).join(""),
  );
  const stubStatus = tap(["--jobs=1", stub]);
  if (status === 0) status = stubStatus;
}
process.exit(status);
