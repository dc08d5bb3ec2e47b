/**
 * Benchmarks of the hot OIDC endpoints, in one process (server and load generator share the CPU
 * budget, so the figures are conservative). Reports ops per CPU second of the whole process and
 * latency percentiles, and writes bench/results/<timestamp>.json.
 *
 *   npm run bench                                   # embedded PGlite
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench
 *
 * BENCH_REQUESTS (default 400 per scenario) and BENCH_CONCURRENCY (default 8) bound the run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as oidc from 'openid-client';
import { adminApi, createTenant, startTestApp, webClient } from '../test/helpers/app.ts';
import { Browser, enterCredentials } from '../test/helpers/browser.ts';
import { discover, signIn } from '../test/helpers/oidc.ts';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 400);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const DEADLINE_MS = 60_000;

interface Result {
  scenario: string;
  requests: number;
  ops_per_cpu_second: number;
  ops_per_wall_second: number;
  p50_ms: number;
  p99_ms: number;
}

async function measure(scenario: string, op: () => Promise<unknown>): Promise<Result> {
  for (let i = 0; i < 20; i++) await op(); // warm-up: JIT, caches, connection pool
  const latencies: number[] = [];
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  let issued = 0;
  const worker = async () => {
    while (issued < REQUESTS && performance.now() - wall0 < DEADLINE_MS) {
      issued++;
      const t0 = performance.now();
      await op();
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const wall = (performance.now() - wall0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;
  return {
    scenario,
    requests: latencies.length,
    ops_per_cpu_second: Math.round(latencies.length / cpuSeconds),
    ops_per_wall_second: Math.round(latencies.length / wall),
    p50_ms: Number(pct(50).toFixed(1)),
    p99_ms: Number(pct(99).toFixed(1)),
  };
}

// Production cache settings (tests use 0 so every change is seen at once).
const t = await startTestApp({ env: { TENANT_CACHE_TTL_MS: '1000' } });
try {
  const tenant = await createTenant(t);
  const machine = (await adminApi(t, tenant, 'POST', '/clients', { name: 'bench', grant_types: ['client_credentials'], scopes: ['admin'] })).body;
  const web = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
  const machineConfig = await discover(tenant, machine);
  const { tokens, config } = await signIn(t, tenant, web);
  // Org-scoped sign-ins for the refresh scenario: one refresh-token chain per worker.
  const org = (await adminApi(t, tenant, 'POST', '/organizations', { name: 'Bench Org' })).body;
  const adminId = (await adminApi(t, tenant, 'GET', `/users?email=${encodeURIComponent(tenant.adminEmail)}`)).body.data[0].id;
  await adminApi(t, tenant, 'POST', `/organizations/${org.id}/members`, { user_id: adminId, role: 'owner' });
  const chains: string[] = [];
  for (let i = 0; i < CONCURRENCY + 1; i++) {
    const s = await signIn(t, tenant, web, { scope: 'openid organizations offline_access', params: { organization: org.id } });
    chains.push(s.tokens.refresh_token!);
  }
  // The portal's members page of an organization of 60 members, signed in as its owner.
  for (let i = 0; i < 59; i++) {
    const u = (await adminApi(t, tenant, 'POST', '/users', { email: `member${i}@bench.test`, email_verified: true })).body;
    await adminApi(t, tenant, 'POST', `/organizations/${org.id}/members`, { user_id: u.id, role: 'member' });
  }
  const portalBrowser = new Browser(t.url);
  const portalStart = await portalBrowser.follow(`${t.url}/t/${tenant.slug}/portal/organizations`);
  await enterCredentials(portalBrowser, await portalStart.res.text(), portalStart.url, tenant.adminEmail, tenant.adminPassword);
  const portalCookie = await portalBrowser.jar.getCookieString(`${t.url}/t/${tenant.slug}/portal/`);
  const membersPage = `${t.url}/t/${tenant.slug}/portal/organizations/${org.id}/members`;

  const results: Result[] = [];
  results.push(await measure('client_credentials token', () => oidc.clientCredentialsGrant(machineConfig, { scope: 'admin' })));
  results.push(await measure('introspection (JWT)', () => oidc.tokenIntrospection(config, tokens.access_token)));
  results.push(await measure('userinfo (JWT)', () => oidc.fetchUserInfo(config, tokens.access_token, oidc.skipSubjectCheck)));
  results.push(
    await measure('refresh, org-scoped + organizations claim', async () => {
      const rt = chains.shift()!;
      const next = await oidc.refreshTokenGrant(config, rt);
      chains.push(next.refresh_token!);
    }),
  );
  results.push(await measure('discovery', () => fetch(`${tenant.issuer}/.well-known/openid-configuration`).then((r) => r.text())));
  results.push(await measure('Admin API GET /users (api key)', () => adminApi(t, tenant, 'GET', '/users?limit=20')));
  results.push(
    await measure('portal members page (60 members)', async () => {
      const res = await fetch(membersPage, { headers: { cookie: portalCookie } });
      await res.text();
      if (res.status !== 200) throw new Error(`portal answered ${res.status}`);
    }),
  );

  const database = t.app.connection.kind;
  console.log(`\nTessera benchmark — ${database} database, ${CONCURRENCY} concurrent, node ${process.version}\n`);
  console.table(results);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const file = new URL(`./results/${new Date().toISOString().replace(/[:.]/g, '-')}-${database}.json`, import.meta.url);
  writeFileSync(file, JSON.stringify({ database, concurrency: CONCURRENCY, node: process.version, results }, null, 2));
  console.log(`written to ${file.pathname}`);
} finally {
  await t.stop();
}
