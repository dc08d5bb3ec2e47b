import test from 'ava';
import { decodeJwt, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials, formAction } from '../helpers/browser.ts';
import { discover, type RegisteredClient, signIn, startAuthorization } from '../helpers/oidc.ts';

let t: TestApp;
let tenant: TestTenant;
let other: TestTenant;

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
  other = await createTenant(t);
});
test.after.always(async () => t?.stop());

const newOrg = async (on: TestTenant, name: string, more: Record<string, unknown> = {}) =>
  (await adminApi(t, on, 'POST', '/organizations', { name, ...more })).body.id as string;

const DEFAULTS = {
  mfa_required: false,
  mfa_grace_days: 0,
  allowed_methods: ['password', 'passkey', 'sso'],
  sso_required: false,
  max_session_age_seconds: null,
  upstream_mfa_satisfies: false,
  mfa_grace_ends_at: null,
};

test('auth-policy: defaults, PUT, PATCH; sso_required is the organization’s own flag; every change audited', async (tt) => {
  const orgId = await newOrg(tenant, 'Policy One');
  const path = `/organizations/${orgId}/auth-policy`;
  tt.deepEqual((await adminApi(t, tenant, 'GET', path)).body, DEFAULTS);

  const put = await adminApi(t, tenant, 'PUT', path, { mfa_required: true, mfa_grace_days: 7, allowed_methods: ['password', 'sso'], sso_required: true });
  tt.is(put.status, 200, put.text);
  tt.like(put.body, { mfa_required: true, mfa_grace_days: 7, allowed_methods: ['password', 'sso'], sso_required: true, max_session_age_seconds: null });
  const graceEnds = Date.parse(put.body.mfa_grace_ends_at);
  tt.true(Math.abs(graceEnds - (Date.now() + 7 * 86_400_000)) < 60_000, 'the grace period starts when MFA becomes required');
  // The same column as the organization resource's sso_required, both ways.
  tt.true((await adminApi(t, tenant, 'GET', `/organizations/${orgId}`)).body.sso_required);
  await adminApi(t, tenant, 'PATCH', `/organizations/${orgId}`, { sso_required: false });
  tt.false((await adminApi(t, tenant, 'GET', path)).body.sso_required);

  const patched = await adminApi(t, tenant, 'PATCH', path, { max_session_age_seconds: 3600 });
  tt.is(patched.status, 200, patched.text);
  tt.like(patched.body, { mfa_required: true, mfa_grace_days: 7, max_session_age_seconds: 3600 });
  tt.is(patched.body.mfa_grace_ends_at, put.body.mfa_grace_ends_at, 'keeping MFA on keeps the grace period');

  // PUT: what is left out returns to its default.
  const reset = await adminApi(t, tenant, 'PUT', path, { upstream_mfa_satisfies: true });
  tt.deepEqual(reset.body, { ...DEFAULTS, upstream_mfa_satisfies: true });

  const log = (await adminApi(t, tenant, 'GET', `/organizations/${orgId}/audit-log?limit=100`)).body.data as Array<Record<string, any>>;
  const changes = log.filter((e) => e.action === 'organization.auth_policy.updated');
  tt.is(changes.length, 3);
  const first = changes.at(-1)!;
  tt.like(first, { before: { mfa_required: false }, after: { mfa_required: true, sso_required: true } });
  tt.like(first.actor, { type: 'api_key' });
});

