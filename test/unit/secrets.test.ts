import { randomBytes } from 'node:crypto';
import test from 'ava';
import { constantTimeEqual, decrypt, encrypt, randomSecret, sha256Hex } from '../../src/crypto/secrets.ts';

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
