/**
 * The hottest functions of a V8 CPU profile (`--cpu-prof`), by self time and by total time:
 *
 *   node --import tsx bench/profile-top.ts bench/results/profiles/<file>.cpuprofile [--filter src/]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { filter: { type: 'string' }, top: { type: 'string', default: '30' } } });
interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
const profile = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (n: Node) =>
  `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(src|bench)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
const self = new Map<string, number>();
const total = new Map<string, number>();
let all = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  all += dt;
  const leaf = byId.get(id)!;
  self.set(name(leaf), (self.get(name(leaf)) ?? 0) + dt);
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const k = name(byId.get(cur)!);
    if (!seen.has(k)) total.set(k, (total.get(k) ?? 0) + dt);
    seen.add(k);
  }
});
const show = (title: string, m: Map<string, number>) => {
  console.log(`\n${title}`);
  [...m]
    .filter(([k]) => !values.filter || k.includes(values.filter))
    .sort((a, b) => b[1] - a[1])
    .slice(0, Number(values.top))
    .forEach(([k, v]) => {
      console.log(`${((v / all) * 100).toFixed(1).padStart(5)}%  ${k}`);
    });
};
// Self time by package or source directory: where the CPU goes, in broad strokes.
const byModule = new Map<string, number>();
for (const [k, v] of self) {
  const url = k.split(' ').slice(1).join(' ');
  const m =
    /^(@[^/]+\/[^/]+|[^/:]+)\//.exec(url)?.[1] ?? (url.startsWith('node:') ? 'node (core)' : url.startsWith(':') ? k.split(' ')[0]! : url.split(':')[0]!);
  byModule.set(m, (byModule.get(m) ?? 0) + v);
}
show('self time by module', byModule);
show('self time', self);
show('total time (inclusive)', total);
