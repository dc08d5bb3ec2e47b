import { gzipSync } from 'node:zlib';
import test from 'ava';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials, formAction } from '../helpers/browser.ts';
import { cursorOf, deepArray, deepObject, toJson } from '../helpers/hostile.ts';
import { authorizationUrl, discover, type RegisteredClient, signIn } from '../helpers/oidc.ts';
import { linkIn, SmtpSink } from '../helpers/smtp.ts';

/**
 * What the generated test (fuzz-inputs) only bounds below 500, answered exactly: text PostgreSQL
 * can't store, deep nesting, forged cursors, a null slug, bogus Content-Encoding — each a 4xx that
 * names the problem, in the form its caller reads (problem, page or OAuth error).
 */

let smtp: SmtpSink;
let t: TestApp;
let tenant: TestTenant;
let client: RegisteredClient & { client_secret: string };
let orgId: string;
const PASSWORD = 'steady copper 81 lantern';

test.before(async () => {
  smtp = await SmtpSink.start();
  t = await startTestApp({ env: { SMTP_URL: smtp.url, MAIL_POLL_MS: '100' } });
  tenant = await createTenant(t);
  await adminApi(t, tenant, 'PATCH', '/settings', { registration_enabled: true });
  await adminApi(t, tenant, 'POST', '/users', { email: 'ada@bad.test', password: PASSWORD, email_verified: true });
  client = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
  orgId = (await adminApi(t, tenant, 'POST', '/organizations', { name: 'Acme', slug: 'acme' })).body.id;
});
test.after.always(async () => {
  await t?.stop();
  await smtp?.stop();
});

const api = (method: string, path: string, body?: unknown) =>
  adminApi(t, tenant, method, path, body === undefined || typeof body === 'string' ? body : toJson(body));
const page = (path: string) => `${t.url}/t/${tenant.slug}${path}`;
const count = async (path: string) => (await api('GET', path)).body.data.length as number;
// Tests of a file run at once: counts are of what a test made, found by name.

