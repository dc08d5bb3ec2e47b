import test from 'ava';
import { decodeJwt } from 'jose';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { base32Decode, hotp, totpStep } from '../../src/factors/totp.ts';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials, formAction, linkTo } from '../helpers/browser.ts';
import { authorizationUrl, discover, type RegisteredClient, startAuthorization } from '../helpers/oidc.ts';

let t: TestApp;
let tenant: TestTenant;
let client: RegisteredClient;
let people = 0;
/** A tenant whose accounts lock after three failures whatever their pace (a loaded machine is slow). */
let strict: TestTenant;
let strictClient: RegisteredClient;

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
  client = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
  strict = await createTenant(t);
  strictClient = (await adminApi(t, strict, 'POST', '/clients', webClient())).body;
  const s = await adminApi(t, strict, 'PATCH', '/settings', { brute_force: { max_login_failures: 3, wait_increment_seconds: 600, max_wait_seconds: 600 } });
  if (s.status !== 200) throw new Error(s.text);
});
test.after.always(async () => t?.stop());

const PASSWORD = 'a long enough password 1';

/** A verified person with a confirmed TOTP factor; returns the key the test computes codes with. */
async function personWithTotp(tn = tenant) {
  const email = `p${++people}@mfa.test`;
  const user = (await adminApi(t, tn, 'POST', '/users', { email, password: PASSWORD, email_verified: true })).body;
  const factors = t.app.services.factors;
  const enrollment = await factors.startTotp(tn.id, user.id, 'Tessera', email);
  const key = base32Decode(enrollment.secret);
  // The enrollment counts only once confirmed; the confirming code is spent (the step before now,
  // so the current step's code stays free for the sign-in).
  const now = totpStep(Date.now() / 1000);
  if (!(await factors.confirmTotp(tn.id, user.id, enrollment.factorId, hotp(key, now - 1)))) throw new Error('enrollment not confirmed');
  return { email, user, key, factorId: enrollment.factorId };
}

const currentCode = (key: Buffer, offset = 0) => hotp(key, totpStep(Date.now() / 1000) + offset);

/** Password first; returns the browser, the page after the password and what redeeming needs. */
async function passwordStep(email: string, password = PASSWORD, tn = tenant, rp = client) {
  const browser = new Browser(t.url);
  const { config, verifier, state, url } = await startAuthorization(tn, rp, { scope: 'openid email' });
  const first = await browser.follow(url);
  const after = await enterCredentials(browser, await first.res.text(), first.url, email, password);
  return { browser, config, verifier, state, after };
}

async function enterCode(browser: Browser, pageHtml: string, pageUrl: string, code: string, method = 'totp') {
  return browser.submit(new URL(formAction(pageHtml), pageUrl).href, { method, code });
}

async function redeem(config: oidc.Configuration, url: string, verifier: string, state: string) {
  return oidc.authorizationCodeGrant(config, new URL(url), { pkceCodeVerifier: verifier, expectedState: state });
}

test('password, then a TOTP code: the ID token says pwd + otp + mfa', async (tt) => {
  const person = await personWithTotp();
  const { browser, config, verifier, state, after } = await passwordStep(person.email);
  tt.regex(after.url, /\/interaction\/[^/]+\/mfa$/, 'the password leads to the code step, not to the app');
  const html = await after.res.text();
  tt.regex(html, /Code from your authenticator app/);
  const done = await enterCode(browser, html, after.url, currentCode(person.key));
  tt.true(done.url.startsWith(client.redirect_uris[0]!), done.url);
  const tokens = await redeem(config, done.url, verifier, state);
  const claims = decodeJwt(tokens.id_token!);
  tt.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
  tt.is(claims.acr, 'urn:tessera:acr:mfa');
  tt.is(claims.sub, person.user.id);
});

test('discovery lists the acr values and the amr claim', async (tt) => {
  const doc = await (await fetch(`${tenant.issuer}/.well-known/openid-configuration`)).json();
  tt.deepEqual(doc.acr_values_supported, ['urn:tessera:acr:pwd', 'urn:tessera:acr:mfa', 'urn:tessera:acr:fed']);
  tt.true(doc.claims_supported.includes('amr'));
  tt.true(doc.claims_supported.includes('acr'));
});

