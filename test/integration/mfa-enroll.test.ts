import test from 'ava';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { base32Decode, hotp, totpStep } from '../../src/factors/totp.ts';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials, formAction, linkTo, passkeyOptionsIn } from '../helpers/browser.ts';
import { type RegisteredClient, startAuthorization } from '../helpers/oidc.ts';
import { linkIn, SmtpSink } from '../helpers/smtp.ts';
import { SoftAuthenticator } from '../helpers/soft-authenticator.ts';

/**
 * Setting up a second factor within sign-in (tenant `mfa: required`, an organization requiring
 * MFA), the grace-period reminder, tenant `mfa: off` and `mfa_factors`, and invitations accepted
 * by signing in with a factor — all through the real sign-in pages and a real openid-client RP.
 */

let t: TestApp;
let smtp: SmtpSink;
let people = 0;
const PASSWORD = 'a long enough password 1';

test.before(async () => {
  smtp = await SmtpSink.start();
  t = await startTestApp({ env: { SMTP_URL: smtp.url, MAIL_POLL_MS: '100' } });
});
test.after.always(async () => {
  await t?.stop();
  await smtp?.stop();
});

/** A tenant with these settings and a web client. */
async function tenantWith(settings: Record<string, unknown> = {}) {
  const tenant = await createTenant(t);
  const client: RegisteredClient = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
  if (Object.keys(settings).length) {
    const set = await adminApi(t, tenant, 'PATCH', '/settings', settings);
    if (set.status !== 200) throw new Error(set.text);
  }
  return { tenant, client };
}

async function person(tenant: TestTenant) {
  const email = `p${++people}@enroll.test`;
  const user = (await adminApi(t, tenant, 'POST', '/users', { email, password: PASSWORD, email_verified: true })).body;
  return { email, user };
}

/** A person with a confirmed authenticator app; the key is what the test computes codes with. */
async function personWithTotp(tenant: TestTenant) {
  const p = await person(tenant);
  const factors = t.app.services.factors;
  const enrollment = await factors.startTotp(tenant.id, p.user.id, 'Tessera', p.email);
  const key = base32Decode(enrollment.secret);
  if (!(await factors.confirmTotp(tenant.id, p.user.id, enrollment.factorId, hotp(key, totpStep(Date.now() / 1000) - 1)))) throw new Error('not confirmed');
  return { ...p, key };
}

const codeNow = (key: Buffer, offset = 0) => hotp(key, totpStep(Date.now() / 1000) + offset);
const secretIn = (html: string) => /class="totp-secret">([A-Z2-7]+)</.exec(html)?.[1];
const codesIn = (html: string) => (/<pre class="recovery-codes">([\s\S]*?)<\/pre>/.exec(html)?.[1] ?? '').trim().split('\n').filter(Boolean);

/** The password step of a real authorization request; returns the page after it and what redeeming needs. */
async function passwordStep(tenant: TestTenant, client: RegisteredClient, email: string, params: Record<string, string> = {}) {
  const browser = new Browser(t.url);
  const { config, verifier, state, url } = await startAuthorization(tenant, client, { scope: 'openid email', ...params });
  const first = await browser.follow(url);
  const after = await enterCredentials(browser, await first.res.text(), first.url, email, PASSWORD);
  return { browser, config, verifier, state, after, html: await after.res.text() };
}

async function redeem(step: { config: oidc.Configuration; verifier: string; state: string }, url: string) {
  return oidc.authorizationCodeGrant(step.config, new URL(url), { pkceCodeVerifier: step.verifier, expectedState: step.state });
}

/** Scans (reads the key from the page), types the current code, saves the codes, says so. */
async function enrollThroughPages(browser: Browser, html: string, pageUrl: string) {
  const secret = secretIn(html);
  if (!secret) throw new Error(`not the enrollment page:\n${html.slice(0, 600)}`);
  const key = base32Decode(secret);
  const codes = await browser.submit(new URL(formAction(html), pageUrl).href, { code: codeNow(key) });
  const codesHtml = await codes.res.text();
  const recoveryCodes = codesIn(codesHtml);
  const done = await browser.submit(new URL(formAction(codesHtml), codes.url).href, { saved: 'yes' });
  return { key, recoveryCodes, done };
}

