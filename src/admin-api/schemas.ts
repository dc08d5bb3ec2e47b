import { z } from 'zod';
import { fields, httpUrl } from '../base/validate.ts';
import { CLAIMS_FORMATS } from '../oidc/claims-format.ts';
import { TENANT_SCOPES } from '../oidc/provider.ts';
import { domain, text } from '../orgs/org.schemas.ts';
import { ORG_STATUSES } from '../orgs/org.table.ts';
import { slug } from '../orgs/slug.ts';
import { DIRECTORY_PROVIDERS, SSO_MATCHES } from '../scim/scim.table.ts';
import { SETUP_LINK_MAX_TTL_S, SETUP_LINK_MIN_TTL_S } from '../setup-links/setup-link.service.ts';
import { SETUP_FEATURES } from '../setup-links/setup-link.table.ts';
import { MFA_AUTHN_CONTEXTS_MAX } from '../sso/saml/authn-context.ts';
import { userFields } from '../users/user-fields.ts';

// The Admin API's request schemas: one definition validates requests and documents them (the OpenAPI document).
// Path params are plain objects (the router adds :slug); bodies and queries are strict.

const uuid = z.uuid('must be a UUID');

export const UserId = z.object({ userId: uuid });

export { CreateUser, UpdateUser } from '../users/user.schemas.ts';

export const ListUsers = z.strictObject({
  email: userFields.email.optional(),
  q: z.string().trim().min(1).max(200).optional(),
  limit: fields.limit,
  cursor: fields.cursor,
});

export const ListPage = z.strictObject({ limit: fields.limit, cursor: fields.cursor });

/** Redirect URIs are matched exactly; reject what can never match or is unsafe before oidc-provider sees it. */
const redirectUri = z
  .string()
  .max(2000, 'must be at most 2000 characters')
  .refine((s) => URL.canParse(s), 'must be an absolute URL')
  .refine((s) => !s.includes('#'), 'must not contain a fragment');

const grantType = z.enum(['authorization_code', 'refresh_token', 'client_credentials']);
const scope = z.enum(TENANT_SCOPES);

const clientFields = {
  name: fields.name,
  redirect_uris: z.array(redirectUri).max(50, 'at most 50'),
  post_logout_redirect_uris: z.array(redirectUri).max(50, 'at most 50'),
  grant_types: z.array(grantType).min(1, 'give at least one grant type'),
  token_endpoint_auth_method: z.enum(['client_secret_basic', 'client_secret_post', 'none']),
  application_type: z.enum(['web', 'native']),
  scopes: z.array(scope).min(1, 'give at least one scope').max(TENANT_SCOPES.length),
  require_consent: z.boolean(),
  organization_usage: z.enum(['deny', 'allow', 'require']),
  organization_ids: z.array(z.uuid('must be a UUID')).max(100, 'at most 100'),
  claims_format: z.enum(CLAIMS_FORMATS, { error: `must be one of ${CLAIMS_FORMATS.join(', ')}` }),
};

export const CreateClient = z
  .strictObject({
    ...clientFields,
    redirect_uris: clientFields.redirect_uris.default([]),
    post_logout_redirect_uris: clientFields.post_logout_redirect_uris.default([]),
    grant_types: clientFields.grant_types.default(['authorization_code', 'refresh_token']),
    token_endpoint_auth_method: clientFields.token_endpoint_auth_method.default('client_secret_basic'),
    application_type: clientFields.application_type.default('web'),
    scopes: clientFields.scopes.default(['openid', 'profile', 'email', 'offline_access', 'organizations']),
    require_consent: clientFields.require_consent.default(false),
    organization_usage: clientFields.organization_usage.default('allow'),
    organization_ids: clientFields.organization_ids.default([]),
    claims_format: clientFields.claims_format.default('tessera'),
  })
  .superRefine((c, ctx) => {
    if (c.grant_types.includes('authorization_code') && c.redirect_uris.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['redirect_uris'], message: 'required for the authorization_code grant' });
    }
    if (c.grant_types.includes('client_credentials') && c.token_endpoint_auth_method === 'none') {
      ctx.addIssue({ code: 'custom', path: ['grant_types'], message: 'client_credentials needs a confidential client (not token_endpoint_auth_method none)' });
    }
  });

