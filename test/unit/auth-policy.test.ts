import test from 'ava';
import { ACR, DEFAULT_ORG_POLICY, type OrgAuthPolicy, type SessionFacts, sessionMeets, strictest } from '../../src/auth-policy/policy.ts';
import { upstreamReportedMfa } from '../../src/sso/upstream.ts';

const NOW = new Date('2026-06-01T12:00:00Z');
const nowSeconds = NOW.getTime() / 1000;
const org = (p: Partial<OrgAuthPolicy> = {}): OrgAuthPolicy => ({ ...DEFAULT_ORG_POLICY, ...p });
const facts = (amr: string[], more: Partial<SessionFacts> = {}): SessionFacts => ({ amr, authTime: nowSeconds - 10, viaOrgSso: false, ...more });
const meets = (tenantMfa: 'off' | 'optional' | 'required', p: OrgAuthPolicy, f: SessionFacts, since: Date | null = null) =>
  sessionMeets(strictest({ mfa: tenantMfa }, p, since), f, NOW);

test('defaults: any password session meets an organization without a policy', (t) => {
  t.deepEqual(meets('optional', org(), facts(['pwd'])), { ok: true });
  t.deepEqual(sessionMeets(strictest({ mfa: 'optional' }, null), facts(['pwd']), NOW), { ok: true });
});

test('MFA required: password alone is refused, two factors or a verified passkey pass', (t) => {
  const p = org({ mfa_required: true });
  t.like(meets('optional', p, facts(['pwd'])), { ok: false, missing: 'mfa' });
  t.deepEqual(meets('optional', p, facts(['pwd', 'otp', 'mfa'])), { ok: true });
  t.deepEqual(meets('optional', p, facts(['pwd'], { acr: ACR.mfa })), { ok: true });
  t.deepEqual(meets('optional', p, facts(['hwk', 'user'])), { ok: true });
  t.like(meets('optional', p, facts(['hwk'])), { ok: false, missing: 'mfa' }, 'a passkey without user verification is one factor');
});

test('the tenant requiring MFA wins over an organization that does not', (t) => {
  t.like(meets('required', org(), facts(['pwd'])), { ok: false, missing: 'mfa' });
  t.deepEqual(meets('off', org(), facts(['pwd'])), { ok: true });
  t.like(meets('off', org({ mfa_required: true }), facts(['pwd'])), { ok: false, missing: 'mfa' }, 'tenant off does not loosen an org');
});

test('grace period: members without MFA still get in, reminded, until it ends; the tenant rule has none', (t) => {
  const p = org({ mfa_required: true, mfa_grace_days: 7 });
  const twoDaysAgo = new Date(NOW.getTime() - 2 * 86_400_000);
  const tenDaysAgo = new Date(NOW.getTime() - 10 * 86_400_000);
  t.deepEqual(meets('optional', p, facts(['pwd']), twoDaysAgo), { ok: true, reminder: 'mfa_grace' });
  t.like(meets('optional', p, facts(['pwd']), tenDaysAgo), { ok: false, missing: 'mfa' });
  t.like(meets('required', p, facts(['pwd']), twoDaysAgo), { ok: false, missing: 'mfa' });
});

test('upstream MFA satisfies only when the organization says so, and never the tenant rule', (t) => {
  const sso = facts(['fed', 'mfa'], { viaOrgSso: true });
  t.like(meets('optional', org({ mfa_required: true }), sso), { ok: false, missing: 'mfa' });
  t.deepEqual(meets('optional', org({ mfa_required: true, upstream_mfa_satisfies: true }), sso), { ok: true });
  t.like(meets('optional', org({ mfa_required: true, upstream_mfa_satisfies: true }), facts(['fed'], { viaOrgSso: true })), {
    ok: false,
    missing: 'mfa',
  });
  t.like(meets('required', org({ upstream_mfa_satisfies: true }), sso), { ok: false, missing: 'mfa' });
  // Another organization's IdP reporting MFA is that organization's word, not this one's.
  const elsewhere = facts(['fed', 'mfa'], { viaOrgSso: false });
  t.like(meets('optional', org({ mfa_required: true, upstream_mfa_satisfies: true }), elsewhere), { ok: false, missing: 'mfa' });
  t.like(
    meets('optional', org({ mfa_required: true, upstream_mfa_satisfies: true }), facts(['fed', 'mfa'])),
    { ok: false, missing: 'mfa' },
    'not known: not counted',
  );
});

test('SSO required: a session that did not come through the organization’s SSO is refused', (t) => {
  t.like(meets('optional', org({ sso_required: true }), facts(['pwd', 'otp', 'mfa'])), { ok: false, missing: 'sso' });
  t.like(meets('optional', org({ sso_required: true }), facts(['fed'])), { ok: false, missing: 'sso' }, 'another organization’s SSO');
  t.deepEqual(meets('optional', org({ sso_required: true }), facts(['fed'], { viaOrgSso: true })), { ok: true });
  t.deepEqual(meets('optional', org({ sso_required: true }), facts(['pwd'], { viaOrgSso: undefined })), { ok: true }, 'not known: left to the sign-in');
});

test('allowed methods: a method the organization does not accept is refused', (t) => {
  t.like(meets('optional', org({ allowed_methods: ['passkey'] }), facts(['pwd', 'otp', 'mfa'])), { ok: false, missing: 'method' });
  t.deepEqual(meets('optional', org({ allowed_methods: ['passkey'] }), facts(['swk', 'user'])), { ok: true });
  // A passkey after a password is the second factor of a password sign-in, not its method.
  t.deepEqual(meets('optional', org({ allowed_methods: ['password'] }), facts(['pwd', 'hwk', 'user', 'mfa'])), { ok: true });
  t.like(meets('optional', org({ allowed_methods: ['passkey'] }), facts(['pwd', 'hwk', 'user', 'mfa'])), { ok: false, missing: 'method' });
  t.like(meets('optional', org({ allowed_methods: ['password'] }), facts(['fed'], { viaOrgSso: true })), { ok: false, missing: 'method' });
  t.like(meets('optional', org({ allowed_methods: ['password', 'passkey'] }), facts([])), { ok: false, missing: 'method' }, 'a session that shows no method');
  t.deepEqual(meets('optional', org(), facts([])), { ok: true }, 'nothing restricted: a session from before methods were recorded');
});

test('maximum session age: an old or undated sign-in needs a fresh one', (t) => {
  const p = org({ max_session_age_seconds: 300 });
  t.deepEqual(meets('optional', p, facts(['pwd'], { authTime: nowSeconds - 299 })), { ok: true });
  t.like(meets('optional', p, facts(['pwd'], { authTime: nowSeconds - 301 })), { ok: false, missing: 'fresh_sign_in' });
  t.like(meets('optional', p, facts(['pwd'], { authTime: undefined })), { ok: false, missing: 'fresh_sign_in' });
});

test('an upstream IdP’s amr: which values report more than one factor', (t) => {
  for (const amr of [['mfa'], ['pwd', 'otp'], ['pwd', 'hwk'], ['user', 'swk'], ['pin', 'sms']]) t.true(upstreamReportedMfa(amr), amr.join(','));
  for (const amr of [undefined, null, 'mfa', [], ['pwd'], ['otp'], ['hwk'], ['fed'], [1, 2]]) t.false(upstreamReportedMfa(amr), JSON.stringify(amr));
});
