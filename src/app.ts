import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import Router from '@koa/router';
import Koa, { type Context, type Next } from 'koa';
import { accountRoutes } from './accounts/account.routes.ts';
import { AccountService } from './accounts/account.service.ts';
import { accountPages } from './accounts/account-pages.ts';
import { AccountSecurity } from './accounts/account-security.service.ts';
import { BruteForce } from './accounts/brute-force.ts';
import { FactorAdministration } from './accounts/factor-admin.service.ts';
import { passkeyPages } from './accounts/passkey-pages.ts';
import { SessionService } from './accounts/session.service.ts';
import { adminApi } from './admin-api/admin.routes.ts';
import { requireAdmin } from './admin-api/admin-auth.ts';
import { errorBoundary, NotFound, RETRY_AFTER_SECONDS } from './base/errors.ts';
import { createLogger, type Logger } from './base/logger.ts';
import { Outbound } from './base/outbound-fetch.ts';
import { strictTransportSecurity, treatRequestsAsHttps } from './base/transport-security.ts';
import { createTextViews, createViews } from './base/views.ts';
import type { Config } from './config.ts';
import { type Connection, connect } from './db/connect.ts';
import { isMigrated, migrateToLatest, ping } from './db/migrate.ts';
import { assertEncryptionKeyOpensDatabase } from './encryption-key-check.ts';
import { FactorService } from './factors/factor.service.ts';
import { PasskeyService } from './factors/passkeys.ts';
import { formBody, jsonBody } from './http/body.ts';
import { metricsRoute, startMetricsServer } from './http/metrics-endpoint.ts';
import { requestContext, sameOriginForms } from './http/request-context.ts';
import { MailOutbox } from './mail/outbox.ts';
import { createMailTransport } from './mail/transport.ts';
import { startMaintenance } from './maintenance.ts';
import { meRoutes } from './me/me.routes.ts';
import { requireUser } from './me/user-auth.ts';
import { Metrics } from './metrics/metrics.ts';
import { ClientService } from './oidc/client.service.ts';
import { interactionRoutes } from './oidc/interactions.routes.ts';
import { mfaEnrollment } from './oidc/mfa-enroll.routes.ts';
import { passkeyRoutes } from './oidc/passkey.routes.ts';
import { providerRouteTemplate } from './oidc/provider-routes.ts';
import { TenantRuntimes } from './oidc/tenant-runtime.ts';
import { invitationRoutes } from './orgs/invitation.routes.ts';
import { InvitationService } from './orgs/invitation.service.ts';
import { registerInvitationMail } from './orgs/invitation-mail.ts';
import { registerLifecycleMail } from './orgs/lifecycle-mail.ts';
import { OrgService, presentOrg } from './orgs/org.service.ts';
import { OrgLifecycle } from './orgs/org-lifecycle.ts';
import { OrgTokens } from './orgs/org-tokens.ts';
import { TeamService } from './orgs/team.service.ts';
import { approvalPages } from './portal/approval-pages.ts';
import { directoryPages } from './portal/directory-pages.ts';
import { orgLoginPages } from './portal/org-login-pages.ts';
import { orgPages } from './portal/org-pages.ts';
import { orgPolicyGate } from './portal/org-policy-gate.ts';
import { peoplePages } from './portal/people-pages.ts';
import { policyPages } from './portal/policy-pages.ts';
import { PortalSessions } from './portal/portal-session.ts';
import { setupLinkPages } from './portal/setup-link-pages.ts';
import { ShownOnce } from './portal/shown-once.ts';
import { ssoPages } from './portal/sso-pages.ts';
import { teamPages } from './portal/team-pages.ts';
import { tenantPolicyPages } from './portal/tenant-policy-pages.ts';
import { DirectoryService } from './scim/directory.service.ts';
import { scimRoutes } from './scim/scim.routes.ts';
import { ScimProvisioning } from './scim/scim-provisioning.ts';
import { SetupLinkService } from './setup-links/setup-link.service.ts';
import { setupPages } from './setup-links/setup-pages.ts';
import { ConnectionService, loopbackIdpsAllowed } from './sso/connection.service.ts';
import { DomainService, systemTxtResolver, type TxtResolver } from './sso/domain.service.ts';
import { OidcSso } from './sso/oidc-sso.ts';
import { removePasswordProvenLinks } from './sso/password-proven-links.ts';
import { PendingLinks } from './sso/pending-links.ts';
import { SamlSso } from './sso/saml/saml-sso.ts';
import { ssoRoutes } from './sso/sso.routes.ts';
import { registerSsoLinkMail } from './sso/sso-link-mail.ts';
import { SsoRouter } from './sso/sso-router.ts';
import { TenantService } from './tenants/tenant.service.ts';
import { ApiTokenService } from './tokens/api-token.service.ts';
import { UserService } from './users/user.service.ts';

