import test from 'ava';
import fc from 'fast-check';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';
import { coreOf, describe, type FoundForm, formsIn, HOSTILE_JSON, HOSTILE_TEXT, hostileJson, hostileText, storedDigest, toJson } from '../helpers/hostile.ts';
import { authorizationUrl, discover, type RegisteredClient, signIn } from '../helpers/oidc.ts';
import { linkIn, SmtpSink } from '../helpers/smtp.ts';

/**
 * Hostile input everywhere a request can carry it: every operation of the Admin API's OpenAPI
 * document (path, query and each body field), the OAuth endpoints, the signed-in user's API and
 * every server-rendered form, signed out and signed in to the portal. Each gets the named values
 * of HOSTILE_TEXT / HOSTILE_JSON — NUL bytes, lone surrogates, 10,000-character strings, 5,000
 * levels of nesting, wrong types, out-of-range numbers and dates, forged cursors, `__proto__`
 * keys — and a few more that fast-check draws. Every answer must be below 500, and a refused
 * write must leave the database as it was (storedDigest).
 *
 * Bodies start from a valid one (VALID_BODIES) with one field made hostile, so the hostile value
 * is the only thing wrong with the request: it gets as far as the code it could break.
 */

const RANDOM_RUNS = 2;

let smtp: SmtpSink;
let t: TestApp;
let tenant: TestTenant;
let client: RegisteredClient & { client_secret: string };
/** What the Admin API's paths name: a user, organization, role, … made for the test to aim at. */
const ids = {
  userId: '',
  otherUser: '',
  orgId: '',
  roleId: '',
  invitationId: '',
  domain: '',
  connectionId: '',
  directoryId: '',
  setupLinkId: '',
  tokenId: '',
  clientId: '',
  factorId: '',
  teamId: '',
  teamRoleId: '',
};
/**
 * Someone who signs in, resets a password and calls /api/v1/me — not the user the Admin API
 * test aims at, whose password, status and tokens it may change (a hostile value that is valid).
 */
const VICTIM = { email: 'victim@fuzz.test', password: 'steady copper 81 lantern', accessToken: '' };

