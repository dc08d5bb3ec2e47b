import { createServer, type Server } from 'node:http';
import test from 'ava';
import { sql } from 'kysely';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, continueWithSso } from '../helpers/browser.ts';
import { type RegisteredClient, startAuthorization } from '../helpers/oidc.ts';
import { TestSamlIdp } from '../helpers/saml-idp.ts';

/**
 * A deployed Tessera (OUTBOUND_ALLOW_PRIVATE_NETWORKS off): an organization admin's metadata_url
 * or issuer_url can't make the server fetch from loopback, private or link-local addresses — not
 * when the connection is configured, not on the scheduled metadata refresh, not at sign-in.
 */

let t: TestApp;
let tenant: TestTenant;
let org: { id: string };
let client: RegisteredClient;
/** A server on this machine standing in for internal services: nothing may reach it. */
let internal: Server;
let port: number;
let reached = 0;

test.before(async () => {
  t = await startTestApp({ env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'false' } });
  tenant = await createTenant(t);
  org = (await adminApi(t, tenant, 'POST', '/organizations', { name: 'Corp' })).body;
  client = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
  internal = createServer((_req, res) => {
    reached++;
    res.end('{}');
  });
  await new Promise<void>((r) => internal.listen(0, '127.0.0.1', r));
  port = (internal.address() as { port: number }).port;
});
test.after.always(async () => {
  await t?.stop();
  internal?.close();
});

const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);
const NON_PUBLIC = () =>
  [
    [`http://127.0.0.1:${port}/metadata`, 'loopback'],
    ['https://10.0.0.1/metadata', 'private'],
    ['https://169.254.169.254/latest/meta-data/', 'link-local'],
    [`http://[::1]:${port}/metadata`, 'loopback'],
    [`http://localhost:${port}/metadata`, 'loopback'],
  ] as const;

test.serial('a SAML metadata_url at a non-public address is a 422 naming the field; nothing is fetched', async (tt) => {
  for (const [url, kind] of NON_PUBLIC()) {
    const res = await api('POST', `/organizations/${org.id}/sso-connections`, { type: 'saml', name: 'Corp ADFS', metadata_url: url });
    tt.is(res.status, 422, url);
    tt.regex(res.type, /application\/problem\+json/);
    tt.deepEqual(res.body.errors, [{ field: 'metadata_url', message: `points at a ${kind} address` }], url);
    tt.regex(res.body.detail, new RegExp(`^metadata_url is refused: .*a ${kind} address\\. Tessera connects only to public internet addresses`), url);
  }
  tt.is(reached, 0);
});

test.serial('an OIDC issuer_url at a non-public address is a 422 naming the field, on create and on change', async (tt) => {
  for (const [url, kind] of NON_PUBLIC()) {
    const issuer = url.replace(/\/metadata$/, '');
    const res = await api('POST', `/organizations/${org.id}/sso-connections`, {
      type: 'oidc',
      name: 'Corp Okta',
      issuer_url: issuer,
      client_id: 'c',
      client_secret: 's',
    });
    tt.is(res.status, 422, issuer);
    tt.deepEqual(res.body.errors, [{ field: 'issuer_url', message: `points at a ${kind} address` }], issuer);
  }
  const fine = await api('POST', `/organizations/${org.id}/sso-connections`, {
    type: 'oidc',
    name: 'Corp Okta',
    issuer_url: 'https://idp.tessera.invalid',
    client_id: 'c',
    client_secret: 's',
  });
  tt.is(fine.status, 201, fine.text);
  const changed = await api('PATCH', `/organizations/${org.id}/sso-connections/${fine.body.id}`, { issuer_url: `http://localhost:${port}` });
  tt.is(changed.status, 422);
  tt.is(changed.body.errors[0].field, 'issuer_url');
  tt.is((await api('GET', `/organizations/${org.id}/sso-connections/${fine.body.id}`)).body.issuer_url, 'https://idp.tessera.invalid');
  await api('DELETE', `/organizations/${org.id}/sso-connections/${fine.body.id}`);
  tt.is(reached, 0);
});

test.serial('the scheduled metadata refresh refuses a URL that now points at a non-public address, and records why', async (tt) => {
  const idp = new TestSamlIdp();
  const created = await api('POST', `/organizations/${org.id}/sso-connections`, { type: 'saml', name: 'By XML', metadata_xml: idp.idp.getMetadata() });
  tt.is(created.status, 201, created.text);
  // As if the URL's name had resolved to a public address when it was set, and to this machine now.
  await sql`update sso_connections set config = config || ${JSON.stringify({ metadata_url: `http://localhost:${port}/metadata` })}::jsonb where id = ${created.body.id}`.execute(
    t.app.connection.db,
  );
  const r = await t.app.services.connections.refreshSamlMetadata();
  tt.true(r.failed >= 1);
  const after = (await api('GET', `/organizations/${org.id}/sso-connections/${created.body.id}`)).body;
  tt.regex(after.last_error, /^metadata refresh failed: metadata_url is refused: localhost resolves to (127\.0\.0\.1|::1), a loopback address/);
  tt.is(after.idp_entity_id, created.body.idp_entity_id, 'the last good metadata stays');
  tt.is(reached, 0);
  await api('DELETE', `/organizations/${org.id}/sso-connections/${created.body.id}`);
});

test.serial('at sign-in, OIDC discovery of an issuer that now points at a non-public address is refused before connecting', async (tt) => {
  const created = await api('POST', `/organizations/${org.id}/sso-connections`, {
    type: 'oidc',
    name: 'Corp Okta',
    issuer_url: 'https://idp.tessera.invalid',
    client_id: 'c',
    client_secret: 's',
  });
  tt.is(created.status, 201, created.text);
  await sql`update sso_connections set config = config || ${JSON.stringify({ issuer_url: `http://localhost:${port}` })}::jsonb where id = ${created.body.id}`.execute(
    t.app.connection.db,
  );
  const { url } = await startAuthorization(tenant, client, { organization: org.id });
  const browser = new Browser(t.url);
  const hop = await continueWithSso(browser, await browser.follow(url));
  tt.false(hop.url.includes(`:${port}`), hop.url);
  const after = (await api('GET', `/organizations/${org.id}/sso-connections/${created.body.id}`)).body;
  tt.regex(after.last_error, /could not start the sign-in: .*localhost resolves to (127\.0\.0\.1|::1), a loopback address/);
  tt.is(reached, 0);
});
