import test from 'ava';
import * as oidc from 'openid-client';
import * as samlify from 'samlify';
import { samlSchemaValidator } from '../../src/sso/saml/schema-validator.ts';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';
import { type RegisteredClient, startAuthorization } from '../helpers/oidc.ts';
import { keyPair, TestSamlIdp } from '../helpers/saml-idp.ts';

let t: TestApp;
let tenant: TestTenant;
let client: RegisteredClient;
let org: { id: string };
let conn: { id: string; acs_url: string; sp_entity_id: string; sp_metadata_url: string };
let sp: ReturnType<typeof samlify.ServiceProvider>;
let idp: TestSamlIdp;
const rotated = keyPair('Rotated IdP key');

const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
  client = (await api('POST', '/clients', webClient())).body;
  org = (await api('POST', '/organizations', { name: 'SAML Corp' })).body;
  await api('POST', `/organizations/${org.id}/domains`, { domain: 'saml.example' });
  await api('PATCH', `/organizations/${org.id}/domains/saml.example`, { verified: true });
  idp = new TestSamlIdp();
  const created = await api('POST', `/organizations/${org.id}/sso-connections`, {
    type: 'saml',
    name: 'Corp ADFS',
    idp_entity_id: idp.entityId,
    idp_sso_url: idp.ssoUrl,
    // Two certificates: the current one and the next, during a rotation.
    idp_certificates: [idp.keys.cert, rotated.cert],
    group_roles: { 'billing-team': 'billing' },
  });
  if (created.status !== 201) throw new Error(created.text);
  conn = created.body;
  sp = samlify.ServiceProvider({ metadata: await (await fetch(conn.sp_metadata_url)).text() });
});
test.after.always(async () => t?.stop());

/** Starts a sign-in at the RP; returns the browser, the AuthnRequest id and what the RP needs to finish. */
async function begin(email: string) {
  const browser = new Browser(t.url);
  const { config, verifier, state, url } = await startAuthorization(tenant, client);
  const page = await browser.follow(url);
  const toIdp = await enterCredentials(browser, await page.res.text(), page.url, email, 'unused');
  if (!toIdp.url.startsWith(idp.ssoUrl)) throw new Error(`expected a redirect to the IdP, got ${toIdp.res.status} ${toIdp.url}`);
  return { browser, config, verifier, state, requestId: await idp.requestIdOf(sp, toIdp.url) };
}

/** Posts a SAMLResponse to the ACS as the IdP's page would (a cross-site form post). */
async function post(browser: Browser, samlResponse: string) {
  return browser.follow(conn.acs_url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://idp.test' },
    body: new URLSearchParams({ SAMLResponse: samlResponse }).toString(),
  });
}

const good = (requestId: string, nameId = 'carol@saml.example', extra: Record<string, string | string[]> = {}) =>
  idp.response(sp, conn.acs_url, conn.sp_entity_id, { inResponseTo: requestId, nameId, attributes: { email: nameId, name: 'Carol', ...extra } });

test.serial('a response to no request of this connection is refused before the costly checks run (schema validation ~225 ms of CPU)', async (tt) => {
  const before = samlSchemaValidator.calls;
  // Well-formed and signed, but answering an AuthnRequest we never sent; then one with none.
  const forged = await good('_never-sent-by-us');
  const unsolicited = Buffer.from(
    Buffer.from(forged, 'base64')
      .toString('utf8')
      .replace(/\sInResponseTo="[^"]*"/g, ''),
  ).toString('base64');
  for (const response of [forged, unsolicited]) {
    const r = await fetch(conn.acs_url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ SAMLResponse: response }),
      redirect: 'manual',
    });
    tt.true(r.status >= 300 && r.status < 500, `answered ${r.status}`);
  }
  tt.is(samlSchemaValidator.calls, before, 'the schema validator never ran');
  // A response to a request we did send is validated as before.
  const { requestId, browser } = await begin('early@saml.example');
  await post(browser, await good(requestId, 'early@saml.example'));
  tt.true(samlSchemaValidator.calls > before);
});

test('the SP metadata names our entity id and ACS', async (tt) => {
  const xml = await (await fetch(conn.sp_metadata_url)).text();
  tt.true(xml.includes(`entityID="${conn.sp_entity_id}"`));
  tt.true(xml.includes(conn.acs_url));
  tt.regex(xml, /WantAssertionsSigned="true"/);
  const shown = await api('GET', `/organizations/${org.id}/sso-connections/${conn.id}`);
  tt.is(shown.body.idp_certificate_details.length, 2);
  tt.truthy(shown.body.idp_certificate_details[0].not_after);
});

