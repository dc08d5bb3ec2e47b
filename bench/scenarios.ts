import { generateKeyPair, SignJWT } from 'jose';
import { sql } from 'kysely';
import * as samlify from 'samlify';
import { FactorService } from '../src/factors/factor.service.ts';
import { base32Decode, TOTP_STEP_SECONDS, totpAt, totpStep } from '../src/factors/totp.ts';
import argon2 from '../src/users/argon2.ts';
import { ARGON2_PARAMS } from '../src/users/passwords.ts';
import { TestSamlIdp } from '../test/helpers/saml-idp.ts';
import { logout, portalSignIn, refresh, signIn, startSignIn, type WebClient } from './lib/flows.ts';
import { basic, expectStatus, form, send } from './lib/http.ts';
import type { Op } from './lib/load.ts';
import { Pool } from './lib/pool.ts';
import { adminClient, type Tessera } from './lib/tessera.ts';
import { scimScenarios } from './scim-scenarios.ts';

/** What a scenario runs against: Tessera's own process, the bare provider's, or this process (crypto floors). */
export type Target = 'tessera' | 'bare' | 'local';

export interface Prepared {
  op: Op;
  target: Target;
}

export interface BenchEnv {
  tessera: Tessera;
  slug: string;
  issuer: string;
  admin: ReturnType<typeof adminClient>;
  apiKey: string;
  /** Small seeds and short runs: the smoke test of `npm test`. */
  smoke: boolean;
  concurrency: number;
  bare?: { url: string; refreshTokens: string[]; opaqueToken: string };
  progress(message: string): void;
}

export interface Scenario {
  name: string;
  /** Its performance goal (docs/performance.md, "The goals"), printed beside the figure. */
  goal?: { opsPerCpuSecond?: number; p99Ms?: number };
  /** A floor (the cost of one part alone): measured at saturation only. */
  floor?: true;
  prepare(env: BenchEnv): Promise<Prepared[]>;
}

/** The tenant every scenario runs in (`bench`), made on a fresh Tessera, and what scenarios get. */
export async function benchEnv(tessera: Tessera, opts: Pick<BenchEnv, 'smoke' | 'concurrency' | 'bare' | 'progress'>): Promise<BenchEnv> {
  const slug = 'bench';
  const created = await tessera.tenants.create({ slug, name: 'Bench', adminEmail: 'admin@bench.test', adminPassword: 'bench admin password 9' });
  return {
    tessera,
    slug,
    issuer: `${tessera.url}/t/${slug}`,
    admin: adminClient(tessera.url, slug, created.admin_api_key),
    apiKey: created.admin_api_key,
    ...opts,
  };
}

const PASSWORD = 'bench password 4 lantern';
const REDIRECT = 'http://127.0.0.1:9/cb';
const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;

// ── shared fixtures, made once per run ──────────────────────────────────────

/** Per Tessera instance (bench/ab.ts drives two in one process), so each seeds its own. */
const once = new WeakMap<Tessera, Map<string, Promise<unknown>>>();
function memo<T>(env: BenchEnv, key: string, make: () => Promise<T>): Promise<T> {
  let made = once.get(env.tessera);
  if (!made) {
    made = new Map();
    once.set(env.tessera, made);
  }
  if (!made.has(key)) made.set(key, make());
  return made.get(key) as Promise<T>;
}

const machineClient = (env: BenchEnv) =>
  memo(env, 'machine', async () => {
    const c = await env.admin<{ client_id: string; client_secret: string }>('POST', '/clients', {
      name: 'bench machine',
      grant_types: ['client_credentials'],
      scopes: ['openid'],
    });
    return c;
  });

const webClient = (env: BenchEnv, organizationUsage: 'deny' | 'allow' = 'deny') =>
  memo(env, `web:${organizationUsage}`, async (): Promise<WebClient> => {
    const c = await env.admin<{ client_id: string; client_secret: string }>('POST', '/clients', {
      name: `bench web ${organizationUsage}`,
      redirect_uris: [REDIRECT],
      post_logout_redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      require_consent: false,
      organization_usage: organizationUsage,
    });
    return { client_id: c.client_id, client_secret: c.client_secret, redirect_uri: REDIRECT };
  });

