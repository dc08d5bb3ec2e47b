import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Each sign-in method and the outcomes it has: `password` at the sign-in page; `sso` an
 * organization IdP's answer; `sso_link` the proof that an existing account is the person's, which
 * completes an `sso` answer that was `proof_required`; `passkey` a sign-in with a passkey alone
 * (a passkey as second factor counts under `password`). Every series is there from the start, at 0.
 */
const SIGN_IN_OUTCOMES = {
  password: ['signed_in', 'invalid_credentials', 'locked', 'sso_required', 'email_unverified'],
  sso: ['signed_in', 'proof_required', 'refused', 'error'],
  sso_link: ['signed_in', 'invalid_credentials', 'locked', 'refused', 'error'],
  passkey: ['signed_in', 'invalid_credentials', 'locked', 'sso_required', 'email_unverified'],
} as const;
type SignInOutcomes = typeof SIGN_IN_OUTCOMES;
export type SignInMethod = keyof SignInOutcomes;
/** How an SSO sign-in ended, as sso/sso.routes.ts decides it. */
export type SsoSignInOutcome = SignInOutcomes['sso'][number];

/** What is read only when Prometheus scrapes: each a cheap look at state kept elsewhere. */
export interface ScrapeReaders {
  /** The database pool now; undefined where there is none (the embedded database). */
  pool?: () => { total: number; idle: number; waiting: number } | undefined;
  /** Mail waiting to be sent (all tenants); undefined when it could not be counted just now. */
  mailQueueDepth?: () => Promise<number | undefined>;
  /** Built OpenID Providers held in the cache. */
  providerCacheSize?: () => number;
}

interface RequestSeries {
  count: Counter.Internal;
  duration: Histogram.Internal<string>;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/**
 * Request latencies: a token request takes a few milliseconds, an argon2 sign-in tens, a cold
 * SAML metadata fetch seconds.
 */
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Statement latencies: most take well under a millisecond on a nearby PostgreSQL. */
const STATEMENT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];

