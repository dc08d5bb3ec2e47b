import { sql } from 'kysely';
import { expectStatus, send } from './lib/http.ts';
import { sampleProcess } from './lib/proc.ts';
import type { BenchEnv, Scenario } from './scenarios.ts';

const SCIM_JSON = 'application/scim+json';
const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const DOMAIN = 'scim.bench';

interface Directory {
  base: string;
  headers: Record<string, string>;
  userIds: string[];
}

/** `n` tasks, `width` at a time, as a directory's provisioning engine sends them. */
async function inParallel(n: number, width: number, task: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await task(next++);
    }),
  );
}

const scimUser = (i: number) => ({
  schemas: [USER_SCHEMA],
  userName: `person${i}@${DOMAIN}`,
  externalId: `ext-${i}`,
  name: { givenName: 'Person', familyName: String(i) },
  displayName: `Person ${i}`,
  emails: [{ value: `person${i}@${DOMAIN}`, type: 'work', primary: true }],
  active: true,
});

/**
 * A directory's first sync, timed once per run: 10,000 users, then 100 groups of 100 members
 * each (Okta's order: users, then groups with their members). What it took — wall time, requests
 * and Tessera's CPU — is printed; the scenario's measured operation is then one more user created.
 */
const synced = new WeakMap<BenchEnv['tessera'], Promise<Directory>>();
function sync(env: BenchEnv): Promise<Directory> {
  let made = synced.get(env.tessera);
  if (!made) {
    made = firstSync(env);
    synced.set(env.tessera, made);
  }
  return made;
}

async function firstSync(env: BenchEnv): Promise<Directory> {
  const users = env.smoke ? 200 : 10_000;
  const groups = env.smoke ? 4 : 100;
  const perGroup = env.smoke ? 20 : 100;
  const org = await env.admin<{ id: string }>('POST', '/organizations', { name: 'SCIM Bench', max_members: 1_000_000 });
  await env.admin('POST', `/organizations/${org.id}/domains`, { domain: DOMAIN });
  await env.admin('PATCH', `/organizations/${org.id}/domains/${DOMAIN}`, { verified: true });
  const dir = await env.admin<{ scim_base_url: string; bearer_token: string }>('POST', `/organizations/${org.id}/directories`, {
    name: 'Bench directory',
    provider: 'okta',
    group_roles: { 'Group 0': 'admin' },
  });
  const headers = { authorization: `Bearer ${dir.bearer_token}`, 'content-type': SCIM_JSON, accept: SCIM_JSON };
  const userIds: string[] = new Array(users);
  const started = Date.now();
  const cpu0 = sampleProcess(env.tessera.pid).cpuSeconds;
  let requests = 0;
  await inParallel(users, 8, async (i) => {
    const r = expectStatus(await send(`${dir.scim_base_url}/Users`, { method: 'POST', headers, body: JSON.stringify(scimUser(i)) }), 201);
    userIds[i] = (JSON.parse(r.body) as { id: string }).id;
    requests++;
    if (requests % 1000 === 0) env.progress(`Scim.sync: ${requests} of ${users} users pushed`);
  });
  const usersDone = Date.now();
  await inParallel(groups, 4, async (g) => {
    const members = userIds.slice((g * perGroup) % users, ((g * perGroup) % users) + perGroup).map((value) => ({ value }));
    const r = expectStatus(
      await send(`${dir.scim_base_url}/Groups`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ schemas: [GROUP_SCHEMA], displayName: `Group ${g}`, members: [] }),
      }),
      201,
    );
    const id = (JSON.parse(r.body) as { id: string }).id;
    expectStatus(
      await send(`${dir.scim_base_url}/Groups/${id}`, {
        method: 'PATCH',
        headers,
        body: JSON.stringify({ schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: members }] }),
      }),
      200,
      204,
    );
    requests += 2;
  });
  const wall = (Date.now() - started) / 1000;
  const cpu = sampleProcess(env.tessera.pid).cpuSeconds - cpu0;
  // What autovacuum would do after such a load (the harness analyzes between scenarios, and this
  // load happens inside one): without it the planner reads 10,000 rows as an empty table.
  await sql`ANALYZE`.execute(env.tessera.connection.db);
  env.progress(
    `Scim.sync: ${users} users in ${((usersDone - started) / 1000).toFixed(1)} s, ${groups} groups × ${perGroup} members in ${((Date.now() - usersDone) / 1000).toFixed(1)} s; ` +
      `${requests} requests in ${wall.toFixed(1)} s, ${cpu.toFixed(1)} CPU s of Tessera (${Math.round(requests / cpu)} requests per CPU second)`,
  );
  return { base: dir.scim_base_url, headers, userIds };
}

export function scimScenarios(): Scenario[] {
  let created = 0;
  return [
    {
      // After the first sync: one more person pushed by the directory (a new account, its
      // membership with the default role, the audit rows).
      name: 'Scim.sync',
      async prepare(env) {
        const dir = await sync(env);
        return [
          {
            target: 'tessera',
            op: async () =>
              void expectStatus(
                await send(`${dir.base}/Users`, { method: 'POST', headers: dir.headers, body: JSON.stringify(scimUser(1_000_000 + created++)) }),
                201,
              ),
          },
        ];
      },
    },
    {
      // The cheapest request of a running directory that reads a person: the token check and one
      // read. Its tail at the same rate as Scim.patchUser's is what the machine adds to any request.
      name: 'Scim.getUser',
      async prepare(env) {
        const dir = await sync(env);
        let n = 0;
        return [
          {
            target: 'tessera',
            op: async () => {
              const id = dir.userIds[n++ % dir.userIds.length]!;
              expectStatus(await send(`${dir.base}/Users/${id}`, { method: 'GET', headers: dir.headers }), 200);
            },
          },
        ];
      },
    },
    {
      // The most common request of a running directory: one attribute of one person changed
      // (Entra's PATCH with a capitalised op), on a directory of 10,000 people.
      name: 'Scim.patchUser',
      goal: { p99Ms: 5 },
      async prepare(env) {
        const dir = await sync(env);
        let n = 0;
        return [
          {
            target: 'tessera',
            op: async () => {
              const id = dir.userIds[n++ % dir.userIds.length]!;
              expectStatus(
                await send(`${dir.base}/Users/${id}`, {
                  method: 'PATCH',
                  headers: dir.headers,
                  body: JSON.stringify({ schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'name.givenName', value: `Given ${n}` }] }),
                }),
                200,
                204,
              );
            },
          },
        ];
      },
    },
  ];
}
