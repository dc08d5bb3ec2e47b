import test from 'ava';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import * as samlify from 'samlify';
import { accountKey } from '../../src/accounts/brute-force.ts';
import { base32Decode, hotp, totpStep } from '../../src/factors/totp.ts';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { seriousA11yViolations } from '../helpers/axe.ts';
import { Browser, continueWithSso, formAction } from '../helpers/browser.ts';
import { launchChromium } from '../helpers/chromium.ts';
import { type RegisteredClient, signIn, startAuthorization } from '../helpers/oidc.ts';
import { keyPair, TestSamlIdp } from '../helpers/saml-idp.ts';
import { linkIn, SmtpSink } from '../helpers/smtp.ts';
import { SoftAuthenticator } from '../helpers/soft-authenticator.ts';

/**
 * Linking an existing account to an organization's sign-in asks for the account's second factor.
 * The IdP is hostile: an organization owner configured it and asserts whatever email they like.
 * Knowing the victim's password (or reading their mailed link) must not be enough to link an
 * account that has a factor; wrong codes count toward the account's lock; the account holder is
 * mailed whenever a link is made.
 */

let t: TestApp;
let smtp: SmtpSink;
const idp = new TestSamlIdp(keyPair('Owner-controlled IdP'));
const PASSWORD = 'quiet walnut 47 harbour';
const LINKED = /account was linked to single sign-on through Owner IdP of Link Corp/;
let people = 0;

test.before(async () => {
  smtp = await SmtpSink.start();
  t = await startTestApp({ env: { SMTP_URL: smtp.url, MAIL_POLL_MS: '100' } });
});
test.after.always(async () => {
  await t?.stop();
  await smtp?.stop();
});

interface World {
  tenant: TestTenant;
  client: RegisteredClient;
  orgId: string;
  conn: { id: string; acs_url: string; sp_entity_id: string; sp_metadata_url: string };
  sp: ReturnType<typeof samlify.ServiceProvider>;
}

/** A tenant (these settings; three failures lock), an organization and its connection to the hostile IdP. */
async function world(settings: Record<string, unknown> = {}): Promise<World> {
  const tenant = await createTenant(t);
  const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);
  const set = await api('PATCH', '/settings', {
    brute_force: { max_login_failures: 3, wait_increment_seconds: 600, max_wait_seconds: 600, quick_login_check_ms: 0 },
    ...settings,
  });
  if (set.status !== 200) throw new Error(set.text);
  const client = (await api('POST', '/clients', webClient())).body;
  const orgId = (await api('POST', '/organizations', { name: 'Link Corp' })).body.id;
  const conn = await api('POST', `/organizations/${orgId}/sso-connections`, {
    type: 'saml',
    name: 'Owner IdP',
    idp_entity_id: idp.entityId,
    idp_sso_url: idp.ssoUrl,
    idp_certificates: [idp.keys.cert],
  });
  if (conn.status !== 201) throw new Error(conn.text);
  const sp = samlify.ServiceProvider({ metadata: await (await fetch(conn.body.sp_metadata_url)).text() });
  return { tenant, client, orgId, conn: conn.body, sp };
}

/** A person outside the organization's (unverified) domains, with a password unless told otherwise. */
async function person(w: World, opts: { password?: boolean } = {}) {
  const email = `victim${++people}@personal.example`;
  const user = await adminApi(t, w.tenant, 'POST', '/users', { email, ...(opts.password === false ? {} : { password: PASSWORD }), email_verified: true });
  if (user.status !== 201) throw new Error(user.text);
  return { email, id: user.body.id as string };
}

/** …with a confirmed authenticator app (the key computes codes) and recovery codes. */
async function personWithTotp(w: World, opts: { password?: boolean } = {}) {
  return addTotp(w, await person(w, opts));
}

