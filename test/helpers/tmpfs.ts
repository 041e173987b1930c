// A small tmpfs for disk-full tests: mounted on a fresh directory (CI runs as root), unmounted and
// removed by `dispose`. Without the privilege the caller reports a skip with `reason`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Tmpfs = { path: string; dispose(): void } | { path: null; reason: string };

export function mountTmpfs(sizeMiB: number, prefix: string): Tmpfs {
  const path = mkdtempSync(join(tmpdir(), prefix));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', path], { stdio: 'pipe' });
  } catch (err) {
    rmSync(path, { recursive: true, force: true });
    return { path: null, reason: `cannot mount a tmpfs for the data directory (needs root): ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}` };
  }
  return {
    path,
    dispose() {
      execFileSync('umount', ['-l', path]);
      rmSync(path, { recursive: true, force: true });
    },
  };
}
