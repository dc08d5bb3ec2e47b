import { randomBytes } from 'node:crypto';
import test from 'ava';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';
import { type RegisteredClient, signIn } from '../helpers/oidc.ts';
import { SmtpSink } from '../helpers/smtp.ts';

/**
 * An organization's lifecycle end to end: approval (portal creation → pending → no org token, no
 * invitation → a tenant admin approves → mail → token and invitations work), rejection with a
 * reason, nobody but the tenant approving, trials ended by the job with an injected clock (once,
 * however many instances run it), the per-person creation limit, and the bad inputs.
 */

let smtp: SmtpSink;
let t: TestApp;
let tenant: TestTenant;
let client: RegisteredClient;
const PASSWORD = 'quiet harbour 42 lantern';
// A second instance on the same database needs the same key (the trial job's race test).
const ENCRYPTION_KEY = randomBytes(32).toString('hex');

test.before(async () => {
  smtp = await SmtpSink.start();
  t = await startTestApp({ encryptionKey: ENCRYPTION_KEY, env: { SMTP_URL: smtp.url, MAIL_POLL_MS: '100' } });
  tenant = await createTenant(t);
  client = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
  const set = await adminApi(t, tenant, 'PATCH', '/settings', { users_can_create_organizations: true, organization_approval: 'required' });
  if (set.status !== 200) throw new Error(set.text);
});
test.after.always(async () => {
  await t?.stop();
  await smtp?.stop();
});

const api = (method: string, path: string, body?: unknown, tn = tenant) => adminApi(t, tn, method, path, body);
const portal = (path: string, tn = tenant) => `${t.url}/t/${tn.slug}/portal/${path}`;
let people = 0;

async function user(tn = tenant, prefix = 'person') {
  const email = `${prefix}${++people}@lifecycle.test`;
  const r = await api('POST', '/users', { email, password: PASSWORD, email_verified: true }, tn);
  if (r.status !== 201) throw new Error(r.text);
  return { id: r.body.id as string, email };
}

/** Signs in to the portal through the tenant's sign-in pages; returns the browser, its CSRF token and a form poster. */
async function signedIn(email: string, password = PASSWORD, tn = tenant) {
  const browser = new Browser(t.url);
  const first = await browser.follow(portal('organizations', tn));
  const done = await enterCredentials(browser, await first.res.text(), first.url, email, password);
  const html = await done.res.text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
  if (!csrf) throw new Error(`not signed in: ${html.slice(0, 400)}`);
  const post = (path: string, fields: Record<string, string>, withCsrf = true) =>
    browser.request(portal(path, tn), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
      body: new URLSearchParams({ ...fields, ...(withCsrf ? { _csrf: csrf } : {}) }).toString(),
    });
  return { browser, csrf, post };
}

/** Creates an organization in the portal as a signed-in person; its id from the redirect. */
async function createInPortal(session: Awaited<ReturnType<typeof signedIn>>, name: string) {
  const res = await session.post('organizations', { name });
  if (res.status !== 303) throw new Error(`create ${name}: ${res.status} ${(await res.text()).slice(0, 300)}`);
  return /organizations\/([0-9a-f-]{36})\//.exec(res.headers.get('location')!)![1]!;
}

async function auditActions(orgId: string, tn = tenant) {
  return ((await api('GET', `/organizations/${orgId}/audit-log?limit=200`, undefined, tn)).body.data as Array<{ action: string; actor: any }>).map(
    (e) => e.action,
  );
}

