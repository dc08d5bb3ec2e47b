/**
 * Tessera's benchmark: Keycloak's sizing scenarios against Tessera running as its own process on
 * PostgreSQL, side by side with a bare oidc-provider. See bench/README.md.
 *
 *   npm run bench                                        # every scenario
 *   npm run bench -- ClientSecret RefreshToken --duration 20 --rate 200
 *   npm run bench -- --smoke                             # seconds per scenario, small seeds
 */
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { argon2Build } from '../src/users/argon2.ts';
import { fixedRate, type LoadResult, percentile, type SlowLog, saturate } from './lib/load.ts';
import { machineLoad, sampleMachine } from './lib/machine-load.ts';
import { machine, sampleProcess } from './lib/proc.ts';
import { freePort, startTessera } from './lib/tessera.ts';
import { benchEnv, type Prepared, SCENARIOS, type Scenario } from './scenarios.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    duration: { type: 'string', default: '15' },
    rate: { type: 'string' },
    concurrency: { type: 'string', default: '16' },
    smoke: { type: 'boolean', default: false },
    'no-bare': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    'trace-gc': { type: 'boolean', default: false },
    'node-flags': { type: 'string', default: '' },
    'slow-log': { type: 'string' },
    out: { type: 'string' },
  },
});

const smoke = values.smoke!;
const durationMs = (smoke ? 1 : Number(values.duration)) * 1000;
const concurrency = smoke ? 4 : Number(values.concurrency);
const serverUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const unknown = positionals.filter((p) => !SCENARIOS.some((s) => s.name === p || s.name.startsWith(`${p}.`)));
if (unknown.length) {
  console.error(`Unknown scenario ${unknown.join(', ')}. Scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  process.exit(2);
}
const chosen: Scenario[] = positionals.length ? SCENARIOS.filter((s) => positionals.some((p) => s.name === p || s.name.startsWith(`${p}.`))) : SCENARIOS;

export interface Row {
  scenario: string;
  target: string;
  mode: string;
  ops: number;
  ops_per_second: number;
  ops_per_cpu_second: number | null;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  /** Fixed-rate rows: the 99th percentile of how late the load generator sent (its own lag). */
  send_lag_p99_ms?: number;
  errors: number;
  first_error?: string;
  rss_mb: number | null;
  /** Database transactions committed per operation (pg_stat_database), Tessera rows only. */
  tx_per_op?: number;
  /** PostgreSQL's CPU per operation, ms (all its local processes; null for a remote server). */
  pg_ms_per_op?: number | null;
  /** Share of all cores, in %, used meanwhile by processes that are neither PostgreSQL nor the bench's (the machine's other services, kernel threads). */
  others_cpu_pct?: number;
  goal?: string;
  ratio_to_bare?: number;
  /** Tessera rows: when the measured load ran, in ms since Tessera's process started — the clock of `--trace-gc`'s lines. */
  tessera_ms?: [number, number];
}

const log = (m: string) => process.stderr.write(`${m}\n`);

async function startBare(chains: number) {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./lib/bare-provider.ts', import.meta.url)), String(port), String(chains)], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const l = buf.split('\n').find((x) => x.startsWith('{"port"'));
      if (l) resolve(l);
    });
    child.once('exit', (code) => reject(new Error(`the bare provider exited with ${code}`)));
  });
  const seeds = JSON.parse(line) as { refreshTokens: string[]; opaqueToken: string };
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, ...seeds, stop: () => child.kill('SIGTERM') };
}

/**
 * The fixed rates a target is driven at after saturation: half of Tessera's saturation rate, the
 * same for the bare provider (latency side by side at one arrival rate), or `--rate`. A scenario
 * with a latency goal also runs at a quarter of Tessera's saturation: at half, the whole 2-core
 * machine (Tessera, PostgreSQL, the load generator) is 60–95 % busy and its p99 is mostly queueing
 * behind whatever else wakes up on the machine (docs/performance.md, "Latency tails"); a quarter shows
 * the operation's own tail. Both rows are reported.
 */
function fixedRates(scenario: Scenario, p: Prepared, tesseraSaturation: number): Array<{ rate: number; share?: string }> {
  if (values.rate) return [{ rate: Number(values.rate) }];
  const rates: Array<{ rate: number; share?: string }> = [{ rate: Math.max(1, Math.round(tesseraSaturation / 2)), share: '½' }];
  if (scenario.goal?.p99Ms && p.target === 'tessera') rates.push({ rate: Math.max(1, Math.round(tesseraSaturation / 4)), share: '¼' });
  return rates;
}

/** One measured run of an operation, with the CPU and memory of the process that served it. */
async function measure(
  scenario: Scenario,
  p: Prepared,
  mode: 'saturation' | 'rate',
  rate: number,
  pidOf: (t: Prepared['target']) => number | undefined,
  share?: string,
): Promise<Row> {
  const pid = pidOf(p.target);
  // Warm-up: JIT, caches, connection pools.
  await saturate(p.op, Math.min(4, concurrency), smoke ? 200 : 1500);
  // Let the warm-up's commits be published before counting (not worth the wait in a smoke run).
  const settle = () => new Promise((r) => setTimeout(r, p.target === 'tessera' && !smoke ? 1200 : 0));
  await settle();
  const commits0 = p.target === 'tessera' ? await commits() : 0;
  const before = pid ? sampleProcess(pid) : undefined;
  const benchBefore = benchCpuSeconds();
  const machineBefore = sampleMachine();
  const localCpu = process.cpuUsage();
  const startedMs = Date.now() - tessera.spawnedAt;
  const result: LoadResult =
    mode === 'saturation'
      ? await saturate(p.op, concurrency, durationMs)
      : await fixedRate(p.op, rate, durationMs, { slow: slowLog(`${scenario.name} ${p.target} ${rate}/s`) });
  const after = pid ? sampleProcess(pid) : undefined;
  const local = process.cpuUsage(localCpu);
  const load = machineLoad(machineBefore, sampleMachine(), {
    ops: result.ops,
    benchSeconds: benchCpuSeconds() - benchBefore,
    wallSeconds: result.wallSeconds,
    cores: cores,
  });
  // PostgreSQL publishes transaction counts within a second or so.
  if (p.target === 'tessera') await settle();
  const commits1 = p.target === 'tessera' ? await commits() : 0;
  const cpuSeconds = p.target === 'local' ? (local.user + local.system) / 1e6 : after!.cpuSeconds - before!.cpuSeconds;
  const sorted = result.latenciesMs.sort((a, b) => a - b);
  const goal = scenario.goal?.opsPerCpuSecond
    ? `≥ ${scenario.goal.opsPerCpuSecond}/CPU s`
    : scenario.goal?.p99Ms
      ? `p99 < ${scenario.goal.p99Ms} ms`
      : undefined;
  return {
    scenario: scenario.name,
    target: p.target,
    mode: mode === 'rate' ? `${rate}/s${share ? ` (${share} of saturation)` : ''}` : `saturation (${concurrency})`,
    ops: result.ops,
    ops_per_second: Math.round(result.ops / result.wallSeconds),
    ops_per_cpu_second: cpuSeconds > 0 ? Math.round(result.ops / cpuSeconds) : null,
    p50_ms: round(percentile(sorted, 50)),
    p95_ms: round(percentile(sorted, 95)),
    p99_ms: round(percentile(sorted, 99)),
    ...(result.sendLagP99Ms !== undefined ? { send_lag_p99_ms: round(result.sendLagP99Ms) } : {}),
    errors: result.errors,
    ...(result.firstError ? { first_error: result.firstError } : {}),
    rss_mb: after ? Math.round(after.rssBytes / 1048576) : null,
    ...(p.target === 'tessera' && result.ops && !smoke ? { tx_per_op: round((commits1 - commits0) / result.ops) } : {}),
    ...(p.target === 'tessera' ? { pg_ms_per_op: load.postgresMsPerOp === null ? null : Math.round(load.postgresMsPerOp * 100) / 100 } : {}),
    others_cpu_pct: round(load.othersShare * 100),
    ...(goal && p.target === 'tessera' ? { goal } : {}),
    ...(p.target === 'tessera' ? { tessera_ms: [startedMs, Date.now() - tessera.spawnedAt] as [number, number] } : {}),
  };
}

const round = (n: number) => Math.round(n * 10) / 10;

/**
 * --slow-log FILE: each fixed-rate operation over 20 ms, one line — `op <sent at, wall-clock s> <ms> <row>` —
 * to line up with bench/diag/stalls.mjs and `perf record -k realtime` (bench/README.md).
 */
function slowLog(row: string): SlowLog | undefined {
  const file = values['slow-log'];
  if (!file) return undefined;
  const fd = openSync(file, 'a');
  return (sentAt, ms) => {
    if (ms > 20) writeSync(fd, `op ${((performance.timeOrigin + sentAt) / 1000).toFixed(3)} ${ms.toFixed(1)} ${row}\n`);
  };
}
const cores = machine().cores;

/** CPU seconds of the bench's own processes: this load generator, Tessera and the bare provider. */
function benchCpuSeconds(): number {
  const own = process.cpuUsage();
  let seconds = (own.user + own.system) / 1e6 + sampleProcess(tessera.pid).cpuSeconds;
  if (bare) seconds += sampleProcess(bare.pid).cpuSeconds;
  return seconds;
}

/** Transactions committed so far in Tessera's database. */
async function commits(): Promise<number> {
  const r = await sql<{ n: string }>`select xact_commit::text as n from pg_stat_database where datname = current_database()`.execute(tessera.connection.db);
  return Number(r.rows[0]?.n ?? 0);
}

function markdown(
  rows: Row[],
  meta: { date: string; machine: { cores: number; cpu: string }; node: string; argon2: string; durationS: number; vacuumBetweenScenarios: boolean },
) {
  const head =
    `Tessera benchmark, ${meta.date} — ${meta.machine.cores} cores, ${meta.machine.cpu}, Node ${meta.node}, argon2 ${meta.argon2} build, PostgreSQL local${meta.vacuumBetweenScenarios ? ' (autovacuum off: VACUUM ANALYZE between scenarios)' : ''}, ${meta.durationS} s per row. ` +
    'ops/CPU s is the CPU of the process that served the requests, read from /proc (the load generator and PostgreSQL not counted); `local` rows are crypto floors measured in the load generator itself. ' +
    "PG ms/op is PostgreSQL's CPU per operation; others % is the share of all cores used meanwhile by processes that are neither PostgreSQL nor the bench's own.\n\n";
  const lines = [
    '| scenario | target | mode | ops/s | ops/CPU s | p50 ms | p95 ms | p99 ms | errors | RSS MB | tx/op | PG ms/op | others % | goal | Tessera/bare |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.scenario} | ${r.target} | ${r.mode} | ${r.ops_per_second} | ${r.ops_per_cpu_second ?? '—'} | ${r.p50_ms} | ${r.p95_ms} | ${r.p99_ms} | ${r.errors}${r.first_error ? ` (${r.first_error.replace(/\|/g, '/').slice(0, 60)})` : ''} | ${r.rss_mb ?? '—'} | ${r.tx_per_op ?? ''} | ${r.pg_ms_per_op ?? ''} | ${r.others_cpu_pct ?? ''} | ${r.goal ?? ''} | ${r.ratio_to_bare ?? ''} |`,
    );
  }
  return `${head}${lines.join('\n')}\n`;
}

