import { parseArgs } from 'node:util';
import { type App, createApp } from './app.ts';
import { AppError } from './base/errors.ts';
import { createLogger } from './base/logger.ts';
import { type Config, ConfigError, loadConfig } from './config.ts';
import { connect, DataDirBusyError } from './db/connect.ts';
import { migrateToLatest } from './db/migrate.ts';
import { assertEncryptionKeyOpensDatabase } from './encryption-key-check.ts';
import { seedDemo } from './seed.ts';
import { TenantService } from './tenants/tenant.service.ts';
import { argon2Build } from './users/argon2.ts';

const USAGE = `Usage: tessera <command>

  start                                   run the server (migrates first)
  migrate                                 apply database migrations and exit
  tenant create --slug S --name N [--admin-email E --admin-password P] [--alg ES256|RS256] [--json]
  keys rotate --tenant S [--alg ES256|RS256]
  sample-app --issuer URL --client-id ID --client-secret SECRET [--port 3001]

Environment: PORT, PUBLIC_URL, DATABASE_URL, DATA_DIR, ENCRYPTION_KEY, LOG_LEVEL, … (all of them: docs/configuration.md).`;

export async function main(argv: string[]): Promise<void> {
  const [command, sub] = argv;
  try {
    switch (command) {
      case 'start':
      case undefined:
        return await start(loadConfig());
      case 'migrate':
        return await migrate(loadConfig());
      case 'tenant':
        if (sub === 'create') return await tenantCreate(loadConfig(), argv.slice(2));
        break;
      case 'keys':
        if (sub === 'rotate') return await keysRotate(loadConfig(), argv.slice(2));
        break;
      case 'sample-app': {
        const { runSampleApp } = await import('./sample-app.ts');
        return await runSampleApp(argv.slice(1));
      }
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        return;
    }
    fail(`Unknown command: ${argv.join(' ')}\n\n${USAGE}`);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof DataDirBusyError) fail(err.message);
    if (err instanceof AppError) fail(err.detail);
    if (err instanceof Error && err.name === 'TypeError' && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS')) {
      fail(`${err.message}\n\n${USAGE}`);
    }
    throw err;
  }
}

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

async function start(config: Config) {
  const log = createLogger(config.logLevel);
  const app = await createApp(config, { log });
  const demo = config.seedDemo ? await seedDemo(app) : undefined;
  const url = await app.start();
  log.info({ url, publicUrl: config.publicUrl, database: app.connection.kind, argon2: argon2Build }, 'tessera listening');
  if (demo) printDemo(config, demo);
  else
    console.log(
      `\nTessera is running at ${config.publicUrl} (listening on ${url}).\nEach tenant's portal: ${config.publicUrl}/t/<tenant>/portal/organizations\n`,
    );
  stopOnSignals(app);
}

function printDemo(config: Config, demo: Awaited<ReturnType<typeof seedDemo>> & object) {
  console.log(`
  Tessera is running: ${config.publicUrl}

  A demo tenant was created. These secrets are shown only this once:

    Issuer             ${demo.issuer}
    Discovery          ${demo.issuer}/.well-known/openid-configuration
    Admin API key      ${demo.adminApiKey}
    Admin user         ${demo.adminEmail}  /  ${demo.adminPassword}
    Sample app client  ${demo.clientId}  /  ${demo.clientSecret}
    Portal             ${demo.issuer}/portal/organizations   (sign in as the admin user)

  Sign in to the sample app (in another terminal), then open http://localhost:3001 :

    npx tessera sample-app --issuer ${demo.issuer} --client-id ${demo.clientId} --client-secret ${demo.clientSecret}
`);
}

/**
 * SIGTERM or SIGINT drains, then stops: /readyz answers 503 for SHUTDOWN_GRACE_MS while every
 * request is still served — time for balancers to see it and send traffic elsewhere — then the
 * listener closes, requests in flight finish, the database closes and the process exits 0. A
 * second signal during the grace ends the grace at once; one while stopping is only logged (the
 * wait for requests in flight is bounded anyway).
 */
