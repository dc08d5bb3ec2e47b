/**
 * What Tessera's memory settles at under a steady load, for several Node/V8 flag sets:
 *
 *   node --import tsx bench/diag/memory.ts ClientSecret --duration 60 \
 *     --config "npm start" --config "old 128:--max-old-space-size=128" --config "semi 4:--max-semi-space-size=4" \
 *     --config "reducer on:--memory-reducer" --config "cache 3000:TENANT_PROVIDER_CACHE_SIZE=3000"
 *   node --import tsx bench/diag/memory.ts Tenants --tenants 3000 --config "cache 500" --config "cache 3000:TENANT_PROVIDER_CACHE_SIZE=3000"
 *
 * Each config is `label[:words]`; a word starting with `--` is a Node/V8 flag added after `npm
 * start`'s own (the last of a V8 flag wins, so `--max-semi-space-size=4` replaces the 16 and
 * `--memory-reducer` undoes `--no-memory-reducer`), a `NAME=value` word is environment. For each
 * config, in turn (then in reverse order, `--rounds 2`): a fresh Tessera on a fresh database,
 * the scenario seeded, 5 s of warm-up, `--duration` seconds at saturation (`--concurrency`
 * workers) while bench/diag/memory-probe.mjs records `process.memoryUsage()` every second inside
 * Tessera, then `--idle` seconds without load. One line per run: throughput per CPU second of
 * Tessera's process, RSS and heap during the load's second half, RSS at its end and after the
 * idle time.
 *
 * `Tenants` is a scenario of this script: discovery of a random one of `--tenants` tenants (as
 * ManyTenants, with fewer tenants to seed), to see what each provider an instance keeps
 * (TENANT_PROVIDER_CACHE_SIZE) holds.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { expectStatus, send } from '../lib/http.ts';
import { saturate } from '../lib/load.ts';
import { sampleProcess } from '../lib/proc.ts';
import { startTessera } from '../lib/tessera.ts';
import { benchEnv, type Prepared, SCENARIOS } from '../scenarios.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    duration: { type: 'string', default: '60' },
    idle: { type: 'string', default: '15' },
    rounds: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '16' },
    tenants: { type: 'string', default: '3000' },
    config: { type: 'string', multiple: true, default: [] },
  },
});
const scenarioName = positionals[0] ?? 'ClientSecret';
const durationMs = Number(values.duration) * 1000;
const idleMs = Number(values.idle) * 1000;
const concurrency = Number(values.concurrency);
const serverUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const PROBE = fileURLToPath(new URL('./memory-probe.mjs', import.meta.url));
const log = (m: string) => process.stderr.write(`${m}\n`);

interface Config {
  label: string;
  flags: string[];
  env: Record<string, string>;
}
const configs: Config[] = (values.config!.length ? values.config! : ['npm start']).map((text) => {
  const [label, words = ''] = text.split(/:(.*)/s) as [string, string?];
  const list = words.split(/\s+/).filter(Boolean);
  return {
    label,
    flags: list.filter((w) => w.startsWith('--')),
    env: Object.fromEntries(list.filter((w) => !w.startsWith('--')).map((w) => w.split(/=(.*)/s) as [string, string])),
  };
});

interface Sample {
  t: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

async function prepare(scenario: string, env: Awaited<ReturnType<typeof benchEnv>>): Promise<Prepared['op']> {
  if (scenario === 'Tenants') {
    const n = Number(values.tenants);
    const slugs: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < n) {
          const slug = `mem-${next++}`;
          await env.tessera.tenants.create({ slug, name: slug });
          slugs.push(slug);
        }
      }),
    );
    return async () =>
      void expectStatus(await send(`${env.tessera.url}/t/${slugs[Math.floor(Math.random() * slugs.length)]}/.well-known/openid-configuration`), 200);
  }
  const found = SCENARIOS.find((s) => s.name === scenario);
  const prepared = found && (await found.prepare(env)).find((p) => p.target === 'tessera');
  if (!prepared) throw new Error(`no Tessera scenario ${scenario}; scenarios: Tenants, ${SCENARIOS.map((s) => s.name).join(', ')}`);
  return prepared.op;
}

async function measure(config: Config) {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-memory-'));
  const probeLog = join(dir, 'memory.jsonl');
  const tessera = await startTessera(serverUrl, [...config.flags, '--import', PROBE], 'ignore', undefined, { ...config.env, MEMORY_PROBE_LOG: probeLog });
  try {
    const env = await benchEnv(tessera, { smoke: false, concurrency, progress: log });
    const op = await prepare(scenarioName, env);
    await saturate(op, concurrency, 5000);
    const before = sampleProcess(tessera.pid);
    const started = Date.now();
    const r = await saturate(op, concurrency, durationMs);
    const ended = Date.now();
    const cpu = sampleProcess(tessera.pid).cpuSeconds - before.cpuSeconds;
    if (r.errors) throw new Error(`${r.errors} errors, first: ${r.firstError}`);
    await new Promise((resolve) => setTimeout(resolve, idleMs));
    const samples: Sample[] = readFileSync(probeLog, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    const secondHalf = samples.filter((s) => s.t >= started + durationMs / 2 && s.t <= ended);
    const atEnd = samples.filter((s) => s.t <= ended).at(-1)!;
    const afterIdle = samples.at(-1)!;
    return {
      config: config.label,
      'ops/CPU s': Math.round(r.ops / cpu),
      'ops/s': Math.round(r.ops / r.wallSeconds),
      'RSS MB (mean, max)': `${mb(mean(secondHalf.map((s) => s.rss)))}, ${mb(Math.max(...secondHalf.map((s) => s.rss)))}`,
      'heap used MB (mean, max)': `${mb(mean(secondHalf.map((s) => s.heapUsed)))}, ${mb(Math.max(...secondHalf.map((s) => s.heapUsed)))}`,
      'heap total MB (max)': mb(Math.max(...secondHalf.map((s) => s.heapTotal))),
      'external MB (max)': mb(Math.max(...secondHalf.map((s) => s.external))),
      'RSS MB at end': mb(atEnd.rss),
      [`RSS MB after ${idleMs / 1000} s idle`]: mb(afterIdle.rss),
    };
  } finally {
    await tessera.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows: Array<Record<string, string | number>> = [];
for (let round = 0; round < Number(values.rounds); round++) {
  for (const config of round % 2 ? [...configs].reverse() : configs) {
    log(`${scenarioName}, ${config.label} (${[...config.flags, ...Object.entries(config.env).map(([k, v]) => `${k}=${v}`)].join(' ') || "npm start's flags"})`);
    const row = await measure(config);
    rows.push(row);
    log(JSON.stringify(row));
  }
}
const columns = Object.keys(rows[0]!);
console.log(`\n${scenarioName}, ${values.duration} s at concurrency ${concurrency}\n\n| ${columns.join(' | ')} |\n|${columns.map(() => '---').join('|')}|`);
for (const row of rows) console.log(`| ${columns.map((c) => row[c]).join(' | ')} |`);
