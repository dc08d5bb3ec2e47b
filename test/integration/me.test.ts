import test from 'ava';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { type RegisteredClient, signIn } from '../helpers/oidc.ts';

let t: TestApp;
let tenant: TestTenant;
let client: RegisteredClient;

const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
  client = (await api('POST', '/clients', webClient())).body;
});
test.after.always(async () => t?.stop());

async function userWithToken(email: string) {
  const u = (await api('POST', '/users', { email, password: 'a good long password', email_verified: true })).body;
  const { tokens } = await signIn(t, tenant, client, { email, password: 'a good long password' });
  const me = (method: string, path: string) =>
    fetch(`${t.url}/t/${tenant.slug}/api/v1/me${path}`, { method, headers: { authorization: `Bearer ${tokens.access_token}` } });
  return { id: u.id as string, me };
}

test('my invitations: list, accept, decline; someone else’s is not found', async (tt) => {
  const zoe = await userWithToken('zoe@x.test');
  const a = (await api('POST', '/organizations', { name: 'Accept Me' })).body;
  const b = (await api('POST', '/organizations', { name: 'Decline Me' })).body;
  const c = (await api('POST', '/organizations', { name: 'Not Yours' })).body;
  const invA = (await api('POST', `/organizations/${a.id}/invitations`, { email: 'ZOE@x.test', role: 'admin' })).body;
  const invB = (await api('POST', `/organizations/${b.id}/invitations`, { email: 'zoe@x.test' })).body;
  const invC = (await api('POST', `/organizations/${c.id}/invitations`, { email: 'someone@x.test' })).body;

  const list = await (await zoe.me('GET', '/invitations')).json();
  tt.deepEqual(list.data.map((i: any) => [i.organization.name, i.role]).sort(), [
    ['Accept Me', 'admin'],
    ['Decline Me', 'member'],
  ]);

  const accepted = await zoe.me('POST', `/invitations/${invA.id}/accept`);
  tt.is(accepted.status, 200);
  tt.is((await accepted.json()).organization.id, a.id);
  tt.deepEqual((await api('GET', `/organizations/${a.id}/members/${zoe.id}`)).body.roles, ['admin']);
  tt.is((await zoe.me('POST', `/invitations/${invA.id}/accept`)).status, 409, 'used once');

  tt.is((await zoe.me('POST', `/invitations/${invB.id}/decline`)).status, 204);
  tt.is((await api('GET', `/organizations/${b.id}/invitations`)).body.data[0].status, 'declined');
  tt.is((await api('GET', `/organizations/${b.id}/members/${zoe.id}`)).status, 404);

  tt.is((await zoe.me('POST', `/invitations/${invC.id}/accept`)).status, 404);
  tt.is((await zoe.me('POST', `/invitations/${invC.id}/decline`)).status, 404);
  tt.is((await zoe.me('POST', '/invitations/not-an-id/accept')).status, 404);
  tt.is((await (await zoe.me('GET', '/invitations')).json()).data.length, 0);
});

test('leaving an organization: the membership goes, the last owner stays, strangers are not found', async (tt) => {
  const owner = await userWithToken('owner-leaver@x.test');
  const member = await userWithToken('member-leaver@x.test');
  const o = (await api('POST', '/organizations', { name: 'Leavable' })).body;
  await api('POST', `/organizations/${o.id}/members`, { user_id: owner.id, role: 'owner' });
  await api('POST', `/organizations/${o.id}/members`, { user_id: member.id });

  tt.is((await member.me('DELETE', `/organizations/${o.id}`)).status, 204);
  tt.is((await api('GET', `/organizations/${o.id}/members/${member.id}`)).status, 404);
  tt.is((await api('GET', `/users/${member.id}`)).status, 200, 'the account stays');
  const audit = (await api('GET', `/organizations/${o.id}/audit-log`)).body.data.map((e: any) => e.action);
  tt.true(audit.includes('member.left'));

  const last = await owner.me('DELETE', `/organizations/${o.id}`);
  tt.is(last.status, 409);
  tt.regex((await last.json()).detail, /last owner/);
  tt.is((await member.me('DELETE', `/organizations/${o.id}`)).status, 404, 'no longer a member');
  tt.is((await member.me('DELETE', '/organizations/not-an-id')).status, 404);
});
