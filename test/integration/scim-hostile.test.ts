import test from 'ava';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { type ScimAnswer, type ScimWorld, scimWorld } from '../helpers/scim.ts';

// What a hostile or broken directory sends: refused with a 400 in SCIM form, the process stays
// healthy (the app runs in this process, so Object.prototype is checked directly), nothing changes.

let t: TestApp;
let w: ScimWorld;
let userId: string;
let groupId: string;
test.before(async () => {
  t = await startTestApp();
  w = await scimWorld(t);
  userId = (await w.scim('POST', '/Users', { userName: 'lee@example.com', name: { givenName: 'Lee' } })).body.id;
  groupId = (await w.scim('POST', '/Groups', { displayName: 'Staff', members: [{ value: userId }] })).body.id;
});
test.after.always(async () => t?.stop());

const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const patch = (...Operations: unknown[]) => ({ schemas: [PATCH], Operations });

const polluted = () =>
  ['polluted', 'y', 'x', 'isAdmin'].filter((k) => (({}) as Record<string, unknown>)[k] !== undefined || Object.hasOwn(Object.prototype, k));

/** A `__proto__` key is refused by the JSON reader itself (invalidSyntax) or, past it, by the attribute check. */
const PROTO_KEY = ['invalidSyntax', 'invalidValue'];

async function refusedAndHealthy(tt: any, res: ScimAnswer, scimType: string | string[], label: string) {
  tt.is(res.status, 400, `${label}: ${JSON.stringify(res.body)}`);
  tt.true([scimType].flat().includes(res.body?.scimType), `${label}: ${JSON.stringify(res.body)}`);
  tt.deepEqual(res.body?.schemas, ['urn:ietf:params:scim:api:messages:2.0:Error'], label);
  tt.deepEqual(polluted(), [], `${label}: Object.prototype is untouched`);
  tt.is((await fetch(`${t.url}/healthz`)).status, 200, `${label}: the process still answers`);
}

test('prototype pollution through PATCH, POST and PUT is refused and the process stays healthy', async (tt) => {
  const hostile: Array<[string, string, unknown, string | string[]]> = [
    ['PATCH', `/Users/${userId}`, patch({ op: 'replace', path: '__proto__.polluted', value: 'a' }), 'invalidPath'],
    ['PATCH', `/Users/${userId}`, patch({ op: 'replace', path: 'constructor.prototype.y', value: 1 }), 'invalidPath'],
    ['PATCH', `/Users/${userId}`, patch({ op: 'add', path: 'name.__proto__', value: { polluted: 'a' } }), 'invalidPath'],
    ['PATCH', `/Users/${userId}`, patch({ op: 'replace', path: `${ENTERPRISE}:__proto__`, value: { polluted: 'a' } }), 'invalidPath'],
    ['PATCH', `/Users/${userId}`, patch({ op: 'replace', path: 'emails[__proto__ eq "x"].value', value: 'a' }), 'invalidPath'],
    ['PATCH', `/Users/${userId}`, patch({ op: 'replace', path: 'emails[constructor pr].value', value: 'a' }), 'invalidPath'],
    ['PATCH', `/Users/${userId}`, patch({ op: 'add', value: JSON.parse('{"__proto__":{"polluted":"a"},"constructor":{"prototype":{"y":1}}}') }), PROTO_KEY],
    ['PATCH', `/Users/${userId}`, patch({ op: 'add', path: 'name', value: JSON.parse('{"givenName":"x","__proto__":{"polluted":"a"}}') }), PROTO_KEY],
    [
      'PATCH',
      `/Users/${userId}`,
      patch({ op: 'add', path: 'emails', value: [JSON.parse('{"value":"a@example.com","__proto__":{"polluted":"a"}}')] }),
      PROTO_KEY,
    ],
    ['PATCH', `/Users/${userId}`, patch({ op: 'replace', value: { 'constructor.prototype.y': 1 } }), 'invalidValue'],
    ['PATCH', `/Users/${userId}`, patch({ op: 'add', value: { constructor: { prototype: { y: 1 } } } }), 'invalidValue'],
    ['PATCH', `/Users/${userId}`, patch({ op: 'add', path: 'name', value: { constructor: { prototype: { y: 1 } } } }), 'invalidValue'],
    ['PATCH', `/Users/${userId}`, patch({ op: 'add', path: 'phoneNumbers', value: [{ value: '1', Prototype: { y: 1 } }] }), 'invalidValue'],
    ['PATCH', `/Users/${userId}`, patch({ op: 'replace', value: { '__proto__.polluted': 'a' } }), 'invalidValue'],
    ['PATCH', `/Groups/${groupId}`, patch({ op: 'replace', path: '__proto__.polluted', value: 'a' }), 'invalidPath'],
    ['PATCH', `/Groups/${groupId}`, patch({ op: 'add', path: 'members', value: [JSON.parse('{"value":"x","__proto__":{"polluted":"a"}}')] }), PROTO_KEY],
    ['POST', '/Users', JSON.parse('{"userName":"p1@example.com","__proto__":{"polluted":"a"}}'), PROTO_KEY],
    ['POST', '/Users', JSON.parse('{"userName":"p2@example.com","name":{"constructor":{"prototype":{"y":1}}}}'), 'invalidValue'],
    ['POST', '/Users', JSON.parse(`{"userName":"p3@example.com","${ENTERPRISE}":{"__proto__":{"polluted":"a"}}}`), PROTO_KEY],
    ['PUT', `/Users/${userId}`, JSON.parse('{"userName":"lee@example.com","emails":[{"value":"lee@example.com","prototype":{"x":1}}]}'), 'invalidValue'],
    ['POST', '/Groups', JSON.parse('{"displayName":"P","__proto__":{"polluted":"a"}}'), PROTO_KEY],
    ['PUT', `/Groups/${groupId}`, JSON.parse('{"displayName":"Staff","constructor":{"prototype":{"y":1}}}'), 'invalidValue'],
  ];
  for (const [method, path, body, scimType] of hostile) {
    // Sent as JSON text: a `__proto__` key must reach the server as the key it is.
    await refusedAndHealthy(tt, await w.scim(method, path, JSON.stringify(body)), scimType, `${method} ${JSON.stringify(body).slice(0, 110)}`);
  }
  const lee = await w.scim('GET', `/Users/${userId}`);
  tt.is(lee.status, 200);
  tt.like(lee.body, { userName: 'lee@example.com', name: { givenName: 'Lee' }, meta: { version: 'W/"1"' } }, 'nothing changed');
  tt.is((await w.scim('GET', `/Groups/${groupId}`)).body.members.length, 1);
});

