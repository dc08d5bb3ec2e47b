import test from 'ava';
import { safeReturnTo } from '../../src/portal/return-to.ts';
import { hostileReturnTos } from '../helpers/return-to.ts';

const home = '/t/demo/portal/organizations';

test('the tenant’s own portal and account pages are honoured, normalized', (t) => {
  t.is(safeReturnTo('demo', '/t/demo/portal/organizations/x/members?page=2'), '/t/demo/portal/organizations/x/members?page=2');
  t.is(safeReturnTo('demo', '/t/demo/account/security'), '/t/demo/account/security');
  t.is(safeReturnTo('demo', '/t/demo/account/profile?q=a%20b&next=%2Fx'), '/t/demo/account/profile?q=a%20b&next=%2Fx');
  // A dot inside a segment or in the query is not a dot segment.
  t.is(safeReturnTo('demo', '/t/demo/portal/v1.2?email=a.b%40c.example'), '/t/demo/portal/v1.2?email=a.b%40c.example');
});

test('every hostile value goes to the portal’s home', (t) => {
  for (const hostile of hostileReturnTos('demo', 'other')) t.is(safeReturnTo('demo', hostile), home, JSON.stringify(hostile));
  for (const odd of [
    undefined,
    null,
    42,
    ['/t/demo/portal/x'],
    '',
    'portal/x',
    '/t/demo/portal',
    '/t/demo/portalx/y',
    '/t/demo/',
    `/t/demo/portal/${'a'.repeat(600)}`,
  ]) {
    t.is(safeReturnTo('demo', odd), home, JSON.stringify(odd));
  }
});

test('a value whose resolved path leaves the tenant is refused even when it starts inside it', (t) => {
  t.is(safeReturnTo('demo', '/t/demo/portal/../../other/auth'), home);
  t.is(safeReturnTo('demo', '/t/demo/portal/%2e%2e/%2e%2e/other/auth'), home);
  t.is(safeReturnTo('demo', '/t/demo/portal/\t../x'), home);
  t.is(new URL('/t/demo/portal/../../other/auth', 'https://h.example').pathname, '/t/other/auth');
});
