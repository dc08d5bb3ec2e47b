import { createCipheriv, createDecipheriv, createHash, createHmac, createSecretKey, hkdfSync, type KeyObject, randomBytes, timingSafeEqual } from 'node:crypto';

/** A high-entropy, URL-safe random secret (256 bits by default). */
export function randomSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/**
 * High-entropy secrets (API keys, client secrets, tokens) are stored as SHA-256: a slow hash
 * adds nothing when the input has 256 bits of entropy, and would starve the libuv pool.
 */
export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

export function constantTimeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  // Compare equal-length buffers so the length difference alone does not short-circuit.
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

/**
 * A purpose-bound subkey of the master key, so one leaked use does not expose the others:
 * HKDF-SHA256 (RFC 5869) with an empty salt and info `tessera:<purpose>`.
 *
 * Up to one hash block (32 bytes) it is computed in its two steps by hand, the first kept: the
 * extract step, PRK = HMAC(zeros, master), once per master key (per Buffer) as a KeyObject; each
 * subkey is then one HMAC, HMAC(PRK, info ‖ 0x01). The same bytes as `hkdfSync` (tested), which
 * redoes both steps and validates its arguments on every call, and every build of a tenant's
 * provider derives its cookie key (docs/performance.md, "A cold tenant").
 */
export function deriveKey(master: Buffer, purpose: string, bytes = 32): Buffer {
  const info = `tessera:${purpose}`;
  if (bytes < 1 || bytes > HASH_BYTES) return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), info, bytes));
  let prk = extracted.get(master);
  if (!prk) {
    prk = createSecretKey(createHmac('sha256', Buffer.alloc(HASH_BYTES)).update(master).digest());
    extracted.set(master, prk);
  }
  const okm = createHmac('sha256', prk).update(info, 'utf8').update(FIRST_BLOCK).digest();
  return bytes === HASH_BYTES ? okm : okm.subarray(0, bytes);
}

const HASH_BYTES = 32;
const FIRST_BLOCK = Buffer.from([1]);
const extracted = new WeakMap<Buffer, KeyObject>();

const FORMAT = 'v1';

/**
 * The at-rest subkey of a master key, derived once per master key (per Buffer) and kept as a
 * KeyObject. Deriving it per call (HKDF) and handing the cipher raw bytes cost four times as much
 * per decryption, and every provider build decrypts its tenant's signing keys
 * (docs/performance.md, "A cold tenant").
 */
const atRestKeys = new WeakMap<Buffer, KeyObject>();
function atRestKey(master: Buffer): KeyObject {
  let key = atRestKeys.get(master);
  if (!key) {
    key = createSecretKey(deriveKey(master, 'at-rest'));
    atRestKeys.set(master, key);
  }
  return key;
}

/** AES-256-GCM; output `v1.<iv>.<tag>.<ciphertext>` (base64url parts). `aad` binds it to its row. */
export function encrypt(key: Buffer, plaintext: string, aad: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', atRestKey(key), iv);
  cipher.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [FORMAT, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
}

export function decrypt(key: Buffer, sealed: string, aad: string): string {
  const [format, iv, tag, ct] = sealed.split('.');
  if (format !== FORMAT || !iv || !tag || ct === undefined) throw new Error('unrecognised encrypted value');
  const decipher = createDecipheriv('aes-256-gcm', atRestKey(key), Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
}
