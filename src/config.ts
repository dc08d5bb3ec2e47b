import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { ARGON2_LEVELS } from './users/argon2-builds.ts';

/**
 * Everything Tessera reads from the environment, validated once, frozen, and passed down.
 * No other module reads process.env.
 */
export interface Config {
  readonly port: number;
  readonly host: string;
  readonly publicUrl: string;
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly smtpUrl: string | undefined;
  readonly mail: {
    /** Address in the From header; the display name is the tenant's. */
    readonly from: string;
    /** How often the outbox worker looks for due mail (it is also woken on every enqueue). */
    readonly pollMs: number;
    /** First retry delay; doubles per attempt, capped at an hour. */
    readonly retryBaseMs: number;
    /** Attempts before a message is marked failed (visible at GET /api/v1/admin/mail). */
    readonly maxAttempts: number;
  };
  readonly logLevel: string;
  /** 32 bytes; encrypts signing keys at rest and derives cookie keys. */
  readonly encryptionKey: Buffer;
  /** Where the key was read from when ENCRYPTION_KEY is not set (generated there on first use). */
  readonly encryptionKeyFile: string | undefined;
  readonly trustProxy: boolean;
  /** Seed the `demo` tenant on an empty database. */
  readonly seedDemo: boolean;
  /** How long a tenant row may be served from memory before it is re-read (cross-instance staleness bound). */
  readonly tenantCacheTtlMs: number;
  /** How many tenants' built OpenID Providers an instance keeps (least recently used go first). */
  readonly tenantProviderCacheSize: number;
  /** Hot statements prepared once per connection (off behind a pooler in transaction mode). */
  readonly databasePreparedStatements: boolean;
  /**
   * A tenant-scoped statement goes with its scope in one round trip, its parameters inlined as
   * literals (db/one-shot.ts); off, it runs in an ordinary transaction with bound parameters.
   */
  readonly databaseOneShot: boolean;
  /**
   * How long a request waits for a database connection — a new one to open, or a free one from
   * the pool — before it fails (503): while the database is unreachable requests fail fast
   * instead of hanging.
   */
  readonly databaseConnectTimeoutMs: number;
  /**
   * PostgreSQL's statement_timeout for the serving pool; a statement unanswered this long plus a
   * margin gives its connection up (db/statement-watchdog.ts). 0: no bound.
   */
  readonly databaseStatementTimeoutMs: number;
  /**
   * Outbound requests for a tenant's configuration (IdP metadata, OIDC discovery) may reach
   * loopback, private and link-local addresses: development and tests only.
   */
  readonly outboundAllowPrivateNetworks: boolean;
  /**
   * After SIGTERM or SIGINT, how long /readyz answers 503 `draining` while requests are still
   * served, before the listener closes (a second signal cuts it short).
   */
  readonly shutdownGraceMs: number;
  /** How often each instance suspends organizations whose trial ended (orgs/org-lifecycle.ts). */
  readonly trialCheckMs: number;
  /** GET /metrics (Prometheus): off unless a token or a port of its own is set. */
  readonly metrics: {
    /** Bearer token that /metrics asks for (on the public port; on METRICS_PORT too when set). */
    readonly token: string | undefined;
    /** A port of their own, without the public port's routes; /metrics is then not on the public port. */
    readonly port: number | undefined;
    readonly host: string;
  };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const booleanString = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');

const EnvSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must start with postgres:// or postgresql://')
    .optional(),
  DATA_DIR: z.string().min(1).default('./.tessera'),
  SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\//, 'must start with smtp:// or smtps://')
    .optional(),
  MAIL_FROM: z.email('must be an email address').optional(),
  MAIL_POLL_MS: z.coerce.number().int().min(50).max(600_000).default(2000),
  MAIL_RETRY_BASE_MS: z.coerce.number().int().min(10).max(3_600_000).default(10_000),
  MAIL_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(10),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Read by users/argon2.ts as the binding loads, before any Config exists; checked here so a
  // wrong name stops the process like any other bad value, before argon2 is loaded.
  TESSERA_ARGON2_BUILD: z.enum(['auto', 'portable', ...ARGON2_LEVELS.map((l) => l.name)]).default('auto'),
  ENCRYPTION_KEY: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex characters (32 bytes); generate one with `openssl rand -hex 32`')
    .optional(),
  TRUST_PROXY: booleanString.default(false),
  SEED_DEMO: booleanString.default(true),
  DATABASE_PREPARED_STATEMENTS: booleanString.default(true),
  DATABASE_ONE_SHOT: booleanString.default(true),
  DATABASE_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(3000),
  DATABASE_STATEMENT_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .refine((ms) => ms === 0 || (ms >= 100 && ms <= 600_000), 'must be 0 (no bound) or 100 to 600000')
    .default(10_000),
  OUTBOUND_ALLOW_PRIVATE_NETWORKS: booleanString.default(false),
  TENANT_CACHE_TTL_MS: z.coerce.number().int().min(0).max(600_000).default(1000),
  TENANT_PROVIDER_CACHE_SIZE: z.coerce.number().int().min(1).max(1_000_000).default(500),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(600_000).default(5000),
  ORG_TRIAL_CHECK_MS: z.coerce.number().int().min(1000).max(86_400_000).default(60_000),
  // Long and random, since it may face the internet.
  METRICS_TOKEN: z
    .string()
    .regex(/^[\x21-\x7e]{32,512}$/, 'must be 32 to 512 printable characters without spaces; generate one with `openssl rand -hex 32`')
    .optional(),
  METRICS_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  // Loopback by default, so only the host (or the pod's sidecar) can scrape.
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
});

