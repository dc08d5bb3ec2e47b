import test from 'ava';
import { decodeJwt } from 'jose';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { base32Decode, hotp, totpStep } from '../../src/factors/totp.ts';
import { deleteStaleAccountRows } from '../../src/maintenance.ts';
import { adminApi, createTenant, freePort, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials, passkeyOptionsIn } from '../helpers/browser.ts';
import { type RegisteredClient, startAuthorization } from '../helpers/oidc.ts';
import { SmtpSink } from '../helpers/smtp.ts';
import { SoftAuthenticator } from '../helpers/soft-authenticator.ts';

/**
 * Passkeys over plain HTTP with an authenticator made in software: registration on the Security
 * page, the second factor after a password, passwordless sign-in, and the attacks on each.
 * (The same flows in Chromium with its virtual authenticator: passkeys-browser.test.ts.)
 */

let t: TestApp;
let sink: SmtpSink;
let tenant: TestTenant;
let client: RegisteredClient;
/** Accounts lock after three failures whatever their pace. */
let strict: TestTenant;
let strictClient: RegisteredClient;
let people = 0;
const PASSWORD = 'passkeys are the future 9';

test.before(async () => {
  const smtpPort = await freePort();
  sink = await SmtpSink.start(smtpPort);
  t = await startTestApp({ env: { SMTP_URL: `smtp://127.0.0.1:${smtpPort}`, MAIL_POLL_MS: '100' } });
  tenant = await createTenant(t);
  client = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
  strict = await createTenant(t);
  strictClient = (await adminApi(t, strict, 'POST', '/clients', webClient())).body;
  const s = await adminApi(t, strict, 'PATCH', '/settings', { brute_force: { max_login_failures: 3, wait_increment_seconds: 600, max_wait_seconds: 600 } });
  if (s.status !== 200) throw new Error(s.text);
});
test.after.always(async () => {
  await t?.stop();
  await sink?.stop();
});

const rp = () => ({ id: 'localhost', origin: t.url });

async function person(tn = tenant, opts: { email?: string; emailVerified?: boolean } = {}) {
  const email = opts.email ?? `p${++people}@passkeys.test`;
  const res = await adminApi(t, tn, 'POST', '/users', { email, password: PASSWORD, email_verified: opts.emailVerified ?? true });
  if (res.status !== 201) throw new Error(res.text);
  return { email, user: res.body as { id: string } };
}

/** A passkey registered through the service (the HTTP registration has tests of its own). */
async function enroll(tn: TestTenant, userId: string, email: string, opts: ConstructorParameters<typeof SoftAuthenticator>[1] = {}) {
  const passkeys = t.app.services.passkeys;
  const auth = new SoftAuthenticator(rp(), opts);
  const options = await passkeys.registrationOptions(tn.id, { id: userId, email, name: null }, 'Tessera');
  const done = await passkeys.register(tn.id, userId, auth.register(options.challenge), 'Test key');
  if (!done.ok) throw new Error(`enrollment refused: ${done.refused}`);
  auth.opts.userHandle = Buffer.from(options.user.id, 'base64url');
  return auth;
}

/** An authorization request's sign-in page in a fresh browser. */
async function signInPage(tn = tenant, rpClient = client) {
  const browser = new Browser(t.url);
  const { config, verifier, state, url } = await startAuthorization(tn, rpClient, { scope: 'openid email' });
  const first = await browser.follow(url);
  return { browser, config, verifier, state, html: await first.res.text(), url: first.url };
}

async function options(browser: Browser, url: string) {
  const res = await browser.request(url, { method: 'POST', headers: { origin: t.url, accept: 'application/json' } });
  return { status: res.status, body: (await res.json()) as any };
}

const answer = (browser: Browser, url: string, response: unknown) =>
  browser.submit(url, { response: typeof response === 'string' ? response : JSON.stringify(response) });

async function redeem(s: { config: oidc.Configuration; verifier: string; state: string }, url: string) {
  const tokens = await oidc.authorizationCodeGrant(s.config, new URL(url), { pkceCodeVerifier: s.verifier, expectedState: s.state });
  return decodeJwt(tokens.id_token!);
}