async function api(method: string, path: string, body?: unknown) {
  const r = await adminApi(t, tenant, method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
  return r.body;
}

/** Settings the forms need, put back before each test (the Admin API test may change them). */
async function formFriendlySettings() {
  // Brute-force protection stays on (it reads the email first), with limits the test's thousands
  // of failed sign-ins from one address don't reach.
  const limits = { enabled: true, max_login_failures: 1000, quick_login_check_ms: 0, min_quick_login_wait_seconds: 0, ip_max_failures: 100_000 };
  await api('PATCH', '/settings', { registration_enabled: true, email_verification_required: true, brute_force: limits });
}

test.before(async () => {
  smtp = await SmtpSink.start();
  t = await startTestApp({ env: { SMTP_URL: smtp.url, MAIL_POLL_MS: '100' } });
  tenant = await createTenant(t);
  await formFriendlySettings();
  const victim = (await api('POST', '/users', { email: VICTIM.email, password: VICTIM.password, email_verified: true })).id;
  VICTIM.accessToken = (await api('POST', `/users/${victim}/tokens`, { scopes: ['openid', 'organizations'], expires_in: 3600 })).access_token;
  ids.userId = (await api('POST', '/users', { email: 'target@fuzz.test', password: VICTIM.password, email_verified: true })).id;
  ids.otherUser = (await api('POST', '/users', { email: 'other@fuzz.test' })).id;
  ids.orgId = (await api('POST', '/organizations', { name: 'Fuzz Target', domain: 'fuzz-target.example', metadata: { plan: 'pro' } })).id;
  await api('POST', `/organizations/${ids.orgId}/members`, { user_id: ids.userId, role: 'member' });
  await api('POST', `/organizations/${ids.orgId}/members`, { user_id: victim, role: 'member' });
  ids.roleId = (await api('POST', `/organizations/${ids.orgId}/roles`, { name: 'fuzz-role', permissions: ['invoices:read'] })).id;
  ids.invitationId = (await api('POST', `/organizations/${ids.orgId}/invitations`, { email: 'invitee@fuzz.test' })).id;
  ids.domain = (await api('POST', `/organizations/${ids.orgId}/domains`, { domain: 'fuzz-domain.example' })).domain;
  ids.connectionId = (
    await api('POST', `/organizations/${ids.orgId}/sso-connections`, {
      type: 'oidc',
      name: 'Fuzz IdP',
      issuer_url: 'https://idp.fuzz.example',
      client_id: 'c',
      client_secret: 's',
    })
  ).id;
  // A directory: what the directory paths aim at, and so the portal's Directory sync forms are found and tried.
  ids.directoryId = (await api('POST', `/organizations/${ids.orgId}/directories`, { name: 'Fuzz Directory' })).id;
  ids.setupLinkId = (await api('POST', `/organizations/${ids.orgId}/setup-links`, { features: ['domains'] })).id;
  ids.teamId = (await api('POST', `/organizations/${ids.orgId}/teams`, { name: 'Fuzz Team' })).id;
  ids.teamRoleId = (await api('POST', `/organizations/${ids.orgId}/team-roles`, { name: 'fuzz-team-role', permissions: ['deploy:prod'] })).id;
  await api('POST', `/organizations/${ids.orgId}/teams/${ids.teamId}/members`, { user_id: ids.userId, roles: ['member'] });
  ids.tokenId = (await api('POST', `/users/${ids.userId}/tokens`, { scopes: ['openid'], expires_in: 3600 })).id;
  ids.clientId = (await api('POST', '/clients', webClient('http://localhost:8080/target'))).client_id;
  // A second factor of the target (unconfirmed: what the factor routes' path values aim at).
  ids.factorId = (await t.app.services.factors.startTotp(tenant.id, ids.userId, 'Tessera', 'target@fuzz.test')).factorId;
  // The app the OAuth and form tests sign in to; the Admin API test aims at another one.
  client = await api('POST', '/clients', webClient());
});
test.after.always(async () => {
  await t?.stop();
  await smtp?.stop();
});

// ── sending and judging ─────────────────────────────────────────────────────────────────────

interface Sent {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
  /** What the test changed, for the message when it fails. */
  what: string;
}

/** What went wrong, across the whole test (reported together rather than one at a time). */
let failures: string[] = [];
let requests = 0;
/** storedDigest as of the last check: what a refused write must leave as it is. */
let digest = '';

/** Requests in flight at once: PostgreSQL works on some while the app handles others. */
const CONCURRENCY = 8;

const label = (sent: Sent) => `${sent.method} ${new URL(sent.url).pathname} with ${sent.what}`;

async function send(sent: Sent): Promise<number> {
  requests++;
  const res = await fetch(sent.url, { method: sent.method, headers: sent.headers, body: sent.body, redirect: 'manual' });
  const text = await res.text();
  if (res.status >= 500) failures.push(`${label(sent)}: ${res.status} ${text.slice(0, 200)}`);
  return res.status;
}

/**
 * Sends requests, several at a time, and judges the answers: each below 500, and refused writes
 * stored nothing. A write that is accepted (a hostile value that is simply valid, such as the name
 * "-1") moves the baseline; the refused writes sent along with it are then sent again one at a
 * time, each checked against the database on its own.
 */
async function judge(batch: Sent[]) {
  const statuses: number[] = [];
  for (let i = 0; i < batch.length; i += CONCURRENCY) statuses.push(...(await Promise.all(batch.slice(i, i + CONCURRENCY).map(send))));
  const writes = batch.map((sent, i) => ({ sent, status: statuses[i]! })).filter((w) => w.sent.method !== 'GET');
  if (writes.length === 0) return;
  const now = await storedDigest(t.app.connection.db);
  const refused = writes.filter((w) => w.status >= 400);
  if (refused.length === writes.length) {
    if (now !== digest) failures.push(`refused, but one of these stored something: ${writes.map((w) => `${label(w.sent)} (${w.status})`).join('; ')}`);
    digest = now;
    return;
  }
  digest = now;
  if (writes.length === 1) return;
  for (const w of refused) {
    const status = await send(w.sent);
    const after = await storedDigest(t.app.connection.db);
    if (status >= 400 && after !== digest) failures.push(`${label(w.sent)}: refused (${status}) but stored something`);
    digest = after;
  }
}

/** Judges a request with each named value, then with RANDOM_RUNS values fast-check draws. */
async function withHostile<V>(named: Array<[string, V]>, random: fc.Arbitrary<V>, make: (value: V, name: string) => Sent | Promise<Sent>) {
  await judge(await Promise.all(named.map(([name, value]) => make(value, name))));
  await fc
    .assert(
      fc.asyncProperty(random, async (value) => {
        const before = failures.length;
        await judge([await make(value, `random ${describe(value)}`)]);
        // Report the first failure fast-check finds (and shrinks), not every shrinking step.
        if (failures.length > before) throw new Error(failures.splice(before).join('\n'));
      }),
      { numRuns: RANDOM_RUNS },
    )
    .catch((err: Error) => failures.push(err.message.split('\n').slice(0, 6).join('\n')));
}

async function startJudging() {
  failures = [];
  requests = 0;
  digest = await storedDigest(t.app.connection.db);
}

// ── the Admin API, from its OpenAPI document ────────────────────────────────────────────────

/** A valid body for each operation that takes one: the start every hostile body differs from by one field. */
const VALID_BODIES: Record<string, () => unknown> = {
  'post /users': () => ({ email: 'new@fuzz.test', name: 'New' }),
  'patch /users/{userId}': () => ({ name: 'Victim' }),
  'post /users/{userId}/tokens': () => ({ scopes: ['openid'], expires_in: 3600 }),
  'post /clients': () => ({ name: 'Fuzz app', redirect_uris: ['https://app.fuzz.example/cb'] }),
  'patch /clients/{clientId}': () => ({ name: 'Fuzz app' }),
  'patch /settings': () => ({ name: 'Fuzz tenant' }),
  'post /organizations': () => ({ name: 'Fuzz org' }),
  'put /organizations/{orgId}': () => ({ name: 'Fuzz Target', domain: 'fuzz-target.example' }),
  'patch /organizations/{orgId}': () => ({ name: 'Fuzz Target' }),
  'post /organizations/{orgId}/approve': () => ({ status_reason: 'Fuzz approval' }),
  'post /organizations/{orgId}/reject': () => ({ reason: 'Fuzz rejection' }),
  'put /organizations/{orgId}/auth-policy': () => ({ mfa_required: true, mfa_grace_days: 7, allowed_methods: ['password', 'sso'] }),
  'patch /organizations/{orgId}/auth-policy': () => ({ max_session_age_seconds: 3600 }),
  'post /organizations/{orgId}/members': () => ({ user_id: ids.otherUser, role: 'member' }),
  'patch /organizations/{orgId}/members/{userId}': () => ({ role: 'member' }),
  'post /organizations/{orgId}/transfer-ownership': () => ({ user_id: ids.userId }),
  'post /organizations/{orgId}/roles': () => ({ name: 'another-role' }),
  'patch /organizations/{orgId}/roles/{roleId}': () => ({ description: 'Reads invoices' }),
  'post /organizations/{orgId}/invitations': () => ({ email: 'invited@fuzz.test' }),
  'post /organizations/{orgId}/domains': () => ({ domain: 'another.fuzz.example' }),
  'patch /organizations/{orgId}/domains/{domain}': () => ({ verified: false }),
  'post /organizations/{orgId}/sso-connections': () => ({
    type: 'oidc',
    name: 'Another IdP',
    issuer_url: 'https://idp2.fuzz.example',
    client_id: 'c',
    client_secret: 's',
  }),
  'patch /organizations/{orgId}/sso-connections/{connectionId}': () => ({ name: 'Fuzz IdP' }),
  'post /organizations/{orgId}/directories': () => ({ name: 'Another directory' }),
  'patch /organizations/{orgId}/directories/{directoryId}': () => ({ name: 'Fuzz Directory' }),
  'post /organizations/{orgId}/setup-links': () => ({ features: ['sso'], expires_in: 3600 }),
  'post /organizations/{orgId}/teams': () => ({ name: 'Another team' }),
  'patch /organizations/{orgId}/teams/{teamId}': () => ({ name: 'Fuzz Team' }),
  'post /organizations/{orgId}/teams/{teamId}/members': () => ({ user_id: ids.userId, roles: ['member'] }),
  'patch /organizations/{orgId}/teams/{teamId}/members/{userId}': () => ({ roles: ['member'] }),
  'post /organizations/{orgId}/team-roles': () => ({ name: 'another-team-role' }),
  'patch /organizations/{orgId}/team-roles/{teamRoleId}': () => ({ description: 'Deploys' }),
};

/** The fields a JSON Schema object (or a union of them) may have. */
function fieldsOf(schema: any): string[] {
  if (!schema || typeof schema !== 'object') return [];
  const own = Object.keys(schema.properties ?? {});
  const branches = [...(schema.oneOf ?? []), ...(schema.anyOf ?? []), ...(schema.allOf ?? [])].flatMap(fieldsOf);
  return [...new Set([...own, ...branches])];
}

test.serial('every Admin API operation answers hostile path, query and body values below 500, and a refused write stores nothing', async (tt) => {
  const doc = await (await fetch(`${t.url}/t/${tenant.slug}/api/v1/openapi.json`)).json();
  const base = `${t.url}/t/${tenant.slug}/api/v1/admin`;
  const auth = { authorization: `Bearer ${tenant.adminKey}` };
  await startJudging();
  // The whole table once per kind of input (a field's name and schema, the whole body); the
  // core of it where the same kind comes again (POST, PUT and PATCH of one resource).
  const seen = new Set<string>();
  const tableFor = <V>(kind: string, table: Array<[string, V]>) => {
    if (seen.has(kind)) return coreOf(table);
    seen.add(kind);
    return table;
  };
  let operations = 0;
  for (const [path, methods] of Object.entries<any>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(methods)) {
      operations++;
      const key = `${method} ${path}`;
      const params: Array<{ name: string; in: string; schema: unknown }> = op.parameters ?? [];
      const schema = op.requestBody?.content?.['application/json']?.schema;
      const valid = VALID_BODIES[key];
      if (schema && !valid) {
        failures.push(`${key} takes a body: add a valid one to VALID_BODIES`);
        continue;
      }
      const url = (pathValues: Record<string, string>, query: Record<string, string> = {}) => {
        const filled = path.replace(/\{(\w+)\}/g, (_m, name: string) => encodeURIComponent(pathValues[name] ?? (ids as Record<string, string>)[name] ?? ''));
        const qs = new URLSearchParams(query).toString();
        return `${base}${filled}${qs ? `?${qs}` : ''}`;
      };
      const request = (what: string, u: string, body?: unknown): Sent => ({
        method: method.toUpperCase(),
        url: u,
        what,
        headers: { ...auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: toJson(body) } : {}),
      });
      for (const p of params.filter((p) => p.in === 'path')) {
        await withHostile(coreOf(HOSTILE_TEXT), hostileText, (v, name) => request(`path ${p.name} = ${name}`, url({ [p.name]: v }), valid?.()));
      }
      for (const p of params.filter((p) => p.in === 'query')) {
        const table = tableFor(`query ${p.name} ${JSON.stringify(p.schema)}`, HOSTILE_TEXT);
        await withHostile(table, hostileText, (v, name) => request(`?${p.name}= ${name}`, url({}, { [p.name]: v }), valid?.()));
      }
      if (!valid) continue;
      for (const field of [...new Set([...fieldsOf(schema), ...Object.keys(valid() as object)])]) {
        const table = tableFor(`field ${field} ${JSON.stringify(schema.properties?.[field] ?? null)}`, HOSTILE_JSON);
        await withHostile(table, hostileJson, (v, name) => request(`${field} = ${name}`, url({}), { ...(valid() as object), [field]: v }));
      }
      await withHostile(tableFor('whole body', HOSTILE_JSON), hostileJson, (v, name) => request(`the whole body = ${name}`, url({}), v));
    }
  }
  tt.true(operations >= 45, `the OpenAPI document lists ${operations} operations`);
  tt.deepEqual(failures, [], `${failures.length} of ${requests} requests failed`);
  tt.log(`${operations} operations, ${requests} requests`);
  tt.is(({} as Record<string, unknown>).polluted, undefined, 'no body reached Object.prototype');
});