/** The first `n` of 20 users with a password (argon2 at Tessera's parameters, hashed by Tessera). */
const users = async (env: BenchEnv, n: number) => (await allUsers(env)).slice(0, n);
const allUsers = (env: BenchEnv) =>
  memo(env, 'users', async () => {
    const out: Array<{ id: string; email: string; password: string }> = [];
    for (let i = 0; i < 20; i++) {
      const email = `bench-${i}@bench.test`;
      const u = await env.admin<{ id: string }>('POST', '/users', { email, password: PASSWORD, email_verified: true });
      out.push({ id: u.id, email, password: PASSWORD });
    }
    return out;
  });

const userAccessToken = (env: BenchEnv) =>
  memo(env, 'user-at', async () => {
    const [user] = await users(env, 1);
    const { tokens } = await signIn(env.tessera.url, env.issuer, await webClient(env), user!);
    return tokens.access_token;
  });

/** A person with a password and a confirmed authenticator app, and the last time step their code was used. */
interface TotpPerson {
  email: string;
  password: string;
  key: Buffer;
  lastStep: number;
}

/**
 * People with an authenticator app: the same password hash as `users` (copied, so seeding costs no
 * argon2), each with a TOTP factor enrolled through Tessera's own service. A code is accepted once,
 * so a person signs in at most once per 30-second step: there are enough of them that round-robin
 * never waits at the sign-in rates this machine reaches.
 */
const totpPeople = (env: BenchEnv) =>
  memo(env, 'totp-people', async (): Promise<TotpPerson[]> => {
    const n = env.smoke ? 200 : 4_000;
    const [template] = await users(env, 1);
    const db = env.tessera.connection.db;
    const tenantId = (await db.selectFrom('tenants').select('id').where('slug', '=', env.slug).executeTakeFirstOrThrow()).id;
    const hash = (
      await db.selectFrom('users').select('password_hash').where('tenant_id', '=', tenantId).where('email', '=', template!.email).executeTakeFirstOrThrow()
    ).password_hash;
    await sql`INSERT INTO users (tenant_id, email, email_key, email_verified, password_hash)
      SELECT ${tenantId}::uuid, 'totp-' || g || '@bench.test', 'totp-' || g || '@bench.test', true, ${hash} FROM generate_series(1, ${n}::int) g`.execute(db);
    const ids = await db.selectFrom('users').select(['id', 'email']).where('tenant_id', '=', tenantId).where('email', 'like', 'totp-%').execute();
    const factors = new FactorService({ db, encryptionKey: env.tessera.encryptionKey });
    const people: TotpPerson[] = [];
    for (let i = 0; i < ids.length; i += 16) {
      people.push(
        ...(await Promise.all(
          ids.slice(i, i + 16).map(async ({ id, email }) => {
            const enrollment = await factors.startTotp(tenantId, id, 'Bench', email);
            const key = base32Decode(enrollment.secret);
            if (!(await factors.confirmTotp(tenantId, id, enrollment.factorId, totpAt(key, Date.now() / 1000)))) throw new Error('TOTP enrollment refused');
            return { email, password: PASSWORD, key, lastStep: -1 };
          }),
        )),
      );
      if (i % 1000 === 0) env.progress(`authenticator apps: ${i} of ${ids.length}`);
    }
    // Enrollment spent this step's code: let the first sign-ins use it again.
    await db.updateTable('user_factors').set({ last_totp_step: null }).where('tenant_id', '=', tenantId).execute();
    return people;
  });

/** The code a person types now: this step's, or the next one's (accepted within the skew) when this step's is spent. */
function nextCode(person: TotpPerson): string {
  const now = totpStep(Date.now() / 1000);
  const step = Math.max(now, person.lastStep + 1);
  if (step > now + 1) throw new Error('every code of this window is spent: seed more people with an authenticator app');
  person.lastStep = step;
  return totpAt(person.key, step * TOTP_STEP_SECONDS);
}

// ── the scenarios ───────────────────────────────────────────────────────────

