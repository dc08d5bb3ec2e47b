import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { AppError } from '../../src/base/errors.ts';
import { nonPublicKind, Outbound, OutboundRefused } from '../../src/base/outbound-fetch.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';

test('addresses that are not on the public internet are named by kind, in every IPv6 form that carries an IPv4 one', (t) => {
  const cases: Record<string, string | undefined> = {
    '127.0.0.1': 'loopback',
    '127.255.255.254': 'loopback',
    '10.0.0.1': 'private',
    '172.16.0.1': 'private',
    '172.31.255.255': 'private',
    '192.168.1.1': 'private',
    '100.64.0.1': 'private (shared address space)',
    '169.254.169.254': 'link-local',
    '0.0.0.0': 'unspecified',
    '224.0.0.1': 'multicast',
    '255.255.255.255': 'reserved',
    '192.0.2.10': 'reserved',
    '::1': 'loopback',
    '[::1]': 'loopback',
    '::': 'unspecified',
    '::ffff:127.0.0.1': 'loopback',
    '::ffff:7f00:1': 'loopback',
    '0:0:0:0:0:ffff:a9fe:a9fe': 'link-local',
    '::ffff:10.1.2.3': 'private',
    '64:ff9b::a9fe:a9fe': 'link-local',
    '64:ff9b::127.0.0.1': 'loopback',
    '2002:7f00:1::': 'loopback',
    '2002:a00:1::1': 'private',
    '::127.0.0.1': 'reserved',
    'fc00::1': 'private',
    'fd12:3456::1': 'private',
    'fe80::1': 'link-local',
    'ff02::1': 'multicast',
    '2001:db8::1': 'reserved',
    'not an address': 'unparseable',
    // public
    '8.8.8.8': undefined,
    '1.1.1.1': undefined,
    '172.32.0.1': undefined,
    '93.184.216.34': undefined,
    '::ffff:8.8.8.8': undefined,
    '64:ff9b::808:808': undefined,
    '2606:4700:4700::1111': undefined,
    '2a00:1450:4001:82a::200e': undefined,
  };
  for (const [address, kind] of Object.entries(cases)) t.is(nonPublicKind(address), kind, address);
});

/** A local HTTP server that counts what reaches it. */
async function localServer(handle: (req: IncomingMessage, res: import('node:http').ServerResponse) => void = (_req, res) => res.end('hello')) {
  const seen: IncomingMessage[] = [];
  const server: Server = createServer((req, res) => {
    seen.push(req);
    handle(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { port, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('refused targets are never connected to: literal addresses, and names that resolve to them', async (t) => {
  const srv = await localServer();
  t.teardown(srv.close);
  const outbound = new Outbound({ allowPrivateNetworks: false });
  for (const url of [
    `http://127.0.0.1:${srv.port}/`,
    `http://localhost:${srv.port}/`,
    `http://[::1]:${srv.port}/`,
    `http://[::ffff:127.0.0.1]:${srv.port}/`,
    'http://0x7f.1/',
    'http://2130706433/',
    'http://169.254.169.254/latest/meta-data/',
    'http://10.0.0.1/',
  ]) {
    const err = await t.throwsAsync(outbound.fetch(url), { instanceOf: OutboundRefused }, url);
    t.truthy(err?.kind, url);
  }
  const viaName = await t.throwsAsync(outbound.fetch(`http://localhost:${srv.port}/`), { instanceOf: OutboundRefused });
  t.regex(viaName!.message, /^localhost resolves to (127\.0\.0\.1|::1), a loopback address$/);
  t.is(srv.seen.length, 0, 'nothing reached the server');
  await t.throwsAsync(outbound.fetch('file:///etc/passwd'), { instanceOf: OutboundRefused });
});

test('with private networks allowed it fetches: method, headers and form body pass through; the answer is a Response', async (t) => {
  const srv = await localServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () =>
      res
        .writeHead(201, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] })
        .end(JSON.stringify({ method: req.method, type: req.headers['content-type'], auth: req.headers.authorization, body })),
    );
  });
  t.teardown(srv.close);
  const outbound = new Outbound({ allowPrivateNetworks: true });
  const res = await outbound.fetch(`http://localhost:${srv.port}/token`, {
    method: 'POST',
    headers: { authorization: 'Basic x' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: 'c' }),
  });
  t.true(res instanceof Response);
  t.is(res.status, 201);
  t.deepEqual(res.headers.getSetCookie(), ['a=1', 'b=2']);
  t.deepEqual(await res.json(), {
    method: 'POST',
    type: 'application/x-www-form-urlencoded;charset=UTF-8',
    auth: 'Basic x',
    body: 'grant_type=authorization_code&code=c',
  });
  t.is((await outbound.fetch(`http://127.0.0.1:${srv.port}/`, { method: 'HEAD' })).status, 201);
});

