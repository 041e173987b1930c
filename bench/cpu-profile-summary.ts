// Summarises a V8 .cpuprofile (Chrome DevTools format, from bench/cpu-profile-preload.ts or
// `node --cpu-prof`): self time per function, summed over every node of the call tree with the
// same function name and source position, largest first.
import { basename } from 'node:path';

interface CpuProfileNode {
  id: number;
  children?: number[];
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  selfMs: number;
  share: number;
  /** The project function (nearest caller outside node: and node_modules) most of it ran under. */
  via: string | null;
}

/** Self time per function; `(idle)`, `(garbage collector)` and `(program)` are V8's own buckets. */
export function selfTimes(profile: CpuProfile): { totalMs: number; functions: SelfTime[] } {
  const nameById = new Map<number, string>();
  const parentById = new Map<number, number>();
  const nodeById = new Map<number, CpuProfileNode>();
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url === '' ? '' : ` ${url.startsWith('node:') ? url : basename(url)}:${lineNumber + 1}`;
    nameById.set(node.id, `${functionName === '' ? '(anonymous)' : functionName}${where}`);
    nodeById.set(node.id, node);
    for (const child of node.children ?? []) parentById.set(child, node.id);
  }
  const isProjectFrame = (node: CpuProfileNode): boolean => {
    const url = node.callFrame.url;
    return url.startsWith('file://') && !url.includes('/node_modules/');
  };
  const viaCache = new Map<number, string | null>();
  const viaOf = (id: number): string | null => {
    if (viaCache.has(id)) return viaCache.get(id)!;
    let cursor: number | undefined = parentById.get(id);
    let via: string | null = null;
    while (cursor !== undefined) {
      const node = nodeById.get(cursor)!;
      if (isProjectFrame(node)) {
        via = nameById.get(cursor)!;
        break;
      }
      cursor = parentById.get(cursor);
    }
    viaCache.set(id, via);
    return via;
  };
  const microsByName = new Map<string, number>();
  const viaMicrosByName = new Map<string, Map<string, number>>();
  let totalMicros = 0;
  // timeDeltas[i] is the time before sample i; charge it to the sample it leads to.
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = Math.max(0, profile.timeDeltas[i] ?? 0);
    const id = profile.samples[i]!;
    const name = nameById.get(id) ?? '(unknown)';
    microsByName.set(name, (microsByName.get(name) ?? 0) + delta);
    const node = nodeById.get(id);
    const via = node !== undefined && !isProjectFrame(node) ? viaOf(id) : null;
    if (via !== null) {
      const vias = viaMicrosByName.get(name) ?? new Map<string, number>();
      vias.set(via, (vias.get(via) ?? 0) + delta);
      viaMicrosByName.set(name, vias);
    }
    totalMicros += delta;
  }
  const topVia = (name: string): string | null => {
    const vias = viaMicrosByName.get(name);
    if (vias === undefined) return null;
    return [...vias].sort((a, b) => b[1] - a[1])[0]![0];
  };
  const functions = [...microsByName]
    .map(([name, micros]) => ({ name, selfMs: micros / 1000, share: totalMicros === 0 ? 0 : micros / totalMicros, via: topVia(name) }))
    .sort((a, b) => b.selfMs - a.selfMs);
  return { totalMs: totalMicros / 1000, functions };
}

/** Markdown lines: the top `count` functions by self time, with their share of the profile. */
export function summariseCpuProfile(profile: CpuProfile, count = 15): string[] {
  const { totalMs, functions } = selfTimes(profile);
  const busy = functions.filter((f) => f.name !== '(idle)').reduce((sum, f) => sum + f.selfMs, 0);
  return [
    `profile ${(totalMs / 1000).toFixed(1)} s, main thread busy ${((100 * busy) / Math.max(totalMs, 1)).toFixed(0)} %`,
    '',
    '| self time | share | function | mostly under (project code) |',
    '| ---: | ---: | --- | --- |',
    ...functions
      .slice(0, count)
      .map((f) => `| ${f.selfMs.toFixed(0)} ms | ${(100 * f.share).toFixed(1)} % | \`${f.name}\` | ${f.via === null ? '' : `\`${f.via}\``} |`),
  ];
}