test('auth-policy: bad input is a 422 naming the field, and changes nothing', async (tt) => {
  const orgId = await newOrg(tenant, 'Policy Bad');
  const path = `/organizations/${orgId}/auth-policy`;
  const cases: Array<[string, unknown, string]> = [
    ['PUT', { mfa_required: 'yes' }, 'mfa_required'],
    ['PUT', { mfa_grace_days: -1 }, 'mfa_grace_days'],
    ['PUT', { mfa_grace_days: 1.5 }, 'mfa_grace_days'],
    ['PUT', { mfa_grace_days: 366 }, 'mfa_grace_days'],
    ['PUT', { allowed_methods: [] }, 'allowed_methods'],
    ['PUT', { allowed_methods: ['password', 'magic-link'] }, 'allowed_methods'],
    ['PUT', { allowed_methods: ['password', 'password'] }, 'allowed_methods'],
    ['PATCH', { max_session_age_seconds: 5 }, 'max_session_age_seconds'],
    ['PATCH', { max_session_age_seconds: '3600' }, 'max_session_age_seconds'],
    ['PATCH', { upstream_mfa_satisfies: null }, 'upstream_mfa_satisfies'],
    ['PATCH', { sso_required: 1 }, 'sso_required'],
    ['PATCH', { mfa_requird: true }, 'mfa_requird'],
  ];
  for (const [method, body, field] of cases) {
    const res = await adminApi(t, tenant, method, path, body);
    const label = `${method} ${JSON.stringify(body)}`;
    tt.is(res.status, 422, `${label} → ${res.status} ${res.text.slice(0, 200)}`);
    tt.regex(res.type, /problem\+json/, label);
    tt.true(
      res.body.errors?.some((e: { field: string }) => e.field === field || e.field.startsWith(`${field}.`) || e.field.split(',').includes(field)),
      `${label}: ${JSON.stringify(res.body.errors)}`,
    );
  }
  const empty = await adminApi(t, tenant, 'PATCH', path, {});
  tt.is(empty.status, 422);
  tt.deepEqual((await adminApi(t, tenant, 'GET', path)).body, DEFAULTS);
  const log = (await adminApi(t, tenant, 'GET', `/organizations/${orgId}/audit-log?limit=100`)).body.data as Array<{ action: string }>;
  tt.false(log.some((e) => e.action === 'organization.auth_policy.updated'));
});