test('answers are capped in size and time; redirects are not followed', async (t) => {
  const srv = await localServer((req, res) => {
    if (req.url === '/big') return res.end(Buffer.alloc(2048, 'x'));
    if (req.url === '/slow') return setTimeout(() => res.end('late'), 2000);
    if (req.url === '/moved') return res.writeHead(302, { location: 'http://169.254.169.254/' }).end();
    res.end('ok');
  });
  t.teardown(srv.close);
  const outbound = new Outbound({ allowPrivateNetworks: true, maxBytes: 1024, timeoutMs: 300 });
  await t.throwsAsync(outbound.fetch(`http://127.0.0.1:${srv.port}/big`), { instanceOf: OutboundRefused, message: /larger than 1,024 bytes/ });
  await t.throwsAsync(outbound.fetch(`http://127.0.0.1:${srv.port}/slow`), { instanceOf: OutboundRefused, message: /did not answer within 0\.3 s/ });
  await t.throwsAsync(outbound.fetch(`http://127.0.0.1:${srv.port}/moved`, { redirect: 'error' }), { message: /redirect \(302\)/ });
  const manual = await outbound.fetch(`http://127.0.0.1:${srv.port}/moved`, { redirect: 'manual' });
  t.is(manual.status, 302);
  t.is(await (await outbound.fetch(`http://127.0.0.1:${srv.port}/`)).text(), 'ok');
});

test('configuration time: a URL pointing at a non-public address is a 422 naming the field; a name that does not resolve passes', async (t) => {
  const outbound = new Outbound({ allowPrivateNetworks: false });
  for (const url of ['http://127.0.0.1:8080', 'https://10.0.0.1', 'https://169.254.169.254', 'http://[::1]:8080', 'http://localhost:8080']) {
    const err = await t.throwsAsync(outbound.assertAllowedTarget(url, 'issuer_url'), { instanceOf: AppError }, url);
    t.is(err!.status, 422);
    t.deepEqual(
      err!.errors?.map((e) => e.field),
      ['issuer_url'],
    );
    t.regex(err!.detail, /^issuer_url is refused: .* a (loopback|private|link-local) address\. Tessera connects only to public internet addresses/);
  }
  await t.notThrowsAsync(outbound.assertAllowedTarget('https://idp.tessera.invalid', 'issuer_url'));
  await t.notThrowsAsync(outbound.assertAllowedTarget('https://8.8.8.8', 'issuer_url'));
  await t.notThrowsAsync(new Outbound({ allowPrivateNetworks: true }).assertAllowedTarget('http://127.0.0.1:8080', 'issuer_url'));
});

test('OUTBOUND_ALLOW_PRIVATE_NETWORKS: off by default, a boolean, a bad value named', (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-config-'));
  t.false(loadConfig({ DATA_DIR: dataDir }).outboundAllowPrivateNetworks);
  t.true(loadConfig({ DATA_DIR: dataDir, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' }).outboundAllowPrivateNetworks);
  t.throws(() => loadConfig({ DATA_DIR: dataDir, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'sometimes' }), {
    instanceOf: ConfigError,
    message: /OUTBOUND_ALLOW_PRIVATE_NETWORKS/,
  });
});