export const SCENARIOS: Scenario[] = [
  {
    name: 'AuthorizationCode',
    goal: { opsPerCpuSecond: 30 },
    async prepare(env) {
      const client = await webClient(env);
      const people = await users(env, 20);
      let n = 0;
      return [
        {
          target: 'tessera',
          op: async () => {
            const { tokens, jar } = await signIn(env.tessera.url, env.issuer, client, pick(people));
            // One sign-in in ten also signs out, as keycloak-benchmark's scenario does.
            if (++n % 10 === 0) await logout(env.tessera.url, env.issuer, client, tokens.id_token!, jar, REDIRECT);
          },
        },
      ];
    },
  },
  {
    // Password and a code from an authenticator app: the cost of the second step on a sign-in.
    name: 'AuthorizationCode.totp',
    goal: { opsPerCpuSecond: 30 },
    async prepare(env) {
      const client = await webClient(env);
      const people = await totpPeople(env);
      let n = 0;
      return [
        {
          target: 'tessera',
          op: async () => {
            const person = people[n++ % people.length]!;
            const { tokens, jar } = await signIn(env.tessera.url, env.issuer, client, { ...person, totpCode: () => nextCode(person) });
            if (n % 10 === 0) await logout(env.tessera.url, env.issuer, client, tokens.id_token!, jar, REDIRECT);
          },
        },
      ];
    },
  },
  {
    name: 'ClientSecret',
    goal: { opsPerCpuSecond: 1500 },
    async prepare(env) {
      const c = await machineClient(env);
      const auth = basic(c.client_id, c.client_secret);
      const prepared: Prepared[] = [
        {
          target: 'tessera',
          op: async () =>
            void expectStatus(await send(`${env.issuer}/token`, { body: 'grant_type=client_credentials', headers: { authorization: auth } }), 200),
        },
      ];
      if (env.bare) {
        const bareAuth = basic('machine', 'machine-secret');
        prepared.push({
          target: 'bare',
          op: async () =>
            void expectStatus(await send(`${env.bare!.url}/token`, { body: 'grant_type=client_credentials', headers: { authorization: bareAuth } }), 200),
        });
      }
      return prepared;
    },
  },
  {
    name: 'ClientSecretNewConnection',
    async prepare(env) {
      const c = await machineClient(env);
      const auth = basic(c.client_id, c.client_secret);
      return [
        {
          target: 'tessera',
          op: async () =>
            void expectStatus(
              await send(`${env.issuer}/token`, { body: 'grant_type=client_credentials', headers: { authorization: auth }, agent: false }),
              200,
            ),
        },
      ];
    },
  },
  {
    name: 'RefreshToken',
    goal: { opsPerCpuSecond: 600 },
    async prepare(env) {
      const client = await webClient(env);
      const people = await users(env, 20);
      // One sign-in to eight refreshes: a chain is a sign-in, refreshed eight times (rotating),
      // then dropped for a new sign-in. Only refreshes count as operations; the sign-ins' CPU is
      // in the Tessera process's figure, as in keycloak-benchmark.
      const chains = new Pool(async () => ({ rt: (await signIn(env.tessera.url, env.issuer, client, pick(people))).tokens.refresh_token!, left: 8 }));
      const prepared: Prepared[] = [
        {
          target: 'tessera',
          op: () =>
            chains.use(async (chain) => {
              const next = await refresh(env.issuer, client, chain.rt);
              return chain.left > 1 ? { rt: next.refresh_token!, left: chain.left - 1 } : undefined;
            }),
        },
      ];
      return prepared;
    },
  },
  {
    // The refresh alone, for the side-by-side ratio: chains rotate forever, so no sign-in (and
    // no argon2) is in the figure — the bare provider's chains are made without one too.
    name: 'RefreshToken.rotate',
    goal: { opsPerCpuSecond: 600 },
    async prepare(env) {
      const client = await webClient(env);
      const people = await users(env, 20);
      // Every chain is made before measuring and no other ever is, so the sign-ins stay out of
      // the figures: an operation finding all in use waits for one (Pool's max).
      const size = env.concurrency * 4;
      const chains = new Pool(async () => (await signIn(env.tessera.url, env.issuer, client, pick(people))).tokens.refresh_token!, size);
      await Promise.all(Array.from({ length: size }, () => chains.use(async (rt) => rt)));
      const prepared: Prepared[] = [{ target: 'tessera', op: () => chains.use(async (rt) => (await refresh(env.issuer, client, rt)).refresh_token!) }];
      if (env.bare) prepared.push(bareRefresh(env));
      return prepared;
    },
  },
  {
    name: 'OrgSwitch',
    async prepare(env) {
      const client = await webClient(env, 'allow');
      const [user] = await users(env, 1);
      const orgIds = await memo(env, 'orgs50', async () => {
        const ids: string[] = [];
        for (let i = 0; i < (env.smoke ? 5 : 50); i++) {
          const org = await env.admin<{ id: string }>('POST', '/organizations', { name: `Switch Org ${i}` });
          await env.admin('POST', `/organizations/${org.id}/members`, { user_id: user!.id, role: i % 2 ? 'admin' : 'member' });
          ids.push(org.id);
        }
        return ids;
      });
      const chains = new Pool(async () => (await signIn(env.tessera.url, env.issuer, client, user!, { organization: orgIds[0]! })).tokens.refresh_token!);
      return [
        {
          target: 'tessera',
          op: () => chains.use(async (rt) => (await refresh(env.issuer, client, rt, { organization: pick(orgIds) })).refresh_token!),
        },
      ];
    },
  },
  {
    // OrgSwitch with teams: 50 organizations of 5 teams each, the user in 2 teams of every one;
    // each refresh switches to a random organization and one of the user's teams there, so every
    // token carries org_teams and the team claims.
    name: 'OrgSwitch.teams',
    async prepare(env) {
      const client = await webClient(env, 'allow');
      const [user] = await users(env, 1);
      const orgs = await memo(env, 'orgs50teams', async () => {
        const made: Array<{ id: string; teams: string[] }> = [];
        for (let i = 0; i < (env.smoke ? 5 : 50); i++) {
          const org = await env.admin<{ id: string }>('POST', '/organizations', { name: `Team Switch Org ${i}` });
          await env.admin('POST', `/organizations/${org.id}/members`, { user_id: user!.id, role: i % 2 ? 'admin' : 'member' });
          if (i === 0) await env.admin('POST', `/organizations/${org.id}/team-roles`, { name: 'deployer', permissions: ['deploy:prod'] });
          const mine: string[] = [];
          for (let j = 0; j < 5; j++) {
            const team = await env.admin<{ id: string; slug: string }>('POST', `/organizations/${org.id}/teams`, { name: `Team ${j}` });
            if (j % 2 === 0 && j < 4) {
              await env.admin('POST', `/organizations/${org.id}/teams/${team.id}/members`, { user_id: user!.id, roles: j === 0 ? ['admin'] : ['member'] });
              mine.push(team.slug);
            }
          }
          made.push({ id: org.id, teams: mine });
        }
        return made;
      });
      const chains = new Pool(
        async () => (await signIn(env.tessera.url, env.issuer, client, user!, { organization: orgs[0]!.id, team: orgs[0]!.teams[0]! })).tokens.refresh_token!,
      );
      return [
        {
          target: 'tessera',
          op: () =>
            chains.use(async (rt) => {
              const org = pick(orgs);
              return (await refresh(env.issuer, client, rt, { organization: org.id, team: pick(org.teams) })).refresh_token!;
            }),
        },
      ];
    },
  },
  {
    name: 'Introspect',
    goal: { opsPerCpuSecond: 1500 },
    async prepare(env) {
      const c = await machineClient(env);
      const auth = basic(c.client_id, c.client_secret);
      const token = await userAccessToken(env);
      const active = (body: string) => {
        if (!body.includes('"active":true')) throw new Error(`not active: ${body.slice(0, 100)}`);
      };
      const prepared: Prepared[] = [
        {
          target: 'tessera',
          op: async () =>
            active(expectStatus(await send(`${env.issuer}/token/introspection`, { body: form({ token }), headers: { authorization: auth } }), 200).body),
        },
      ];
      if (env.bare) {
        const bareAuth = basic('machine', 'machine-secret');
        const bareToken = env.bare.opaqueToken;
        prepared.push({
          target: 'bare',
          op: async () =>
            active(
              expectStatus(await send(`${env.bare!.url}/token/introspection`, { body: form({ token: bareToken }), headers: { authorization: bareAuth } }), 200)
                .body,
            ),
        });
      }
      return prepared;
    },
  },
  {
    name: 'UserInfo',
    goal: { opsPerCpuSecond: 1500 },
    async prepare(env) {
      const token = await userAccessToken(env);
      return [{ target: 'tessera', op: async () => void expectStatus(await send(`${env.issuer}/me`, { headers: { authorization: `Bearer ${token}` } }), 200) }];
    },
  },
  ...adminOrgs(),
  ...scimScenarios(),
  {
    name: 'ManyTenants',
    goal: { p99Ms: 50 },
    async prepare(env) {
      const n = env.smoke ? 20 : 10_000;
      const slugs = await memo(env, 'many-tenants', async () => {
        const out: string[] = [];
        const started = Date.now();
        let next = 0;
        await Promise.all(
          Array.from({ length: 8 }, async () => {
            while (next < n) {
              const i = next++;
              const slug = `mt-${i}`;
              await env.tessera.tenants.create({ slug, name: `Many ${i}` });
              out.push(slug);
              if (out.length % 1000 === 0) env.progress(`ManyTenants: ${out.length}/${n} tenants (${Math.round((Date.now() - started) / 1000)} s)`);
            }
          }),
        );
        return out;
      });
      // Discovery of a random tenant: most are not among the 500 providers an instance keeps,
      // so most requests build one (tenant row, keys decrypted, provider configured).
      return [
        { target: 'tessera', op: async () => void expectStatus(await send(`${env.tessera.url}/t/${pick(slugs)}/.well-known/openid-configuration`), 200) },
      ];
    },
  },
  {
    // The portal's members tab of a 60-member organization, signed in as its owner: the
    // heaviest everyday page (each row carries its role dropdown and forms).
    name: 'PortalMembers',
    async prepare(env) {
      const [owner] = await users(env, 1);
      const org = await env.admin<{ id: string }>('POST', '/organizations', { name: 'Portal Org', max_members: 100 });
      await env.admin('POST', `/organizations/${org.id}/members`, { user_id: owner!.id, role: 'owner' });
      for (let i = 0; i < 59; i++) {
        const u = await env.admin<{ id: string }>('POST', '/users', { email: `portal-${i}@bench.test`, email_verified: true });
        await env.admin('POST', `/organizations/${org.id}/members`, { user_id: u.id, role: 'member' });
      }
      const jar = await portalSignIn(env.tessera.url, env.slug, owner!);
      const page = `${env.tessera.url}/t/${env.slug}/portal/organizations/${org.id}/members`;
      return [{ target: 'tessera', op: async () => void expectStatus(await send(page, { headers: jar.header() }), 200) }];
    },
  },
  {
    // SP-initiated SAML: the authorization request, the email of a verified domain (which routes
    // to the organization's IdP), then a signed response for that AuthnRequest posted to the ACS.
    // The response is made and signed here, by the test IdP; Tessera parses, schema-checks and
    // verifies it, provisions the user just in time (first time) and resumes the sign-in.
    name: 'SamlAcs',
    async prepare(env) {
      const client = await webClient(env);
      const org = await env.admin<{ id: string }>('POST', '/organizations', { name: 'SAML Bench', max_members: 100_000 });
      await env.admin('POST', `/organizations/${org.id}/domains`, { domain: 'saml.bench' });
      await env.admin('PATCH', `/organizations/${org.id}/domains/saml.bench`, { verified: true });
      const idp = new TestSamlIdp();
      const conn = await env.admin<{ id: string; acs_url: string; sp_entity_id: string; sp_metadata_url: string }>(
        'POST',
        `/organizations/${org.id}/sso-connections`,
        {
          type: 'saml',
          name: 'Bench IdP',
          idp_entity_id: idp.entityId,
          idp_sso_url: idp.ssoUrl,
          idp_certificates: [idp.keys.cert],
        },
      );
      const sp = samlify.ServiceProvider({ metadata: (await send(conn.sp_metadata_url)).body });
      let n = 0;
      return [
        {
          target: 'tessera',
          op: async () => {
            const email = `user${n++ % 50}@saml.bench`;
            const toIdp = await startSignIn(env.tessera.url, env.issuer, client, email);
            if (!toIdp.startsWith(idp.ssoUrl)) throw new Error(`not sent to the IdP: ${toIdp}`);
            const response = await idp.response(sp, conn.acs_url, conn.sp_entity_id, {
              inResponseTo: await idp.requestIdOf(sp, toIdp),
              nameId: email,
              attributes: { email, name: 'Bench User' },
            });
            const r = await send(conn.acs_url, { body: form({ SAMLResponse: response }), headers: { origin: 'https://idp.test' } });
            if (r.status !== 303 && r.status !== 302) throw new Error(`ACS answered ${r.status}: ${r.body.slice(0, 200)}`);
            if (!r.headers.location?.includes('/auth/')) throw new Error(`ACS sent the browser to ${r.headers.location}`);
          },
        },
      ];
    },
  },
  {
    name: 'HashOnly',
    floor: true,
    async prepare() {
      return [{ target: 'local', op: async () => void (await argon2.hash(PASSWORD, ARGON2_PARAMS)) }];
    },
  },
  {
    name: 'SignOnly',
    floor: true,
    async prepare() {
      const { privateKey } = await generateKeyPair('ES256');
      return [
        {
          target: 'local',
          op: async () =>
            void (await new SignJWT({ scope: 'openid', client_id: 'bench' })
              .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' })
              .setIssuedAt()
              .setExpirationTime('15m')
              .setJti(crypto.randomUUID())
              .sign(privateKey)),
        },
      ];
    },
  },
  {
    // Tessera's HTTP floor: node's server, koa, the request context, security headers and the
    // router, with no tenant, database or crypto — what every request costs before its own work.
    name: 'HttpOnly',
    floor: true,
    async prepare(env) {
      return [{ target: 'tessera', op: async () => void expectStatus(await send(`${env.tessera.url}/healthz`), 200) }];
    },
  },
];

