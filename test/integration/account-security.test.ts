import test from 'ava';
import { base32Decode, hotp, totpStep } from '../../src/factors/totp.ts';
import { adminApi, createTenant, freePort, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';
import { SmtpSink } from '../helpers/smtp.ts';

/** The account's Security page over plain HTTP: adding, confirming and removing an authenticator app, recovery codes. */

let t: TestApp;
let tenant: TestTenant;
/** Accounts lock after three failures whatever their pace (a loaded machine is slow). */
let strict: TestTenant;
let sink: SmtpSink;
let people = 0;
const PASSWORD = 'steady copper 81 lantern';

test.before(async () => {
  const smtpPort = await freePort();
  sink = await SmtpSink.start(smtpPort);
  t = await startTestApp({ env: { SMTP_URL: `smtp://127.0.0.1:${smtpPort}`, MAIL_POLL_MS: '100' } });
  tenant = await createTenant(t);
  strict = await createTenant(t);
  const set = await adminApi(t, strict, 'PATCH', '/settings', { brute_force: { max_login_failures: 3, wait_increment_seconds: 600, max_wait_seconds: 600 } });
  if (set.status !== 200) throw new Error(set.text);
});
test.after.always(async () => {
  await t?.stop();
  await sink?.stop();
});

const security = (path = '', tn = tenant) => `${t.url}/t/${tn.slug}/account/security${path}`;

async function signedInPerson(tn = tenant) {
  const email = `s${++people}@sec.test`;
  const user = (await adminApi(t, tn, 'POST', '/users', { email, password: PASSWORD, email_verified: true })).body;
  const browser = new Browser(t.url);
  const first = await browser.follow(security('', tn));
  const done = await enterCredentials(browser, await first.res.text(), first.url, email, PASSWORD);
  const html = await done.res.text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
  if (!csrf || !/Second factors/.test(html)) throw new Error(`not on the security page: ${done.url}\n${html.slice(0, 400)}`);
  return { email, user, browser, csrf, tn };
}

const secretIn = (html: string) => /class="totp-secret">([A-Z2-7]+)</.exec(html)?.[1];
const factorIdIn = (html: string) => /security\/totp\/([0-9a-f-]{36})\/confirm/.exec(html)?.[1];
const code = (secret: string, offset = 0) => hotp(base32Decode(secret), totpStep(Date.now() / 1000) + offset);

async function addApp(p: Awaited<ReturnType<typeof signedInPerson>>) {
  const started = await p.browser.submit(security('/totp', p.tn), { _csrf: p.csrf, current_password: PASSWORD });
  const html = await started.res.text();
  const secret = secretIn(html)!;
  const factorId = factorIdIn(html)!;
  // The step before now: the current code stays free for what the test does next. A 30-second
  // step may end between computing the code and the server checking it (then "the step before"
  // is two steps old): the current code confirms it instead.
  let confirmed = await p.browser.submit(security(`/totp/${factorId}/confirm`, p.tn), { _csrf: p.csrf, code: code(secret, -1) });
  if (!(await t.app.services.factors.hasConfirmedFactor(p.tn.id, p.user.id))) {
    confirmed = await p.browser.submit(security(`/totp/${factorId}/confirm`, p.tn), { _csrf: p.csrf, code: code(secret) });
  }
  return { secret, factorId, confirmed };
}

test('adding an authenticator app asks for the password, is confirmed by a first code, and mails the person', async (tt) => {
  const p = await signedInPerson();
  const wrong = await p.browser.submit(security('/totp'), { _csrf: p.csrf, current_password: 'not it' });
  tt.is(wrong.res.status, 422);
  tt.regex(await wrong.res.text(), /not your current password/);
  const noCsrf = await p.browser.submit(security('/totp'), { current_password: PASSWORD });
  tt.is(noCsrf.res.status, 403);

  // An enrollment abandoned before its first code is replaced by the next one.
  const abandoned = factorIdIn(await (await p.browser.submit(security('/totp'), { _csrf: p.csrf, current_password: PASSWORD })).res.text());
  const started = await p.browser.submit(security('/totp'), { _csrf: p.csrf, current_password: PASSWORD });
  tt.is(started.res.status, 200);
  const html = await started.res.text();
  const secret = secretIn(html);
  tt.truthy(secret);
  tt.regex(html, /otpauth:\/\/totp\//);
  const factorId = factorIdIn(html)!;
  tt.not(factorId, abandoned);
  tt.deepEqual(
    (await t.app.services.factors.list(tenant.id, p.user.id)).map((f) => f.id),
    [factorId],
  );
  tt.false(await t.app.services.factors.hasConfirmedFactor(tenant.id, p.user.id), 'not counted before its first code');

  const bad = await p.browser.submit(security(`/totp/${factorId}/confirm`), { _csrf: p.csrf, code: code(secret!, 5), secret: secret!, uri: 'x' });
  tt.is(bad.res.status, 422);
  tt.regex(await bad.res.text(), /That code is not valid/);
  const ok = await p.browser.submit(security(`/totp/${factorId}/confirm`), { _csrf: p.csrf, code: code(secret!) });
  tt.is(ok.res.status, 200);
  const page = await ok.res.text();
  tt.regex(page, /Authenticator app added/);
  tt.regex(page, /Authenticator app<\/td>/);
  tt.true(await t.app.services.factors.hasConfirmedFactor(tenant.id, p.user.id));
  const mail = await sink.waitFor(p.email, /sign-in factor was added/);
  tt.regex(mail.text!, /An authenticator app was added/, 'the kind, in general words');
  tt.false(mail.text!.includes(secret!), 'never the secret');
  tt.false(String(mail.html).includes(secret!));
});

test("one person cannot confirm or remove another's factor", async (tt) => {
  const a = await signedInPerson();
  const { factorId, secret } = await addApp(a);
  const b = await signedInPerson();
  const confirm = await b.browser.submit(security(`/totp/${factorId}/confirm`), { _csrf: b.csrf, code: code(secret, 1) });
  tt.is(confirm.res.status, 404);
  const remove = await b.browser.submit(security(`/factors/${factorId}/remove`), { _csrf: b.csrf, current_password: PASSWORD });
  tt.is(remove.res.status, 404);
  const malformed = await b.browser.submit(security('/factors/not-a-uuid/remove'), { _csrf: b.csrf, current_password: PASSWORD });
  tt.is(malformed.res.status, 404);
  tt.true(await t.app.services.factors.hasConfirmedFactor(tenant.id, a.user.id));
});

test('recovery codes are shown once, after the password, and replace the old set', async (tt) => {
  const p = await signedInPerson();
  const before = await p.browser.submit(security('/recovery-codes'), { _csrf: p.csrf, current_password: PASSWORD });
  tt.is(before.res.status, 409, 'no codes without a factor');
  await addApp(p);
  const wrong = await p.browser.submit(security('/recovery-codes'), { _csrf: p.csrf, current_password: 'nope' });
  tt.is(wrong.res.status, 422);
  const first = await p.browser.submit(security('/recovery-codes'), { _csrf: p.csrf, current_password: PASSWORD });
  tt.is(first.res.headers.get('cache-control'), 'no-store');
  const codesOf = (html: string) => /<pre class="recovery-codes">([\s\S]*?)<\/pre>/.exec(html)![1]!.trim().split('\n');
  const old = codesOf(await first.res.text());
  tt.is(old.length, 10);
  const again = await p.browser.submit(security('/recovery-codes'), { _csrf: p.csrf, current_password: PASSWORD });
  const fresh = codesOf(await again.res.text());
  tt.is(fresh.length, 10);
  tt.false((await t.app.services.factors.verifySecondFactor(tenant.id, p.user.id, old[0]!)).ok, 'old codes are void');
  tt.true((await t.app.services.factors.verifySecondFactor(tenant.id, p.user.id, fresh[0]!)).ok);
  const page = await (await p.browser.follow(security())).res.text();
  tt.regex(page, /9 unused/);
  tt.notRegex(page, /<pre class="recovery-codes">/, 'not shown again');
  const mail = await sink.waitFor(p.email, /recovery codes were replaced/);
  tt.regex(mail.text!, /The old ones no longer work/);
  for (const c of [...old, ...fresh]) tt.false(`${mail.text}${mail.html}`.includes(c), 'never a code');
});

test('removing a factor needs the password and mails the person', async (tt) => {
  const p = await signedInPerson();
  const { factorId } = await addApp(p);
  const wrong = await p.browser.submit(security(`/factors/${factorId}/remove`), { _csrf: p.csrf, current_password: 'wrong' });
  tt.is(wrong.res.status, 422);
  const none = await p.browser.submit(security(`/factors/${factorId}/remove`), { _csrf: p.csrf });
  tt.is(none.res.status, 422);
  tt.true(await t.app.services.factors.hasConfirmedFactor(tenant.id, p.user.id));
  const removed = await p.browser.submit(security(`/factors/${factorId}/remove`), { _csrf: p.csrf, current_password: PASSWORD });
  tt.regex(await removed.res.text(), /Factor removed/);
  tt.false(await t.app.services.factors.hasConfirmedFactor(tenant.id, p.user.id));
  const mail = await sink.waitFor(p.email, /sign-in factor was removed/);
  tt.regex(mail.text!, /An authenticator app was removed/);
});

test('the enrollment shows a QR code drawn on the server, with alt text, beside the key', async (tt) => {
  const p = await signedInPerson();
  const started = await p.browser.submit(security('/totp'), { _csrf: p.csrf, current_password: PASSWORD });
  const html = await started.res.text();
  const img = /<img class="totp-qr" src="data:image\/svg\+xml;base64,([^"]+)"[^>]*alt="([^"]+)"/.exec(html);
  tt.truthy(img, 'an SVG image in a data URL');
  tt.regex(img![2]!, /QR code .*authenticator app/);
  tt.regex(Buffer.from(img![1]!, 'base64').toString(), /^<svg[\s\S]*<path/);
  tt.truthy(secretIn(html), 'the key is still there to type by hand');
  tt.notRegex(html, /<script/);
});

test('a current code from the authenticator app may stand in for the password; wrong codes count toward the lock', async (tt) => {
  const p = await signedInPerson(strict);
  const { secret } = await addApp(p);
  const page = await (await p.browser.follow(security('', strict))).res.text();
  tt.regex(page, /name="current_code"/, 'offered once the person has an app');
  const regenerated = await p.browser.submit(security('/recovery-codes', strict), { _csrf: p.csrf, current_code: code(secret) });
  tt.is(regenerated.res.status, 200);
  tt.regex(await regenerated.res.text(), /<pre class="recovery-codes">/);
  // The same code again is a replay, and a recovery code is not a current code.
  const replay = await p.browser.submit(security('/recovery-codes', strict), { _csrf: p.csrf, current_code: code(secret) });
  tt.is(replay.res.status, 422);
  tt.regex(await replay.res.text(), /That code is not valid/);
  const codes = await t.app.services.factors.regenerateRecoveryCodes(strict.id, p.user.id);
  const recovery = await p.browser.submit(security('/recovery-codes', strict), { _csrf: p.csrf, current_code: codes[0]! });
  tt.is(recovery.res.status, 422);
  // A third wrong code (refused as wrong, or already as locked: failures this quick lock at once)
  // leaves the account locked: now even the right password is refused.
  const third = await p.browser.submit(security('/recovery-codes', strict), { _csrf: p.csrf, current_code: code(secret, 7) });
  tt.true([422, 429].includes(third.res.status), String(third.res.status));
  const locked = await p.browser.submit(security('/recovery-codes', strict), { _csrf: p.csrf, current_password: PASSWORD });
  tt.is(locked.res.status, 429);
  tt.regex(await locked.res.text(), /Too many wrong attempts/);
  tt.is(await t.app.services.factors.unusedRecoveryCodes(strict.id, p.user.id), 10, 'nothing regenerated by the refusals');
});

test('the security page warns when three or fewer recovery codes are left', async (tt) => {
  const p = await signedInPerson();
  await addApp(p);
  const factors = t.app.services.factors;
  const codes = await factors.regenerateRecoveryCodes(tenant.id, p.user.id);
  for (const c of codes.slice(0, 6)) await factors.verifySecondFactor(tenant.id, p.user.id, c);
  const four = await (await p.browser.follow(security())).res.text();
  tt.regex(four, /4 unused/);
  tt.notRegex(four, /recovery codes? left/);
  await factors.verifySecondFactor(tenant.id, p.user.id, codes[6]!);
  const three = await (await p.browser.follow(security())).res.text();
  tt.regex(three, /Only 3 recovery codes left: generate new ones/);
});

test('tenant mfa off: the page says factors are off, offers no enrollment and refuses one; factors are kept', async (tt) => {
  const off = await createTenant(t);
  const p = await signedInPerson(off);
  await addApp(p);
  tt.is((await adminApi(t, off, 'PATCH', '/settings', { mfa: 'off' })).status, 200);
  const page = await (await p.browser.follow(security('', off))).res.text();
  tt.regex(page, /Second factors are turned off for/);
  tt.notRegex(page, /Add an authenticator app/);
  tt.notRegex(page, /name="current_code"/, 'an app that does not count does not stand in for the password');
  const refused = await p.browser.submit(security('/totp', off), { _csrf: p.csrf, current_password: PASSWORD });
  tt.is(refused.res.status, 409);
  tt.regex(await refused.res.text(), /turned off/);
  tt.true(await t.app.services.factors.hasConfirmedFactor(off.id, p.user.id), 'kept, not deleted');

  // Only passkeys allowed: no authenticator app is offered or added either.
  tt.is((await adminApi(t, off, 'PATCH', '/settings', { mfa: 'optional', mfa_factors: ['passkey'] })).status, 200);
  const passkeys = await (await p.browser.follow(security('', off))).res.text();
  tt.regex(passkeys, /the second factor here is a passkey/);
  tt.notRegex(passkeys, /Add an authenticator app/);
  tt.is((await p.browser.submit(security('/totp', off), { _csrf: p.csrf, current_password: PASSWORD })).res.status, 409);
});