test('tenant mfa required: a password-only person sets up an app within sign-in and gets an ID token with pwd + otp + mfa', async (tt) => {
  const { tenant, client } = await tenantWith({ mfa: 'required' });
  const p = await person(tenant);
  const step = await passwordStep(tenant, client, p.email);
  tt.regex(step.after.url, /\/interaction\/[^/]+\/mfa\/enroll$/, 'the password leads to enrollment, not to the app');
  tt.regex(step.html, /Set up a second factor/);
  tt.regex(step.html, /<img class="totp-qr" src="data:image\/svg\+xml;base64,[^"]+"[^>]* alt="QR code/);
  tt.notRegex(step.html, /Later/, 'no way around it');
  const secret = secretIn(step.html)!;
  const key = base32Decode(secret);

  // A reload shows the same key (nothing to scan again).
  tt.is(secretIn(await (await step.browser.follow(step.after.url)).res.text()), secret);

  // A wrong first code: refused, the same key shown again, nothing confirmed.
  const wrong = await step.browser.submit(step.after.url, { code: codeNow(key, 5) });
  tt.is(wrong.res.status, 401);
  const wrongHtml = await wrong.res.text();
  tt.regex(wrongHtml, /That code is not valid/);
  tt.is(secretIn(wrongHtml), secret);

  const codesPage = await step.browser.submit(step.after.url, { code: codeNow(key) });
  tt.is(codesPage.res.status, 200);
  tt.is(codesPage.res.headers.get('cache-control'), 'no-store');
  const codesHtml = await codesPage.res.text();
  tt.is(codesIn(codesHtml).length, 10);
  tt.false(await t.app.services.factors.hasConfirmedFactor(tenant.id, p.user.id), 'not before the codes are acknowledged');

  // Not acknowledged: new codes (the first ones were never stored), still no factor.
  const finishAt = new URL(formAction(codesHtml), codesPage.url).href;
  const unacknowledged = await step.browser.submit(finishAt, {});
  tt.is(unacknowledged.res.status, 400);
  const again = await unacknowledged.res.text();
  tt.regex(again, /Confirm that you saved your recovery codes/);
  const codes = codesIn(again);
  tt.is(codes.length, 10);
  tt.notDeepEqual(codes, codesIn(codesHtml));

  const done = await step.browser.submit(finishAt, { saved: 'yes' });
  tt.true(done.url.startsWith(client.redirect_uris[0]!), done.url);
  const claims = decodeJwt((await redeem(step, done.url)).id_token!);
  tt.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
  tt.is(claims.acr, 'urn:tessera:acr:mfa');
  tt.is(claims.sub, p.user.id);

  const factors = t.app.services.factors;
  tt.true(await factors.hasConfirmedFactor(tenant.id, p.user.id));
  tt.is(await factors.unusedRecoveryCodes(tenant.id, p.user.id), 10);
  tt.false((await factors.verifySecondFactor(tenant.id, p.user.id, codesIn(codesHtml)[0]!)).ok, 'codes never acknowledged are void');
  tt.true((await factors.verifySecondFactor(tenant.id, p.user.id, codes[0]!)).ok, 'the acknowledged ones work');
  const mail = await smtp.waitFor(p.email, /sign-in factor was added/);
  tt.regex(mail.text!, /An authenticator app was added/);
  tt.false(mail.text!.includes(secret), 'never the secret');

  // The next sign-in asks for a code from the new app.
  const next = await passwordStep(tenant, client, p.email);
  tt.regex(next.after.url, /\/mfa$/);
});

test('an app asking for acr urn:tessera:acr:mfa: a person without a factor sets one up within sign-in; asking for either level does not', async (tt) => {
  const { tenant, client } = await tenantWith();
  const either = await passwordStep(tenant, client, (await person(tenant)).email, { acr_values: 'urn:tessera:acr:mfa urn:tessera:acr:pwd' });
  tt.true(either.after.url.startsWith(client.redirect_uris[0]!), 'a password sign-in meets one of the values asked for');

  const p = await person(tenant);
  const step = await passwordStep(tenant, client, p.email, { acr_values: 'urn:tessera:acr:mfa' });
  tt.regex(step.after.url, /\/mfa\/enroll$/);
  const { done } = await enrollThroughPages(step.browser, step.html, step.after.url);
  tt.true(done.url.startsWith(client.redirect_uris[0]!), done.url);
  tt.is(decodeJwt((await redeem(step, done.url)).id_token!).acr, 'urn:tessera:acr:mfa');
});

