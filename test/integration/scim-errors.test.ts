import { gzipSync } from 'node:zlib';
import test from 'ava';
import { createTenant, startTestApp, type TestApp } from '../helpers/app.ts';
import { type ScimWorld, scimCall, scimWorld } from '../helpers/scim.ts';

// Every refusal is a SCIM error document with the right status and scimType; bad input is never a 500.

let t: TestApp;
let w: ScimWorld;
let other: ScimWorld;
let foreign: ScimWorld;
let userId: string;
let groupId: string;
test.before(async () => {
  t = await startTestApp();
  w = await scimWorld(t);
  other = await scimWorld(t, { tenant: w.tenant, domain: 'other.example' });
  foreign = await scimWorld(t, { tenant: await createTenant(t) });
  userId = (await w.scim('POST', '/Users', { userName: 'lee@example.com' })).body.id;
  groupId = (await w.scim('POST', '/Groups', { displayName: 'Staff', members: [{ value: userId }] })).body.id;
});
test.after.always(async () => t?.stop());

const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

function isScimError(tt: any, res: { status: number; type: string; body: any }, status: number, scimType?: string) {
  tt.is(res.status, status, JSON.stringify(res.body));
  tt.is(res.type, 'application/scim+json; charset=utf-8');
  tt.deepEqual(res.body.schemas, [ERROR]);
  tt.is(res.body.status, String(status));
  if (scimType) tt.is(res.body.scimType, scimType);
  tt.is(typeof res.body.detail, 'string');
}

test("no token, a wrong token, another directory's token, an unknown directory: the same 401", async (tt) => {
  for (const res of [
    await scimCall(w.base, '', 'GET', '/Users'),
    await w.scim('GET', '/Users', undefined, { token: 'scim_wrong' }),
    await w.scim('GET', '/Users', undefined, { token: other.token }),
    await scimCall(w.base.replace(w.directoryId, '00000000-0000-4000-8000-000000000000'), w.token, 'GET', '/Users'),
    await scimCall(w.base.replace(w.directoryId, 'not-a-uuid'), w.token, 'GET', '/Users'),
    await scimCall(foreign.base.replace(foreign.tenant.slug, w.tenant.slug), foreign.token, 'GET', '/Users'),
  ]) {
    isScimError(tt, res, 401);
    tt.is(res.headers.get('www-authenticate'), 'Bearer');
    tt.is(res.body.detail, "Send the directory's bearer token as Authorization: Bearer <token>.");
  }
});

test("another directory's or tenant's ids are 404", async (tt) => {
  const theirs = (await other.scim('POST', '/Users', { userName: 'mo@other.example' })).body.id;
  tt.truthy(theirs);
  isScimError(tt, await w.scim('GET', `/Users/${theirs}`), 404);
  isScimError(tt, await w.scim('PATCH', `/Users/${theirs}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: false }] }), 404);
  isScimError(tt, await w.scim('DELETE', `/Users/${theirs}`), 404);
  isScimError(tt, await other.scim('GET', `/Groups/${groupId}`), 404);
  isScimError(
    tt,
    await other.scim('PATCH', `/Groups/${groupId}`, { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: [{ value: theirs }] }] }),
    404,
  );
  isScimError(tt, await w.scim('GET', '/Users/not-a-uuid'), 404);
  isScimError(tt, await w.scim('GET', '/Nope'), 404);
  // A member from another directory is refused, and nothing changes.
  isScimError(
    tt,
    await w.scim('PATCH', `/Groups/${groupId}`, { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: [{ value: theirs }] }] }),
    400,
    'invalidValue',
  );
  tt.is((await other.scim('GET', `/Users/${theirs}`)).body.active, true, "the other directory's user is untouched");
});

test('duplicate userName (any case) and group name → 409 uniqueness', async (tt) => {
  isScimError(tt, await w.scim('POST', '/Users', { userName: 'LEE@example.com' }), 409, 'uniqueness');
  const second = (await w.scim('POST', '/Users', { userName: 'nia@example.com' })).body.id;
  isScimError(
    tt,
    await w.scim('PATCH', `/Users/${second}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'userName', value: 'Lee@Example.com' }] }),
    409,
    'uniqueness',
  );
  isScimError(tt, await w.scim('POST', '/Groups', { displayName: 'STAFF' }), 409, 'uniqueness');
});

