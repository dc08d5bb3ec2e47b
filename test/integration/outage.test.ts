import test, { type ExecutionContext } from 'ava';
import { decodeJwt } from 'jose';
import type pg from 'pg';
import { adminApi, createTenant, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { serverUrl } from '../helpers/database.ts';
import { clientBasic, signIn } from '../helpers/oidc.ts';
import { type AppBehindProxy, startAppBehindProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

/**
 * The database taken away under a running app: a TCP proxy sits between the app and PostgreSQL,
 * and `cut()` resets every connection and refuses new ones, as a PostgreSQL restart or a network
 * failure would. PostgreSQL only: the embedded database runs inside the process and can't be cut
 * off. Serial: each test cuts the one app's database.
 */
const onPostgres = serverUrl() ? test.serial : test.skip;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let t: TestApp;
let proxy: TcpProxy;
let direct: pg.Client;
let setup: AppBehindProxy | undefined;

test.before(async () => {
  if (!serverUrl()) return;
  // A short connection bound, so requests during the cut fail fast even when the proxy is slow to refuse.
  setup = await startAppBehindProxy({ DATABASE_CONNECT_TIMEOUT_MS: '1000' });
  ({ app: t, proxy, direct } = setup);
});

test.after.always(async () => {
  await setup?.close();
});

async function tokenRequest(tenant: TestTenant, client: { client_id: string; client_secret?: string }, params: Record<string, string>) {
  const res = await fetch(`${tenant.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: clientBasic(client) },
    body: new URLSearchParams(params).toString(),
  });
  return { res, body: (await res.json().catch(() => undefined)) as Record<string, any> | undefined };
}

/** One answer seen under load: what was asked, when, and what came back. */
interface Seen {
  kind: string;
  started: number;
  ended: number;
  status: number;
  retryAfter: string | null;
  type: string;
  body: any;
}

onPostgres(
  'under load, a database outage answers 503 with Retry-After and never 500; discovery and JWKS keep answering; service returns with the database; no token answered is lost and no refresh token is spent by a failed request',
  async (tt) => {
    const tenant = await createTenant(t);
    const web = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
    const machine = (await adminApi(t, tenant, 'POST', '/clients', { name: 'machine', grant_types: ['client_credentials'] })).body;
    const chains: string[] = [];
    for (let i = 0; i < 6; i++) chains.push((await signIn(t, tenant, web)).tokens.refresh_token!);
    const probe = (await tokenRequest(tenant, machine, { grant_type: 'client_credentials' })).body!.access_token as string;

    const seen: Seen[] = [];
    const issued: string[] = []; // every access token answered 200
    let stopping = false;
    const record = async (kind: string, call: () => Promise<Response>): Promise<{ res: Response; body: any }> => {
      const started = performance.now();
      const res = await call();
      const text = await res.text();
      let body: any = text;
      try {
        body = JSON.parse(text);
      } catch {}
      seen.push({
        kind,
        started,
        ended: performance.now(),
        status: res.status,
        retryAfter: res.headers.get('retry-after'),
        type: res.headers.get('content-type') ?? '',
        body,
      });
      return { res, body };
    };
    const loop = async (work: () => Promise<void>) => {
      while (!stopping) {
        await work();
        await sleep(20);
      }
    };
    const form = (params: Record<string, string>, client: { client_id: string; client_secret?: string } = web) => ({
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: clientBasic(client) },
      body: new URLSearchParams(params).toString(),
    });

    const workers = [
      ...[0, 1].map(() =>
        loop(async () => {
          const { res, body } = await record('client_credentials', () => fetch(`${tenant.issuer}/token`, form({ grant_type: 'client_credentials' }, machine)));
          if (res.status === 200) issued.push(body.access_token);
        }),
      ),
      ...chains.map((_, i) =>
        loop(async () => {
          const { res, body } = await record('refresh', () =>
            fetch(`${tenant.issuer}/token`, form({ grant_type: 'refresh_token', refresh_token: chains[i]! })),
          );
          if (res.status === 200) {
            chains[i] = body.refresh_token;
            issued.push(body.access_token);
          }
        }),
      ),
      loop(async () => {
        await record('introspection', () => fetch(`${tenant.issuer}/token/introspection`, form({ token: probe })));
      }),
      loop(async () => {
        await record('discovery', () => fetch(`${tenant.issuer}/.well-known/openid-configuration`));
      }),
      loop(async () => {
        await record('jwks', () => fetch(`${tenant.issuer}/jwks`));
      }),
      loop(async () => {
        await record('admin', () => fetch(`${t.url}/t/${tenant.slug}/api/v1/admin/organizations`, { headers: { authorization: `Bearer ${tenant.adminKey}` } }));
      }),
      loop(async () => {
        await record('readyz', () => fetch(`${t.url}/readyz`));
      }),
    ];

    await sleep(1500);
    const cutAt = performance.now();
    proxy.cut();
    await sleep(3000);
    const restoredAt = performance.now();
    proxy.restore();
    // Full service again: poll until every kind of request has succeeded since the database returned.
    const kinds = ['client_credentials', 'refresh', 'introspection', 'discovery', 'jwks', 'admin', 'readyz'];
    const recoveredAt = new Map<string, number>();
    while (recoveredAt.size < kinds.length && performance.now() - restoredAt < 20_000) {
      for (const s of seen) if (s.started >= restoredAt && s.status === 200 && !recoveredAt.has(s.kind)) recoveredAt.set(s.kind, s.ended);
      await sleep(20);
    }
    await sleep(500);
    stopping = true;
    await Promise.all(workers);

    const during = seen.filter((s) => s.started >= cutAt && s.ended <= restoredAt);
    const counts = (list: Seen[]) => {
      const n = new Map<string, number>();
      for (const s of list) n.set(`${s.kind} ${s.status}`, (n.get(`${s.kind} ${s.status}`) ?? 0) + 1);
      return [...n].map(([k, v]) => `${k}: ${v}`).sort();
    };
    tt.log('before the cut', counts(seen.filter((s) => s.ended < cutAt)));
    tt.log('during the cut', counts(during));
    tt.log('first success after the database returned (ms)', Object.fromEntries([...recoveredAt].map(([k, at]) => [k, Math.round(at - restoredAt)])));
    tt.log('proxy', proxy.counts, 'refunds pending', t.app.services.runtimes.refunds.size);

    tt.deepEqual(
      seen.filter((s) => s.status >= 500 && s.status !== 503),
      [],
      'no 500, before, during or after the cut',
    );
    tt.deepEqual(
      seen.filter((s) => s.status !== 200 && s.status !== 503),
      [],
      'nothing but successes and 503s: no refresh was refused, no request failed otherwise',
    );
    for (const s of seen.filter((x) => x.status === 503)) {
      tt.is(s.retryAfter, '5', `${s.kind}: Retry-After`);
      if (s.kind === 'readyz') {
        tt.like(s.body, { status: 'database unreachable' });
      } else if (s.kind === 'admin') {
        tt.true(s.type.startsWith('application/problem+json'), s.type);
        tt.like(s.body, { status: 503, code: 'service_unavailable', title: 'Service unavailable' });
      } else {
        tt.like(s.body, { error: 'temporarily_unavailable' }, `${s.kind}: ${JSON.stringify(s.body)}`);
      }
    }
    for (const kind of ['client_credentials', 'refresh', 'introspection', 'admin']) {
      tt.true(
        during.some((s) => s.kind === kind && s.status === 503),
        `${kind} met the outage`,
      );
    }
    for (const kind of ['discovery', 'jwks']) {
      const all = seen.filter((s) => s.kind === kind);
      tt.true(during.filter((s) => s.kind === kind).length >= 5, `${kind} was asked during the cut`);
      tt.true(
        all.every((s) => s.status === 200),
        `${kind} answered 200 throughout`,
      );
    }
    const readyDuring = during.filter((s) => s.kind === 'readyz');
    tt.true(readyDuring.length > 0 && readyDuring.every((s) => s.status === 503), '/readyz 503 during the cut');
    tt.deepEqual([...recoveredAt.keys()].sort(), [...kinds].sort(), 'every kind of request succeeded again');
    const slowest = Math.max(...[...recoveredAt.values()].map((at) => at - restoredAt));
    // About a second on an idle machine; the bound leaves room for a loaded test machine.
    tt.true(slowest < 5000, `full service ${Math.round(slowest)} ms after the database returned`);

    // Every access token answered 200 is stored.
    const jtis = issued.map((token) => decodeJwt(token).jti as string);
    const stored = await direct.query<{ id: string }>(
      `select id from oidc_payloads where tenant_id = $1 and model in ('AccessToken', 'ClientCredentials') and id = any($2)`,
      [tenant.id, jtis],
    );
    tt.is(stored.rowCount, new Set(jtis).size, 'every access token answered 200 has its row');
    tt.true(jtis.length > 20);
    const last = await fetch(`${tenant.issuer}/token/introspection`, form({ token: issued.at(-1)! }));
    tt.like(await last.json(), { active: true });

    // Every refresh chain continues from the last refresh token its client received.
    for (const rt of chains) {
      const { res, body } = await tokenRequest(tenant, web, { grant_type: 'refresh_token', refresh_token: rt });
      tt.is(res.status, 200, JSON.stringify(body));
    }
    tt.is(t.app.services.runtimes.refunds.size, 0, 'nothing left to give back');
  },
);

onPostgres(
  'during an outage: pages answer the 503 page, the authorization endpoint shows it instead of redirecting, a tenant not yet loaded is a 503, and readyz is 503',
  async (tt) => {
    const tenant = await createTenant(t);
    const web = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
    await fetch(`${tenant.issuer}/.well-known/openid-configuration`); // loaded before the cut
    const cold = await createTenant(t); // never asked for before the cut
    proxy.cut();
    try {
      const html = { accept: 'text/html' };
      const auth = await fetch(
        `${tenant.issuer}/auth?${new URLSearchParams({
          client_id: web.client_id,
          redirect_uri: web.redirect_uris[0],
          response_type: 'code',
          scope: 'openid',
          code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
          code_challenge_method: 'S256',
        })}`,
        { headers: html, redirect: 'manual' },
      );
      tt.is(auth.status, 503);
      tt.is(auth.headers.get('retry-after'), '5');
      tt.is(auth.headers.get('location'), null, 'no redirect to the app');
      tt.regex(auth.headers.get('content-type') ?? '', /text\/html/);
      tt.regex(await auth.text(), /Temporarily unavailable/);

      const page = await fetch(`${t.url}/t/${tenant.slug}/invitations/${'x'.repeat(43)}`, { headers: html });
      tt.is(page.status, 503);
      tt.is(page.headers.get('retry-after'), '5');
      tt.regex(page.headers.get('content-type') ?? '', /text\/html/);
      tt.regex(await page.text(), /Service unavailable/);

      const coldDiscovery = await fetch(`${cold.issuer}/.well-known/openid-configuration`);
      tt.is(coldDiscovery.status, 503);
      tt.is(coldDiscovery.headers.get('retry-after'), '5');
      tt.like(await coldDiscovery.json(), { code: 'service_unavailable', status: 503 });

      const warm = await fetch(`${t.url}/.well-known/oauth-authorization-server/t/${tenant.slug}`);
      tt.is(warm.status, 200, 'RFC 8414 metadata of a loaded tenant, from memory');

      const userinfo = await fetch(`${tenant.issuer}/me`, { headers: { authorization: 'Bearer not-a-token' } });
      tt.is(userinfo.status, 401, 'a token that is no JWT is refused without the database');

      tt.is((await fetch(`${t.url}/readyz`)).status, 503);
      tt.is((await fetch(`${t.url}/healthz`)).status, 200);
    } finally {
      proxy.restore();
    }
    let ready = 0;
    for (let i = 0; i < 100 && ready !== 200; i++) {
      ready = (await fetch(`${t.url}/readyz`)).status;
      if (ready !== 200) await sleep(50);
    }
    tt.is(ready, 200);
    tt.is((await fetch(`${cold.issuer}/.well-known/openid-configuration`)).status, 200);
  },
);

onPostgres(
  'a refresh whose tokens meet an unavailable database answers 503 temporarily_unavailable, hands out nothing, and leaves its refresh token usable',
  async (tt) => {
    const tenant = await createTenant(t);
    const web = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
    const { tokens } = await signIn(t, tenant, web);
    // The saves fail as if the server were shutting down (57P01), after the old token was spent.
    await direct.query(`
    create or replace function test_shutting_down() returns trigger language plpgsql as $$
    begin
      if new.model = 'RefreshToken' and new.tenant_id = '${tenant.id}' then
        raise exception 'terminating connection due to administrator command' using errcode = '57P01';
      end if;
      return new;
    end $$`);
    await direct.query('create trigger test_shutting_down before insert on oidc_payloads for each row execute function test_shutting_down()');
    let answer: Awaited<ReturnType<typeof tokenRequest>>;
    try {
      answer = await tokenRequest(tenant, web, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! });
    } finally {
      await direct.query('drop trigger test_shutting_down on oidc_payloads');
    }
    tt.is(answer.res.status, 503);
    tt.is(answer.res.headers.get('retry-after'), '5');
    tt.is(answer.res.headers.get('cache-control'), 'no-store');
    tt.deepEqual(Object.keys(answer.body!).sort(), ['error', 'error_description']);
    tt.is(answer.body!.error, 'temporarily_unavailable');
    // Given back: the same refresh token works, once.
    const again = await tokenRequest(tenant, web, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! });
    tt.is(again.res.status, 200, JSON.stringify(again.body));
    const replay = await tokenRequest(tenant, web, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! });
    tt.is(replay.res.status, 400, 'spent by the request that succeeded: a replay is refused as always');
    tt.is(replay.body!.error, 'invalid_grant');
  },
);

/**
 * A refresh whose commit is lost with the connection: the new tokens' statement takes a while on
 * the server (a trigger sleeps) and the proxy cuts the connection meanwhile. The server commits it
 * all the same — the old token spent, the new ones stored — and the answer is lost. `whileCut`
 * runs before the database comes back. Returns the first answer and what the test needs after.
 */
async function refreshWithLostCommit(
  tt: ExecutionContext,
  whileCut: (rt: string, grantId: string, tenant: TestTenant, web: { client_id: string; client_secret?: string }) => Promise<void>,
) {
  const tenant = await createTenant(t);
  const web = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
  const { tokens } = await signIn(t, tenant, web);
  const rt = tokens.refresh_token!;
  const grantId = await grantOf(tenant, rt);
  await direct.query(`
    create or replace function test_slow_saves() returns trigger language plpgsql as $$
    begin
      if new.model = 'RefreshToken' and new.tenant_id = '${tenant.id}' then perform pg_sleep(0.6); end if;
      return new;
    end $$`);
  await direct.query('create trigger test_slow_saves before insert on oidc_payloads for each row execute function test_slow_saves()');
  let answer: Awaited<ReturnType<typeof tokenRequest>>;
  try {
    const pending = tokenRequest(tenant, web, { grant_type: 'refresh_token', refresh_token: rt });
    await sleep(300);
    proxy.cut();
    answer = await pending;
    await sleep(700); // the server finishes the statement and commits
    const old = await direct.query(`select 1 from oidc_payloads where tenant_id = $1 and model = 'RefreshToken' and id = $2 and consumed_at is not null`, [
      tenant.id,
      rt,
    ]);
    tt.is(old.rowCount, 1, 'the old refresh token was spent');
    await whileCut(rt, grantId, tenant, web);
  } finally {
    proxy.restore();
    await direct.query('drop trigger test_slow_saves on oidc_payloads');
  }
  tt.is(answer.res.status, 503);
  tt.is(answer.body!.error, 'temporarily_unavailable');
  tt.is(answer.body!.refresh_token, undefined);
  return { tenant, web, rt, grantId };
}

async function grantOf(tenant: TestTenant, refreshToken: string) {
  const { rows } = await direct.query<{ grant_id: string }>(`select grant_id from oidc_payloads where tenant_id = $1 and model = 'RefreshToken' and id = $2`, [
    tenant.id,
    refreshToken,
  ]);
  return rows[0]!.grant_id;
}

async function unspentRefreshTokens(tenant: TestTenant, grantId: string): Promise<string[]> {
  const { rows } = await direct.query<{ id: string }>(
    `select id from oidc_payloads where tenant_id = $1 and model = 'RefreshToken' and grant_id = $2 and consumed_at is null`,
    [tenant.id, grantId],
  );
  return rows.map((r) => r.id);
}

async function refundsSettled() {
  for (let i = 0; i < 50 && t.app.services.runtimes.refunds.size > 0; i++) await sleep(100);
  return t.app.services.runtimes.refunds.size;
}

onPostgres(
  'a refresh whose commit is lost with the connection: 503, and its refresh token is given back when the database returns, before it is used again',
  async (tt) => {
    const { tenant, web, rt, grantId } = await refreshWithLostCommit(tt, async (rt, grantId, tenant, web) => {
      // In one round trip (DATABASE_ONE_SHOT, the default) the server commits what it received; as
      // an ordinary transaction the COMMIT never arrives and the saves are rolled back.
      tt.is((await unspentRefreshTokens(tenant, grantId)).length, t.app.config.databaseOneShot ? 1 : 0, 'the new one, never handed out, stored or not');
      const during = await tokenRequest(tenant, web, { grant_type: 'refresh_token', refresh_token: rt });
      tt.is(during.res.status, 503, 'still cut: tried again, not refused');
    });
    // The client tries again with the only refresh token it has.
    const again = await tokenRequest(tenant, web, { grant_type: 'refresh_token', refresh_token: rt });
    tt.is(again.res.status, 200, JSON.stringify(again.body));
    const next = await tokenRequest(tenant, web, { grant_type: 'refresh_token', refresh_token: again.body!.refresh_token });
    tt.is(next.res.status, 200, 'the chain goes on');
    // The refresh token made for the lost answer went with the refund: the grant's one unspent
    // refresh token is the latest.
    tt.is(await grantOf(tenant, next.body!.refresh_token), grantId);
    tt.deepEqual(await unspentRefreshTokens(tenant, grantId), [next.body!.refresh_token]);
    tt.is(t.app.services.runtimes.refunds.size, 0);
  },
);

onPostgres(
  'a replacement never handed out but used all the same (read off the database): the old refresh token is not given back, so a grant never has two chains',
  async (tt) => {
    if (!t.app.config.databaseOneShot) return tt.pass('as an ordinary transaction the replacement is rolled back: nothing to use');
    let replacement = '';
    const { tenant, web, rt, grantId } = await refreshWithLostCommit(tt, async (_rt, grantId, tenant) => {
      [replacement = ''] = await unspentRefreshTokens(tenant, grantId);
      tt.truthy(replacement, 'the replacement was stored');
      // Someone who read it off the wire spends it before the give-back lands.
      await direct.query(`update oidc_payloads set consumed_at = now() where tenant_id = $1 and model = 'RefreshToken' and id = $2`, [tenant.id, replacement]);
    });
    tt.is(await refundsSettled(), 0, 'the give-back ran');
    const spent = await direct.query(`select 1 from oidc_payloads where tenant_id = $1 and model = 'RefreshToken' and id = $2 and consumed_at is not null`, [
      tenant.id,
      rt,
    ]);
    tt.is(spent.rowCount, 1, 'the old refresh token stays spent');
    tt.is(await grantOf(tenant, replacement), grantId, 'the used replacement was not deleted');
    const retry = await tokenRequest(tenant, web, { grant_type: 'refresh_token', refresh_token: rt });
    tt.is(retry.res.status, 400);
    tt.is(retry.body!.error, 'invalid_grant');
  },
);