test('abandoning enrollment leaves no confirmed factor; the next sign-in starts it again', async (tt) => {
  const { tenant, client } = await tenantWith({ mfa: 'required' });
  const p = await person(tenant);
  const step = await passwordStep(tenant, client, p.email);
  const key = base32Decode(secretIn(step.html)!);
  // The first code was right and the codes were shown, then the person walked away.
  const codes = await step.browser.submit(step.after.url, { code: codeNow(key) });
  tt.is(codesIn(await codes.res.text()).length, 10);
  tt.false(await t.app.services.factors.hasConfirmedFactor(tenant.id, p.user.id));
  tt.is(await t.app.services.factors.unusedRecoveryCodes(tenant.id, p.user.id), 0);

  const next = await passwordStep(tenant, client, p.email);
  tt.regex(next.after.url, /\/mfa\/enroll$/, 'still no factor: enrollment again, not the code step');
  tt.not(secretIn(next.html), secretIn(step.html), 'a new key');
});

test('no way into enrollment without the password, and no way around it when it is required', async (tt) => {
  const { tenant, client } = await tenantWith({ mfa: 'required' });
  const config = await oidc.discovery(new URL(tenant.issuer), client.client_id, client.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  const stranger = new Browser(t.url);
  const { url } = await startAuthorization(tenant, client, {}, config);
  const started = await stranger.follow(url);
  const uidBase = started.url.replace(/\/$/, '');
  for (const path of ['/mfa/enroll', '/mfa/reminder']) {
    const direct = await stranger.follow(`${uidBase}${path}`);
    tt.is(direct.res.status, 400, path);
    tt.regex(await direct.res.text(), /Sign in first/);
  }
  for (const path of ['/mfa/enroll', '/mfa/enroll/finish', '/mfa/reminder/later']) {
    const posted = await stranger.submit(`${uidBase}${path}`, { code: '123456', saved: 'yes' });
    tt.is(posted.res.status, 400, path);
    tt.false(posted.url.startsWith(client.redirect_uris[0]!));
  }

  // After the password: "Later" is refused when no grace period runs, and the finish needs a checked code.
  const p = await person(tenant);
  const step = await passwordStep(tenant, client, p.email);
  const base = step.after.url.replace(/\/mfa\/enroll$/, '');
  const later = await step.browser.submit(`${base}/mfa/reminder/later`, {});
  tt.is(later.res.status, 403);
  tt.false(later.url.startsWith(client.redirect_uris[0]!));
  const early = await step.browser.submit(`${base}/mfa/enroll/finish`, { saved: 'yes' });
  tt.is(early.res.status, 400);
  tt.false(await t.app.services.factors.hasConfirmedFactor(tenant.id, p.user.id));

  // The code step of a person with a factor does not open enrollment (its own state, its own key).
  const withApp = await personWithTotp(tenant);
  const coded = await passwordStep(tenant, client, withApp.email);
  tt.regex(coded.after.url, /\/mfa$/);
  const cross = await coded.browser.follow(`${coded.after.url}/enroll`);
  tt.is(cross.res.status, 400);
});

test('a wrong first code counts toward the account lock like a wrong password', async (tt) => {
  const { tenant, client } = await tenantWith({ mfa: 'required', brute_force: { max_login_failures: 3, wait_increment_seconds: 600, max_wait_seconds: 600 } });
  const p = await person(tenant);
  const step = await passwordStep(tenant, client, p.email);
  const key = base32Decode(secretIn(step.html)!);
  for (let i = 0; i < 3; i++) tt.is((await step.browser.submit(step.after.url, { code: codeNow(key, 9) })).res.status, 401);
  const refused = await step.browser.submit(step.after.url, { code: codeNow(key) });
  tt.is(refused.res.status, 401);
  tt.regex(await refused.res.text(), /Too many wrong codes/);
  tt.false(await t.app.services.factors.hasConfirmedFactor(tenant.id, p.user.id));
  const again = await passwordStep(tenant, client, p.email);
  tt.is(again.after.res.status, 401, 'the password is refused too while locked');
});

/** An organization with `policy`, the person a member of it. */
async function orgFor(tenant: TestTenant, userId: string, policy: Record<string, unknown>, name = `Acme ${++people}`) {
  const org = (await adminApi(t, tenant, 'POST', '/organizations', { name })).body as { id: string; slug: string; name: string };
  await adminApi(t, tenant, 'POST', `/organizations/${org.id}/members`, { user_id: userId, role: 'member' });
  const set = await adminApi(t, tenant, 'PUT', `/organizations/${org.id}/auth-policy`, policy);
  if (set.status !== 200) throw new Error(set.text);
  return org;
}

test('organization= for an organization requiring MFA: a member without a factor enrolls, then works in it', async (tt) => {
  const { tenant, client } = await tenantWith();
  const p = await person(tenant);
  const org = await orgFor(tenant, p.user.id, { mfa_required: true });
  const step = await passwordStep(tenant, client, p.email, { organization: org.id });
  tt.regex(step.after.url, /\/mfa\/enroll$/);
  const { done } = await enrollThroughPages(step.browser, step.html, step.after.url);
  tt.true(done.url.startsWith(client.redirect_uris[0]!), done.url);
  const tokens = await redeem(step, done.url);
  tt.deepEqual(tokens.claims()!.amr, ['pwd', 'otp', 'mfa']);
  tt.is(decodeJwt(tokens.access_token).org_id, org.id);

  // Without organization=, and for someone who is not a member, the password alone goes on as before.
  const plain = await passwordStep(tenant, client, (await person(tenant)).email, { organization: org.id });
  tt.notRegex(plain.after.url, /\/mfa/);
});

test('grace period: a reminder with Set up now and Later; once it is over, enrollment with no Later', async (tt) => {
  const { tenant, client } = await tenantWith();
  const p = await person(tenant);
  const org = await orgFor(tenant, p.user.id, { mfa_required: true, mfa_grace_days: 14 }, 'Grace Works');
  const endsAt = (await adminApi(t, tenant, 'GET', `/organizations/${org.id}/auth-policy`)).body.mfa_grace_ends_at as string;

  const step = await passwordStep(tenant, client, p.email, { organization: org.id });
  tt.regex(step.after.url, /\/mfa\/reminder$/);
  tt.regex(step.html, /Grace Works requires a second factor from <time datetime="([^"]+)">/);
  tt.is(/<time datetime="([^"]+)"/.exec(step.html)![1], endsAt);
  const setUp = linkTo(step.html, /Set up now/);
  tt.regex(setUp, /\/mfa\/enroll$/);
  const later = await step.browser.submit(new URL(formAction(step.html), step.after.url).href, {});
  tt.true(later.url.startsWith(client.redirect_uris[0]!), later.url);
  const tokens = await redeem(step, later.url);
  tt.deepEqual(tokens.claims()!.amr, ['pwd']);
  tt.is(decodeJwt(tokens.access_token).org_id, org.id, 'within grace, the organization still lets the member in');
  tt.false(await t.app.services.factors.hasConfirmedFactor(tenant.id, p.user.id));

  // "Set up now" leads to enrollment, which offers "Later" too while the grace period runs.
  const now = await passwordStep(tenant, client, p.email, { organization: org.id });
  const enrollPage = await now.browser.follow(new URL(linkTo(now.html, /Set up now/), now.after.url).href);
  const enrollHtml = await enrollPage.res.text();
  tt.truthy(secretIn(enrollHtml));
  tt.regex(enrollHtml, /Later/);

  // The grace period over: straight to enrollment, and "Later" is refused.
  await adminApi(t, tenant, 'PUT', `/organizations/${org.id}/auth-policy`, { mfa_required: true, mfa_grace_days: 0 });
  const over = await passwordStep(tenant, client, p.email, { organization: org.id });
  tt.regex(over.after.url, /\/mfa\/enroll$/);
  tt.notRegex(over.html, /Later/);
  const skip = await over.browser.submit(over.after.url.replace(/enroll$/, 'reminder/later'), {});
  tt.is(skip.res.status, 403);
  const { done } = await enrollThroughPages(over.browser, over.html, over.after.url);
  tt.is(decodeJwt((await redeem(over, done.url)).access_token).org_id, org.id);
});