test('approval: created in the portal it waits, issues no org token and sends no invitation; approved, it works', async (tt) => {
  const owner = await user();
  const session = await signedIn(owner.email);
  const orgId = await createInPortal(session, 'Waiting Co');

  const org = (await api('GET', `/organizations/${orgId}`)).body;
  tt.is(org.status, 'pending');
  tt.is(org.status_reason, 'awaiting_approval');
  tt.is(org.created_by, owner.id);
  tt.truthy(org.status_changed_at);

  // The owner sees it, marked, and can open its settings.
  tt.regex(await (await session.browser.request(portal('organizations'))).text(), /waiting for approval/);
  tt.regex(await (await session.browser.request(`${t.url}/t/${tenant.slug}/account/organizations`)).text(), /waiting for approval/);
  const settings = await session.browser.request(portal(`organizations/${orgId}/settings`));
  tt.is(settings.status, 200);
  tt.regex(await settings.text(), /waiting for approval by an administrator/);

  // No org-scoped token: authorization request, switch API, API token.
  const err = await tt.throwsAsync(signIn(t, tenant, client, { email: owner.email, password: PASSWORD, params: { organization: orgId } }));
  tt.is((err as oidc.AuthorizationResponseError).error, 'access_denied');
  tt.regex(String((err as oidc.AuthorizationResponseError).error_description), /waiting for approval/);
  const plain = await signIn(t, tenant, client, { email: owner.email, password: PASSWORD, scope: 'openid organizations offline_access' });
  tt.deepEqual(plain.tokens.claims()!.organizations, [], 'left out of the organizations claim');
  const sw = await fetch(`${tenant.issuer}/api/v1/me/organizations/${orgId}/switch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${plain.tokens.access_token}` },
  });
  tt.is(sw.status, 403);
  tt.regex((await sw.json()).detail, /waiting for approval/);
  const refreshed = await tt.throwsAsync(oidc.refreshTokenGrant(plain.config, plain.tokens.refresh_token!, { organization: orgId }));
  tt.regex(String((refreshed as oidc.ResponseBodyError).error_description), /waiting for approval/);
  const minted = await api('POST', `/users/${owner.id}/tokens`, { scopes: ['openid'], expires_in: 600, org_id: orgId });
  tt.is(minted.status, 422);
  tt.regex(minted.body.detail, /waiting for approval/);

  // No invitation: refused with a clear 409, from the portal and the API alike; no mail.
  const invitee = `invitee${people}@lifecycle.test`;
  const portalInvite = await session.post(`organizations/${orgId}/invitations`, { email: invitee, role: 'member' });
  tt.is(portalInvite.status, 422);
  tt.regex(await portalInvite.text(), /waiting for approval/);
  const apiInvite = await api('POST', `/organizations/${orgId}/invitations`, { email: invitee, role: 'member' });
  tt.is(apiInvite.status, 409);
  tt.regex(apiInvite.body.detail, /invite people once it is approved/);

  // A tenant admin approves: the owner is mailed, and everything works.
  const approved = await api('POST', `/organizations/${orgId}/approve`, {});
  tt.is(approved.status, 200);
  tt.is(approved.body.status, 'active');
  tt.is(approved.body.status_reason, 'approved');
  const mail = await smtp.waitFor(owner.email, /Waiting Co is approved/);
  tt.regex(mail.text!, new RegExp(`/portal/organizations/${orgId}/members`));
  const { tokens } = await signIn(t, tenant, client, { email: owner.email, password: PASSWORD, params: { organization: orgId } });
  tt.is(tokens.claims()!.org_id, orgId);
  const listed = await signIn(t, tenant, client, { email: owner.email, password: PASSWORD, scope: 'openid organizations' });
  tt.deepEqual(
    (listed.tokens.claims()!.organizations as Array<{ id: string }>).map((o) => o.id),
    [orgId],
  );
  tt.is((await session.post(`organizations/${orgId}/invitations`, { email: invitee, role: 'member' })).status, 303);
  await smtp.waitFor(invitee, /invited to join Waiting Co/);
  tt.is(smtp.countTo(invitee), 1, 'only the invitation made after approval was mailed');

  const actions = await auditActions(orgId);
  tt.true(actions.includes('organization.created'));
  tt.true(actions.includes('organization.approved'));
});

