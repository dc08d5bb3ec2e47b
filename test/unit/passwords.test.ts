import argon2 from 'argon2';
import test from 'ava';
import { ARGON2_PARAMS, checkPassword, hashPassword } from '../../src/users/passwords.ts';

test('argon2id with the OWASP parameters', async (t) => {
  const hash = await hashPassword('correct horse');
  t.regex(hash, /^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
  t.deepEqual(await checkPassword(hash, 'correct horse'), { ok: true });
  t.deepEqual(await checkPassword(hash, 'wrong'), { ok: false });
});

test('a hash made with older parameters is rehashed on a successful check', async (t) => {
  const old = await argon2.hash('pw-123456', { ...ARGON2_PARAMS, memoryCost: 4096, timeCost: 3 });
  const r = await checkPassword(old, 'pw-123456');
  t.true(r.ok);
  t.regex(r.rehashed!, /m=19456,p=1,t=2/);
  t.is((await checkPassword(old, 'nope')).rehashed, undefined);
});

test('no stored hash (unknown user) still does argon2 work and fails; a malformed hash fails cleanly', async (t) => {
  const started = performance.now();
  t.deepEqual(await checkPassword(undefined, 'anything'), { ok: false });
  t.deepEqual(await checkPassword('not-a-hash', 'anything'), { ok: false });
  // Not a timing assertion: a sanity check that the dummy path really ran a hash at all.
  t.true(performance.now() - started > 1);
});