test('tenant mfa off: no code is asked even of a person with a factor, which counts again when turned back on', async (tt) => {
  const { tenant, client } = await tenantWith({ mfa: 'off' });
  const p = await personWithTotp(tenant);
  const step = await passwordStep(tenant, client, p.email);
  tt.true(step.after.url.startsWith(client.redirect_uris[0]!), step.after.url);
  tt.deepEqual(decodeJwt((await redeem(step, step.after.url)).id_token!).amr, ['pwd']);
  // An organization requiring MFA does not lead to enrollment either: factors are off here.
  const org = await orgFor(tenant, p.user.id, { mfa_required: true });
  const withOrg = await passwordStep(tenant, client, p.email, { organization: org.id });
  tt.notRegex(withOrg.after.url, /\/mfa/);

  tt.is((await adminApi(t, tenant, 'PATCH', '/settings', { mfa: 'optional' })).status, 200);
  const back = await passwordStep(tenant, client, p.email);
  tt.regex(back.after.url, /\/mfa$/, 'the kept factor is asked for again');
  const done = await back.browser.submit(back.after.url, { method: 'totp', code: codeNow(p.key) });
  tt.deepEqual(decodeJwt((await redeem(back, done.url)).id_token!).amr, ['pwd', 'otp', 'mfa']);
});

