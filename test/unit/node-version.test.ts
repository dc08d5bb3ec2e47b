import test from 'ava';
import { NEEDED, nodeVersionIsEnough, nodeVersionProblem } from '../../bin/node-version.js';

test('22.12 and newer are enough; older ones are not', (t) => {
  t.is(NEEDED, '22.12.0');
  for (const v of ['22.12.0', '22.12.1', '22.20.0', '23.0.0', '24.11.1', 'v24.0.0', '100.0.0', '22.12']) t.true(nodeVersionIsEnough(v), v);
  for (const v of ['22.11.9', '22.0.0', '21.99.99', '20.20.2', 'v20.19.0', '18.0.0', '8.17.0', '0.12.18', '']) t.false(nodeVersionIsEnough(v), v);
});

test('the refusal names the version found, the version needed and how to get a newer Node.js', (t) => {
  t.is(nodeVersionProblem('22.12.0'), undefined);
  const message = nodeVersionProblem('20.20.2', '/usr/bin/node')!;
  t.regex(message, /needs Node\.js 22\.12\.0 or newer/);
  t.regex(message, /this is Node\.js v20\.20\.2 \(\/usr\/bin\/node\)/);
  t.regex(message, /nodejs\.org/);
  t.false(message.includes('\n'), 'one line');
  t.regex(nodeVersionProblem('v18.1.0')!, /this is Node\.js v18\.1\.0\./);
});
