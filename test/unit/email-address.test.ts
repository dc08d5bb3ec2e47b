import test from 'ava';
import fc from 'fast-check';
import { canonicalEmail, EmailRefused, emailKey, parseDomain, parseEmail } from '../../src/users/email-address.ts';

const keyOf = (typed: string) => {
  const parsed = parseEmail(typed);
  if (!parsed.ok) throw new Error(`${JSON.stringify(typed)} was refused: ${parsed.problem}`);
  return parsed.email.key;
};
const problemOf = (typed: string) => {
  const parsed = parseEmail(typed);
  if (parsed.ok) throw new Error(`${JSON.stringify(typed)} was accepted as ${parsed.email.key}`);
  return parsed.problem;
};

test('ordinary mixed-case ASCII is one account: Kim@Example.COM ≡ kim@example.com', (t) => {
  t.is(keyOf('Kim@Example.COM'), 'kim@example.com');
  t.is(keyOf('kim@example.com'), 'kim@example.com');
  t.is(keyOf('  KIM@EXAMPLE.COM  '), 'kim@example.com');
  const parsed = parseEmail(' Kim@Example.COM ');
  t.true(parsed.ok);
  // What is stored and mailed to is what was typed (trimmed); the key is only for comparing.
  t.deepEqual(parsed.ok && parsed.email, { address: 'Kim@Example.COM', key: 'kim@example.com', domain: 'example.com' });
});

test('U+0130 İ: refused in the part before the @ (it lower-cases to i + U+0307) and in the domain', (t) => {
  t.regex(problemOf('Kİm@example.com'), /“İ” \(U\+0130\), which in lower case is a letter with a separate accent/);
  t.regex(problemOf('emp@İnitech.example'), /domain .*accent \(U\+0307\).*look-alike/);
  // And so neither spelling reaches kim@example.com's or initech.example's key.
  t.is(emailKey('Kİm@example.com'), undefined);
  t.is(emailKey('emp@İnitech.example'), undefined);
});

test('U+200D zero width joiner (and every other invisible character) is refused', (t) => {
  t.regex(problemOf('k\u200Dim@example.com'), /invisible character \(U\+200D\)/);
  for (const invisible of ['\u200B', '\u200C', '\u00AD', '\u2060', '\uFEFF', '\u202E', '\u2066', '\uFE0F', '\u034F', '\u{E0041}']) {
    t.regex(problemOf(`ki${invisible}m@example.com`), /invisible/, `U+${invisible.codePointAt(0)!.toString(16)}`);
    t.regex(problemOf(`kim@exa${invisible}mple.com`), /invisible/, `U+${invisible.codePointAt(0)!.toString(16)} in the domain`);
  }
});

test('full-width letters and other compatibility characters are refused, in either part', (t) => {
  t.regex(problemOf('ｋｉｍ@example.com'), /“ｋ” \(U\+FF4B\), a full-width or other compatibility character; type it plainly/);
  t.regex(problemOf('kim@ｅxample.com'), /full-width/);
  t.regex(problemOf('kim＠example.com'), /full-width/);
  for (const compat of ['ﬁ', 'ſ', 'ℌ', '²', 'Ⅸ', 'ǅ', 'ｶ']) t.regex(problemOf(`a${compat}@example.com`), /compatibility/, compat);
});

test('i + U+0307 (a combining dot not joined to its letter) is refused', (t) => {
  t.regex(problemOf('ki\u0307m@example.com'), /accent \(U\+0307\) that is not joined to its letter/);
  t.regex(problemOf('kim@i\u0307nitech.example'), /accent \(U\+0307\)/);
  // A combining accent that NFC joins to its letter is that letter: e + U+0301 is é.
  t.is(keyOf('Ame\u0301lie@example.com'), keyOf('amélie@example.com'));
  t.is(keyOf('AMÉLIE@example.com'), 'amélie@example.com');
});

test('a trailing dot on the domain is refused (example.com. is never a second account)', (t) => {
  t.regex(problemOf('kim@example.com.'), /ends with a dot; leave the dot out/);
  const d = parseDomain('example.com.');
  t.false(d.ok);
});

