import { parseArgs } from 'node:util';
// The application's modules are imported inside the commands that need them: `--help` needs
// neither a database nor a valid environment, and what fails while they load (the argon2 build
// TESSERA_ARGON2_BUILD names) is caught and said in one line like any other start-up error.
import type { App } from './app.ts';
import { AppError } from './base/errors.ts';
import { createLogger } from './base/logger.ts';
import { type CliCommand, type CliOption, commandHelp, generalHelp, usageLine } from './cli-help.ts';
import { type Config, ConfigError, loadConfig } from './config.ts';
import { DataDirBusyError } from './db/connect.ts';
import type { Database } from './db/database.ts';
import type { SeedOutcome } from './seed.ts';
import { CliError, explainFileError, onDatabase, onListen } from './startup-errors.ts';
import type { TenantService } from './tenants/tenant.service.ts';
import { Argon2BuildError } from './users/argon2-builds.ts';

type Values = Record<string, string | boolean | undefined>;

interface Command extends CliCommand {
  /** Takes words besides its options (`help tenant create`). */
  takesWords?: boolean;
  run(values: Values, args: string[]): Promise<void>;
}

const ALG: CliOption = { name: 'alg', value: 'ES256|RS256', help: 'signing algorithm of the new key', default: 'ES256' };
const JSON_OUTPUT = (shape: string): CliOption => ({ name: 'json', help: `print one JSON object: ${shape}` });

const COMMANDS: Command[] = [
  {
    name: 'start',
    summary: 'run the server (migrates first); the default command',
    details:
      'On an empty database, unless SEED_DEMO=false, it creates the demo tenant once it listens and prints its secrets once. It stops with a one-line message (exit code 2) when it cannot reach the database or listen.',
    options: [],
    listsEnvironment: true,
    run: () => start(loadConfig()),
  },
  {
    name: 'migrate',
    summary: 'apply database migrations and exit',
    options: [],
    run: () => migrate(loadConfig()),
  },
  {
    name: 'tenant create',
    summary: 'create a tenant with its first signing key and admin API key, and optionally an admin user',
    details: 'The admin API key is printed once. Slugs are 2–40 lowercase letters, digits and inner hyphens.',
    options: [
      { name: 'slug', value: 'S', required: true, help: "the tenant's slug: its issuer is $PUBLIC_URL/t/<slug>" },
      { name: 'name', value: 'N', required: true, help: "the tenant's display name" },
      { name: 'admin-email', value: 'E', help: 'email of a tenant administrator to create (with --admin-password)' },
      { name: 'admin-password', value: 'P', help: "that administrator's password" },
      ALG,
      JSON_OUTPUT('{ "tenant": { "id", "slug", "name" }, "issuer", "admin_api_key" }'),
    ],
    run: (values) => tenantCreate(loadConfig(), values),
  },
  {
    name: 'tenant rotate-admin-key',
    summary: "issue a new admin API key for a tenant; the tenant's old keys stop working",
    details:
      'The new key is printed once. Running servers stop accepting the old keys within TENANT_CACHE_TTL_MS (1 s by default). For an operator who lost the printed key, or fears it leaked.',
    options: [{ name: 'slug', value: 'S', required: true, help: "the tenant's slug" }, JSON_OUTPUT('{ "tenant": { "id", "slug", "name" }, "admin_api_key" }')],
    run: (values) => rotateAdminKey(loadConfig(), values),
  },
  {
    name: 'tenant reset-admin-password',
    summary: "set a new password for one of a tenant's administrators",
    details:
      'Without --password it generates a strong one and prints it once. The user is signed out everywhere and any brute-force lock on the account is lifted. Refuses a user who is not a tenant administrator (others reset their own password, or get a reset link through the Admin API).',
    options: [
      { name: 'slug', value: 'S', required: true, help: "the tenant's slug" },
      { name: 'email', value: 'E', required: true, help: "the administrator's email" },
      { name: 'password', value: 'P', help: 'the new password (the same rules as every password); generated when absent' },
      JSON_OUTPUT('{ "tenant": { "id", "slug", "name" }, "user": { "id", "email" }, "password" } ("password" only when generated)'),
    ],
    run: (values) => resetAdminPassword(loadConfig(), values),
  },
  {
    name: 'keys rotate',
    summary: 'give a tenant a new signing key; the old public key stays in the JWKS for 24 hours',
    options: [{ name: 'tenant', value: 'S', required: true, help: "the tenant's slug" }, ALG],
    run: (values) => keysRotate(loadConfig(), values),
  },
  {
    name: 'sample-app',
    summary: "run the quickstart's sample app, a relying party that signs in and shows the tokens' claims",
    options: [
      { name: 'issuer', value: 'URL', required: true, help: "the tenant's issuer" },
      { name: 'client-id', value: 'ID', required: true, help: 'the client registered for the sample app' },
      { name: 'client-secret', value: 'SECRET', help: "that client's secret (a confidential client)" },
      { name: 'port', value: 'PORT', help: 'where the sample app listens; its redirect URI is http://localhost:<port>/callback', default: '3001' },
    ],
    run: (_values, args) => sampleApp(args),
  },
  {
    name: 'help',
    summary: "show this text, or one command's: tessera help <command>",
    options: [],
    takesWords: true,
    run: async (_values, words) => console.log(helpFor(words)),
  },
];