test('reject: a reason is required, the owner is mailed it and sees it; a rejected organization issues nothing', async (tt) => {
  const owner = await user();
  const session = await signedIn(owner.email);
  const orgId = await createInPortal(session, 'Refused Co');

  for (const body of [{}, { reason: '' }, { reason: '   ' }, { reason: 'x'.repeat(501) }, { reason: 42 }]) {
    const r = await api('POST', `/organizations/${orgId}/reject`, body);
    tt.is(r.status, 422, JSON.stringify(body));
    tt.is(r.body.errors[0].field, 'reason');
  }
  tt.is((await api('GET', `/organizations/${orgId}`)).body.status, 'pending');

  const rejected = await api('POST', `/organizations/${orgId}/reject`, { reason: 'We could not verify this company.' });
  tt.is(rejected.status, 200);
  tt.is(rejected.body.status, 'rejected');
  tt.is(rejected.body.status_reason, 'We could not verify this company.');
  const mail = await smtp.waitFor(owner.email, /Refused Co was not approved/);
  tt.regex(mail.text!, /We could not verify this company\./);

  const account = await (await session.browser.request(`${t.url}/t/${tenant.slug}/account/organizations`)).text();
  tt.regex(account, /not approved/);
  tt.regex(account, /We could not verify this company\./);
  tt.regex(await (await session.browser.request(portal(`organizations/${orgId}/members`))).text(), /was not approved: We could not verify this company\./);

  const err = await tt.throwsAsync(signIn(t, tenant, client, { email: owner.email, password: PASSWORD, params: { organization: orgId } }));
  tt.regex(String((err as oidc.AuthorizationResponseError).error_description), /was not approved/);
  tt.is((await api('POST', `/organizations/${orgId}/invitations`, { email: 'no@lifecycle.test', role: 'member' })).status, 409);
  tt.is((await api('POST', `/organizations/${orgId}/reject`, { reason: 'again' })).status, 409, 'only a pending organization is rejected');
  tt.is((await api('PATCH', `/organizations/${orgId}`, { status: 'active' })).status, 409, 'out of rejected only by approve');
  tt.true((await auditActions(orgId)).includes('organization.rejected'));

  // Changing one's mind: a rejected organization may still be approved.
  const approved = await api('POST', `/organizations/${orgId}/approve`, {});
  tt.is(approved.body.status, 'active');
});