test('mfa_factors passkey only: no authenticator app offered at enrollment, and a TOTP code refused at the code step', async (tt) => {
  const { tenant, client } = await tenantWith({ mfa: 'required', mfa_factors: ['passkey'] });
  const p = await person(tenant);
  const step = await passwordStep(tenant, client, p.email);
  tt.is(step.after.res.status, 200);
  tt.regex(step.after.url, /\/mfa\/enroll$/);
  tt.regex(step.html, /Create a passkey/);
  tt.notRegex(step.html, /totp-secret|totp-qr|name="code"/);
  const posted = await step.browser.submit(step.after.url, { code: '123456' });
  tt.not(posted.res.status, 500);
  tt.false(posted.url.startsWith(client.redirect_uris[0]!));
  tt.false(await t.app.services.factors.hasConfirmedFactor(tenant.id, p.user.id));
  tt.deepEqual(await t.app.services.factors.list(tenant.id, p.user.id), [], 'no app enrollment was even started');

  // A person who reached the code step with an app, when apps stop being allowed: the code is refused.
  const { tenant: other, client: otherClient } = await tenantWith();
  const withApp = await personWithTotp(other);
  const coded = await passwordStep(other, otherClient, withApp.email);
  tt.regex(coded.after.url, /\/mfa$/);
  tt.is((await adminApi(t, other, 'PATCH', '/settings', { mfa_factors: ['passkey'] })).status, 200);
  const refused = await coded.browser.submit(coded.after.url, { method: 'totp', code: codeNow(withApp.key) });
  tt.is(refused.res.status, 401);
  tt.false(refused.url.startsWith(otherClient.redirect_uris[0]!));
});

