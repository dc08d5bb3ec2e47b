import test from 'ava';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, formAction, linkTo } from '../helpers/browser.ts';
import { authorizationUrl, discover, type RegisteredClient, signIn } from '../helpers/oidc.ts';
import { linkIn, SmtpSink } from '../helpers/smtp.ts';

let smtp: SmtpSink;
let t: TestApp;
let tenant: TestTenant;
let client: RegisteredClient;

test.before(async () => {
  smtp = await SmtpSink.start();
  t = await startTestApp({ env: { SMTP_URL: smtp.url, TRUST_PROXY: 'true', MAIL_POLL_MS: '200' } });
  tenant = await createTenant(t);
  client = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
  const s = await adminApi(t, tenant, 'PATCH', '/settings', { registration_enabled: true });
  if (s.status !== 200) throw new Error(s.text);
});
test.after.always(async () => {
  await t?.stop();
  await smtp?.stop();
});

async function loginPage(browser: Browser, ip?: string) {
  const config = await discover(tenant, client);
  const page = await browser.follow(await authorizationUrl(config, client), ip ? { headers: { 'x-forwarded-for': ip } } : {});
  return { url: page.url, html: await page.res.text() };
}

test('register → verify by the mailed link → sign in; unverified accounts cannot sign in meanwhile', async (tt) => {
  const browser = new Browser(t.url);
  const login = await loginPage(browser);
  const registerUrl = new URL(linkTo(login.html, /Create an account/), login.url).href;
  const form = await browser.follow(registerUrl);
  const done = await browser.submit(formAction(await form.res.text()), { name: 'Grace Hopper', email: 'grace@navy.test', password: 'cobol is forever 1959' });
  tt.is(done.res.status, 200);
  tt.regex(await done.res.text(), /Check your inbox/);

  const mail = await smtp.waitFor('grace@navy.test', /Confirm your email/);
  tt.regex(String(mail.from?.text), new RegExp(`Tenant ${tenant.slug}`));
  tt.truthy(mail.html);
  const link = linkIn(mail, '/account/verify-email/');

  // Before the link is followed: the right password gets "confirm your email first" (and a fresh link).
  await tt.throwsAsync(signIn(t, tenant, client, { email: 'grace@navy.test', password: 'cobol is forever 1959' }), { message: /Confirm your email first/ });

  const verified = await fetch(link);
  tt.is(verified.status, 200);
  tt.regex(await verified.text(), /Email confirmed/);
  const again = await fetch(link);
  tt.is(again.status, 410);
  tt.regex(await again.text(), /no longer works/);

  const { tokens } = await signIn(t, tenant, client, { email: 'grace@navy.test', password: 'cobol is forever 1959' });
  tt.is(tokens.claims()!.email, 'grace@navy.test');
  tt.true(tokens.claims()!.email_verified);
  tt.is(tokens.claims()!.name, 'Grace Hopper');
});

test('registering an email that has an account answers the same and mails the owner instead', async (tt) => {
  const browser = new Browser(t.url);
  const login = await loginPage(browser);
  const form = await browser.follow(new URL(linkTo(login.html, /Create an account/), login.url).href);
  const res = await browser.submit(formAction(await form.res.text()), { name: 'Impostor', email: tenant.adminEmail, password: 'another fine password' });
  tt.is(res.res.status, 200);
  tt.regex(await res.res.text(), /Check your inbox/);
  const mail = await smtp.waitFor(tenant.adminEmail, /already have/);
  tt.regex(mail.text!, /forgot-password/);
  const users = await adminApi(t, tenant, 'GET', `/users?email=${encodeURIComponent(tenant.adminEmail)}`);
  tt.is(users.body.data.length, 1);
  tt.is(users.body.data[0].name, 'Administrator');
});

test('weak or common passwords are refused with a clear message; registration can be switched off', async (tt) => {
  const browser = new Browser(t.url);
  const login = await loginPage(browser);
  const formUrl = new URL(linkTo(login.html, /Create an account/), login.url).href;
  const form = await browser.follow(formUrl);
  const action = formAction(await form.res.text());
  for (const [password, message] of [
    ['short', /at least 8 characters/],
    ['password1', /most common passwords/],
    ['Qwerty123', /most common passwords/],
  ] as const) {
    const res = await browser.submit(action, { name: 'X', email: 'weak@x.test', password });
    tt.is(res.res.status, 400);
    tt.regex(await res.res.text(), message);
  }
  tt.is((await adminApi(t, tenant, 'GET', '/users?email=weak@x.test')).body.data.length, 0);

  const other = await createTenant(t); // registration is off by default
  const c = (await adminApi(t, other, 'POST', '/clients', webClient())).body;
  const b2 = new Browser(t.url);
  const page = await b2.follow(await authorizationUrl(await discover(other, c), c));
  const html = await page.res.text();
  tt.false(html.includes('Create an account'));
  const closed = await b2.follow(page.url.replace(/\/?$/, '/register'));
  tt.is(closed.res.status, 404);
});

