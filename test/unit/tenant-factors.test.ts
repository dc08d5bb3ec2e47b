import test from 'ava';
import { describeKind, factorsTurnedOff, kindAllowed, usableKinds } from '../../src/factors/tenant-factors.ts';

test('mfa off: no kind is allowed and no factor counts, whatever mfa_factors says', (tt) => {
  const off = { mfa: 'off', mfa_factors: ['totp', 'passkey'] } as const;
  tt.true(factorsTurnedOff(off));
  tt.false(kindAllowed(off, 'totp'));
  tt.false(kindAllowed(off, 'passkey'));
  tt.deepEqual(usableKinds(off, ['totp', 'passkey']), new Set());
});

test('mfa_factors: a kind left out does not count; the others do', (tt) => {
  for (const mfa of ['optional', 'required'] as const) {
    const passkeysOnly = { mfa, mfa_factors: ['passkey'] } as const;
    tt.false(kindAllowed(passkeysOnly, 'totp'));
    tt.true(kindAllowed(passkeysOnly, 'passkey'));
    tt.deepEqual(usableKinds(passkeysOnly, ['totp']), new Set());
    tt.deepEqual(usableKinds(passkeysOnly, ['totp', 'passkey']), new Set(['passkey']));
    tt.deepEqual(usableKinds({ mfa, mfa_factors: ['totp', 'passkey'] }, ['totp']), new Set(['totp']));
  }
});

test('a factor is named by its kind in general words', (tt) => {
  tt.is(describeKind('totp'), 'an authenticator app');
  tt.is(describeKind('passkey'), 'a passkey');
});
