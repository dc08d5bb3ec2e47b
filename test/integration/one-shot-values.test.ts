import { deepStrictEqual } from 'node:assert/strict';
import test from 'ava';
import fc from 'fast-check';
import { CompiledQuery, sql } from 'kysely';
import pg from 'pg';
import { scopedBatch, scopedStatement } from '../../src/db/one-shot.ts';
import { inTenant } from '../../src/db/tenant-scope.ts';
import { createTenant, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';
import { serverUrl } from '../helpers/database.ts';

/**
 * The one-shot path (db/one-shot.ts) sends a statement's parameters inlined into its text as
 * literals; the ordinary path binds them. Random values — any Unicode text with the characters
 * that end or open a literal, numbers at their edges, dates across PostgreSQL's range, bytes,
 * arrays, JSON — go both ways through the real paths, and PostgreSQL must read back the same
 * thing: the same rows, or the same error.
 *
 * PostgreSQL only: the embedded database (PGlite) never inlines — connect.ts registers the
 * one-shot path for a PostgreSQL pool alone — and binds its parameters with its own serializers,
 * not node-postgres's, so there is nothing of this path to compare there.
 */

const onPostgres = serverUrl() ? test : test.skip;

let t: TestApp;
let tenant: TestTenant;
const db = () => t.app.connection.db;

test.before(async () => {
  if (!serverUrl()) return;
  // The path under test, whatever DATABASE_ONE_SHOT the suite runs with.
  t = await startTestApp({ env: { DATABASE_ONE_SHOT: 'true' } });
  tenant = await createTenant(t);
  await sql`create table one_shot_values (
    c_text text, c_int4 int4, c_int8 int8, c_float8 float8, c_numeric numeric, c_bool bool,
    c_timestamptz timestamptz, c_bytea bytea, c_jsonb jsonb, c_json json,
    c_text_array text[], c_int4_array int4[], c_timestamptz_array timestamptz[], c_bytea_array bytea[])`.execute(db());
  await sql`grant select, insert on one_shot_values to tessera_app`.execute(db());
});
test.after.always(async () => t?.stop());

// Text. NUL and lone surrogates are left out: requests never bring them (http/storable-text.ts);
// a test below shows both paths treat them alike.
const TROUBLE = [
  "'",
  "''",
  '\\',
  "\\'",
  "E'",
  "e'",
  "U&'",
  '"',
  '$1',
  '$2',
  '$10',
  '$$',
  '$tag$',
  '$1$',
  '--',
  '/*',
  '*/',
  ';',
  '\n',
  '\r',
  '{',
  '}',
  ',',
  ' ',
  'NULL',
  '\\x',
  '::text',
  '\t',
  '\u00a0',
  '\u202e',
  '\ufeff',
  '\uffff',
];
const anyCodePoint = fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }).filter((c) => c !== '\u0000');
const astral = fc.integer({ min: 0x10000, max: 0x10ffff }).map((c) => String.fromCodePoint(c));
const unit = fc.oneof({ arbitrary: fc.constantFrom(...TROUBLE), weight: 3 }, { arbitrary: anyCodePoint, weight: 3 }, { arbitrary: astral, weight: 1 });
const text = fc.string({ unit, maxLength: 30 });

// timestamptz runs from 4714-11-24 BC to 294276 AD; a Date from 271821 BC to 275760 AD.
const date = fc.oneof(
  fc.date({ min: new Date(Date.UTC(-4712, 0, 1)), max: new Date(8.64e15), noInvalidDate: true }),
  fc.date({ min: new Date('1900-01-01T00:00:00Z'), max: new Date('2200-01-01T00:00:00Z'), noInvalidDate: true }),
);
const bytes = fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a));
// node-postgres sends an object as its JSON, but a string as it is and an array as an SQL array:
// JSON goes as text (as the app sends it, JSON.stringify'd) or as an object.
const jsonValue = fc.jsonValue({ maxDepth: 3, stringUnit: unit });
const json = fc.oneof(
  jsonValue.map((v) => JSON.stringify(v)),
  fc.dictionary(text, jsonValue, { maxKeys: 4 }),
);
const jsonRead = (sent: unknown) => JSON.parse(typeof sent === 'string' ? sent : JSON.stringify(sent));

/** -0 is sent as "0" by node-postgres (`(-0).toString()`), on either path. */
const noNegativeZero = (n: number) => (Object.is(n, -0) ? 0 : n);

interface Kind {
  type: string;
  column: string;
  values: fc.Arbitrary<unknown>;
  /** What node-postgres should hand back for `v` (null comes back as null). */
  expected(v: unknown): unknown;
  /** What it did hand back, comparable with `expected` (numeric arrives as text). */
  actual?(got: unknown, sent: unknown): unknown;
}