// ── the OAuth endpoints ─────────────────────────────────────────────────────────────────────

test.serial('the OAuth endpoints answer hostile parameters below 500 and a refused request stores nothing', async (tt) => {
  await formFriendlySettings();
  const issuer = tenant.issuer;
  const machine = (await adminApi(t, tenant, 'POST', '/clients', { name: 'Fuzz machine', grant_types: ['client_credentials'], organization_ids: [ids.orgId] }))
    .body;
  const signedIn = await signIn(t, tenant, client, { email: VICTIM.email, password: VICTIM.password, scope: 'openid offline_access organizations' });
  const basic = (c: { client_id: string; client_secret: string }) => `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}`;
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  await startJudging();

  const authorization: Record<string, string> = Object.fromEntries(
    new URL(await authorizationUrl(signedIn.config, client, { state: 'st', nonce: 'n' })).searchParams,
  );
  const extra = [
    'login_hint',
    'organization',
    'prompt',
    'max_age',
    'ui_locales',
    'acr_values',
    'claims',
    'id_token_hint',
    'resource',
    'response_mode',
    'display',
    'claims_locales',
    'request',
    'request_uri',
  ];
  for (const name of [...Object.keys(authorization), ...extra]) {
    await withHostile(HOSTILE_TEXT, hostileText, (v, n) => ({
      method: 'GET',
      url: `${issuer}/auth?${new URLSearchParams({ ...authorization, [name]: v })}`,
      what: `${name} = ${n}`,
    }));
  }
  await withHostile(coreOf(HOSTILE_TEXT), hostileText, (v, n) => ({
    method: 'GET',
    url: `${issuer}/auth/${encodeURIComponent(v)}`,
    what: `the resumed uid = ${n}`,
  }));
  await withHostile(coreOf(HOSTILE_TEXT), hostileText, (v, n) => ({
    method: 'GET',
    url: `${issuer}/interaction/${encodeURIComponent(v)}`,
    what: `the interaction uid = ${n}`,
  }));
  // An organization's sign-in page: its slug, and where to return after signing in.
  await withHostile(coreOf(HOSTILE_TEXT), hostileText, (v, n) => ({
    method: 'GET',
    url: `${t.url}/t/${tenant.slug}/o/${encodeURIComponent(v)}/login`,
    what: `the organization's sign-in slug = ${n}`,
  }));
  await withHostile(HOSTILE_TEXT, hostileText, (v, n) => ({
    method: 'GET',
    url: `${t.url}/t/${tenant.slug}/o/fuzz-target/login?${new URLSearchParams({ return_to: v })}`,
    what: `the organization's sign-in return_to = ${n}`,
  }));

  const posts: Array<[path: string, auth: string, params: Record<string, string>]> = [
    ['/token', basic(client), { grant_type: 'authorization_code', code: 'not-a-code', redirect_uri: client.redirect_uris[0]!, code_verifier: 'v'.repeat(43) }],
    [
      '/token',
      basic(client),
      { grant_type: 'refresh_token', refresh_token: signedIn.tokens.refresh_token!, scope: 'openid', organization: ids.orgId, resource: `${issuer}/api` },
    ],
    ['/token', basic(machine), { grant_type: 'client_credentials', scope: 'openid', organization: ids.orgId }],
    ['/token/introspection', basic(client), { token: signedIn.tokens.access_token!, token_type_hint: 'access_token' }],
    ['/token/revocation', basic(client), { token: 'not-a-token', token_type_hint: 'refresh_token' }],
    ['/me', '', { access_token: signedIn.tokens.access_token! }],
  ];
  for (const [path, auth, params] of posts) {
    for (const name of Object.keys(params)) {
      await withHostile(HOSTILE_TEXT, hostileText, (v, n) => ({
        method: 'POST',
        url: `${issuer}${path}`,
        headers: { ...form, ...(auth ? { authorization: auth } : {}) },
        body: new URLSearchParams({ ...params, [name]: v }).toString(),
        what: `${name} = ${n}`,
      }));
    }
  }
  const logout = {
    id_token_hint: signedIn.tokens.id_token!,
    post_logout_redirect_uri: 'http://localhost:8080/bye',
    state: 's',
    client_id: client.client_id,
    logout_hint: 'x',
    ui_locales: 'en',
  };
  for (const name of Object.keys(logout)) {
    await withHostile(coreOf(HOSTILE_TEXT), hostileText, (v, n) => ({
      method: 'GET',
      url: `${issuer}/session/end?${new URLSearchParams({ ...logout, [name]: v })}`,
      what: `${name} = ${n}`,
    }));
  }
  tt.deepEqual(failures, [], `${failures.length} of ${requests} requests failed`);
  tt.log(`${requests} requests`);
});

