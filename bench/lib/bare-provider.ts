/**
 * A bare oidc-provider — the same version Tessera runs, its in-memory adapter, an ES256 key and
 * JWT access tokens for one resource, as Tessera issues them — for the side-by-side rows. Started
 * as its own process by the bench; prints one JSON line `{ port, refreshTokens, opaqueToken }`
 * when it listens.
 *
 *   node --import tsx bench/lib/bare-provider.ts <port> <chains>
 */
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] ?? 0);
const chains = Number(process.argv[3] ?? 16);
const issuer = `http://127.0.0.1:${port}`;
const audience = `${issuer}/api`;

const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig', kid: 'bare' };

/**
 * oidc-provider's bundled development adapter keeps 1,000 entries (an LRU): a long run evicts
 * the grants this process seeded. A Map per model, without eviction, is the "in-memory adapter"
 * the comparison means.
 */
class MapAdapter {
  private static readonly stores = new Map<string, Map<string, { payload: Record<string, unknown>; exp: number }>>();
  private readonly store: Map<string, { payload: Record<string, unknown>; exp: number }>;
  constructor(private readonly model: string) {
    this.store = MapAdapter.stores.get(model) ?? new Map();
    MapAdapter.stores.set(model, this.store);
  }
  private static get(model: string) {
    return MapAdapter.stores.get(model);
  }
  async upsert(id: string, payload: Record<string, unknown>, expiresIn: number) {
    this.store.set(id, { payload, exp: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    if (this.model === 'Session' && typeof payload.uid === 'string') {
      const byUid = MapAdapter.stores.get('Session:uid') ?? new Map();
      byUid.set(payload.uid, { payload: { id }, exp: Infinity });
      MapAdapter.stores.set('Session:uid', byUid);
    }
  }
  async find(id: string) {
    const e = this.store.get(id);
    return e && e.exp > Date.now() ? e.payload : undefined;
  }
  async findByUid(uid: string) {
    const ref = MapAdapter.get('Session:uid')?.get(uid);
    return ref ? this.find(ref.payload.id as string) : undefined;
  }
  async findByUserCode() {
    return undefined;
  }
  async consume(id: string) {
    const e = this.store.get(id);
    if (e) e.payload = { ...e.payload, consumed: Math.floor(Date.now() / 1000) };
  }
  async destroy(id: string) {
    this.store.delete(id);
  }
  async revokeByGrantId(grantId: string) {
    for (const store of MapAdapter.stores.values()) for (const [id, e] of store) if (e.payload.grantId === grantId) store.delete(id);
  }
}

export const BARE_CLIENTS = {
  machine: { client_id: 'machine', client_secret: 'machine-secret' },
  web: { client_id: 'web', client_secret: 'web-secret', redirect_uri: 'http://127.0.0.1:9/cb' },
};

const provider = new Provider(issuer, {
  adapter: MapAdapter as never,
  clients: [
    { ...BARE_CLIENTS.machine, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic' },
    {
      client_id: BARE_CLIENTS.web.client_id,
      client_secret: BARE_CLIENTS.web.client_secret,
      redirect_uris: [BARE_CLIENTS.web.redirect_uri],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [jwk] },
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: 'openid', audience, accessTokenTTL: 900, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } }),
    },
  },
  ttl: {
    AccessToken: 900,
    ClientCredentials: 900,
    RefreshToken: 14 * 86_400,
    Grant: 14 * 86_400,
    Session: 14 * 86_400,
    IdToken: 3600,
    AuthorizationCode: 60,
    Interaction: 3600,
  },
  issueRefreshToken: async () => true,
  rotateRefreshToken: true,
});

// Refresh-token chains made through the provider's own models (a sign-in each, without pages).
const client = (await provider.Client.find('web'))!;
const refreshTokens: string[] = [];
for (let i = 0; i < chains; i++) {
  const grant = new provider.Grant({ accountId: `user-${i}`, clientId: 'web' });
  grant.addOIDCScope('openid');
  grant.addResourceScope(audience, 'openid');
  const grantId = await grant.save();
  const rt = new provider.RefreshToken({ client, accountId: `user-${i}`, grantId, scope: 'openid', gty: 'authorization_code', resource: audience } as never);
  refreshTokens.push(await rt.save());
}
// An opaque, stored token to introspect (oidc-provider cannot introspect its JWT access tokens),
// on a grant of its own that no refresh chain touches.
const introspected = new provider.Grant({ accountId: 'introspected', clientId: 'web' });
introspected.addOIDCScope('openid');
introspected.addResourceScope(audience, 'openid');
const introspectedGrant = await introspected.save();
const opaqueToken = await new provider.RefreshToken({
  client,
  accountId: 'introspected',
  grantId: introspectedGrant,
  scope: 'openid',
  gty: 'authorization_code',
  resource: audience,
} as never).save();

const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port, refreshTokens, opaqueToken })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