test('text with NUL or a lone surrogate is a 400 naming the field, in bodies, keys and filters, and nothing is stored', async (tt) => {
  const cases: Array<[method: string, path: string, body: unknown, field: string, message: RegExp]> = [
    ['POST', '/organizations', { name: 'Ac\u0000me' }, 'name', /NUL character \(U\+0000\)/],
    ['POST', '/organizations', { name: 'Acme 2', metadata: { plan: 'pro\u0000' } }, 'metadata.plan', /NUL/],
    ['POST', '/organizations', { name: 'Acme 2', metadata: { 'pl\u0000an': 'pro' } }, 'metadata', /field names must not contain the NUL/],
    ['POST', '/organizations', { name: 'Acme 2', metadata: { plan: 'a\ud800' } }, 'metadata.plan', /unpaired UTF-16 surrogate/],
    ['POST', '/users', { email: 'new@bad.test', name: 'N\u0000' }, 'name', /NUL/],
    // Accepted before, and stored as U+FFFD: what came in is not what is kept.
    ['POST', '/users', { email: 'new@bad.test', name: 'N\udc00' }, 'name', /surrogate/],
    ['PATCH', '/settings', { mail_from_name: 'Acme\u0000' }, 'mail_from_name', /NUL/],
    ['GET', '/users?q=%00', undefined, 'q', /NUL/],
    ['GET', '/users?email=a%00@b.test', undefined, 'email', /NUL/],
    ['GET', '/organizations?q=x%00', undefined, 'q', /NUL/],
  ];
  for (const [method, path, body, field, message] of cases) {
    const res = await api(method, path, body);
    tt.is(res.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${res.text}`);
    tt.is(res.type, 'application/problem+json');
    tt.deepEqual(
      res.body.errors?.map((e: { field: string }) => e.field),
      [field],
    );
    tt.regex(res.body.detail, message);
  }
  tt.is(await count('/organizations?q=acme 2'), 0);
  tt.is(await count('/users?q=new'), 0);
  tt.is((await api('GET', '/settings')).body.mail_from_name, null);
});

test('a path holding NUL names nothing: 404', async (tt) => {
  for (const path of ['/clients/a%00b', `/organizations/${orgId}/members/%00`]) {
    const res = await api('GET', path);
    tt.is(res.status, 404, path);
    tt.is(res.type, 'application/problem+json');
  }
});

test('metadata nests at most 32 levels (422 naming it); any JSON body at most 64 (400), even 5,000 deep', async (tt) => {
  const nested = (depth: number) => toJson({ name: `Deep ${depth}`, metadata: { a: deepObject(depth - 1) } });
  tt.is((await api('POST', '/organizations', nested(32))).status, 201);
  const tooDeep = await api('POST', '/organizations', nested(33));
  tt.is(tooDeep.status, 422);
  tt.deepEqual(tooDeep.body.errors, [{ field: 'metadata', message: 'must nest at most 32 levels deep' }]);
  for (const deep of [deepObject(5000), deepArray(5000)]) {
    const res = await api('POST', '/organizations', toJson({ name: 'Deeper', metadata: { a: deep } }));
    tt.is(res.status, 400);
    tt.regex(res.body.detail, /nests more than 64 levels deep/);
    tt.regex(res.body.errors[0].field, /^metadata\.a\./);
  }
  tt.is((await api('PATCH', `/organizations/${orgId}`, toJson({ metadata: { a: deepArray(40) } }))).status, 422);
  tt.is((await api('POST', '/users', toJson({ email: 'deep@bad.test', name: deepArray(5000) }))).status, 400);
});

test('a forged cursor — a date PostgreSQL cannot store, or not a UUID — is a 400 naming cursor', async (tt) => {
  const forged = [
    cursorOf(['-100000-01-01T00:00:00.000Z', '0b6c9f5e-2d1a-4c3b-9e8f-7a6b5c4d3e2f']),
    cursorOf(['+275760-09-13T00:00:00.000Z', '0b6c9f5e-2d1a-4c3b-9e8f-7a6b5c4d3e2f']),
    cursorOf([0, '0b6c9f5e-2d1a-4c3b-9e8f-7a6b5c4d3e2f']),
    cursorOf(['2026-01-01T00:00:00.000Z', 'x']),
  ];
  for (const cursor of forged) {
    for (const path of ['/users', '/organizations', '/clients', `/organizations/${orgId}/members`, `/organizations/${orgId}/audit-log`, '/mail']) {
      const res = await api('GET', `${path}?cursor=${cursor}`);
      tt.is(res.status, 400, `${path} ${res.text}`);
      tt.deepEqual(
        res.body.errors?.map((e: { field: string }) => e.field),
        ['cursor'],
      );
    }
  }
});

test('PATCH with "slug": null is a 422 naming slug (a slug changes but is never removed); PUT regenerates it', async (tt) => {
  const res = await api('PATCH', `/organizations/${orgId}`, { slug: null });
  tt.is(res.status, 422);
  tt.deepEqual(res.body.errors, [{ field: 'slug', message: 'every organization has a slug: it can be changed but not removed' }]);
  for (const field of ['name', 'status', 'metadata', 'max_members', 'sso_required']) {
    const r = await api('PATCH', `/organizations/${orgId}`, { [field]: null });
    tt.is(r.status, 422, field);
    tt.is(r.body.errors[0].field, field);
  }
  tt.is((await api('GET', `/organizations/${orgId}`)).body.slug, 'acme');
  const put = await api('PUT', `/organizations/${orgId}`, { name: 'Acme', slug: null });
  tt.is(put.status, 200);
  tt.is(put.body.slug, 'acme');
});

test('the portal settings form with an empty slug says a slug is needed and keeps the slug', async (tt) => {
  const browser = new Browser(t.url);
  const first = await browser.follow(page('/portal/organizations'));
  await enterCredentials(browser, await first.res.text(), first.url, tenant.adminEmail, tenant.adminPassword);
  const settings = await browser.follow(page(`/portal/organizations/${orgId}/settings`));
  const html = await settings.res.text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(html)![1]!;
  const saved = await browser.submit(page(`/portal/organizations/${orgId}/settings`), { _csrf: csrf, name: 'Acme', slug: '' });
  tt.is(saved.res.status, 422);
  tt.regex(await saved.res.text(), /Every organization has a slug: it can be changed but not removed\./);
  tt.is((await api('GET', `/organizations/${orgId}`)).body.slug, 'acme');
  // NUL in a portal form: a 400 page that says what is wrong.
  const nul = await browser.submit(page(`/portal/organizations/${orgId}/settings`), { _csrf: csrf, name: 'Ac\u0000me', slug: 'acme' });
  tt.is(nul.res.status, 400);
  tt.regex(await nul.res.text(), /name must not contain the NUL character/);
});

test('the sign-in, identify, register, forgot-password, resend and invitation forms answer NUL with a 400 page', async (tt) => {
  const browser = new Browser(t.url);
  const start = await browser.follow(await authorizationUrl(await discover(tenant, client), client));
  const interaction = start.url;
  const nulEmail = 'a\u0000b@nul\u0000.bad.test';
  const forms: Array<[url: string, fields: Record<string, string>]> = [
    [`${interaction}/identify`, { email: nulEmail }],
    [`${interaction}/login`, { email: nulEmail, password: PASSWORD }],
    [`${interaction}/register`, { name: 'Nul', email: nulEmail, password: PASSWORD }],
    [`${interaction}/register`, { name: 'N\u0000l', email: 'nul@bad.test', password: PASSWORD }],
    [page('/account/forgot-password'), { email: nulEmail }],
    [page('/account/verify-email/resend'), { email: nulEmail }],
  ];
  await api('POST', `/organizations/${orgId}/invitations`, { email: 'invitee@bad.test' });
  const invitation = linkIn(await smtp.waitFor('invitee@bad.test', /invited/i), '/invitations/');
  forms.push([invitation, { mode: 'register', name: 'In\u0000vitee', password: PASSWORD }]);
  for (const [url, fields] of forms) {
    const res = await browser.submit(url, fields, { accept: 'text/html,application/xhtml+xml' });
    tt.is(res.res.status, 400, url);
    tt.regex(res.res.headers.get('content-type') ?? '', /html/);
    tt.regex(await res.res.text(), /must not contain the NUL character \(U\+0000\)/, url);
  }
  tt.is(await count('/users?q=nul'), 0);
  const invited = (await api('GET', `/organizations/${orgId}/invitations`)).body.data.find((i: { email: string }) => i.email === 'invitee@bad.test');
  tt.is(invited.status, 'pending');
});

test('two registrations through one invitation link at once: one joins, the other is told the address is taken', async (tt) => {
  await api('POST', `/organizations/${orgId}/invitations`, { email: 'racer@bad.test' });
  const link = linkIn(await smtp.waitFor('racer@bad.test', /invited/i), '/invitations/');
  const browser = new Browser(t.url);
  const action = formAction(await (await browser.follow(link)).res.text());
  const answers = await Promise.all(
    Array.from({ length: 4 }, () => browser.submit(new URL(action, link).href, { mode: 'register', name: 'Racer', password: PASSWORD })),
  );
  const statuses = answers.map((a) => a.res.status).sort();
  tt.is(statuses.filter((s) => s === 200).length, 1, `statuses ${statuses}`);
  tt.true(
    statuses.every((s) => s === 200 || s === 409),
    `statuses ${statuses}`,
  );
  tt.is((await api('GET', '/users?email=racer@bad.test')).body.data.length, 1);
});

test('the authorization endpoint sends NUL in any parameter back to the app as invalid_request', async (tt) => {
  const config = await discover(tenant, client);
  for (const param of ['organization', 'state', 'login_hint', 'nonce', 'ui_locales']) {
    const url = new URL(await authorizationUrl(config, client, { [param]: 'a\u0000b' }));
    const res = await fetch(url, { redirect: 'manual' });
    tt.is(res.status, 303, param);
    const back = new URL(res.headers.get('location')!);
    tt.is(`${back.origin}${back.pathname}`, client.redirect_uris[0]!);
    tt.is(back.searchParams.get('error'), 'invalid_request', param);
    tt.regex(back.searchParams.get('error_description')!, new RegExp(`^${param} must not contain the NUL character`));
  }
  // A client id no client can have: the provider's own error page, as for any unknown client.
  const unknown = await fetch(await authorizationUrl(config, client, { client_id: 'a\u0000b' }), { redirect: 'manual' });
  tt.is(unknown.status, 400);
});

test('the token, introspection, revocation and logout endpoints answer NUL with invalid_request', async (tt) => {
  const { tokens } = await signIn(t, tenant, client, { email: 'ada@bad.test', password: PASSWORD, scope: 'openid offline_access' });
  const basic = `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`;
  const post = (path: string, params: Record<string, string>) =>
    fetch(`${tenant.issuer}${path}`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params),
    });
  const cases: Array<[string, Record<string, string>, string]> = [
    ['/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, organization: 'a\u0000b' }, 'organization'],
    ['/token', { grant_type: 'refresh_token', refresh_token: 'a\u0000b' }, 'refresh_token'],
    ['/token', { grant_type: 'authorization_code', code: 'a\u0000b', redirect_uri: client.redirect_uris[0]!, code_verifier: 'v'.repeat(43) }, 'code'],
    ['/token/introspection', { token: 'a\u0000b' }, 'token'],
    ['/token/revocation', { token: 'a\u0000b' }, 'token'],
  ];
  for (const [path, params, field] of cases) {
    const res = await post(path, params);
    tt.is(res.status, 400, path);
    tt.deepEqual(await res.json(), { error: 'invalid_request', error_description: `${field} must not contain the NUL character (U+0000)` });
  }
  // The refresh token was not spent by the refused switch.
  tt.is((await post('/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! })).status, 200);
  const logout = await fetch(`${tenant.issuer}/session/end?${new URLSearchParams({ client_id: client.client_id, state: 'a\u0000b' })}`, { redirect: 'manual' });
  tt.is(logout.status, 400);
  tt.is((await logout.json()).error, 'invalid_request');
});

test('a body that is not what its Content-Encoding says is a 400, an unknown encoding a 415; gzip works', async (tt) => {
  const send = (encoding: string, body: string | Buffer) =>
    fetch(`${t.url}/t/${tenant.slug}/api/v1/admin/organizations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenant.adminKey}`, 'content-type': 'application/json', 'content-encoding': encoding },
      body: typeof body === 'string' ? body : new Uint8Array(body),
    });
  for (const encoding of ['gzip', 'deflate', 'br']) {
    const res = await send(encoding, '{"name":"Not compressed"}');
    tt.is(res.status, 400, encoding);
    tt.regex((await res.json()).detail, new RegExp(`could not be decompressed: it is not ${encoding} data`));
  }
  const truncated = await send('gzip', gzipSync('{"name":"Cut short"}').subarray(0, 12));
  tt.is(truncated.status, 400);
  for (const encoding of ['x-unknown', 'gzip, gzip', 'GZIP']) {
    const res = await send(encoding, '{"name":"Unknown"}');
    tt.is(res.status, 415, encoding);
    tt.regex((await res.json()).detail, /is not supported: send the body uncompressed, or with gzip, deflate or br/);
  }
  for (const q of ['not compressed', 'cut short', 'unknown']) tt.is(await count(`/organizations?q=${encodeURIComponent(q)}`), 0, q);
  tt.is((await send('gzip', gzipSync('{"name":"Compressed"}'))).status, 201);

  const form = await fetch(page('/account/forgot-password'), {
    method: 'POST',
    headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip', origin: t.url },
    body: 'email=a%40b.test',
  });
  tt.is(form.status, 400);
  tt.regex(await form.text(), /could not be decompressed/);
  const token = await fetch(`${tenant.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' },
    body: 'grant_type=client_credentials',
  });
  tt.is(token.status, 415);
  tt.deepEqual(await token.json(), { error: 'invalid_request', error_description: 'Content-Encoding gzip is not supported here: send the body uncompressed' });
});