/** The person confirms an authenticator app (and gets recovery codes). */
async function addTotp<P extends { id: string; email: string }>(w: World, p: P) {
  const factors = t.app.services.factors;
  const enrollment = await factors.startTotp(w.tenant.id, p.id, 'Tessera', p.email);
  const key = base32Decode(enrollment.secret);
  if (!(await factors.confirmTotp(w.tenant.id, p.id, enrollment.factorId, hotp(key, totpStep(Date.now() / 1000) - 1)))) throw new Error('not confirmed');
  const recovery = await factors.regenerateRecoveryCodes(w.tenant.id, p.id);
  return { ...p, key, recovery };
}

/** …whose only factor is a passkey (and recovery codes). */
async function personWithPasskey(w: World) {
  const p = await person(w);
  const passkeys = t.app.services.passkeys;
  const options = await passkeys.registrationOptions(w.tenant.id, { id: p.id, email: p.email, name: null }, 'Tessera');
  const registered = await passkeys.register(w.tenant.id, p.id, new SoftAuthenticator({ id: 'localhost', origin: t.url }).register(options.challenge), 'Key');
  if (!registered.ok) throw new Error('passkey not registered');
  const recovery = await t.app.services.factors.regenerateRecoveryCodes(w.tenant.id, p.id);
  return { ...p, recovery };
}

/** A code of the current step; other offsets are wrong codes (outside the accepted window). */
const codeNow = (key: Buffer, offset = 0) => hotp(key, totpStep(Date.now() / 1000) + offset);

/**
 * The attack's first half: a sign-in at the app with organization=<org>, the IdP asserting the
 * victim's email under its own subject. Ends on the link page.
 */
async function idpAsserts(w: World, email: string, subject: string) {
  const flow = await idpSignIn(w, email, subject);
  if (!flow.onLinkPage) throw new Error(`expected the link page, got ${flow.landed.res.status} ${flow.landed.url}`);
  return flow;
}

/** A sign-in at the app through the IdP, which asserts `email` under `subject`; ends wherever it lands. */
async function idpSignIn(w: World, email: string, subject: string) {
  const browser = new Browser(t.url);
  const { config, verifier, state, url } = await startAuthorization(w.tenant, w.client, { organization: w.orgId });
  // The sign-in page offers the organization's SSO first: the person takes it.
  const toIdp = await continueWithSso(browser, await browser.follow(url));
  if (!toIdp.url.startsWith(idp.ssoUrl)) throw new Error(`expected the IdP, got ${toIdp.res.status} ${toIdp.url}`);
  const response = await idp.response(w.sp, w.conn.acs_url, w.conn.sp_entity_id, {
    inResponseTo: await idp.requestIdOf(w.sp, toIdp.url),
    nameId: subject,
    attributes: { email },
  });
  const landed = await browser.follow(w.conn.acs_url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://idp.test' },
    body: new URLSearchParams({ SAMLResponse: response }).toString(),
  });
  const base = `${t.url}/t/${w.tenant.slug}/sso/link`;
  return {
    landed,
    onLinkPage: landed.url === base,
    browser,
    html: await landed.res.text(),
    byPassword: (fields: Record<string, string>) => browser.submit(`${base}/password`, fields),
    mailMe: () => browser.submit(`${base}/email`, {}),
    redeem: (to: string) => oidc.authorizationCodeGrant(config, new URL(to), { pkceCodeVerifier: verifier, expectedState: state }),
    reachedApp: (done: { url: string }) => done.url.startsWith(w.client.redirect_uris[0]!),
  };
}

async function linksOf(userId: string) {
  return (
    await sql<{ subject: string; linked_by: string }>`select subject, linked_by from sso_identities where user_id = ${userId}`.execute(t.app.connection.db)
  ).rows;
}

/** Whether each of the account's links was proven with a second factor. */
async function proofsOf(userId: string) {
  return (
    await sql<{ subject: string; linked_by: string; proven_with_factor: boolean }>`
      select subject, linked_by, proven_with_factor from sso_identities where user_id = ${userId} order by subject`.execute(t.app.connection.db)
  ).rows;
}