/** Passwordless: options from the email-first page, the authenticator's answer posted back. */
async function passwordless(auth: SoftAuthenticator, tn = tenant, rpClient = client, over: Parameters<SoftAuthenticator['assert']>[1] = {}) {
  const s = await signInPage(tn, rpClient);
  const o = await options(s.browser, `${s.url}/passkey/options`);
  if (o.status !== 200) throw new Error(JSON.stringify(o.body));
  const done = await answer(s.browser, `${s.url}/passkey`, auth.assert(o.body.challenge, over));
  return { ...s, options: o.body, done };
}

/** Password first, to the code step; returns its URL. */
async function passwordStep(email: string, tn = tenant, rpClient = client) {
  const s = await signInPage(tn, rpClient);
  const after = await enterCredentials(s.browser, s.html, s.url, email, PASSWORD);
  if (!/\/mfa$/.test(after.url)) throw new Error(`not at the code step: ${after.url}`);
  return { ...s, mfaUrl: after.url, mfaHtml: await after.res.text() };
}

// ── registration on the Security page ─────────────────────────────────────────

async function signedIn(p: { email: string }) {
  const browser = new Browser(t.url);
  const first = await browser.follow(`${t.url}/t/${tenant.slug}/account/security`);
  const done = await enterCredentials(browser, await first.res.text(), first.url, p.email, PASSWORD);
  const html = await done.res.text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
  if (!csrf) throw new Error(`not signed in: ${done.url}`);
  return { browser, csrf, html };
}

const security = (path = '') => `${t.url}/t/${tenant.slug}/account/security${path}`;

test('a credential id already registered — the same authenticator again, or someone else’s — is refused with 409, never a 500', async (tt) => {
  const owner = await person();
  const theirs = await enroll(tenant, owner.user.id, owner.email);
  // Someone else answers with the owner's authenticator, over the Security page.
  const other = await person();
  const s = await signedIn(other);
  const o = passkeyOptionsIn(await (await s.browser.submit(security('/passkeys'), { _csrf: s.csrf, current_password: PASSWORD })).res.text());
  const taken = await s.browser.submit(security('/passkeys/verify'), {
    _csrf: s.csrf,
    name: 'Mine now',
    response: JSON.stringify(theirs.register(o.challenge)),
  });
  tt.is(taken.res.status, 409);
  tt.regex(await taken.res.text(), /already registered/);
  tt.deepEqual(await t.app.services.factors.list(tenant.id, other.user.id), []);
  // The owner registers the same authenticator twice.
  const passkeys = t.app.services.passkeys;
  const again = await passkeys.registrationOptions(tenant.id, { id: owner.user.id, email: owner.email, name: null }, 'Tessera');
  tt.like(await passkeys.register(tenant.id, owner.user.id, theirs.register(again.challenge), 'Again'), { ok: false, refused: 'already_registered' });
  tt.is((await t.app.services.factors.list(tenant.id, owner.user.id)).length, 1);
});

