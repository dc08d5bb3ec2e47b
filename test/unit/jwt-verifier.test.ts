import { createHmac, createSign, generateKeyPairSync, KeyObject, sign as nodeSign } from 'node:crypto';
import test from 'ava';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import { accessTokenVerifier } from '../../src/oidc/jwt-verifier.ts';

const ISSUER = 'https://id.example.com/t/acme';
const AUDIENCE = `${ISSUER}/api`;

async function keyPair(alg: 'ES256' | 'RS256', kid: string) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { privateKey, publicJwk };
}

const es = await keyPair('ES256', 'es-1');
const rs = await keyPair('RS256', 'rs-1');
const verify = accessTokenVerifier(ISSUER, { keys: [es.publicJwk, rs.publicJwk] });

function sign(key: CryptoKey, header: Record<string, unknown>, claims: JWTPayload = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: ISSUER, aud: AUDIENCE, jti: 'jti-1', client_id: 'app', iat: now, exp: now + 600, ...claims })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'es-1', ...header } as never)
    .sign(key);
}

/** Signs any header as given (jose refuses some of the headers tested here). */
function signRaw(key: CryptoKey, header: Record<string, unknown>) {
  const now = Math.floor(Date.now() / 1000);
  const encode = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${encode({ alg: 'ES256', typ: 'at+jwt', kid: 'es-1', ...header })}.${encode({ iss: ISSUER, jti: 'jti-1', exp: now + 600 })}`;
  const signature = nodeSign('sha256', Buffer.from(input), { key: KeyObject.from(key as never), dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

/** Re-encodes one segment of a token, keeping the others. */
function withSegment(token: string, index: number, value: unknown) {
  const parts = token.split('.');
  parts[index] = Buffer.from(JSON.stringify(value)).toString('base64url');
  return parts.join('.');
}

const decoded = (token: string, index: number) => JSON.parse(Buffer.from(token.split('.')[index]!, 'base64url').toString()) as Record<string, unknown>;

test('accepts what Tessera signs: ES256 and RS256 access tokens of this issuer', async (t) => {
  const esToken = await sign(es.privateKey, {});
  t.like(verify(esToken), { iss: ISSUER, jti: 'jti-1', client_id: 'app' });
  t.like(verify(esToken, AUDIENCE), { jti: 'jti-1' });
  const rsToken = await sign(rs.privateKey, { alg: 'RS256', kid: 'rs-1' });
  t.like(verify(rsToken, AUDIENCE), { jti: 'jti-1' });
  const twoAudiences = await sign(es.privateKey, {}, { aud: ['other', AUDIENCE] });
  t.truthy(verify(twoAudiences, AUDIENCE));
});

test('refuses a token whose signature or signed parts were changed', async (t) => {
  const token = await sign(es.privateKey, {});
  t.is(verify(withSegment(token, 1, { ...decoded(token, 1), client_id: 'attacker' })), undefined);
  const signature = Buffer.from(token.split('.')[2]!, 'base64url');
  signature[10]! ^= 1;
  t.is(verify(`${token.split('.').slice(0, 2).join('.')}.${signature.toString('base64url')}`), undefined);
  t.is(verify(`${token.split('.').slice(0, 2).join('.')}.`), undefined, 'no signature');
  // Signed by a key this tenant does not publish, under a kid it does.
  const stranger = await keyPair('ES256', 'es-1');
  t.is(verify(await sign(stranger.privateKey, {})), undefined);
});

test('a key is used only with its own algorithm: no alg none, no HS256 keyed with the public key, no RS256 with an EC kid', async (t) => {
  const token = await sign(es.privateKey, {});
  const [, payload] = token.split('.');
  const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid: 'es-1' })).toString('base64url')}.${payload}.`;
  t.is(verify(none), undefined);

  // The classic confusion: HMAC with the published public key as the secret.
  const hsHeader = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid: 'rs-1' })).toString('base64url');
  const publicPem = JSON.stringify(rs.publicJwk);
  const hsSignature = createHmac('sha256', publicPem).update(`${hsHeader}.${payload}`).digest('base64url');
  t.is(verify(`${hsHeader}.${payload}.${hsSignature}`), undefined);

  // An RSA signature presented under the EC key's kid.
  const { privateKey: rsaPrivate } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsHeader = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'at+jwt', kid: 'es-1' })).toString('base64url');
  const rsSignature = createSign('sha256').update(`${rsHeader}.${payload}`).sign(rsaPrivate).toString('base64url');
  t.is(verify(`${rsHeader}.${payload}.${rsSignature}`), undefined);

  // A valid ES256 signature under a header that names another algorithm.
  t.is(verify(signRaw(es.privateKey, { alg: 'ES384' })), undefined);
});

test('an ES256 signature must be in the JOSE form (r‖s, 64 bytes), not DER', async (t) => {
  const token = await sign(es.privateKey, {});
  const [header, payload] = token.split('.');
  // The right key and message; only the encoding differs.
  const der = createSign('sha256')
    .update(`${header}.${payload}`)
    .sign(KeyObject.from(es.privateKey as never));
  t.not(der.length, 64);
  t.is(verify(`${header}.${payload}.${der.toString('base64url')}`), undefined);
});

