/**
 * Interleaved A/B: is this working tree (or `--head`) faster per CPU second than an earlier commit?
 *
 *   npm run bench:ab -- RefreshToken.rotate                  # working tree (B) against HEAD (A)
 *   npm run bench:ab -- Introspect --base 08f8345 --rounds 8 --slice 5
 *   npm run bench:ab -- ClientSecret --base f824893 --head 6498ebb   # two commits, neither this tree
 *   npm run bench:ab -- RefreshToken.rotate --b-env DATABASE_ONE_SHOT=false   # one setting, same code
 *   npm run bench:ab -- ClientSecret --b-node-flags="--max-semi-space-size=8"   # Node/V8 flags, same code
 *   npm run bench:ab -- AuthorizationCode --head HEAD --b-scenario AuthorizationCode.totp   # a feature's cost: two scenarios, one build
 *
 * On a small shared machine the same row of one build swings ±25 % between runs minutes apart,
 * more than most changes move it, so two `npm run bench` runs compare poorly. Here both builds run at
 * once — A from a git worktree of `--base`, B from this tree, each its own process and database —
 * and the load alternates between them in short saturation slices (A B, B A, A B, …), so whatever
 * the machine does meanwhile falls on both. Each round gives B's ops/CPU s over A's; the report
 * prints every round, both totals and the median of the rounds' ratios.
 *
 * A uses this tree's node_modules (linked into the worktree): a base with other dependencies
 * compares code and dependencies at once only if you install them there yourself.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { saturate } from './lib/load.ts';
import { sampleProcess } from './lib/proc.ts';
import { startTessera, type Tessera } from './lib/tessera.ts';
import { benchEnv, type Prepared, SCENARIOS, type Scenario } from './scenarios.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    base: { type: 'string', default: 'HEAD' },
    head: { type: 'string' },
    rounds: { type: 'string', default: '6' },
    slice: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '16' },
    // Environment for B's process only (NAME=value, repeatable): a setting's cost with the code unchanged.
    'b-env': { type: 'string', multiple: true, default: [] },
    // Node/V8 flags for B's process only, after `npm start`'s own (the last of a V8 flag wins).
    'b-node-flags': { type: 'string', default: '' },
    // Another scenario for B (same build by default: --head HEAD): a feature's cost, e.g. the code step of AuthorizationCode.totp.
    'b-scenario': { type: 'string' },
  },
});

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const serverUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const rounds = Number(values.rounds);
const sliceMs = Number(values.slice) * 1000;
const concurrency = Number(values.concurrency);
const scenario = SCENARIOS.find((s) => s.name === positionals[0]);
const bScenario = values['b-scenario'] ? SCENARIOS.find((s) => s.name === values['b-scenario']) : scenario;
const bEnvPairs = values['b-env']!.map((pair) => /^([A-Z_][A-Z0-9_]*)=(.*)$/s.exec(pair));
if (!scenario || !bScenario || positionals.length !== 1 || !(rounds > 0) || !(sliceMs > 0) || !(concurrency > 0) || bEnvPairs.some((m) => !m)) {
  console.error(
    `usage: npm run bench:ab -- <scenario> [--base <commit>] [--head <commit>] [--rounds N] [--slice seconds] [--concurrency N] [--b-env NAME=value …] [--b-node-flags="--flag …"] [--b-scenario <scenario>]\nscenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`,
  );
  process.exit(2);
}
const bEnv: Record<string, string> = Object.fromEntries(bEnvPairs.map((m) => [m![1]!, m![2]!]));
const bNodeFlags = values['b-node-flags']!.split(/\s+/).filter(Boolean);
const log = (m: string) => process.stderr.write(`${m}\n`);

/** A detached worktree of `rev` under bench/results/ab/, sharing this tree's node_modules. */
function worktreeOf(rev: string): { root: string; commit: string } {
  const commit = execFileSync('git', ['rev-parse', '--short', rev], { cwd: ROOT, encoding: 'utf8' }).trim();
  const root = join(ROOT, 'bench', 'results', 'ab', commit);
  if (!existsSync(root)) {
    mkdirSync(join(ROOT, 'bench', 'results', 'ab'), { recursive: true });
    execFileSync('git', ['worktree', 'add', '--detach', root, commit], { cwd: ROOT, stdio: 'ignore' });
    symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'), 'dir');
  }
  return { root, commit };
}