test('SP-initiated SAML sign-in end to end: JIT user, membership with mapped role, org-scoped tokens', async (tt) => {
  const { browser, config, verifier, state, requestId } = await begin('carol@saml.example');
  const done = await post(browser, await good(requestId, 'carol@saml.example', { groups: ['billing-team'] }));
  tt.true(done.url.startsWith(client.redirect_uris[0]!), `${done.res.status} ${done.url} ${(await done.res.text()).slice(0, 200)}`);
  const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: state });
  const claims = tokens.claims()!;
  tt.is(claims.email, 'carol@saml.example');
  tt.is(claims.org_id, org.id);
  tt.deepEqual(claims.org_roles, ['billing']);
});

test('a response signed with the second (rotated) certificate is accepted', async (tt) => {
  const next = new TestSamlIdp(rotated);
  const { browser, requestId } = await begin('dave@saml.example');
  const res = await next.response(sp, conn.acs_url, conn.sp_entity_id, {
    inResponseTo: requestId,
    nameId: 'dave@saml.example',
    attributes: { email: 'dave@saml.example' },
  });
  const done = await post(browser, res);
  tt.true(done.url.startsWith(client.redirect_uris[0]!), done.url);
});

/** Each attack: refused with the generic page, the reason on the connection, no user created. */
async function refused(tt: any, email: string, make: (requestId: string) => Promise<string> | string, reason: RegExp) {
  const { browser, requestId } = await begin(email);
  const res = await post(browser, await make(requestId));
  tt.is(res.res.status, 403, `${reason}`);
  tt.regex(await res.res.text(), /Single sign-on failed/);
  tt.regex((await api('GET', `/organizations/${org.id}/sso-connections/${conn.id}`)).body.last_error ?? '', reason);
  tt.is((await api('GET', `/users?email=${encodeURIComponent(email)}`)).body.data.length, 0, `no user for ${email}`);
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const xmlOf = (r: string) => Buffer.from(r, 'base64').toString('utf8');

test.serial('attack: unsigned response and assertion', async (tt) => {
  await refused(
    tt,
    'a1@saml.example',
    async (id) => b64(xmlOf(await good(id, 'a1@saml.example')).replace(/<ds:Signature[\s\S]*?<\/ds:Signature>/g, '')),
    /samlify refused/,
  );
});

test.serial('attack: the assertion altered after signing', async (tt) => {
  await refused(
    tt,
    'a2@saml.example',
    async (id) => b64(xmlOf(await good(id, 'a2@saml.example')).replace('a2@saml.example</saml:NameID>', 'admin@saml.example</saml:NameID>')),
    /samlify refused/,
  );
});

test.serial('attack: signature wrapping — a forged assertion beside or around the signed one', async (tt) => {
  // XSW: keep the signed assertion (hidden in Extensions) and add an unsigned one for another user.
  await refused(
    tt,
    'a3@saml.example',
    async (id) => {
      const xml = xmlOf(await good(id, 'a3@saml.example'));
      const signed = /<saml:Assertion[\s\S]*<\/saml:Assertion>/.exec(xml)![0];
      const forged = signed
        .replace(/<ds:Signature[\s\S]*?<\/ds:Signature>/, '')
        .replace(/a3@saml\.example/g, 'boss@saml.example')
        .replace(/ID="_[^"]+"/, 'ID="_forged"');
      return b64(xml.replace(signed, `<samlp:Extensions>${signed}</samlp:Extensions>${forged}`));
    },
    /exactly one is accepted/,
  );
  // XSW variant: the forged assertion wraps the signed one.
  await refused(
    tt,
    'a4@saml.example',
    async (id) => {
      const xml = xmlOf(await good(id, 'a4@saml.example'));
      const signed = /<saml:Assertion[\s\S]*<\/saml:Assertion>/.exec(xml)![0];
      const forged = signed
        .replace(/<ds:Signature[\s\S]*?<\/ds:Signature>/, '')
        .replace(/a4@saml\.example/g, 'boss@saml.example')
        .replace(/ID="_[^"]+"/, 'ID="_outer"');
      return b64(xml.replace(signed, forged.replace('</saml:Assertion>', `${signed}</saml:Assertion>`)));
    },
    /exactly one is accepted/,
  );
});

test.serial('attack: comment injection in the NameID', async (tt) => {
  await refused(
    tt,
    'a5@saml.example',
    async (id) => b64(xmlOf(await good(id, 'a5@saml.example')).replace('a5@saml.example</saml:NameID>', 'a5@saml.example<!---->.evil.com</saml:NameID>')),
    /comments/,
  );
});

test.serial('attack: wrong audience, destination or recipient', async (tt) => {
  await refused(
    tt,
    'a6@saml.example',
    (id) =>
      idp.response(sp, conn.acs_url, 'https://other-sp.example', { inResponseTo: id, nameId: 'a6@saml.example', attributes: { email: 'a6@saml.example' } }),
    /audience/,
  );
  await refused(
    tt,
    'a7@saml.example',
    (id) =>
      idp.response(sp, conn.acs_url, conn.sp_entity_id, {
        inResponseTo: id,
        nameId: 'a7@saml.example',
        attributes: { email: 'a7@saml.example' },
        tags: { Destination: 'https://other-sp.example/acs' },
      }),
    /destination/,
  );
  await refused(
    tt,
    'a8@saml.example',
    (id) =>
      idp.response(sp, conn.acs_url, conn.sp_entity_id, {
        inResponseTo: id,
        nameId: 'a8@saml.example',
        attributes: { email: 'a8@saml.example' },
        tags: { SubjectRecipient: 'https://other-sp.example/acs' },
      }),
    /recipient/,
  );
});

test.serial('attack: unsolicited or foreign InResponseTo', async (tt) => {
  await refused(
    tt,
    'a9@saml.example',
    () =>
      idp.response(sp, conn.acs_url, conn.sp_entity_id, { inResponseTo: '_never-sent', nameId: 'a9@saml.example', attributes: { email: 'a9@saml.example' } }),
    /not a request this connection sent/,
  );
});

test.serial("attack: another connection's request id (foreign InResponseTo)", async (tt) => {
  // A second SAML connection of another organization; a request it sent is answered at ours.
  const o2 = (await api('POST', '/organizations', { name: 'Other SAML' })).body;
  await api('POST', `/organizations/${o2.id}/domains`, { domain: 'other-saml.example' });
  await api('PATCH', `/organizations/${o2.id}/domains/other-saml.example`, { verified: true });
  await api('POST', `/organizations/${o2.id}/sso-connections`, {
    type: 'saml',
    name: 'Other',
    idp_entity_id: idp.entityId,
    idp_sso_url: idp.ssoUrl,
    idp_certificates: [idp.keys.cert],
  });
  const other = await begin('x@other-saml.example'); // the other connection sends its own AuthnRequest
  await refused(tt, 'b6@saml.example', () => good(other!.requestId, 'b6@saml.example'), /not a request this connection sent/);
});

test.serial('attack: replaying a response that was used', async (tt) => {
  const { browser, requestId } = await begin('replay@saml.example');
  const response = await good(requestId, 'replay@saml.example');
  const first = await post(browser, response);
  tt.true(first.url.startsWith(client.redirect_uris[0]!));
  const again = await begin('replay@saml.example');
  const replay = await post(again.browser, response);
  tt.is(replay.res.status, 403);
  tt.regex((await api('GET', `/organizations/${org.id}/sso-connections/${conn.id}`)).body.last_error, /not a request this connection sent|replay/);
});

test.serial('attack: expired and not-yet-valid assertions', async (tt) => {
  const past = new Date(Date.now() - 60 * 60_000).toISOString();
  const future = new Date(Date.now() + 60 * 60_000).toISOString();
  await refused(
    tt,
    'b1@saml.example',
    (id) =>
      idp.response(sp, conn.acs_url, conn.sp_entity_id, {
        inResponseTo: id,
        nameId: 'b1@saml.example',
        attributes: { email: 'b1@saml.example' },
        tags: { ConditionsNotOnOrAfter: past, SubjectConfirmationDataNotOnOrAfter: past },
      }),
    /expired|samlify refused/,
  );
  await refused(
    tt,
    'b2@saml.example',
    (id) =>
      idp.response(sp, conn.acs_url, conn.sp_entity_id, {
        inResponseTo: id,
        nameId: 'b2@saml.example',
        attributes: { email: 'b2@saml.example' },
        tags: { ConditionsNotBefore: future },
      }),
    /not valid yet|samlify refused/,
  );
});

test.serial("attack: signed with another connection's (or anyone else's) key", async (tt) => {
  const stranger = new TestSamlIdp(keyPair('Stranger'));
  await refused(
    tt,
    'b3@saml.example',
    (id) => stranger.response(sp, conn.acs_url, conn.sp_entity_id, { inResponseTo: id, nameId: 'b3@saml.example', attributes: { email: 'b3@saml.example' } }),
    /samlify refused/,
  );
});

test.serial('attack: DOCTYPE and entity expansion', async (tt) => {
  await refused(
    tt,
    'b4@saml.example',
    async (id) => b64(`<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]>${xmlOf(await good(id, 'b4@saml.example')).replace(/^<\?xml[^>]*>/, '')}`),
    /DOCTYPE/,
  );
});

test.serial('attack: SHA-1 signatures', async (tt) => {
  const sha1 = new TestSamlIdp(idp.keys, { signatureAlgorithm: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1' });
  await refused(
    tt,
    'b5@saml.example',
    (id) => sha1.response(sp, conn.acs_url, conn.sp_entity_id, { inResponseTo: id, nameId: 'b5@saml.example', attributes: { email: 'b5@saml.example' } }),
    /SHA-1|algorithm/,
  );
});

test('bad connection input: missing IdP details, a certificate that is not one', async (tt) => {
  const bad = await api('POST', `/organizations/${org.id}/sso-connections`, { type: 'saml', name: 'x', idp_entity_id: 'e' });
  tt.is(bad.status, 422);
  const cert = await api('POST', `/organizations/${org.id}/sso-connections`, {
    type: 'saml',
    name: 'x',
    idp_entity_id: 'e',
    idp_sso_url: 'https://idp/sso',
    idp_certificates: ['-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----'],
  });
  tt.is(cert.status, 422);
  tt.is(cert.body.errors[0].field, 'idp_certificates.0');
  const meta = await api('POST', `/organizations/${org.id}/sso-connections`, { type: 'saml', name: 'x', metadata_xml: '<not-metadata/>' });
  tt.is(meta.status, 422);
});

test('a connection from IdP metadata XML reads the entity id, SSO URL and certificate', async (tt) => {
  const other = (await api('POST', '/organizations', { name: 'Meta Corp' })).body;
  const res = await api('POST', `/organizations/${other.id}/sso-connections`, { type: 'saml', name: 'From metadata', metadata_xml: idp.idp.getMetadata() });
  tt.is(res.status, 201, res.text);
  tt.is(res.body.idp_entity_id, idp.entityId);
  tt.is(res.body.idp_sso_url, idp.ssoUrl);
  tt.is(res.body.idp_certificates.length, 1);
  tt.regex(res.body.acs_url, /\/sso\/saml\/[0-9a-f-]+\/acs$/);
});

test('metadata by URL: read at creation, refreshed by the maintenance job (certificate rollover)', async (tt) => {
  const { createServer } = await import('node:http');
  let served = idp.idp.getMetadata();
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/xml' }).end(served));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/metadata`;
  try {
    const other = (await api('POST', '/organizations', { name: 'URL Corp' })).body;
    const created = await api('POST', `/organizations/${other.id}/sso-connections`, { type: 'saml', name: 'By URL', metadata_url: url });
    tt.is(created.status, 201, created.text);
    tt.is(created.body.metadata_url, url);
    const before = created.body.idp_certificate_details[0].fingerprint256;
    // The IdP rolls its certificate over; the next refresh picks it up.
    served = new TestSamlIdp(rotated).idp.getMetadata();
    const r = await t.app.services.connections.refreshSamlMetadata();
    tt.true(r.refreshed >= 1);
    const after = (await api('GET', `/organizations/${other.id}/sso-connections/${created.body.id}`)).body;
    tt.not(after.idp_certificate_details[0].fingerprint256, before);
    // An unreachable URL at creation is a clear 422.
    const bad = await api('POST', `/organizations/${other.id}/sso-connections`, { type: 'saml', name: 'x', metadata_url: 'http://127.0.0.1:1/metadata' });
    tt.is(bad.status, 422);
    tt.is(bad.body.errors[0].field, 'metadata_url');
    const insecure = await api('POST', `/organizations/${other.id}/sso-connections`, { type: 'saml', name: 'x', metadata_url: 'http://idp.example/metadata' });
    tt.is(insecure.status, 422);
  } finally {
    server.close();
  }
});

test('encrypted assertions: the IdP encrypts to our per-connection certificate; we decrypt, verify and check', async (tt) => {
  const shown = (await api('GET', `/organizations/${org.id}/sso-connections/${conn.id}`)).body;
  tt.regex(shown.sp_encryption_certificate, /BEGIN CERTIFICATE/);
  tt.true((await (await fetch(conn.sp_metadata_url)).text()).includes('use="encryption"'));
  const encrypting = new TestSamlIdp(idp.keys, { encrypt: true });
  const { browser, config, verifier, state, requestId } = await begin('erin@saml.example');
  const response = await encrypting.response(sp, conn.acs_url, conn.sp_entity_id, {
    inResponseTo: requestId,
    nameId: 'erin@saml.example',
    attributes: { email: 'erin@saml.example' },
  });
  const xml = Buffer.from(response, 'base64').toString('utf8');
  tt.regex(xml, /EncryptedAssertion/);
  tt.false(xml.includes('erin@saml.example'), 'the identity is not readable in transit');
  const done = await post(browser, response);
  tt.true(
    done.url.startsWith(client.redirect_uris[0]!),
    `${done.res.status} ${done.url} ${(await api('GET', `/organizations/${org.id}/sso-connections/${conn.id}`)).body.last_error}`,
  );
  const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: state });
  tt.is(tokens.claims()!.email, 'erin@saml.example');
});
