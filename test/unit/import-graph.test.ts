import { fileURLToPath } from 'node:url';
import test from 'ava';
import { findCycles, importGraph, type LayerRules, layerViolations, readSources, unplaced } from '../helpers/import-graph.ts';

/**
 * The direction of src/'s imports, lowest layer first (docs/architecture.md, "Layers" explains each
 * place). A module imports only the layers below its own; the modules of one layer are independent
 * of each other unless the layer says otherwise. Route and page files (`*.routes.ts`, `*-pages.ts`)
 * sit in the routes layer whatever folder they are in, and `*.table.ts` files — a table's types,
 * beside the module that owns the table — are what db/ gathers into the database type.
 */
const LAYER_RULES: LayerRules = {
  layers: [
    { name: 'base', modules: ['base'] },
    // Pure rules (no database): what a session must have shown to work in an organization.
    { name: 'auth-policy', modules: ['auth-policy'] },
    { name: 'metrics', modules: ['metrics'] },
    { name: 'infrastructure', modules: ['crypto', 'db'] },
    { name: 'oidc-store', modules: ['oidc-store'] },
    { name: 'users', modules: ['users'] },
    { name: 'tenants', modules: ['tenants'] },
    { name: 'mail', modules: ['mail'] },
    { name: 'factors', modules: ['factors'] },
    { name: 'accounts and organizations', modules: ['accounts', 'orgs'] },
    { name: 'oidc', modules: ['oidc'] },
    { name: 'sso and tokens', modules: ['sso', 'tokens'] },
    { name: 'directories', modules: ['scim'] },
    // A setup link drives the organization's domains, SSO connection and directories for its IT admin.
    { name: 'setup links', modules: ['setup-links'] },
    { name: 'http', modules: ['http'] },
    // Pages share form helpers (portal/forms.ts) and the Admin API's schemas.
    { name: 'routes and pages', modules: ['admin-api', 'me', 'portal'], shareable: true },
    { name: 'app', modules: ['.'] },
  ],
  routeLayer: 'routes and pages',
  routeFile: /(\.routes|-pages)\.ts$/,
  tableFile: /\.table\.ts$/,
  tableGatherer: 'db',
};

const sources = readSources(fileURLToPath(new URL('../../src/', import.meta.url)));
const { graph, unresolved } = importGraph(sources);

test('src/ has no import cycle (type-only imports included)', (t) => {
  t.true(sources.size > 100, 'the whole of src/ was read');
  t.deepEqual(unresolved, []);
  t.deepEqual(
    findCycles(graph).map((cycle) => `import cycle: ${cycle.join(' → ')}`),
    [],
  );
});

test('base/ imports nothing outside itself', (t) => {
  const outward = [...graph].flatMap(([from, targets]) =>
    from.startsWith('base/') ? [...targets].filter((to) => !to.startsWith('base/')).map((to) => `${from} imports ${to}`) : [],
  );
  t.deepEqual(outward, []);
});

test('every import follows the layer order', (t) => {
  t.deepEqual(unplaced(sources.keys(), LAYER_RULES), [], 'every folder of src/ has a place in LAYER_RULES');
  t.deepEqual(layerViolations(graph, LAYER_RULES), []);
});

// The checks themselves, on a small made-up tree: each rule catches what it is for.

const tree = (files: Record<string, string>) => importGraph(new Map(Object.entries(files))).graph;

test('a cycle is found and named, type-only imports included', (t) => {
  const made = tree({
    'orgs/a.ts': "import { b } from './b.ts';",
    'orgs/b.ts': "import type { C } from '../sso/c.ts';",
    'sso/c.ts': "export type C = typeof import('../orgs/a.ts');",
    'sso/d.ts': "import { a } from '../orgs/a.ts';",
  });
  t.deepEqual(findCycles(made), [['orgs/a.ts', 'orgs/b.ts', 'sso/c.ts', 'orgs/a.ts']]);
  t.deepEqual(findCycles(tree({ 'x/self.ts': "export * from './self.ts';" })), [['x/self.ts', 'x/self.ts']]);
  t.deepEqual(findCycles(tree({ 'x/a.ts': "const b = await import('./b.ts');", 'x/b.ts': "import './a.ts';" })), [['x/a.ts', 'x/b.ts', 'x/a.ts']]);
});

test('a missing import target is reported', (t) => {
  t.deepEqual(importGraph(new Map([['x/a.ts', "import { gone } from './gone.ts';"]])).unresolved, ['x/a.ts imports ./gone.ts, which is not a file']);
});

test('imports against the layer order are refused, each with its reason', (t) => {
  const made = tree({
    'base/errors.ts': "import { user } from '../users/user.service.ts';",
    'users/user.service.ts': "import { provider } from '../oidc/provider.ts';",
    'accounts/account.service.ts': "import { org } from '../orgs/org.service.ts';",
    'orgs/org.service.ts': "import { routes } from './invitation.routes.ts';",
    'orgs/invitation.routes.ts': "import { pages } from '../portal/forms.ts'; import { sso } from '../sso/sso-router.ts';",
    'orgs/org.table.ts': "import type { UserRow } from '../users/user.repo.ts';",
    'users/user.repo.ts': '',
    'db/database.ts': "import type { OrgTable } from '../orgs/org.table.ts';",
    'portal/forms.ts': "import { schemas } from '../admin-api/schemas.ts';",
    'admin-api/schemas.ts': '',
    'oidc/provider.ts': '',
    'sso/sso-router.ts': '',
    'app.ts': "import { routes } from './orgs/invitation.routes.ts';",
  });
  t.deepEqual(layerViolations(made, LAYER_RULES), [
    'base/errors.ts imports users/user.service.ts: the base layer sits below the users layer and may not import it',
    'users/user.service.ts imports oidc/provider.ts: the users layer sits below the oidc layer and may not import it',
    'accounts/account.service.ts imports orgs/org.service.ts: accounts and orgs share the accounts and organizations layer and may not import each other',
    'orgs/org.service.ts imports orgs/invitation.routes.ts: orgs/invitation.routes.ts is a route or page file; nothing below the routes imports it',
    "orgs/org.table.ts imports users/user.repo.ts: a table's types import only the base and their own folder, so that db/ can gather them",
  ]);
  t.deepEqual(unplaced(['newfolder/x.ts', 'orgs/a.ts', 'main.ts'], LAYER_RULES), ['newfolder/x.ts']);
});
