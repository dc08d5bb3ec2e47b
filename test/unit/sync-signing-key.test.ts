import test from 'ava';
import { calculateJwkThumbprint, compactVerify, exportJWK, generateKeyPair, importJWK } from 'jose';
import Provider from 'oidc-provider';
import { SyncSigningKey } from '../../src/oidc/sync-signing-key.ts';
import type { PrivateSigningKey, SigningAlg } from '../../src/tenants/signing-keys.ts';

/** A key as tenants/signing-keys.ts stores it: a private JWK with kid, alg and use. */
async function storedKey(alg: SigningAlg): Promise<PrivateSigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
  return { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' } as PrivateSigningKey;
}

const b64url = (s: string | Uint8Array) => Buffer.from(s).toString('base64url');

for (const alg of ['ES256', 'RS256'] as const) {
  test(`${alg}: a JWS signed by SyncSigningKey verifies with the published public key, and the key describes itself as that public key`, async (tt) => {
    const jwk = await storedKey(alg);
    const key = new SyncSigningKey(jwk);
    tt.is(key.kid, jwk.kid);
    tt.is(key.alg, alg);
    tt.is(key.use, 'sig');
    tt.is(key.kty, jwk.kty!);
    for (const p of ['crv', 'x', 'y', 'n', 'e'] as const) tt.is(key[p], jwk[p], p);
    // The public KeyObject (what oidc-provider verifies an id_token_hint with) is the JWK's public half.
    const exported = key.keyObject().export({ format: 'jwk' });
    tt.is(exported.d, undefined);
    tt.is(exported.x ?? exported.n, jwk.x ?? jwk.n);

    // The compact JWS oidc-provider assembles around sign(): header.payload.signature.
    const signingInput = `${b64url(JSON.stringify({ alg, kid: jwk.kid, typ: 'JWT' }))}.${b64url(JSON.stringify({ sub: 'someone', n: 1 }))}`;
    const jws = `${signingInput}.${b64url(key.sign(Buffer.from(signingInput)))}`;
    const { d, p, q, dp, dq, qi, ...publicJwk } = jwk;
    const verified = await compactVerify(jws, await importJWK(publicJwk, alg));
    tt.deepEqual(JSON.parse(Buffer.from(verified.payload).toString()), { sub: 'someone', n: 1 });
    // A tampered payload does not verify.
    const tampered = `${signingInput.split('.')[0]}.${b64url(JSON.stringify({ sub: 'someone else', n: 1 }))}.${jws.split('.')[2]}`;
    await tt.throwsAsync(compactVerify(tampered, await importJWK(publicJwk, alg)));
  });
}

test('nothing is derived from the private key until the first signature', async (tt) => {
  const jwk = await storedKey('ES256');
  // A damaged private half is only noticed when signing: building a provider (ManyTenants builds
  // hundreds a second) makes no KeyObject.
  const { d: _, ...noPrivateHalf } = jwk;
  const key = new SyncSigningKey(noPrivateHalf as PrivateSigningKey);
  tt.is(key.kty, 'EC');
  tt.throws(() => key.sign(Buffer.from('x')));
});

test('building a provider with it makes no KeyObject (ManyTenants builds hundreds a second)', async (tt) => {
  let made = 0;
  class Counting extends SyncSigningKey {
    override keyObject() {
      made++;
      return super.keyObject();
    }
  }
  const provider = new Provider('http://localhost:3000/t/x', {
    jwks: { keys: [new Counting(await storedKey('ES256')), new Counting(await storedKey('RS256'))] as never },
    features: { externalSigningSupport: { enabled: true, ack: 'experimental-01' }, devInteractions: { enabled: false } },
  });
  tt.truthy(provider);
  // A KeyObject is a native handle whose collection costs V8 a weak callback inside its pauses
  // (docs/performance.md, "Garbage collection settings"); the base class derived one for the
  // AKP-only `pub` getter.
  tt.is(made, 0);
});