test('adding a passkey: the password first, then options for a discoverable credential; the answer stores it and mails the person', async (tt) => {
  const p = await person();
  const s = await signedIn(p);
  tt.regex(s.html, /Add a passkey/);
  const wrong = await s.browser.submit(security('/passkeys'), { _csrf: s.csrf, current_password: 'nope', name: 'Laptop' });
  tt.is(wrong.res.status, 422);
  tt.regex(await wrong.res.text(), /not your current password/);

  const existing = await enroll(tenant, p.user.id, p.email);
  const started = await s.browser.submit(security('/passkeys'), { _csrf: s.csrf, current_password: PASSWORD, name: 'Laptop' });
  tt.is(started.res.status, 200);
  const html = await started.res.text();
  tt.regex(html, /<script src="\/assets\/webauthn.js" defer><\/script>/);
  const o = passkeyOptionsIn(html);
  tt.is(o.rp.id, 'localhost');
  tt.is(o.attestation, 'none');
  tt.like(o.authenticatorSelection, { residentKey: 'required', userVerification: 'preferred' });
  tt.deepEqual(
    o.excludeCredentials.map((c: { id: string }) => c.id),
    [existing.id],
    "the person's passkeys are excluded",
  );

  const auth = new SoftAuthenticator(rp());
  const done = await s.browser.submit(security('/passkeys/verify'), { _csrf: s.csrf, name: 'Laptop', response: JSON.stringify(auth.register(o.challenge)) });
  tt.is(done.res.status, 200);
  const page = await done.res.text();
  tt.regex(page, /Passkey added/);
  tt.regex(page, /Laptop <span class="muted">\(passkey\)<\/span>/);
  const mail = await sink.waitFor(p.email, /sign-in factor was added/);
  tt.regex(mail.text!, /A passkey was added/);
  tt.notRegex(mail.text!, /Laptop/, 'the mail names the kind, not the label');

  // The challenge was spent: the same answer again is refused, as is a second credential on it.
  const replay = await s.browser.submit(security('/passkeys/verify'), { _csrf: s.csrf, name: 'Again', response: JSON.stringify(auth.register(o.challenge)) });
  tt.is(replay.res.status, 400);
  tt.regex(await replay.res.text(), /expired or was already used/);
  const other = new SoftAuthenticator(rp());
  const replay2 = await s.browser.submit(security('/passkeys/verify'), { _csrf: s.csrf, response: JSON.stringify(other.register(o.challenge)) });
  tt.is(replay2.res.status, 400);
});

test("registration: another person's challenge, another origin or RP ID, bad JSON and no CSRF token are refused", async (tt) => {
  const a = await person();
  const b = await person();
  const sa = await signedIn(a);
  const sb = await signedIn(b);
  const start = async (s: typeof sa) =>
    passkeyOptionsIn(await (await s.browser.submit(security('/passkeys'), { _csrf: s.csrf, current_password: PASSWORD })).res.text());
  const verify = (s: typeof sa, response: unknown) =>
    s.browser.submit(security('/passkeys/verify'), { _csrf: s.csrf, response: typeof response === 'string' ? response : JSON.stringify(response) });

  const foreign = await start(sa);
  tt.is((await verify(sb, new SoftAuthenticator(rp()).register(foreign.challenge))).res.status, 400, "b answers a's challenge");

  const o = await start(sa);
  tt.is((await verify(sa, new SoftAuthenticator(rp()).register(o.challenge, { origin: 'https://evil.example' }))).res.status, 400);
  const o2 = await start(sa);
  tt.is((await verify(sa, new SoftAuthenticator(rp()).register(o2.challenge, { rpId: 'evil.example' }))).res.status, 400);
  for (const bad of ['{not json', '[]', '{"id":"x"}']) {
    const r = await verify(sa, bad);
    tt.is(r.res.status, 400, bad);
  }
  const noCsrf = await sa.browser.submit(security('/passkeys/verify'), { response: '{}' });
  tt.is(noCsrf.res.status, 403);
  tt.is((await t.app.services.factors.list(tenant.id, a.user.id)).length, 0, 'nothing was stored');
});

