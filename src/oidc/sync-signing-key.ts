import { createPrivateKey, createPublicKey, type KeyObject, sign } from 'node:crypto';
import { ExternalSigningKey } from 'oidc-provider';
import { derToJose } from '../crypto/ecdsa-signature.ts';
import type { PrivateSigningKey } from '../tenants/signing-keys.ts';

/**
 * A tenant's signing key handed to oidc-provider as an `ExternalSigningKey`, so that ID tokens and
 * access tokens are signed with Node's synchronous `crypto.sign` instead of WebCrypto.
 *
 * Why: oidc-provider signs through jose, which uses WebCrypto, and WebCrypto runs every signature
 * as a job on libuv's thread pool — a queue, a thread wake-up and a completion callback around a
 * short ECDSA signature; on few cores those wake-ups cost more than the signing, and signing
 * synchronously gives more refreshes per CPU second (docs/performance.md, "Synchronous signing").
 * A refresh signs two tokens, a sign-in two.
 *
 * oidc-provider calls this feature experimental (`features.externalSigningSupport`, acknowledged as
 * `experimental-01` in provider.ts); a release that changes it refuses to start with that
 * acknowledgement, so an upgrade can't silently change how tokens are signed.
 *
 * Nothing is derived when a provider is built (ManyTenants builds hundreds a second): the public
 * parameters come from the stored JWK, and the KeyObjects are made on first use — a KeyObject
 * is a native handle whose collection costs V8 a weak callback (jwt-verifier.ts says more).
 */
export class SyncSigningKey extends ExternalSigningKey {
  #kid: string;
  #alg: string;
  #private: KeyObject | undefined;
  #public: KeyObject | undefined;

  constructor(private readonly jwk: PrivateSigningKey) {
    super();
    this.#kid = jwk.kid;
    this.#alg = jwk.alg;
  }

  override get kid() {
    return this.#kid;
  }
  // oidc-provider may assign kid and alg while it registers keys (it does not for ours: both are set).
  override set kid(value: string) {
    this.#kid = value;
  }
  override get alg() {
    return this.#alg;
  }
  override set alg(value: string) {
    this.#alg = value;
  }
  override get kty() {
    return this.jwk.kty!;
  }
  override get crv() {
    return this.jwk.crv;
  }
  override get x() {
    return this.jwk.x;
  }
  override get y() {
    return this.jwk.y;
  }
  override get n() {
    return this.jwk.n;
  }
  override get e() {
    return this.jwk.e;
  }
  /** AKP (ML-DSA) keys' public part; ours are EC or RSA. The base class would derive it from keyObject(). */
  override get pub() {
    return undefined;
  }

  /** The public key: oidc-provider verifies its own tokens with it (an id_token_hint at sign-out). */
  override keyObject(): KeyObject {
    const { kty, crv, x, y, n, e } = this.jwk;
    this.#public ??= createPublicKey({ key: kty === 'EC' ? { kty, crv, x, y } : { kty, n, e }, format: 'jwk' });
    return this.#public;
  }

  /** A JWS signature over `data` with the key's alg: ES256 as the raw r‖s pair JWS wants, RS256 as PKCS #1 v1.5. */
  override sign(data: Uint8Array): Uint8Array {
    this.#private ??= createPrivateKey({ key: { ...this.jwk }, format: 'jwk' });
    switch (this.#alg) {
      case 'ES256':
        // Signed as DER with the bare KeyObject and converted: half the CPU of asking node for r‖s (ecdsa-signature.ts).
        return derToJose(sign('sha256', data, this.#private), 32);
      case 'RS256':
        return sign('sha256', data, this.#private);
      default:
        throw new Error(`SyncSigningKey: no signing for ${this.#alg}`);
    }
  }
}
