/**
 * What one tenant's provider build costs, apart from HTTP and PostgreSQL:
 *
 *   node --expose-gc --import tsx bench/diag/provider-build.ts [--builds 2000]
 *
 * Prints CPU microseconds per build (median of batches) and heap kept per built provider
 * (heap after a full GC with N providers held, minus before, over N). Dependencies the build only
 * closes over (database, renderer, services) are stand-ins: nothing here serves a request.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { accessTokenVerifier } from '../../src/oidc/jwt-verifier.ts';
import { buildProvider, type ProviderDeps, publicJwksOf } from '../../src/oidc/provider.ts';
import { issuerOf } from '../../src/tenants/issuer.ts';
import type { PrivateSigningKey } from '../../src/tenants/signing-keys.ts';

const { values } = parseArgs({ options: { builds: { type: 'string', default: '2000' } } });
const builds = Number(values.builds);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
const key = { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' } as PrivateSigningKey;
const deps = {
  db: {},
  publicUrl: 'http://127.0.0.1:3000',
  encryptionKey: randomBytes(32),
  users: {},
  clients: {},
  orgTokens: {},
  render: () => '',
  log: { info() {}, error() {} },
} as unknown as ProviderDeps;

function buildOne(i: number) {
  const tenant = { id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, slug: `t-${i}`, name: `T ${i}`, settings: {} };
  const issuer = issuerOf(deps.publicUrl, tenant.slug);
  const provider = buildProvider(deps, tenant, [key], 'ES256', accessTokenVerifier(issuer, publicJwksOf([key])));
  provider.callback();
  return provider;
}

for (let i = 0; i < 300; i++) buildOne(i); // warm-up: JIT
const perBuild: number[] = [];
for (let batch = 0; batch < 20; batch++) {
  const cpu = process.cpuUsage();
  for (let i = 0; i < builds / 20; i++) buildOne(i);
  const used = process.cpuUsage(cpu);
  perBuild.push((used.user + used.system) / (builds / 20));
}
perBuild.sort((a, b) => a - b);
gc();
const before = process.memoryUsage().heapUsed;
const held = Array.from({ length: 500 }, (_, i) => buildOne(i));
gc();
const kept = (process.memoryUsage().heapUsed - before) / held.length;
console.log(
  `build: median ${perBuild[10]!.toFixed(0)} µs of CPU (batches ${perBuild[0]!.toFixed(0)}–${perBuild.at(-1)!.toFixed(0)}), kept ${(kept / 1024).toFixed(1)} KB per provider (${held.length} held)`,
);