export interface App {
  koa: Koa;
  config: Config;
  log: Logger;
  connection: Connection;
  metrics: Metrics;
  services: {
    tenants: TenantService;
    users: UserService;
    clients: ClientService;
    runtimes: TenantRuntimes;
    accounts: AccountService;
    bruteForce: BruteForce;
    factors: FactorService;
    passkeys: PasskeyService;
    outbox: MailOutbox;
    orgs: OrgService;
    teams: TeamService;
    invitations: InvitationService;
    lifecycle: OrgLifecycle;
    orgTokens: OrgTokens;
    apiTokens: ApiTokenService;
    domains: DomainService;
    connections: ConnectionService;
    directories: DirectoryService;
    setupLinks: SetupLinkService;
  };
  /** Listens on config.port (0 = any free port), and on METRICS_PORT when set; resolves to the base URL. */
  start(): Promise<string>;
  /**
   * The first step of a shutdown: from now on /readyz answers 503 `draining`, so balancers send
   * new traffic elsewhere, while every request — in flight or new — is still served; each answer
   * closes its connection. `stop()` comes after (main.ts waits SHUTDOWN_GRACE_MS between them).
   */
  drain(): void;
  /**
   * Stops accepting, lets in-flight requests finish (up to `inFlightMs`; then their connections
   * are cut), stops the background work and closes the database. Drains first if `drain()` was
   * not called. Called again, it answers the same promise.
   */
  stop(inFlightMs?: number): Promise<void>;
}

