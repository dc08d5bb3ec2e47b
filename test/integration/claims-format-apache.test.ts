import test from 'ava';
import { type ApacheRp, apacheAddress, apacheMissing, navigate, parseEnv, startApacheRp } from '../helpers/apache-rp.ts';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';

/**
 * A relying party that flattens claims: Apache with mod_auth_openidc hands the app each claim as
 * an environment variable (OIDC_CLAIM_<name>), arrays of strings joined with ",". The test drives
 * a real sign-in through Apache and reads what the app behind it sees.
 */
const missing = apacheMissing();
/** Without Apache and the module (CI installs both: .ci/run), each test is skipped and says why. */
const apacheTest = missing ? test.skip : test;
const titled = (title: string) => (missing ? `${title} — skipped: ${missing}` : title);

let t: TestApp;
let tenant: TestTenant;

const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);

test.before(async () => {
  if (missing) return;
  t = await startTestApp();
  tenant = await createTenant(t);
  const adminId = (await api('GET', `/users?email=${encodeURIComponent(tenant.adminEmail)}`)).body.data[0].id;
  const acme = (await api('POST', '/organizations', { name: 'Acme', slug: 'acme' })).body;
  const globex = (await api('POST', '/organizations', { name: 'Globex', slug: 'globex' })).body;
  await api('POST', `/organizations/${acme.id}/members`, { user_id: adminId, role: 'owner' });
  await api('POST', `/organizations/${globex.id}/members`, { user_id: adminId, role: 'member' });
});
test.after.always(async () => t?.stop());

/** A client of `format`, an Apache RP for it, and the environment its app sees after a sign-in. */
async function signInThroughApache(format: string): Promise<{ env: Record<string, string>; rp: ApacheRp; browser: Browser }> {
  const { port, redirectUri } = await apacheAddress();
  const client = (await api('POST', '/clients', webClient(redirectUri, { claims_format: format, scopes: ['openid', 'email', 'organizations'] }))).body;
  const rp = await startApacheRp({
    port,
    metadataUrl: `${tenant.issuer}/.well-known/openid-configuration`,
    clientId: client.client_id,
    clientSecret: client.client_secret,
    scope: 'openid email organizations',
  });
  try {
    const browser = new Browser([t.url, rp.url]);
    // Apache sends the browser to Tessera's sign-in page…
    const login = await navigate(browser, rp.protectedUrl);
    if (!login.url.startsWith(t.url)) throw new Error(`expected Tessera's sign-in page, got ${login.res.status} ${login.url}\n${rp.errorLog()}`);
    // …the person signs in, and Tessera sends the browser back to Apache with a code, which
    // Apache redeems and then serves the protected page.
    const back = await enterCredentials(browser, await login.res.text(), login.url, tenant.adminEmail, tenant.adminPassword);
    const body = await back.res.text();
    if (back.res.status !== 200 || !back.url.startsWith(rp.protectedUrl)) {
      throw new Error(`the sign-in through Apache did not reach the app: ${back.res.status} ${back.url}\n${body.slice(0, 400)}\n${rp.errorLog()}`);
    }
    return { env: parseEnv(body), rp, browser };
  } catch (err) {
    await rp.stop();
    throw err;
  }
}

apacheTest(titled('flat: the app behind mod_auth_openidc sees every organization and the role in each'), async (tt) => {
  const { env, rp } = await signInThroughApache('flat');
  try {
    tt.is(env.OIDC_CLAIM_email, tenant.adminEmail, 'the sign-in went through Apache');
    tt.is(env.OIDC_CLAIM_org_slugs, 'acme,globex');
    tt.is(env.OIDC_CLAIM_org_roles_by_org, 'acme:owner,globex:member');
    tt.is(env.OIDC_CLAIM_org_ids?.split(',').length, 2);
    // What an app does with it: organization → roles.
    const rolesByOrg: Record<string, string[]> = {};
    for (const pair of (env.OIDC_CLAIM_org_roles_by_org ?? '').split(',')) {
      const at = pair.indexOf(':');
      const org = pair.slice(0, at);
      rolesByOrg[org] = [...(rolesByOrg[org] ?? []), pair.slice(at + 1)];
    }
    tt.deepEqual(rolesByOrg, { acme: ['owner'], globex: ['member'] });
  } finally {
    await rp.stop();
  }
});

apacheTest(titled('flat: Apache itself lets in the owner of Acme, and keeps a member of Globex out of the Globex owners page'), async (tt) => {
  const { rp, browser } = await signInThroughApache('flat');
  try {
    const acme = await browser.request(rp.acmeOwnersUrl);
    tt.is(acme.status, 200);
    tt.regex(await acme.text(), /OIDC_CLAIM_org_roles_by_org=acme:owner,globex:member/);
    // A member, not an owner, of Globex: the same session is refused there.
    const globex = await browser.request(rp.globexOwnersUrl);
    tt.is(globex.status, 401);
    await globex.body?.cancel();
  } finally {
    await rp.stop();
  }
});

apacheTest(titled('tessera (an array of objects): the app behind mod_auth_openidc does not get organizations and roles in usable form'), async (tt) => {
  const { env, rp } = await signInThroughApache('tessera');
  try {
    tt.is(env.OIDC_CLAIM_email, tenant.adminEmail, 'the sign-in went through Apache');
    // mod_auth_openidc passes on strings and arrays of strings; the array of objects arrives empty.
    tt.falsy(env.OIDC_CLAIM_organizations, `OIDC_CLAIM_organizations=${env.OIDC_CLAIM_organizations}`);
    const orgVars = Object.entries(env).filter(([name]) => name.startsWith('OIDC_CLAIM_org'));
    // No variable pairs an organization with the person's role in it: the claim is lost.
    for (const [name, value] of orgVars) {
      tt.false(value.includes('owner') && value.includes('acme'), `${name}=${value}`);
    }
    tt.falsy(env.OIDC_CLAIM_org_roles_by_org);
  } finally {
    await rp.stop();
  }
});
