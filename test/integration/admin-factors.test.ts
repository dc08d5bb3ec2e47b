import test from 'ava';
import * as oidc from 'openid-client';
import { base32Decode, hotp, totpStep } from '../../src/factors/totp.ts';
import { adminApi, createTenant, freePort, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { type RegisteredClient, signIn } from '../helpers/oidc.ts';
import { SmtpSink } from '../helpers/smtp.ts';

let t: TestApp;
let sink: SmtpSink;
let tenant: TestTenant;
let other: TestTenant;
let client: RegisteredClient;
let people = 0;

test.before(async () => {
  const smtpPort = await freePort();
  sink = await SmtpSink.start(smtpPort);
  t = await startTestApp({ env: { SMTP_URL: `smtp://127.0.0.1:${smtpPort}`, MAIL_POLL_MS: '100' } });
  tenant = await createTenant(t);
  other = await createTenant(t);
  client = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
});
test.after.always(async () => {
  await t?.stop();
  await sink?.stop();
});

const PASSWORD = 'a long enough password 1';

/** A person with a confirmed TOTP factor, an unconfirmed enrollment left over, and recovery codes. */
async function personWithFactors(on = tenant) {
  const email = `f${++people}@factors.test`;
  const user = (await adminApi(t, on, 'POST', '/users', { email, password: PASSWORD, email_verified: true })).body;
  const factors = t.app.services.factors;
  const enrollment = await factors.startTotp(on.id, user.id, 'Tessera', email);
  const key = base32Decode(enrollment.secret);
  if (!(await factors.confirmTotp(on.id, user.id, enrollment.factorId, hotp(key, totpStep(Date.now() / 1000) - 1)))) throw new Error('not confirmed');
  const codes = await factors.regenerateRecoveryCodes(on.id, user.id);
  return { email, userId: user.id as string, factorId: enrollment.factorId, secret: enrollment.secret, codes };
}

const auditOf = async (on: TestTenant) => (await adminApi(t, on, 'GET', '/audit-log?limit=200')).body.data as Array<Record<string, any>>;

test('list: kind, name, dates and recovery codes left — never a secret', async (tt) => {
  const p = await personWithFactors();
  const r = await adminApi(t, tenant, 'GET', `/users/${p.userId}/factors`);
  tt.is(r.status, 200, r.text);
  tt.is(r.body.recovery_codes_remaining, 10);
  tt.is(r.body.data.length, 1);
  const [f] = r.body.data;
  tt.deepEqual(Object.keys(f).sort(), ['confirmed', 'created_at', 'id', 'kind', 'last_used_at', 'name']);
  tt.like(f, { id: p.factorId, kind: 'totp', name: 'Authenticator app', confirmed: true });
  tt.true(typeof f.last_used_at === 'string', 'the confirming code counts as a use');
  // Neither the TOTP secret (base32 or sealed) nor a recovery code appears anywhere in the answer.
  tt.false(r.text.includes(p.secret));
  for (const code of p.codes) tt.false(r.text.includes(code));
  tt.notRegex(r.text, /secret|public_key|credential_id/);
});

test('remove one factor: gone, the last one takes the recovery codes, audited, mailed', async (tt) => {
  const p = await personWithFactors();
  const del = await adminApi(t, tenant, 'DELETE', `/users/${p.userId}/factors/${p.factorId}`);
  tt.is(del.status, 204, del.text);
  const after = (await adminApi(t, tenant, 'GET', `/users/${p.userId}/factors`)).body;
  tt.deepEqual(after.data, []);
  tt.is(after.recovery_codes_remaining, 0, 'codes without a factor would be a second factor of their own');
  const again = await adminApi(t, tenant, 'DELETE', `/users/${p.userId}/factors/${p.factorId}`);
  tt.is(again.status, 404);
  tt.regex(again.type, /problem\+json/);

  const entry = (await auditOf(tenant)).find((e) => e.action === 'user.factor.removed' && e.target.id === p.userId);
  tt.truthy(entry, 'audited');
  tt.like(entry!, { actor: { type: 'api_key' }, target: { type: 'user', id: p.userId }, before: { factor: { id: p.factorId, kind: 'totp' } } });
  const mail = await sink.waitFor(p.email, /sign-in factor was removed/);
  tt.regex(mail.text ?? '', /An administrator of .* removed "Authenticator app"/);
});

test('reset: every factor and recovery code gone, signed out everywhere, audited, mailed', async (tt) => {
  // Signed in with the password before the factors existed (so sign-in does not ask for them).
  const email = `r${++people}@factors.test`;
  const userId = (await adminApi(t, tenant, 'POST', '/users', { email, password: PASSWORD, email_verified: true })).body.id as string;
  const { tokens, config } = await signIn(t, tenant, client, { email, password: PASSWORD });
  const factors = t.app.services.factors;
  const enrollment = await factors.startTotp(tenant.id, userId, 'Tessera', email);
  await factors.confirmTotp(tenant.id, userId, enrollment.factorId, hotp(base32Decode(enrollment.secret), totpStep(Date.now() / 1000) - 1));
  await factors.regenerateRecoveryCodes(tenant.id, userId);
  // A passkey row too (as the passkey enrollment stores it): a reset takes every kind.
  await t.app.connection.db
    .insertInto('user_factors')
    .values({
      tenant_id: tenant.id,
      user_id: userId,
      kind: 'passkey',
      name: 'Laptop',
      confirmed: true,
      secret_encrypted: null,
      last_totp_step: null,
      credential_id: 'cred-1',
      public_key: Buffer.from('pk'),
      sign_count: 0,
      transports: null,
      aaguid: null,
      backed_up: null,
      last_used_at: null,
    })
    .execute();
  tt.truthy((await oidc.refreshTokenGrant(config, tokens.refresh_token!)).access_token, 'the sign-in is alive before the reset');
  const listed = await adminApi(t, tenant, 'GET', `/users/${userId}/factors`);
  tt.is(listed.body.data.length, 2);
  tt.false(listed.text.includes('cred-1'), 'never a credential id');

  const reset = await adminApi(t, tenant, 'DELETE', `/users/${userId}/factors`);
  tt.is(reset.status, 204, reset.text);
  const after = (await adminApi(t, tenant, 'GET', `/users/${userId}/factors`)).body;
  tt.deepEqual(after.data, []);
  tt.is(after.recovery_codes_remaining, 0);
  const entry = (await auditOf(tenant)).find((e) => e.action === 'user.factors.reset' && e.target.id === userId);
  tt.truthy(entry, 'audited');
  tt.is(entry!.before.factors.length, 2);
  tt.is(entry!.before.recovery_codes_remaining, 10);
  tt.like(entry!.after, { factors: [], recovery_codes_remaining: 0, signed_out: true });
  const mail = await sink.waitFor(email, /sign-in factors were reset by an administrator/);
  tt.regex(mail.text ?? '', /signed it out everywhere/);

  // Signed out everywhere: the refresh token of the person's sign-in died with the reset.
  const err = await oidc.refreshTokenGrant(config, tokens.refresh_token!).then(
    () => undefined,
    (e: { error?: string }) => e,
  );
  tt.is(err?.error, 'invalid_grant');
});

test('another tenant’s user or factor is 404, and nothing changes', async (tt) => {
  const p = await personWithFactors();
  const mine = await personWithFactors(other);
  for (const [method, path] of [
    ['GET', `/users/${p.userId}/factors`],
    ['DELETE', `/users/${p.userId}/factors`],
    ['DELETE', `/users/${p.userId}/factors/${p.factorId}`],
  ] as const) {
    const r = await adminApi(t, other, method, path);
    tt.is(r.status, 404, `${method} ${path} from another tenant`);
    tt.regex(r.type, /problem\+json/);
  }
  // Another user's factor named under one's own user: 404 too.
  const crossed = await adminApi(t, other, 'DELETE', `/users/${mine.userId}/factors/${p.factorId}`);
  tt.is(crossed.status, 404);
  tt.is((await adminApi(t, tenant, 'GET', `/users/${p.userId}/factors`)).body.data.length, 1, 'still there');
  tt.is((await adminApi(t, other, 'GET', `/users/${mine.userId}/factors`)).body.data.length, 1, 'and there');
  tt.false(
    (await auditOf(other)).some((e) => e.target.id === p.userId),
    'no audit row for a refused change',
  );
});

test('malformed ids are 404 problem+json, never a 500; the audit log needs an admin key', async (tt) => {
  for (const path of ['/users/not-a-uuid/factors', '/users/00000000-0000-0000-0000-000000000000/factors', "/users/x'--/factors/y"]) {
    for (const method of ['GET', 'DELETE']) {
      const r = await adminApi(t, tenant, method, path);
      tt.is(r.status, 404, `${method} ${path}`);
      tt.regex(r.type, /problem\+json/);
    }
  }
  const p = await personWithFactors();
  const bad = await adminApi(t, tenant, 'DELETE', `/users/${p.userId}/factors/not-a-uuid`);
  tt.is(bad.status, 404);
  const cursor = await adminApi(t, tenant, 'GET', '/audit-log?cursor=garbage');
  tt.is(cursor.status, 400);
  const noKey = await adminApi(t, tenant, 'GET', '/audit-log', undefined, 'wrong');
  tt.is(noKey.status, 401);
});