/** The organization's audit entries of `action` (their `after` detail). */
async function auditOf(w: World, action: string) {
  return (await sql<{ after: any }>`select after from org_audit_log where org_id = ${w.orgId} and action = ${action}`.execute(t.app.connection.db)).rows.map(
    (r) => (typeof r.after === 'string' ? JSON.parse(r.after) : r.after),
  );
}

/** The account's failure count in the brute-force record (0 when none is kept). */
async function failuresOf(w: World, email: string) {
  const row = await sql<{ failures: number }>`select failures from auth_throttle where tenant_id = ${w.tenant.id} and key = ${accountKey(email)}`.execute(
    t.app.connection.db,
  );
  return row.rows[0]?.failures ?? 0;
}

test('attack: the password of an account with an authenticator app links nothing; its code is asked, wrong ones counted; both together link, and the holder is mailed', async (tt) => {
  const w = await world();
  const victim = await personWithTotp(w);
  const flow = await idpAsserts(w, victim.email, 'attacker-sub');

  // The password alone: asked for a code, nothing linked, nothing issued.
  const asked = await flow.byPassword({ password: PASSWORD });
  tt.is(asked.res.status, 200);
  tt.false(flow.reachedApp(asked), 'no authorization response reached the app');
  const askedHtml = await asked.res.text();
  tt.regex(askedHtml, /Your account has a second factor/);
  tt.regex(askedHtml, /<input id="code" name="code"/);
  tt.deepEqual(await linksOf(victim.id), []);

  // A wrong code: refused and counted toward the account's lock.
  const wrong = await flow.byPassword({ password: PASSWORD, code: codeNow(victim.key, 9) });
  tt.is(wrong.res.status, 401);
  tt.regex(await wrong.res.text(), /That code is not valid/);
  tt.deepEqual(await linksOf(victim.id), []);
  tt.is(await failuresOf(w, victim.email), 1);

  // The right password alone again does not clear the count.
  tt.is((await flow.byPassword({ password: PASSWORD })).res.status, 200);
  tt.is(await failuresOf(w, victim.email), 1, 'a right password without the code forgets no failure');

  // A code without the password proves nothing either.
  const codeOnly = await flow.byPassword({ password: 'not the password', code: codeNow(victim.key) });
  tt.is(codeOnly.res.status, 401);
  tt.deepEqual(await linksOf(victim.id), []);

  // Password and code together: linked, the sign-in continues, the account holder is told.
  const done = await flow.byPassword({ password: PASSWORD, code: codeNow(victim.key, 1) });
  tt.true(flow.reachedApp(done), `${done.res.status} ${done.url}`);
  tt.is((await flow.redeem(done.url)).claims()!.sub, victim.id);
  tt.deepEqual(await linksOf(victim.id), [{ subject: 'attacker-sub', linked_by: 'password' }]);
  tt.is(await failuresOf(w, victim.email), 0, 'the full proof clears the failures');
  const mail = await smtp.waitFor(victim.email, LINKED);
  tt.regex(mail.text ?? '', /confirmed with the account password/);
  tt.regex(mail.text ?? '', /ask an administrator/);
});

test('wrong codes lock the account: then the right password and code are refused', async (tt) => {
  const w = await world();
  const victim = await personWithTotp(w);
  const flow = await idpAsserts(w, victim.email, 'locker');
  for (let i = 0; i < 3; i++) tt.is((await flow.byPassword({ password: PASSWORD, code: codeNow(victim.key, 9 + i) })).res.status, 401);
  tt.is(await failuresOf(w, victim.email), 3);
  const locked = await flow.byPassword({ password: PASSWORD, code: codeNow(victim.key) });
  tt.is(locked.res.status, 401);
  tt.false(flow.reachedApp(locked));
  tt.deepEqual(await linksOf(victim.id), []);
});

