import test from 'ava';
import { GroupCommit } from '../../src/db/group-commit.ts';

/** A writer that records each batch and finishes when told to. */
function recordingWriter(fail: (items: string[]) => boolean = () => false) {
  const batches: string[][] = [];
  let release: () => void = () => {};
  let gate = new Promise<void>((r) => (release = r));
  const write = async (items: string[]) => {
    batches.push(items);
    await gate;
    if (fail(items)) throw new Error(`refused ${items.join(',')}`);
    return items.map((x) => `wrote ${x}`);
  };
  const open = () => {
    release();
    gate = Promise.resolve();
  };
  return { batches, write, open };
}

test('a write at rest goes at once; writes arriving meanwhile share the next statement', async (t) => {
  const w = recordingWriter();
  const gc = new GroupCommit(w.write);
  const first = gc.add('a');
  t.deepEqual(w.batches, [['a']]); // no timer, no waiting for company
  const rest = ['b', 'c', 'd'].map((x) => gc.add(x));
  w.open();
  // Each caller is told its own write's result, batched or not.
  t.deepEqual(await Promise.all([first, ...rest]), ['wrote a', 'wrote b', 'wrote c', 'wrote d']);
  t.deepEqual(w.batches, [['a'], ['b', 'c', 'd']]);
});

test('a caller is answered only after the statement carrying its write has finished', async (t) => {
  const w = recordingWriter();
  const gc = new GroupCommit(w.write);
  let done = false;
  const p = gc.add('a').then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  t.false(done);
  w.open();
  await p;
  t.true(done);
});

test('batches are capped', async (t) => {
  const w = recordingWriter();
  const gc = new GroupCommit(w.write, 2);
  const all = ['a', 'b', 'c', 'd', 'e'].map((x) => gc.add(x));
  w.open();
  await Promise.all(all);
  t.deepEqual(w.batches, [['a'], ['b', 'c'], ['d', 'e']]);
});

test('one bad write fails only its own caller: a failed batch is retried write by write', async (t) => {
  const w = recordingWriter((items) => items.includes('bad'));
  const gc = new GroupCommit(w.write);
  const first = gc.add('a');
  const good = gc.add('b');
  const bad = gc.add('bad');
  const alsoGood = gc.add('c');
  w.open();
  await first;
  t.is(await good, 'wrote b'); // its result comes from the one-by-one retry
  await alsoGood;
  await t.throwsAsync(bad, { message: 'refused bad' });
  t.deepEqual(w.batches, [['a'], ['b', 'bad', 'c'], ['b'], ['bad'], ['c']]);
  // And it keeps working afterwards.
  await gc.add('d');
  t.deepEqual(w.batches.at(-1), ['d']);
});

test('with maxInFlight 2 a second batch goes while the first is out; a third waits for one of them', async (t) => {
  const w = recordingWriter();
  const gc = new GroupCommit(w.write, 200, 2);
  const first = gc.add('a');
  const second = gc.add('b');
  t.deepEqual(w.batches, [['a'], ['b']]);
  const rest = ['c', 'd'].map((x) => gc.add(x));
  t.deepEqual(w.batches, [['a'], ['b']]); // both slots busy: c and d wait and then go together
  w.open();
  t.deepEqual(await Promise.all([first, second, ...rest]), ['wrote a', 'wrote b', 'wrote c', 'wrote d']);
  t.deepEqual(w.batches, [['a'], ['b'], ['c', 'd']]);
});

test('addAll: items handed in together go in one batch, each caller told its own result', async (t) => {
  const w = recordingWriter();
  const gc = new GroupCommit(w.write);
  const together = gc.addAll(['a', 'b', 'c']);
  t.deepEqual(w.batches, [['a', 'b', 'c']]);
  w.open();
  t.deepEqual(await together, ['wrote a', 'wrote b', 'wrote c']);
  // With a batch in flight they queue, still together.
  const w2 = recordingWriter();
  const gc2 = new GroupCommit(w2.write);
  const first = gc2.add('x');
  const pair = gc2.addAll(['y', 'z']);
  w2.open();
  t.deepEqual([await first, ...(await pair)], ['wrote x', 'wrote y', 'wrote z']);
  t.deepEqual(w2.batches, [['x'], ['y', 'z']]);
});

test('a batch that fails because the database is unreachable fails all its callers at once, without a retry per write', async (t) => {
  const batches: string[][] = [];
  const gc = new GroupCommit(async (items: string[]) => {
    batches.push(items);
    if (items.length > 1) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    return items.map((x) => `wrote ${x}`);
  });
  const first = gc.add('a');
  const rest = ['b', 'c', 'd'].map((x) => gc.add(x));
  t.is(await first, 'wrote a');
  for (const p of rest) await t.throwsAsync(p, { message: /ECONNREFUSED/ });
  t.deepEqual(batches, [['a'], ['b', 'c', 'd']]);
});