test('forgot → reset by the mailed link → old sessions and tokens are dead; the link works once', async (tt) => {
  await adminApi(t, tenant, 'POST', '/users', { email: 'linus@kernel.test', password: 'tabs are eight wide', email_verified: true });
  const before = await signIn(t, tenant, client, { email: 'linus@kernel.test', password: 'tabs are eight wide' });

  const browser = new Browser(t.url);
  const forgot = await browser.follow(`${t.url}/t/${tenant.slug}/account/forgot-password`);
  const sent = await browser.submit(formAction(await forgot.res.text()), { email: 'linus@kernel.test' });
  tt.regex(await sent.res.text(), /If linus@kernel.test has an account/);
  const mail = await smtp.waitFor('linus@kernel.test', /Reset your/);
  const link = linkIn(mail, '/account/reset-password/');

  const form = await browser.follow(link);
  tt.is(form.res.status, 200);
  const action = formAction(await form.res.text());
  const weak = await browser.submit(action, { password: 'password' });
  tt.is(weak.res.status, 400);
  const ok = await browser.submit(action, { password: 'spaces are fine too' });
  tt.is(ok.res.status, 200);
  tt.regex(await ok.res.text(), /Your password was changed/);

  // Old refresh token, access token and browser session: all revoked.
  await tt.throwsAsync(oidc.refreshTokenGrant(before.config, before.tokens.refresh_token!));
  tt.false((await oidc.tokenIntrospection(before.config, before.tokens.access_token)).active);
  const resumed = await before.browser.follow(await authorizationUrl(before.config, client));
  tt.regex(await resumed.res.text(), /Sign in to/);
  // Old password out, new password in.
  await tt.throwsAsync(signIn(t, tenant, client, { email: 'linus@kernel.test', password: 'tabs are eight wide' }));
  await tt.notThrowsAsync(signIn(t, tenant, client, { email: 'linus@kernel.test', password: 'spaces are fine too' }));
  // The link is single-use.
  const reused = await browser.submit(action, { password: 'yet another password' });
  tt.is(reused.res.status, 410);
  tt.is((await fetch(link)).status, 410);
});

test('an expired reset link shows a clear page; tokens are stored hashed', async (tt) => {
  await adminApi(t, tenant, 'POST', '/users', { email: 'late@x.test', password: 'always a bit late', email_verified: true });
  const res = await fetch(`${t.url}/t/${tenant.slug}/account/forgot-password`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'email=late%40x.test',
  });
  tt.is(res.status, 200);
  const link = linkIn(await smtp.waitFor('late@x.test', /Reset your/), '/account/reset-password/');
  const raw = link.split('/').pop()!;
  const { db } = t.app.connection;
  const stored = await sql<{ token_hash: string }>`select token_hash from account_tokens where tenant_id = ${tenant.id} and purpose = 'reset_password'`.execute(
    db,
  );
  tt.false(stored.rows.some((r) => r.token_hash === raw));
  // Only this user's link: other tests of this file share the tenant.
  await sql`update account_tokens set expires_at = now() - interval '1 second' where tenant_id = ${tenant.id} and user_id = (select id from users where tenant_id = ${tenant.id} and email = 'late@x.test')`.execute(
    db,
  );
  const expired = await fetch(link);
  tt.is(expired.status, 410);
  tt.regex(await expired.text(), /expired/);
  tt.is((await fetch(`${t.url}/t/${tenant.slug}/account/reset-password/garbage`)).status, 410);
});