test('the mailed link proves the mailbox, not the factor: its code is asked too, counted, and locks', async (tt) => {
  const w = await world();
  const victim = await personWithTotp(w, { password: false });
  const flow = await idpAsserts(w, victim.email, 'mailbox-sub');
  tt.false(flow.html.includes('name="password"'));
  tt.is((await flow.mailMe()).res.status, 200);
  const confirmUrl = linkIn(await smtp.waitFor(victim.email, /Link your Link Corp sign-in/), '/sso/link/confirm/');

  const shown = await flow.browser.follow(confirmUrl);
  tt.regex(await shown.res.text(), /<input id="code" name="code"/);
  // The button alone (the mailbox only): nothing linked, nothing issued.
  const buttonOnly = await flow.browser.submit(confirmUrl, {});
  tt.is(buttonOnly.res.status, 400);
  tt.false(flow.reachedApp(buttonOnly));
  tt.deepEqual(await linksOf(victim.id), []);
  // A wrong code is refused and counted.
  tt.is((await flow.browser.submit(confirmUrl, { code: codeNow(victim.key, 9) })).res.status, 401);
  tt.is(await failuresOf(w, victim.email), 1);
  tt.deepEqual(await linksOf(victim.id), []);
  // The right code: linked, the sign-in continues, the holder is told.
  const done = await flow.browser.submit(confirmUrl, { code: codeNow(victim.key) });
  tt.true(flow.reachedApp(done), `${done.res.status} ${done.url}`);
  tt.is((await flow.redeem(done.url)).claims()!.sub, victim.id);
  tt.deepEqual(await linksOf(victim.id), [{ subject: 'mailbox-sub', linked_by: 'email_link' }]);
  tt.regex((await smtp.waitFor(victim.email, LINKED)).text ?? '', /confirmed with a link mailed to this address/);

  // Another account: wrong codes through the mailed link lock it like wrong passwords.
  const other = await personWithTotp(w, { password: false });
  const second = await idpAsserts(w, other.email, 'mailbox-sub-2');
  await second.mailMe();
  const otherUrl = linkIn(await smtp.waitFor(other.email, /Link your Link Corp sign-in/), '/sso/link/confirm/');
  for (let i = 0; i < 3; i++) await second.browser.submit(otherUrl, { code: codeNow(other.key, 9 + i) });
  const locked = await second.browser.submit(otherUrl, { code: codeNow(other.key) });
  tt.is(locked.res.status, 401);
  tt.deepEqual(await linksOf(other.id), []);
});

test('a recovery code stands in for the authenticator app, once', async (tt) => {
  const w = await world();
  const victim = await personWithTotp(w);
  const first = await idpAsserts(w, victim.email, 'recovery-1');
  const done = await first.byPassword({ password: PASSWORD, code: victim.recovery[0]! });
  tt.true(first.reachedApp(done), `${done.res.status} ${done.url}`);
  tt.deepEqual(await linksOf(victim.id), [{ subject: 'recovery-1', linked_by: 'password' }]);

  // The same recovery code for another link: spent.
  const second = await idpAsserts(w, victim.email, 'recovery-2');
  const again = await second.byPassword({ password: PASSWORD, code: victim.recovery[0]! });
  tt.is(again.res.status, 401);
  tt.deepEqual(await linksOf(victim.id), [{ subject: 'recovery-1', linked_by: 'password' }]);
});

test('an account whose only factor is a passkey: the page asks for a recovery code, and takes one', async (tt) => {
  const w = await world();
  const victim = await personWithPasskey(w);
  const flow = await idpAsserts(w, victim.email, 'passkey-sub');
  const asked = await (await flow.byPassword({ password: PASSWORD })).res.text();
  tt.regex(asked, /second factor is a passkey/);
  tt.regex(asked, /<label for="code">Recovery code<\/label>/);
  tt.deepEqual(await linksOf(victim.id), []);
  tt.is((await flow.byPassword({ password: PASSWORD, code: '123456' })).res.status, 401, 'six digits are no recovery code');
  const done = await flow.byPassword({ password: PASSWORD, code: victim.recovery[1]! });
  tt.true(flow.reachedApp(done), `${done.res.status} ${done.url}`);
  tt.deepEqual(await linksOf(victim.id), [{ subject: 'passkey-sub', linked_by: 'password' }]);
});

