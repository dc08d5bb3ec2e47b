import { randomBytes, randomUUID } from 'node:crypto';
import test from 'ava';
import * as oidc from 'openid-client';
import { adminApi, createTenant, freePort, startTestApp, type TestApp, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';
import { discover, signIn, startAuthorization } from '../helpers/oidc.ts';
import { SmtpSink } from '../helpers/smtp.ts';

const TOKEN = randomBytes(32).toString('hex');

/** Every series of a scrape (`name{labels}` → value); comment lines left out. */
function parse(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    series.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return series;
}

async function scrape(url: string, token: string | undefined = TOKEN) {
  const res = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  const text = await res.text();
  if (res.status !== 200) throw new Error(`scrape answered ${res.status}: ${text}`);
  return { text, series: parse(text), type: res.headers.get('content-type') ?? '' };
}

const value = (series: Map<string, number>, key: string) => series.get(key) ?? 0;

async function until(probe: () => Promise<boolean>, what: string, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('after real traffic the series move: requests by route template, tokens by grant type, sign-ins, SSO, mail, database, provider cache, event loop and GC', async (tt) => {
  const smtpPort = await freePort(); // nothing listens there until the sink starts: sends fail first
  const t = await startTestApp({ env: { METRICS_TOKEN: TOKEN, SMTP_URL: `smtp://127.0.0.1:${smtpPort}`, MAIL_RETRY_BASE_MS: '100', MAIL_POLL_MS: '100' } });
  let sink: SmtpSink | undefined;
  try {
    const metricsUrl = `${t.url}/metrics`;
    const tenant = await createTenant(t);
    const before = (await scrape(metricsUrl)).series;

    // A sign-in through the real flow, a refresh, a wrong password, client credentials, an API token.
    const client = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
    const { tokens, config } = await signIn(t, tenant, client);
    await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    const browser = new Browser(t.url);
    const { url } = await startAuthorization(tenant, client);
    const loginPage = await browser.follow(url);
    const refused = await enterCredentials(browser, await loginPage.res.text(), loginPage.url, tenant.adminEmail, 'not the password');
    tt.is(refused.res.status, 401);
    const machine = (await adminApi(t, tenant, 'POST', '/clients', { name: 'm', grant_types: ['client_credentials'], scopes: ['admin'] })).body;
    await oidc.clientCredentialsGrant(await discover(tenant, machine), { scope: 'admin' });
    const admin = (await adminApi(t, tenant, 'GET', `/users?email=${encodeURIComponent(tenant.adminEmail)}`)).body.data[0];
    tt.is((await adminApi(t, tenant, 'POST', `/users/${admin.id}/tokens`, { scopes: ['openid'], expires_in: 600 })).status, 201);

    // An SSO answer that is refused: a callback for a sign-in this connection never started.
    const org = (await adminApi(t, tenant, 'POST', '/organizations', { name: 'Globex' })).body;
    const conn = (
      await adminApi(t, tenant, 'POST', `/organizations/${org.id}/sso-connections`, {
        type: 'oidc',
        name: 'Globex IdP',
        issuer_url: 'https://idp.globex.example',
        client_id: 'c',
        client_secret: 's',
      })
    ).body;
    tt.is((await fetch(`${t.url}/t/${tenant.slug}/sso/oidc/${conn.id}/callback?code=x&state=forged`)).status, 403);

    // A mail that fails while SMTP is down (queued, retried), then goes once it is up.
    tt.is((await adminApi(t, tenant, 'POST', `/users/${admin.id}/password-reset`)).status, 202);
    await until(async () => value((await scrape(metricsUrl)).series, 'tessera_mail_send_failures_total{final="false"}') >= 1, 'a failed send');
    tt.true(value((await scrape(metricsUrl)).series, 'tessera_mail_queue_depth') >= 1, 'the pending message is in the queue depth');
    sink = await SmtpSink.start(smtpPort);
    await sink.waitFor(tenant.adminEmail, /Reset your/);
    await until(async () => value((await scrape(metricsUrl)).series, 'tessera_mail_queue_depth') === 0, 'an empty queue');

    const { series: after, text, type } = await scrape(metricsUrl);
    tt.regex(type, /^text\/plain; version=0\.0\.4/);
    const moved = (key: string) => value(after, key) - value(before, key);
    const grant = (g: string) => `tessera_tokens_issued_total{grant_type="${g}",tenant="${tenant.slug}"}`;
    tt.is(moved(grant('authorization_code')), 1);
    tt.is(moved(grant('refresh_token')), 1);
    tt.is(moved(grant('client_credentials')), 1);
    tt.is(moved(grant('urn:tessera:api_token')), 1);
    tt.is(moved('tessera_sign_ins_total{method="password",outcome="signed_in"}'), 1);
    tt.is(moved('tessera_sign_ins_total{method="password",outcome="invalid_credentials"}'), 1);
    tt.is(moved('tessera_sso_sign_ins_total{type="oidc",outcome="refused"}'), 1);
    tt.is(moved('tessera_sign_ins_total{method="sso",outcome="refused"}'), 1);
    tt.is(moved('tessera_sso_sign_ins_total{type="oidc",outcome="signed_in"}'), 0);
    tt.is(moved('tessera_mail_sent_total'), 1);
    tt.true(moved('tessera_mail_send_failures_total{final="false"}') >= 1);
    tt.is(moved('tessera_mail_send_failures_total{final="true"}'), 0);

    // Requests, by the template of the route that answered: Tessera's own and oidc-provider's.
    tt.is(moved('tessera_http_requests_total{method="POST",route="/t/:slug/token",status="200"}'), 3);
    tt.is(moved('tessera_http_requests_total{method="POST",route="/t/:slug/interaction/:uid/login",status="401"}'), 1);
    tt.is(moved('tessera_http_requests_total{method="GET",route="/t/:slug/sso/oidc/:connectionId/callback",status="403"}'), 1);
    tt.is(moved('tessera_http_requests_total{method="POST",route="/t/:slug/api/v1/admin/users/:userId/tokens",status="201"}'), 1);
    tt.is(moved('tessera_http_request_duration_seconds_count{method="POST",route="/t/:slug/token",status_class="2xx"}'), 3);
    tt.true(value(after, 'tessera_http_request_duration_seconds_bucket{le="10",method="POST",route="/t/:slug/token",status_class="2xx"}') >= 3);

    // Database, provider cache, process: the scrape-time gauges and what prom-client collects.
    tt.true(moved('tessera_db_statement_duration_seconds_count{outcome="ok"}') > 10);
    if (t.app.connection.kind === 'postgres') {
      tt.true(value(after, 'tessera_db_pool_connections') >= 1);
      tt.true(after.has('tessera_db_pool_idle_connections'));
      tt.is(value(after, 'tessera_db_pool_waiting_clients'), 0);
    }
    tt.true(value(after, 'tessera_provider_cache_misses_total') >= 1);
    tt.true(moved('tessera_provider_cache_hits_total') > 5);
    tt.is(value(after, 'tessera_provider_cache_size'), 1);
    tt.true(after.has('nodejs_eventloop_lag_seconds'));
    tt.true(after.has('nodejs_eventloop_lag_p99_seconds'));
    tt.true([...after.keys()].some((k) => k.startsWith('nodejs_gc_duration_seconds_count')));

    // Nothing a request named is a label: no ids, no secrets; the slug only as a token's tenant.
    for (const raw of [tenant.id, admin.id, org.id, conn.id, client.client_id, machine.client_id, tenant.adminEmail, 'forged']) {
      tt.false(text.includes(raw), `${raw} is in the metrics`);
    }
    tt.true(
      text
        .split('\n')
        .filter((l) => l.includes(tenant.slug))
        .every((l) => l.startsWith('tessera_tokens_issued_total{')),
    );
  } finally {
    await t.stop();
    await sink?.stop();
  }
});

test('every endpoint in the discovery document has a route template of its own', async (tt) => {
  const t = await startTestApp({ env: { METRICS_TOKEN: TOKEN } });
  try {
    const tenant = await createTenant(t);
    const discovery = await (await fetch(`${tenant.issuer}/.well-known/openid-configuration`)).json();
    const endpoints = Object.entries(discovery).filter(([k, v]) => (k.endsWith('_endpoint') || k === 'jwks_uri') && typeof v === 'string');
    tt.true(endpoints.length >= 6);
    for (const [, url] of endpoints) await fetch(url as string, { method: 'POST' });
    const routes = new Set([...(await scrape(`${t.url}/metrics`)).series.keys()].map((k) => /route="([^"]*)"/.exec(k)?.[1]).filter(Boolean));
    for (const [name, url] of endpoints) {
      const path = new URL(url as string).pathname.slice(`/t/${tenant.slug}`.length);
      tt.true(routes.has(`/t/:slug${path}`), `${name} (${path}) is labelled by its template`);
    }
  } finally {
    await t.stop();
  }
});

test('on the public port /metrics asks for the bearer token: 401 problem without it, with a wrong one, or another scheme', async (tt) => {
  const t = await startTestApp({ env: { METRICS_TOKEN: TOKEN } });
  try {
    const tries: Array<Record<string, string>> = [
      {},
      { authorization: `Bearer ${TOKEN.slice(0, -1)}x` },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: 'Bearer ' },
      { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` },
      { authorization: TOKEN },
    ];
    for (const headers of tries) {
      const res = await fetch(`${t.url}/metrics`, { headers });
      tt.is(res.status, 401, JSON.stringify(headers));
      tt.regex(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
      tt.is(res.headers.get('www-authenticate'), 'Bearer');
      const body = await res.json();
      tt.is(body.status, 401);
      tt.false(JSON.stringify(body).includes(TOKEN.slice(0, 16)));
    }
    tt.is((await fetch(`${t.url}/metrics?token=${TOKEN}`)).status, 401, 'not in the query string');
    const ok = await fetch(`${t.url}/metrics`, { headers: { authorization: `bearer ${TOKEN}` } });
    tt.is(ok.status, 200);
    tt.regex(await ok.text(), /^# HELP tessera_/m);
  } finally {
    await t.stop();
  }
});

test('with neither METRICS_TOKEN nor METRICS_PORT, /metrics is a 404', async (tt) => {
  const t = await startTestApp();
  try {
    tt.is((await fetch(`${t.url}/metrics`)).status, 404);
    tt.is((await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 404);
  } finally {
    await t.stop();
  }
});

test('METRICS_PORT serves /metrics there without a token and nothing else; the public port has no /metrics', async (tt) => {
  const port = await freePort();
  const t = await startTestApp({ env: { METRICS_PORT: String(port) } });
  try {
    const base = `http://127.0.0.1:${port}`;
    tt.is((await fetch(`${t.url}/healthz`)).status, 200);
    const { text, type } = await scrape(`${base}/metrics`, undefined);
    tt.regex(type, /^text\/plain/);
    tt.regex(text, /^tessera_http_requests_total\{/m);
    tt.true(text.includes('nodejs_eventloop_lag_seconds'));
    tt.is((await fetch(`${base}/metrics?x=1`)).status, 200);
    tt.is((await fetch(`${base}/`)).status, 404);
    tt.is((await fetch(`${base}/healthz`)).status, 404);
    tt.is((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
    tt.is((await fetch(`${t.url}/metrics`)).status, 404);
    tt.is((await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 404);
  } finally {
    await t.stop();
  }
  await tt.throwsAsync(fetch(`http://127.0.0.1:${port}/metrics`), undefined, 'the metrics port closes with the app');
});

test('METRICS_PORT with METRICS_TOKEN: the metrics port asks for the token too', async (tt) => {
  const port = await freePort();
  const t = await startTestApp({ env: { METRICS_PORT: String(port), METRICS_TOKEN: TOKEN } });
  try {
    const base = `http://127.0.0.1:${port}`;
    tt.is((await fetch(`${base}/metrics`)).status, 401);
    tt.is((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    tt.is((await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
    tt.is((await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 404, 'never on the public port');
  } finally {
    await t.stop();
  }
});

/** Requests no route knows, with names from the request: random paths, tenants, ids and methods. */
async function hostileRequests(t: TestApp, slug: string, adminKey: string, n: number) {
  const rand = () => randomBytes(6).toString('hex');
  const methods = ['GET', 'POST', 'PUT', 'DELETE', 'PROPFIND', 'PATCH'];
  for (let i = 0; i < n; i++) {
    const method = methods[Math.floor(i / 12) % methods.length]!;
    const paths = [
      `/${rand()}`,
      `/t/${rand()}/token`,
      `/t/${rand()}/${rand()}`,
      `/t/${slug}/${rand()}`,
      `/t/${slug}/${rand()}/${rand()}`,
      `/t/${slug}/auth/${rand()}`,
      `/t/${slug}/interaction/${rand()}`,
      `/t/${slug}/api/v1/admin/${rand()}`,
      `/t/${slug}/api/v1/admin/users/${randomUUID()}`,
      `/t/${slug}/portal/${rand()}`,
      `/.well-known/oauth-authorization-server/t/${rand()}`,
      `/assets/${rand()}.css`,
    ];
    const path = paths[i % paths.length]!; // 12 paths × 6 methods: every pair once in 72
    await fetch(`${t.url}${path}`, { method, headers: { authorization: `Bearer ${adminKey}` }, redirect: 'manual' });
  }
}

test('requests for random paths, tenants and ids add no series', async (tt) => {
  const t = await startTestApp({ env: { METRICS_TOKEN: TOKEN } });
  try {
    const tenant = await createTenant(t);
    const tesseraLines = async () => (await scrape(`${t.url}/metrics`)).text.split('\n').filter((l) => l.startsWith('tessera_'));
    // Each kind of request once, so the series they fall in (route `unmatched`, …) exist; and a
    // scrape, counted once it is answered.
    await hostileRequests(t, tenant.slug, tenant.adminKey, 72);
    await tesseraLines();
    const before = await tesseraLines();
    await hostileRequests(t, tenant.slug, tenant.adminKey, 200);
    const after = await tesseraLines();
    tt.is(after.length, before.length);
    const series = (lines: string[]) => lines.map((l) => l.slice(0, l.lastIndexOf(' '))).sort();
    tt.deepEqual(series(after), series(before));
    tt.true(after.some((l) => l.startsWith('tessera_http_requests_total{method="OTHER",route="unmatched",status="404"}')));
  } finally {
    await t.stop();
  }
});