function stopOnSignals(app: App) {
  const graceMs = app.config.shutdownGraceMs;
  let phase: 'serving' | 'draining' | 'stopping' = 'serving';
  let endGrace = () => {};
  const onSignal = (signal: NodeJS.Signals) => {
    if (phase === 'draining') {
      app.log.info({ signal }, 'second signal: ending the grace now');
      endGrace();
      return;
    }
    if (phase === 'stopping') {
      app.log.info({ signal }, 'already stopping');
      return;
    }
    phase = 'draining';
    app.log.info({ signal, graceMs }, 'shutting down: draining first (a second signal ends the grace)');
    app.drain();
    const grace = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      endGrace = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    grace
      .then(() => {
        phase = 'stopping';
        return app.stop();
      })
      .then(
        () => process.exit(0),
        (err) => {
          app.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

async function migrate(config: Config) {
  const conn = await connect({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, connectTimeoutMs: config.databaseConnectTimeoutMs });
  try {
    const { applied } = await migrateToLatest(conn.db);
    console.log(applied.length ? `Applied: ${applied.join(', ')}` : 'Database is up to date.');
  } finally {
    await conn.close();
  }
}

async function withTenants<T>(config: Config, work: (tenants: TenantService) => Promise<T>): Promise<T> {
  const conn = await connect({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2, connectTimeoutMs: config.databaseConnectTimeoutMs });
  try {
    await migrateToLatest(conn.db);
    // Both commands seal new signing keys: with another key than the database's, they would
    // make a tenant no instance can serve.
    await assertEncryptionKeyOpensDatabase(conn.db, config);
    return await work(new TenantService(conn.db, config.publicUrl, config.encryptionKey));
  } finally {
    await conn.close();
  }
}

async function tenantCreate(config: Config, args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      slug: { type: 'string' },
      name: { type: 'string' },
      'admin-email': { type: 'string' },
      'admin-password': { type: 'string' },
      alg: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (!values.slug || !values.name) fail(`tenant create needs --slug and --name.\n\n${USAGE}`);
  if (values.alg && values.alg !== 'ES256' && values.alg !== 'RS256') fail('--alg must be ES256 or RS256.');
  const created = await withTenants(config, (tenants) =>
    tenants.create({
      slug: values.slug!,
      name: values.name!,
      adminEmail: values['admin-email'],
      adminPassword: values['admin-password'],
      signingAlg: values.alg as 'ES256' | 'RS256' | undefined,
    }),
  );
  if (values.json) {
    console.log(JSON.stringify({ tenant: created.tenant, issuer: created.issuer, admin_api_key: created.admin_api_key }));
  } else {
    console.log(`Tenant ${created.tenant.slug} created.
  Issuer         ${created.issuer}
  Admin API key  ${created.admin_api_key}   (shown once; store it now)${created.admin ? `\n  Admin user     ${created.admin.email}` : ''}`);
  }
}

async function keysRotate(config: Config, args: string[]) {
  const { values } = parseArgs({ args, options: { tenant: { type: 'string' }, alg: { type: 'string' } }, strict: true });
  if (!values.tenant) fail('keys rotate needs --tenant <slug>.');
  if (values.alg && values.alg !== 'ES256' && values.alg !== 'RS256') fail('--alg must be ES256 or RS256.');
  const kid = await withTenants(config, async (tenants) => {
    const tenant = await tenants.findBySlug(values.tenant!);
    if (!tenant) fail(`There is no tenant "${values.tenant}".`);
    return tenants.rotateKeys(tenant, values.alg as 'ES256' | 'RS256' | undefined);
  });
  console.log(`New signing key ${kid} for ${values.tenant}. Previous keys stay in the JWKS for 24 hours.`);
}