// ── the signed-in user's API ────────────────────────────────────────────────────────────────

test.serial('the signed-in user API answers hostile input below 500 and a refused write stores nothing', async (tt) => {
  const me = `${t.url}/t/${tenant.slug}/api/v1/me`;
  const headers = { authorization: `Bearer ${VICTIM.accessToken}`, 'content-type': 'application/json' };
  await startJudging();
  const valid = { current_password: 'not the password', new_password: 'another steady lantern 82' };
  for (const field of Object.keys(valid)) {
    await withHostile(HOSTILE_JSON, hostileJson, (v, n) => ({
      method: 'POST',
      url: `${me}/password`,
      headers,
      body: toJson({ ...valid, [field]: v }),
      what: `${field} = ${n}`,
    }));
  }
  await withHostile(HOSTILE_JSON, hostileJson, (v, n) => ({ method: 'POST', url: `${me}/password`, headers, body: toJson(v), what: `the whole body = ${n}` }));
  for (const [method, path] of [
    ['POST', 'organizations/{id}/switch'],
    ['DELETE', 'organizations/{id}'],
    ['POST', 'invitations/{id}/accept'],
    ['POST', 'invitations/{id}/decline'],
  ] as const) {
    await withHostile(coreOf(HOSTILE_TEXT), hostileText, (v, n) => ({
      method,
      url: `${me}/${path.replace('{id}', encodeURIComponent(v))}`,
      headers,
      what: `the id = ${n}`,
    }));
  }
  await withHostile(HOSTILE_TEXT, hostileText, (v, n) => ({
    method: 'GET',
    url: `${me}/organizations?${new URLSearchParams({ cursor: v, limit: v })}`,
    headers,
    what: `the query = ${n}`,
  }));
  tt.deepEqual(failures, [], `${failures.length} of ${requests} requests failed`);
});