test('a registration challenge expires after 5 minutes, and expired ones are cleaned up', async (tt) => {
  const p = await person();
  const s = await signedIn(p);
  const o = passkeyOptionsIn(await (await s.browser.submit(security('/passkeys'), { _csrf: s.csrf, current_password: PASSWORD })).res.text());
  tt.is(o.timeout, 300_000);
  const db = t.app.connection.db;
  const row = await db.selectFrom('passkey_challenges').select('expires_at').where('challenge', '=', o.challenge).executeTakeFirstOrThrow();
  const ttl = row.expires_at.getTime() - Date.now();
  tt.true(ttl > 290_000 && ttl <= 300_000, String(ttl));
  // Five minutes later:
  await db
    .updateTable('passkey_challenges')
    .set({ expires_at: new Date(Date.now() - 1000) })
    .where('challenge', '=', o.challenge)
    .execute();
  const late = await s.browser.submit(security('/passkeys/verify'), {
    _csrf: s.csrf,
    response: JSON.stringify(new SoftAuthenticator(rp()).register(o.challenge)),
  });
  tt.is(late.res.status, 400);
  tt.regex(await late.res.text(), /expired or was already used/);

  const o2 = passkeyOptionsIn(await (await s.browser.submit(security('/passkeys'), { _csrf: s.csrf, current_password: PASSWORD })).res.text());
  await db
    .updateTable('passkey_challenges')
    .set({ expires_at: new Date(Date.now() - 1000) })
    .where('challenge', '=', o2.challenge)
    .execute();
  await deleteStaleAccountRows(db);
  tt.is(await db.selectFrom('passkey_challenges').select('challenge').where('challenge', '=', o2.challenge).executeTakeFirst(), undefined);
});

test('a passkey left unnamed is named after its provider when the authenticator says which, else "Passkey"', async (tt) => {
  const p = await person();
  const s = await signedIn(p);
  for (const aaguid of ['fbfc3007-154e-4ecc-8c0b-6e020557d7bd', undefined]) {
    const o = passkeyOptionsIn(await (await s.browser.submit(security('/passkeys'), { _csrf: s.csrf, current_password: PASSWORD, name: '' })).res.text());
    const auth = new SoftAuthenticator(rp(), aaguid ? { aaguid } : {});
    const done = await s.browser.submit(security('/passkeys/verify'), { _csrf: s.csrf, name: '', response: JSON.stringify(auth.register(o.challenge)) });
    tt.is(done.res.status, 200);
  }
  const names = (await t.app.services.factors.list(tenant.id, p.user.id)).map((f) => f.name);
  tt.deepEqual(names.sort(), ['Passkey', 'iCloud Keychain']);
});

test('rename and remove a passkey: the name changes; removing asks for the password and mails the person', async (tt) => {
  const p = await person();
  const s = await signedIn(p);
  await enroll(tenant, p.user.id, p.email);
  const [factor] = await t.app.services.factors.list(tenant.id, p.user.id);
  const renamed = await s.browser.submit(security(`/factors/${factor!.id}/rename`), { _csrf: s.csrf, name: 'Blue key' });
  tt.is(renamed.res.status, 200);
  tt.regex(await renamed.res.text(), /Blue key/);
  tt.is((await s.browser.submit(security(`/factors/${factor!.id}/rename`), { _csrf: s.csrf, name: '  ' })).res.status, 422);

  const other = await person();
  const so = await signedIn(other);
  tt.is((await so.browser.submit(security(`/factors/${factor!.id}/rename`), { _csrf: so.csrf, name: 'Mine now' })).res.status, 404);

  const removed = await s.browser.submit(security(`/factors/${factor!.id}/remove`), { _csrf: s.csrf, current_password: PASSWORD });
  tt.regex(await removed.res.text(), /Factor removed/);
  tt.deepEqual(await t.app.services.factors.list(tenant.id, p.user.id), []);
  const mail = await sink.waitFor(p.email, /sign-in factor was removed/);
  tt.regex(mail.text!, /A passkey was removed/);
});

// ── passwordless ──────────────────────────────────────────────────────────────

test('passwordless: the email-first page offers it; a device-bound passkey gives hwk + user + mfa, a synced one swk', async (tt) => {
  const p = await person();
  const bound = await enroll(tenant, p.user.id, p.email);
  const s = await passwordless(bound);
  tt.regex(s.html, /Sign in with a passkey/);
  tt.regex(s.html, /autocomplete="username webauthn"/);
  tt.is(s.options.userVerification, 'required');
  tt.deepEqual(s.options.allowCredentials ?? [], [], 'discoverable: no list of credentials to give away');
  tt.true(s.done.url.startsWith(client.redirect_uris[0]!), s.done.url);
  const claims = await redeem(s, s.done.url);
  tt.is(claims.sub, p.user.id);
  tt.deepEqual(claims.amr, ['hwk', 'user', 'mfa']);
  tt.is(claims.acr, 'urn:tessera:acr:mfa');

  const synced = await enroll(tenant, p.user.id, p.email, { backedUp: true });
  const s2 = await passwordless(synced);
  tt.deepEqual((await redeem(s2, s2.done.url)).amr, ['swk', 'user', 'mfa']);
  const [used] = (await t.app.services.factors.list(tenant.id, p.user.id)).filter((f) => f.last_used_at);
  tt.truthy(used, 'last use recorded');
});