/** The words of every command, `tenant create` and so on. */
export const commandNames = (): string[] => COMMANDS.map((c) => c.name);

/** `tessera help tenant create` and `tessera tenant create --help` say the same; no words: the general help. */
export function helpFor(words: string[]): string {
  const found = findCommand(words);
  return found ? commandHelp(found.command) : generalHelp(COMMANDS);
}

/** The command whose words begin `argv`, and the arguments after them. */
function findCommand(argv: string[]): { command: Command; args: string[] } | undefined {
  for (const command of COMMANDS) {
    const words = command.name.split(' ');
    if (words.every((w, i) => argv[i] === w)) return { command, args: argv.slice(words.length) };
  }
  return undefined;
}

const wantsHelp = (args: string[]) => args.includes('--help') || args.includes('-h');

export async function main(argv: string[]): Promise<void> {
  try {
    if (argv.length === 0) return await start(loadConfig());
    if (argv[0] === '--help' || argv[0] === '-h') return console.log(generalHelp(COMMANDS));
    const found = findCommand(argv);
    if (!found) {
      const group = COMMANDS.filter((c) => c.name.startsWith(`${argv[0]} `));
      if (group.length && (argv.length === 1 || wantsHelp(argv.slice(1)))) {
        const list = group.map((c) => `  ${usageLine(c)}\n      ${c.summary}`).join('\n');
        if (wantsHelp(argv.slice(1))) return console.log(`Commands of tessera ${argv[0]}:\n${list}`);
        fail(`tessera ${argv[0]} needs a command:\n${list}`);
      }
      fail(`Unknown command: tessera ${argv.join(' ')}. \`tessera --help\` lists the commands.`);
    }
    const { command, args } = found;
    if (wantsHelp(args)) return console.log(commandHelp(command));
    const values = parseOptions(command, args);
    return await command.run(values, args);
  } catch (err) {
    const message = explain(err);
    if (message !== undefined) fail(message);
    throw err;
  }
}

/** What main() prints for an error, or undefined for an error that is a bug (it keeps its stack). */
function explain(err: unknown): string | undefined {
  if (err instanceof CliError || err instanceof ConfigError || err instanceof DataDirBusyError || err instanceof Argon2BuildError) return err.message;
  if (err instanceof AppError) return err.detail;
  // Writing the generated encryption key under DATA_DIR, before there is a Config.
  return explainFileError(err);
}

function parseOptions(command: Command, args: string[]): Values {
  let values: Values;
  try {
    ({ values } = parseArgs({
      args,
      options: Object.fromEntries(command.options.map((o) => [o.name, { type: o.value ? ('string' as const) : ('boolean' as const) }])),
      strict: true,
      allowPositionals: command.takesWords ?? false,
    }));
  } catch (err) {
    throw new CliError(`${(err as Error).message}\nUsage: ${usageLine(command)}`);
  }
  const missing = command.options.filter((o) => o.required && !values[o.name]).map((o) => `--${o.name}`);
  if (missing.length) throw new CliError(`tessera ${command.name} needs ${missing.join(' and ')}.\nUsage: ${usageLine(command)}`);
  return values;
}

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