// ── every form ──────────────────────────────────────────────────────────────────────────────

/**
 * Submits `form` once per field and hostile value, the other fields as the page set them (with
 * its CSRF token), and sends its path with each id in it made hostile. Forms whose only field is
 * the CSRF token (leave, sign out, revoke) are sent with hostile ids only: as they are, they would
 * do what they say.
 */
async function fuzzForm(browser: Browser, pageUrl: string, page: FoundForm) {
  const action = new URL(page.action || pageUrl, pageUrl);
  const form = { ...page, fields: { ...page.fields } };
  for (const [field, value] of Object.entries(FILL)) {
    // Not the sign-in form's password: the right one would end the interaction the other forms post to.
    if (form.fields[field] === '' && !(field === 'password' && action.pathname.endsWith('/login'))) form.fields[field] = value;
  }
  const submit = (values: URLSearchParams, what: string, url = action) =>
    withCookies(
      browser,
      form.method === 'get'
        ? { method: 'GET', url: `${url.origin}${url.pathname}?${values}`, what }
        : {
            method: 'POST',
            url: url.href,
            headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url.origin },
            body: values.toString(),
            what,
          },
    );
  const withValue = (field: string, value: string) => new URLSearchParams({ ...form.fields, [field]: value });
  for (const field of Object.keys(form.fields).filter((f) => f !== '_csrf')) {
    await withHostile(HOSTILE_TEXT, hostileText, (v, n) => submit(withValue(field, v), `${field} = ${n}`));
    // What a form can carry besides text: a field twice, a field with nested keys.
    const twice = new URLSearchParams(form.fields);
    twice.append(field, 'again');
    const nested = new URLSearchParams({ ...form.fields, [`${field}[a][b]`]: 'x' });
    await judge([await submit(twice, `${field} twice`), await submit(nested, `${field}[a][b]`)]);
  }
  const ID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?<=\/(?:invitations|reset-password|interaction)\/)[^/]+/;
  if (ID.test(action.pathname)) {
    await withHostile(coreOf(HOSTILE_TEXT), hostileText, (v, n) => {
      const hostile = new URL(action.href);
      hostile.pathname = action.pathname.replace(ID, encodeURIComponent(v) || '%20');
      return submit(new URLSearchParams(form.fields), `the id in the path = ${n}`, hostile);
    });
  }
}

