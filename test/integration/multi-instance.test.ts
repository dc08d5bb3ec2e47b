import { randomBytes } from 'node:crypto';
import http from 'node:http';
import test from 'ava';
import { jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { adminApi, createTenant, freePort, startTestApp, type TestApp, webClient } from '../helpers/app.ts';
import { createTestDatabase, serverUrl } from '../helpers/database.ts';

/** Needs a PostgreSQL server (several processes on one database); CI always has one. */
const onPostgres = serverUrl() ? test : test.skip;

import { remoteJwks, signIn } from '../helpers/oidc.ts';

/** A round-robin load balancer: consecutive requests go to alternating instances. */
async function roundRobin(port: number, targets: number[]) {
  let next = 0;
  const hits = targets.map(() => 0);
  const server = http.createServer((req, res) => {
    const i = next++ % targets.length;
    hits[i]!++;
    const upstream = http.request({ host: '127.0.0.1', port: targets[i], path: req.url, method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode!, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { hits, close: () => new Promise<void>((r) => server.close(() => r())) };
}

onPostgres('two instances on one database behave as one, behind a round-robin balancer', async (tt) => {
  const db = await createTestDatabase();
  const lbPort = await freePort();
  const shared = { databaseUrl: db.url, encryptionKey: randomBytes(32).toString('hex'), env: { PUBLIC_URL: `http://localhost:${lbPort}` } };
  let one: TestApp | undefined;
  let two: TestApp | undefined;
  try {
    one = await startTestApp(shared);
    two = await startTestApp(shared);
    const lb = await roundRobin(lbPort, [Number(new URL(one.url).port), Number(new URL(two.url).port)]);
    const front: TestApp = { ...one, url: `http://localhost:${lbPort}` };
    try {
      const tenant = await createTenant(one);
      const client = (await adminApi(front, tenant, 'POST', '/clients', webClient())).body;
      // Every hop of sign-in, code redemption, refresh, userinfo and introspection alternates instances.
      const { tokens, config } = await signIn(front, tenant, client);
      tt.is(tokens.claims()!.iss, tenant.issuer);
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      const again = await oidc.refreshTokenGrant(config, refreshed.refresh_token!);
      tt.truthy(again.access_token);
      const info = await oidc.fetchUserInfo(config, again.access_token, tokens.claims()!.sub);
      tt.is(info.email, tenant.adminEmail);
      tt.true((await oidc.tokenIntrospection(config, again.access_token)).active);
      // Reuse detection works across instances too.
      await tt.throwsAsync(oidc.refreshTokenGrant(config, tokens.refresh_token!));
      tt.false((await oidc.tokenIntrospection(config, again.access_token)).active);
      tt.true(
        lb.hits.every((n) => n > 3),
        `hits: ${lb.hits.join(',')}`,
      );

      // A key rotated through one instance is published and used by the other.
      const before = await (await fetch(`http://localhost:${new URL(two.url).port}/t/${tenant.slug}/jwks`)).json();
      const fresh = await one.app.services.tenants.rotateKeys((await one.app.services.tenants.findBySlug(tenant.slug))!);
      const after = await (await fetch(`${two.url}/t/${tenant.slug}/jwks`)).json();
      tt.is(after.keys.length, before.keys.length + 1);
      tt.is(after.keys[0].kid, fresh);
      // New tokens are signed with the new key; the old token still verifies against the JWKS.
      const third = await signIn(front, tenant, client);
      const jwks = remoteJwks(`${two.url}/t/${tenant.slug}/jwks`);
      const { protectedHeader } = await jwtVerify(third.tokens.access_token, jwks, { issuer: tenant.issuer });
      tt.is(protectedHeader.kid, fresh);
      await tt.notThrowsAsync(jwtVerify(tokens.id_token!, jwks, { issuer: tenant.issuer }));
    } finally {
      await lb.close();
    }
  } finally {
    await one?.stop();
    await two?.stop();
    await db.drop();
  }
});