test('bad filters → 400 invalidFilter', async (tt) => {
  for (const filter of [
    'userName eq',
    'userName eq "x" and',
    'password eq "x"',
    'userName ne "x"',
    'not (userName eq "x")',
    'userName gt "x"',
    'meta.lastModified gt "yesterday"',
    'userName eq 3',
    'name.familyName eq "x"',
    `userName eq "${'x'.repeat(3000)}"`,
  ]) {
    const res = await w.scim('GET', `/Users?filter=${encodeURIComponent(filter)}`);
    tt.is(res.status, 400, filter);
    isScimError(tt, res, 400, 'invalidFilter');
  }
  isScimError(tt, await w.scim('GET', `/Groups?filter=${encodeURIComponent('members[display eq "x"]')}`), 400, 'invalidFilter');
  isScimError(tt, await w.scim('GET', '/Users?count=abc'), 400, 'invalidValue');
});

test('supported filters, paging and projections answer', async (tt) => {
  const since = new Date(Date.now() - 3600_000).toISOString();
  for (const filter of [
    `meta.lastModified gt "${since}"`,
    'userName sw "LEE" or externalId eq "none"',
    'userName co "@example" and active eq true',
    'emails.value pr',
    'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "lee@example.com"',
    'userName eq "100%_"',
  ]) {
    const res = await w.scim('GET', `/Users?filter=${encodeURIComponent(filter)}`);
    tt.is(res.status, 200, `${filter}: ${JSON.stringify(res.body)}`);
  }
  tt.is((await w.scim('GET', `/Users?filter=${encodeURIComponent('userName co "%"')}`)).body.totalResults, 0, 'LIKE wildcards in a value are literal');
  const counted = await w.scim('GET', '/Users?count=0');
  tt.true(counted.body.totalResults >= 1);
  tt.deepEqual(counted.body.Resources, []);
  const big = await w.scim('GET', '/Users?count=100000&startIndex=-5');
  tt.is(big.body.startIndex, 1);
  const only = await w.scim('GET', `/Users/${userId}?attributes=userName`);
  tt.deepEqual(Object.keys(only.body).sort(), ['id', 'schemas', 'userName']);
});

test('If-Match → 412 on a stale version; If-None-Match → 304', async (tt) => {
  const read = await w.scim('GET', `/Users/${userId}`);
  const tag = read.headers.get('etag')!;
  tt.regex(tag, /^W\/"\d+"$/);
  tt.is((await w.scim('GET', `/Users/${userId}`, undefined, { headers: { 'if-none-match': tag } })).status, 304);
  isScimError(tt, await w.scim('PUT', `/Users/${userId}`, { userName: 'lee@example.com' }, { headers: { 'if-match': 'W/"999"' } }), 412);
  isScimError(tt, await w.scim('DELETE', `/Groups/${groupId}`, undefined, { headers: { 'if-match': 'W/"999"' } }), 412);
  const ok = await w.scim(
    'PATCH',
    `/Users/${userId}`,
    { schemas: [PATCH], Operations: [{ op: 'add', path: 'title', value: 'Lead' }] },
    { headers: { 'if-match': tag } },
  );
  tt.is(ok.status, 200);
  tt.not(ok.headers.get('etag'), tag);
  isScimError(
    tt,
    await w.scim('PATCH', `/Users/${userId}`, { schemas: [PATCH], Operations: [{ op: 'add', path: 'title', value: 'x' }] }, { headers: { 'if-match': tag } }),
    412,
  );
});

