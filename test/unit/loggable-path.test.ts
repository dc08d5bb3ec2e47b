import test from 'ava';
import { loggablePath } from '../../src/http/request-context.ts';

test('the access line names the route of a one-time token, never the token', (tt) => {
  tt.is(loggablePath('/t/acme/invitations/abc_DEF-123'), '/t/acme/invitations/[redacted]');
  tt.is(loggablePath('/t/acme/account/reset-password/abc'), '/t/acme/account/reset-password/[redacted]');
  tt.is(loggablePath('/t/acme/account/verify-email/abc'), '/t/acme/account/verify-email/[redacted]');
  tt.is(loggablePath('/t/acme/sso/link/confirm/abc'), '/t/acme/sso/link/confirm/[redacted]');
  tt.is(loggablePath('/t/acme/setup/stl_abc-DEF/directory/okta'), '/t/acme/setup/[redacted]/directory/okta');
  // Only the token's own segment goes.
  tt.is(loggablePath('/t/acme/invitations/abc/extra'), '/t/acme/invitations/[redacted]/extra');
});

test('other paths are logged as they are', (tt) => {
  for (const path of [
    '/t/acme/token',
    '/t/acme/invitations',
    '/t/acme/account/invitations/0b6c1e9e-1a2b-4c3d-8e9f-0a1b2c3d4e5f/accept',
    '/t/acme/portal/organizations/0b6c1e9e-1a2b-4c3d-8e9f-0a1b2c3d4e5f/invitations',
    '/t/acme/api/v1/admin/organizations/x/invitations/y',
    '/healthz',
  ]) {
    tt.is(loggablePath(path), path);
  }
});
