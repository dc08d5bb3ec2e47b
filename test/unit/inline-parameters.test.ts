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

test('what cannot be expressed is refused, not sent', (tt) => {
  tt.throws(() => inlineParameters('select $3', ['a']), { message: /no parameter \$3/ });
  tt.throws(() => inlineParameters('select $0', ['a']), { message: /no parameter \$0/ });
  tt.throws(() => inlineParameters('select $1', [Buffer.from('x')]), { message: /binary/ });
  tt.throws(() => inlineParameters(`select 'unterminated $1`, ['a']), { message: /unterminated/ });
  tt.throws(() => inlineParameters(`select "unterminated $1`, ['a']), { message: /unterminated/ });
});

test('a parameter holding NUL is refused before it is sent: PostgreSQL would fail the whole message, and every statement grouped with it', (tt) => {
  tt.throws(() => inlineParameters('select $1', ['a\u0000b']), { message: /U\+0000/ });
  tt.throws(() => inlineParameters('select $1::jsonb', [['\u0000']]), { message: /U\+0000/ });
  // In JSON it is an escape (\u0000), which jsonb refuses in its own statement only.
  tt.is(inlineParameters('select $1', [{ a: '\u0000' }]), `select ${pg.escapeLiteral(JSON.stringify({ a: '\u0000' }))}`);
});