async function start(config: Config) {
  const { createApp } = await import('./app.ts');
  const { seedDemo } = await import('./seed.ts');
  const { argon2Build } = await import('./users/argon2.ts');
  const log = createLogger(config.logLevel);
  const app = await onDatabase(config, () => createApp(config, { log }));
  // From here on a signal drains and stops, also while the server starts listening or seeds the
  // demo tenant: a balancer or an orchestrator may stop it at any moment.
  stopOnSignals(app);
  let url: string;
  let seeded: SeedOutcome | undefined;
  try {
    url = await onListen(config, () => app.start());
    // Only now: the demo tenant's secrets are printed once, so nothing may fail after they exist.
    seeded = config.seedDemo ? await onDatabase(config, () => seedDemo(app)) : undefined;
  } catch (err) {
    await app.stop(0).catch(() => {});
    throw err;
  }
  log.info({ url, publicUrl: config.publicUrl, database: app.connection.kind, argon2: argon2Build }, 'tessera listening');
  printStarted(config, url, seeded);
}

function printStarted(config: Config, url: string, seeded: SeedOutcome | undefined) {
  if (seeded && 'created' in seeded) return printDemo(config, seeded.created);
  console.log(
    `\nTessera is running at ${config.publicUrl} (listening on ${url}).\nEach tenant's portal: ${config.publicUrl}/t/<tenant>/portal/organizations\n`,
  );
  if (!seeded) return;
  if ('createdElsewhere' in seeded) {
    console.log(`Another instance, starting at the same time on this database, created the demo tenant and printed its secrets.\n${lostSecrets(config)}`);
  } else if (seeded.existing.demo) {
    console.log(`The demo tenant's secrets were printed when it was created.\n${lostSecrets(config)}`);
  }
}

function lostSecrets(config: Config) {
  const embedded = config.databaseUrl ? '' : ' (on the embedded database, stop this server first)';
  return `Lost them? New ones replace them${embedded}:
  npx tessera tenant rotate-admin-key --slug demo
  npx tessera tenant reset-admin-password --slug demo --email admin@demo.local
`;
}

function printDemo(config: Config, demo: Extract<SeedOutcome, { created: unknown }>['created']) {
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
  const { connect } = await import('./db/connect.ts');
  const { migrateToLatest } = await import('./db/migrate.ts');
  const { applied } = await onDatabase(config, async () => {
    const conn = await connect({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, connectTimeoutMs: config.databaseConnectTimeoutMs });
    try {
      return await migrateToLatest(conn.db);
    } finally {
      await conn.close();
    }
  });
  console.log(applied.length ? `Applied: ${applied.join(', ')}` : 'Database is up to date.');
}

/**
 * A tenant command's work on a migrated database. `sealsKeys`: the command encrypts new signing
 * keys, which with another key than the database's would make a tenant no instance can serve.
 */
async function withTenants<T>(config: Config, opts: { sealsKeys: boolean }, work: (tenants: TenantService, db: Database) => Promise<T>): Promise<T> {
  const { connect } = await import('./db/connect.ts');
  const { migrateToLatest } = await import('./db/migrate.ts');
  const { assertEncryptionKeyOpensDatabase } = await import('./encryption-key-check.ts');
  const { TenantService } = await import('./tenants/tenant.service.ts');
  return onDatabase(config, async () => {
    const conn = await connect({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2, connectTimeoutMs: config.databaseConnectTimeoutMs });
    try {
      await migrateToLatest(conn.db);
      if (opts.sealsKeys) await assertEncryptionKeyOpensDatabase(conn.db, config);
      return await work(new TenantService(conn.db, config.publicUrl, config.encryptionKey), conn.db);
    } finally {
      await conn.close();
    }
  });
}

