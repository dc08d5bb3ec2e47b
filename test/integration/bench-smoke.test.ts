import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { SCENARIOS } from '../../bench/scenarios.ts';
import { serverUrl } from '../helpers/database.ts';

/**
 * The benchmark's smoke run: every scenario, a second each at saturation and at a fixed rate,
 * small seeds — so the harness can't rot. It asserts that everything ran without an error; it
 * asserts nothing about speed (timings don't belong in tests; `npm run bench` measures them).
 */
const onPostgres = serverUrl() ? test : test.skip;

onPostgres('npm run bench -- --smoke --trace-gc: every scenario runs, against Tessera and the bare provider, with no errors', async (tt) => {
  tt.timeout(300_000);
  const out = join(mkdtempSync(join(tmpdir(), 'bench-smoke-')), 'smoke');
  await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--smoke', '--trace-gc', '--out', out], {
    env: { ...process.env, DATABASE_URL: serverUrl() },
    timeout: 240_000,
    maxBuffer: 10 * 1024 * 1024,
  });
  const report = JSON.parse(readFileSync(`${out}.json`, 'utf8')) as {
    machine: { cores: number };
    rows: Array<{
      scenario: string;
      target: string;
      mode: string;
      ops: number;
      errors: number;
      first_error?: string;
      ops_per_cpu_second: number | null;
      tessera_ms?: [number, number];
      pg_ms_per_op?: number | null;
      others_cpu_pct?: number;
    }>;
  };
  tt.true(report.machine.cores >= 1);
  for (const s of SCENARIOS)
    tt.true(
      report.rows.some((r) => r.scenario === s.name && r.ops > 0),
      `${s.name} ran`,
    );
  for (const r of report.rows) tt.is(r.errors, 0, `${r.scenario} → ${r.target} (${r.mode}): ${r.first_error ?? ''}`);
  tt.true(
    report.rows.some((r) => r.target === 'bare' && r.ops > 0),
    'the bare provider ran',
  );
  tt.true(
    report.rows.filter((r) => r.target === 'tessera').every((r) => (r.ops_per_cpu_second ?? 0) > 0),
    "Tessera's CPU was read from /proc",
  );
  tt.true(
    report.rows.filter((r) => r.target === 'tessera').every((r) => r.tessera_ms !== undefined && r.tessera_ms[0] > 0 && r.tessera_ms[1] > r.tessera_ms[0]),
    "each Tessera row says when it ran on Tessera's clock",
  );
  // PostgreSQL runs on this machine: its CPU per operation is read for every Tessera row.
  tt.true(
    report.rows.filter((r) => r.target === 'tessera').every((r) => typeof r.pg_ms_per_op === 'number' && r.pg_ms_per_op >= 0),
    'PostgreSQL CPU per op on each Tessera row',
  );
  tt.true(
    report.rows.every((r) => typeof r.others_cpu_pct === 'number' && r.others_cpu_pct >= 0),
    "the others' share of the machine on each row",
  );
  // Floors are saturation figures only.
  for (const s of SCENARIOS.filter((x) => x.floor))
    tt.true(
      report.rows.filter((r) => r.scenario === s.name).every((r) => r.mode.startsWith('saturation')),
      `${s.name}: saturation only`,
    );
  // A latency goal is also measured at a quarter of saturation.
  for (const s of SCENARIOS.filter((x) => x.goal?.p99Ms))
    tt.true(
      report.rows.some((r) => r.scenario === s.name && r.mode.endsWith('(¼ of saturation)')),
      `${s.name} at a quarter of saturation`,
    );
  const md = readFileSync(`${out}.md`, 'utf8');
  tt.regex(md, /\| scenario \| target \| mode \| ops\/s \| ops\/CPU s \|.*\| PG ms\/op \| others % \|/);
  // --trace-gc: Tessera's own collections, one line each.
  tt.regex(readFileSync(`${out}.gc.log`, 'utf8'), /\d+ ms: Scavenge /);
});

onPostgres('npm run bench:ab: HEAD (from a git worktree) and this tree, alternating slices, a ratio per round', async (tt) => {
  tt.timeout(300_000);
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'bench/ab.ts', 'ClientSecret', '--base', 'HEAD', '--rounds', '2', '--slice', '1', '--concurrency', '4'],
    {
      env: { ...process.env, DATABASE_URL: serverUrl() },
      timeout: 240_000,
    },
  );
  const rounds = stdout.split('\n').filter((l) => /^\| \d+ \| \d+ \| \d+ \| \d+\.\d{3} \|$/.test(l));
  tt.is(rounds.length, 2, stdout);
  tt.regex(stdout, /ClientSecret: A \(\w+\) \d+ ops\/CPU s, B \(working tree\) \d+; B \/ A median of 2 rounds \d+\.\d{3}/);
});