export async function createApp(config: Config, opts: { log?: Logger; connection?: Connection; txtResolver?: TxtResolver } = {}): Promise<App> {
  const log = opts.log ?? createLogger(config.logLevel);
  const metrics = new Metrics();
  // On PostgreSQL, migrations run first on a connection of their own, without the serving pool's
  // statement bound: one may take longer than any request should, or wait for another instance's.
  const migrateApart = !opts.connection && config.databaseUrl !== undefined;
  if (migrateApart) await migrateOnOwnConnection(config);
  const connection =
    opts.connection ??
    (await connect({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      preparedStatements: config.databasePreparedStatements,
      oneShot: config.databaseOneShot,
      connectTimeoutMs: config.databaseConnectTimeoutMs,
      statementTimeoutMs: config.databaseStatementTimeoutMs,
      onIdleConnectionLost: (err) => log.warn({ err }, 'a database connection was lost while idle; a new one will be opened when needed'),
    }));
  const { db } = connection;
  connection.onStatement((seconds, failed) => metrics.statement(seconds, failed));
  try {
    if (!migrateApart) await migrateToLatest(db);
    await assertEncryptionKeyOpensDatabase(db, config);
  } catch (err) {
    if (!opts.connection) await connection.close();
    throw err;
  }

  const render = createViews();
  const outbox = new MailOutbox(
    db,
    createMailTransport({ smtpUrl: config.smtpUrl, dataDir: config.dataDir, log }),
    { ...config.mail, encryptionKey: config.encryptionKey },
    log,
    metrics,
  );
  const bruteForce = new BruteForce(db);
  const factors = new FactorService({ db, encryptionKey: config.encryptionKey });
  const passkeys = new PasskeyService({ db, publicUrl: config.publicUrl });
  const renderText = createTextViews();
  const accounts = new AccountService(db, outbox, bruteForce, config.publicUrl, render, renderText, removePasswordProvenLinks);
  const security = new AccountSecurity(db, factors, bruteForce, outbox, render, renderText);
  const factorAdmin = new FactorAdministration(db, outbox, render, renderText, removePasswordProvenLinks);
  const orgs = new OrgService(db);
  const teams = new TeamService(db);
  const invitations = new InvitationService(db, outbox);
  const lifecycle = new OrgLifecycle(db, outbox, presentOrg);
  registerInvitationMail(outbox, config.publicUrl, render, renderText);
  registerLifecycleMail(outbox, config.publicUrl, render, renderText);
  registerSsoLinkMail(outbox, config.publicUrl, render, renderText);
  const pendingLinks = new PendingLinks(db, outbox);
  const users = new UserService(db, removePasswordProvenLinks);
  const orgTokens = new OrgTokens(db);
  const apiTokens = new ApiTokenService(db, orgTokens);
  const domains = new DomainService(db, opts.txtResolver ?? systemTxtResolver);
  const outbound = new Outbound({ allowPrivateNetworks: config.outboundAllowPrivateNetworks });
  const connections = new ConnectionService(db, config.encryptionKey, config.publicUrl, outbound);
  const directories = new DirectoryService(db, config.publicUrl);
  const setupLinks = new SetupLinkService(db, config.publicUrl);
  const oidcSso = new OidcSso(db, connections, loopbackIdpsAllowed(config.publicUrl), outbound);
  const samlSso = new SamlSso(db, config.publicUrl, (c) => connections.spPrivateKey(c));
  const sso = new SsoRouter(domains, connections, oidcSso, samlSso, orgTokens);
  const clients = new ClientService(db, config.tenantCacheTtlMs);
  const tenants = new TenantService(db, config.publicUrl, config.encryptionKey, config.tenantCacheTtlMs);
  const runtimes = new TenantRuntimes(
    { db, publicUrl: config.publicUrl, encryptionKey: config.encryptionKey, users, clients, orgTokens, render, log },
    config.tenantCacheTtlMs,
    config.tenantProviderCacheSize,
    metrics,
  );
  metrics.readAtScrape({ pool: () => connection.poolStats(), mailQueueDepth: () => outbox.queueDepth(), providerCacheSize: () => runtimes.size });
  const metricsServed = config.metrics.token !== undefined || config.metrics.port !== undefined;
  if (metricsServed) metrics.collectProcessMetrics();
  let draining = false;

  const koa = new Koa({ proxy: config.trustProxy });
  treatRequestsAsHttps(koa, config.publicUrl);
  koa.use(strictTransportSecurity(config.publicUrl));
  koa.use(requestContext(log, metrics));
  koa.use(
    errorBoundary(log, (ctx, status, title, detail) => {
      ctx.type = 'html';
      ctx.body = render('error.njk', { title, detail, requestId: ctx.state.requestId, status });
    }),
  );
  koa.use(securityHeaders);
  // While draining, each answer closes its connection: a client (or a balancer's pool) holding a
  // keep-alive connection opens its next one elsewhere rather than find this one cut when the
  // listener closes.
  koa.use(async (ctx, next) => {
    if (draining) ctx.set('Connection', 'close');
    await next();
  });

  const root = new Router();
  root.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  root.get('/readyz', async (ctx) => {
    if (draining) {
      ctx.status = 503;
      ctx.body = { status: 'draining' };
      return;
    }
    try {
      await ping(db);
      const migrated = await isMigrated(db);
      ctx.status = migrated ? 200 : 503;
      ctx.body = { status: migrated ? 'ready' : 'migrations pending' };
    } catch (err) {
      log.warn({ err }, 'readiness check failed');
      ctx.status = 503;
      ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
      ctx.body = { status: 'database unreachable' };
    }
  });
  root.get('/assets/:file', (ctx) => serveAsset(ctx, ctx.params.file ?? ''));
  // Browsers ask for it on their own wherever a page names no icon (a JSON document, say).
  root.get('/favicon.ico', (ctx) => serveAsset(ctx, 'favicon.ico'));
  // On the public port only behind the token; with METRICS_PORT they are served there instead,
  // and here /metrics is a 404 like any unknown path.
  if (config.metrics.token !== undefined && config.metrics.port === undefined) root.get('/metrics', metricsRoute(metrics, config.metrics.token));
  koa.use(root.routes());

  // RFC 8414 §3.1: the metadata of issuer https://host/t/<slug> is at /.well-known/oauth-authorization-server/t/<slug>.
  koa.use(async (ctx, next) => {
    const m = /^\/\.well-known\/oauth-authorization-server\/t\/([^/]+)$/.exec(ctx.path);
    if (!m) return next();
    ctx.path = `/t/${m[1]}/.well-known/openid-configuration`;
    return next();
  });

  koa.use(tenantDispatch(runtimes));

  const forms = () => [sameOriginForms(config.publicUrl), ...formBody('16kb')];
  const json = () => jsonBody('100kb');

  const interactions = new Router({ prefix: '/t/:slug/interaction' });
  interactions.use(...forms());
  const enrollment = mfaEnrollment({ factors, passkeys, security, orgTokens, bruteForce, render, metrics });
  interactions.use(interactionRoutes({ users, clients, accounts, bruteForce, factors, enrollment, orgTokens, sso, render, metrics }).routes());
  interactions.use(passkeyRoutes({ passkeys, factors, users, accounts, bruteForce, sso, render, metrics }).routes());
  interactions.use(enrollment.routes.routes());
  koa.use(interactions.routes());

  // The portal and the account pages: signed in through the tenant's own OIDC (portal-session.ts).
  const portalSessions = new PortalSessions(config.encryptionKey, users, render);
  const guard = portalSessions.requireViewer();
  const portalSignIn = new Router({ prefix: '/t/:slug/portal' });
  portalSignIn.use(...forms());
  portalSignIn.use(portalSessions.routes().routes());
  koa.use(portalSignIn.routes());
  // An organization's own sign-in page: starts the portal's sign-in for that organization.
  const orgLogin = new Router({ prefix: '/t/:slug' });
  orgLogin.use(orgLoginPages({ orgTokens, portalSessions, render }).routes());
  koa.use(orgLogin.routes());
  const portal = new Router({ prefix: '/t/:slug/portal' });
  portal.use(...forms(), guard, orgPolicyGate({ orgTokens, render }));
  portal.use(orgPages({ orgs, orgTokens, users, render }).routes());
  portal.use(peoplePages({ orgs, invitations, users, render }).routes());
  portal.use(teamPages({ orgs, teams, render }).routes());
  portal.use(ssoPages({ orgs, connections, domains, oidc: oidcSso, saml: samlSso, render }).routes());
  portal.use(directoryPages({ orgs, directories, shownOnce: new ShownOnce(config.encryptionKey), render }).routes());
  portal.use(setupLinkPages({ orgs, setupLinks, render }).routes());
  portal.use(policyPages({ orgs, render }).routes());
  portal.use(tenantPolicyPages({ tenants, runtimes, render }).routes());
  portal.use(approvalPages({ orgs, lifecycle, tenants, runtimes, render }).routes());
  koa.use(portal.routes());

  const account = new Router({ prefix: '/t/:slug/account' });
  account.use(...forms());
  account.use(accountRoutes({ accounts, bruteForce, render }).routes());
  account.use(
    accountPages({ guard, users, orgs, teams, orgTokens, invitations, accounts, sessions: new SessionService(db), factors, security, render }).routes(),
  );
  account.use(passkeyPages({ guard, passkeys, security, render }).routes());
  koa.use(account.routes());

  const invitationPages = new Router({ prefix: '/t/:slug/invitations' });
  invitationPages.use(...forms());
  invitationPages.use(invitationRoutes({ db, invitations, users, bruteForce, factors, orgTokens, connections, sso, render }).routes());
  koa.use(invitationPages.routes());

  const ssoRouter = new Router({ prefix: '/t/:slug/sso' });
  // The SAML ACS takes a cross-site POST from the IdP by design: no same-origin check here; the
  // response's signature, audience, destination and InResponseTo are what protect it.
  ssoRouter.use(...formBody('1mb'));
  ssoRouter.use(
    ssoRoutes({
      db,
      connections,
      domains,
      oidc: oidcSso,
      saml: samlSso,
      invitations,
      pendingLinks,
      users,
      factors,
      bruteForce,
      outbox,
      render,
      log,
      sameOrigin: sameOriginForms(config.publicUrl),
      metrics,
      setupLinks,
    }).routes(),
  );
  koa.use(ssoRouter.routes());

  // A directory's SCIM requests: its bearer token, its own error form (scim/scim.routes.ts).
  koa.use(scimRoutes({ directories, provisioning: new ScimProvisioning(db), publicUrl: config.publicUrl }));

  // A setup link's pages, for the customer's IT admin: no account; the link and its browser binding are the credential.
  const setup = new Router({ prefix: '/t/:slug/setup' });
  setup.use(...forms());
  setup.use(setupPages({ publicUrl: config.publicUrl, setupLinks, connections, domains, directories, saml: samlSso, oidc: oidcSso, render }).routes());
  koa.use(setup.routes());

  const me = new Router({ prefix: '/t/:slug/api/v1/me' });
  me.use(...json(), requireUser({ db, users, apiTokens }));
  me.use(meRoutes({ accounts, orgTokens, orgs, teams, invitations, clients }).routes());
  koa.use(me.routes());

  const adminRegistry = adminApi({
    users,
    clients,
    runtimes,
    tenants,
    accounts,
    bruteForce,
    outbox,
    orgs,
    teams,
    invitations,
    lifecycle,
    apiTokens,
    domains,
    connections,
    directories,
    setupLinks,
    factorAdmin,
  });
  const openapi = new Router();
  // Public on purpose: the description of the API holds no data.
  openapi.get('/t/:slug/api/v1/openapi.json', (ctx) => {
    ctx.body = adminRegistry.openapi({
      title: `Tessera Admin API — ${ctx.state.runtime.tenant.name}`,
      version: '1',
      serverUrl: `${config.publicUrl}/t/${ctx.params.slug}/api/v1/admin`,
    });
  });
  koa.use(openapi.routes());

  const admin = new Router({ prefix: '/t/:slug/api/v1/admin' });
  admin.use(...json(), requireAdmin({ db, tenants, users }));
  const adminRoutes = new Router();
  adminRegistry.mount(adminRoutes);
  admin.use(adminRoutes.routes());
  koa.use(admin.routes());
  koa.use(admin.allowedMethods({ throw: false }));

  koa.use((ctx) => {
    throw NotFound(`Nothing at ${ctx.method} ${ctx.path}.`);
  });

  let server: Server | undefined;
  let metricsServer: Server | undefined;
  let stopping: Promise<void> | undefined;
  async function stopNow(inFlightMs: number) {
    drain();
    if (server) {
      log.info({ inFlightMs }, 'closing the listener; letting requests in flight finish');
      const finished = await closeServer(server, inFlightMs);
      if (finished) log.info('listener closed; every request in flight finished');
      else log.warn({ inFlightMs }, 'listener closed; requests still in flight were cut off');
    }
    maintenance.stop();
    await outbox.stop();
    if (metricsServer) await closeServer(metricsServer, 1000);
    await connection.close();
    log.info('database closed; stopped');
  }
  function drain() {
    if (draining) return;
    draining = true;
    log.info('draining: /readyz answers 503; requests are still served');
  }
  const maintenance = startMaintenance(db, log, {
    refreshSamlMetadata: () => connections.refreshSamlMetadata(),
    expireTrials: { run: () => lifecycle.expireTrials(), everyMs: config.trialCheckMs },
  });

  return {
    koa,
    config,
    log,
    connection,
    metrics,
    services: {
      tenants,
      users,
      clients,
      runtimes,
      accounts,
      bruteForce,
      factors,
      passkeys,
      outbox,
      orgs,
      teams,
      invitations,
      lifecycle,
      orgTokens,
      apiTokens,
      domains,
      connections,
      directories,
      setupLinks,
    },
    async start() {
      server = koa.listen(config.port, config.host);
      server.headersTimeout = 20_000;
      server.requestTimeout = 30_000;
      await new Promise<void>((resolve, reject) => {
        server!.once('listening', resolve).once('error', reject);
      });
      if (config.metrics.port !== undefined) {
        metricsServer = await startMetricsServer(metrics, { host: config.metrics.host, port: config.metrics.port, token: config.metrics.token, log });
      }
      outbox.start();
      const { port } = server.address() as AddressInfo;
      return `http://localhost:${port}`;
    },
    drain,
    stop(inFlightMs = 10_000) {
      stopping ??= stopNow(inFlightMs);
      return stopping;
    },
  };
}

