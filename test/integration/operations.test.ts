import test from 'ava';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { inTenant } from '../../src/db/tenant-scope.ts';
import { deleteExpiredPayloads } from '../../src/maintenance.ts';
import { adminApi, captureLogs, createTenant, startTestApp, webClient } from '../helpers/app.ts';
import { signIn } from '../helpers/oidc.ts';

test('logs are structured JSON with request ids and carry no passwords, secrets or tokens', async (tt) => {
  const logs = captureLogs('debug');
  const t = await startTestApp({ log: logs.log });
  try {
    const tenant = await createTenant(t);
    const client = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
    const { tokens, config } = await signIn(t, tenant, client);
    await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    await oidc.tokenIntrospection(config, tokens.access_token);
    const parsed = logs.lines();
    const all = JSON.stringify(parsed);
    tt.true(parsed.length > 5);
    const requests = parsed.filter((l) => l.msg === 'request');
    tt.true(requests.length > 5);
    tt.true(requests.every((l) => typeof l.requestId === 'string' && typeof l.status === 'number' && typeof l.ms === 'number'));
    for (const secret of [tenant.adminPassword, tenant.adminKey, client.client_secret, tokens.access_token, tokens.refresh_token!, tokens.id_token!]) {
      tt.false(all.includes(secret), `a secret leaked into the logs: ${secret.slice(0, 8)}…`);
    }
    tt.false(all.includes('code='), 'authorization codes (query strings) are not logged');
  } finally {
    await t.stop();
  }
});

test('signing keys are encrypted at rest; expired oidc rows are cleaned up', async (tt) => {
  const t = await startTestApp();
  try {
    const tenant = await createTenant(t);
    const { db } = t.app.connection;
    const keys = await inTenant(db, tenant.id, (tx) => tx.selectFrom('signing_keys').selectAll().execute());
    tt.is(keys.length, 1);
    tt.is(keys[0]!.alg, 'ES256');
    tt.regex(keys[0]!.private_jwk_encrypted, /^v1\./);
    tt.false(keys[0]!.private_jwk_encrypted.includes('"d"'));
    tt.false('d' in (keys[0]!.public_jwk as object));

    const client = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
    await signIn(t, tenant, client);
    const count = async () => Number((await sql<{ n: string }>`select count(*) as n from oidc_payloads`.execute(db)).rows[0]!.n);
    const before = await count();
    tt.true(before > 0);
    await sql`update oidc_payloads set expires_at = now() - interval '1 second' where model = 'AccessToken'`.execute(db);
    const deleted = await deleteExpiredPayloads(db);
    tt.true(deleted > 0);
    tt.is(await count(), before - deleted);
    tt.is(Number((await sql<{ n: string }>`select count(*) as n from oidc_payloads where model = 'AccessToken'`.execute(db)).rows[0]!.n), 0);
  } finally {
    await t.stop();
  }
});