const KINDS: Kind[] = [
  { type: 'text', column: 'c_text', values: text, expected: (v) => v },
  { type: 'int4', column: 'c_int4', values: fc.integer(), expected: (v) => v },
  {
    type: 'int8',
    column: 'c_int8',
    values: fc.oneof(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.maxSafeInteger()),
    expected: (v) => String(v),
  },
  { type: 'float8', column: 'c_float8', values: fc.double(), expected: (v) => noNegativeZero(v as number) },
  {
    type: 'numeric',
    column: 'c_numeric',
    values: fc.oneof(fc.double(), fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n })),
    expected: (v) => (typeof v === 'bigint' ? String(v) : noNegativeZero(v as number)),
    // A double's digits, read as a double again; an integer's, exactly.
    actual: (got, sent) => (typeof sent === 'bigint' ? got : Number(got)),
  },
  { type: 'bool', column: 'c_bool', values: fc.boolean(), expected: (v) => v },
  { type: 'timestamptz', column: 'c_timestamptz', values: date, expected: (v) => (v as Date).getTime(), actual: (got) => (got as Date).getTime() },
  { type: 'bytea', column: 'c_bytea', values: bytes, expected: (v) => v },
  // jsonb keeps numbers exactly and orders keys its own way: the same value once parsed.
  { type: 'jsonb', column: 'c_jsonb', values: json, expected: jsonRead },
  { type: 'json', column: 'c_json', values: json, expected: jsonRead },
  { type: 'text[]', column: 'c_text_array', values: fc.array(fc.option(text), { maxLength: 5 }), expected: (v) => v },
  { type: 'int4[]', column: 'c_int4_array', values: fc.array(fc.option(fc.integer()), { maxLength: 5 }), expected: (v) => v },
  {
    type: 'timestamptz[]',
    column: 'c_timestamptz_array',
    values: fc.array(date, { maxLength: 4 }),
    expected: (v) => (v as Date[]).map((d) => d.getTime()),
    actual: (got) => (got as Date[]).map((d) => d.getTime()),
  },
  { type: 'bytea[]', column: 'c_bytea_array', values: fc.array(bytes, { maxLength: 4 }), expected: (v) => v },
];

const kindOf = (type: string) => KINDS.find((k) => k.type === type)!;

/** Some kinds, in any order, each with a value or null. */
const record = fc
  .shuffledSubarray(
    KINDS.map((k) => k.type),
    { minLength: 1 },
  )
  .chain((types) => fc.tuple(...types.map((type) => fc.option(kindOf(type).values, { freq: 8 }).map((value) => ({ type, value })))));

type Outcome = { rows: unknown[] } | { error: string };

/** Rows, or the error as PostgreSQL (or the inliner) put it. */
async function outcome(run: () => Promise<{ rows: unknown[] }>): Promise<Outcome> {
  try {
    return { rows: (await run()).rows };
  } catch (err) {
    const e = err as Error & { code?: string };
    return { error: `${e.code ?? 'client'}: ${e.message}` };
  }
}

/** The same statement bound (an `inTenant` transaction), inlined (one-shot, grouped if a read), inlined and prepared, and inlined in a batch. */
async function everyWay(text: string, parameters: unknown[]) {
  const q = CompiledQuery.raw(text, parameters);
  const [bound, inlined, prepared, batched] = await Promise.all([
    outcome(() => inTenant(db(), tenant.id, (tx) => tx.executeQuery(q))),
    outcome(() => scopedStatement(db(), tenant.id, (tx) => tx.executeQuery(q))),
    outcome(() => scopedStatement(db(), tenant.id, (tx) => tx.executeQuery(q), { prepare: true })),
    outcome(async () => ({ rows: (await scopedBatch(db(), tenant.id, () => [q]))[0]! })),
  ]);
  return { bound, inlined, prepared, batched };
}

onPostgres(
  'a value inlined reads back exactly as the value bound, and as the value sent: as typed parameters and as untyped ones into typed columns',
  async (tt) => {
    let statements = 0;
    await fc.assert(
      fc.asyncProperty(record, async (values) => {
        const fields = values.map((v) => ({ kind: kindOf(v.type), value: v.value }));
        const parameters = fields.map((f) => f.value);
        // Each parameter twice, cast: the typed value, and its text as PostgreSQL prints it.
        const select = `select ${fields.map((f, i) => `$${i + 1}::${f.kind.type} as v${i}, ($${i + 1}::${f.kind.type})::text as t${i}`).join(', ')}`;
        // Untyped parameters, their types inferred from the columns, as the app's statements are.
        const columns = fields.map((f) => f.kind.column);
        const insert = `insert into one_shot_values (${columns.join(', ')}) values (${fields.map((_, i) => `$${i + 1}`).join(', ')}) returning ${columns.join(', ')}`;
        for (const statement of [select, insert]) {
          const { bound, inlined, prepared, batched } = await everyWay(statement, parameters);
          statements++;
          if ('error' in bound) throw new Error(`bound, refused: ${bound.error}`);
          deepStrictEqual(inlined, bound, 'inlined');
          deepStrictEqual(batched, bound, 'inlined in a batch');
          // EXECUTE's arguments are literals too, typed by the prepared statement's parameters.
          deepStrictEqual(prepared, bound, 'inlined into EXECUTE');
          const row = bound.rows[0] as Record<string, unknown>;
          fields.forEach((f, i) => {
            const got = statement === select ? row[`v${i}`] : row[f.kind.column];
            const back = got === null ? null : f.kind.actual ? f.kind.actual(got, f.value) : got;
            deepStrictEqual(back, f.value === null ? null : f.kind.expected(f.value), `${f.kind.type} read back`);
          });
        }
      }),
      { numRuns: 250 },
    );
    tt.is(statements, 500);
  },
);