async function findTenant(tenants: TenantService, slug: string) {
  const tenant = await tenants.findBySlug(slug);
  if (!tenant) throw new CliError(`There is no tenant "${slug}".`);
  return tenant;
}

function algOf(values: Values): 'ES256' | 'RS256' | undefined {
  const alg = values.alg as string | undefined;
  if (alg !== undefined && alg !== 'ES256' && alg !== 'RS256') throw new CliError('--alg must be ES256 or RS256.');
  return alg;
}

/** The command line's own log: on stderr, so that stdout carries only what the command prints (--json). */
const cliLog = (config: Config) => createLogger(config.logLevel, process.stderr);

async function tenantCreate(config: Config, values: Values) {
  const alg = algOf(values);
  const created = await withTenants(config, { sealsKeys: true }, (tenants) =>
    tenants.create({
      slug: values.slug as string,
      name: values.name as string,
      adminEmail: values['admin-email'] as string | undefined,
      adminPassword: values['admin-password'] as string | undefined,
      signingAlg: alg,
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

async function rotateAdminKey(config: Config, values: Values) {
  const slug = values.slug as string;
  const { tenant, key } = await withTenants(config, { sealsKeys: false }, async (tenants) => {
    const tenant = await findTenant(tenants, slug);
    return { tenant, key: await tenants.rotateAdminKey(tenant) };
  });
  cliLog(config).info({ tenant: tenant.slug, tenantId: tenant.id, action: 'admin_api_key_rotated' }, 'admin API keys replaced from the command line');
  if (values.json) {
    console.log(JSON.stringify({ tenant: { id: tenant.id, slug: tenant.slug, name: tenant.name }, admin_api_key: key }));
  } else {
    console.log(`New admin API key for ${tenant.slug}; the tenant's previous keys no longer work.
  Admin API key  ${key}   (shown once; store it now)`);
  }
}

async function resetAdminPassword(config: Config, values: Values) {
  const slug = values.slug as string;
  const given = values.password as string | undefined;
  const { BruteForce } = await import('./accounts/brute-force.ts');
  const { tenant, reset } = await withTenants(config, { sealsKeys: false }, async (tenants, db) => {
    const tenant = await findTenant(tenants, slug);
    const reset = await tenants.resetAdminPassword(tenant, values.email as string, given);
    // The operator vouches for the account: a lock from failed sign-ins would keep them out.
    await new BruteForce(db).unlock(tenant.id, reset.user.email);
    return { tenant, reset };
  });
  cliLog(config).info(
    { tenant: tenant.slug, tenantId: tenant.id, userId: reset.user.id, action: 'admin_password_reset', generated: given === undefined },
    'tenant administrator password reset from the command line; the user was signed out everywhere',
  );
  if (values.json) {
    const password = given === undefined ? { password: reset.password } : {};
    console.log(JSON.stringify({ tenant: { id: tenant.id, slug: tenant.slug, name: tenant.name }, user: reset.user, ...password }));
  } else if (given === undefined) {
    console.log(`New password for ${reset.user.email} at ${tenant.slug}; they are signed out everywhere.
  Password  ${reset.password}   (shown once; store it now)`);
  } else {
    console.log(`Password of ${reset.user.email} at ${tenant.slug} changed; they are signed out everywhere.`);
  }
}

async function keysRotate(config: Config, values: Values) {
  const alg = algOf(values);
  const slug = values.tenant as string;
  const kid = await withTenants(config, { sealsKeys: true }, async (tenants) => tenants.rotateKeys(await findTenant(tenants, slug), alg));
  console.log(`New signing key ${kid} for ${slug}. Previous keys stay in the JWKS for 24 hours.`);
}

async function sampleApp(args: string[]) {
  const { runSampleApp } = await import('./sample-app.ts');
  try {
    await runSampleApp(args);
  } catch (err) {
    // Its failures are the operator's to fix (an issuer it can't reach, a port in use): one line.
    const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : '';
    throw new CliError(`sample-app: ${(err as Error).message}${cause}`, { cause: err });
  }
}