test('header rules: typ at+jwt, a known kid, no crit', async (t) => {
  t.truthy(verify(signRaw(es.privateKey, {})), 'the raw signer makes valid tokens');
  t.is(verify(signRaw(es.privateKey, { crit: ['exp'] })), undefined);
  t.is(verify(signRaw(es.privateKey, { typ: 'application/jwt' })), undefined);
  t.is(verify(await sign(es.privateKey, { typ: 'JWT' })), undefined, 'an ID token or other JWT');
  t.is(verify(await sign(es.privateKey, { typ: undefined })), undefined);
  t.is(verify(await sign(es.privateKey, { kid: 'unknown' })), undefined);
  t.is(verify(await sign(es.privateKey, { kid: undefined })), undefined);
});

test('claim rules: this issuer, not expired, not before nbf, iat a number, the audience when asked', async (t) => {
  const now = Math.floor(Date.now() / 1000);
  t.is(verify(await sign(es.privateKey, {}, { iss: 'https://id.example.com/t/other' })), undefined, 'another tenant');
  t.is(verify(await sign(es.privateKey, {}, { exp: now - 1 })), undefined, 'expired');
  t.is(verify(await sign(es.privateKey, {}, { exp: now })), undefined, 'expires now');
  t.is(verify(await sign(es.privateKey, {}, { exp: undefined })), undefined, 'no exp');
  t.is(verify(await sign(es.privateKey, {}, { exp: String(now + 600) as never })), undefined, 'exp not a number');
  t.is(verify(await sign(es.privateKey, {}, { nbf: now + 60 })), undefined, 'not yet valid');
  t.truthy(verify(await sign(es.privateKey, {}, { nbf: now - 60 })));
  t.is(verify(await sign(es.privateKey, {}, { iat: 'yesterday' as never })), undefined);
  t.is(verify(await sign(es.privateKey, {}, { aud: 'https://other.example/api' }), AUDIENCE), undefined, 'another audience');
  t.is(verify(await sign(es.privateKey, {}, { aud: undefined }), AUDIENCE), undefined, 'no audience');
});

test('garbage is refused, never thrown', (t) => {
  for (const garbage of [
    '',
    'abc',
    'a.b',
    'a.b.c',
    'a.b.c.d',
    '...',
    '!!.??.**',
    'eyJ.eyJ.',
    `${Buffer.from('[1]').toString('base64url')}.e30.AA`,
    `${Buffer.from('null').toString('base64url')}.e30.AA`,
  ]) {
    t.is(verify(garbage), undefined, garbage);
  }
});

test('keys without a kid or with an algorithm Tessera does not sign with are not published to the verifier', async (t) => {
  const { privateKey, publicJwk } = await keyPair('ES256', 'es-2');
  const ignoring = accessTokenVerifier(ISSUER, { keys: [{ ...publicJwk, kid: undefined } as JWK, { ...es.publicJwk, alg: 'ES384' }] });
  t.is(ignoring(await sign(privateKey, { kid: 'es-2' })), undefined);
  t.is(ignoring(await sign(es.privateKey, {})), undefined);
});

// ── a token presented again (its signature is checked once, by its exact text) ──

test('a token presented again is still checked for audience, and a changed copy of it is refused', async (t) => {
  const token = await sign(es.privateKey, {});
  t.truthy(verify(token, AUDIENCE));
  t.truthy(verify(token, AUDIENCE), 'the second presentation');
  t.is(verify(token, 'https://other.example/api'), undefined, 'the audience is checked at every presentation');
  // Same signature, other signed parts: the signature is only good for the exact text it signed.
  t.is(verify(withSegment(token, 1, { ...decoded(token, 1), client_id: 'attacker' })), undefined);
  t.is(verify(withSegment(token, 0, { ...decoded(token, 0), kid: 'rs-1' })), undefined);
  t.is(verify(`${token} `), undefined);
});

test('the payload handed out is frozen: one object answers every presentation of a token', async (t) => {
  const token = await sign(es.privateKey, {}, { aud: ['a', AUDIENCE] });
  const payload = verify(token)!;
  t.true(Object.isFrozen(payload));
  t.true(Object.isFrozen(payload.aud));
  t.throws(() => {
    (payload as Record<string, unknown>).client_id = 'attacker';
  });
  t.is(verify(token)!.client_id, 'app');
});

test('a token checked by one tenant or key set is checked again by another', async (t) => {
  const token = await sign(es.privateKey, {});
  t.truthy(verify(token));
  // The same issuer after its ES256 key was removed (a rotation that retires a compromised key).
  const rotated = accessTokenVerifier(ISSUER, { keys: [rs.publicJwk] });
  t.is(rotated(token), undefined);
  // Another tenant that publishes the same key (never the case, but the issuer must still match).
  const otherTenant = accessTokenVerifier('https://id.example.com/t/other', { keys: [es.publicJwk] });
  t.is(otherTenant(token), undefined);
  t.truthy(verify(token), 'still good where it was issued');
});

test.serial('a token presented again is refused once it expires', async (t) => {
  const realNow = Date.now;
  const now = Math.floor(realNow() / 1000);
  const token = await sign(es.privateKey, {}, { exp: now + 30, nbf: now - 1 });
  t.truthy(verify(token));
  try {
    Date.now = () => realNow() + 31_000;
    t.is(verify(token), undefined, 'expired after it was remembered');
    Date.now = () => realNow() - 5_000;
    t.is(verify(token), undefined, 'before its nbf (a clock set back)');
  } finally {
    Date.now = realNow;
  }
  t.truthy(verify(token));
});
