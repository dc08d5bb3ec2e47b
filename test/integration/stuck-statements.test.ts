import test from 'ava';
import type pg from 'pg';
import { adminApi, createTenant, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { serverUrl } from '../helpers/database.ts';
import { clientBasic, signIn } from '../helpers/oidc.ts';
import { type AppBehindProxy, startAppBehindProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

/**
 * A database that is there but does not answer: a row lock a forgotten transaction holds, and a
 * network that drops packets instead of refusing them. Either way a request must end in a 503
 * within DATABASE_STATEMENT_TIMEOUT_MS (and its margin), not wait with the statement. PostgreSQL
 * only; serial, since one test freezes the app's database.
 */
const onPostgres = serverUrl() ? test.serial : test.skip;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Longer than any bound the app has here: a request still unanswered then hangs, and fails the test. */
const HANG = 20_000;

let t: TestApp;
let proxy: TcpProxy;
let direct: pg.Client;
let setup: AppBehindProxy | undefined;

test.before(async () => {
  if (!serverUrl()) return;
  setup = await startAppBehindProxy({ DATABASE_CONNECT_TIMEOUT_MS: '1000', DATABASE_STATEMENT_TIMEOUT_MS: '1000' });
  ({ app: t, proxy, direct } = setup);
});

test.after.always(async () => {
  await setup?.close();
});

async function refresh(tenant: TestTenant, client: { client_id: string; client_secret?: string }, refreshToken: string) {
  const res = await fetch(`${tenant.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: clientBasic(client) },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }).toString(),
    signal: AbortSignal.timeout(HANG),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Record<string, any> };
}

onPostgres(
  'a statement waiting on a lock held elsewhere ends in 503 with Retry-After; the refresh token is not spent and works once the lock is gone',
  async (tt) => {
    const tenant = await createTenant(t);
    const web = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
    const { tokens } = await signIn(t, tenant, web);
    const rt = tokens.refresh_token!;
    // An operator's forgotten transaction holds the refresh token's row.
    await direct.query('begin');
    await direct.query(`select 1 from oidc_payloads where tenant_id = $1 and model = 'RefreshToken' and id = $2 for update`, [tenant.id, rt]);
    try {
      const stuck = await refresh(tenant, web, rt);
      tt.is(stuck.status, 503, JSON.stringify(stuck.body));
      tt.is(stuck.body.error, 'temporarily_unavailable');
      tt.truthy(stuck.retryAfter);
    } finally {
      await direct.query('rollback');
    }
    const after = await refresh(tenant, web, rt);
    tt.is(after.status, 200, 'the canceled statement spent nothing');
    tt.truthy(after.body.refresh_token);
  },
);

onPostgres(
  'a network that drops packets: requests that need the database end in 503, discovery and JWKS still answer, and service returns with the network',
  async (tt) => {
    const tenant = await createTenant(t);
    const web = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
    const { tokens } = await signIn(t, tenant, web);
    const get = (path: string) => fetch(`${t.url}${path}`, { headers: { authorization: `Bearer ${tenant.adminKey}` }, signal: AbortSignal.timeout(HANG) });

    proxy.freeze();
    try {
      // Pooled connections whose statements go unanswered, and new ones that never open.
      const [token, users, ready] = await Promise.all([
        refresh(tenant, web, tokens.refresh_token!),
        get(`/t/${tenant.slug}/api/v1/admin/users`),
        get('/readyz'),
      ]);
      tt.is(token.status, 503, JSON.stringify(token.body));
      tt.is(token.body.error, 'temporarily_unavailable');
      tt.is(users.status, 503);
      tt.is(((await users.json()) as { code: string }).code, 'service_unavailable');
      tt.truthy(users.headers.get('retry-after'));
      tt.is(ready.status, 503);
      for (const path of [`/t/${tenant.slug}/.well-known/openid-configuration`, `/t/${tenant.slug}/jwks`]) {
        tt.is((await get(path)).status, 200, `${path} from memory`);
      }
    } finally {
      proxy.restore();
    }
    // Connections given up are replaced by new ones, which now reach the database.
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await get(`/t/${tenant.slug}/api/v1/admin/users`)).status;
      if (status !== 200) await sleep(200);
    }
    tt.is(status, 200, 'service is back');
    const again = await refresh(tenant, web, tokens.refresh_token!);
    tt.is(again.status, 200, JSON.stringify(again.body));
  },
);
