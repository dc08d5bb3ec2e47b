import test from 'ava';
import { markPrepared, preparationsFor, preparedStatement } from '../../src/db/prepared.ts';

test('one text, one name; another text, another name', (t) => {
  const a = preparedStatement('select 1 where $1::int > 0 limit 51');
  t.is(preparedStatement('select 1 where $1::int > 0 limit 51'), a);
  t.regex(a.name, /^tessera_[0-9a-f]{24}$/);
  t.not(preparedStatement('select 1 where $1::int > 0 limit 52').name, a.name);
});

test('a parameter as LIMIT or OFFSET is refused: a generic plan would take it for a tenth of the table', (t) => {
  for (const text of [
    'select * from t limit $1',
    'select * from t order by a LIMIT   $2',
    'select * from t limit 10 offset $1',
    'select * from t fetch first $1 rows only',
  ]) {
    t.throws(() => preparedStatement(text), { message: /literal LIMIT/ }, text);
  }
});

test('a connection is asked to PREPARE each statement once, and only after it did', (t) => {
  const connection = {};
  const s = { prepared: preparedStatement('select $1::int') };
  t.deepEqual(preparationsFor(connection, [s, s, {}]), [`PREPARE ${s.prepared.name} AS select $1::int`]);
  t.deepEqual(preparationsFor(connection, [s]), [`PREPARE ${s.prepared.name} AS select $1::int`], 'not yet known to have it');
  markPrepared(connection, [s]);
  t.deepEqual(preparationsFor(connection, [s]), []);
  t.deepEqual(preparationsFor({}, [s]).length, 1, 'another connection has its own');
});
