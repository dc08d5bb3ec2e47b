import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { lookup as dnsLookupAsync } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';
import { ValidationFailed } from './errors.ts';

/**
 * HTTP requests Tessera makes on behalf of a tenant's configuration (an organization's IdP
 * metadata URL, an OIDC issuer's discovery, token, userinfo and JWKS endpoints). An organization
 * admin chooses those URLs, so without care they reach whatever the server can: its own loopback
 * services, the private network, the cloud's metadata endpoint. Here the host is resolved, every
 * address it resolves to is checked, and the socket connects to the address that was checked (the
 * check runs inside the socket's own DNS lookup: no second lookup for a rebinding DNS server to
 * answer differently). OUTBOUND_ALLOW_PRIVATE_NETWORKS lifts the address check (development and
 * tests, whose IdPs run on this machine); the timeout and the size cap always apply.
 */

/** A target Tessera does not connect to. `message` says which address and why, for people. */
export class OutboundRefused extends Error {
  override name = 'OutboundRefused';
  constructor(
    message: string,
    readonly address?: string,
    readonly kind?: string,
  ) {
    super(message);
  }
}

type Family = 'ipv4' | 'ipv6';
type Range = readonly [prefix: string, bits: number, kind: string];

/** Addresses that are not on the public internet, by kind (IANA special-purpose registries). */
const IPV4: Range[] = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'private (shared address space)'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'reserved'],
  ['192.88.99.0', 24, 'reserved'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'reserved'],
  ['198.51.100.0', 24, 'reserved'],
  ['203.0.113.0', 24, 'reserved'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];
const IPV6: Range[] = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['::', 96, 'reserved'], // IPv4-compatible (deprecated)
  ['64:ff9b:1::', 48, 'private'], // local-use NAT64
  ['100::', 64, 'reserved'], // discard-only
  ['2001::', 32, 'reserved'], // Teredo
  ['2001:db8::', 32, 'reserved'], // documentation
  ['fc00::', 7, 'private'], // unique local
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'private'], // site-local (deprecated)
  ['ff00::', 8, 'multicast'],
];
/**
 * IPv6 forms that carry an IPv4 address — IPv4-mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::a.b.c.d)
 * and 6to4 (2002:aabb:ccdd::) — are refused when the IPv4 address inside would be.
 */
const EMBEDDING: Array<{ prefix: (v4: string) => string; offset: number }> = [
  { prefix: (v4) => `::ffff:${v4}`, offset: 96 },
  { prefix: (v4) => `64:ff9b::${v4}`, offset: 96 },
  { prefix: (v4) => `2002:${hexPair(v4)}::`, offset: 16 },
];