type EnvName = keyof typeof EnvSchema.shape;

/**
 * One line per variable for `tessera --help` (docs/configuration.md says more). Keyed by the
 * schema, so a variable without its line does not compile; `unset` is what an optional variable
 * without a default means. Defaults are read from the schema.
 */
const ENV_HELP: { readonly [K in EnvName]: { text: string; unset?: string } } = {
  PORT: { text: 'port to listen on (0: any free port)' },
  HOST: { text: 'interface to listen on' },
  PUBLIC_URL: { text: "the URL users reach; a tenant's issuer is $PUBLIC_URL/t/<slug>", unset: 'http://localhost:$PORT' },
  DATABASE_URL: { text: 'postgres://user:password@host:5432/db for PostgreSQL', unset: 'embedded PGlite under DATA_DIR' },
  DATA_DIR: { text: 'embedded database, generated encryption key, dev mail outbox' },
  SMTP_URL: { text: 'smtp:// or smtps:// URL of the mail server', unset: 'dev outbox: mail written to $DATA_DIR/outbox' },
  MAIL_FROM: { text: 'address in the From header of mail', unset: 'no-reply@<PUBLIC_URL host>' },
  MAIL_POLL_MS: { text: 'how often the mail worker looks for due mail' },
  MAIL_RETRY_BASE_MS: { text: 'first retry delay of a failed send; doubles per attempt, at most an hour' },
  MAIL_MAX_ATTEMPTS: { text: 'attempts before a message is marked failed' },
  LOG_LEVEL: { text: 'fatal, error, warn, info, debug, trace or silent' },
  TESSERA_ARGON2_BUILD: { text: `argon2 binary for password hashing: auto, portable, ${ARGON2_LEVELS.map((l) => l.name).join(', ')}` },
  ENCRYPTION_KEY: {
    text: 'encrypts signing keys at rest; 64 hex chars (openssl rand -hex 32); set it in production',
    unset: 'generated into $DATA_DIR/encryption.key',
  },
  TRUST_PROXY: { text: 'trust X-Forwarded-* from a proxy in front' },
  SEED_DEMO: { text: 'create the demo tenant on an empty database (set false in production)' },
  DATABASE_PREPARED_STATEMENTS: { text: 'prepare a few hot reads per connection (false behind a transaction-mode pooler)' },
  DATABASE_ONE_SHOT: { text: 'send a tenant-scoped statement with its scope in one round trip, parameters inlined' },
  OUTBOUND_ALLOW_PRIVATE_NETWORKS: { text: "let a tenant's SSO configuration fetch private addresses (development and tests only)" },
  TENANT_CACHE_TTL_MS: { text: 'how long an instance trusts cached tenant, client and admin key rows' },
  TENANT_PROVIDER_CACHE_SIZE: { text: "how many tenants' built OpenID Providers an instance keeps" },
  DATABASE_CONNECT_TIMEOUT_MS: { text: 'how long a request waits for a database connection before it is answered 503' },
  DATABASE_STATEMENT_TIMEOUT_MS: { text: 'longest a statement of a request may run (or go unanswered) before it is answered 503; 0: no bound' },
  SHUTDOWN_GRACE_MS: { text: 'after SIGTERM/SIGINT, how long /readyz answers 503 while requests are still served (0: close at once)' },
  ORG_TRIAL_CHECK_MS: { text: 'how often each instance suspends organizations whose trial ended' },
  METRICS_TOKEN: { text: 'bearer token that GET /metrics asks for (openssl rand -hex 32)', unset: '/metrics is off unless METRICS_PORT is set' },
  METRICS_PORT: { text: 'serve /metrics on this port of its own instead of the public one', unset: 'none' },
  METRICS_HOST: { text: 'interface of METRICS_PORT' },
};

