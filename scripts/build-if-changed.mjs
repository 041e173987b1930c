// `npm start` runs this first: it builds only when a source file is newer than the last build
// (dist/.tsbuildinfo), so a start with nothing changed takes no compile.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";

const stamp = "dist/.tsbuildinfo";
const builtAt = (() => {
  try {
    return statSync(stamp).mtimeMs;
  } catch {
    return -1;
  }
})();

/** Newest modification time under the given paths (files and folders, recursively). */
function newest(paths) {
  let latest = 0;
  for (const path of paths) {
    const info = statSync(path, { throwIfNoEntry: false });
    if (info === undefined) continue;
    latest = Math.max(latest, info.mtimeMs);
    if (info.isDirectory()) latest = Math.max(latest, newest(readdirSync(path).map((name) => join(path, name))));
  }
  return latest;
}

if (builtAt < 0 || newest(["src", "iscsi", "tsconfig.json", "package-lock.json"]) > builtAt) {
  console.error(builtAt < 0 ? "shelfgate: building (first start)…" : "shelfgate: sources changed, rebuilding…");
  const build = spawnSync("npm", ["run", "build"], { stdio: "inherit" });
  if (build.status !== 0) process.exit(build.status ?? 1);
  // tsc leaves its build info alone when no output changed (a touched file): mark the build as done.
  const now = new Date();
  utimesSync(stamp, now, now);
}
