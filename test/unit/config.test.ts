import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { ConfigError, loadConfig } from '../../src/config.ts';

const dir = () => mkdtempSync(join(tmpdir(), 'tessera-config-'));

test('defaults: port 3000, public URL from the port, embedded database, a key generated once under DATA_DIR', (t) => {
  const dataDir = dir();
  const c = loadConfig({ DATA_DIR: dataDir });
  t.is(c.port, 3000);
  t.is(c.publicUrl, 'http://localhost:3000');
  t.is(c.databaseUrl, undefined);
  t.is(c.encryptionKey.length, 32);
  t.is(readFileSync(join(dataDir, 'encryption.key'), 'utf8').trim(), c.encryptionKey.toString('hex'));
  t.deepEqual(loadConfig({ DATA_DIR: dataDir }).encryptionKey, c.encryptionKey);
  t.true(Object.isFrozen(c));
  t.is(c.tenantProviderCacheSize, 500);
  t.is(loadConfig({ DATA_DIR: dataDir, TENANT_PROVIDER_CACHE_SIZE: '10000' }).tenantProviderCacheSize, 10_000);
  t.true(c.databasePreparedStatements);
  t.false(loadConfig({ DATA_DIR: dataDir, DATABASE_PREPARED_STATEMENTS: 'false' }).databasePreparedStatements);
  t.true(c.databaseOneShot);
  t.false(loadConfig({ DATA_DIR: dataDir, DATABASE_ONE_SHOT: 'false' }).databaseOneShot);
});

test('PUBLIC_URL loses its trailing slash; empty variables count as unset', (t) => {
  const c = loadConfig({ DATA_DIR: dir(), PUBLIC_URL: 'https://id.example.com/', DATABASE_URL: '' });
  t.is(c.publicUrl, 'https://id.example.com');
  t.is(c.databaseUrl, undefined);
});

test('bad values fail fast with a message naming each variable', (t) => {
  const err = t.throws(
    () =>
      loadConfig({
        DATA_DIR: dir(),
        PORT: 'eighty',
        DATABASE_URL: 'mysql://x',
        ENCRYPTION_KEY: 'short',
        PUBLIC_URL: 'ftp://x',
        TENANT_PROVIDER_CACHE_SIZE: '0',
        DATABASE_PREPARED_STATEMENTS: 'maybe',
        DATABASE_ONE_SHOT: 'off',
      }),
    { instanceOf: ConfigError },
  );
  for (const name of [
    'PORT',
    'DATABASE_URL',
    'ENCRYPTION_KEY',
    'PUBLIC_URL',
    'TENANT_PROVIDER_CACHE_SIZE',
    'DATABASE_PREPARED_STATEMENTS',
    'DATABASE_ONE_SHOT',
  ])
    t.regex(err!.message, new RegExp(name));
  t.regex(err!.message, /openssl rand -hex 32/);
});

test('shutdown grace and metrics: defaults, and what is refused', (t) => {
  const dataDir = dir();
  const c = loadConfig({ DATA_DIR: dataDir });
  t.is(c.shutdownGraceMs, 5000);
  t.deepEqual(c.metrics, { token: undefined, port: undefined, host: '127.0.0.1' });
  t.is(loadConfig({ DATA_DIR: dataDir, SHUTDOWN_GRACE_MS: '0' }).shutdownGraceMs, 0);
  const token = 'a1'.repeat(32);
  t.deepEqual(loadConfig({ DATA_DIR: dataDir, METRICS_TOKEN: token, METRICS_PORT: '9464', METRICS_HOST: '0.0.0.0' }).metrics, {
    token,
    port: 9464,
    host: '0.0.0.0',
  });
  for (const [name, bad] of [
    ['SHUTDOWN_GRACE_MS', '-1'],
    ['SHUTDOWN_GRACE_MS', 'soon'],
    ['METRICS_TOKEN', 'short'],
    ['METRICS_TOKEN', `${'a'.repeat(40)} ${'b'.repeat(10)}`],
    ['METRICS_PORT', '0'],
    ['METRICS_PORT', '70000'],
  ] as const) {
    const err = t.throws(() => loadConfig({ DATA_DIR: dataDir, [name]: bad }), { instanceOf: ConfigError }, `${name}=${bad}`);
    t.regex(err!.message, new RegExp(name));
  }
  const same = t.throws(() => loadConfig({ DATA_DIR: dataDir, PORT: '9464', METRICS_PORT: '9464' }), { instanceOf: ConfigError });
  t.regex(same!.message, /METRICS_PORT: must differ from PORT/);
});
