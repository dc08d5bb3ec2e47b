import { Ajv2020 } from 'ajv/dist/2020.js';
import test from 'ava';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';

let t: TestApp;
let tenant: TestTenant;
let doc: any;

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
  const res = await fetch(`${t.url}/t/${tenant.slug}/api/v1/openapi.json`);
  if (res.status !== 200) throw new Error(await res.text());
  doc = await res.json();
});
test.after.always(async () => t?.stop());

// The contract's Admin API table, as (method, path) pairs.
const CONTRACT = [
  'get /organizations',
  'post /organizations',
  'get /organizations/{orgId}',
  'put /organizations/{orgId}',
  'patch /organizations/{orgId}',
  'delete /organizations/{orgId}',
  'get /organizations/{orgId}/members',
  'post /organizations/{orgId}/members',
  'patch /organizations/{orgId}/members/{userId}',
  'delete /organizations/{orgId}/members/{userId}',
  'post /organizations/{orgId}/transfer-ownership',
  'get /organizations/{orgId}/roles',
  'post /organizations/{orgId}/roles',
  'delete /organizations/{orgId}/roles/{roleId}',
  'get /organizations/{orgId}/invitations',
  'post /organizations/{orgId}/invitations',
  'post /organizations/{orgId}/invitations/{invitationId}/resend',
  'delete /organizations/{orgId}/invitations/{invitationId}',
  'get /organizations/{orgId}/audit-log',
  'post /organizations/{orgId}/setup-links',
  'delete /organizations/{orgId}/setup-links/{setupLinkId}',
  'get /settings',
  'patch /settings',
  'get /users',
  'post /users',
  'get /users/{userId}',
  'patch /users/{userId}',
  'delete /users/{userId}',
  'post /users/{userId}/unlock',
  'post /users/{userId}/password-reset',
  'get /users/{userId}/factors',
  'delete /users/{userId}/factors',
  'delete /users/{userId}/factors/{factorId}',
  'get /audit-log',
  'get /clients',
  'post /clients',
  'get /clients/{clientId}',
  'patch /clients/{clientId}',
  'delete /clients/{clientId}',
  'get /organizations/{orgId}/teams',
  'post /organizations/{orgId}/teams',
  'get /organizations/{orgId}/teams/{teamId}',
  'patch /organizations/{orgId}/teams/{teamId}',
  'delete /organizations/{orgId}/teams/{teamId}',
  'get /organizations/{orgId}/teams/{teamId}/members',
  'post /organizations/{orgId}/teams/{teamId}/members',
  'patch /organizations/{orgId}/teams/{teamId}/members/{userId}',
  'delete /organizations/{orgId}/teams/{teamId}/members/{userId}',
  'get /organizations/{orgId}/team-roles',
  'post /organizations/{orgId}/team-roles',
  'patch /organizations/{orgId}/team-roles/{teamRoleId}',
  'delete /organizations/{orgId}/team-roles/{teamRoleId}',
];

test('OpenAPI 3.1 describes every Admin API operation of the contract, with security and errors', (tt) => {
  tt.is(doc.openapi, '3.1.0');
  tt.is(doc.servers[0].url, `${tenant.issuer}/api/v1/admin`);
  const ops = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods as object).map((m) => `${m} ${path}`));
  for (const op of CONTRACT) tt.true(ops.includes(op), `missing ${op}`);
  for (const [path, methods] of Object.entries<any>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(methods)) {
      tt.truthy(op.summary, `${method} ${path} has a summary`);
      tt.truthy(op.responses.default, `${method} ${path} documents errors`);
      for (const name of path.match(/\{(\w+)\}/g) ?? []) {
        tt.true(
          op.parameters.some((p: any) => `{${p.name}}` === name && p.in === 'path'),
          `${method} ${path} declares ${name}`,
        );
      }
    }
  }
  tt.deepEqual(doc.components.securitySchemes.bearer, { type: 'http', scheme: 'bearer', description: doc.components.securitySchemes.bearer.description });
});

/** The published schema and the running API must agree on what is valid: they are one schema. */
test('the published request schemas accept and refuse exactly what the API does', async (tt) => {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  const samples: Array<[string, string, unknown]> = [
    ['post', '/organizations', { name: 'Valid Org' }],
    ['post', '/organizations', { name: 'Valid Org', slug: 'BAD SLUG' }],
    ['post', '/organizations', { name: 'Valid Org', status: 'gone' }],
    ['post', '/organizations', { name: 'Valid Org', unknown_field: 1 }],
    ['post', '/organizations', {}],
    ['post', '/organizations', { name: 'Valid Org 2', max_members: 10, metadata: { a: 1 } }],
    ['post', '/users', { email: 'schema@x.test' }],
    ['post', '/users', { email: 'nope' }],
    ['post', '/users', { email: 'schema2@x.test', extra: true }],
    ['post', '/clients', { name: 'c', grant_types: ['client_credentials'] }],
    ['post', '/clients', { name: 'c', grant_types: ['implicit'] }],
  ];
  for (const [method, path, body] of samples) {
    const schema = doc.paths[path][method].requestBody.content['application/json'].schema;
    const validBySchema = ajv.validate(schema, body);
    const res = await adminApi(t, tenant, method.toUpperCase(), path, body);
    const validByApi = res.status !== 422;
    tt.is(validBySchema, validByApi, `${method} ${path} ${JSON.stringify(body)}: schema says ${validBySchema}, API answered ${res.status}`);
  }
});

test('the OpenAPI description is public but the API is not', async (tt) => {
  tt.is((await fetch(`${t.url}/t/${tenant.slug}/api/v1/admin/organizations`)).status, 401);
  tt.is((await fetch(`${t.url}/t/nope/api/v1/openapi.json`)).status, 404);
});