test('auth-policy: another tenant’s organization, an unknown one or a malformed id is 404, and is not changed', async (tt) => {
  const theirs = await newOrg(other, 'Theirs');
  for (const [method, body] of [
    ['GET', undefined],
    ['PUT', { mfa_required: true }],
    ['PATCH', { mfa_required: true }],
  ] as const) {
    for (const id of [theirs, '00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
      const res = await adminApi(t, tenant, method, `/organizations/${id}/auth-policy`, body);
      tt.is(res.status, 404, `${method} ${id}`);
      tt.regex(res.type, /problem\+json/);
    }
  }
  tt.false((await adminApi(t, other, 'GET', `/organizations/${theirs}/auth-policy`)).body.mfa_required);
});

test('tenant settings: mfa and mfa_factors, defaults, validation', async (tt) => {
  const own = await createTenant(t);
  tt.like((await adminApi(t, own, 'GET', '/settings')).body, { mfa: 'optional', mfa_factors: ['totp', 'passkey'] });
  const set = await adminApi(t, own, 'PATCH', '/settings', { mfa: 'required', mfa_factors: ['passkey'] });
  tt.is(set.status, 200, set.text);
  tt.like((await adminApi(t, own, 'GET', '/settings')).body, { mfa: 'required', mfa_factors: ['passkey'] });
  for (const [body, field] of [
    [{ mfa: 'always' }, 'mfa'],
    [{ mfa_factors: [] }, 'mfa_factors'],
    [{ mfa_factors: ['sms'] }, 'mfa_factors'],
    [{ mfa_factors: ['totp', 'totp'] }, 'mfa_factors'],
  ] as const) {
    const res = await adminApi(t, own, 'PATCH', '/settings', body);
    tt.is(res.status, 422, JSON.stringify(body));
    tt.true(
      res.body.errors?.some((e: { field: string }) => e.field === field || e.field.startsWith(`${field}.`) || e.field.split(',').includes(field)),
      JSON.stringify(res.body.errors),
    );
  }
  tt.like((await adminApi(t, own, 'GET', '/settings')).body, { mfa: 'required', mfa_factors: ['passkey'] });
});

// ── enforcement: org-scoped tokens by authorization, switch and refresh ─────────────────────────

const claimsOf = (jwt: string) => decodeJwt(jwt) as JWTPayload & Record<string, any>;

/** A tenant whose admin is a member of two organizations, and a web client. */
async function world(on: TestTenant) {
  const client: RegisteredClient = (await adminApi(t, on, 'POST', '/clients', webClient())).body;
  const userId = (await adminApi(t, on, 'GET', `/users?email=${encodeURIComponent(on.adminEmail)}`)).body.data[0].id;
  const strict = await newOrg(on, 'Strict');
  const relaxed = await newOrg(on, 'Relaxed');
  for (const org of [strict, relaxed]) await adminApi(t, on, 'POST', `/organizations/${org}/members`, { user_id: userId, role: 'member' });
  return { client, strict, relaxed };
}

/** The authorization error an org-scoped sign-in ends in (openid-client reads it from the redirect). */
async function refusedSignIn(on: TestTenant, client: RegisteredClient, organization: string) {
  const err = await signIn(t, on, client, { params: { organization } }).then(
    () => undefined,
    (e: unknown) => e as { error?: string; error_description?: string; message?: string },
  );
  return err;
}

test('amr and acr: in the ID token and the access token of a password sign-in; discovery lists acr_values_supported', async (tt) => {
  const { client } = await world(tenant);
  const { tokens, config } = await signIn(t, tenant, client, { scope: 'openid' });
  const id = tokens.claims()!;
  tt.deepEqual(id.amr, ['pwd']);
  tt.is(id.acr, 'urn:tessera:acr:pwd');
  const at = claimsOf(tokens.access_token);
  tt.deepEqual(at.amr, ['pwd']);
  tt.is(at.acr, 'urn:tessera:acr:pwd');
  tt.true(Math.abs(at.auth_time - Date.now() / 1000) < 120, 'when the person signed in');
  tt.deepEqual(config.serverMetadata().acr_values_supported, ['urn:tessera:acr:pwd', 'urn:tessera:acr:mfa', 'urn:tessera:acr:fed']);
  // A refresh keeps saying how the sign-in was made.
  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
  tt.deepEqual(claimsOf(refreshed.access_token).amr, ['pwd']);
  tt.deepEqual(refreshed.claims()!.amr, ['pwd']);
});

test('an organization requiring MFA: a password-only member is sent to set up a factor; switch and refresh are refused', async (tt) => {
  const on = await createTenant(t);
  const { client, strict, relaxed } = await world(on);
  await adminApi(t, on, 'PATCH', `/organizations/${strict}/auth-policy`, { mfa_required: true });

  // Asked for by name, the organization sends a password-only member to set up a second factor.
  const refused = await refusedSignIn(on, client, strict);
  tt.regex(refused?.message ?? '', /\/mfa\/enroll/);

  // The same person works in the other organization; from there, switching or refreshing into the strict one is refused.
  const { tokens, config } = await signIn(t, on, client, { params: { organization: relaxed } });
  tt.is(claimsOf(tokens.access_token).org_id, relaxed);
  const sw = await fetch(`${t.url}/t/${on.slug}/api/v1/me/organizations/${strict}/switch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokens.access_token}` },
  });
  tt.is(sw.status, 403);
  tt.regex(sw.headers.get('content-type')!, /problem\+json/);
  tt.like(await sw.json(), { code: 'auth_policy_not_met', missing: 'mfa' });

  const err = await oidc.refreshTokenGrant(config, tokens.refresh_token!, { organization: strict }).then(
    () => undefined,
    (e: { error?: string; error_description?: string }) => e,
  );
  tt.is(err?.error, 'invalid_target');
  tt.regex(err?.error_description ?? '', /missing: mfa/);
  // Nothing was spent or switched by the refusals: the sign-in still works in the other organization.
  const again = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
  tt.is(claimsOf(again.access_token).org_id, relaxed);

  // Switching into an organization whose policy the session meets works, and the new token keeps amr.
  const ok = await fetch(`${t.url}/t/${on.slug}/api/v1/me/organizations/${relaxed}/switch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokens.access_token}` },
  });
  tt.is(ok.status, 200);
  tt.deepEqual(claimsOf((await ok.json()).new_token).amr, ['pwd']);
});

test('a member of two organizations with different policies: allowed methods and the MFA grace period', async (tt) => {
  const on = await createTenant(t);
  const { client, strict, relaxed } = await world(on);
  // One accepts only passkeys and SSO; the other requires MFA but its grace period is running.
  await adminApi(t, on, 'PUT', `/organizations/${strict}/auth-policy`, { allowed_methods: ['passkey', 'sso'] });
  await adminApi(t, on, 'PUT', `/organizations/${relaxed}/auth-policy`, { mfa_required: true, mfa_grace_days: 14 });

  const refused = await refusedSignIn(on, client, strict);
  tt.is(refused?.error, 'access_denied');
  tt.regex(refused?.error_description ?? '', /missing: method/);

  // Within the grace period a password-only member is reminded, and gets in with "Later".
  const reminded = await refusedSignIn(on, client, relaxed);
  tt.regex(reminded?.message ?? '', /\/mfa\/reminder/);
  const { tokens } = await signInLater(on, client, relaxed);
  tt.is(claimsOf(tokens.access_token).org_id, relaxed, 'within the grace period, a password-only member still gets in');

  // When the grace period is over (MFA required without one), the same person must set one up first.
  await adminApi(t, on, 'PUT', `/organizations/${relaxed}/auth-policy`, { mfa_required: true, mfa_grace_days: 0 });
  const later = await refusedSignIn(on, client, relaxed);
  tt.regex(later?.message ?? '', /\/mfa\/enroll/);
});

