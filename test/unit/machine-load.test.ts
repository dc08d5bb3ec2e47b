import test from 'ava';
import { machineLoad, sampleMachine } from '../../bench/lib/machine-load.ts';

test('machineLoad: PostgreSQL per op, and what is left of the busy time after PostgreSQL and the bench is the others’ share of all cores', (t) => {
  const load = machineLoad({ busySeconds: 100, postgresSeconds: 10 }, { busySeconds: 120, postgresSeconds: 16 }, { ops: 3000, benchSeconds: 12, wallSeconds: 10, cores: 2 });
  t.is(load.postgresMsPerOp, 2); // 6 s over 3,000 operations
  t.is(load.othersShare, 0.1); // 20 − 6 − 12 = 2 s of 20 core-seconds
});

test('machineLoad: no negative shares when a backend exits mid-row; no PostgreSQL figure for a remote server', (t) => {
  const exited = machineLoad({ busySeconds: 100, postgresSeconds: 50 }, { busySeconds: 110, postgresSeconds: 40 }, { ops: 10, benchSeconds: 12, wallSeconds: 10, cores: 2 });
  t.is(exited.postgresMsPerOp, 0);
  t.is(exited.othersShare, 0);
  const remote = machineLoad({ busySeconds: 100, postgresSeconds: NaN }, { busySeconds: 110, postgresSeconds: NaN }, { ops: 10, benchSeconds: 6, wallSeconds: 10, cores: 2 });
  t.is(remote.postgresMsPerOp, null);
  t.is(remote.othersShare, 0.2);
});

test('sampleMachine reads this machine: busy time only grows', (t) => {
  const a = sampleMachine();
  for (let i = 0; i < 2e6; i++) Math.sqrt(i); // some CPU between the samples
  const b = sampleMachine();
  t.true(a.busySeconds > 0);
  t.true(b.busySeconds >= a.busySeconds);
});