function hexPair(v4: string): string {
  const [a, b, c, d] = v4.split('.').map(Number) as [number, number, number, number];
  return `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
}

const BLOCKED = (() => {
  const byKind = new Map<string, BlockList>();
  const add = (prefix: string, bits: number, family: Family, kind: string) => {
    let list = byKind.get(kind);
    if (!list) {
      list = new BlockList();
      byKind.set(kind, list);
    }
    list.addSubnet(prefix, bits, family);
  };
  // Kinds are checked in the order they first appear here, the catch-all "reserved" after
  // loopback and the others, so ::1 is named loopback rather than IPv4-compatible.
  for (const [prefix, bits, kind] of IPV4) {
    add(prefix, bits, 'ipv4', kind);
    for (const e of EMBEDDING) add(e.prefix(prefix), e.offset + bits, 'ipv6', kind);
  }
  for (const [prefix, bits, kind] of IPV6) add(prefix, bits, 'ipv6', kind);
  return [...byKind];
})();

/** The kind of non-public address `address` is ("loopback", "private" …), or undefined for a public one. */
export function nonPublicKind(address: string): string | undefined {
  const bare = address.replace(/^\[|\]$/g, '');
  const family = isIP(bare);
  if (family === 0) return 'unparseable';
  for (const [kind, list] of BLOCKED) {
    if (list.check(bare, family === 4 ? 'ipv4' : 'ipv6')) return kind;
  }
  return undefined;
}

function refuseAddress(host: string, address: string): OutboundRefused | undefined {
  const kind = nonPublicKind(address);
  if (!kind) return undefined;
  const what = host === address ? `${address} is` : `${host} resolves to ${address},`;
  return new OutboundRefused(`${what} a ${kind} address`, address, kind);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * The socket's DNS lookup: the system resolver's answer, refused as a whole when any address in
 * it is not public (a name that also resolves to an internal address is not one to trust).
 */
function checkedLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    for (const a of addresses) {
      const refused = refuseAddress(hostname, a.address);
      if (refused) return callback(refused as NodeJS.ErrnoException, []);
    }
    if (options.all) return callback(null, addresses);
    const first = addresses[0];
    if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
    callback(null, first.address, first.family);
  });
}

/** The request options Tessera's outbound calls take (what openid-client's customFetch passes). */
export interface OutboundInit {
  method?: string;
  headers?: HeadersInit;
  body?: string | URLSearchParams | Uint8Array | ArrayBuffer | ReadableStream | null;
  /** Redirects are never followed: 'error' turns one into an error, anything else returns the 3xx. */
  redirect?: RequestRedirect;
  signal?: AbortSignal | null;
}

export type OutboundFetch = (input: string | URL, init?: OutboundInit) => Promise<Response>;

export interface OutboundOptions {
  /** Connect to loopback, private and link-local addresses too (OUTBOUND_ALLOW_PRIVATE_NETWORKS). */
  allowPrivateNetworks: boolean;
  /** For the whole exchange, connection to last byte. */
  timeoutMs?: number;
  /** Answers larger than this are cut off with an error. */
  maxBytes?: number;
}

export class Outbound {
  private readonly timeoutMs: number;
  private readonly maxBytes: number;

  constructor(private readonly opts: OutboundOptions) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.maxBytes = opts.maxBytes ?? 1_000_000;
  }

  /** A fetch-compatible function (Response in, Response out) that only reaches allowed addresses. */
  readonly fetch: OutboundFetch = async (input, init = {}) => {
    const url = new URL(input);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new OutboundRefused(`${url.protocol} URLs are not fetched`);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    // A literal address never reaches the socket's lookup: it is checked here.
    if (!this.opts.allowPrivateNetworks && isIP(host)) {
      const refused = refuseAddress(host, host);
      if (refused) throw refused;
    }
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    const res = await this.exchange(url, init, await bodyBytes(init.body), signal);
    if (init.redirect === 'error' && res.status >= 300 && res.status < 400)
      throw new OutboundRefused(`${url.origin} answered with a redirect (${res.status}), which is not followed`);
    return res;
  };

  /**
   * For configuration time: refuses, as a 422 naming `field`, a URL whose host is or resolves to
   * an address Tessera does not connect to. A name that does not resolve (yet) passes: every
   * request to it is checked again when it is made.
   */
  async assertAllowedTarget(rawUrl: string, field: string): Promise<void> {
    if (this.opts.allowPrivateNetworks) return;
    const host = new URL(rawUrl).hostname.replace(/^\[|\]$/g, '');
    const addresses = isIP(host) ? [host] : (await resolveAll(host).catch(() => [])).map((a) => a.address);
    for (const address of addresses) {
      const refused = refuseAddress(host, address);
      if (refused) throw refusedField(field, refused);
    }
  }

  private exchange(url: URL, init: OutboundInit, body: Buffer | undefined, signal: AbortSignal): Promise<Response> {
    const method = (init.method ?? 'GET').toUpperCase();
    const headers = new Headers(init.headers ?? {});
    if (!headers.has('user-agent')) headers.set('user-agent', 'Tessera');
    if (init.body instanceof URLSearchParams && !headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
    if (body) headers.set('content-length', String(body.length));

    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<Response>((resolve, reject) => {
      let done = false;
      const finish = (err: unknown, response?: Response) => {
        if (done) return;
        done = true;
        if (response) return resolve(response);
        req.destroy();
        reject(err);
      };
      const req = send(
        url,
        {
          method,
          headers: plainHeaders(headers),
          signal,
          // A connection of its own, to the address its lookup checked (never a pooled socket).
          agent: false,
          ...(this.opts.allowPrivateNetworks ? {} : { lookup: checkedLookup }),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > this.maxBytes) finish(new OutboundRefused(`the answer from ${url.origin} is larger than ${this.maxBytes.toLocaleString('en')} bytes`));
            else chunks.push(chunk);
          });
          res.on('end', () => finish(undefined, toResponse(res, method, Buffer.concat(chunks))));
          res.on('error', (err) => finish(err));
          res.on('close', () => finish(new Error(`the connection to ${url.origin} closed before the answer was complete`)));
        },
      );
      req.on('error', (err) => {
        const timedOut = signal.aborted && (signal.reason as Error | undefined)?.name === 'TimeoutError';
        finish(timedOut ? new OutboundRefused(`${url.origin} did not answer within ${Math.round(this.timeoutMs / 100) / 10} s`) : err);
      });
      req.end(body);
    });
  }
}

async function bodyBytes(body: OutboundInit['body']): Promise<Buffer | undefined> {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string' || body instanceof URLSearchParams) return Buffer.from(body.toString());
  if (body instanceof Uint8Array) return Buffer.from(body);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  return Buffer.from(await new Response(body).arrayBuffer());
}

function toResponse(res: IncomingMessage, method: string, body: Buffer): Response {
  const status = res.statusCode ?? 502;
  const headers = new Headers();
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
  const empty = method === 'HEAD' || status === 204 || status === 205 || status === 304;
  return new Response(empty ? null : new Uint8Array(body), { status, statusText: res.statusMessage ?? '', headers });
}

function plainHeaders(headers: Headers): Record<string, string> {
  const plain: Record<string, string> = {};
  headers.forEach((value, name) => {
    plain[name] = value;
  });
  return plain;
}

const resolveAll = (host: string) => dnsLookupAsync(host, { all: true });

/** A refused target as the 422 of the configuration field that named it. */
export function refusedField(field: string, err: OutboundRefused) {
  return ValidationFailed(`${field} is refused: ${err.message}. Tessera connects only to public internet addresses on behalf of a tenant.`, [
    { field, message: err.kind ? `points at a ${err.kind} address` : 'not an allowed address' },
  ]);
}