test('a password-only sign-in says pwd', async (tt) => {
  const email = `plain${++people}@mfa.test`;
  await adminApi(t, tenant, 'POST', '/users', { email, password: PASSWORD, email_verified: true });
  const { config, verifier, state, after } = await passwordStep(email);
  tt.true(after.url.startsWith(client.redirect_uris[0]!), after.url);
  const claims = decodeJwt((await redeem(config, after.url, verifier, state)).id_token!);
  tt.deepEqual(claims.amr, ['pwd']);
  tt.is(claims.acr, 'urn:tessera:acr:pwd');
});

test('a code is accepted once: replaying it in its window is refused', async (tt) => {
  const person = await personWithTotp();
  const code = currentCode(person.key);
  const first = await passwordStep(person.email);
  const ok = await enterCode(first.browser, await first.after.res.text(), first.after.url, code);
  tt.true(ok.url.startsWith(client.redirect_uris[0]!));

  const second = await passwordStep(person.email);
  const replay = await enterCode(second.browser, await second.after.res.text(), second.after.url, code);
  tt.is(replay.res.status, 401);
  tt.regex(await replay.res.text(), /That code is not valid/);
  tt.false(replay.url.startsWith(client.redirect_uris[0]!));
});

test('one code sent by many requests at once is accepted by exactly one; the step before it is then spent too', async (tt) => {
  const person = await personWithTotp();
  const factors = t.app.services.factors;
  const code = currentCode(person.key);
  const results = await Promise.all(Array.from({ length: 8 }, () => factors.verifySecondFactor(tenant.id, person.user.id, code)));
  tt.is(results.filter((r) => r.ok).length, 1);
  tt.false((await factors.verifySecondFactor(tenant.id, person.user.id, currentCode(person.key, -1))).ok, 'an earlier step is no use after a later one');
});

test('codes sent at once take turns: a burst of wrong codes is judged one by one, so the lock stops it early', async (tt) => {
  const person = await personWithTotp(strict);
  const steps = [];
  for (let i = 0; i < 10; i++) {
    const s = await passwordStep(person.email, PASSWORD, strict, strictClient);
    steps.push({ ...s, html: await s.after.res.text() });
  }
  const wrong = currentCode(person.key, 5);
  const [last, ...burst] = steps;
  const answers = await Promise.all(burst.map((s) => enterCode(s.browser, s.html, s.after.url, wrong)));
  tt.true(answers.every((a) => a.res.status === 401));
  tt.is((await enterCode(last!.browser, last!.html, last!.after.url, currentCode(person.key))).res.status, 401, 'locked: the right code is refused');
  // Judged one after another, the codes stop counting once the account is locked; judged all at
  // once, all nine would have been tried and counted.
  const counted = await sql<{
    failures: number;
  }>`select failures from auth_throttle where tenant_id = ${strict.id} and key = ${`account:${person.email}`}`.execute(t.app.connection.db);
  tt.true((counted.rows[0]?.failures ?? 0) <= 3, `failures counted: ${counted.rows[0]?.failures}`);
});

test('no way past the code step with the password alone', async (tt) => {
  const person = await personWithTotp();
  const { browser, after } = await passwordStep(person.email);
  const mfaUrl = after.url;
  const uidBase = mfaUrl.replace(/\/mfa$/, '');
  // Going back to the interaction, or to the login form again, does not finish the sign-in.
  const back = await browser.follow(uidBase);
  tt.false(back.url.startsWith(client.redirect_uris[0]!));
  // Empty, malformed and wrong codes are refused.
  for (const code of ['', 'abcdef', '1234567', '000000x', currentCode(person.key, 5)]) {
    const r = await browser.submit(mfaUrl, { method: 'totp', code });
    tt.is(r.res.status, 401, JSON.stringify(code));
    tt.false(r.url.startsWith(client.redirect_uris[0]!));
  }
  // The code step of an interaction whose password was never entered answers 400, even with a right code.
  const stranger = new Browser(t.url);
  const started = await stranger.follow(await authorizationUrl(await discover(tenant, client), client));
  const strangerMfa = started.url.replace(/\/?$/, '/mfa');
  const direct = await stranger.submit(strangerMfa, { method: 'totp', code: currentCode(person.key) });
  tt.is(direct.res.status, 400);
  tt.regex(await direct.res.text(), /Sign in first/);
  // Another browser cannot use this browser's code step (the interaction cookie binds it).
  const thief = await new Browser(t.url).submit(mfaUrl, { method: 'totp', code: currentCode(person.key) });
  tt.false(thief.url.startsWith(client.redirect_uris[0]!));
  tt.not(thief.res.status, 303);
});