test('malformed bodies and operations → 400 in SCIM form, never 500; too large → 413', async (tt) => {
  const bodies: Array<[string, string, unknown, string]> = [
    ['POST', '/Users', '{"userName": ', 'invalidSyntax'],
    ['POST', '/Users', [], 'invalidValue'],
    ['POST', '/Users', 'null', 'invalidSyntax'],
    ['POST', '/Users', {}, 'invalidValue'],
    ['POST', '/Users', { userName: 42 }, 'invalidValue'],
    ['POST', '/Users', { userName: '   ' }, 'invalidValue'],
    ['POST', '/Users', { userName: 'no-email-here' }, 'invalidValue'],
    ['POST', '/Users', { userName: 'x@example.com', active: 'maybe' }, 'invalidValue'],
    ['POST', '/Users', { userName: 'x@example.com', emails: [{ value: 'not an email', primary: true }] }, 'invalidValue'],
    ['POST', '/Users', { userName: 'x\u0000@example.com' }, ''],
    ['POST', '/Groups', { displayName: 'G', members: 'everyone' }, 'invalidValue'],
    ['POST', '/Groups', { displayName: 'G', members: [{ value: 'not-a-uuid' }] }, 'invalidValue'],
    ['POST', '/Groups', { displayName: 'G', members: [{ value: '00000000-0000-4000-8000-000000000000' }] }, 'invalidValue'],
    ['PATCH', `/Users/${userId}`, {}, 'invalidSyntax'],
    ['PATCH', `/Users/${userId}`, { Operations: 'replace' }, 'invalidSyntax'],
    ['PATCH', `/Users/${userId}`, { Operations: [{ op: 'move', path: 'userName' }] }, 'invalidSyntax'],
    ['PATCH', `/Users/${userId}`, { Operations: [{ op: 'replace', path: 7, value: 1 }] }, 'invalidPath'],
    ['PATCH', `/Users/${userId}`, { Operations: [{ op: 'remove' }] }, ''],
    ['PATCH', `/Users/${userId}`, { Operations: [{ op: 'replace', path: 'emails[type eq', value: 'x' }] }, ''],
    ['PATCH', `/Users/${userId}`, { Operations: [{ op: 'remove', path: 'userName' }] }, 'invalidValue'],
    ['PATCH', `/Users/${userId}`, { Operations: [{ op: 'replace', path: 'active', value: 'perhaps' }] }, 'invalidValue'],
    ['PATCH', `/Groups/${groupId}`, { Operations: [{ op: 'add', path: 'members', value: [{ nope: 1 }] }] }, 'invalidValue'],
    ['PUT', `/Groups/${groupId}`, { members: [] }, 'invalidValue'],
  ];
  for (const [method, path, body, scimType] of bodies) {
    const res = await w.scim(method, path, typeof body === 'string' ? body : JSON.stringify(body));
    tt.is(res.body?.scimType ?? '', scimType || (res.body?.scimType ?? ''), `${method} ${path} ${JSON.stringify(body).slice(0, 80)}`);
    isScimError(tt, res, 400, scimType || undefined);
  }
  const huge = await w.scim('POST', '/Users', JSON.stringify({ userName: 'big@example.com', title: 'x'.repeat(1_100_000) }));
  isScimError(tt, huge, 413);
  const bomb = await fetch(`${w.base}/Users`, {
    method: 'POST',
    headers: { authorization: `Bearer ${w.token}`, 'content-type': 'application/scim+json', 'content-encoding': 'gzip' },
    body: gzipSync(Buffer.from(JSON.stringify({ userName: 'zip@example.com', title: 'x'.repeat(5_000_000) }))),
  });
  tt.is(bomb.status, 413);
  // Plain JSON bodies are read too.
  const plain = await fetch(`${w.base}/Users`, {
    method: 'POST',
    headers: { authorization: `Bearer ${w.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ userName: 'plain@example.com' }),
  });
  tt.is(plain.status, 201);
  tt.is((await w.scim('GET', `/Users/${userId}`)).body.userName, 'lee@example.com', 'nothing was lost');
});

test('discovery: honest about what is supported', async (tt) => {
  const spc = await w.scim('GET', '/ServiceProviderConfig');
  tt.like(spc.body, {
    patch: { supported: true },
    bulk: { supported: false },
    sort: { supported: false },
    etag: { supported: true },
    filter: { supported: true, maxResults: 200 },
    changePassword: { supported: false },
  });
  tt.is(spc.body.authenticationSchemes[0].type, 'oauthbearertoken');
  const types = await w.scim('GET', '/ResourceTypes');
  tt.deepEqual(
    types.body.Resources.map((r: any) => r.id),
    ['User', 'Group'],
  );
  const schemas = await w.scim('GET', '/Schemas');
  tt.is(schemas.body.totalResults, 3);
  const user = (await w.scim('GET', '/Schemas/urn:ietf:params:scim:schemas:core:2.0:User')).body;
  tt.like(
    user.attributes.find((a: any) => a.name === 'userName'),
    { uniqueness: 'server', required: true, caseExact: false },
  );
  isScimError(tt, await w.scim('GET', '/Schemas/urn:nope'), 404);
  isScimError(tt, await w.scim('POST', '/Bulk', { Operations: [] }), 404);
});