test('the owner cannot approve their own organization by any path', async (tt) => {
  const owner = await user();
  const session = await signedIn(owner.email);
  const orgId = await createInPortal(session, 'Self Approver Co');

  // The settings form: status is not the owner's to change (the field is ignored).
  const form = await session.post(`organizations/${orgId}/settings`, { name: 'Self Approver Co', slug: 'self-approver-co', status: 'active' });
  tt.is(form.status, 303);
  tt.is((await api('GET', `/organizations/${orgId}`)).body.status, 'pending');
  // The tenant admins' approvals page does not exist for them.
  tt.is((await session.post(`approvals/${orgId}/approve`, {})).status, 404);
  tt.is((await session.browser.request(portal('approvals'))).status, 404);
  // An admin-scoped token of theirs does not open the Admin API.
  const minted = (await api('POST', `/users/${owner.id}/tokens`, { scopes: ['admin'], expires_in: 600 })).body;
  for (const [path, body] of [
    [`/organizations/${orgId}/approve`, {}],
    [`/organizations/${orgId}`, { status: 'active' }],
  ] as const) {
    const r = await fetch(`${tenant.issuer}/api/v1/admin${path}`, {
      method: path.endsWith('approve') ? 'POST' : 'PATCH',
      headers: { authorization: `Bearer ${minted.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    tt.is(r.status, 403, path);
  }
  // And the services themselves refuse anyone but the tenant, whichever door calls them.
  const asOwner = { type: 'user' as const, id: owner.id };
  const patch = await tt.throwsAsync(t.app.services.orgs.update(tenant.id, asOwner, orgId, { status: 'active' }, 'patch'));
  tt.is((patch as { status?: number }).status, 403);
  const reason = await tt.throwsAsync(t.app.services.orgs.update(tenant.id, asOwner, orgId, { status_reason: 'fine' }, 'patch'));
  tt.is((reason as { status?: number }).status, 403);
  const approve = await tt.throwsAsync(t.app.services.lifecycle.approve(tenant.id, asOwner, orgId));
  tt.is((approve as { status?: number }).status, 403);
  tt.is((await api('GET', `/organizations/${orgId}`)).body.status, 'pending');
  tt.false((await auditActions(orgId)).includes('organization.approved'));
});

test('the approvals page: tenant admins approve and reject with CSRF-protected forms', async (tt) => {
  const ownerA = await user();
  const ownerB = await user();
  const a = await createInPortal(await signedIn(ownerA.email), 'Portal Approve Co');
  const b = await createInPortal(await signedIn(ownerB.email), 'Portal Reject Co');
  const admin = await signedIn(tenant.adminEmail, tenant.adminPassword);
  // A tenant administrator's own organization never waits.
  const own = await createInPortal(admin, 'Admin Made Co');
  tt.is((await api('GET', `/organizations/${own}`)).body.status, 'active');
  const page = await (await admin.browser.request(portal('approvals'))).text();
  tt.regex(page, /Portal Approve Co/);
  tt.regex(page, /Portal Reject Co/);

  tt.is((await admin.post(`approvals/${a}/approve`, {}, false)).status, 403, 'no CSRF token, no change');
  tt.is((await api('GET', `/organizations/${a}`)).body.status, 'pending');
  const approved = await admin.post(`approvals/${a}/approve`, {});
  tt.is(approved.status, 303);
  tt.is((await api('GET', `/organizations/${a}`)).body.status, 'active');
  await smtp.waitFor(ownerA.email, /Portal Approve Co is approved/);
  tt.is((await admin.post(`approvals/${a}/approve`, {})).status, 409, 'approving an active organization is refused');

  const empty = await admin.post(`approvals/${b}/reject`, { reason: '' });
  tt.is(empty.status, 422);
  tt.regex(await empty.text(), /Must not be empty/);
  tt.is((await admin.post(`approvals/${b}/reject`, { reason: 'Duplicate of an existing customer.' })).status, 303);
  tt.is((await api('GET', `/organizations/${b}`)).body.status, 'rejected');
  tt.regex((await smtp.waitFor(ownerB.email, /Portal Reject Co was not approved/)).text!, /Duplicate of an existing customer\./);

  // Another tenant's organization is not found through this tenant's page.
  const other = await createTenant(t);
  const foreign = (await api('POST', '/organizations', { name: 'Foreign Pending', status: 'pending' }, other)).body.id;
  tt.is((await admin.post(`approvals/${foreign}/approve`, {})).status, 404);
  tt.is((await api('GET', `/organizations/${foreign}`, undefined, other)).body.status, 'pending');
  tt.is((await api('POST', `/organizations/${foreign}/approve`, {})).status, 404, 'nor through the Admin API');
});

test('the organization rules in the portal and PATCH /settings; changes are in the tenant audit log', async (tt) => {
  const tn = await createTenant(t);
  const admin = await signedIn(tn.adminEmail, tn.adminPassword, tn);
  for (const bad of ['0', '-1', '1.5', 'many']) {
    const r = await admin.post('approvals/rules', { organization_approval: 'required', max_organizations_per_user: bad });
    tt.is(r.status, 422, bad);
  }
  tt.is((await admin.post('approvals/rules', { organization_approval: 'required', max_organizations_per_user: '3' })).status, 303);
  const shown = (await api('GET', '/settings', undefined, tn)).body;
  tt.is(shown.organization_approval, 'required');
  tt.is(shown.max_organizations_per_user, 3);
  tt.is((await admin.post('approvals/rules', { organization_approval: 'off', max_organizations_per_user: '' })).status, 303);
  tt.is((await api('GET', '/settings', undefined, tn)).body.max_organizations_per_user, null);

  for (const body of [
    { organization_approval: 'maybe' },
    { max_organizations_per_user: 0 },
    { max_organizations_per_user: 'one' },
    { max_organizations_per_user: 2.5 },
  ]) {
    const r = await api('PATCH', '/settings', body, tn);
    tt.is(r.status, 422, JSON.stringify(body));
  }
  const audit = (await api('GET', '/audit-log', undefined, tn)).body.data as Array<{ action: string }>;
  tt.true(audit.filter((e) => e.action === 'tenant.organization_rules.updated').length >= 2);
});

test('max_organizations_per_user: people are limited in the portal, at once too; tenant admins are not', async (tt) => {
  const tn = await createTenant(t);
  await api('PATCH', '/settings', { users_can_create_organizations: true, max_organizations_per_user: 1 }, tn);
  const person = await user(tn);
  const session = await signedIn(person.email, PASSWORD, tn);
  const first = await createInPortal(session, 'First Of Mine');
  tt.is((await api('GET', `/organizations/${first}`, undefined, tn)).body.status, 'active', 'approval is off here');
  const second = await session.post('organizations', { name: 'Second Of Mine' });
  tt.is(second.status, 422);
  tt.regex(await second.text(), /You have already created an organization/);

  // Two at the same moment by a new person: one is made.
  const racer = await user(tn);
  const raceSession = await signedIn(racer.email, PASSWORD, tn);
  const results = await Promise.all([raceSession.post('organizations', { name: 'Race A' }), raceSession.post('organizations', { name: 'Race B' })]);
  tt.deepEqual(results.map((r) => r.status).sort(), [303, 422]);
  const made = (await api('GET', '/organizations?limit=200', undefined, tn)).body.data.filter((o: { created_by: string }) => o.created_by === racer.id);
  tt.is(made.length, 1);

  // Tenant admins: in the portal and through the Admin API, as many as they like.
  const admin = await signedIn(tn.adminEmail, tn.adminPassword, tn);
  await createInPortal(admin, 'Admin One');
  await createInPortal(admin, 'Admin Two');
  tt.is((await api('POST', '/organizations', { name: 'Api One' }, tn)).status, 201);
  tt.is((await api('POST', '/organizations', { name: 'Api Two' }, tn)).status, 201);

  // Deleting one's organization frees the place.
  tt.is((await api('DELETE', `/organizations/${first}`, undefined, tn)).status, 204);
  await createInPortal(session, 'Second Chance');
});

test('trials: the job suspends a trial that ended (injected clock), with reason trial_ended; its org tokens stop working', async (tt) => {
  const tn = await createTenant(t);
  const trialClient = (await api('POST', '/clients', webClient(), tn)).body;
  const adminId = (await api('GET', `/users?email=${encodeURIComponent(tn.adminEmail)}`, undefined, tn)).body.data[0].id;
  const ends = new Date(Date.now() + 3600_000);
  const created = await api('POST', '/organizations', { name: 'Trial Co', status: 'trialing', trial_ends_at: ends.toISOString() }, tn);
  tt.is(created.status, 201);
  tt.is(created.body.trial_ends_at, ends.toISOString());
  const orgId = created.body.id;
  const kept = (await api('POST', '/organizations', { name: 'Converted Co', status: 'trialing', trial_ends_at: ends.toISOString() }, tn)).body.id;
  await api('POST', `/organizations/${orgId}/members`, { user_id: adminId, role: 'owner' }, tn);

  const { tokens, config } = await signIn(t, tn, trialClient, { params: { organization: orgId } });
  tt.is(tokens.claims()!.org_id, orgId);

  // Before the end: nothing happens.
  await t.app.services.lifecycle.expireTrials(new Date(ends.getTime() - 60_000));
  tt.is((await api('GET', `/organizations/${orgId}`, undefined, tn)).body.status, 'trialing');
  // Converted before the end: the job leaves it alone.
  tt.is((await api('PATCH', `/organizations/${kept}`, { status: 'active', status_reason: 'Paid by invoice' }, tn)).body.status_reason, 'Paid by invoice');

  const after = new Date(ends.getTime() + 60_000);
  await t.app.services.lifecycle.expireTrials(after);
  const org = (await api('GET', `/organizations/${orgId}`, undefined, tn)).body;
  tt.is(org.status, 'suspended');
  tt.is(org.status_reason, 'trial_ended');
  tt.is(org.status_changed_at, after.toISOString());
  tt.is((await api('GET', `/organizations/${kept}`, undefined, tn)).body.status, 'active');
  const log = (await api('GET', `/organizations/${orgId}/audit-log`, undefined, tn)).body.data as Array<{ action: string; actor: any; after: any }>;
  const ended = log.filter((e) => e.action === 'organization.trial_ended');
  tt.is(ended.length, 1);
  tt.deepEqual(ended[0]!.actor, { type: 'system', id: 'trial_expiry' });
  tt.is(ended[0]!.after.status, 'suspended');

  // The sign-in working in it ended: its refresh token is refused.
  const refused = await tt.throwsAsync(oidc.refreshTokenGrant(config, tokens.refresh_token!));
  tt.is((refused as oidc.ResponseBodyError).error, 'invalid_grant');
  // Running again changes nothing.
  await t.app.services.lifecycle.expireTrials(after);
  tt.is((await auditActions(orgId, tn)).filter((a) => a === 'organization.trial_ended').length, 1);
});

test('trials: two instances running the job at the same moment suspend (and audit) each organization once', async (tt) => {
  // Two instances on a database of their own: the job reads every tenant's due trials, and those
  // of the other tests must not be in this race.
  const one = await startTestApp({ encryptionKey: ENCRYPTION_KEY });
  const two = await startTestApp({ databaseUrl: one.databaseUrl!, encryptionKey: ENCRYPTION_KEY });
  try {
    const tn = await createTenant(one);
    const ends = new Date(Date.now() + 7 * 86_400_000);
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) {
      const r = await adminApi(one, tn, 'POST', '/organizations', { name: `Race Trial ${i}`, status: 'trialing', trial_ends_at: ends.toISOString() });
      ids.push(r.body.id);
    }
    const now = new Date(ends.getTime() + 1000);
    const counts = await Promise.all([
      one.app.services.lifecycle.expireTrials(now),
      two.app.services.lifecycle.expireTrials(now),
      one.app.services.lifecycle.expireTrials(now),
      two.app.services.lifecycle.expireTrials(now),
    ]);
    tt.is(
      counts.reduce((a, b) => a + b, 0),
      ids.length,
      'the calls together changed each organization once',
    );
    const rows = await sql<{ org_id: string; n: string }>`
      select org_id, count(*) as n from org_audit_log
      where tenant_id = ${tn.id} and action = 'organization.trial_ended' group by org_id`.execute(one.app.connection.db);
    tt.is(rows.rows.length, ids.length, 'every organization was suspended');
    tt.true(
      rows.rows.every((r) => Number(r.n) === 1),
      'and audited once',
    );
    for (const id of ids) tt.is((await adminApi(one, tn, 'GET', `/organizations/${id}`)).body.status, 'suspended');
  } finally {
    await two.stop();
    await one.stop();
  }
});

test('bad input: trial dates, statuses only approve/reject may set, approving what is not pending', async (tt) => {
  const tn = await createTenant(t);
  const cases: Array<[unknown, string]> = [
    [{ name: 'T', status: 'trialing', trial_ends_at: '2001-01-01T00:00:00Z' }, 'trial_ends_at'],
    [{ name: 'T', status: 'trialing', trial_ends_at: 'next tuesday' }, 'trial_ends_at'],
    [{ name: 'T', status: 'trialing', trial_ends_at: '2099-13-45T00:00:00Z' }, 'trial_ends_at'],
    [{ name: 'T', status: 'trialing', trial_ends_at: 1893456000 }, 'trial_ends_at'],
    [{ name: 'T', status: 'active', trial_ends_at: '2099-01-01T00:00:00Z' }, 'trial_ends_at'],
    [{ name: 'T', status: 'archived' }, 'status'],
    [{ name: 'T', status_reason: '' }, 'status_reason'],
  ];
  for (const [body, field] of cases) {
    const r = await api('POST', '/organizations', body, tn);
    tt.is(r.status, 422, JSON.stringify(body));
    tt.true(
      r.body.errors.some((e: { field: string }) => e.field === field),
      JSON.stringify(r.body),
    );
  }
  const plain = (await api('POST', '/organizations', { name: 'Plain' }, tn)).body;
  tt.is(plain.created_by, null, 'an API key is nobody');
  tt.is(plain.status_reason, null);
  const active = plain.id;
  tt.is((await api('POST', `/organizations/${active}/approve`, {}, tn)).status, 409);
  tt.regex((await api('POST', `/organizations/${active}/approve`, {}, tn)).body.detail, /only a pending or rejected organization/);
  tt.is((await api('POST', `/organizations/${active}/reject`, { reason: 'no' }, tn)).status, 409);
  tt.is((await api('PATCH', `/organizations/${active}`, { status: 'rejected' }, tn)).status, 409);
  tt.is((await api('PATCH', `/organizations/${active}`, { trial_ends_at: '2099-01-01T00:00:00Z' }, tn)).status, 422);
  tt.is((await api('POST', '/organizations/00000000-0000-4000-8000-000000000000/approve', {}, tn)).status, 404);
  tt.is((await api('POST', '/organizations/not-a-uuid/approve', {}, tn)).status, 404);
  tt.is((await api('POST', `/organizations/${active}/approve`, { trial_ends_at: 'soon' }, tn)).status, 422);
  tt.is((await api('POST', `/organizations/${active}/approve`, { extra: true }, tn)).status, 422);

  // An API-created pending organization: PATCH can't take it out of pending, approve can (into a trial).
  const pending = (await api('POST', '/organizations', { name: 'Queued', status: 'pending' }, tn)).body.id;
  const out = await api('PATCH', `/organizations/${pending}`, { status: 'active' }, tn);
  tt.is(out.status, 409);
  tt.regex(out.body.detail, /approve it/);
  const ends = new Date(Date.now() + 14 * 86_400_000).toISOString();
  const approved = await api('POST', `/organizations/${pending}/approve`, { trial_ends_at: ends }, tn);
  tt.is(approved.body.status, 'trialing');
  tt.is(approved.body.trial_ends_at, ends);
  // Suspending with a reason records it; the org-scoped sign-ins end (the existing rule).
  const suspended = await api('PATCH', `/organizations/${pending}`, { status: 'suspended', status_reason: 'Unpaid invoice' }, tn);
  tt.is(suspended.body.status, 'suspended');
  tt.is(suspended.body.status_reason, 'Unpaid invoice');
  const reactivated = await api('PATCH', `/organizations/${pending}`, { status: 'active' }, tn);
  tt.is(reactivated.body.status_reason, null, 'a new status without a reason has none');
});

test('trials: the job is scheduled on every instance, every ORG_TRIAL_CHECK_MS', async (tt) => {
  // The one test here that waits on the real clock: it shows the job is wired, not what it does.
  const quick = await startTestApp({ env: { ORG_TRIAL_CHECK_MS: '1000' } });
  try {
    const tn = await createTenant(quick);
    const ends = new Date(Date.now() + 1500);
    const id = (await adminApi(quick, tn, 'POST', '/organizations', { name: 'Short Trial', status: 'trialing', trial_ends_at: ends.toISOString() })).body.id;
    let status = 'trialing';
    for (let i = 0; i < 40 && status === 'trialing'; i++) {
      await new Promise((r) => setTimeout(r, 250));
      status = (await adminApi(quick, tn, 'GET', `/organizations/${id}`)).body.status;
    }
    tt.is(status, 'suspended');
  } finally {
    await quick.stop();
  }
});