test('wrong codes lock the account like wrong passwords; the right code is then refused', async (tt) => {
  const person = await personWithTotp(strict);
  const { browser, after } = await passwordStep(person.email, PASSWORD, strict, strictClient);
  for (let i = 0; i < 3; i++) {
    const wrong = await browser.submit(after.url, { method: 'totp', code: currentCode(person.key, 9) });
    tt.is(wrong.res.status, 401);
  }
  const refused = await browser.submit(after.url, { method: 'totp', code: currentCode(person.key) });
  tt.is(refused.res.status, 401);
  tt.false(refused.url.startsWith(strictClient.redirect_uris[0]!));
  // The lock holds for the password too.
  const again = await passwordStep(person.email, PASSWORD, strict, strictClient);
  tt.is(again.after.res.status, 401);
  tt.regex(await again.after.res.text(), /Invalid email or password/);
  // An admin lifts the lock: the right code then works.
  tt.is((await adminApi(t, strict, 'POST', `/users/${person.user.id}/unlock`)).status, 204);
  const later = await passwordStep(person.email, PASSWORD, strict, strictClient);
  const ok = await enterCode(later.browser, await later.after.res.text(), later.after.url, currentCode(person.key, 1));
  tt.true(ok.url.startsWith(strictClient.redirect_uris[0]!), ok.url);
});

test('the right password again does not clear the wrong codes: guessing codes still ends in the lock', async (tt) => {
  const person = await personWithTotp(strict);
  const first = await passwordStep(person.email, PASSWORD, strict, strictClient);
  tt.is((await first.browser.submit(first.after.url, { method: 'totp', code: currentCode(person.key, 9) })).res.status, 401);
  // Starting over with the right password, then guessing again: the earlier wrong code still counts.
  const second = await passwordStep(person.email, PASSWORD, strict, strictClient);
  tt.regex(second.after.url, /\/mfa$/);
  tt.is((await second.browser.submit(second.after.url, { method: 'totp', code: currentCode(person.key, 8) })).res.status, 401);
  const third = await passwordStep(person.email, PASSWORD, strict, strictClient);
  if (third.after.url.endsWith('/mfa')) await third.browser.submit(third.after.url, { method: 'totp', code: currentCode(person.key, 7) });
  // Three wrong codes in all: locked, for the password and for the right code alike.
  const after = await passwordStep(person.email, PASSWORD, strict, strictClient);
  tt.is(after.after.res.status, 401);
  tt.regex(await after.after.res.text(), /Invalid email or password/);
  await adminApi(t, strict, 'POST', `/users/${person.user.id}/unlock`);
});

test('a recovery code works once; regenerating voids the old set', async (tt) => {
  const person = await personWithTotp();
  const factors = t.app.services.factors;
  const codes = await factors.regenerateRecoveryCodes(tenant.id, person.user.id);
  tt.is(codes.length, 10);
  tt.is(new Set(codes).size, 10);

  const first = await passwordStep(person.email);
  const used = await enterCode(first.browser, await first.after.res.text(), first.after.url, codes[0]!.toUpperCase(), 'recovery');
  // The person is told how many codes are left, then goes on to the app.
  const usedHtml = await used.res.text();
  tt.regex(usedHtml, /You have 9 unused recovery codes left/);
  tt.notRegex(usedHtml, /Generate new recovery codes/, 'no warning while plenty are left');
  const ok = await first.browser.follow(new URL(linkTo(usedHtml, /Continue/), used.url).href);
  tt.true(ok.url.startsWith(client.redirect_uris[0]!), ok.url);
  const claims = decodeJwt((await redeem(first.config, ok.url, first.verifier, first.state)).id_token!);
  tt.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
  tt.is(await factors.unusedRecoveryCodes(tenant.id, person.user.id), 9);

  const second = await passwordStep(person.email);
  const reused = await enterCode(second.browser, await second.after.res.text(), second.after.url, codes[0]!, 'recovery');
  tt.is(reused.res.status, 401, 'a used code is refused');

  const fresh = await factors.regenerateRecoveryCodes(tenant.id, person.user.id);
  tt.is(await factors.unusedRecoveryCodes(tenant.id, person.user.id), 10);
  tt.false((await factors.verifySecondFactor(tenant.id, person.user.id, codes[1]!)).ok, 'an old, unused code is void');
  tt.deepEqual(await factors.verifySecondFactor(tenant.id, person.user.id, fresh[1]!), { ok: true, method: 'recovery_code' });
});

