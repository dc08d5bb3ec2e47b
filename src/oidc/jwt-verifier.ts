import { createPublicKey, type JsonWebKey, type KeyObject, verify } from 'node:crypto';
import type { JSONWebKeySet, JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
import { joseToDer } from '../crypto/ecdsa-signature.ts';

/** What Tessera signs access tokens with (tenants/signing-keys.ts). */
const ALGORITHMS = ['ES256', 'RS256'] as const;
type Alg = (typeof ALGORITHMS)[number];

/** RFC 9068's media type, as oidc-provider writes it in the header. */
const ACCESS_TOKEN_TYP = 'at+jwt';
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** Frozen: one payload object answers every presentation of its token (`signatureChecked`). */
export type AccessTokenVerifier = (token: string, audience?: string) => Readonly<JWTPayload> | undefined;

/**
 * Verifies the access tokens one tenant signed — Tessera's own JWTs, at introspection, userinfo
 * and its APIs — synchronously, with node:crypto. jose's jwtVerify goes through WebCrypto, a job
 * on libuv's pool and its promise per token, at about twice the CPU (docs/performance.md,
 * "Verifying access tokens"). jose still makes and exports the keys; this accepts only what
 * Tessera issues, so it can be strict:
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
 *
 * A resource server presents the same token at every API call it serves with it (introspection,
 * userinfo), so a token whose signature checked out is remembered by its exact text (see
 * `signatureChecked`): later presentations skip the verification, the largest single cost of an
 * introspection, but not the checks of time and audience.
 */
export function accessTokenVerifier(issuer: string, jwks: JSONWebKeySet): AccessTokenVerifier {
  // A KeyObject is made on the key's first use, not when the tenant's runtime is built: a runtime
  // that never verifies a token (discovery, sign-in pages) makes none. Each KeyObject is a native
  // object behind a weak handle, and V8 runs the weak callbacks of dead ones inside a Mark-Compact's
  // pause: with providers built and evicted at hundreds per second they made most of those pauses
  // (docs/performance.md, "Garbage collection settings"). Importing a JWK is not free either.
  const keys = new Map<string, { alg: Alg; jwk: JsonWebKey; key?: KeyObject }>();
  for (const jwk of jwks.keys) {
    if (typeof jwk.kid !== 'string' || !isAlg(jwk.alg)) continue;
    keys.set(jwk.kid, { alg: jwk.alg, jwk: jwk as JsonWebKey });
  }

  /** The checks that do not depend on the time or the audience; the payload, frozen, or undefined. */
  function signedByThisTenant(token: string): Readonly<JWTPayload> | undefined {
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
    if (!payload || payload.iss !== issuer || typeof payload.exp !== 'number') return undefined;
    if (payload.nbf !== undefined && typeof payload.nbf !== 'number') return undefined;
    if (payload.iat !== undefined && typeof payload.iat !== 'number') return undefined;
    if (Array.isArray(payload.aud)) Object.freeze(payload.aud);
    return Object.freeze(payload);
  }

  return (token, audience) => {
    const remembered = signatureChecked.get(token);
    const payload = remembered?.verifier === keys ? remembered.payload : signedByThisTenant(token);
    if (!payload || !isCurrent(payload)) return undefined;
    if (payload !== remembered?.payload) signatureChecked.set(ownCopy(token), { verifier: keys, payload });
    if (audience !== undefined && !(Array.isArray(payload.aud) ? payload.aud.includes(audience) : payload.aud === audience)) return undefined;
    return payload;
  };
}

/**
 * Tokens whose signature, header and issuer checked out, by their exact text — the whole token,
 * never a part of it: a signature is only good for the bytes it signed. An entry answers only
 * the verifier that made it (`verifier` is that verifier's key set): a tenant whose keys change
 * gets a new verifier, so a token signed with a removed key is checked again, and refused. Shared
 * by every tenant so that memory stays bounded however many tenants are loaded: 20,000 tokens
 * of ~1 KB each.
 */
const signatureChecked = new LRUCache<string, { verifier: object; payload: Readonly<JWTPayload> }>({
  max: 20_000,
  maxSize: 32 * 1024 * 1024,
  sizeCalculation: (_value, token) => 2 * token.length + 512,
});

/**
 * The token as a string of its own. One cut out of a request body or header can be a slice that
 * keeps the whole body alive (up to 56 KB at introspection) for as long as the entry lives. The
 * token is base64url text by now, so latin1 copies it exactly.
 */
function ownCopy(token: string): string {
  return Buffer.from(token, 'latin1').toString('latin1');
}

/** `exp` not past, `nbf` (if any) not in the future — checked at every use, remembered or not. */
function isCurrent(payload: Readonly<JWTPayload>): boolean {
  const now = Math.floor(Date.now() / 1000);
  return (payload.exp as number) > now && (payload.nbf === undefined || (payload.nbf as number) <= now);
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