// Serial, so the other tests of this file don't add noise to the timings.
test.serial('no enumeration: sign-in and reset answer the same, in the same time, for known and unknown emails', async (tt) => {
  // Relax brute force for this tenant only: the test measures the path, not the lock.
  const quiet = await createTenant(t);
  await adminApi(t, quiet, 'PATCH', '/settings', { brute_force: { quick_login_check_ms: 0, max_login_failures: 1000, ip_max_failures: 10_000 } });
  const c = (await adminApi(t, quiet, 'POST', '/clients', webClient())).body;
  const config = await discover(quiet, c);
  const browser = new Browser(t.url);
  const page = await browser.follow(await authorizationUrl(config, c));
  // The password step's action (the page starts with the email step).
  const action = formAction(await page.res.text()).replace(/\/identify$/, '/login');

  const time = async (fn: () => Promise<Response>) => {
    const started = performance.now();
    const res = await fn();
    const body = await res.text();
    return { ms: performance.now() - started, status: res.status, body };
  };
  const login = (email: string) => time(async () => (await browser.submit(action, { email, password: 'wrong password here' })).res);
  const forgot = (email: string) =>
    time(() =>
      fetch(`${t.url}/t/${quiet.slug}/account/forgot-password`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-forwarded-for': `10.9.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`,
        },
        body: new URLSearchParams({ email }).toString(),
      }),
    );

  const known = quiet.adminEmail;
  const unknown = `nobody-${Date.now()}@nowhere.test`;
  const samples = { loginKnown: [] as number[], loginUnknown: [] as number[], forgotKnown: [] as number[], forgotUnknown: [] as number[] };
  for (let i = 0; i < 20; i++) {
    // Interleaved, so drift in machine load hits both sides alike.
    const a = await login(known);
    const b = await login(unknown);
    tt.is(a.status, 401);
    tt.is(b.status, 401);
    tt.is(a.body.replace(known, 'EMAIL'), b.body.replace(unknown, 'EMAIL'));
    samples.loginKnown.push(a.ms);
    samples.loginUnknown.push(b.ms);
    // Let the mail worker finish the previous jobs first: its work (a token for a known email,
    // nothing for an unknown one) happens after the answer, and on the single-connection embedded
    // database it would otherwise land inside whichever request comes next.
    await t.app.services.outbox.drain();
    const c1 = await forgot(known);
    await t.app.services.outbox.drain();
    const c2 = await forgot(unknown);
    tt.is(c1.status, 200);
    tt.is(c2.status, 200);
    tt.is(c1.body.replace(known, 'EMAIL'), c2.body.replace(unknown, 'EMAIL'));
    samples.forgotKnown.push(c1.ms);
    samples.forgotUnknown.push(c2.ms);
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  // "Within noise": the median of the paired differences (each known attempt against the unknown
  // one right after it, so load drift cancels out) is under a third of the median time, or 15 ms.
  const within = (a: number[], b: number[]) => Math.abs(median(a.map((x, i) => x - b[i]!))) <= Math.max(15, median([...a, ...b]) / 3);
  tt.true(within(samples.loginKnown, samples.loginUnknown), `sign-in medians ${median(samples.loginKnown)} vs ${median(samples.loginUnknown)} ms`);
  tt.true(within(samples.forgotKnown, samples.forgotUnknown), `reset medians ${median(samples.forgotKnown)} vs ${median(samples.forgotUnknown)} ms`);
  tt.log(
    `median ms — sign-in known ${median(samples.loginKnown).toFixed(1)} / unknown ${median(samples.loginUnknown).toFixed(1)}; reset known ${median(samples.forgotKnown).toFixed(1)} / unknown ${median(samples.forgotUnknown).toFixed(1)}`,
  );
});