test('passwordless: user verification is required', async (tt) => {
  const p = await person();
  const auth = await enroll(tenant, p.user.id, p.email);
  const s = await passwordless(auth, tenant, client, { userVerified: false });
  tt.is(s.done.res.status, 401);
  tt.regex(await s.done.res.text(), /did not sign you in/);
});

test('passwordless: a replayed challenge is refused, and so is an assertion made for an older challenge', async (tt) => {
  const p = await person();
  const auth = await enroll(tenant, p.user.id, p.email);
  const s = await signInPage();
  const o = await options(s.browser, `${s.url}/passkey/options`);
  const first = auth.assert(o.body.challenge);
  // A second options call replaces the challenge: the first answer no longer matches.
  await options(s.browser, `${s.url}/passkey/options`);
  const stale = await answer(s.browser, `${s.url}/passkey`, first);
  tt.is(stale.res.status, 401);
  // That attempt spent the newer challenge too: answering it now finds none.
  const replay = await answer(s.browser, `${s.url}/passkey`, auth.assert(o.body.challenge));
  tt.is(replay.res.status, 400);
  tt.regex(await replay.res.text(), /expired or was already used/);
  tt.false(replay.url.startsWith(client.redirect_uris[0]!));
});

test('passwordless: a challenge expires after 5 minutes', async (tt) => {
  const p = await person();
  const auth = await enroll(tenant, p.user.id, p.email);
  const s = await signInPage();
  const o = await options(s.browser, `${s.url}/passkey/options`);
  tt.is(o.body.timeout, 300_000);
  const uid = decodeURIComponent(new URL(s.url).pathname.split('/').pop()!);
  // Five minutes later (the challenge is kept on the interaction):
  const moved = await sql`
    UPDATE oidc_payloads SET payload = jsonb_set(payload, '{lastSubmission,tessera_passkey_challenge,expiresAt}', to_jsonb(${Date.now() - 1000}::bigint))
    WHERE model = 'Interaction' AND id = ${uid}`.execute(t.app.connection.db);
  tt.is(Number(moved.numAffectedRows), 1);
  const late = await answer(s.browser, `${s.url}/passkey`, auth.assert(o.body.challenge));
  tt.is(late.res.status, 400);
  tt.regex(await late.res.text(), /expired or was already used/);
});

test('passwordless: another origin or RP ID is refused', async (tt) => {
  const p = await person();
  const auth = await enroll(tenant, p.user.id, p.email);
  for (const over of [{ origin: 'https://evil.example' }, { rpId: 'evil.example' }, { origin: 'http://localhost:1' }]) {
    const s = await passwordless(auth, tenant, client, over);
    tt.is(s.done.res.status, 401, JSON.stringify(over));
    tt.false(s.done.url.startsWith(client.redirect_uris[0]!));
  }
});

test("passwordless: another tenant's credential is not found here", async (tt) => {
  const p = await person(strict);
  const auth = await enroll(strict, p.user.id, p.email);
  const s = await passwordless(auth, tenant, client);
  tt.is(s.done.res.status, 401);
  // At home it works.
  const home = await passwordless(auth, strict, strictClient);
  tt.true(home.done.url.startsWith(strictClient.redirect_uris[0]!));
});

