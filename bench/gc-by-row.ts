/**
 * Tessera's garbage-collection pauses placed in the benchmark rows they fell in: a run made with
 * `--trace-gc` writes V8's line per collection (its timestamp counts from Tessera's start), and
 * each Tessera row of the report says when its load ran on that clock (`tessera_ms`).
 *
 *   node --import tsx bench/gc-by-row.ts bench/results/<date>.json bench/results/gc-<time>.log [--over 10]
 *
 * Per row: collections, their summed pause, the largest, and how many paused longer than --over ms.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { over: { type: 'string', default: '10' } } });
if (positionals.length !== 2) {
  console.error('usage: node --import tsx bench/gc-by-row.ts <report.json> <gc.log> [--over ms]');
  process.exit(2);
}
const over = Number(values.over);

interface Pause {
  atMs: number;
  kind: string;
  ms: number;
}
// "[pid:0x…]   486984 ms: Mark-Compact (reduce) 227.5 (325.9) -> 50.7 (136.7) MB, pooled: 0 MB, 71.12 / 0.16 ms …"
const LINE = /^\[\d+:(0x[0-9a-f]+)\]\s+(\d+) ms: (Scavenge|Mark-Compact(?: \(reduce\))?|Minor Mark-Sweep) .*?MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/;
const pauses: Pause[] = [];
let mainIsolate: string | undefined;
for (const line of readFileSync(positionals[1]!, 'utf8').split('\n')) {
  const m = LINE.exec(line);
  if (!m) continue;
  // The main isolate traces first. Worker threads' isolates trace too, on clocks of their own,
  // and their pauses stop only them: left out.
  mainIsolate ??= m[1];
  if (m[1] === mainIsolate) pauses.push({ atMs: Number(m[2]), kind: m[3]!, ms: Number(m[4]) });
}

interface Row {
  scenario: string;
  target: string;
  mode: string;
  p99_ms: number;
  tessera_ms?: [number, number];
}
const rows = (JSON.parse(readFileSync(positionals[0]!, 'utf8')) as { rows: Row[] }).rows.filter((r) => r.tessera_ms);
if (rows.length === 0) console.error('no row carries tessera_ms: the report predates it');

const fmt = (n: number) => n.toFixed(1).padStart(7);
console.log(`${'row'.padEnd(52)} ${'p99 ms'.padStart(7)} ${'GCs'.padStart(5)} ${'paused'.padStart(7)} ${'largest'.padStart(7)}  > ${over} ms`);
for (const r of rows) {
  const [from, to] = r.tessera_ms!;
  const inRow = pauses.filter((p) => p.atMs >= from && p.atMs <= to);
  const largest = inRow.reduce((a, p) => (p.ms > a.ms ? p : a), { atMs: 0, kind: '—', ms: 0 });
  const long = inRow.filter((p) => p.ms > over);
  const kinds = [...new Set(long.map((p) => p.kind))].join(', ');
  console.log(
    `${`${r.scenario} (${r.mode})`.padEnd(52)} ${fmt(r.p99_ms)} ${String(inRow.length).padStart(5)} ${fmt(inRow.reduce((s, p) => s + p.ms, 0))} ${fmt(largest.ms)}  ${long.length}${kinds ? ` (${kinds})` : ''}`,
  );
}
