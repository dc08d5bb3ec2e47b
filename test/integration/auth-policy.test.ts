import test from 'ava';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';

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