test('a sign count that goes back is refused (a cloned authenticator)', async (tt) => {
  const p = await person();
  const auth = await enroll(tenant, p.user.id, p.email);
  const ok = await passwordless(auth, tenant, client, { counter: 5 });
  tt.true(ok.done.url.startsWith(client.redirect_uris[0]!));
  for (const counter of [3, 5]) {
    const clone = await passwordless(auth, tenant, client, { counter });
    tt.is(clone.done.res.status, 401, `counter ${counter}`);
  }
  // The refusals counted toward the account's lock, quick as they came.
  await adminApi(t, tenant, 'POST', `/users/${p.user.id}/unlock`);
  const next = await passwordless(auth, tenant, client, { counter: 6 });
  tt.true(next.done.url.startsWith(client.redirect_uris[0]!));
  // An authenticator that counts nothing (always 0) is not a clone.
  const still = await enroll(tenant, p.user.id, p.email, { countsSignatures: false });
  for (let i = 0; i < 2; i++) tt.true((await passwordless(still)).done.url.startsWith(client.redirect_uris[0]!));
});

test("a passkey that names another person's user handle is refused", async (tt) => {
  const a = await person();
  const b = await person();
  const auth = await enroll(tenant, a.user.id, a.email);
  const bHandle = Buffer.from(b.user.id.replace(/-/g, ''), 'hex');
  const s = await passwordless(auth, tenant, client, { userHandle: bHandle });
  tt.is(s.done.res.status, 401);
});

test('passwordless keeps the rails: SSO-required domain, disabled account, unverified email', async (tt) => {
  const org = (await adminApi(t, tenant, 'POST', '/organizations', { name: 'SSO Only' })).body;
  tt.is((await adminApi(t, tenant, 'POST', `/organizations/${org.id}/domains`, { domain: 'sso-only.test' })).status, 201);
  tt.is((await adminApi(t, tenant, 'PATCH', `/organizations/${org.id}/domains/sso-only.test`, { verified: true })).status, 200);
  tt.is((await adminApi(t, tenant, 'PATCH', `/organizations/${org.id}`, { sso_required: true })).status, 200);
  const sso = await person(tenant, { email: 'worker@sso-only.test' });
  const ssoAuth = await enroll(tenant, sso.user.id, sso.email);
  const refused = await passwordless(ssoAuth);
  tt.is(refused.done.res.status, 403);
  tt.regex(await refused.done.res.text(), /requires single sign-on/);

  const off = await person();
  const offAuth = await enroll(tenant, off.user.id, off.email);
  tt.is((await adminApi(t, tenant, 'PATCH', `/users/${off.user.id}`, { disabled: true })).status, 200);
  tt.is((await passwordless(offAuth)).done.res.status, 401);

  await adminApi(t, strict, 'PATCH', '/settings', { email_verification_required: true });
  try {
    const unverified = await person(strict, { emailVerified: false });
    const auth = await enroll(strict, unverified.user.id, unverified.email);
    const r = await passwordless(auth, strict, strictClient);
    tt.is(r.done.res.status, 403);
    tt.regex(await r.done.res.text(), /Confirm your email first/);
  } finally {
    await adminApi(t, strict, 'PATCH', '/settings', { email_verification_required: false });
  }
});

test('passwordless: refusals count toward the account lock, and a locked account is refused even with its passkey', async (tt) => {
  const p = await person(strict);
  const auth = await enroll(strict, p.user.id, p.email);
  for (let i = 0; i < 3; i++) {
    const r = await passwordless(auth, strict, strictClient, { userVerified: false });
    tt.is(r.done.res.status, 401, `attempt ${i + 1}`);
  }
  const locked = await passwordless(auth, strict, strictClient);
  tt.is(locked.done.res.status, 401);
  tt.false(locked.done.url.startsWith(strictClient.redirect_uris[0]!));
  await adminApi(t, strict, 'POST', `/users/${p.user.id}/unlock`);
  const unlocked = await passwordless(auth, strict, strictClient);
  tt.true(unlocked.done.url.startsWith(strictClient.redirect_uris[0]!));
});