test('a factor is for its owner only; an unconfirmed one does not count; the secret is sealed', async (tt) => {
  const person = await personWithTotp();
  const other = (await adminApi(t, tenant, 'POST', '/users', { email: `other${++people}@mfa.test`, password: PASSWORD, email_verified: true })).body;
  const factors = t.app.services.factors;
  tt.false((await factors.verifySecondFactor(tenant.id, other.id, currentCode(person.key))).ok, "another person's code is no code");
  await tt.throwsAsync(factors.remove(tenant.id, other.id, person.factorId), { message: /No such factor/ });

  const started = await factors.startTotp(tenant.id, other.id, 'Tessera', other.email);
  tt.false(await factors.hasConfirmedFactor(tenant.id, other.id), 'not before its first code');
  tt.false(await factors.confirmTotp(tenant.id, other.id, started.factorId, currentCode(base32Decode(started.secret), 5)), 'a wrong first code');
  tt.false(await factors.hasConfirmedFactor(tenant.id, other.id));
  const stored = await sql<{ secret_encrypted: string }>`select secret_encrypted from user_factors where id = ${started.factorId}`.execute(t.app.connection.db);
  tt.regex(stored.rows[0]!.secret_encrypted, /^v1\./, 'sealed (AES-GCM), not the base32 secret');
  tt.false(stored.rows[0]!.secret_encrypted.includes(started.secret));
  const listed = await factors.list(tenant.id, other.id);
  tt.deepEqual(Object.keys(listed[0]!).sort(), ['confirmed', 'created_at', 'id', 'kind', 'last_used_at', 'name']);
  tt.false(listed[0]!.confirmed);

  const removed = await factors.remove(tenant.id, person.user.id, person.factorId);
  tt.is(removed.kind, 'totp');
  tt.false(await factors.hasConfirmedFactor(tenant.id, person.user.id));
  // Without a factor the password is enough again.
  const { after } = await passwordStep(person.email);
  tt.true(after.url.startsWith(client.redirect_uris[0]!), after.url);
});

test('step-up: an organization requiring MFA refuses the password alone and grants its org-scoped token after the code', async (tt) => {
  const on = await createTenant(t);
  const rp: RegisteredClient = (await adminApi(t, on, 'POST', '/clients', webClient())).body;
  const person = await personWithTotp(on);
  const org = (await adminApi(t, on, 'POST', '/organizations', { name: 'Needs MFA' })).body.id as string;
  tt.is((await adminApi(t, on, 'POST', `/organizations/${org}/members`, { user_id: person.user.id, role: 'member' })).status, 201);
  tt.is((await adminApi(t, on, 'PATCH', `/organizations/${org}/auth-policy`, { mfa_required: true })).status, 200);

  const browser = new Browser(t.url);
  const { config, verifier, state, url } = await startAuthorization(on, rp, { scope: 'openid email', organization: org });
  const first = await browser.follow(url);
  const after = await enterCredentials(browser, await first.res.text(), first.url, person.email, PASSWORD);
  tt.regex(after.url, /\/interaction\/[^/]+\/mfa$/, 'the password alone does not reach the app');
  const done = await enterCode(browser, await after.res.text(), after.url, currentCode(person.key));
  tt.true(done.url.startsWith(rp.redirect_uris[0]!), done.url);
  const tokens = await redeem(config, done.url, verifier, state);
  const access = decodeJwt(tokens.access_token);
  tt.is(access.org_id, org, 'the org-scoped token, granted to the two-factor session');
  tt.deepEqual(access.amr, ['pwd', 'otp', 'mfa']);
  // And it stays granted on refresh into the organization.
  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, { organization: org });
  tt.is(decodeJwt(refreshed.access_token).org_id, org);
});