test('read-only attributes, unknown attributes and malformed operations → 400, never 500', async (tt) => {
  const bad: Array<[string, unknown, string]> = [
    [`/Users/${userId}`, patch({ op: 'replace', path: 'meta.created', value: '2000-01-01T00:00:00Z' }), 'mutability'],
    [`/Users/${userId}`, patch({ op: 'replace', path: 'id', value: '00000000-0000-4000-8000-000000000000' }), 'mutability'],
    [`/Users/${userId}`, patch({ op: 'replace', path: 'schemas', value: [] }), 'mutability'],
    [`/Users/${userId}`, patch({ op: 'add', path: 'groups', value: [{ value: groupId }] }), 'mutability'],
    [`/Users/${userId}`, patch({ op: 'replace', value: { meta: { created: 'x' } } }), 'mutability'],
    [`/Users/${userId}`, patch({ op: 'replace', value: { id: '00000000-0000-4000-8000-000000000000' } }), 'mutability'],
    [`/Groups/${groupId}`, patch({ op: 'replace', path: 'id', value: 'x' }), 'mutability'],
    [`/Users/${userId}`, patch({ op: 'replace', path: 'isAdmin', value: true }), 'invalidPath'],
    [`/Users/${userId}`, patch({ op: 'replace', path: 'name.givenName.x', value: 'a' }), 'invalidPath'],
    [`/Users/${userId}`, patch({ op: 'replace', path: 'name.nickname', value: 'a' }), 'invalidPath'],
    [`/Users/${userId}`, patch({ op: 'replace', path: 'emails[password eq "x"].value', value: 'a' }), 'invalidPath'],
    [`/Users/${userId}`, patch({ op: 'replace', path: 'urn:example:custom:2.0:User:level', value: 'a' }), 'invalidPath'],
    [`/Users/${userId}`, patch({ op: 'replace', path: `${ENTERPRISE}:salary`, value: 'a' }), 'invalidPath'],
    [`/Users/${userId}`, patch({ op: 'replace', value: { isAdmin: true } }), 'invalidPath'],
    [`/Users/${userId}`, patch({ op: 'add', value: { 'emails[type eq "zz"].value': { nested: { deep: [1, 2] } } } }), 'invalidPath'],
    [`/Users/${userId}`, patch({ op: 'add', value: { 'phoneNumbers[type eq "x"].value': 12345 } }), 'invalidPath'],
    [`/Groups/${groupId}`, patch({ op: 'replace', path: 'emails', value: [] }), 'invalidPath'],
    [`/Users/${userId}`, { schemas: [PATCH], Operations: null }, 'invalidSyntax'],
    [`/Users/${userId}`, { schemas: [PATCH], Operations: {} }, 'invalidSyntax'],
    [`/Users/${userId}`, patch(null), 'invalidSyntax'],
    [`/Users/${userId}`, patch('replace'), 'invalidSyntax'],
    [`/Users/${userId}`, patch({ op: 'copy', path: 'title', value: 'x' }), 'invalidSyntax'],
    [`/Users/${userId}`, patch({ op: 'replace', path: 'title' }), 'invalidValue'],
    [`/Users/${userId}`, patch({ op: 'add', path: 'emails' }), 'invalidValue'],
    [`/Users/${userId}`, patch({ op: 'remove' }), 'noTarget'],
    [`/Users/${userId}`, patch({ op: 'replace', value: 'x' }), 'invalidValue'],
  ];
  for (const [path, body, scimType] of bad) await refusedAndHealthy(tt, await w.scim('PATCH', path, body), scimType, JSON.stringify(body).slice(0, 120));
  tt.like((await w.scim('GET', `/Users/${userId}`)).body, { id: userId, meta: { version: 'W/"1"' } }, 'nothing changed');
});

