import test from 'ava';
import { sql } from 'kysely';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials, formAction, linkTo } from '../helpers/browser.ts';
import { authorizationUrl, discover, type RegisteredClient, signIn } from '../helpers/oidc.ts';
import { linkIn, SmtpSink } from '../helpers/smtp.ts';

// One email, one account: every way in (registration, sign-in, reset, the Admin API, invitations,
// SSO routing) takes the same set of addresses and finds the same account for every spelling.

let smtp: SmtpSink;
let t: TestApp;
let tenant: TestTenant;
let client: RegisteredClient;

test.before(async () => {
  smtp = await SmtpSink.start();
  t = await startTestApp({ env: { SMTP_URL: smtp.url, TRUST_PROXY: 'true', MAIL_POLL_MS: '100' } });
  tenant = await createTenant(t);
  client = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
  const s = await adminApi(t, tenant, 'PATCH', '/settings', {
    registration_enabled: true,
    brute_force: { max_login_failures: 3, wait_increment_seconds: 600 },
  });
  if (s.status !== 200) throw new Error(s.text);
});
test.after.always(async () => {
  await t?.stop();
  await smtp?.stop();
});

const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);

/** The look-alikes of `kim@<domain>` the rule refuses, and what the refusal says. */
const lookAlikes = (domain: string): Array<[string, RegExp]> => [
  [`k\u200Dim@${domain}`, /invisible character \(U\+200D\)/],
  [`ｋｉｍ@${domain}`, /full-width/],
  [`ki\u0307m@${domain}`, /accent \(U\+0307\) that is not joined to its letter/],
  [`kim@${domain}.`, /ends with a dot/],
  [`Kİm@${domain}`, /“İ” \(U\+0130\)/],
  [`kim@İ${domain}`, /look-alike/],
];

async function accountsWithKey(key: string) {
  const r = await sql<{ n: number }>`select count(*)::int as n from users where tenant_id = ${tenant.id} and email_key = ${key}`.execute(t.app.connection.db);
  return r.rows[0]!.n;
}

async function registerForm(browser: Browser) {
  const config = await discover(tenant, client);
  const login = await browser.follow(await authorizationUrl(config, client));
  const registerUrl = new URL(linkTo(await login.res.text(), /Create an account/), login.url).href;
  return formAction(await (await browser.follow(registerUrl)).res.text());
}

/** One sign-in attempt (email-first, then password) from `ip`: its status (303 = signed in) and page. */
async function attempt(email: string, password: string, ip: string) {
  const browser = new Browser(t.url);
  const headers = { 'x-forwarded-for': ip };
  const page = await browser.follow(await authorizationUrl(await discover(tenant, client), client), { headers });
  const { res } = await enterCredentials(browser, await page.res.text(), page.url, email, password, headers);
  return { status: res.status, body: await res.text() };
}

test('registration refuses each look-alike with a page saying why, and other spellings never make a second account', async (tt) => {
  const browser = new Browser(t.url);
  const action = await registerForm(browser);
  const first = await browser.submit(action, { name: 'Kim', email: 'kim@reg.test', password: 'a long enough secret' });
  tt.is(first.res.status, 200);

  for (const [typed, why] of lookAlikes('reg.test')) {
    const res = await browser.submit(action, { name: 'Mallory', email: typed, password: 'a long enough secret' });
    tt.is(res.res.status, 400, typed);
    const html = await res.res.text();
    tt.regex(html, /Enter a valid email address/, typed);
    tt.regex(html, why, typed);
  }

  // The same address spelt otherwise: the usual answer, and a note to the account's own address.
  for (const typed of ['KIM@REG.TEST', 'kım@reg.test', ' Kim@Reg.Test ']) {
    const res = await browser.submit(action, { name: 'Kim again', email: typed, password: 'a long enough secret' });
    tt.is(res.res.status, 200, typed);
    tt.regex(await res.res.text(), /Check your inbox/);
  }
  tt.is(await accountsWithKey('kim@reg.test'), 1);
  await smtp.waitFor('kim@reg.test', /already have/);
  tt.is(smtp.countTo('kım@reg.test'), 0, 'nothing is mailed to the spelling typed');

  // ß and ss are one address.
  tt.is((await browser.submit(action, { name: 'S', email: 'straße@reg.test', password: 'a long enough secret' })).res.status, 200);
  tt.is((await browser.submit(action, { name: 'S', email: 'STRASSE@reg.test', password: 'a long enough secret' })).res.status, 200);
  tt.is(await accountsWithKey('strasse@reg.test'), 1);
  const stored = (await api('GET', `/users?email=${encodeURIComponent('strasse@reg.test')}`)).body.data;
  tt.deepEqual(
    stored.map((u: { email: string }) => u.email),
    ['straße@reg.test'],
  );
});

