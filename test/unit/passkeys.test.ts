import test from 'ava';
import { providerName } from '../../src/factors/passkey-names.ts';
import { parseCredentialJson, passkeyAmr, UnreadableCredential } from '../../src/factors/passkeys.ts';

test('amr: hwk for a device-bound passkey, swk for a synced one, user when the person was verified', (tt) => {
  tt.deepEqual(passkeyAmr(false, true), ['hwk', 'user']);
  tt.deepEqual(passkeyAmr(true, true), ['swk', 'user']);
  tt.deepEqual(passkeyAmr(false, false), ['hwk']);
  tt.deepEqual(passkeyAmr(true, false), ['swk']);
});

test('a known AAGUID names its provider; zeros and unknown ones name nothing', (tt) => {
  tt.is(providerName('FBFC3007-154E-4ECC-8C0B-6E020557D7BD'), 'iCloud Keychain');
  tt.is(providerName('00000000-0000-0000-0000-000000000000'), undefined);
  tt.is(providerName(undefined), undefined);
});

test('an answer that is not JSON is refused as unreadable', (tt) => {
  tt.deepEqual(parseCredentialJson('{"id":"x"}'), { id: 'x' });
  tt.throws(() => parseCredentialJson('{broken'), { instanceOf: UnreadableCredential });
});