test('bad input to the passkey endpoints is a 4xx, never a 500', async (tt) => {
  const s = await signInPage();
  await options(s.browser, `${s.url}/passkey/options`);
  for (const body of ['{broken', '', '"a string"', '{"id":"AAAA","type":"public-key","response":{}}', JSON.stringify({ id: '!!', rawId: 'x' })]) {
    const r = await answer(s.browser, `${s.url}/passkey`, body);
    tt.true(r.res.status >= 400 && r.res.status < 500, `${body}: ${r.res.status}`);
  }
  const broken = await answer(s.browser, `${s.url}/passkey`, '{broken');
  tt.is(broken.res.status, 400);
  const unknownUid = await new Browser(t.url).request(`${t.url}/t/${tenant.slug}/interaction/nope/passkey/options`, {
    method: 'POST',
    headers: { origin: t.url },
  });
  tt.true(unknownUid.status >= 400 && unknownUid.status < 500, String(unknownUid.status));
  const cross = await s.browser.request(`${s.url}/passkey/options`, { method: 'POST', headers: { origin: 'https://evil.example' } });
  tt.is(cross.status, 403);
});

test('mfa_factors without passkey: nothing offered, nothing accepted', async (tt) => {
  const tn = await createTenant(t);
  const rpClient = (await adminApi(t, tn, 'POST', '/clients', webClient())).body;
  const p = await person(tn);
  const auth = await enroll(tn, p.user.id, p.email);
  tt.is((await adminApi(t, tn, 'PATCH', '/settings', { mfa_factors: ['totp'] })).status, 200);
  const s = await signInPage(tn, rpClient);
  tt.notRegex(s.html, /passkey/i);
  tt.notRegex(s.html, /webauthn/);
  const o = await options(s.browser, `${s.url}/passkey/options`);
  tt.is(o.status, 404);
  const r = await answer(s.browser, `${s.url}/passkey`, auth.assert('AAAA'));
  tt.is(r.res.status, 404);
  // The passkey is not accepted there, but it still protects the account: the password alone does
  // not sign its owner in; the code step asks for a recovery code instead.
  const alone = await signInPage(tn, rpClient);
  const afterPassword = await enterCredentials(alone.browser, alone.html, alone.url, p.email, PASSWORD);
  tt.regex(afterPassword.url, /\/mfa$/);
  tt.regex(await afterPassword.res.text(), /not accepted here at the moment/);
  // With an authenticator app too, the code step asks for the app's code and offers no passkey.
  const app = await t.app.services.factors.startTotp(tn.id, p.user.id, 'Tessera', p.email);
  tt.true(await t.app.services.factors.confirmTotp(tn.id, p.user.id, app.factorId, hotp(base32Decode(app.secret), totpStep(Date.now() / 1000) - 1)));
  const m = await passwordStep(p.email, tn, rpClient);
  tt.regex(m.mfaHtml, /Code from your authenticator app/);
  tt.notRegex(m.mfaHtml, /Use a passkey/);
  tt.is((await options(m.browser, `${m.mfaUrl}/passkey/options`)).status, 404);
  const made = await t.app.services.passkeys.authenticationOptions(tn.id, { userId: p.user.id, purpose: 'mfa' });
  tt.is((await answer(m.browser, `${m.mfaUrl}/passkey`, auth.assert(made.options.challenge))).res.status, 404);
});

test('mfa off: passkeys are neither offered nor accepted', async (tt) => {
  const tn = await createTenant(t);
  const rpClient = (await adminApi(t, tn, 'POST', '/clients', webClient())).body;
  const p = await person(tn);
  const auth = await enroll(tn, p.user.id, p.email);
  tt.is((await adminApi(t, tn, 'PATCH', '/settings', { mfa: 'off' })).status, 200);
  const s = await signInPage(tn, rpClient);
  tt.notRegex(s.html, /Sign in with a passkey/);
  tt.is((await options(s.browser, `${s.url}/passkey/options`)).status, 404);
  tt.is((await answer(s.browser, `${s.url}/passkey`, auth.assert('AAAA'))).res.status, 404);
});

