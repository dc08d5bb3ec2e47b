import test from 'ava';
import {
  CLAIMS_FORMATS,
  type ClaimsFormat,
  distributedMembershipClaims,
  MEMBERSHIP_CLAIMS,
  membershipClaims,
  ORG_SCOPED_EXTRA_CLAIMS,
  orgScopedExtras,
} from '../../src/oidc/claims-format.ts';

const ACME = '0b8e0c8e-5f3a-4c57-9a49-9d0d3f1f6a01';
const GLOBEX = '6f1c2d7e-1b2a-4e0f-8c3d-2a9b7e5d4c02';
const memberships = [
  { id: ACME, slug: 'acme', name: 'Acme', roles: ['owner'] },
  // A custom role may hold colons: "<slug>:<role>" still splits at the first one.
  { id: GLOBEX, slug: 'globex', name: 'Globex Corp', roles: ['member', 'billing:viewer'] },
];

test('tessera: every organization with id, slug, name and roles (the shape before claims_format)', (t) => {
  t.deepEqual(membershipClaims('tessera', memberships), {
    organizations: [
      { id: ACME, slug: 'acme', name: 'Acme', roles: ['owner'] },
      { id: GLOBEX, slug: 'globex', name: 'Globex Corp', roles: ['member', 'billing:viewer'] },
    ],
  });
  t.deepEqual(membershipClaims('tessera', []), { organizations: [] });
});

test('flat: only strings and arrays of strings; every organization and every role survive', (t) => {
  const flat = membershipClaims('flat', memberships);
  t.deepEqual(flat, {
    org_ids: [ACME, GLOBEX],
    org_slugs: ['acme', 'globex'],
    org_roles_by_org: ['acme:owner', 'globex:member', 'globex:billing:viewer'],
  });
  for (const value of Object.values(flat)) t.true(Array.isArray(value) && value.every((v) => typeof v === 'string'));
  // What a flattening RP does (join with ","), read back: the same organizations and roles.
  const joined = (flat.org_roles_by_org as string[]).join(',');
  const back = joined.split(',').map((s) => [s.slice(0, s.indexOf(':')), s.slice(s.indexOf(':') + 1)]);
  t.deepEqual(back, [
    ['acme', 'owner'],
    ['globex', 'member'],
    ['globex', 'billing:viewer'],
  ]);
  t.deepEqual(membershipClaims('flat', []), { org_ids: [], org_slugs: [], org_roles_by_org: [] });
});

test("keycloak: Keycloak 26's organization claim, a list of aliases (slugs); none without organizations", (t) => {
  t.deepEqual(membershipClaims('keycloak', memberships), { organization: ['acme', 'globex'] });
  t.deepEqual(membershipClaims('keycloak', []), {});
});

test('auth0: no membership list at all', (t) => {
  t.deepEqual(membershipClaims('auth0', memberships), {});
});

test('logto: organizations (ids) and organization_roles ("<org id>:<role>")', (t) => {
  t.deepEqual(membershipClaims('logto', memberships), {
    organizations: [ACME, GLOBEX],
    organization_roles: [`${ACME}:owner`, `${GLOBEX}:member`, `${GLOBEX}:billing:viewer`],
  });
});

test('past the cap: each claim of the format points at userinfo (auth0 has none)', (t) => {
  const endpoint = 'https://id.example.com/t/acme/me';
  t.deepEqual(distributedMembershipClaims('tessera', endpoint), {
    _claim_names: { organizations: 'tessera_userinfo' },
    _claim_sources: { tessera_userinfo: { endpoint } },
  });
  t.deepEqual(Object.keys((distributedMembershipClaims('flat', endpoint) as { _claim_names: object })._claim_names), [
    'org_ids',
    'org_slugs',
    'org_roles_by_org',
  ]);
  t.deepEqual(distributedMembershipClaims('auth0', endpoint), {});
});

test('every claim a format emits is registered under the organizations scope, and no org-scoped claim is', (t) => {
  for (const format of CLAIMS_FORMATS) {
    for (const claim of Object.keys(membershipClaims(format, memberships))) t.true(MEMBERSHIP_CLAIMS.includes(claim), `${format}: ${claim}`);
  }
  for (const orgScoped of ['org_id', 'org_slug', 'org_roles', 'org_permissions', 'org_name']) t.false(MEMBERSHIP_CLAIMS.includes(orgScoped));
  t.deepEqual([...ORG_SCOPED_EXTRA_CLAIMS], ['org_name']);
});

test('org-scoped tokens: auth0 adds org_name (the slug, not the display name) beside org_id; no other format adds anything', (t) => {
  const orgClaims = { org_id: ACME, org_slug: 'acme', org_roles: ['owner'], org_permissions: [] };
  t.deepEqual(orgScopedExtras('auth0', orgClaims), { org_name: 'acme' });
  for (const format of ['tessera', 'flat', 'keycloak', 'logto'] satisfies ClaimsFormat[]) t.deepEqual(orgScopedExtras(format, orgClaims), {});
  t.deepEqual(orgScopedExtras('auth0', {}), {}, 'Auth0 omits org_name without an organization');
  t.deepEqual(orgScopedExtras('auth0', { org_id: GLOBEX }), {}, 'no slug: no org_name rather than a wrong one');
});
