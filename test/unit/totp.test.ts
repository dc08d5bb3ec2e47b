import test from 'ava';
import { newRecoveryCode, normalizeRecoveryCode, RECOVERY_CODE_COUNT, recoveryCodeHash } from '../../src/factors/recovery-codes.ts';
import { base32Decode, base32Encode, hotp, matchingStep, newTotpKey, otpauthUri, totpAt, totpStep } from '../../src/factors/totp.ts';

const rfcKey = Buffer.from('12345678901234567890');

test('HOTP gives the RFC 4226 appendix D values', (t) => {
  const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
  t.deepEqual(
    expected.map((_, counter) => hotp(rfcKey, counter)),
    expected,
  );
});

test('TOTP gives the RFC 6238 appendix B values (SHA-1, SHA-256, SHA-512, 8 digits)', (t) => {
  const keys = {
    sha1: rfcKey,
    sha256: Buffer.from('12345678901234567890123456789012'),
    sha512: Buffer.from('1234567890123456789012345678901234567890123456789012345678901234'),
  };
  const vectors: Array<[number, string, string, string]> = [
    [59, '94287082', '46119246', '90693936'],
    [1111111109, '07081804', '68084774', '25091201'],
    [1111111111, '14050471', '67062674', '99943326'],
    [1234567890, '89005924', '91819424', '93441116'],
    [2000000000, '69279037', '90698825', '38618901'],
    [20000000000, '65353130', '77737706', '47863826'],
  ];
  for (const [time, sha1, sha256, sha512] of vectors) {
    t.is(totpAt(keys.sha1, time, 8, 'sha1'), sha1, `SHA-1 at ${time}`);
    t.is(totpAt(keys.sha256, time, 8, 'sha256'), sha256, `SHA-256 at ${time}`);
    t.is(totpAt(keys.sha512, time, 8, 'sha512'), sha512, `SHA-512 at ${time}`);
  }
});

test('a code matches its own step and one step either side, not two', (t) => {
  const key = newTotpKey();
  const now = 1_700_000_000;
  const step = totpStep(now);
  t.is(matchingStep(key, hotp(key, step), now, null), step);
  t.is(matchingStep(key, hotp(key, step - 1), now, null), step - 1);
  t.is(matchingStep(key, hotp(key, step + 1), now, null), step + 1);
  t.is(matchingStep(key, hotp(key, step - 2), now, null), null);
  t.is(matchingStep(key, hotp(key, step + 2), now, null), null);
});

test('a step at or before the last accepted one is refused: no replay, no going back', (t) => {
  const key = newTotpKey();
  const now = 1_700_000_000;
  const step = totpStep(now);
  t.is(matchingStep(key, hotp(key, step), now, step), null, 'the same code again');
  t.is(matchingStep(key, hotp(key, step - 1), now, step), null, 'an older code after a newer one');
  t.is(matchingStep(key, hotp(key, step + 1), now, step), step + 1, 'the next code is fine');
});

test('malformed codes are refused, spaces inside are forgiven', (t) => {
  const key = newTotpKey();
  const now = 1_700_000_000;
  const code = totpAt(key, now);
  t.is(matchingStep(key, `${code.slice(0, 3)} ${code.slice(3)}`, now, null), totpStep(now));
  for (const bad of ['', '12345', '1234567', 'abcdef', `${code}0`, `-${code.slice(1)}`, '１２３４５６']) {
    t.is(matchingStep(key, bad, now, null), null, JSON.stringify(bad));
  }
});

test('base32 round-trips and matches RFC 4648 section 10', (t) => {
  t.is(base32Encode(Buffer.from('foobar')), 'MZXW6YTBOI');
  t.is(base32Encode(Buffer.from('f')), 'MY');
  t.deepEqual(base32Decode('MZXW6YTBOI======'), Buffer.from('foobar'));
  const key = newTotpKey();
  t.deepEqual(base32Decode(base32Encode(key)), key);
  t.throws(() => base32Decode('not base32!'));
});

test('the otpauth URI names issuer, account and parameters, with the secret in base32', (t) => {
  const key = newTotpKey();
  const uri = new URL(otpauthUri(key, 'Acme & Co', 'ana@example.com'));
  t.is(uri.protocol, 'otpauth:');
  t.is(uri.host, 'totp');
  t.is(decodeURIComponent(uri.pathname), '/Acme & Co:ana@example.com');
  t.deepEqual(base32Decode(uri.searchParams.get('secret')!), key);
  t.is(uri.searchParams.get('issuer'), 'Acme & Co');
  t.is(uri.searchParams.get('digits'), '6');
  t.is(uri.searchParams.get('period'), '30');
  t.is(uri.searchParams.get('algorithm'), 'SHA1');
});

test('recovery codes: 80 random bits each, typed in any case with or without dashes', (t) => {
  const codes = Array.from({ length: RECOVERY_CODE_COUNT * 10 }, newRecoveryCode);
  t.is(new Set(codes).size, codes.length);
  for (const code of codes) t.regex(code, /^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/);
  const code = codes[0]!;
  t.is(normalizeRecoveryCode(` ${code.toUpperCase().replaceAll('-', ' ')} `), code.replaceAll('-', ''));
  t.is(recoveryCodeHash(code.toUpperCase()), recoveryCodeHash(code.replaceAll('-', '')));
  t.not(recoveryCodeHash(code), recoveryCodeHash(codes[1]!));
  t.regex(recoveryCodeHash(code), /^[0-9a-f]{64}$/);
});
