import test from 'ava';
import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler, sql } from 'kysely';
import { type FilterAttributes, filterToSql, jsonbValues } from '../../src/scim/scim-filter.ts';

// SCIM filters become parameterised SQL: values never reach the statement's text.

const db = new Kysely<any>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (k) => new PostgresIntrospector(k),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

const attributes: FilterAttributes = {
  username: { kind: 'text', column: sql.ref('user_name_key'), caseExact: false, key: (v) => v.toLowerCase() },
  externalid: { kind: 'text', column: sql.ref('external_id'), caseExact: true },
  'emails.value': jsonbValues(sql`resource->'emails'`),
  id: { kind: 'id', column: sql.ref('id') },
  'meta.lastmodified': { kind: 'time', column: sql.ref('updated_at') },
};

const compile = (filter: string) => sql`select 1 where ${filterToSql(filter, attributes)}`.compile(db);

test('comparisons, logic and value paths compile to parameters', (t) => {
  const q = compile('userName eq "Ada@Example.com" or (externalId sw "00u" and emails[value co "x"])');
  t.is(
    q.sql,
    `select 1 where ("user_name_key" = $1 or ("external_id" like $2 and exists (select 1 from jsonb_array_elements(case when jsonb_typeof(resource->'emails') = 'array' then resource->'emails' else '[]'::jsonb end) as e where lower(e->>'value') like $3)))`,
  );
  t.deepEqual(q.parameters, ['ada@example.com', '00u%', '%x%']);
});

test('an injection attempt stays a value; LIKE wildcards are escaped', (t) => {
  const q = compile(`userName eq "x' or '1'='1" and externalId co "50%_"`);
  t.false(q.sql.includes("'1'='1"));
  t.deepEqual(q.parameters, ["x' or '1'='1", '%50\\%\\_%']);
});

test('an id that is not a uuid matches nothing rather than failing the statement', (t) => {
  t.regex(compile('id eq "not-a-uuid"').sql, /where false$/);
  t.deepEqual(compile('id eq "2819c223-7f76-453a-919d-413861904646"').parameters, ['2819c223-7f76-453a-919d-413861904646']);
});

test('unsupported attributes, operators and values are refused with invalidFilter', (t) => {
  for (const f of [
    'title eq "x"',
    'userName ne "x"',
    'userName ew "x"',
    'id co "x"',
    'meta.lastModified gt "nope"',
    'not (userName eq "x")',
    'userName eq true',
    'userName eq',
    // Names of Object's own machinery name no attribute.
    '__proto__ pr',
    '__proto__ eq "x"',
    'constructor pr',
    'userName pr and toString pr',
  ]) {
    const err = t.throws(() => compile(f), undefined, f) as { status?: number; extensions?: { scimType?: string } };
    t.is(err.status, 400, f);
    t.is(err.extensions?.scimType, 'invalidFilter', f);
  }
});
