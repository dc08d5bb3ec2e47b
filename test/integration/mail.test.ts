import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { adminApi, captureLogs, createTenant, freePort, startTestApp } from '../helpers/app.ts';
import { createTestDatabase, serverUrl } from '../helpers/database.ts';
import { SmtpSink } from '../helpers/smtp.ts';

const onPostgres = serverUrl() ? test : test.skip;

async function until<T>(probe: () => Promise<T | undefined | false>, what: string, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

onPostgres('a message queued while SMTP is down is delivered after a restart, once SMTP is back', async (tt) => {
  const db = await createTestDatabase();
  const smtpPort = await freePort(); // nothing listens there yet
  const shared = {
    databaseUrl: db.url,
    encryptionKey: randomBytes(32).toString('hex'),
    env: { SMTP_URL: `smtp://127.0.0.1:${smtpPort}`, MAIL_RETRY_BASE_MS: '100', MAIL_POLL_MS: '100' },
  };
  const first = await startTestApp(shared);
  let second: Awaited<ReturnType<typeof startTestApp>> | undefined;
  let sink: SmtpSink | undefined;
  try {
    const tenant = await createTenant(first);
    const user = (await adminApi(first, tenant, 'POST', '/users', { email: 'patient@x.test', email_verified: true })).body;
    tt.is((await adminApi(first, tenant, 'POST', `/users/${user.id}/password-reset`)).status, 202);
    // The first attempts fail (connection refused); the message stays pending with the reason.
    const pending = await until(async () => {
      const r = await adminApi(first, tenant, 'GET', '/mail?status=pending');
      return r.body.data.find((m: { attempts: number; last_error: string | null }) => m.attempts >= 1 && m.last_error);
    }, 'a failed attempt');
    tt.regex(pending.last_error, /ECONNREFUSED|connect/i);
    await first.stop();

    sink = await SmtpSink.start(smtpPort);
    second = await startTestApp(shared);
    const mail = await sink.waitFor('patient@x.test', /Reset your/);
    tt.regex(mail.text!, /reset-password\//);
    const sent = await until(async () => {
      const r = await adminApi(second!, tenant, 'GET', '/mail?status=sent');
      return r.body.data[0];
    }, 'the sent status');
    tt.is(sent.to, 'patient@x.test');
    tt.is(sink.countTo('patient@x.test'), 1, 'delivered once');
  } finally {
    await first.stop().catch(() => undefined);
    await second?.stop();
    await sink?.stop();
    await db.drop();
  }
});

test('after the last attempt a message is marked failed, and admins see it with the reason', async (tt) => {
  // Port 1: nothing listens there and no test can take it, so every attempt is refused at once.
  const t = await startTestApp({ env: { SMTP_URL: 'smtp://127.0.0.1:1', MAIL_RETRY_BASE_MS: '50', MAIL_POLL_MS: '50', MAIL_MAX_ATTEMPTS: '2' } });
  try {
    const tenant = await createTenant(t);
    const user = (await adminApi(t, tenant, 'POST', '/users', { email: 'never@x.test', email_verified: true })).body;
    await adminApi(t, tenant, 'POST', `/users/${user.id}/password-reset`);
    const failed = await until(async () => (await adminApi(t, tenant, 'GET', '/mail?status=failed')).body.data[0], 'the failed status');
    tt.is(failed.to, 'never@x.test');
    tt.is(failed.attempts, 2);
    tt.truthy(failed.last_error);
    tt.is((await adminApi(t, tenant, 'GET', '/mail?status=bogus')).status, 422);
  } finally {
    await t.stop();
  }
});

test('without SMTP_URL, mail goes to the dev outbox as .eml files, and one log line names each', async (tt) => {
  const logs = captureLogs();
  const t = await startTestApp({ env: { MAIL_POLL_MS: '50' }, log: logs.log });
  try {
    const tenant = await createTenant(t);
    const user = (await adminApi(t, tenant, 'POST', '/users', { email: 'dev@x.test', email_verified: true })).body;
    await adminApi(t, tenant, 'POST', `/users/${user.id}/password-reset`);
    const dir = join(t.app.config.dataDir, 'outbox');
    const file = await until(async () => {
      try {
        return readdirSync(dir).find((f) => f.endsWith('.eml'));
      } catch {
        return undefined;
      }
    }, 'an .eml file');
    const eml = readFileSync(join(dir, file), 'utf8');
    tt.regex(eml, /To: dev@x\.test/);
    tt.regex(eml, /Subject: Reset your/);
    tt.regex(eml, /reset-password\//);
    // The line is written just after the file appears: wait for it rather than race it.
    await until(async () => logs.lines().some((l) => l.msg === 'mail written to the dev outbox') || undefined, 'the log line');
    const named = logs.lines().filter((l) => l.msg === 'mail written to the dev outbox');
    tt.is(named.length, 1);
    tt.is(named[0]!.file, join(dir, file));
  } finally {
    await t.stop();
  }
});