test('a passkey instead of an app within sign-in: registered, then recovery codes, then the app with pwd + hwk + mfa', async (tt) => {
  const { tenant, client } = await tenantWith({ mfa: 'required' });
  const p = await person(tenant);
  const step = await passwordStep(tenant, client, p.email);
  tt.regex(step.html, /Or add a passkey/);
  const options = passkeyOptionsIn(step.html);
  tt.is(options.rp.id, 'localhost');
  tt.is(options.authenticatorSelection.residentKey, 'required');
  const key = new SoftAuthenticator({ id: 'localhost', origin: t.url });
  const at = `${step.after.url}/passkey`;

  // An answer for another site, or to a challenge never issued, registers nothing.
  const foreign = await step.browser.submit(at, { response: JSON.stringify(key.register(options.challenge, { origin: 'https://evil.example' })) });
  tt.is(foreign.res.status, 400);
  tt.regex(await foreign.res.text(), /could not be set up/);
  const unasked = await step.browser.submit(at, { response: JSON.stringify(key.register('bm90LWlzc3VlZA')) });
  tt.is(unasked.res.status, 400);
  tt.is((await step.browser.submit(at, { response: '{not json' })).res.status, 400);
  tt.false(await t.app.services.factors.hasConfirmedFactor(tenant.id, p.user.id));

  const fresh = passkeyOptionsIn(await (await step.browser.follow(step.after.url)).res.text());
  const codesPage = await step.browser.submit(at, { response: JSON.stringify(key.register(fresh.challenge)) });
  tt.is(codesPage.res.status, 200);
  const codesHtml = await codesPage.res.text();
  tt.is(codesIn(codesHtml).length, 10);
  tt.true(await t.app.services.factors.hasConfirmedFactor(tenant.id, p.user.id), 'a passkey counts from its registration');
  const done = await step.browser.submit(new URL(formAction(codesHtml), codesPage.url).href, { saved: 'yes' });
  tt.true(done.url.startsWith(client.redirect_uris[0]!), done.url);
  const claims = decodeJwt((await redeem(step, done.url)).id_token!);
  tt.deepEqual(claims.amr, ['pwd', 'hwk', 'mfa']);
  tt.is(claims.acr, 'urn:tessera:acr:mfa');
  tt.is(await t.app.services.factors.unusedRecoveryCodes(tenant.id, p.user.id), 10);
  tt.regex((await smtp.waitFor(p.email, /sign-in factor was added/)).text!, /A passkey was added/);
  tt.false(
    await t.app.services.factors.list(tenant.id, p.user.id).then((fs) => fs.some((f) => f.kind === 'totp' && f.confirmed)),
    'the app offered beside it was not confirmed',
  );

  // The next sign-in asks for the passkey.
  const next = await passwordStep(tenant, client, p.email);
  tt.regex(next.after.url, /\/mfa$/);
  tt.regex(next.html, /Use a passkey/);
});

test('a person whose only factor is a kind the tenant stopped accepting is not walked through a new one: a recovery code, or nothing', async (tt) => {
  const { tenant, client } = await tenantWith({ mfa: 'required' });
  const p = await person(tenant);
  const passkeys = t.app.services.passkeys;
  const options = await passkeys.registrationOptions(tenant.id, { id: p.user.id, email: p.email, name: null }, 'Tessera');
  tt.true((await passkeys.register(tenant.id, p.user.id, new SoftAuthenticator({ id: 'localhost', origin: t.url }).register(options.challenge), 'Key')).ok);
  const [recovery] = await t.app.services.factors.regenerateRecoveryCodes(tenant.id, p.user.id);
  tt.is((await adminApi(t, tenant, 'PATCH', '/settings', { mfa_factors: ['totp'] })).status, 200);

  const step = await passwordStep(tenant, client, p.email);
  tt.regex(step.after.url, /\/mfa$/, 'the code step, not enrollment');
  tt.regex(step.html, /not accepted here at the moment/);
  tt.regex(step.html, /<label for="code">Recovery code<\/label>/);
  tt.notRegex(step.html, /totp-secret|Use a passkey/);
  const enroll = await step.browser.follow(step.after.url.replace(/\/mfa$/, '/mfa/enroll'));
  tt.is(enroll.res.status, 400, 'no way to set up an app with the password alone');
  tt.is((await step.browser.submit(step.after.url, { method: 'totp', code: '123456' })).res.status, 401);
  const done = await step.browser.submit(step.after.url, { method: 'recovery', code: recovery! });
  const usedHtml = await done.res.text();
  tt.regex(usedHtml, /Recovery code used/);
  const next = await step.browser.follow(new URL(linkTo(usedHtml, /Continue/), done.url).href);
  tt.true(next.url.startsWith(client.redirect_uris[0]!), next.url);
  tt.deepEqual(
    (await t.app.services.factors.list(tenant.id, p.user.id)).map((f) => f.kind),
    ['passkey'],
    'no app was added',
  );
});