test('a lock earned by failed attempts on kim@x holds for every other spelling of it', async (tt) => {
  await api('POST', '/users', { email: 'kim@lock.test', password: 'the real password', email_verified: true });
  // Three failures (the tenant's limit), each under another spelling and from another address.
  const spellings = ['kim@lock.test', 'KIM@LOCK.TEST', 'kım@Lock.Test'];
  for (const [i, email] of spellings.entries()) tt.is((await attempt(email, `wrong ${i}`, `198.51.100.${10 + i}`)).status, 401);
  // Locked: the right password is refused under any spelling.
  for (const [i, email] of [...spellings, 'Kim@lock.test'].entries()) {
    const r = await attempt(email, 'the real password', `198.51.100.${20 + i}`);
    tt.is(r.status, 401, email);
    tt.regex(r.body, /Invalid email or password/);
  }
  const counters = await sql<{ key: string }>`select key from auth_throttle where tenant_id = ${tenant.id} and key like 'account:%lock.test'`.execute(
    t.app.connection.db,
  );
  tt.deepEqual(
    counters.rows.map((r) => r.key),
    ['account:kim@lock.test'],
    'one counter for the account',
  );

  // A look-alike is no way around it: it is refused before any password is tried.
  const lookAlike = await attempt('kİm@lock.test', 'the real password', '198.51.100.30');
  tt.is(lookAlike.status, 400);
  tt.regex(lookAlike.body, /“İ” \(U\+0130\)/);
});

test('forgot password typed in another case mails the link to the stored address', async (tt) => {
  await api('POST', '/users', { email: 'Kim.Doe@mail.test', password: 'before the reset', email_verified: true });
  const browser = new Browser(t.url);
  const forgot = formAction(await (await browser.follow(`${t.url}/t/${tenant.slug}/account/forgot-password`)).res.text());
  const sent = await browser.submit(forgot, { email: 'KIM.DOE@MAIL.TEST' });
  tt.is(sent.res.status, 200);
  const mail = await smtp.waitFor('kim.doe@mail.test', /Reset your/);
  tt.deepEqual(
    (Array.isArray(mail.to) ? mail.to : [mail.to]).flatMap((a) => a!.value.map((v) => v.address)),
    ['Kim.Doe@mail.test'],
    'sent to the address as stored, not as typed',
  );
  tt.regex(mail.text!, /Kim\.Doe@mail\.test/);
  const outbox = await api('GET', '/mail?status=sent');
  tt.true(outbox.body.data.some((m: { kind: string; to: string }) => m.kind === 'reset_password' && m.to === 'Kim.Doe@mail.test'));
  tt.false(outbox.body.data.some((m: { to: string }) => m.to === 'KIM.DOE@MAIL.TEST'));

  // The link works, for that account.
  const reset = await browser.follow(linkIn(mail, '/account/reset-password/'));
  const done = await browser.submit(formAction(await reset.res.text()), { password: 'after the reset, longer' });
  tt.is(done.res.status, 200);
  await tt.notThrowsAsync(signIn(t, tenant, client, { email: 'kim.doe@mail.test', password: 'after the reset, longer' }));

  // A look-alike on the form is refused, with the reason.
  const refused = await browser.submit(forgot, { email: 'kim.doe@mail.test.' });
  tt.is(refused.res.status, 400);
  tt.regex(await refused.res.text(), /ends with a dot/);
});

test('"SSO required" catches every spelling of the organization\'s domain, Unicode ones included', async (tt) => {
  const corp = (await api('POST', '/organizations', { name: 'Initech', sso_required: true })).body as { id: string };
  const added = await api('POST', `/organizations/${corp.id}/domains`, { domain: 'Initech.test' });
  tt.is(added.status, 201, added.text);
  tt.is(added.body.domain, 'initech.test');
  const unicode = await api('POST', `/organizations/${corp.id}/domains`, { domain: 'BÜCHER.test' });
  tt.is(unicode.status, 201, unicode.text);
  tt.is(unicode.body.domain, 'xn--bcher-kva.test', 'stored in its IDNA ASCII form');
  tt.is((await api('POST', `/organizations/${corp.id}/domains`, { domain: 'xn--bcher-kva.test' })).status, 409, 'one domain, however spelt');
  for (const domain of ['initech.test', encodeURIComponent('bücher.test')]) {
    const r = await api('PATCH', `/organizations/${corp.id}/domains/${domain}`, { verified: true });
    tt.is(r.status, 200, r.text);
  }
  await api('POST', '/users', { email: 'emp@initech.test', password: 'not for this door', email_verified: true });

  for (const email of ['emp@initech.test', 'emp@INITECH.TEST', 'EMP@Initech.Test', 'emp@bücher.test', 'emp@BÜCHER.TEST', 'emp@xn--bcher-kva.test']) {
    const r = await attempt(email, 'not for this door', '192.0.2.50');
    tt.is(r.status, 403, email);
    tt.regex(r.body, /requires single sign-on/, email);
  }
  for (const email of ['emp@İnitech.test', 'emp@ｉnitech.test', 'emp@initech.test.', 'emp@initech\u200D.test']) {
    const r = await attempt(email, 'not for this door', '192.0.2.51');
    tt.is(r.status, 400, email);
    tt.regex(r.body, /Enter a valid email address/, email);
  }
  const bad = await api('POST', `/organizations/${corp.id}/domains`, { domain: 'İnitech.test' });
  tt.is(bad.status, 422);
  tt.regex(bad.body.errors[0].message, /look-alike/);
});

