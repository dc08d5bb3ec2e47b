import type { App } from './app.ts';
import { randomSecret } from './crypto/secrets.ts';

export const SAMPLE_APP_REDIRECT = 'http://localhost:3001/callback';

export const DEMO_SLUG = 'demo';
export const DEMO_ADMIN_EMAIL = 'admin@demo.local';

export interface DemoSecrets {
  issuer: string;
  adminApiKey: string;
  adminEmail: string;
  adminPassword: string;
  clientId: string;
  clientSecret: string;
}

/**
 * What a start with SEED_DEMO found: it created the demo tenant (the secrets to print once);
 * another instance starting at the same moment created it; or the database had tenants already
 * (`demo`: whether the demo tenant is one of them).
 */
export type SeedOutcome = { created: DemoSecrets } | { createdElsewhere: true } | { existing: { demo: boolean } };

/**
 * On an empty database: the `demo` tenant, an admin user and a client for the sample app, so a
 * new user can sign in within minutes. Run it once the server listens: the secrets are shown only
 * once, so nothing may stop the start after they are made.
 */
export async function seedDemo(app: App): Promise<SeedOutcome> {
  const { tenants, clients, runtimes } = app.services;
  const existing = async () => ({ existing: { demo: (await tenants.findBySlug(DEMO_SLUG)) !== undefined } });
  // The usual case, a database with tenants, without taking the lock.
  if (!(await tenants.isEmpty())) return existing();
  const adminEmail = DEMO_ADMIN_EMAIL;
  const adminPassword = randomSecret(12);
  const created = await tenants.createIfNone({ slug: DEMO_SLUG, name: 'Demo', adminEmail, adminPassword, settings: { registration_enabled: true } });
  if (!created) {
    // Empty a moment ago, not under the lock: an instance starting beside this one seeded it.
    const found = await existing();
    return found.existing.demo ? { createdElsewhere: true } : found;
  }
  const runtime = await runtimes.forSlug(DEMO_SLUG);
  const { row, secret } = await clients.create(
    created.tenant.id,
    {
      name: 'Sample app',
      redirect_uris: [SAMPLE_APP_REDIRECT],
      post_logout_redirect_uris: ['http://localhost:3001/'],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_basic',
      application_type: 'web',
      scopes: ['openid', 'profile', 'email', 'offline_access', 'organizations'],
      require_consent: false,
      organization_usage: 'allow',
      organization_ids: [],
      claims_format: 'tessera',
    },
    async (_t, metadata) => runtime!.provider.Client.validate(metadata as never),
  );
  app.log.info({ tenant: DEMO_SLUG, issuer: created.issuer }, 'demo tenant created');
  return {
    created: {
      issuer: created.issuer,
      adminApiKey: created.admin_api_key,
      adminEmail,
      adminPassword,
      clientId: row.client_id,
      clientSecret: secret!,
    },
  };
}
