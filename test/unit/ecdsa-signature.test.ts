import { generateKeyPairSync, sign, verify } from 'node:crypto';
import test from 'ava';
import { derToJose, joseToDer } from '../../src/crypto/ecdsa-signature.ts';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });

test('derToJose gives the r‖s node gives with dsaEncoding ieee-p1363, and joseToDer gives back what node verifies — 500 signatures and more until short r or s and high bits were seen', (t) => {
  let shortComponents = 0;
  let highBits = 0;
  // At least 500 signatures, and on until both edge cases came up: a leading zero byte (about 1 in
  // 128 signatures per component) and a high first bit (half of them). A fixed count would miss
  // the rarer case in a few percent of runs.
  for (let i = 0; i < 500 || ((shortComponents === 0 || highBits === 0) && i < 20_000); i++) {
    const data = Buffer.from(`message ${i}`);
    const der = sign('sha256', data, privateKey);
    const jose = derToJose(der, 32);
    t.is(jose.length, 64);
    t.true(verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, jose), `r‖s of signature ${i}`);
    const back = joseToDer(jose, 32)!;
    t.true(verify('sha256', data, publicKey, back), `DER of signature ${i}`);
    t.deepEqual(back, der, 'the same DER node made (minimal integers)');
    if (jose[0] === 0 || jose[32] === 0) shortComponents++;
    if (jose[0]! >= 0x80 || jose[32]! >= 0x80) highBits++;
  }
  t.true(shortComponents > 0, 'some r or s had a leading zero byte');
  t.true(highBits > 0, 'some r or s had its high bit set');
});

test('joseToDer refuses anything but exactly 2 × size bytes; a zero or all-ones r‖s is well-formed DER that does not verify', (t) => {
  t.is(joseToDer(new Uint8Array(63), 32), undefined);
  t.is(joseToDer(new Uint8Array(65), 32), undefined);
  t.is(joseToDer(new Uint8Array(0), 32), undefined);
  const data = Buffer.from('x');
  t.deepEqual(joseToDer(new Uint8Array(64), 32), Buffer.from([0x30, 6, 2, 1, 0, 2, 1, 0]));
  t.false(verify('sha256', data, publicKey, joseToDer(new Uint8Array(64), 32)!));
  t.false(verify('sha256', data, publicKey, joseToDer(new Uint8Array(64).fill(0xff), 32)!));
});

test('derToJose throws on what is not a DER ECDSA signature', (t) => {
  const der = sign('sha256', Buffer.from('x'), privateKey);
  t.throws(() => derToJose(der.subarray(0, der.length - 1), 32));
  t.throws(() => derToJose(Buffer.concat([der, Buffer.from([0])]), 32));
  t.throws(() => derToJose(Buffer.from([0x31, 6, 2, 1, 1, 2, 1, 1]), 32), { message: /SEQUENCE/ });
  t.throws(() => derToJose(Buffer.from([0x30, 6, 4, 1, 1, 2, 1, 1]), 32), { message: /INTEGER/ });
  t.throws(() => derToJose(Buffer.from([0x30, 38, 2, 33, 1, ...new Array(32).fill(1), 2, 1, 1]), 32), { message: /too large/ });
});
