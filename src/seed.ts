import type { App } from './app.ts';
import { randomSecret } from './crypto/secrets.ts';

export const SAMPLE_APP_REDIRECT = 'http://localhost:3001/callback';

/**
 * On an empty database: the `demo` tenant, an admin user and a client for the sample app, so a
 * new user can sign in within minutes. Returns the secrets to print once, or undefined when the
 * database already had tenants.
 */
export async function seedDemo(app: App) {
  const { tenants, clients, runtimes } = app.services;
  if (!(await tenants.isEmpty())) return undefined;
  const adminEmail = 'admin@demo.local';
  const adminPassword = randomSecret(12);
  const created = await tenants.create({ slug: 'demo', name: 'Demo', adminEmail, adminPassword, settings: { registration_enabled: true } });
  const runtime = await runtimes.forSlug('demo');
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
    },
    async (_t, metadata) => runtime!.provider.Client.validate(metadata as never),
  );
  app.log.info({ tenant: 'demo', issuer: created.issuer }, 'demo tenant created');
  return {
    issuer: created.issuer,
    adminApiKey: created.admin_api_key,
    adminEmail,
    adminPassword,
    clientId: row.client_id,
    clientSecret: secret!,
  };
}