test('an account whose only factor is of a kind the tenant no longer allows is never linked by password or mail', async (tt) => {
  const w = await world({ mfa_factors: ['passkey'] });
  const victim = await personWithTotp(w);
  const flow = await idpAsserts(w, victim.email, 'disallowed-sub');
  const refused = await flow.byPassword({ password: PASSWORD });
  tt.is(refused.res.status, 403);
  tt.regex(await refused.res.text(), /Ask an administrator/);
  // Not with a code either (its kind does not count here), nor a recovery code.
  tt.is((await flow.byPassword({ password: PASSWORD, code: codeNow(victim.key) })).res.status, 403);
  tt.is((await flow.byPassword({ password: PASSWORD, code: victim.recovery[0]! })).res.status, 403);
  tt.deepEqual(await linksOf(victim.id), []);

  await flow.mailMe();
  const confirmUrl = linkIn(await smtp.waitFor(victim.email, /Link your Link Corp sign-in/), '/sso/link/confirm/');
  tt.is((await flow.browser.follow(confirmUrl)).res.status, 403);
  const byMail = await flow.browser.submit(confirmUrl, {});
  tt.is(byMail.res.status, 403);
  tt.false(flow.reachedApp(byMail));
  tt.deepEqual(await linksOf(victim.id), []);
  const refusals = (
    await sql<{ after: any }>`select after from org_audit_log where org_id = ${w.orgId} and action = 'sso.link_refused'`.execute(t.app.connection.db)
  ).rows.map((r) => (typeof r.after === 'string' ? JSON.parse(r.after) : r.after));
  tt.true(
    refusals.some((a) => a.user_id === victim.id && /not allow/.test(a.reason)),
    JSON.stringify(refusals),
  );
});

test('an account without a factor still links by its password alone, and its holder is mailed', async (tt) => {
  const w = await world();
  const p = await person(w);
  const flow = await idpAsserts(w, p.email, 'plain-sub');
  const done = await flow.byPassword({ password: PASSWORD });
  tt.true(flow.reachedApp(done), `${done.res.status} ${done.url}`);
  tt.deepEqual(await linksOf(p.id), [{ subject: 'plain-sub', linked_by: 'password' }]);
  const mail = await smtp.waitFor(p.email, LINKED);
  tt.regex(mail.subject ?? '', /^Your .+ account was linked to single sign-on through Owner IdP of Link Corp$/);
});

