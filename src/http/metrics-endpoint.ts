import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Context } from 'koa';
import { Unauthorized } from '../base/errors.ts';
import type { Logger } from '../base/logger.ts';
import { constantTimeEqual } from '../crypto/secrets.ts';
import type { Metrics } from '../metrics/metrics.ts';

/**
 * Whether a request carries `Authorization: Bearer <token>`, compared in constant time (the
 * comparison's time says nothing about how much of a guess was right).
 */
export function hasBearer(authorization: string | undefined, token: string): boolean {
  const m = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
  return m !== null && constantTimeEqual(m[1]!, token);
}

/** `GET /metrics` on the public port: only with METRICS_TOKEN as a bearer token; a 401 problem otherwise. */
export function metricsRoute(metrics: Metrics, token: string) {
  return async (ctx: Context) => {
    if (!hasBearer(ctx.get('authorization') || undefined, token)) throw Unauthorized('The metrics need the bearer token set in METRICS_TOKEN.');
    const { contentType, body } = await metrics.exposition();
    ctx.type = contentType;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = body;
  };
}

/**
 * The metrics on a port of their own (METRICS_PORT, bound to METRICS_HOST): `GET /metrics` and
 * nothing else, for a scraper inside the network the public never reaches. With METRICS_TOKEN set
 * as well, the token is asked for here too.
 */
export async function startMetricsServer(metrics: Metrics, opts: { host: string; port: number; token: string | undefined; log: Logger }): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== '/metrics') return answer(res, 404, 'Not found: the metrics are at /metrics.\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 405, 'Only GET.\n', { Allow: 'GET, HEAD' });
    if (opts.token !== undefined && !hasBearer(req.headers.authorization, opts.token)) {
      return answer(res, 401, 'The metrics need the bearer token set in METRICS_TOKEN.\n', { 'WWW-Authenticate': 'Bearer' });
    }
    metrics.exposition().then(
      ({ contentType, body }) => answer(res, 200, req.method === 'HEAD' ? '' : body, { 'Content-Type': contentType, 'Cache-Control': 'no-store' }),
      (err) => {
        opts.log.error({ err }, 'metrics scrape failed');
        answer(res, 500, 'The metrics could not be collected; see the logs.\n');
      },
    );
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 20_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject).listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  opts.log.info({ address, port }, 'metrics listening');
  return server;
}

function answer(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers });
  res.end(body);
}
