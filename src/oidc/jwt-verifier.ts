import { createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { JSONWebKeySet, JWTPayload } from 'jose';
import { joseToDer } from '../crypto/ecdsa-signature.ts';

/** What Tessera signs access tokens with (signing-keys.ts). */
const ALGORITHMS = ['ES256', 'RS256'] as const;
type Alg = (typeof ALGORITHMS)[number];

/** RFC 9068's media type, as oidc-provider writes it in the header. */
const ACCESS_TOKEN_TYP = 'at+jwt';
const BASE64URL = /^[A-Za-z0-9_-]+$/;

export type AccessTokenVerifier = (token: string, audience?: string) => JWTPayload | undefined;

/**
 * Verifies the access tokens one tenant signed — Tessera's own JWTs, at introspection, userinfo
 * and its APIs — synchronously, with node:crypto. jose's jwtVerify goes through WebCrypto: a job
 * on libuv's pool and its promise per token, 160–185 µs of CPU for one ES256 signature against
 * ~95 µs here, and ~18 % of the main thread at introspection (bench/REPORT.md). jose still makes
 * and exports the keys; this accepts only what Tessera issues, so it can be strict:
 *
 * - the header names a `kid` of this tenant's published keys and exactly that key's `alg`
 *   (the key decides the algorithm, never the header: no `none`, no HS256 with a public key);
 * - `typ` is `at+jwt` and there is no `crit` (nothing here understands an extension);
 * - the signature verifies; an ES256 one is the 64-byte JOSE form, never DER;
 * - `iss` is this tenant's issuer, `exp` is present and not past, `nbf` (if any) not in the
 *   future, `iat` (if any) a number, and, when asked, `aud` contains the audience.
 *
 * Returns the payload, or undefined for anything else (the callers answer "invalid token"
 * without saying why, as jose's errors were never shown either).
 */
export function accessTokenVerifier(issuer: string, jwks: JSONWebKeySet): AccessTokenVerifier {
  // A KeyObject is made on the key's first use, not when the tenant's runtime is built: a runtime
  // that never verifies a token (discovery, sign-in pages) makes none. Each KeyObject is a native
  // object behind a weak handle, and V8 runs the weak callbacks of dead ones inside a Mark-Compact's
  // pause: with providers built and evicted at hundreds per second (ManyTenants) they were 23–53 ms
  // of 41–71 ms pauses (bench/REPORT.md, fourth session). Importing a JWK also costs ~57 µs.
  const keys = new Map<string, { alg: Alg; jwk: JsonWebKey; key?: KeyObject }>();
  for (const jwk of jwks.keys) {
    if (typeof jwk.kid !== 'string' || !isAlg(jwk.alg)) continue;
    keys.set(jwk.kid, { alg: jwk.alg, jwk: jwk as JsonWebKey });
  }

  return (token, audience) => {
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((p) => BASE64URL.test(p))) return undefined;
    const [encodedHeader, encodedPayload, encodedSignature] = parts as [string, string, string];

    const header = decodeJson(encodedHeader);
    if (!header || header.crit !== undefined || header.typ !== ACCESS_TOKEN_TYP) return undefined;
    const known = typeof header.kid === 'string' ? keys.get(header.kid) : undefined;
    if (!known || header.alg !== known.alg) return undefined;

    const signature = Buffer.from(encodedSignature, 'base64url');
    const signingInput = Buffer.from(`${encodedHeader}.${encodedPayload}`, 'ascii');
    known.key ??= createPublicKey({ key: known.jwk, format: 'jwk' });
    // JOSE's ECDSA signature is r‖s, exactly 64 bytes for P-256 (a DER one is refused); node
    // verifies it as DER with the bare KeyObject — a third less CPU than `dsaEncoding` (ecdsa-signature.ts).
    const encoded = known.alg === 'ES256' ? joseToDer(signature, 32) : signature;
    if (!encoded || !verify('sha256', signingInput, known.key, encoded)) return undefined;

    const payload = decodeJson(encodedPayload) as JWTPayload | undefined;
    if (!payload || payload.iss !== issuer) return undefined;
    const now = Math.floor(Date.now() / 1000);
    if (typeof payload.exp !== 'number' || payload.exp <= now) return undefined;
    if (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || payload.nbf > now)) return undefined;
    if (payload.iat !== undefined && typeof payload.iat !== 'number') return undefined;
    if (audience !== undefined && !(Array.isArray(payload.aud) ? payload.aud.includes(audience) : payload.aud === audience)) return undefined;
    return payload;
  };
}

function isAlg(alg: unknown): alg is Alg {
  return (ALGORITHMS as readonly unknown[]).includes(alg);
}

/** A base64url segment holding a JSON object, or undefined. */
function decodeJson(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
