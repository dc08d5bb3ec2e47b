import type { DirectoryProvider } from '../scim/scim.table.ts';

/**
 * What the customer's IT admin does in their own identity provider, step by step, with exactly
 * the values Tessera gives (`{acs_url}` …). The setup link's pages show these steps with the
 * organization's values filled in; the guides in docs/guides/ (one per provider) say the same,
 * with placeholders: change one, change the other.
 */

/** The values a step may name, filled in by the page. */
export type SetupValue = 'acs_url' | 'entity_id' | 'metadata_url' | 'redirect_uri' | 'scim_base_url';

export const SSO_PROVIDER_IDS = ['okta', 'entra', 'google', 'saml', 'oidc'] as const;
export type SsoProviderId = (typeof SSO_PROVIDER_IDS)[number];

export interface SsoProviderGuide {
  id: SsoProviderId;
  name: string;
  protocol: 'saml' | 'oidc';
  /** The guide in docs/guides/ that says the same. */
  guide: string;
  steps: string[];
  /** What to bring back from the IdP to the form below the steps. */
  bringBack: string;
}

export const SSO_PROVIDERS: readonly SsoProviderGuide[] = [
  {
    id: 'okta',
    name: 'Okta',
    protocol: 'saml',
    guide: 'sso-okta.md',
    steps: [
      'In the Okta Admin Console, open Applications › Applications and choose Create App Integration. Pick SAML 2.0, then Next.',
      'Name the app (your application’s name), then Next.',
      'Single sign-on URL: {acs_url} (leave “Use this for Recipient URL and Destination URL” checked).',
      'Audience URI (SP Entity ID): {entity_id}',
      'Name ID format: EmailAddress. Application username: Email.',
      'Attribute Statements: add email = user.email and name = user.displayName (optional: given_name = user.firstName, family_name = user.lastName).',
      'Group Attribute Statements (optional, for role mapping): name groups, filter “Matches regex” .* (or only the groups that matter).',
      'Next, then “This is an internal app that we have created”, then Finish.',
      'On the app’s Sign On tab, copy the Metadata URL (under SAML 2.0 › Metadata details) and paste it below.',
      'On the Assignments tab, assign the people or groups who may sign in.',
    ],
    bringBack: 'the Metadata URL from the app’s Sign On tab',
  },
  {
    id: 'entra',
    name: 'Microsoft Entra ID',
    protocol: 'saml',
    guide: 'sso-microsoft-entra-id.md',
    steps: [
      'In the Microsoft Entra admin center, open Enterprise applications › New application › Create your own application. Name it, choose “Integrate any other application you don’t find in the gallery (Non-gallery)”, then Create.',
      'Open Single sign-on and choose SAML.',
      'Basic SAML Configuration › Edit. Identifier (Entity ID): {entity_id}',
      'Reply URL (Assertion Consumer Service URL): {acs_url}. Save.',
      'Attributes & Claims: keep the defaults (the email address claim carries the user’s mail). Optional, for role mapping: Add a group claim.',
      'SAML Certificates: copy the App Federation Metadata Url and paste it below.',
      'Users and groups: assign the people or groups who may sign in.',
    ],
    bringBack: 'the App Federation Metadata Url from the SAML Certificates section',
  },
  {
    id: 'google',
    name: 'Google Workspace',
    protocol: 'saml',
    guide: 'sso-google-workspace.md',
    steps: [
      'In the Google Admin console, open Apps › Web and mobile apps › Add app › Add custom SAML app. Name it, then Continue.',
      'On “Google Identity Provider details”, choose Download Metadata (option 1), then Continue. Keep the file: you paste its content below.',
      'ACS URL: {acs_url}',
      'Entity ID: {entity_id}',
      'Name ID format: EMAIL. Name ID: Basic Information › Primary email. Continue.',
      'Attribute mapping: Primary email → email, First name → given_name, Last name → family_name. Optional, for role mapping: Group membership → groups. Finish.',
      'Open the app’s User access and turn it ON for everyone, or for the organizational units and groups who may sign in.',
      'Paste the content of the downloaded metadata file (GoogleIDPMetadata.xml) below.',
    ],
    bringBack: 'the content of the metadata file you downloaded',
  },
  {
    id: 'saml',
    name: 'Another SAML 2.0 provider',
    protocol: 'saml',
    guide: 'sso-generic-saml.md',
    steps: [
      'Create a SAML 2.0 application (service provider) in your identity provider.',
      'If it can read a service provider’s metadata, give it {metadata_url} (it works once you saved the form below) — or enter the values by hand:',
      'ACS URL (Reply URL, Single sign-on URL), HTTP-POST binding: {acs_url}',
      'Entity ID (Audience, Identifier): {entity_id}',
      'Sign the assertion with SHA-256. The NameID should be stable for the person; send their email address as the email attribute (or as the NameID), and name, given_name, family_name and groups if you have them.',
      'Assign the people or groups who may sign in, then paste the identity provider’s metadata URL or XML below.',
    ],
    bringBack: 'your identity provider’s metadata URL or XML',
  },
  {
    id: 'oidc',
    name: 'Another OpenID Connect provider',
    protocol: 'oidc',
    guide: 'sso-generic-oidc.md',
    steps: [
      'Register a web application (confidential client) in your OpenID Provider, with the authorization code flow.',
      'Redirect URI (sign-in redirect URI, callback URL): {redirect_uri}',
      'Allow the scopes openid, email and profile. The ID token or userinfo must say email_verified: true.',
      'Copy the issuer URL (its /.well-known/openid-configuration must load), the client ID and the client secret, and enter them below.',
    ],
    bringBack: 'the issuer URL, client ID and client secret',
  },
];