/**
 * Tessera's Prometheus metrics: one registry per app (never prom-client's global one, so several
 * apps in one process — the tests — keep apart), and the few calls the code makes where things
 * happen. Every label takes its value from a fixed set or from something an operator created (a
 * tenant's slug, a route of the code): nothing a request brings becomes a label, so no request can
 * add a series.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'method' | 'route' | 'status'>;
  private readonly requestDuration: Histogram<'method' | 'route' | 'status_class'>;
  /** route → method → status → its series, so a request looks up its children without building a key. */
  private readonly requestSeries = new Map<string, Map<string, Map<number, RequestSeries>>>();
  private readonly tokens: Counter<'grant_type' | 'tenant'>;
  private readonly signIns: Counter<'method' | 'outcome'>;
  private readonly ssoSignIns: Counter<'type' | 'outcome'>;
  private readonly mailSent: Counter;
  private readonly mailFailures: Counter<'final'>;
  private readonly statementDuration: Histogram<'outcome'>;
  private readonly statementOk: Histogram.Internal<'outcome'>;
  private readonly statementFailed: Histogram.Internal<'outcome'>;
  private readonly providerHits: Counter;
  private readonly providerMisses: Counter;
  private readers: ScrapeReaders = {};

  constructor() {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'tessera_http_requests_total',
      help: 'HTTP requests answered, by method, route template and status code.',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.requestDuration = new Histogram({
      name: 'tessera_http_request_duration_seconds',
      help: 'Time from receiving a request to answering it, by method, route template and status class.',
      labelNames: ['method', 'route', 'status_class'],
      buckets: REQUEST_BUCKETS,
      registers,
    });
    this.tokens = new Counter({
      name: 'tessera_tokens_issued_total',
      help: 'Successful token-endpoint grants, and access tokens minted by Tessera (organization switch, API tokens), by grant type and tenant.',
      labelNames: ['grant_type', 'tenant'],
      registers,
    });
    this.signIns = new Counter({
      name: 'tessera_sign_ins_total',
      help: 'Sign-in attempts by method (password, sso, sso_link, passkey) and outcome.',
      labelNames: ['method', 'outcome'],
      registers,
    });
    this.ssoSignIns = new Counter({
      name: 'tessera_sso_sign_ins_total',
      help: "Answers from organizations' IdPs by connection type and outcome (signed_in, proof_required, refused, error).",
      labelNames: ['type', 'outcome'],
      registers,
    });
    for (const [method, outcomes] of Object.entries(SIGN_IN_OUTCOMES)) for (const outcome of outcomes) this.signIns.labels(method, outcome).inc(0);
    for (const type of ['saml', 'oidc']) for (const outcome of SIGN_IN_OUTCOMES.sso) this.ssoSignIns.labels(type, outcome).inc(0);
    this.mailSent = new Counter({ name: 'tessera_mail_sent_total', help: 'Mail handed to the transport (SMTP or the dev outbox).', registers });
    this.mailFailures = new Counter({
      name: 'tessera_mail_send_failures_total',
      help: 'Failed sends; final="true" when the message is given up (MAIL_MAX_ATTEMPTS reached), "false" when it will be retried.',
      labelNames: ['final'],
      registers,
    });
    for (const final of ['true', 'false']) this.mailFailures.labels(final).inc(0);
    this.statementDuration = new Histogram({
      name: 'tessera_db_statement_duration_seconds',
      help: 'Time to run a database statement as the application waits for it (a one-round-trip batch counts once).',
      labelNames: ['outcome'],
      buckets: STATEMENT_BUCKETS,
      registers,
    });
    this.statementOk = this.statementDuration.labels('ok');
    this.statementFailed = this.statementDuration.labels('error');
    this.providerHits = new Counter({
      name: 'tessera_provider_cache_hits_total',
      help: "Requests that found their tenant's OpenID Provider already built.",
      registers,
    });
    this.providerMisses = new Counter({
      name: 'tessera_provider_cache_misses_total',
      help: "Requests that had their tenant's OpenID Provider built (first use, a configuration change, or evicted from the cache).",
      registers,
    });

    const readers = () => this.readers;
    // The pool is read first: the queue count below takes a connection for itself.
    const poolGauge = (name: string, help: string, read: (p: { total: number; idle: number; waiting: number }) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const pool = readers().pool?.();
          if (pool) this.set(read(pool));
        },
      });
    poolGauge('tessera_db_pool_connections', 'Connections the database pool holds open.', (p) => p.total);
    poolGauge('tessera_db_pool_idle_connections', 'Open connections not in use.', (p) => p.idle);
    poolGauge(
      'tessera_db_pool_waiting_clients',
      'Queries waiting for a connection: above zero for long, the pool is too small or the database too slow.',
      (p) => p.waiting,
    );
    new Gauge({
      name: 'tessera_provider_cache_size',
      help: 'Built OpenID Providers held (at most TENANT_PROVIDER_CACHE_SIZE).',
      registers,
      collect() {
        const size = readers().providerCacheSize?.();
        if (size !== undefined) this.set(size);
      },
    });
    new Gauge({
      name: 'tessera_mail_queue_depth',
      help: 'Mail waiting to be sent, all tenants and instances (read from the outbox when scraped).',
      registers,
      async collect() {
        const depth = await readers().mailQueueDepth?.();
        if (depth !== undefined) this.set(depth);
      },
    });
  }

  /**
   * Event-loop lag, garbage collection, memory, CPU and file descriptors (prom-client's default
   * metrics, under their usual unprefixed names). They start a loop-delay monitor and a GC
   * observer that live as long as the process, so only an app whose metrics are served asks for them.
   */
  collectProcessMetrics() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** What the scrape-time gauges read (the pool, the outbox, the provider cache), once those exist. */
  readAtScrape(readers: ScrapeReaders) {
    this.readers = { ...this.readers, ...readers };
  }

  /** The Prometheus text exposition of every metric. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** One answered request. `route` is a route template or `unmatched`, never a raw path. */
  request(method: string, route: string, status: number, seconds: number) {
    const m = METHODS.has(method) ? method : 'OTHER';
    let byMethod = this.requestSeries.get(route);
    if (!byMethod) {
      byMethod = new Map();
      this.requestSeries.set(route, byMethod);
    }
    let byStatus = byMethod.get(m);
    if (!byStatus) {
      byStatus = new Map();
      byMethod.set(m, byStatus);
    }
    let series = byStatus.get(status);
    if (!series) {
      series = { count: this.requests.labels(m, route, String(status)), duration: this.requestDuration.labels(m, route, `${Math.floor(status / 100)}xx`) };
      byStatus.set(status, series);
    }
    series.count.inc();
    series.duration.observe(seconds);
  }

  /** A token issued to a tenant's client. `tenant` is the slug of a tenant that exists. */
  tokenIssued(grantType: string, tenant: string) {
    this.tokens.labels(grantType, tenant).inc();
  }

  signIn<M extends SignInMethod>(method: M, outcome: SignInOutcomes[M][number]) {
    this.signIns.labels(method, outcome).inc();
  }

  /** An organization IdP's answer; also counted as a sign-in with method `sso`. */
  ssoSignIn(type: 'saml' | 'oidc', outcome: SsoSignInOutcome) {
    this.ssoSignIns.labels(type, outcome).inc();
    this.signIn('sso', outcome);
  }

  mailDelivered() {
    this.mailSent.inc();
  }

  mailFailed(final: boolean) {
    this.mailFailures.labels(final ? 'true' : 'false').inc();
  }

  statement(seconds: number, failed: boolean) {
    (failed ? this.statementFailed : this.statementOk).observe(seconds);
  }

  providerCache(hit: boolean) {
    (hit ? this.providerHits : this.providerMisses).inc();
  }
}