test('passkeys only: the enrollment within sign-in makes one, and the person gets in', async (tt) => {
  const { tenant, client } = await tenantWith({ mfa: 'required', mfa_factors: ['passkey'] });
  const p = await person(tenant);
  const step = await passwordStep(tenant, client, p.email);
  const options = passkeyOptionsIn(step.html);
  const registered = await step.browser.submit(`${step.after.url}/passkey`, {
    response: JSON.stringify(new SoftAuthenticator({ id: 'localhost', origin: t.url }).register(options.challenge)),
  });
  const codesHtml = await registered.res.text();
  tt.is(codesIn(codesHtml).length, 10);
  const done = await step.browser.submit(new URL(formAction(codesHtml), registered.url).href, { saved: 'yes' });
  tt.true(done.url.startsWith(client.redirect_uris[0]!), done.url);
});

test('a sign-in with a recovery code says how many are left before going on to the app', async (tt) => {
  const { tenant, client } = await tenantWith();
  const p = await personWithTotp(tenant);
  const codes = await t.app.services.factors.regenerateRecoveryCodes(tenant.id, p.user.id);
  for (const c of codes.slice(0, 6)) await t.app.services.factors.verifySecondFactor(tenant.id, p.user.id, c);
  const step = await passwordStep(tenant, client, p.email);
  const used = await step.browser.submit(step.after.url, { method: 'recovery', code: codes[6]! });
  tt.is(used.res.status, 200);
  const html = await used.res.text();
  tt.regex(html, /You have 3 unused recovery codes left/);
  tt.regex(html, /Generate new recovery codes/);
  tt.regex(linkTo(html, /Security page/), new RegExp(`/t/${tenant.slug}/account/security$`));
  const done = await step.browser.follow(new URL(linkTo(html, /Continue/), used.url).href);
  tt.true(done.url.startsWith(client.redirect_uris[0]!), done.url);
  tt.deepEqual(decodeJwt((await redeem(step, done.url)).id_token!).amr, ['pwd', 'otp', 'mfa']);
});

// ── invitations accepted by signing in ──────────────────────────────────────────────────────────

async function invitationLink(tenant: TestTenant, orgId: string, email: string) {
  const r = await adminApi(t, tenant, 'POST', `/organizations/${orgId}/invitations`, { email, role: 'member' });
  if (r.status !== 201) throw new Error(r.text);
  return linkIn(await smtp.waitFor(email, /invited to join/), '/invitations/');
}

async function members(tenant: TestTenant, orgId: string) {
  return ((await adminApi(t, tenant, 'GET', `/organizations/${orgId}/members`)).body.data as Array<{ email: string }>).map((m) => m.email);
}

test('an invitation accepted by signing in asks a person with a factor for the code; wrong codes are refused and counted', async (tt) => {
  // Three failures lock, and failures in quick succession do not lock at once (the test is quick).
  const { tenant } = await tenantWith({ brute_force: { max_login_failures: 3, wait_increment_seconds: 600, max_wait_seconds: 600, quick_login_check_ms: 0 } });
  const p = await personWithTotp(tenant);
  const org = (await adminApi(t, tenant, 'POST', '/organizations', { name: 'Invites With Codes' })).body as { id: string };
  const link = await invitationLink(tenant, org.id, p.email);
  const browser = new Browser(t.url);
  const page = await (await browser.follow(link)).res.text();
  tt.notRegex(page, /name="code"/, 'the code field comes after the password');
  const action = new URL(formAction(page), link).href;

  const wrongPassword = await browser.submit(action, { mode: 'signin', password: 'not it' });
  tt.is(wrongPassword.res.status, 401);
  tt.notRegex(await wrongPassword.res.text(), /name="code"/, 'a wrong password says nothing about factors');

  const asked = await browser.submit(action, { mode: 'signin', password: PASSWORD });
  tt.is(asked.res.status, 200);
  tt.regex(await asked.res.text(), /name="code"/);
  tt.false((await members(tenant, org.id)).includes(p.email), 'the password alone does not join');

  const wrong = await browser.submit(action, { mode: 'signin', password: PASSWORD, code: codeNow(p.key, 9) });
  tt.is(wrong.res.status, 401);
  tt.regex(await wrong.res.text(), /That code is not valid/);
  tt.false((await members(tenant, org.id)).includes(p.email));

  const ok = await browser.submit(action, { mode: 'signin', password: PASSWORD, code: codeNow(p.key) });
  tt.is(ok.res.status, 200);
  tt.regex(await ok.res.text(), /Welcome to Invites With Codes/);
  tt.true((await members(tenant, org.id)).includes(p.email));

  // Wrong codes lock the account, as at sign-in: the right password and code are then refused.
  const q = await personWithTotp(tenant);
  const qLink = await invitationLink(tenant, org.id, q.email);
  const qBrowser = new Browser(t.url);
  const qAction = new URL(formAction(await (await qBrowser.follow(qLink)).res.text()), qLink).href;
  for (let i = 0; i < 3; i++) await qBrowser.submit(qAction, { mode: 'signin', password: PASSWORD, code: codeNow(q.key, 9) });
  const locked = await qBrowser.submit(qAction, { mode: 'signin', password: PASSWORD, code: codeNow(q.key) });
  tt.is(locked.res.status, 401);
  tt.false((await members(tenant, org.id)).includes(q.email));
});

