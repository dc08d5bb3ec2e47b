/**
 * What the service provider says about itself (RFC 7643 §5–7): the features it has and the
 * attributes it understands — honestly, since directories decide what to send from it.
 */

export const SCHEMA = {
  user: 'urn:ietf:params:scim:schemas:core:2.0:User',
  group: 'urn:ietf:params:scim:schemas:core:2.0:Group',
  enterpriseUser: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
  listResponse: 'urn:ietf:params:scim:api:messages:2.0:ListResponse',
  patchOp: 'urn:ietf:params:scim:api:messages:2.0:PatchOp',
  serviceProviderConfig: 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig',
  resourceType: 'urn:ietf:params:scim:schemas:core:2.0:ResourceType',
  schema: 'urn:ietf:params:scim:schemas:core:2.0:Schema',
} as const;

/** The most resources one page lists, whatever `count` asks. */
export const MAX_PAGE_SIZE = 200;

/** The largest request body read (a group's full member list in one PUT fits). */
export const MAX_BODY = '1mb';
const MAX_BODY_BYTES = 1024 * 1024;

export function serviceProviderConfig(base: string) {
  return {
    schemas: [SCHEMA.serviceProviderConfig],
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: MAX_BODY_BYTES },
    filter: { supported: true, maxResults: MAX_PAGE_SIZE },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: true },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'Bearer token',
        description: "The directory's bearer token, shown once when the directory is created or its token rotated.",
        primary: true,
      },
    ],
    meta: { resourceType: 'ServiceProviderConfig', location: `${base}/ServiceProviderConfig` },
  };
}

export function resourceTypes(base: string) {
  return [
    {
      schemas: [SCHEMA.resourceType],
      id: 'User',
      name: 'User',
      endpoint: '/Users',
      description: 'A person of the organization: an account of the tenant and its membership',
      schema: SCHEMA.user,
      schemaExtensions: [{ schema: SCHEMA.enterpriseUser, required: false }],
      meta: { resourceType: 'ResourceType', location: `${base}/ResourceTypes/User` },
    },
    {
      schemas: [SCHEMA.resourceType],
      id: 'Group',
      name: 'Group',
      endpoint: '/Groups',
      description: "A directory group; its displayName maps to an organization role by the directory's group mapping",
      schema: SCHEMA.group,
      meta: { resourceType: 'ResourceType', location: `${base}/ResourceTypes/Group` },
    },
  ];
}

interface Attr {
  name: string;
  type: 'string' | 'boolean' | 'complex' | 'reference' | 'dateTime';
  multiValued?: boolean;
  required?: boolean;
  caseExact?: boolean;
  mutability?: 'readOnly' | 'readWrite' | 'immutable' | 'writeOnly';
  returned?: 'always' | 'never' | 'default' | 'request';
  uniqueness?: 'none' | 'server' | 'global';
  subAttributes?: Attr[];
  referenceTypes?: string[];
  description?: string;
}

/** The RFC's defaults filled in, so each attribute below says only what differs. */
function attr(a: Attr): Record<string, unknown> {
  return {
    name: a.name,
    type: a.type,
    multiValued: a.multiValued ?? false,
    description: a.description ?? '',
    required: a.required ?? false,
    caseExact: a.caseExact ?? false,
    mutability: a.mutability ?? 'readWrite',
    returned: a.returned ?? 'default',
    uniqueness: a.uniqueness ?? 'none',
    ...(a.subAttributes ? { subAttributes: a.subAttributes.map(attr) } : {}),
    ...(a.referenceTypes ? { referenceTypes: a.referenceTypes } : {}),
  };
}

const str = (name: string, extra: Partial<Attr> = {}): Attr => ({ name, type: 'string', ...extra });
const multi = (name: string, description: string): Attr => ({
  name,
  type: 'complex',
  multiValued: true,
  description,
  subAttributes: [str('value'), str('display'), str('type'), { name: 'primary', type: 'boolean' }],
});

const USER_ATTRIBUTES: Attr[] = [
  str('userName', {
    required: true,
    uniqueness: 'server',
    description: 'Unique in the directory without regard to case; an email address when no email is given',
  }),
  {
    name: 'name',
    type: 'complex',
    subAttributes: [str('formatted'), str('familyName'), str('givenName'), str('middleName'), str('honorificPrefix'), str('honorificSuffix')],
  },
  str('displayName'),
  str('nickName'),
  { name: 'profileUrl', type: 'reference', referenceTypes: ['external'] },
  str('title'),
  str('userType'),
  str('preferredLanguage'),
  str('locale'),
  str('timezone'),
  { name: 'active', type: 'boolean', description: 'false ends the membership in the organization and signs the person out of it' },
  str('password', { mutability: 'writeOnly', returned: 'never', description: 'Ignored and never stored: people sign in through SSO' }),
  multi('emails', "The primary (else work, else first) email is the account's email address; its domain must be verified"),
  multi('phoneNumbers', 'Stored and returned as sent'),
  multi('ims', 'Stored and returned as sent'),
  multi('photos', 'Stored and returned as sent'),
  {
    name: 'addresses',
    type: 'complex',
    multiValued: true,
    description: 'Stored and returned as sent',
    subAttributes: [
      str('formatted'),
      str('streetAddress'),
      str('locality'),
      str('region'),
      str('postalCode'),
      str('country'),
      str('type'),
      { name: 'primary', type: 'boolean' },
    ],
  },
  multi('entitlements', 'Stored and returned as sent'),
  multi('roles', 'Stored and returned as sent: roles in the organization follow the groups'),
  multi('x509Certificates', 'Stored and returned as sent'),
  {
    name: 'groups',
    type: 'complex',
    multiValued: true,
    mutability: 'readOnly',
    description: 'Not returned: group membership is read from the Groups',
    subAttributes: [str('value', { mutability: 'readOnly' }), str('display', { mutability: 'readOnly' })],
  },
];

const GROUP_ATTRIBUTES: Attr[] = [
  str('displayName', {
    required: true,
    uniqueness: 'server',
    description: "Unique in the directory without regard to case; mapped to a role by the directory's group mapping",
  }),
  {
    name: 'members',
    type: 'complex',
    multiValued: true,
    description: 'Users of this directory, by their id',
    subAttributes: [
      str('value', { mutability: 'immutable' }),
      str('display', { mutability: 'immutable' }),
      { name: '$ref', type: 'reference', mutability: 'immutable', referenceTypes: ['User'] },
      str('type', { mutability: 'immutable' }),
    ],
  },
];

const ENTERPRISE_ATTRIBUTES: Attr[] = [
  str('employeeNumber'),
  str('costCenter'),
  str('organization'),
  str('division'),
  str('department'),
  {
    name: 'manager',
    type: 'complex',
    subAttributes: [str('value'), { name: '$ref', type: 'reference', referenceTypes: ['User'] }, str('displayName', { mutability: 'readOnly' })],
  },
];

export function schemas(base: string) {
  const schema = (id: string, name: string, description: string, attributes: Attr[]) => ({
    schemas: [SCHEMA.schema],
    id,
    name,
    description,
    attributes: attributes.map(attr),
    meta: { resourceType: 'Schema', location: `${base}/Schemas/${id}` },
  });
  return [
    schema(SCHEMA.user, 'User', 'User Account', USER_ATTRIBUTES),
    schema(SCHEMA.group, 'Group', 'Group', GROUP_ATTRIBUTES),
    schema(SCHEMA.enterpriseUser, 'EnterpriseUser', 'Enterprise User (stored and returned as sent)', ENTERPRISE_ATTRIBUTES),
  ];
}
