import test from 'ava';
import { findUnstorable, isStorableText, MAX_NESTING, unstorableTextProblem } from '../../src/base/storable-text.ts';

test('NUL and unpaired surrogates are the text PostgreSQL cannot store; everything else is', (t) => {
  for (const ok of ['', 'plain', 'é', '😀', '\u{10FFFF}', '\u0001\u001f', '\ufffd', '\\u0000', '%00']) {
    t.true(isStorableText(ok), JSON.stringify(ok));
    t.is(unstorableTextProblem(ok), undefined);
  }
  t.is(unstorableTextProblem('a\u0000b'), 'must not contain the NUL character (U+0000)');
  for (const lone of ['\ud800', 'a\udfffb', '\ud83d', '😀'.slice(1), '\udc00\ud800']) {
    t.false(isStorableText(lone), JSON.stringify(lone));
    t.regex(unstorableTextProblem(lone)!, /unpaired UTF-16 surrogate/);
  }
});

test('the first unstorable value or key of a body is named by its path', (t) => {
  t.is(findUnstorable({ name: 'ok', tags: ['a', 'b'], n: 1, none: null }), undefined);
  t.deepEqual(findUnstorable({ metadata: { plan: 'pro\u0000' } }), { field: 'metadata.plan', message: 'must not contain the NUL character (U+0000)' });
  t.deepEqual(findUnstorable({ list: ['ok', '\ud800'] }), { field: 'list.1', message: 'must be valid Unicode text (it holds an unpaired UTF-16 surrogate)' });
  t.deepEqual(findUnstorable({ metadata: { 'a\u0000': 1 } }), { field: 'metadata', message: 'field names must not contain the NUL character (U+0000)' });
  t.deepEqual(findUnstorable('\u0000'), { field: '(body)', message: 'must not contain the NUL character (U+0000)' });
  // A parsed query: strings, and arrays of them for a repeated parameter.
  t.deepEqual(findUnstorable({ q: ['x', 'y\u0000'] }, 2), { field: 'q.1', message: 'must not contain the NUL character (U+0000)' });
});

test('nesting past the limit is named, and a body nested 100,000 deep is walked without recursion', (t) => {
  const nest = (depth: number) => {
    let v: unknown = 'leaf';
    for (let i = 0; i < depth; i++) v = { a: v };
    return v;
  };
  t.is(findUnstorable(nest(MAX_NESTING)), undefined);
  t.deepEqual(findUnstorable(nest(MAX_NESTING + 1)), { field: 'a.a.a.a.a.a.…', message: `nests more than ${MAX_NESTING} levels deep` });
  t.regex(findUnstorable(nest(100_000))!.message, /nests more than 64 levels deep/);
  t.deepEqual(findUnstorable({ q: [['x']] }, 2), { field: 'q.0', message: 'nests more than 2 levels deep' });
});