const base = worktreeOf(values.base!);
const head = values.head ? worktreeOf(values.head) : undefined;
const bSettings = [...values['b-env']!, ...bNodeFlags];
const headName = `${head ? head.commit : 'working tree'}${bSettings.map((p) => ` ${p}`).join('')}${bScenario !== scenario ? ` ${bScenario!.name}` : ''}`;
log(
  `A = ${base.commit} (${base.root}), B = ${head ? `${head.commit} (${head.root})` : 'this working tree'}${bSettings.map((p) => ` with ${p}`).join('')}; ${scenario.name}${bScenario !== scenario ? ` (B: ${bScenario!.name})` : ''}, ${rounds} rounds of ${sliceMs / 1000} s slices at concurrency ${concurrency}`,
);

interface Side {
  name: 'A' | 'B';
  tessera: Tessera;
  op: Prepared['op'];
  ops: number;
  cpuSeconds: number;
}

async function side(name: Side['name'], run: Scenario, root?: string, settings: Record<string, string> = {}, nodeFlags: string[] = []): Promise<Side> {
  const tessera = await startTessera(serverUrl, nodeFlags, 'ignore', root, settings);
  const env = await benchEnv(tessera, { smoke: false, concurrency, progress: log });
  const prepared = (await run.prepare(env)).find((p) => p.target === 'tessera');
  if (!prepared) throw new Error(`${run.name} has no Tessera operation`);
  return { name, tessera, op: prepared.op, ops: 0, cpuSeconds: 0 };
}

/** One saturation slice against one side: its ops and its process's CPU seconds. */
async function slice(s: Side): Promise<number> {
  await saturate(s.op, Math.min(4, concurrency), 1000); // warm its caches again after the other's slice
  const before = sampleProcess(s.tessera.pid);
  const r = await saturate(s.op, concurrency, sliceMs);
  const cpu = sampleProcess(s.tessera.pid).cpuSeconds - before.cpuSeconds;
  if (r.errors) throw new Error(`${s.name}: ${r.errors} errors, first: ${r.firstError}`);
  s.ops += r.ops;
  s.cpuSeconds += cpu;
  return r.ops / cpu;
}

const sides: Side[] = [];
try {
  log('starting A and B, seeding');
  sides.push(await side('A', scenario, base.root), await side('B', bScenario!, head?.root, bEnv, bNodeFlags));
  const [a, b] = sides as [Side, Side];
  const ratios: number[] = [];
  console.log('| round | A ops/CPU s | B ops/CPU s | B / A |\n|---|---|---|---|');
  for (let i = 0; i < rounds; i++) {
    // Alternate who goes first, so neither always follows the other's slice.
    const order = i % 2 ? [b, a] : [a, b];
    const got = new Map<Side, number>();
    for (const s of order) got.set(s, await slice(s));
    const ratio = got.get(b)! / got.get(a)!;
    ratios.push(ratio);
    console.log(`| ${i + 1} | ${Math.round(got.get(a)!)} | ${Math.round(got.get(b)!)} | ${ratio.toFixed(3)} |`);
  }
  ratios.sort((x, y) => x - y);
  const median = ratios.length % 2 ? ratios[(ratios.length - 1) / 2]! : (ratios[ratios.length / 2 - 1]! + ratios[ratios.length / 2]!) / 2;
  console.log(
    `\n${scenario.name}: A (${base.commit}) ${Math.round(a.ops / a.cpuSeconds)} ops/CPU s, B (${headName}) ${Math.round(b.ops / b.cpuSeconds)}; ` +
      `B / A median of ${rounds} rounds ${median.toFixed(3)} (range ${ratios[0]!.toFixed(3)}–${ratios.at(-1)!.toFixed(3)})`,
  );
} finally {
  for (const s of sides) await s.tessera.stop();
}