test('change password while signed in: other sessions die, this one lives; wrong current password is a 422', async (tt) => {
  await adminApi(t, tenant, 'POST', '/users', { email: 'ken@unix.test', password: 'the original unix', email_verified: true });
  const other = await signIn(t, tenant, client, { email: 'ken@unix.test', password: 'the original unix' });
  const me = await signIn(t, tenant, client, { email: 'ken@unix.test', password: 'the original unix' });
  const call = (body: unknown, token = me.tokens.access_token) =>
    fetch(`${t.url}/t/${tenant.slug}/api/v1/me/password`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const wrong = await call({ current_password: 'nope', new_password: 'plan nine from bell' });
  tt.is(wrong.status, 422);
  tt.is((await wrong.json()).errors[0].field, 'current_password');
  const common = await call({ current_password: 'the original unix', new_password: 'iloveyou' });
  tt.is(common.status, 422);
  tt.is((await common.json()).errors[0].field, 'new_password');
  tt.is((await call({ current_password: 'the original unix' })).status, 422);
  tt.is((await fetch(`${t.url}/t/${tenant.slug}/api/v1/me/password`, { method: 'POST' })).status, 401);

  tt.is((await call({ current_password: 'the original unix', new_password: 'plan nine from bell' })).status, 204);
  await tt.throwsAsync(oidc.refreshTokenGrant(other.config, other.tokens.refresh_token!));
  tt.false((await oidc.tokenIntrospection(other.config, other.tokens.access_token)).active);
  const mine = await oidc.refreshTokenGrant(me.config, me.tokens.refresh_token!);
  tt.truthy(mine.access_token);
  await tt.notThrowsAsync(signIn(t, tenant, client, { email: 'ken@unix.test', password: 'plan nine from bell' }));
});

test('a wrong current password at /me/password counts as a failed sign-in: after the limit the account is locked (429), even for the right one', async (tt) => {
  const own = await createTenant(t); // its own: this test lowers the lock threshold
  await adminApi(t, own, 'PATCH', '/settings', { brute_force: { max_login_failures: 3, quick_login_check_ms: 0 } });
  const ownClient = (await adminApi(t, own, 'POST', '/clients', webClient())).body;
  await adminApi(t, own, 'POST', '/users', { email: 'guess@unix.test', password: 'the original unix', email_verified: true });
  const me = await signIn(t, own, ownClient, { email: 'guess@unix.test', password: 'the original unix' });
  const call = (current: string) =>
    fetch(`${t.url}/t/${own.slug}/api/v1/me/password`, {
      method: 'POST',
      headers: { authorization: `Bearer ${me.tokens.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ current_password: current, new_password: 'plan nine from bell' }),
    });
  for (let i = 0; i < 3; i++) tt.is((await call(`guess ${i}`)).status, 422);
  const locked = await call('the original unix');
  tt.is(locked.status, 429);
  tt.is((await locked.json()).code, 'too_many_requests');
  // The lock is the sign-in's: the password did not change, and an admin can lift it.
  const user = (await adminApi(t, own, 'GET', `/users?email=${encodeURIComponent('guess@unix.test')}`)).body.data[0];
  await adminApi(t, own, 'POST', `/users/${user.id}/unlock`);
  tt.is((await call('the original unix')).status, 204);
});

test('admin: settings validate and round-trip; a reset mail can be triggered for a user', async (tt) => {
  const tenant = await createTenant(t); // its own: this test changes the sender name
  await adminApi(t, tenant, 'PATCH', '/settings', { registration_enabled: true });
  const got = await adminApi(t, tenant, 'GET', '/settings');
  tt.is(got.status, 200);
  tt.is(got.body.brute_force.max_login_failures, 30);
  tt.true(got.body.email_verification_required);
  const bad = await adminApi(t, tenant, 'PATCH', '/settings', { brute_force: { max_login_failures: -1 } });
  tt.is(bad.status, 422);
  tt.is(bad.body.errors[0].field, 'brute_force.max_login_failures');
  tt.is((await adminApi(t, tenant, 'PATCH', '/settings', { registration_enabled: 'yes' })).status, 422);
  tt.is((await adminApi(t, tenant, 'PATCH', '/settings', { color: 'blue' })).status, 422);
  tt.is((await adminApi(t, tenant, 'PATCH', '/settings', { mail_from_name: 'Evil <x@y>' })).status, 422);
  const named = await adminApi(t, tenant, 'PATCH', '/settings', { mail_from_name: 'Acme Accounts' });
  tt.is(named.body.mail_from_name, 'Acme Accounts');
  tt.true(named.body.registration_enabled, 'other settings are kept');

  const u = (await adminApi(t, tenant, 'POST', '/users', { email: 'margaret@apollo.test', email_verified: true })).body;
  const r = await adminApi(t, tenant, 'POST', `/users/${u.id}/password-reset`);
  tt.is(r.status, 202);
  const mail = await smtp.waitFor('margaret@apollo.test', /Reset your/);
  tt.regex(String(mail.from?.text), /Acme Accounts/);
  tt.is((await adminApi(t, tenant, 'POST', '/users/00000000-0000-4000-8000-000000000000/password-reset')).status, 404);
  const sentList = await adminApi(t, tenant, 'GET', '/mail?status=sent');
  tt.true(sentList.body.data.some((m: { to: string }) => m.to === 'margaret@apollo.test'));
  tt.false(JSON.stringify(sentList.body).includes('reset-password/'), 'links are not readable through the API');
});