/** Text for a piece of SQL that must not hold `forbidden` (the piece's own end). */
const textWithout = (...forbidden: string[]) => text.filter((s) => forbidden.every((f) => !s.includes(f)));
/** Text a dollar quote with `tag` can hold: the first `tag` after the opening one is the closing one. */
const dollarQuotable = (tag: string) => text.filter((s) => (s + tag).indexOf(tag) === s.length);

onPostgres(
  'placeholders look-alikes in the statement itself — strings, E strings, quoted names, dollar quotes, comments — are not parameters on either path',
  async (tt) => {
    let statements = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          value: text,
          lit: text,
          dollar: dollarQuotable('$q$'),
          dollar2: dollarQuotable('$$'),
          comment: textWithout('/*', '*/'),
          line: textWithout('\n', '\r'),
          name: text.map((s) => `n${[...s].slice(0, 12).join('')}`),
        }),
        async ({ value, lit, dollar, dollar2, comment, line, name }) => {
          const statement = [
            `select $1::text as v, ${pg.escapeLiteral(lit)} as lit, E'${lit.replace(/['\\]/g, '\\$&')}' as elit,`,
            `$q$${dollar}$q$ as dollar, $$${dollar2}$$ as dollar2 /* ${comment} */ -- ${line}`,
            `, $1 as again, ${pg.escapeIdentifier(name)}.x from (select $2::int as x) ${pg.escapeIdentifier(name)}`,
          ].join('\n');
          const { bound, inlined, prepared, batched } = await everyWay(statement, [value, 7]);
          statements++;
          deepStrictEqual(bound, { rows: [{ v: value, lit, elit: lit, dollar, dollar2, again: value, x: 7 }] });
          deepStrictEqual(inlined, bound, 'inlined');
          deepStrictEqual(batched, bound, 'inlined in a batch');
          deepStrictEqual(prepared, bound, 'inlined into EXECUTE');
        },
      ),
      { numRuns: 200 },
    );
    tt.is(statements, 200);
  },
);

onPostgres('text PostgreSQL cannot take is refused by both paths; a lone surrogate arrives on both as U+FFFD', async (tt) => {
  for (const [type, value] of [
    ['text', 'a\u0000b'],
    ['text[]', ['a\u0000b']],
  ] as const) {
    const { bound, inlined, batched } = await everyWay(`select $1::${type} as v`, [value]);
    tt.regex((bound as { error: string }).error, /^22021: invalid byte sequence for encoding "UTF8": 0x00/, `bound ${type}`);
    // Inlined, it never leaves the process: in a grouped read it would fail every statement sent along.
    tt.regex((inlined as { error: string }).error, /^client: .*U\+0000/, `inlined ${type}`);
    tt.deepEqual(batched, inlined);
  }
  // In JSON, NUL and a lone surrogate are escapes (\u0000, \ud800): jsonb refuses them both ways alike, json keeps them.
  for (const value of [{ k: 'a\u0000b' }, { k: 'a\ud800b' }, ['\udfff']]) {
    const jsonb = await everyWay('select $1::jsonb as v', [JSON.stringify(value)]);
    tt.regex((jsonb.bound as { error: string }).error, /^22P0\d: /, JSON.stringify(value));
    tt.deepEqual(jsonb.inlined, jsonb.bound);
    tt.deepEqual(jsonb.batched, jsonb.bound);
    const plain = await everyWay('select $1::json as v', [JSON.stringify(value)]);
    tt.deepEqual(plain.bound, { rows: [{ v: value }] });
    tt.deepEqual(plain.inlined, plain.bound);
  }
  // node-postgres encodes a lone surrogate as UTF-8's replacement character, bound or inlined.
  for (const value of ['a\ud800b', '\udfff', 'x\ud83d']) {
    const { bound, inlined, prepared, batched } = await everyWay('select $1::text as v', [value]);
    tt.deepEqual(bound, { rows: [{ v: value.replace(/[\ud800-\udfff]/g, '\ufffd') }] });
    tt.deepEqual(inlined, bound);
    tt.deepEqual(prepared, bound);
    tt.deepEqual(batched, bound);
  }
});
