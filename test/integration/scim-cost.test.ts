import test from 'ava';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { scimWorld } from '../helpers/scim.ts';

// A directory PATCHes users all day (a name, a title, a department): one such PATCH stays a
// handful of statements, so its latency is a few round trips.

let t: TestApp;
test.before(async () => {
  t = await startTestApp();
});
test.after.always(async () => t?.stop());

async function statements() {
  const text = await t.app.metrics.registry.metrics();
  const m = /^tessera_db_statement_duration_seconds_count\{outcome="ok"\} (\d+)/m.exec(text);
  return Number(m?.[1] ?? 0);
}

test('a PATCH of a user is a handful of statements', async (tt) => {
  const w = await scimWorld(t);
  const id = (await w.scim('POST', '/Users', { userName: 'pat@example.com', name: { givenName: 'Pat', familyName: 'Doe' } })).body.id;
  const patch = (value: string) =>
    w.scim('PATCH', `/Users/${id}`, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', path: 'name.familyName', value }],
    });
  await patch('Warm');
  const before = await statements();
  const res = await patch('Doe-Smith');
  tt.is(res.status, 200);
  const used = (await statements()) - before;
  tt.log(`statements for one PATCH (token check and last request included): ${used}`);
  // Token check 1, transaction scope 1, user row 1, account 2, resource 1, audit 1, last request 1 (+ begin/commit).
  // (Its latency is measured by `npm run bench -- Scim.patchUser`, not here.)
  tt.true(used <= 12, `${used} statements`);
});