test('dotless ı is the same account as i; ß is the same as ss', (t) => {
  t.is(keyOf('kım@example.com'), 'kim@example.com');
  t.is(keyOf('KIM@example.com'), keyOf('kım@example.com'));
  t.is(keyOf('straße@example.com'), 'strasse@example.com');
  t.is(keyOf('STRASSE@example.com'), keyOf('straße@example.com'));
  t.is(keyOf('Strasse@example.com'), keyOf('STRAẞE@example.com'));
  // Greek final sigma and sigma: one letter in two shapes.
  t.is(keyOf('ΟΔΟΣ@example.com'), keyOf('οδοσ@example.com'));
});

test('the domain goes through IDNA to ASCII: Unicode, punycode and upper case are one account', (t) => {
  t.is(keyOf('kim@Bücher.DE'), 'kim@xn--bcher-kva.de');
  t.is(keyOf('kim@xn--bcher-kva.de'), 'kim@xn--bcher-kva.de');
  t.is(keyOf('kim@XN--BCHER-KVA.DE'), 'kim@xn--bcher-kva.de');
  const parsed = parseEmail('kim@Bücher.DE');
  t.true(parsed.ok && parsed.email.address === 'kim@Bücher.DE' && parsed.email.domain === 'xn--bcher-kva.de');
  // In a domain ß and ss are different names (IDNA2008): different mailboxes, different accounts.
  t.not(keyOf('kim@faß.de'), keyOf('kim@fass.de'));
  t.regex(problemOf('kim@xn--zz.com'), /not a valid internationalized name/);
  t.regex(problemOf('kim@i❤.com'), /“❤”, which is not allowed in a domain name/);
  t.regex(problemOf('kim@xn--i-7iq.com'), /“❤”/, 'the same emoji domain typed as punycode');
  t.regex(problemOf('kim@ex%41mple.com'), /“%”/);
  t.regex(problemOf('kim@localhost'), /not a domain name such as example\.com/);
  t.regex(problemOf('kim@192.0.2.1'), /not a domain name/);
  t.regex(problemOf('kim@[192.0.2.1]'), /“\[”/);
});

test('shape: one @, something on both sides, no spaces, dots in their place, lengths', (t) => {
  t.regex(problemOf(''), /is empty/);
  t.regex(problemOf('kim.example.com'), /has no @/);
  t.regex(problemOf('kim@x@example.com'), /more than one @/);
  t.regex(problemOf('"kim@x"@example.com'), /more than one @/);
  t.regex(problemOf('@example.com'), /nothing before the @/);
  t.regex(problemOf('kim@'), /no domain after the @/);
  t.regex(problemOf('ki m@example.com'), /contains a space/);
  t.regex(problemOf('ki\u00A0m@example.com'), /contains a space/);
  t.regex(problemOf('ki\tm@example.com'), /control character|space/);
  t.regex(problemOf('ki\u0007m@example.com'), /control character \(U\+0007\)/);
  t.regex(problemOf('.kim@example.com'), /dot at the start or the end/);
  t.regex(problemOf('kim.@example.com'), /dot at the start or the end/);
  t.regex(problemOf('k..im@example.com'), /two dots in a row/);
  t.regex(problemOf('ki(m)@example.com'), /“\(”, which is not allowed before the @/);
  t.regex(problemOf('ki\u0378m@example.com'), /U\+0378, which is not an assigned character/);
  t.regex(problemOf('ki\uE000m@example.com'), /not an assigned character/);
  t.is(keyOf(`${'a'.repeat(64)}@example.com`).length, 64 + 12);
  t.regex(problemOf(`${'a'.repeat(65)}@example.com`), /at most 64 bytes/);
  t.regex(problemOf(`${'ä'.repeat(33)}@example.com`), /at most 64 bytes/, 'bytes, not characters');
  const longDomain = `${Array.from({ length: 4 }, () => 'd'.repeat(60)).join('.')}.com`;
  t.regex(problemOf(`${'a'.repeat(20)}@${longDomain}`), /at most 254 bytes/);
  t.is(keyOf("o'brien+tag@example.com"), "o'brien+tag@example.com");
});

test('scripts that write vowels as combining marks stay usable', (t) => {
  t.is(keyOf('राम@उदाहरण.भारत'), 'राम@xn--p1b6ci4b4b3a.xn--h2brj9c');
  t.truthy(keyOf('สมชาย@example.com'));
});

test('canonicalEmail throws a refusal that says what is wrong', (t) => {
  const err = t.throws(() => canonicalEmail('k\u200Dim@example.com'), { instanceOf: EmailRefused });
  t.regex(err!.message, /is not a usable email address: it contains an invisible character \(U\+200D\)/);
});

test('organization domains: Unicode and upper case are stored as their IDNA ASCII form', (t) => {
  t.deepEqual(parseDomain(' Bücher.DE '), { ok: true, ascii: 'xn--bcher-kva.de', unicode: 'bücher.de' });
  t.deepEqual(parseDomain('Example.COM'), { ok: true, ascii: 'example.com', unicode: 'example.com' });
  for (const bad of ['İnitech.example', 'ｅxample.com', 'exa\u200Dmple.com', 'example', '-x.com', 'x-.com', 'a..com', 'a_b.com', '']) {
    t.false(parseDomain(bad).ok, bad);
  }
});

// ── properties, over generated input ─────────────────────────────────────────

const anyText = fc.string({ unit: 'binary', maxLength: 40 });
const asciiAddress = fc.emailAddress();
const invisible = fc.constantFrom('\u200B', '\u200C', '\u200D', '\u00AD', '\u2060', '\uFEFF', '\u202A', '\u202E', '\u061C', '\u180E', '\uFE00', '\u{E0020}');

test('parsing never throws, and an accepted address keys to a fixed point', (t) => {
  fc.assert(
    fc.property(
      fc.oneof(
        anyText,
        asciiAddress,
        fc.tuple(anyText, anyText).map(([a, b]) => `${a}@${b}.example`),
      ),
      (typed) => {
        const parsed = parseEmail(typed);
        if (!parsed.ok) return;
        const { address, key } = parsed.email;
        // The key of the stored address, and of the key itself, is the key: nothing drifts on re-reading.
        t.is(emailKey(address), key);
        t.is(emailKey(key), key);
        t.is(key.toLowerCase(), key);
      },
    ),
    { numRuns: 2000 },
  );
  t.pass();
});

test('changing the case of any ASCII letter never changes the key', (t) => {
  fc.assert(
    fc.property(asciiAddress, fc.array(fc.boolean(), { minLength: 80, maxLength: 80 }), (address, flips) => {
      const key = emailKey(address);
      if (key === undefined) return;
      const recased = [...address].map((ch, i) => (flips[i % flips.length] ? ch.toUpperCase() : ch.toLowerCase())).join('');
      t.is(emailKey(recased), key);
    }),
    { numRuns: 1000 },
  );
  t.pass();
});

test('an invisible character anywhere inside an accepted address gets it refused', (t) => {
  fc.assert(
    fc.property(asciiAddress, invisible, fc.nat(), (address, ch, at) => {
      if (emailKey(address) === undefined) return;
      // Inside: at either end, U+FEFF is white space that trimming takes away.
      const i = 1 + (at % (address.length - 1));
      const parsed = parseEmail(`${address.slice(0, i)}${ch}${address.slice(i)}`);
      t.false(parsed.ok);
    }),
    { numRuns: 1000 },
  );
  t.pass();
});

test('fast-check ASCII addresses the rule refuses are refused for a stated reason', (t) => {
  let accepted = 0;
  fc.assert(
    fc.property(asciiAddress, (address) => {
      const parsed = parseEmail(address);
      if (parsed.ok) accepted++;
      else t.regex(parsed.problem, /\w/);
    }),
    { numRuns: 500 },
  );
  t.true(accepted > 250, `most generated RFC addresses are usable (${accepted}/500)`);
});

test('every letter, digit and mark of Unicode: an accepted address with it keys to a fixed point', (t) => {
  const usable = /[\p{L}\p{N}\p{M}]/u;
  let accepted = 0;
  for (let cp = 0x80; cp < 0x110000; cp++) {
    if (cp >= 0xd800 && cp < 0xe000) continue;
    const ch = String.fromCodePoint(cp);
    if (!usable.test(ch)) continue;
    const key = emailKey(`k${ch}m@example.com`);
    if (key === undefined) continue;
    accepted++;
    if (emailKey(key) !== key) t.fail(`U+${cp.toString(16)}: ${key} keys to ${emailKey(key)}`);
  }
  t.true(accepted > 100_000, `${accepted} characters usable`);
});
