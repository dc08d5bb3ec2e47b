import test from 'ava';
import pg from 'pg';
import { inlineParameters } from '../../src/db/one-shot.ts';

/**
 * One-shot statements carry their parameters as literals (db/one-shot.ts). The escaping must be
 * node-postgres's own, character for character: quotes doubled, and a string with a backslash as
 * an E'' literal with backslashes doubled. The integration test db-round-trips sends such
 * literals to PostgreSQL and reads them back byte for byte; this one compares with escapeLiteral.
 */
const awkward = [
  "'",
  "''",
  '\\',
  "\\'",
  "'\\",
  'a\\b\'c"d',
  '$1',
  '"$1"',
  "'; drop table users; --",
  '\u00e9\u{1F600}',
  '',
  " E'x'",
  '\n\t\r',
  '{"a":"it\'s \\"q\\""}',
];

test('a parameter becomes exactly the literal node-postgres escapeLiteral makes', (tt) => {
  for (const value of awkward) {
    tt.is(inlineParameters('select $1', [value]), `select ${pg.escapeLiteral(value)}`, JSON.stringify(value));
  }
  // Random strings over the characters that matter.
  const alphabet = ["'", '\\', '"', '$', '1', 'a', ' '];
  for (let i = 0; i < 2000; i++) {
    let v = '';
    for (let j = 0; j < 1 + (i % 12); j++) v += alphabet[(i * 7 + j * 13 + (i >> 3)) % alphabet.length];
    tt.is(inlineParameters('$1', [v]), pg.escapeLiteral(v));
  }
});

test('placeholders inside quoted strings and identifiers stay; the rest are replaced in order of their number', (tt) => {
  tt.is(inlineParameters(`select '$1', "$1", $1, $2`, ['x', null]), `select '$1', "$1", 'x', NULL`);
  tt.is(inlineParameters(`select 'it''s $1', $1`, ["o'k"]), `select 'it''s $1', 'o''k'`);
  tt.is(inlineParameters(`select "a""$2", $2, $1, $10`, [1, true, 3, 4, 5, 6, 7, 8, 9, 'ten']), `select "a""$2", 'true', '1', 'ten'`);
  tt.is(inlineParameters('select $1::jsonb', [{ k: "v'" }]), `select '{"k":"v''"}'::jsonb`);
  tt.is(inlineParameters('select $1', [new Date('2026-01-02T03:04:05.678Z')]).startsWith("select '2026-01-0"), true);
});

test('a $n inside anything PostgreSQL reads as one piece stays: E strings, dollar quotes, comments, names holding a $', (tt) => {
  const kept = [`E'it\\'s $1'`, `e'\\\\$1'`, '$$ $1 $$', `$q$ it's $1 $q$`, '$é$ $1 $é$', "-- $1 '\n", "/* $1 ' */", 'a$1', 'x$1$', `U&'$1'`, `X'$1'`];
  for (const piece of kept) tt.is(inlineParameters(`select ${piece}, $1`, ['v']), `select ${piece}, 'v'`, piece);
  // A line comment ends at the line's end; what follows is SQL again.
  tt.is(inlineParameters('select 1 -- $1\n, $1', ['v']), "select 1 -- $1\n, 'v'");
  // An E starts an E string only where it is not the end of a name.
  tt.is(inlineParameters(`select somee'\\', $1`, ['v']), `select somee'\\', 'v'`);
});

test('bytes go as a bytea literal in hex, whatever standard_conforming_strings says', (tt) => {
  tt.is(inlineParameters('select $1', [Buffer.from([0, 0x27, 0x5c, 0xff])]), "select  E'\\\\x00275cff'::bytea");
  tt.is(inlineParameters('select $1', [new Uint8Array([1, 2])]), "select  E'\\\\x0102'::bytea");
  tt.is(inlineParameters('select $1', [Buffer.alloc(0)]), "select  E'\\\\x'::bytea");
});

test('what cannot be expressed is refused, not sent', (tt) => {
  tt.throws(() => inlineParameters('select $3', ['a']), { message: /no parameter \$3/ });
  tt.throws(() => inlineParameters('select $0', ['a']), { message: /no parameter \$0/ });
  for (const open of [`'`, `"`, `E'`, `E'\\'`, '$$', '$q$', '/*']) {
    tt.throws(() => inlineParameters(`select ${open} $1`, ['a']), { message: /never closes/ }, open);
  }
  // PostgreSQL nests block comments: `/* /* */ $1 */` is all comment to it.
  tt.throws(() => inlineParameters('select /* /* */ $1 */', ['a']), { message: /nested block comment/ });
});

test('a parameter holding NUL is refused before it is sent: PostgreSQL would fail the whole message, and every statement grouped with it', (tt) => {
  tt.throws(() => inlineParameters('select $1', ['a\u0000b']), { message: /U\+0000/ });
  tt.throws(() => inlineParameters('select $1::jsonb', [['\u0000']]), { message: /U\+0000/ });
  // In JSON it is an escape (\u0000), which jsonb refuses in its own statement only.
  tt.is(inlineParameters('select $1', [{ a: '\u0000' }]), `select ${pg.escapeLiteral(JSON.stringify({ a: '\u0000' }))}`);
});