export interface DirectoryProviderGuide {
  id: DirectoryProvider;
  name: string;
  /** Whether it pushes users and groups to a custom SCIM app at all. */
  pushes: boolean;
  guide: string;
  steps: string[];
}

/** Steps shown once the directory exists (its base URL is known; the token is shown once beside them). */
export const DIRECTORY_PROVIDERS_GUIDES: readonly DirectoryProviderGuide[] = [
  {
    id: 'okta',
    name: 'Okta',
    pushes: true,
    guide: 'sso-okta.md',
    steps: [
      'Open the app you use to sign in (Applications › Applications), then General › App Settings › Edit. Provisioning: SCIM. Save.',
      'Provisioning tab › Integration › Edit. SCIM connector base URL: {scim_base_url}',
      'Unique identifier field for users: userName. Supported provisioning actions: Push New Users, Push Profile Updates, Push Groups.',
      'Authentication Mode: HTTP Header. Authorization: the token shown here (Bearer). Test Connector Configuration, then Save.',
      'Provisioning tab › To App › Edit: enable Create Users, Update User Attributes and Deactivate Users. Save.',
      'Push Groups tab: push the groups whose members should be in the organization.',
    ],
  },
  {
    id: 'entra',
    name: 'Microsoft Entra ID',
    pushes: true,
    guide: 'sso-microsoft-entra-id.md',
    steps: [
      'Open the enterprise application you use to sign in, then Provisioning › Get started (or New configuration).',
      'Provisioning Mode: Automatic. Tenant URL: {scim_base_url}',
      'Secret Token: the token shown here. Test Connection, then Save.',
      'Mappings › Provision Microsoft Entra ID Users: userPrincipalName → userName, mail → emails[type eq "work"].value, objectId → externalId (the defaults, with externalId added).',
      'Settings › Scope: “Sync only assigned users and groups”. Provisioning Status: On. Save.',
    ],
  },
  {
    id: 'jumpcloud',
    name: 'JumpCloud',
    pushes: true,
    guide: 'directory-sync-jumpcloud.md',
    steps: [
      'In the JumpCloud Admin Portal, open SSO Applications and the application you use to sign in (or + Add New Application › Custom Application with “Export users to this app (Identity Management)” checked).',
      'Identity Management tab. API type: SCIM API 2.0. Base URL: {scim_base_url}',
      'Token Key: the token shown here. Test Connection, then Activate.',
      'Group management: on, if groups should reach the organization. Save.',
      'User Groups tab: bind the groups whose members should be in the organization.',
    ],
  },
  {
    id: 'google',
    name: 'Google Workspace',
    pushes: false,
    guide: 'sso-google-workspace.md',
    steps: [],
  },
  {
    id: 'generic',
    name: 'Another SCIM 2.0 client',
    pushes: true,
    guide: 'setup-links.md',
    steps: [
      'In your directory, add a SCIM 2.0 provisioning target (an “app” or “connector”).',
      'SCIM base URL (endpoint, tenant URL): {scim_base_url}',
      'Authentication: a bearer token (HTTP header Authorization: Bearer …) — the token shown here.',
      'Map userName to a stable, unique login (usually the email), emails to the work email, and externalId to the directory’s own id. Push groups if roles should follow them.',
    ],
  },
];

/** Why Google Workspace gets no directory: said plainly on the page and in the guide. */
export const GOOGLE_NO_SCIM =
  'Google Workspace does not push users or groups to custom SCIM apps: it provisions only to apps from its own catalog. Add people by single sign-on (accounts are created at their first sign-in on a verified domain) or by invitation instead.';

export const ssoProvider = (id: string) => SSO_PROVIDERS.find((p) => p.id === id);
export const directoryProvider = (id: string) => DIRECTORY_PROVIDERS_GUIDES.find((p) => p.id === id);

/** A step as the page shows it: text, and the values to copy in their place. */
export type StepPart = { text: string } | { value: string; name: SetupValue };

export function fillStep(step: string, values: Partial<Record<SetupValue, string>>): StepPart[] {
  const parts: StepPart[] = [];
  let last = 0;
  for (const m of step.matchAll(/\{(acs_url|entity_id|metadata_url|redirect_uri|scim_base_url)\}/g)) {
    if (m.index > last) parts.push({ text: step.slice(last, m.index) });
    const name = m[1] as SetupValue;
    parts.push({ value: values[name] ?? '', name });
    last = m.index + m[0].length;
  }
  if (last < step.length) parts.push({ text: step.slice(last) });
  return parts;
}