/**
 * Stops `server` accepting and waits until its connections are gone. A connection ends once it
 * is idle: idle ones at once, busy ones when their response is out (checked every 50 ms — node
 * would otherwise keep a kept-alive connection open until its keep-alive timeout). After
 * `boundMs` whatever is left is cut. Answers whether everything finished in time.
 */
async function closeServer(server: Server, boundMs: number): Promise<boolean> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const sweep = setInterval(() => server.closeIdleConnections(), 50);
  let cut = false;
  const bound = setTimeout(() => {
    cut = true;
    server.closeAllConnections();
  }, boundMs);
  await closed;
  clearInterval(sweep);
  clearTimeout(bound);
  return !cut;
}

async function migrateOnOwnConnection(config: Config) {
  const own = await connect({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 1, connectTimeoutMs: config.databaseConnectTimeoutMs });
  try {
    await migrateToLatest(own.db);
  } finally {
    await own.close();
  }
}

/**
 * `/t/<slug>/…`: resolves the tenant (404 when there is none), then either lets Tessera's own
 * routes handle the path or hands the request to the tenant's oidc-provider, mounted at the prefix.
 */
function tenantDispatch(runtimes: TenantRuntimes) {
  const OWN_ROUTES = /^\/(interaction|api|portal|account|invitations|sso|scim|setup|o)(\/|$)/;
  return async (ctx: Context, next: Next) => {
    const m = /^\/t\/([^/]+)(\/.*)?$/.exec(ctx.path);
    if (!m) return next();
    const slug = m[1]!;
    const runtime = await runtimes.forSlug(slug);
    if (!runtime) throw NotFound(`There is no tenant "${slug}".`);
    ctx.state.runtime = runtime;
    const rest = m[2] ?? '/';
    if (OWN_ROUTES.test(rest)) return next();
    ctx.state.route = providerRouteTemplate(rest) ?? 'unmatched';

    const prefix = `/t/${slug}`;
    const original = ctx.req.url ?? '';
    (ctx.req as { originalUrl?: string }).originalUrl = original;
    ctx.req.url = original.slice(prefix.length) || '/';
    ctx.respond = false;
    await runtime.handle(ctx.req, ctx.res);
  };
}