/** An org-scoped sign-in that answers "Later" to the grace-period reminder. */
async function signInLater(on: TestTenant, client: RegisteredClient, organization: string) {
  const browser = new Browser(t.url);
  const { config, verifier, state, url } = await startAuthorization(on, client, { scope: 'openid', organization });
  const first = await browser.follow(url);
  const reminder = await enterCredentials(browser, await first.res.text(), first.url, on.adminEmail, on.adminPassword);
  const html = await reminder.res.text();
  const done = await browser.submit(new URL(formAction(html), reminder.url).href, {});
  const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: state });
  return { tokens };
}

test('the strictest of tenant and organization: a tenant requiring MFA sends password-only members to set up a factor, grace period or not', async (tt) => {
  const on = await createTenant(t);
  const { client, relaxed } = await world(on);
  // The organization's grace period does not soften the tenant's rule.
  await adminApi(t, on, 'PUT', `/organizations/${relaxed}/auth-policy`, { mfa_required: true, mfa_grace_days: 30 });
  tt.truthy((await signInLater(on, client, relaxed)).tokens.access_token, 'the grace period applies first');
  tt.is((await adminApi(t, on, 'PATCH', '/settings', { mfa: 'required' })).status, 200);
  // No reminder now: the tenant's rule sends the person to set up a factor at once.
  const refused = await refusedSignIn(on, client, relaxed);
  tt.regex(refused?.message ?? '', /\/mfa\/enroll/);
});

test('an openid-client RP sees amr/acr, asks for acr_values and max_age, and discovery says which acr values exist', async (tt) => {
  const { client } = await world(tenant);
  const config = await discover(tenant, client);
  tt.true(config.serverMetadata().claims_supported?.includes('amr'));
  tt.true(config.serverMetadata().claims_supported?.includes('acr'));
  const { tokens } = await signIn(t, tenant, client, { scope: 'openid', params: { acr_values: 'urn:tessera:acr:pwd', max_age: '600' } });
  tt.is(tokens.claims()!.acr, 'urn:tessera:acr:pwd');
  tt.true(typeof tokens.claims()!.auth_time === 'number', 'max_age makes auth_time part of the ID token');
});

test('sso_required keeps its meaning for members outside the organization’s domains; allowed_methods ["sso"] keeps passwords out', async (tt) => {
  const on = await createTenant(t);
  const { client, strict, relaxed } = await world(on);
  await adminApi(t, on, 'PATCH', `/organizations/${relaxed}/auth-policy`, { sso_required: true });
  const { tokens } = await signIn(t, on, client, { params: { organization: relaxed } });
  tt.is(claimsOf(tokens.access_token).org_id, relaxed, 'no verified domain holds this member: a password sign-in works in it, as before');

  await adminApi(t, on, 'PATCH', `/organizations/${strict}/auth-policy`, { allowed_methods: ['sso'] });
  const refused = await refusedSignIn(on, client, strict);
  tt.is(refused?.error, 'access_denied');
  tt.regex(refused?.error_description ?? '', /missing: method/);
  const sw = await fetch(`${t.url}/t/${on.slug}/api/v1/me/organizations/${strict}/switch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokens.access_token}` },
  });
  tt.is(sw.status, 403);
  tt.like(await sw.json(), { code: 'auth_policy_not_met', missing: 'method' });
});

test('a policy tightened after sign-in: the next refresh no longer carries the organization, as for a removed member', async (tt) => {
  const on = await createTenant(t);
  const { client, relaxed } = await world(on);
  const { tokens, config } = await signIn(t, on, client, { params: { organization: relaxed } });
  tt.is(claimsOf(tokens.access_token).org_id, relaxed);
  const before = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
  tt.is(claimsOf(before.access_token).org_id, relaxed, 'before the change');
  await adminApi(t, on, 'PATCH', `/organizations/${relaxed}/auth-policy`, { mfa_required: true });
  const after = await oidc.refreshTokenGrant(config, before.refresh_token ?? tokens.refresh_token!);
  tt.is(claimsOf(after.access_token).org_id, undefined);
  tt.is(after.claims()!.org_id, undefined, 'nor does the ID token');
  tt.deepEqual(claimsOf(after.access_token).amr, ['pwd'], 'the sign-in itself goes on');
});
