// CPU profiles of a gateway started by a benchmark, limited to the measured stretch: the gateway
// is started with bench/cpu-profile-preload.ts (NODE_OPTIONS --import; `--cpu-prof` is not allowed
// there), and each start()/stop() pair is one SIGUSR2 round trip that yields one .cpuprofile.
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot, type GatewayProcess } from '../test/helpers/gateway-process.js';
import { summariseCpuProfile, type CpuProfile } from './cpu-profile-summary.js';

/** BENCH_CPU_PROFILE=DIR turns profiling on for every benchmark gateway. */
export function profileDirFromEnv(): string | null {
  const dir = process.env.BENCH_CPU_PROFILE;
  return dir === undefined || dir === '' ? null : dir;
}

export class GatewayProfiler {
  private sequence = 0;
  /** Markdown sections, one per profile taken (summariseCpuProfile). */
  readonly summaries: string[] = [];

  private constructor(
    private readonly dir: string,
    private readonly gateway: GatewayProcess,
  ) {}

  /** Starts a gateway (through `start`, e.g. startGateway) with the preload when `baseDir` is set;
   *  its profiles go to baseDir/NAME/. Without a dir, no preload and a null profiler. */
  static async launch(baseDir: string | null, name: string, start: () => Promise<GatewayProcess>): Promise<{ gateway: GatewayProcess; profiler: GatewayProfiler | null }> {
    if (baseDir === null) return { gateway: await start(), profiler: null };
    const dir = join(baseDir, name);
    await mkdir(dir, { recursive: true });
    const saved = { NODE_OPTIONS: process.env.NODE_OPTIONS, SHELFGATE_CPU_PROFILE_DIR: process.env.SHELFGATE_CPU_PROFILE_DIR };
    process.env.NODE_OPTIONS = `${saved.NODE_OPTIONS ?? ''} --import=${join(repoRoot(), 'dist/bench/cpu-profile-preload.js')}`.trim();
    process.env.SHELFGATE_CPU_PROFILE_DIR = dir;
    try {
      const gateway = await start();
      return { gateway, profiler: new GatewayProfiler(dir, gateway) };
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  }

  private async waitFor(file: string): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (!existsSync(join(this.dir, file))) {
      if (Date.now() > deadline) throw new Error(`the gateway did not write ${file} (is the preload loaded?)`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async start(): Promise<void> {
    this.sequence++;
    process.kill(this.gateway.pid, 'SIGUSR2');
    await this.waitFor(`started-${this.sequence}`);
  }

  /** Stops the running profile and keeps its summary under `title`. */
  async stop(title: string): Promise<CpuProfile> {
    process.kill(this.gateway.pid, 'SIGUSR2');
    await this.waitFor(`stopped-${this.sequence}`);
    const profile = JSON.parse(await readFile(join(this.dir, `${this.sequence}.cpuprofile`), 'utf8')) as CpuProfile;
    this.summaries.push(`### ${title}`, '', `(${join(this.dir, `${this.sequence}.cpuprofile`)})`, '', ...summariseCpuProfile(profile, 20), '');
    return profile;
  }
}
