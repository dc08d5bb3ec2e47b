import http from 'node:http';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Keep-alive connections, as a real app's HTTP client holds them. */
export const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 256 });

/**
 * A bare HTTP/1.1 request over loopback: the load generator should spend as little CPU as it
 * can (no fetch/openid-client machinery), so what is measured is the server. `agent: false`
 * opens a new connection for this request and closes it after.
 */
export function send(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; agent?: http.Agent | false } = {},
  retried = false,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: opts.method ?? (opts.body !== undefined ? 'POST' : 'GET'),
        agent: opts.agent ?? keepAlive,
        headers: {
          ...(opts.body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(opts.body)) } : {}),
          ...(opts.agent === false ? { connection: 'close' } : {}),
          ...opts.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      // A kept-alive connection the server closed just as it was reused: the request never
      // reached it, so sending it again is safe (Node's documented pattern, req.reusedSocket).
      if (!retried && req.reusedSocket && err.code === 'ECONNRESET') resolve(send(url, opts, true));
      else reject(err);
    });
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

export const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
export const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** Throws unless the reply has the status; the error names what came back. */
export function expectStatus(r: Reply, ...statuses: number[]): Reply {
  if (!statuses.includes(r.status)) throw new Error(`HTTP ${r.status}: ${r.body.slice(0, 200)}`);
  return r;
}

/** The cookies of one browser, by name (the flows here stay on one host). */
export class CookieJar {
  private readonly cookies = new Map<string, string>();
  take(r: Reply) {
    for (const c of r.headers['set-cookie'] ?? []) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (value === '' || /max-age=0|expires=Thu, 01 Jan 1970/i.test(c)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return r;
  }
  header(): Record<string, string> {
    return this.cookies.size ? { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } : {};
  }
}