/**
 * What a person would type where a page leaves a field empty, so that a hostile value in one
 * field is the only thing wrong with the form and gets as far as the code it could break.
 */
const FILL: Record<string, string> = {
  email: 'someone@fuzz.test',
  name: 'Fuzz Person',
  given_name: 'Fuzz',
  family_name: 'Person',
  password: 'another steady lantern 82',
  new_password: 'another steady lantern 82',
  current_password: 'not the password',
};

/** The request, with the browser's cookies. */
async function withCookies(browser: Browser, sent: Sent): Promise<Sent> {
  const cookie = await browser.jar.getCookieString(sent.url);
  return { ...sent, headers: { ...sent.headers, ...(cookie ? { cookie } : {}) } };
}

async function formsOf(browser: Browser, url: string) {
  const { res, url: at } = await browser.follow(url);
  const html = await res.text();
  return { html, url: at, forms: formsIn(html) };
}

test.serial(
  'every form signed out — sign-in, identify, register, forgot and reset password, resend, invitation — answers hostile values below 500 and stores nothing when refused',
  async (tt) => {
    await formFriendlySettings();
    const browser = new Browser(t.url);
    const start = await browser.follow(await authorizationUrl(await discover(tenant, client), client));
    const identify = formsIn(await start.res.text()).filter((f) => f.method === 'post');
    tt.true(identify.length > 0, 'the sign-in page has a form');
    const uid = /\/interaction\/([^/]+)/.exec(start.url)![1]!;
    const interaction = `${t.url}/t/${tenant.slug}/interaction/${uid}`;
    const passwordStep = await browser.submit(identify[0]!.action, { email: VICTIM.email });
    const pages: Array<{ url: string; forms: FoundForm[] }> = [
      { url: start.url, forms: identify },
      { url: passwordStep.url, forms: formsIn(await passwordStep.res.text()) },
      await formsOf(browser, `${interaction}/register`),
      { url: interaction, forms: [{ method: 'post', action: `${interaction}/organization`, fields: { org_id: ids.orgId } }] },
      // The organization's SSO button reads no field; a posted one must change nothing.
      { url: interaction, forms: [{ method: 'post', action: `${interaction}/sso`, fields: { organization: ids.orgId } }] },
      await formsOf(browser, `${t.url}/t/${tenant.slug}/account/forgot-password`),
      await formsOf(browser, `${t.url}/t/${tenant.slug}/account/verify-email/resend`),
    ];
    await api('POST', `/users/${(await api('GET', `/users?email=${VICTIM.email}`)).data[0].id}/password-reset`);
    pages.push(await formsOf(browser, linkIn(await smtp.waitFor(VICTIM.email, /password/i), '/reset-password/')));
    pages.push(await formsOf(browser, linkIn(await smtp.waitFor('invitee@fuzz.test', /invited/i), '/invitations/')));
    await startJudging();
    const actions: string[] = [];
    for (const page of pages) {
      for (const form of page.forms.filter((f) => f.method === 'post')) {
        actions.push(new URL(form.action, page.url).pathname);
        await fuzzForm(browser, page.url, form);
      }
    }
    for (const expected of [
      '/identify',
      '/login',
      '/register',
      '/organization',
      '/sso',
      '/account/forgot-password',
      '/account/verify-email/resend',
      '/account/reset-password/',
      '/invitations/',
    ]) {
      tt.true(
        actions.some((a) => a.includes(expected)),
        `a form posting to …${expected} was tried (${actions.join(', ')})`,
      );
    }
    tt.deepEqual(failures, [], `${failures.length} of ${requests} requests failed`);
    tt.log(`${actions.length} forms, ${requests} requests`);
  },
);

