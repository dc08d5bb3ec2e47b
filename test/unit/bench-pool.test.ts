import test from 'ava';
import { Pool } from '../../bench/lib/pool.ts';

/** A promise and the function that settles it, to hold an operation open. */
function gate() {
  let open!: () => void;
  const done = new Promise<void>((r) => (open = r));
  return { done, open };
}

test('bench Pool: with max, an operation finding none free waits for one given back; none is made beyond max', async (t) => {
  let made = 0;
  const pool = new Pool(async () => `chain-${++made}`, 2);
  const first = gate();
  const second = gate();
  const a = pool.use(async (c) => {
    await first.done;
    return `${c}'`;
  });
  const b = pool.use(async (c) => {
    await second.done;
    return `${c}'`;
  });
  let thirdGot: string | undefined;
  const c = pool.use(async (item) => {
    thirdGot = item;
    return item;
  });
  await new Promise((r) => setImmediate(r));
  t.is(made, 2);
  t.is(thirdGot, undefined, 'the third waits while both are in use');
  first.open();
  await a;
  await c;
  t.is(thirdGot, "chain-1'", 'it gets the first one given back');
  second.open();
  await b;
  t.is(made, 2);
});

test('bench Pool: an item used up or lost to an error is replaced for one waiting, within max', async (t) => {
  let made = 0;
  const pool = new Pool(async () => `chain-${++made}`, 1);
  const held = gate();
  const failing = pool.use(async () => {
    await held.done;
    throw new Error('lost');
  });
  let waiterGot: string | undefined;
  const waiter = pool.use(async (item) => {
    waiterGot = item;
    return undefined;
  });
  await new Promise((r) => setImmediate(r));
  t.is(made, 1);
  held.open();
  await t.throwsAsync(failing, { message: 'lost' });
  await waiter;
  t.is(waiterGot, 'chain-2', 'the waiter gets a new one when the only one was lost');
  t.is(made, 2);
});

test('bench Pool: without max, one is made whenever none is free (the RefreshToken mix signs in this way)', async (t) => {
  let made = 0;
  const pool = new Pool(async () => ++made);
  const g = gate();
  const ops = Array.from({ length: 5 }, () =>
    pool.use(async (n) => {
      await g.done;
      return n;
    }),
  );
  await new Promise((r) => setImmediate(r));
  t.is(made, 5);
  g.open();
  await Promise.all(ops);
  await pool.use(async (n) => n);
  t.is(made, 5, 'a free one is reused');
});