export const UpdateClient = z
  .strictObject({
    name: clientFields.name.optional(),
    redirect_uris: clientFields.redirect_uris.optional(),
    post_logout_redirect_uris: clientFields.post_logout_redirect_uris.optional(),
    grant_types: clientFields.grant_types.optional(),
    token_endpoint_auth_method: clientFields.token_endpoint_auth_method.optional(),
    application_type: clientFields.application_type.optional(),
    scopes: clientFields.scopes.optional(),
    require_consent: clientFields.require_consent.optional(),
    organization_usage: clientFields.organization_usage.optional(),
    organization_ids: clientFields.organization_ids.optional(),
    claims_format: clientFields.claims_format.optional(),
    rotate_secret: z.boolean().optional(),
  })
  .refine((v) => Object.keys(v).length > 0, 'send at least one field to change');

export const ClientId = z.object({ clientId: z.string().min(1).max(200) });

export const ListMail = z.strictObject({
  status: z.enum(['pending', 'sent', 'failed', 'discarded']).optional(),
  limit: fields.limit,
  cursor: fields.cursor,
});

export { UpdateSettings } from '../tenants/settings.ts';

// ── organizations ────────────────────────────────────────────────────────────

export const OrgId = z.object({ orgId: uuid });
export { PatchOrgAuthPolicy, PutOrgAuthPolicy } from '../auth-policy/policy.schemas.ts';
export { ApproveOrg, CreateOrg, PatchOrg, PutOrg, RejectOrg } from '../orgs/org.schemas.ts';

export const ListOrgs = z.strictObject({
  q: z.string().trim().min(1).max(200).optional(),
  status: z.enum(ORG_STATUSES).optional(),
  limit: fields.limit,
  cursor: fields.cursor,
});

const roleName = z
  .string()
  .min(1)
  .max(64, 'must be at most 64 characters')
  .regex(/^[a-z0-9][a-z0-9_:.-]*$/, 'use lowercase letters, digits, _ : . -');
const permission = z
  .string()
  .min(1)
  .max(100, 'must be at most 100 characters')
  .regex(/^[A-Za-z0-9_.:*-]+$/, 'use letters, digits and _ . : * - (such as invoices:read)');

export const MemberParams = z.object({ orgId: uuid, userId: uuid });
export const AddMember = z
  .strictObject({ user_id: uuid, role: roleName.optional(), roles: z.array(roleName).min(1).max(50).optional() })
  .refine((v) => !(v.role && v.roles), { message: 'give role or roles, not both', path: ['roles'] });
export const ChangeMember = z
  .strictObject({ role: roleName.optional(), roles: z.array(roleName).min(1).max(50).optional() })
  .refine((v) => Boolean(v.role) !== Boolean(v.roles), { message: 'give either role or roles', path: ['roles'] });
export const TransferOwnership = z.strictObject({ user_id: uuid });

export const RoleParams = z.object({ orgId: uuid, roleId: uuid });
export const CreateRole = z.strictObject({
  name: roleName,
  description: text(500).optional(),
  permissions: z.array(permission).max(100).optional(),
});
export const UpdateRole = z
  .strictObject({ description: text(500).nullable().optional(), permissions: z.array(permission).max(100).optional() })
  .refine((v) => Object.keys(v).length > 0, 'send at least one field to change');
export const DeleteRole = z.strictObject({ force: z.enum(['true', 'false']).optional() });

// ── teams ────────────────────────────────────────────────────────────────────

// The same slug rule as an organization's (orgs/slug.ts).
const teamSlug = slug;
const teamFields = { name: text(200).min(1, 'required'), slug: teamSlug.nullable().optional(), description: text(2000).nullable().optional() };
export const TeamParams = z.object({ orgId: uuid, teamId: uuid });
export const CreateTeam = z.strictObject(teamFields);
export const PatchTeam = z
  .strictObject({ ...teamFields, name: teamFields.name.optional(), slug: teamSlug.optional() })
  .refine((v) => Object.keys(v).length > 0, 'send at least one field to change');
export const TeamMemberParams = z.object({ orgId: uuid, teamId: uuid, userId: uuid });
export const AddTeamMember = z.strictObject({ user_id: uuid, roles: z.array(roleName).min(1).max(50).optional() });
export const ChangeTeamMember = z.strictObject({ roles: z.array(roleName).min(1).max(50) });
export const TeamRoleParams = z.object({ orgId: uuid, teamRoleId: uuid });

export const InvitationParams = z.object({ orgId: uuid, invitationId: uuid });
export const CreateInvitation = z.strictObject({
  email: userFields.email,
  role: roleName.default('member'),
  expires_in: z
    .number()
    .int()
    .min(60, 'must be at least 60 seconds')
    .max(30 * 86_400, 'must be at most 30 days')
    .optional(),
});

