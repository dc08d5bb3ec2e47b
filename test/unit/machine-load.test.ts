import test from 'ava';
import { machineLoad, sampleMachine } from '../../bench/lib/machine-load.ts';

const pg = (entries: Array<[number, number]>) => new Map(entries);

test('machineLoad: PostgreSQL per op, and what is left of the busy time after PostgreSQL and the bench is the others’ share of all cores', (t) => {
  const load = machineLoad(
    { busySeconds: 100, postgres: pg([[1, 10]]) },
    { busySeconds: 120, postgres: pg([[1, 16]]) },
    { ops: 3000, benchSeconds: 12, wallSeconds: 10, cores: 2 },
  );
  t.is(load.postgresMsPerOp, 2); // 6 s over 3,000 operations
  t.is(load.othersShare, 0.1); // 20 − 6 − 12 = 2 s of 20 core-seconds
});

test('machineLoad: a backend closed meanwhile takes nothing away, one opened meanwhile counts whole; no PostgreSQL figure for a remote server', (t) => {
  // Backend 2 (40 s of history) exited; backend 3 started and used 1 s; backend 1 used 2 s.
  const churn = machineLoad(
    {
      busySeconds: 100,
      postgres: pg([
        [1, 10],
        [2, 40],
      ]),
    },
    {
      busySeconds: 110,
      postgres: pg([
        [1, 12],
        [3, 1],
      ]),
    },
    { ops: 1000, benchSeconds: 5, wallSeconds: 10, cores: 2 },
  );
  t.is(churn.postgresMsPerOp, 3);
  t.is(churn.othersShare, 0.1); // 10 − 3 − 5 = 2 s of 20
  const remote = machineLoad(
    { busySeconds: 100, postgres: pg([]) },
    { busySeconds: 110, postgres: pg([]) },
    { ops: 10, benchSeconds: 6, wallSeconds: 10, cores: 2 },
  );
  t.is(remote.postgresMsPerOp, null);
  t.is(remote.othersShare, 0.2);
});

test('sampleMachine reads this machine: busy time only grows, and PostgreSQL processes are found by name', (t) => {
  const a = sampleMachine();
  for (let i = 0; i < 2e6; i++) Math.sqrt(i); // some CPU between the samples
  const b = sampleMachine();
  t.true(a.busySeconds > 0);
  t.true(b.busySeconds >= a.busySeconds);
  for (const seconds of b.postgres.values()) t.true(seconds >= 0);
});