/** The bare provider's refresh-token rotation (its chains were made at its start, without pages). */
function bareRefresh(env: BenchEnv): Prepared {
  const bare = env.bare!;
  const bareClient = { client_id: 'web', client_secret: 'web-secret', redirect_uri: REDIRECT };
  const seeds = [...bare.refreshTokens];
  const chains = new Pool(async () => {
    const rt = seeds.pop();
    if (!rt) throw new Error('the bare provider has no more refresh-token chains: start it with more');
    return rt;
  });
  return { target: 'bare', op: () => chains.use(async (rt) => (await refresh(bare.url, bareClient, rt)).refresh_token!) };
}

/**
 * AdminOrgs: an organization of 100,000 members (seeded in bulk with SQL), then three measured
 * operations through the Admin API: create an organization, add a member, list a page of 50.
 */
function adminOrgs(): Scenario[] {
  const big = (env: BenchEnv) =>
    memo(env, 'big-org', async () => {
      const members = env.smoke ? 1_000 : 100_000;
      const spare = env.smoke ? 2_000 : 50_000;
      const org = await env.admin<{ id: string }>('POST', '/organizations', { name: 'Big Org', max_members: 1_000_000 });
      const db = env.tessera.connection.db;
      const tenantId = (await db.selectFrom('tenants').select('id').where('slug', '=', env.slug).executeTakeFirstOrThrow()).id;
      const started = Date.now();
      await sql`INSERT INTO users (tenant_id, email, email_key, email_verified) SELECT ${tenantId}::uuid, 'm' || g || '@big.test', 'm' || g || '@big.test', true FROM generate_series(1, ${members + spare}::int) g`.execute(
        db,
      );
      await sql`
        INSERT INTO org_members (tenant_id, org_id, user_id, joined_at)
        SELECT tenant_id, ${org.id}::uuid, id, now() - (random() * interval '365 days') FROM users
        WHERE tenant_id = ${tenantId}::uuid AND email LIKE 'm%@big.test' AND split_part(substr(email, 2), '@', 1)::int <= ${members}::int`.execute(db);
      await sql`
        INSERT INTO org_member_roles (tenant_id, org_id, user_id, role_id)
        SELECT m.tenant_id, m.org_id, m.user_id, r.id FROM org_members m
        JOIN org_roles r ON r.tenant_id = m.tenant_id AND r.org_id = m.org_id AND r.name = 'member'
        WHERE m.tenant_id = ${tenantId}::uuid AND m.org_id = ${org.id}::uuid`.execute(db);
      await sql`ANALYZE`.execute(db);
      env.progress(`AdminOrgs: ${members} members seeded in ${Math.round((Date.now() - started) / 1000)} s`);
      const spareIds = (
        await sql<{
          id: string;
        }>`SELECT id FROM users WHERE tenant_id = ${tenantId}::uuid AND email LIKE 'm%@big.test' AND split_part(substr(email, 2), '@', 1)::int > ${members}::int`.execute(
          db,
        )
      ).rows.map((r) => r.id);
      // Cursors into the first pages, so listing reads pages at several depths.
      const cursors: Array<string | undefined> = [undefined];
      for (let i = 0; i < 20; i++) {
        const page = await env.admin<{ next_cursor: string | null }>(
          'GET',
          `/organizations/${org.id}/members?limit=50${cursors.at(-1) ? `&cursor=${encodeURIComponent(cursors.at(-1)!)}` : ''}`,
        );
        if (!page.next_cursor) break;
        cursors.push(page.next_cursor);
      }
      return { id: org.id, spareIds, cursors };
    });
  /**
   * The same 100,000 people in a second organization that has 100 teams: everyone in the first
   * (`everyone`), and each person in one of the 99 others too — so the organization's member list
   * can be compared with and without teams, and a team of 100,000 members listed.
   */
  const bigWithTeams = (env: BenchEnv) =>
    memo(env, 'big-org-teams', async () => {
      await big(env);
      const members = env.smoke ? 1_000 : 100_000;
      const org = await env.admin<{ id: string }>('POST', '/organizations', { name: 'Big Org With Teams', max_members: 1_000_000 });
      const everyone = await env.admin<{ id: string }>('POST', `/organizations/${org.id}/teams`, { name: 'Everyone' });
      for (let i = 1; i < 100; i++) await env.admin('POST', `/organizations/${org.id}/teams`, { name: `Team ${i}` });
      const db = env.tessera.connection.db;
      const tenantId = (await db.selectFrom('tenants').select('id').where('slug', '=', env.slug).executeTakeFirstOrThrow()).id;
      const started = Date.now();
      await sql`
        INSERT INTO org_members (tenant_id, org_id, user_id, joined_at)
        SELECT tenant_id, ${org.id}::uuid, id, now() - (random() * interval '365 days') FROM users
        WHERE tenant_id = ${tenantId}::uuid AND email LIKE 'm%@big.test' AND split_part(substr(email, 2), '@', 1)::int <= ${members}::int`.execute(db);
      await sql`
        INSERT INTO org_member_roles (tenant_id, org_id, user_id, role_id)
        SELECT m.tenant_id, m.org_id, m.user_id, r.id FROM org_members m
        JOIN org_roles r ON r.tenant_id = m.tenant_id AND r.org_id = m.org_id AND r.name = 'member'
        WHERE m.tenant_id = ${tenantId}::uuid AND m.org_id = ${org.id}::uuid`.execute(db);
      await sql`
        INSERT INTO team_members (tenant_id, org_id, team_id, user_id, roles, joined_at)
        SELECT m.tenant_id, m.org_id, ${everyone.id}::uuid, m.user_id, array['member'], m.joined_at FROM org_members m
        WHERE m.tenant_id = ${tenantId}::uuid AND m.org_id = ${org.id}::uuid`.execute(db);
      await sql`
        INSERT INTO team_members (tenant_id, org_id, team_id, user_id, roles)
        SELECT m.tenant_id, m.org_id, t.id, m.user_id, array['member'] FROM org_members m
        JOIN LATERAL (SELECT id FROM teams t WHERE t.tenant_id = m.tenant_id AND t.org_id = m.org_id AND t.id <> ${everyone.id}::uuid
          ORDER BY t.id OFFSET (abs(hashtext(m.user_id::text)) % 99) LIMIT 1) t ON true
        WHERE m.tenant_id = ${tenantId}::uuid AND m.org_id = ${org.id}::uuid`.execute(db);
      await sql`ANALYZE`.execute(db);
      env.progress(`AdminOrgs: ${members} members in 100 teams seeded in ${Math.round((Date.now() - started) / 1000)} s`);
      const pages = async (path: string) => {
        const cursors: Array<string | undefined> = [undefined];
        for (let i = 0; i < 20; i++) {
          const page = await env.admin<{ next_cursor: string | null }>(
            'GET',
            `${path}?limit=50${cursors.at(-1) ? `&cursor=${encodeURIComponent(cursors.at(-1)!)}` : ''}`,
          );
          if (!page.next_cursor) break;
          cursors.push(page.next_cursor);
        }
        return cursors;
      };
      const membersPath = `/organizations/${org.id}/members`;
      const teamPath = `/organizations/${org.id}/teams/${everyone.id}/members`;
      return { membersPath, teamPath, memberCursors: await pages(membersPath), teamCursors: await pages(teamPath) };
    });
  const apiKeyHeader = (env: BenchEnv) => ({ authorization: `Bearer ${env.apiKey}`, 'content-type': 'application/json' });
  /** A page of 50 at a random one of the first 20 cursors of `path`. */
  const listPage = (env: BenchEnv, path: string, cursors: Array<string | undefined>) => async () => {
    const cursor = pick(cursors);
    const r = expectStatus(
      await send(`${env.issuer}/api/v1/admin${path}?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { headers: apiKeyHeader(env) }),
      200,
    );
    if (!r.body.startsWith('{"data":[{')) throw new Error('an empty page');
  };
  let created = 0;
  return [
    {
      name: 'AdminOrgs.create',
      async prepare(env) {
        await big(env);
        return [
          {
            target: 'tessera',
            op: async () =>
              void expectStatus(
                await send(`${env.issuer}/api/v1/admin/organizations`, {
                  method: 'POST',
                  headers: apiKeyHeader(env),
                  body: JSON.stringify({ name: `Created ${++created}` }),
                }),
                201,
              ),
          },
        ];
      },
    },
    {
      name: 'AdminOrgs.addMember',
      async prepare(env) {
        const org = await big(env);
        return [
          {
            target: 'tessera',
            op: async () => {
              const userId = org.spareIds.pop();
              if (!userId) throw new Error('out of spare users: seed more');
              expectStatus(
                await send(`${env.issuer}/api/v1/admin/organizations/${org.id}/members`, {
                  method: 'POST',
                  headers: apiKeyHeader(env),
                  body: JSON.stringify({ user_id: userId, role: 'member' }),
                }),
                201,
              );
            },
          },
        ];
      },
    },
    {
      name: 'AdminOrgs.list',
      goal: { p99Ms: 20 },
      async prepare(env) {
        const org = await big(env);
        return [
          {
            target: 'tessera',
            op: async () => {
              const cursor = pick(org.cursors);
              const r = expectStatus(
                await send(`${env.issuer}/api/v1/admin/organizations/${org.id}/members?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, {
                  headers: apiKeyHeader(env),
                }),
                200,
              );
              if (!r.body.startsWith('{"data":[{')) throw new Error('an empty page');
            },
          },
        ];
      },
    },
    {
      // The member list of an organization whose 100,000 members are in 100 teams: the same
      // statement as AdminOrgs.list (members' teams are read per team), so the same goal.
      name: 'AdminOrgs.listWithTeams',
      goal: { p99Ms: 20 },
      async prepare(env) {
        const org = await bigWithTeams(env);
        return [{ target: 'tessera', op: listPage(env, org.membersPath, org.memberCursors) }];
      },
    },
    {
      // A page of a team of 100,000 members.
      name: 'Teams.listMembers',
      goal: { p99Ms: 20 },
      async prepare(env) {
        const org = await bigWithTeams(env);
        return [{ target: 'tessera', op: listPage(env, org.teamPath, org.teamCursors) }];
      },
    },
  ];
}