// --profile: Tessera runs with --cpu-prof; the profile lands in bench/results/profiles/ when it stops.
// --trace-gc: V8's line per collection (pause, heap before → after) in bench/results/gc-<time>.log
// (or <out>.gc.log with --out).
// --node-flags="…": more flags for Tessera's node (V8 experiments: --max-semi-space-size=8, say).
const profileDir = fileURLToPath(new URL('./results/profiles/', import.meta.url));
const gcLog = !values['trace-gc']
  ? undefined
  : values.out
    ? `${values.out}.gc.log`
    : fileURLToPath(new URL(`./results/gc-${new Date().toISOString().replace(/[:.]/g, '-')}.log`, import.meta.url));
if (gcLog && !values.out) mkdirSync(fileURLToPath(new URL('./results/', import.meta.url)), { recursive: true });
const tessera = await startTessera(
  serverUrl,
  [
    ...(values.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
    ...(gcLog ? ['--trace-gc'] : []),
    ...values['node-flags']!.split(' ').filter(Boolean),
  ],
  gcLog ? openSync(gcLog, 'w') : 'ignore',
  undefined,
  // V8's GC lines go to stdout too: keep a request line per request out of that file.
  gcLog ? { LOG_LEVEL: 'warn' } : {},
);
if (gcLog) console.log(`Tessera's GC trace: ${gcLog}`);
const bare = values['no-bare'] ? undefined : await startBare(600);
const rows: Row[] = [];
try {
  const env = await benchEnv(tessera, {
    smoke,
    concurrency,
    progress: log,
    ...(bare ? { bare: { url: bare.url, refreshTokens: bare.refreshTokens, opaqueToken: bare.opaqueToken } } : {}),
  });
  const pidOf = (t: Prepared['target']) => (t === 'tessera' ? tessera.pid : t === 'bare' ? bare?.pid : undefined);
  // A server run with autovacuum off (some CI and test machines, this one included) never prunes
  // dead rows or refreshes statistics: after a few write-heavy rows every later scenario read
  // through bloat (grant_organizations: 16 live rows, 4,746 dead) and one statement's round trip
  // went from 0.7 to 4–5 ms. Production runs autovacuum; between scenarios do what it would.
  const autovacuumOff = (await sql<{ autovacuum: string }>`show autovacuum`.execute(tessera.connection.db)).rows[0]?.autovacuum === 'off';
  if (autovacuumOff) log('autovacuum is off on this server: VACUUM (ANALYZE) between scenarios, as autovacuum would');
  for (const [i, scenario] of chosen.entries()) {
    if (autovacuumOff && i > 0) await sql`VACUUM (ANALYZE)`.execute(tessera.connection.db);
    log(`${scenario.name}: seeding`);
    const prepared = await scenario.prepare(env);
    let tesseraSaturation: number | undefined;
    for (const p of prepared) {
      log(`${scenario.name} → ${p.target}: saturation`);
      const sat = await measure(scenario, p, 'saturation', 0, pidOf);
      rows.push(sat);
      // Floors are saturation figures. (The crypto floors run in this process, where a fixed rate
      // would measure the load generator; HttpOnly's ½ rate, thousands a second, would measure the
      // load generator's limit of requests in flight at the first pause.)
      if (scenario.floor) continue;
      // The first target is Tessera: its saturation sets the rates for the bare provider too.
      tesseraSaturation ??= sat.ops_per_second;
      for (const { rate, share } of fixedRates(scenario, p, tesseraSaturation)) {
        log(`${scenario.name} → ${p.target}: ${rate}/s`);
        rows.push(await measure(scenario, p, 'rate', rate, pidOf, share));
      }
    }
  }
  // Tessera / bare, per scenario, at saturation and per CPU second.
  for (const r of rows) {
    if (r.target !== 'tessera' || !r.mode.startsWith('saturation')) continue;
    const b = rows.find((x) => x.scenario === r.scenario && x.target === 'bare' && x.mode.startsWith('saturation'));
    if (b?.ops_per_cpu_second && r.ops_per_cpu_second) r.ratio_to_bare = Math.round((r.ops_per_cpu_second / b.ops_per_cpu_second) * 100) / 100;
  }
  const date = new Date().toISOString();
  const meta = {
    date,
    machine: machine(),
    node: process.version,
    argon2: argon2Build,
    durationS: durationMs / 1000,
    smoke,
    concurrency,
    vacuumBetweenScenarios: autovacuumOff,
  };
  const md = markdown(rows, meta);
  const base = values.out ?? fileURLToPath(new URL(`./results/${date.replace(/[:.]/g, '-')}`, import.meta.url));
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(`${base}.json`, JSON.stringify({ ...meta, rows }, null, 2));
  writeFileSync(`${base}.md`, md);
  process.stdout.write(`\n${md}\nwritten to ${base}.json and ${base}.md\n`);
} finally {
  bare?.stop();
  await tessera.stop();
}
