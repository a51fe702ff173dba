/** Self-time summary of a V8 `.cpuprofile` (as written by `node --cpu-prof`). */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface HotSpot {
  readonly name: string;
  readonly selfMs: number;
  /** Share of the non-idle samples. */
  readonly percent: number;
}

function shortUrl(url: string): string {
  if (url === '') return '';
  const cut = url.replace(/^file:\/\//, '');
  const at = cut.indexOf('/dist/');
  if (at !== -1) return cut.slice(at + 1);
  const modules = cut.lastIndexOf('node_modules/');
  if (modules !== -1) return cut.slice(modules);
  return cut;
}

export function hotSpots(
  path: string,
  top = 25,
): { totalMs: number; idleMs: number; spots: HotSpot[] } {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) byId.set(node.id, node);
  const self = new Map<string, number>();
  let total = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    const delta = (profile.timeDeltas[i] ?? 0) / 1000;
    const frame = byId.get(id)?.callFrame;
    const name = frame
      ? `${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}${frame.url ? `:${frame.lineNumber + 1}` : ''}`.trim()
      : '(unknown)';
    if (name === '(idle)') {
      idle += delta;
      return;
    }
    total += delta;
    self.set(name, (self.get(name) ?? 0) + delta);
  });
  const spots = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, ms]) => ({
      name,
      selfMs: Math.round(ms * 10) / 10,
      percent: total === 0 ? 0 : Math.round((ms / total) * 1000) / 10,
    }));
  return { totalMs: Math.round(total), idleMs: Math.round(idle), spots };
}
