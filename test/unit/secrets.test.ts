import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import test from 'ava';
import { constantTimeEqual, decrypt, deriveKey, encrypt, randomSecret, sha256Hex } from '../../src/crypto/secrets.ts';

test('encrypt/decrypt round-trips and binds the ciphertext to its row', (t) => {
  const key = randomBytes(32);
  const sealed = encrypt(key, '{"d":"secret"}', 'row-1');
  t.false(sealed.includes('secret'));
  t.is(decrypt(key, sealed, 'row-1'), '{"d":"secret"}');
  t.throws(() => decrypt(key, sealed, 'row-2'));
  t.throws(() => decrypt(randomBytes(32), sealed, 'row-1'));
  const [v, iv, tag, ct] = sealed.split('.');
  const flipped = Buffer.from(ct!, 'base64url');
  flipped[0]! ^= 1;
  t.throws(() => decrypt(key, [v, iv, tag, flipped.toString('base64url')].join('.'), 'row-1'));
  t.throws(() => decrypt(key, 'garbage', 'row-1'), { message: /unrecognised/ });
});

test('random secrets are long and distinct; hashes are stable hex', (t) => {
  const a = randomSecret();
  t.true(a.length >= 43);
  t.not(a, randomSecret());
  t.regex(sha256Hex('x'), /^[0-9a-f]{64}$/);
  t.is(sha256Hex('x'), sha256Hex('x'));
});

test('constant-time compare', (t) => {
  t.true(constantTimeEqual('abc', 'abc'));
  t.false(constantTimeEqual('abc', 'abd'));
  t.false(constantTimeEqual('abc', 'abcd'));
  t.false(constantTimeEqual('', 'a'));
});

test('the at-rest subkey is kept per master key: equal bytes in another Buffer decrypt, another key is refused, and the format is unchanged', (t) => {
  const master = randomBytes(32);
  const sealed = encrypt(master, 'signing key', 'row-1');
  t.is(decrypt(Buffer.from(master), sealed, 'row-1'), 'signing key');
  t.throws(() => decrypt(randomBytes(32), sealed, 'row-1'));
  // The subkey is still HKDF(master, 'tessera:at-rest'): a value sealed with it directly opens.
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(master, 'at-rest'), iv);
  cipher.setAAD(Buffer.from('row-2'));
  const ct = Buffer.concat([cipher.update('older value', 'utf8'), cipher.final()]);
  t.is(
    decrypt(master, ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.'), 'row-2'),
    'older value',
  );
});

test('deriveKey is HKDF-SHA256 with an empty salt, byte for byte as hkdfSync computes it, at every length', (t) => {
  for (const master of [randomBytes(32), randomBytes(32), Buffer.alloc(32), randomBytes(64)]) {
    for (const purpose of ['cookies:7d1f0c2e-5b7a-4f3e-9d55-0a1b2c3d4e5f', 'at-rest', 'portal:x', '', 'ünïcödé']) {
      for (const bytes of [1, 16, 31, 32, 33, 64]) {
        const expected = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `tessera:${purpose}`, bytes));
        t.deepEqual(deriveKey(master, purpose, bytes), expected, `${purpose} ${bytes}`);
      }
    }
  }
  t.throws(() => deriveKey(randomBytes(32), 'cookies:a', 0), undefined, 'a zero-length key is refused, as hkdfSync refuses it');
  // Kept per master key Buffer: another key with other bytes derives other subkeys.
  t.notDeepEqual(deriveKey(randomBytes(32), 'cookies:a'), deriveKey(randomBytes(32), 'cookies:a'));
  t.notDeepEqual(deriveKey(Buffer.alloc(32), 'cookies:a'), deriveKey(Buffer.alloc(32), 'cookies:b'));
});