test('malformed attribute shapes are refused by POST, PUT and PATCH, naming the attribute', async (tt) => {
  const user = (extra: Record<string, unknown>) => ({ userName: 'shape@example.com', ...extra });
  const bodies: Array<[string, string, unknown, string]> = [
    ['POST', '/Users', user({ emails: 'z1@example.com' }), 'emails'],
    ['POST', '/Users', user({ emails: [null] }), 'emails'],
    ['POST', '/Users', user({ emails: [{ value: 123 }] }), 'emails'],
    ['POST', '/Users', user({ emails: [{ value: 'a@example.com', primary: 'yes' }] }), 'emails'],
    ['POST', '/Users', user({ phoneNumbers: [{ type: 'work' }] }), 'phoneNumbers'],
    ['POST', '/Users', user({ addresses: [{ locality: 7 }] }), 'addresses'],
    ['POST', '/Users', user({ name: 'Ada' }), 'name'],
    ['POST', '/Users', user({ name: { givenName: { x: 1 } } }), 'name'],
    ['POST', '/Users', user({ title: ['CTO'] }), 'title'],
    ['POST', '/Users', user({ [ENTERPRISE]: { department: 5 } }), 'department'],
    ['POST', '/Users', user({ [ENTERPRISE]: 'Research' }), ENTERPRISE],
    ['PUT', `/Users/${userId}`, { userName: 'lee@example.com', emails: { value: 'q' } }, 'emails'],
    ['PATCH', `/Users/${userId}`, patch({ op: 'replace', path: 'emails', value: 'lee@example.com' }), 'emails'],
    ['PATCH', `/Users/${userId}`, patch({ op: 'add', value: { emails: [{ value: false }] } }), 'emails'],
    ['PATCH', `/Users/${userId}`, patch({ op: 'replace', path: 'name.givenName', value: { x: 'a' } }), 'name'],
    ['PATCH', `/Users/${userId}`, patch({ op: 'replace', path: 'displayName', value: 42 }), 'displayName'],
    ['PATCH', `/Users/${userId}`, patch({ op: 'replace', path: 'active', value: 'perhaps' }), 'active'],
    ['PATCH', `/Users/${userId}`, patch({ op: 'replace', path: `${ENTERPRISE}:manager`, value: 42 }), 'manager'],
    ['POST', '/Groups', { displayName: 'Shape', members: [{ value: 42 }] }, 'members'],
  ];
  for (const [method, path, body, attribute] of bodies) {
    const res = await w.scim(method, path, body);
    const label = `${method} ${JSON.stringify(body).slice(0, 110)}`;
    await refusedAndHealthy(tt, res, 'invalidValue', label);
    tt.true(String(res.body.detail).includes(`"${attribute}`) || String(res.body.detail).includes(`${attribute}"`), `${label}: ${res.body.detail}`);
  }
  tt.is((await w.scim('GET', `/Users?filter=${encodeURIComponent('userName eq "shape@example.com"')}`)).body.totalResults, 0, 'nothing was created');
  tt.like((await w.scim('GET', `/Users/${userId}`)).body, { meta: { version: 'W/"1"' } }, 'nothing changed');
});

