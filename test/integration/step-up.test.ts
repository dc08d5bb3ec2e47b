import test from 'ava';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { base32Decode, hotp, totpStep } from '../../src/factors/totp.ts';
import { acrSatisfies } from '../../src/oidc/requested-acr.ts';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials, formAction } from '../helpers/browser.ts';
import { type RegisteredClient, startAuthorization } from '../helpers/oidc.ts';

let t: TestApp;
let tenant: TestTenant;
let client: RegisteredClient;

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
  client = (await adminApi(t, tenant, 'POST', '/clients', { ...webClient(), organization_usage: 'allow' })).body;
});
test.after.always(async () => t?.stop());

const PASSWORD = 'step up to the second factor 3';
const MFA = 'urn:tessera:acr:mfa';
const code = (key: Buffer) => hotp(key, totpStep(Date.now() / 1000));

test('acr levels: a two-factor sign-in meets a request for a password one, not the other way round; fed meets only fed', (tt) => {
  tt.true(acrSatisfies(MFA, ['urn:tessera:acr:pwd']));
  tt.true(acrSatisfies(MFA, [MFA]));
  tt.false(acrSatisfies('urn:tessera:acr:pwd', [MFA]));
  tt.false(acrSatisfies('urn:tessera:acr:fed', [MFA, 'urn:tessera:acr:pwd']));
  tt.true(acrSatisfies('urn:tessera:acr:fed', ['urn:tessera:acr:fed']));
  tt.false(acrSatisfies(undefined, ['urn:tessera:acr:pwd']));
});

test('step-up driven by the app: refused for the organization with a password session, then acr_values asks again and the two-factor session gets its token', async (tt) => {
  const email = 'stepping@up.test';
  const user = (await adminApi(t, tenant, 'POST', '/users', { email, password: PASSWORD, email_verified: true })).body;
  const org = (await adminApi(t, tenant, 'POST', '/organizations', { name: 'Strict Org' })).body.id as string;
  tt.is((await adminApi(t, tenant, 'POST', `/organizations/${org}/members`, { user_id: user.id, role: 'member' })).status, 201);
  tt.is((await adminApi(t, tenant, 'PATCH', `/organizations/${org}/auth-policy`, { mfa_required: true })).status, 200);
  const browser = new Browser(t.url);
  const back = (url: string) => new URL(url).searchParams;

  // 1. A password sign-in for the app itself (no organization asked for): the session is pwd.
  const first = await startAuthorization(tenant, client, { scope: 'openid' });
  const page = await browser.follow(first.url);
  const signedIn = await enterCredentials(browser, await page.res.text(), page.url, email, PASSWORD);
  tt.truthy(back(signedIn.url).get('code'), signedIn.url);

  // 2. Then the organization: the session is reused as it is, and the app hears what is missing.
  const inOrg = await startAuthorization(tenant, client, { scope: 'openid', organization: org });
  const refused = await browser.follow(inOrg.url);
  tt.true(refused.url.startsWith(client.redirect_uris[0]!), 'no sign-in page: the session is reused');
  tt.is(back(refused.url).get('error'), 'access_denied');
  tt.regex(back(refused.url).get('error_description') ?? '', /missing: mfa/);

  // The person adds an authenticator app (as on their security page).
  const factors = t.app.services.factors;
  const enrollment = await factors.startTotp(tenant.id, user.id, 'Tessera', email);
  const key = base32Decode(enrollment.secret);
  tt.true(await factors.confirmTotp(tenant.id, user.id, enrollment.factorId, hotp(key, totpStep(Date.now() / 1000) - 1)));

  // 3. acr_values asks for a two-factor sign-in: the password, then the code, then the organization's token.
  const up = await startAuthorization(tenant, client, { scope: 'openid', organization: org, acr_values: MFA });
  const signIn = await browser.follow(up.url);
  tt.regex(signIn.url, /\/interaction\/[^/]+$/, 'the sign-in page, although a session exists');
  const codeStep = await enterCredentials(browser, await signIn.res.text(), signIn.url, email, PASSWORD);
  tt.regex(codeStep.url, /\/mfa$/);
  const done = await browser.submit(new URL(formAction(await codeStep.res.text()), codeStep.url).href, { method: 'totp', code: code(key) });
  tt.true(done.url.startsWith(client.redirect_uris[0]!), done.url);
  const tokens = await oidc.authorizationCodeGrant(up.config, new URL(done.url), { pkceCodeVerifier: up.verifier, expectedState: up.state });
  tt.is(tokens.claims()!.acr, MFA);
  tt.deepEqual(tokens.claims()!.amr, ['pwd', 'otp', 'mfa']);
  tt.is(decodeJwt(tokens.access_token).org_id, org);

  // 4. The two-factor session now meets a request for either level without signing in again.
  const later = await startAuthorization(tenant, client, { scope: 'openid', organization: org, acr_values: `${MFA} urn:tessera:acr:pwd` });
  const straight = await browser.follow(later.url);
  tt.true(straight.url.startsWith(client.redirect_uris[0]!), straight.url);
  tt.truthy(back(straight.url).get('code'));
});