test('in Chromium: the link page asks for the code after the password, labelled and accessible, and the sign-in continues', async (tt) => {
  const w = await world();
  const victim = await personWithTotp(w);
  // The IdP leg by the scripted browser; its cookies (the pending link's, the interaction's) go to Chromium.
  const flow = await idpAsserts(w, victim.email, 'chromium-sub');
  const chrome = await launchChromium();
  try {
    const context = await chrome.newContext({ bypassCSP: true }); // only so axe-core can be injected
    const cookies = (await flow.browser.jar.serialize()).cookies;
    await context.addCookies(
      cookies.map((c) => ({ name: c.key!, value: String(c.value), domain: String(c.domain), path: String(c.path ?? '/'), httpOnly: Boolean(c.httpOnly) })),
    );
    const page = await context.newPage();
    await page.route(`${w.client.redirect_uris[0]}**`, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<h1>App</h1>' }));
    await page.goto(`${t.url}/t/${w.tenant.slug}/sso/link`);
    await page.getByLabel('Password of this account').fill(PASSWORD);
    await page.getByRole('button', { name: 'Confirm with my password' }).click();
    await page.getByLabel('Code from your authenticator app, or a recovery code').waitFor();
    tt.deepEqual(await seriousA11yViolations(page), []);
    tt.deepEqual(await linksOf(victim.id), []);
    await page.getByLabel('Password of this account').fill(PASSWORD);
    await page.getByLabel('Code from your authenticator app, or a recovery code').fill(codeNow(victim.key));
    await page.getByRole('button', { name: 'Confirm with my password' }).click();
    await page.waitForURL(`${w.client.redirect_uris[0]}**`);
    tt.is((await flow.redeem(page.url())).claims()!.sub, victim.id);
    tt.deepEqual(await linksOf(victim.id), [{ subject: 'chromium-sub', linked_by: 'password' }]);
  } finally {
    await chrome.close();
  }
});

// ── a link proven without a factor, once the account has one ───────────────

/** The attacker's half: the victim's password (no factor yet) links the IdP's subject to the account. */
async function linkedByPasswordAlone(w: World, victim: { id: string; email: string }, subject: string) {
  const flow = await idpAsserts(w, victim.email, subject);
  const done = await flow.byPassword({ password: PASSWORD });
  if (!flow.reachedApp(done)) throw new Error(`not linked: ${done.res.status} ${done.url}`);
  await flow.redeem(done.url);
}

test('attack: a link proven by the password alone stops opening the account once it has an authenticator app; password and code upgrade it', async (tt) => {
  const w = await world();
  const victim = await person(w);
  await linkedByPasswordAlone(w, victim, 'kept-sub');
  tt.deepEqual(await proofsOf(victim.id), [{ subject: 'kept-sub', linked_by: 'password', proven_with_factor: false }]);

  // While the account has no factor, the link is what a link made today would be: it signs in.
  const before = await idpSignIn(w, victim.email, 'kept-sub');
  tt.true(before.reachedApp(before.landed), `${before.landed.res.status} ${before.landed.url}`);

  // The victim adds an authenticator app: the link no longer opens the account by itself.
  const withApp = await addTotp(w, victim);
  const again = await idpSignIn(w, victim.email, 'kept-sub');
  tt.true(again.onLinkPage, `${again.landed.res.status} ${again.landed.url}`);
  tt.false(again.reachedApp(again.landed), 'no authorization response reached the app');
  tt.regex(again.html, /name="password"/);
  const deferred = await auditOf(w, 'sso.link_deferred');
  tt.true(
    deferred.some((a) => a.user_id === victim.id && /proven without a second factor/.test(a.reason)),
    JSON.stringify(deferred),
  );

  // The proof page's rules: the password alone asks for the code; a wrong code is refused.
  const asked = await again.byPassword({ password: PASSWORD });
  tt.false(again.reachedApp(asked));
  tt.regex(await asked.res.text(), /<input id="code" name="code"/);
  tt.is((await again.byPassword({ password: PASSWORD, code: codeNow(withApp.key, 9) })).res.status, 401);
  tt.deepEqual(await proofsOf(victim.id), [{ subject: 'kept-sub', linked_by: 'password', proven_with_factor: false }]);

  // Password and code: signed in, the link upgraded.
  const done = await again.byPassword({ password: PASSWORD, code: codeNow(withApp.key) });
  tt.true(again.reachedApp(done), `${done.res.status} ${done.url}`);
  tt.is((await again.redeem(done.url)).claims()!.sub, victim.id);
  tt.deepEqual(await proofsOf(victim.id), [{ subject: 'kept-sub', linked_by: 'password', proven_with_factor: true }]);
  tt.true((await auditOf(w, 'sso.link_confirmed')).some((a) => a.subject === 'kept-sub' && a.reason === 'password' && a.proven_with_factor === true));

  // From then on the link signs in with nothing more.
  const later = await idpSignIn(w, victim.email, 'kept-sub');
  tt.true(later.reachedApp(later.landed), `${later.landed.res.status} ${later.landed.url}`);
  tt.is((await later.redeem(later.landed.url)).claims()!.sub, victim.id);
});

test('attack: a link held back by the account’s factor stays held back when the tenant stops accepting that kind of factor', async (tt) => {
  const w = await world();
  const victim = await person(w);
  await linkedByPasswordAlone(w, victim, 'turned-off-sub');
  await addTotp(w, victim);
  tt.true((await idpSignIn(w, victim.email, 'turned-off-sub')).onLinkPage);
  for (const settings of [{ mfa_factors: ['passkey'] }, { mfa: 'off' }]) {
    tt.is((await adminApi(t, w.tenant, 'PATCH', '/settings', settings)).status, 200);
    const after = await idpSignIn(w, victim.email, 'turned-off-sub');
    tt.false(after.reachedApp(after.landed), `${JSON.stringify(settings)}: ${after.landed.res.status} ${after.landed.url}`);
    tt.true(after.onLinkPage, 'the proof page, which refuses an account whose factors are all turned off');
    tt.is((await after.byPassword({ password: PASSWORD })).res.status, 403);
    await adminApi(t, w.tenant, 'PATCH', '/settings', { mfa: 'optional', mfa_factors: ['totp', 'passkey'] });
  }
  tt.deepEqual(await proofsOf(victim.id), [{ subject: 'turned-off-sub', linked_by: 'password', proven_with_factor: false }]);
});

test('attack: a link proven by the mailed link alone is proven again once the account has an authenticator app', async (tt) => {
  const w = await world();
  const victim = await person(w, { password: false });
  const flow = await idpAsserts(w, victim.email, 'mailed-sub');
  await flow.mailMe();
  const confirmUrl = linkIn(await smtp.waitFor(victim.email, /Link your Link Corp sign-in/), '/sso/link/confirm/');
  tt.true(flow.reachedApp(await flow.browser.submit(confirmUrl, {})));
  tt.deepEqual(await proofsOf(victim.id), [{ subject: 'mailed-sub', linked_by: 'email_link', proven_with_factor: false }]);
  await addTotp(w, victim);
  const again = await idpSignIn(w, victim.email, 'mailed-sub');
  tt.true(again.onLinkPage, `${again.landed.res.status} ${again.landed.url}`);
  tt.false(again.reachedApp(again.landed));
});

test('a password change (by an administrator or the person) removes the links proven by the old password; the next sign-in proves again', async (tt) => {
  const w = await world();
  const victim = await personWithTotp(w);
  // Proven with the code too: still the old password's link.
  const flow = await idpAsserts(w, victim.email, 'pw-sub');
  tt.true(flow.reachedApp(await flow.byPassword({ password: PASSWORD, code: victim.recovery[0]! })));
  tt.is((await proofsOf(victim.id)).length, 1);

  const changed = await adminApi(t, w.tenant, 'PATCH', `/users/${victim.id}`, { password: 'another walnut 58 harbour' });
  tt.is(changed.status, 200, changed.text);
  tt.deepEqual(await linksOf(victim.id), []);
  const removed = await auditOf(w, 'sso.link_removed');
  tt.true(
    removed.some((a) => a.user_id === victim.id && a.subject === 'pw-sub' && /password was changed/.test(a.reason)),
    JSON.stringify(removed),
  );
  const next = await idpSignIn(w, victim.email, 'pw-sub');
  tt.true(next.onLinkPage, `${next.landed.res.status} ${next.landed.url}`);
  tt.false(next.reachedApp(next.landed));

  // The person's own change of password, likewise.
  const other = await person(w);
  await linkedByPasswordAlone(w, other, 'own-change-sub');
  tt.is((await linksOf(other.id)).length, 1);
  const me = await signIn(t, w.tenant, w.client, { email: other.email, password: PASSWORD });
  const own = await fetch(`${t.url}/t/${w.tenant.slug}/api/v1/me/password`, {
    method: 'POST',
    headers: { authorization: `Bearer ${me.tokens.access_token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ current_password: PASSWORD, new_password: 'a fresh lantern 93 valley' }),
  });
  tt.is(own.status, 204, await own.text());
  tt.deepEqual(await linksOf(other.id), []);

  // A new password through the mailed reset link, likewise.
  const third = await person(w);
  await linkedByPasswordAlone(w, third, 'reset-link-sub');
  tt.is((await linksOf(third.id)).length, 1);
  const browser = new Browser(t.url);
  const forgot = await browser.follow(`${t.url}/t/${w.tenant.slug}/account/forgot-password`);
  await browser.submit(formAction(await forgot.res.text()), { email: third.email });
  const resetForm = await browser.follow(linkIn(await smtp.waitFor(third.email, /Reset your/), '/account/reset-password/'));
  const reset = await browser.submit(formAction(await resetForm.res.text()), { password: 'a fresh lantern 93 valley' });
  tt.regex(await reset.res.text(), /Your password was changed/);
  tt.deepEqual(await linksOf(third.id), []);
});

test("an administrator's factor reset removes the links proven by the password; the next sign-in proves again", async (tt) => {
  const w = await world();
  const victim = await person(w);
  await linkedByPasswordAlone(w, victim, 'reset-sub');
  await addTotp(w, victim);
  const reset = await adminApi(t, w.tenant, 'DELETE', `/users/${victim.id}/factors`);
  tt.is(reset.status, 204, reset.text);
  // Without the removal the account (no factor any more) would open through the old link again.
  tt.deepEqual(await linksOf(victim.id), []);
  const removed = await auditOf(w, 'sso.link_removed');
  tt.true(
    removed.some((a) => a.user_id === victim.id && a.subject === 'reset-sub' && /reset/.test(a.reason)),
    JSON.stringify(removed),
  );
  const next = await idpSignIn(w, victim.email, 'reset-sub');
  tt.true(next.onLinkPage, `${next.landed.res.status} ${next.landed.url}`);
  tt.false(next.reachedApp(next.landed));
});

test("a link through the organization's verified domain is unaffected by a factor, a password change and a factor reset", async (tt) => {
  const w = await world();
  const domain = `verified${++people}.example`;
  tt.is((await adminApi(t, w.tenant, 'POST', `/organizations/${w.orgId}/domains`, { domain })).status, 201);
  tt.is((await adminApi(t, w.tenant, 'PATCH', `/organizations/${w.orgId}/domains/${domain}`, { verified: true })).status, 200);
  const email = `member@${domain}`;
  const created = await adminApi(t, w.tenant, 'POST', '/users', { email, password: PASSWORD, email_verified: true });
  const member = await addTotp(w, { email, id: created.body.id as string });

  const signIn = async (step: string) => {
    const flow = await idpSignIn(w, email, 'domain-sub');
    tt.true(flow.reachedApp(flow.landed), `${step}: ${flow.landed.res.status} ${flow.landed.url}`);
    tt.is((await flow.redeem(flow.landed.url)).claims()!.sub, member.id);
  };
  await signIn('first sign-in');
  tt.deepEqual(await proofsOf(member.id), [{ subject: 'domain-sub', linked_by: 'verified_domain', proven_with_factor: false }]);
  await signIn('with a factor');
  tt.is((await adminApi(t, w.tenant, 'PATCH', `/users/${member.id}`, { password: 'another walnut 58 harbour' })).status, 200);
  tt.is((await adminApi(t, w.tenant, 'DELETE', `/users/${member.id}/factors`)).status, 204);
  tt.deepEqual(await linksOf(member.id), [{ subject: 'domain-sub', linked_by: 'verified_domain' }]);
  await signIn('after a password change and a factor reset');
});