// ── second factor ─────────────────────────────────────────────────────────────

test('password, then a passkey: pwd + hwk + user + mfa; the code step offers it', async (tt) => {
  const p = await person();
  const auth = await enroll(tenant, p.user.id, p.email);
  const m = await passwordStep(p.email);
  tt.regex(m.mfaHtml, /Use a passkey/);
  tt.notRegex(m.mfaHtml, /Code from your authenticator app/, 'no app: its code is not asked for');
  tt.regex(m.mfaHtml, /Use a recovery code instead/);
  const o = await options(m.browser, `${m.mfaUrl}/passkey/options`);
  tt.deepEqual(
    o.body.allowCredentials.map((c: { id: string }) => c.id),
    [auth.id],
  );
  const done = await answer(m.browser, `${m.mfaUrl}/passkey`, auth.assert(o.body.challenge));
  tt.true(done.url.startsWith(client.redirect_uris[0]!), done.url);
  const claims = await redeem(m, done.url);
  tt.deepEqual(claims.amr, ['pwd', 'hwk', 'user', 'mfa']);
  tt.is(claims.acr, 'urn:tessera:acr:mfa');

  // Without user verification it is still a second factor, without `user`.
  const m2 = await passwordStep(p.email);
  const o2 = await options(m2.browser, `${m2.mfaUrl}/passkey/options`);
  const done2 = await answer(m2.browser, `${m2.mfaUrl}/passkey`, auth.assert(o2.body.challenge, { userVerified: false }));
  tt.deepEqual((await redeem(m2, done2.url)).amr, ['pwd', 'hwk', 'mfa']);
});

test('with an authenticator app and a passkey, the code step offers both', async (tt) => {
  const p = await person();
  await enroll(tenant, p.user.id, p.email);
  const factors = t.app.services.factors;
  const app = await factors.startTotp(tenant.id, p.user.id, 'Tessera', p.email);
  tt.true(await factors.confirmTotp(tenant.id, p.user.id, app.factorId, hotp(base32Decode(app.secret), totpStep(Date.now() / 1000) - 1)));
  const m = await passwordStep(p.email);
  tt.regex(m.mfaHtml, /Code from your authenticator app/);
  tt.regex(m.mfaHtml, /Use a passkey/);
});

test("the code step takes only that person's passkey; failures count toward the lock", async (tt) => {
  const a = await person(strict);
  const b = await person(strict);
  const aAuth = await enroll(strict, a.user.id, a.email);
  const bAuth = await enroll(strict, b.user.id, b.email);
  const m = await passwordStep(a.email, strict, strictClient);
  // The passkey step is not reachable from the sign-in page's passwordless endpoint with a's state, either.
  for (let i = 0; i < 3; i++) {
    const o = await options(m.browser, `${m.mfaUrl}/passkey/options`);
    const r = await answer(m.browser, `${m.mfaUrl}/passkey`, bAuth.assert(o.body.challenge));
    tt.is(r.res.status, 401, `attempt ${i + 1}: b's passkey on a's sign-in`);
  }
  // Three failures lock a's account: even a's own passkey is refused now.
  const o = await options(m.browser, `${m.mfaUrl}/passkey/options`);
  const locked = await answer(m.browser, `${m.mfaUrl}/passkey`, aAuth.assert(o.body.challenge));
  tt.is(locked.res.status, 401);
  tt.false(locked.url.startsWith(strictClient.redirect_uris[0]!));
  await adminApi(t, strict, 'POST', `/users/${a.user.id}/unlock`);
});

test('the passkey step needs the password first', async (tt) => {
  const p = await person();
  const auth = await enroll(tenant, p.user.id, p.email);
  const s = await signInPage();
  const o = await options(s.browser, `${s.url}/mfa/passkey/options`);
  tt.is(o.status, 400);
  const r = await answer(s.browser, `${s.url}/mfa/passkey`, auth.assert('AAAA'));
  tt.is(r.res.status, 400);
  tt.false(r.url.startsWith(client.redirect_uris[0]!));
});