test.serial('every portal and account form, signed in, answers hostile values below 500 and stores nothing when refused', async (tt) => {
  await formFriendlySettings();
  const browser = new Browser(t.url);
  const first = await browser.follow(`${t.url}/t/${tenant.slug}/portal/organizations`);
  const done = await enterCredentials(browser, await first.res.text(), first.url, tenant.adminEmail, tenant.adminPassword);
  tt.regex(await done.res.text(), /name="_csrf"/, 'signed in to the portal');

  // The pages reachable from the organization list and the account pages, and their forms.
  const root = `${t.url}/t/${tenant.slug}/`;
  // The members page shows the form that adds someone once a search found them.
  const queue = [`${root}portal/organizations`, `${root}portal/organizations/${ids.orgId}/members?find=other`, `${root}account/organizations`];
  const visited = new Set<string>();
  const found = new Map<string, { url: string; form: FoundForm }>();
  while (queue.length && visited.size < 100) {
    const url = queue.shift()!;
    if (visited.has(url)) continue;
    visited.add(url);
    const { html, url: at } = await formsOf(browser, url);
    if (!at.startsWith(root)) continue;
    for (const form of formsIn(html)) {
      // One of each form: the same form on each member's row differs only in the id in its path.
      const key = `${form.method} ${new URL(form.action || at, at).pathname.replace(/[0-9a-f-]{36}/g, ':id')} ${Object.keys(form.fields).sort().join(',')}`;
      if (!found.has(key) && !/logout/.test(form.action)) found.set(key, { url: at, form });
    }
    // The target organization's pages, the account pages and the organization list (not each of
    // the organizations the Admin API test may have made).
    for (const m of html.matchAll(/<a [^>]*href="([^"#]+)"/g)) {
      const next = new URL(m[1]!.replace(/&amp;/g, '&'), at);
      next.search = '';
      const within = [`${root}portal/organizations/${ids.orgId}`, `${root}portal/organizations/new`, `${root}account/`].some((p) => next.href.startsWith(p));
      if (within && !/logout|signed-out|login/.test(next.pathname)) queue.push(next.href);
    }
  }
  await startJudging();
  for (const { url, form } of found.values()) await fuzzForm(browser, url, form);
  // The query parameters the pages read.
  for (const url of new Set([...visited].map((u) => u.split('?')[0]!))) {
    for (const name of ['q', 'cursor', 'find', 'done', 'refused']) {
      await withHostile(coreOf(HOSTILE_TEXT), hostileText, (v, n) =>
        withCookies(browser, { method: 'GET', url: `${url}?${new URLSearchParams({ [name]: v })}`, what: `?${name}= ${n}` }),
      );
    }
  }
  tt.is((await browser.request(`${root}portal/organizations`)).status, 200, 'still signed in after every form');
  const kinds = [...found.keys()].filter((k) => k.startsWith('post ')).join('\n');
  for (const expected of [
    '/members ',
    '/members/:id/role ',
    '/invitations ',
    '/roles ',
    '/settings ',
    '/delete ',
    '/sso ',
    '/sso/:id ',
    '/sso/domains ',
    '/directories ',
    '/directories/:id ',
    '/directories/:id/groups ',
    '/portal/organizations ',
    '/account/profile ',
    '/account/password ',
  ]) {
    tt.true(kinds.includes(expected), `a form posting to …${expected} was tried; found:\n${kinds}`);
  }
  tt.deepEqual(failures, [], `${failures.length} of ${requests} requests failed`);
  tt.log(`${found.size} forms on ${visited.size} pages, ${requests} requests`);
});