test('Admin API: a look-alike is a 422 problem naming the email field; another spelling of a user is that user', async (tt) => {
  const kim = (await api('POST', '/users', { email: 'Kim@Api.test' })).body as { id: string; email: string };
  tt.is(kim.email, 'Kim@Api.test');
  for (const [typed, why] of lookAlikes('api.test')) {
    const r = await api('POST', '/users', { email: typed });
    tt.is(r.status, 422, typed);
    tt.regex(r.type, /application\/problem\+json/);
    tt.is(r.body.errors[0].field, 'email');
    tt.regex(r.body.errors[0].message, why, typed);
    tt.is((await api('PATCH', `/users/${kim.id}`, { email: typed })).status, 422, `PATCH ${typed}`);
    tt.is((await api('GET', `/users?email=${encodeURIComponent(typed)}`)).status, 422, `?email=${typed}`);
  }
  for (const typed of ['kim@api.test', 'kım@API.TEST']) {
    const dup = await api('POST', '/users', { email: typed });
    tt.is(dup.status, 409, typed);
    tt.is(dup.body.errors[0].field, 'email');
    tt.deepEqual(
      (await api('GET', `/users?email=${encodeURIComponent(typed)}`)).body.data.map((u: { id: string }) => u.id),
      [kim.id],
    );
  }
  const other = (await api('POST', '/users', { email: 'other@api.test' })).body as { id: string };
  tt.is((await api('PATCH', `/users/${other.id}`, { email: 'KIM@api.test' })).status, 409);
  // A change of address moves the key with it.
  tt.is((await api('PATCH', `/users/${other.id}`, { email: 'Renamed@Api.test' })).status, 200);
  tt.deepEqual(
    (await api('GET', '/users?email=renamed@api.test')).body.data.map((u: { id: string }) => u.id),
    [other.id],
  );
  tt.is((await api('GET', '/users?email=other@api.test')).body.data.length, 0);
});

test('an invitation to Kim@X is accepted by the account kim@x; a look-alike cannot be invited', async (tt) => {
  const o = (await api('POST', '/organizations', { name: 'Invited Org' })).body as { id: string; name: string };
  await api('POST', '/users', { email: 'kim@inv.test', password: 'invited and signed in', email_verified: true });
  const inv = await api('POST', `/organizations/${o.id}/invitations`, { email: 'Kim@Inv.test', role: 'member' });
  tt.is(inv.status, 201, inv.text);
  tt.is((await api('POST', `/organizations/${o.id}/invitations`, { email: 'KIM@INV.TEST' })).status, 409, 'one pending invitation per address, however spelt');
  for (const [typed] of lookAlikes('inv.test')) {
    const r = await api('POST', `/organizations/${o.id}/invitations`, { email: typed });
    tt.is(r.status, 422, typed);
    tt.is(r.body.errors[0].field, 'email');
  }

  const link = linkIn(await smtp.waitFor('kim@inv.test', /invited to join/), '/invitations/');
  const me = await signIn(t, tenant, client, { email: 'KIM@inv.test', password: 'invited and signed in' });
  const page = await me.browser.follow(link);
  const html = await page.res.text();
  tt.is(page.res.status, 200, html.slice(0, 300));
  tt.regex(html, /name="mode" value="accept"/);
  const done = await me.browser.submit(formAction(html), { mode: 'accept' });
  tt.is(done.res.status, 200);
  const members = (await api('GET', `/organizations/${o.id}/members`)).body.data as Array<{ email: string }>;
  tt.deepEqual(
    members.map((m) => m.email),
    ['kim@inv.test'],
  );
});

test('an invitation to one spelling is found by the account API of the account under another', async (tt) => {
  const o = (await api('POST', '/organizations', { name: 'Listed Org' })).body as { id: string };
  await api('POST', '/users', { email: 'straße@inv.test', password: 'invited through the api', email_verified: true });
  tt.is((await api('POST', `/organizations/${o.id}/invitations`, { email: 'STRASSE@INV.TEST' })).status, 201);
  const { tokens } = await signIn(t, tenant, client, { email: 'strasse@inv.test', password: 'invited through the api' });
  const res = await fetch(`${t.url}/t/${tenant.slug}/api/v1/me/invitations`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  tt.is(res.status, 200);
  const listed = (await res.json()) as { data: Array<{ id: string; organization: { id: string } }> };
  tt.deepEqual(
    listed.data.map((i) => i.organization.id),
    [o.id],
  );
  const accepted = await fetch(`${t.url}/t/${tenant.slug}/api/v1/me/invitations/${listed.data[0]!.id}/accept`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokens.access_token}` },
  });
  tt.is(accepted.status, 200, await accepted.text());
});