test('an invitation for a person whose only factor is a passkey: the page sends them to sign in with it, or takes a recovery code', async (tt) => {
  const { tenant } = await tenantWith();
  const p = await person(tenant);
  const passkeys = t.app.services.passkeys;
  const options = await passkeys.registrationOptions(tenant.id, { id: p.user.id, email: p.email, name: null }, 'Tessera');
  tt.true((await passkeys.register(tenant.id, p.user.id, new SoftAuthenticator({ id: 'localhost', origin: t.url }).register(options.challenge), 'Key')).ok);
  const [recovery] = await t.app.services.factors.regenerateRecoveryCodes(tenant.id, p.user.id);
  const org = (await adminApi(t, tenant, 'POST', '/organizations', { name: 'Passkey People' })).body as { id: string };
  const link = await invitationLink(tenant, org.id, p.email);
  const browser = new Browser(t.url);
  const action = new URL(formAction(await (await browser.follow(link)).res.text()), link).href;
  const asked = await (await browser.submit(action, { mode: 'signin', password: PASSWORD })).res.text();
  tt.regex(asked, /second factor is a passkey/);
  tt.regex(asked, new RegExp(`href="/t/${tenant.slug}/account/security"`));
  tt.regex(asked, /<label for="code">Recovery code<\/label>/);
  const code = await browser.submit(action, { mode: 'signin', password: PASSWORD, code: '123456' });
  tt.is(code.res.status, 401, 'six digits are no recovery code');
  tt.false((await members(tenant, org.id)).includes(p.email));
  const ok = await browser.submit(action, { mode: 'signin', password: PASSWORD, code: recovery! });
  tt.regex(await ok.res.text(), /Welcome to Passkey People/);
  tt.true((await members(tenant, org.id)).includes(p.email));
});

test('an invitation to an organization requiring MFA, accepted by a person without a factor, says what to do', async (tt) => {
  const { tenant, client } = await tenantWith();
  const p = await person(tenant);
  const admin = (await adminApi(t, tenant, 'GET', `/users?email=${encodeURIComponent(tenant.adminEmail)}`)).body.data[0].id;
  const org = await orgFor(tenant, admin, { mfa_required: true }, 'Strict Invites');
  const link = await invitationLink(tenant, org.id, p.email);
  const browser = new Browser(t.url);
  const action = new URL(formAction(await (await browser.follow(link)).res.text()), link).href;
  const joined = await browser.submit(action, { mode: 'signin', password: PASSWORD });
  tt.is(joined.res.status, 200);
  const html = await joined.res.text();
  tt.regex(html, /Strict Invites requires a second factor, and your account has none yet/);
  tt.regex(linkTo(html, /Security page/), /\/account\/security$/);
  // And signing in to it indeed walks them through enrollment.
  const step = await passwordStep(tenant, client, p.email, { organization: org.id });
  tt.regex(step.after.url, /\/mfa\/enroll$/);
});