test('well-formed attributes pass as directories send them; a PATCH leaves what it did not write as stored', async (tt) => {
  const created = await w.scim('POST', '/Users', {
    userName: 'kai@example.com',
    name: { givenName: 'Kai', familyName: 'Berg', nickname: 'dropped: not a sub-attribute' },
    emails: [{ value: 'kai@example.com', type: 'work', primary: 'True' }],
    phoneNumbers: [{ value: '+1 555 0100', type: 'mobile' }],
    addresses: [{ type: 'work', locality: 'Oslo', country: 'NO' }],
    roles: [],
    groups: [{ value: groupId }],
    favouriteColour: 'not an attribute of a User: ignored',
    [ENTERPRISE]: { department: 'Research', manager: { value: userId }, salary: 'ignored' },
  });
  tt.is(created.status, 201, JSON.stringify(created.body));
  tt.deepEqual(created.body.emails, [{ value: 'kai@example.com', type: 'work', primary: true }]);
  tt.deepEqual(created.body.name, { givenName: 'Kai', familyName: 'Berg' });
  tt.deepEqual(created.body[ENTERPRISE], { department: 'Research', manager: { value: userId } });
  tt.false('favouriteColour' in created.body);
  tt.false('groups' in created.body);
  const id = created.body.id;
  const patched = await w.scim(
    'PATCH',
    `/Users/${id}`,
    patch(
      { op: 'Replace', path: 'addresses[type eq "work"].locality', value: 'Bergen' },
      { op: 'Add', path: `${ENTERPRISE}:manager`, value: userId },
      { op: 'replace', value: { id, title: 'Engineer', 'name.familyName': 'Lund' } },
    ),
  );
  tt.is(patched.status, 200, JSON.stringify(patched.body));
  tt.like(patched.body, {
    title: 'Engineer',
    name: { givenName: 'Kai', familyName: 'Lund' },
    addresses: [{ type: 'work', locality: 'Bergen', country: 'NO' }],
    [ENTERPRISE]: { department: 'Research', manager: { value: userId } },
  });
});

test('an address off the verified domains gets one answer, whether or not an account has it', async (tt) => {
  // The tenant administrator's account (admin@<slug>.test) and an ordinary account, both off example.com.
  await w.api('POST', '/users', { email: 'someone@elsewhere.test', password: 'some password here', email_verified: true });
  const answer = async (userName: string, extra: Record<string, unknown> = {}) => {
    const res = await w.scim('POST', '/Users', { userName, emails: [{ value: userName, primary: true }], ...extra });
    return { status: res.status, body: { ...res.body, detail: String(res.body.detail).replace(userName, '<address>') } };
  };
  const absent = await answer('nobody@elsewhere.test');
  tt.is(absent.status, 400);
  tt.is(absent.body.scimType, 'invalidValue');
  tt.deepEqual(await answer('someone@elsewhere.test'), absent, 'an existing account off the verified domains');
  tt.deepEqual(
    await answer(w.tenant.adminEmail),
    { ...absent, body: { ...absent.body, detail: absent.body.detail.replace('elsewhere.test', w.tenant.adminEmail.split('@')[1]!) } },
    "the tenant administrator's address",
  );
  // A change of address by PATCH or PUT: the same.
  const moveTo = async (address: string) => {
    const res = await w.scim('PATCH', `/Users/${userId}`, patch({ op: 'replace', path: 'emails', value: [{ value: address, primary: true }] }));
    return { status: res.status, body: { ...res.body, detail: String(res.body.detail).replace(address, '<address>') } };
  };
  tt.deepEqual(await moveTo('someone@elsewhere.test'), await moveTo('nobody@elsewhere.test'));
  const put = async (address: string) => {
    const res = await w.scim('PUT', `/Users/${userId}`, { userName: 'lee@example.com', emails: [{ value: address, primary: true }] });
    return { status: res.status, body: { ...res.body, detail: String(res.body.detail).replace(address, '<address>') } };
  };
  tt.deepEqual(await put('someone@elsewhere.test'), await put('nobody@elsewhere.test'));
  tt.is((await put('nobody@elsewhere.test')).status, 400);
  // On a verified domain the reason may be told: the organization owns those addresses.
  await w.api('POST', '/users', { email: 'boss@example.com', password: 'some password here', email_verified: true, tenant_admin: true });
  const admin = await w.scim('POST', '/Users', { userName: 'boss@example.com' });
  tt.is(admin.status, 409);
  tt.regex(admin.body.detail, /tenant administrator/);
});