/** Every variable of the schema with its default and its line of help, in the schema's order. */
export function environmentVariables(): Array<{ name: string; default: string; text: string }> {
  return Object.entries(EnvSchema.shape).map(([name, schema]) => {
    const help = ENV_HELP[name as EnvName];
    const fallback = schema instanceof z.ZodDefault ? String(schema.def.defaultValue) : (help.unset ?? 'unset');
    return { name, default: fallback, text: help.text };
  });
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings mean "unset": `FOO= npm start` should not fail validation.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));
  const parsed = EnvSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid environment:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if (e.METRICS_PORT !== undefined && e.METRICS_PORT === e.PORT) throw new ConfigError('Invalid environment:\n  METRICS_PORT: must differ from PORT');
  const dataDir = resolve(e.DATA_DIR);
  const publicUrl = (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, '');
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    publicUrl,
    databaseUrl: e.DATABASE_URL,
    databasePreparedStatements: e.DATABASE_PREPARED_STATEMENTS,
    databaseOneShot: e.DATABASE_ONE_SHOT,
    databaseConnectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT_MS,
    databaseStatementTimeoutMs: e.DATABASE_STATEMENT_TIMEOUT_MS,
    dataDir,
    smtpUrl: e.SMTP_URL,
    mail: Object.freeze({
      from: e.MAIL_FROM ?? `no-reply@${new URL(publicUrl).hostname}`,
      pollMs: e.MAIL_POLL_MS,
      retryBaseMs: e.MAIL_RETRY_BASE_MS,
      maxAttempts: e.MAIL_MAX_ATTEMPTS,
    }),
    logLevel: e.LOG_LEVEL,
    encryptionKey: e.ENCRYPTION_KEY ? Buffer.from(e.ENCRYPTION_KEY, 'hex') : encryptionKeyFromDataDir(dataDir),
    encryptionKeyFile: e.ENCRYPTION_KEY ? undefined : encryptionKeyFileOf(dataDir),
    trustProxy: e.TRUST_PROXY,
    seedDemo: e.SEED_DEMO,
    tenantCacheTtlMs: e.TENANT_CACHE_TTL_MS,
    tenantProviderCacheSize: e.TENANT_PROVIDER_CACHE_SIZE,
    outboundAllowPrivateNetworks: e.OUTBOUND_ALLOW_PRIVATE_NETWORKS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    trialCheckMs: e.ORG_TRIAL_CHECK_MS,
    metrics: Object.freeze({ token: e.METRICS_TOKEN, port: e.METRICS_PORT, host: e.METRICS_HOST }),
  });
}

const encryptionKeyFileOf = (dataDir: string) => join(dataDir, 'encryption.key');

/**
 * Without ENCRYPTION_KEY the key lives in `$DATA_DIR/encryption.key`, created on first use, so a
 * bare `npm start` works. Production sets ENCRYPTION_KEY so every instance shares it.
 */
function encryptionKeyFromDataDir(dataDir: string): Buffer {
  const file = encryptionKeyFileOf(dataDir);
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    try {
      writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const hex = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/i.test(hex)) throw new ConfigError(`${file} does not hold a 64-hex-character key`);
  return Buffer.from(hex, 'hex');
}
