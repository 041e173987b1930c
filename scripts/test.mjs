// `npm test` after the build: every suite under test/ with tap, then the suites under test/vm/, which
// boot virtual machines under qemu (TCG) and so run after the rest, one file at a time, never beside
// other tests. Arguments (e.g. --reporter=tap from .ci/run) go to both tap runs. Exits non-zero if
// either run failed.
import { readdirSync, existsSync } from "node:fs";
import { spawnSync } from "node:child_process";

const args = process.argv.slice(2);
const tap = (extra) => spawnSync("npx", ["tap", ...args, ...extra], { stdio: "inherit" }).status ?? 1;

const mainStatus = tap([]);
const vmDir = "test/vm";
const vmFiles = existsSync(vmDir)
  ? readdirSync(vmDir).filter((f) => f.endsWith(".test.ts")).sort().map((f) => `${vmDir}/${f}`)
  : [];
const vmStatus = vmFiles.length > 0 ? tap(["--jobs=1", ...vmFiles]) : 0;
process.exit(mainStatus !== 0 ? mainStatus : vmStatus);