export const MintApiToken = z.strictObject({
  scopes: z
    .array(z.enum(['openid', 'profile', 'email', 'organizations', 'admin']))
    .min(1, 'give at least one scope')
    .max(10),
  expires_in: z
    .number()
    .int()
    .min(60, 'must be at least 60 seconds')
    .max(365 * 86_400, 'must be at most a year'),
  org_id: uuid.optional(),
});
export const ApiTokenParams = z.object({ userId: uuid, tokenId: uuid });
export const FactorParams = z.object({ userId: uuid, factorId: uuid });

// ── SSO ──────────────────────────────────────────────────────────────────────

export const DomainParams = z.object({ orgId: uuid, domain });
export const AddDomain = z.strictObject({ domain });
export const OverrideDomain = z.strictObject({ verified: z.boolean() });

const attributeName = z.string().min(1).max(200);
const connectionFields = {
  name: fields.name,
  enabled: z.boolean().optional(),
  auto_provision: z.boolean().optional(),
  jit_provisioning: z.boolean().optional(),
  default_role: roleName.optional(),
  attribute_mapping: z
    .strictObject({ email: attributeName, name: attributeName, given_name: attributeName, family_name: attributeName, groups: attributeName })
    .partial()
    .optional(),
  group_roles: z
    .record(z.string().min(1).max(200), roleName)
    .refine((m) => Object.keys(m).length <= 100, 'at most 100 groups')
    .optional(),
  issuer_url: httpUrl,
  client_id: z.string().min(1).max(500),
  client_secret: z.string().min(1).max(2000),
  scopes: z
    .array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'not a valid scope'))
    .min(1)
    .max(20)
    .refine((s) => s.includes('openid'), 'must include openid')
    .optional(),
};
export const ConnectionParams = z.object({ orgId: uuid, connectionId: uuid });
const pem = z
  .string()
  .max(20_000)
  .regex(/-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/, 'must be a PEM certificate');
const samlFields = {
  metadata_xml: z.string().min(1).max(500_000).optional(),
  metadata_url: httpUrl.optional(),
  idp_entity_id: z.string().min(1).max(1000).optional(),
  idp_sso_url: httpUrl.optional(),
  idp_certificates: z.array(pem).min(1).max(5).optional(),
  /** Require the assertion itself to be signed (default); false accepts a signed response instead. */
  want_assertions_signed: z.boolean().optional(),
  /** AuthnContextClassRef values that mean the IdP used MFA; null returns to the default list. */
  mfa_authn_contexts: z.array(z.string().trim().min(1).max(500)).max(MFA_AUTHN_CONTEXTS_MAX, `at most ${MFA_AUTHN_CONTEXTS_MAX} values`).nullable().optional(),
};
const { issuer_url: _i, client_id: _c, client_secret: _s, scopes: _sc, ...sharedConnectionFields } = connectionFields;
void [_i, _c, _s, _sc];
export const CreateConnection = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('oidc'), ...connectionFields }),
  z.strictObject({ type: z.literal('saml'), ...sharedConnectionFields, ...samlFields }),
]);
export const UpdateConnection = z
  .strictObject({
    ...connectionFields,
    name: connectionFields.name.optional(),
    issuer_url: connectionFields.issuer_url.optional(),
    client_id: connectionFields.client_id.optional(),
    client_secret: connectionFields.client_secret.optional(),
    ...samlFields,
  })
  .refine((v) => Object.keys(v).length > 0, 'send at least one field to change');

export const DirectoryParams = z.object({ orgId: uuid, directoryId: uuid });
const directoryFields = {
  name: fields.name,
  provider: z.enum(DIRECTORY_PROVIDERS).optional(),
  enabled: z.boolean().optional(),
  default_role: roleName.optional(),
  /** Group displayName → role; owner is refused. */
  group_roles: connectionFields.group_roles,
  sso_match: z.enum(SSO_MATCHES).optional(),
};
export const CreateDirectory = z.strictObject(directoryFields);
export const UpdateDirectory = z
  .strictObject({ ...directoryFields, name: directoryFields.name.optional() })
  .refine((v) => Object.keys(v).length > 0, 'send at least one field to change');

// ── setup links ──────────────────────────────────────────────────────────────

export const SetupLinkParams = z.object({ orgId: uuid, setupLinkId: uuid });
export const CreateSetupLink = z.strictObject({
  /** What the link sets up: `sso` (with its test sign-in), `directory_sync`, `domains`. */
  features: z.array(z.enum(SETUP_FEATURES)).min(1, 'give at least one feature').max(SETUP_FEATURES.length),
  /** Seconds; 7 days when absent. */
  expires_in: z
    .number()
    .int()
    .min(SETUP_LINK_MIN_TTL_S, `must be at least ${SETUP_LINK_MIN_TTL_S} seconds`)
    .max(SETUP_LINK_MAX_TTL_S, 'must be at most 30 days')
    .optional(),
});