/** The stylesheet, the enhancement scripts and the icon, read once; the files change only with a release. */
const ASSETS = new Map(
  [
    ['tessera.css', 'text/css; charset=utf-8'],
    ['portal.js', 'text/javascript; charset=utf-8'],
    ['passkeys.js', 'text/javascript; charset=utf-8'],
    ['favicon.svg', 'image/svg+xml'],
    ['favicon.ico', 'image/x-icon'],
  ]
    .map(([name, type]) => [name!, { type: type!, body: readFileSync(new URL(`../views/assets/${name}`, import.meta.url)) }] as const)
    // The WebAuthn browser library as its package builds it (no CDN): the passkey ceremonies need it.
    .concat([['webauthn.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(webauthnBrowserBundle()) }]]),
);

/** The package exports only its modules; its browser bundle sits beside them (`unpkg` in its package.json). */
function webauthnBrowserBundle(): string {
  const entry = createRequire(import.meta.url).resolve('@simplewebauthn/browser');
  return join(dirname(entry), '..', 'dist', 'bundle', 'index.umd.min.js');
}

function serveAsset(ctx: Context, file: string) {
  const asset = ASSETS.get(file);
  if (!asset) throw NotFound(`Nothing at ${ctx.path}.`);
  ctx.type = asset.type;
  ctx.set('Cache-Control', 'public, max-age=3600');
  ctx.body = asset.body;
}

async function securityHeaders(ctx: Context, next: Next) {
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('X-Frame-Options', 'DENY');
  // same-origin: pages whose URL holds a one-time token never leak it to another site, and our
  // own form posts still carry an Origin (with no-referrer, browsers send `Origin: null`).
  ctx.set('Referrer-Policy', 'same-origin');
  await next();
}
