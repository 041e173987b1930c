// The documentation is checked against the product, so it cannot drift:
// - every ```yaml block in README.md and docs/*.md is a configuration (or a part of one) and must pass
//   the gateway's own schema (src/config.ts); a block that is not a shelfgate configuration says so in
//   its info string (```yaml compose, for example) and is left alone;
// - every ```sh runnable block is run with bash against a real gateway started here: GATEWAY_IP:3260 is
//   replaced by its iSCSI portal, and the block runs in an empty directory of its own;
// - every flag that `shelfgate start --help` prints is in the Flags table of docs/configuration.md.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { ConfigError, resolveConfig } from '../src/config.js';
import { repoRoot, startGateway } from './helpers/gateway-process.js';

interface Block {
  file: string;
  line: number;
  info: string;
  text: string;
}

/** Fenced code blocks (``` at the start of a line) with their info string and first line number. */
function fencedBlocks(file: string, markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const start = i + 1;
    while (++i < lines.length && !lines[i]!.startsWith('```'));
    blocks.push({ file, line: start, info: open[1]!.trim(), text: lines.slice(start, i).join('\n') });
  }
  return blocks;
}

const root = repoRoot();
const docFiles = ['README.md', ...(await readdir(join(root, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const blocks = (await Promise.all(docFiles.map(async (f) => fencedBlocks(f, await readFile(join(root, f), 'utf8'))))).flat();

t.test('Docs.YamlBlocksAreValidConfigurations', async (t) => {
  const configs = blocks.filter((b) => b.info === 'yaml');
  t.ok(configs.length > 0, `${configs.length} yaml blocks`);
  for (const block of configs) {
    let problem = '';
    try {
      resolveConfig(parseYaml(block.text), {});
    } catch (err) {
      problem = err instanceof ConfigError ? err.message : String(err);
    }
    t.equal(problem, '', `${block.file}:${block.line} is accepted by the schema`);
  }
});

t.test('Docs.RunnableShellBlocks', async (t) => {
  const runnable = blocks.filter((b) => /^(sh|bash) runnable$/.test(b.info));
  t.ok(runnable.length > 0, `${runnable.length} runnable blocks`);
  const gateway = await startGateway({ volumes: ['vol1:1GiB'] });
  t.teardown(() => gateway.dispose());
  for (const block of runnable) {
    const cwd = await mkdtemp(join(tmpdir(), 'shelfgate-docs-'));
    const script = block.text.replaceAll('GATEWAY_IP:3260', `127.0.0.1:${gateway.iscsiPort}`);
    const result = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { cwd, encoding: 'utf8', timeout: 120_000 });
    await rm(cwd, { recursive: true, force: true });
    t.equal(result.status, 0, `${block.file}:${block.line} runs`, { stdout: result.stdout, stderr: result.stderr });
  }
});

t.test('Docs.EveryStartFlagDocumented', async (t) => {
  const help = spawnSync(process.execPath, [join(root, 'dist/src/cli/main.js'), 'start', '--help'], { encoding: 'utf8' });
  t.equal(help.status, 0, help.stderr);
  const flags = [...help.stdout.matchAll(/^ {2}(--[a-z-]+)/gm)].map((m) => m[1]!).filter((f) => f !== '--help');
  t.ok(flags.length > 5, `${flags.length} flags in start --help`);
  const configuration = await readFile(join(root, 'docs/configuration.md'), 'utf8');
  const table = configuration.slice(configuration.indexOf('## Flags'));
  for (const flag of flags) t.match(table, `\`${flag}`, `${flag} is in the Flags table of docs/configuration.md`);
});
