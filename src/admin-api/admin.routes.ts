import Router from '@koa/router';
import type { Context } from 'koa';
import { errors as oidcErrors } from 'oidc-provider';
import { NotFound, ValidationFailed } from '../http/errors.ts';
import { readBody, readQuery } from '../http/validate.ts';
import type { ClientService, MetadataValidator } from '../oidc/client.service.ts';
import { presentClient } from '../oidc/client.service.ts';
import type { AccountService } from '../accounts/account.service.ts';
import type { BruteForce } from '../accounts/brute-force.ts';
import type { MailOutbox } from '../mail/outbox.ts';
import type { TenantRuntime, TenantRuntimes } from '../tenants/tenant-runtime.ts';
import type { TenantService } from '../tenants/tenant.service.ts';
import { presentUser, type UserService } from '../users/user.service.ts';
import * as s from './schemas.ts';

const tenantIdOf = (ctx: Context) => (ctx.state.runtime as TenantRuntime).tenant.id;

function params<T>(ctx: Context, schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }, what: string): T {
  const r = schema.safeParse(ctx.params);
  // A malformed id can't name anything: answer as for an unknown one.
  if (!r.success) throw NotFound(`No ${what} with that id in this tenant.`);
  return (r as { data: T }).data;
}

/** Route table of the Admin API: HTTP only; rules live in the services. */
export function adminRoutes(deps: {
  users: UserService;
  clients: ClientService;
  runtimes: TenantRuntimes;
  tenants: TenantService;
  accounts: AccountService;
  bruteForce: BruteForce;
  outbox: MailOutbox;
}) {
  const router = new Router();
  const { users, clients } = deps;

  // Client metadata is checked by the tenant's own oidc-provider, so the API can't store a
  // client the provider would later refuse.
  const validateWith = (ctx: Context): MetadataValidator => async (_tenantId, metadata) => {
    try {
      await (ctx.state.runtime as TenantRuntime).provider.Client.validate(metadata as never);
    } catch (err) {
      if (err instanceof oidcErrors.InvalidClientMetadata || err instanceof oidcErrors.InvalidRedirectUri) {
        const description = (err as { error_description?: string }).error_description ?? err.message;
        const field = /^(\w+)/.exec(description)?.[1] ?? '(body)';
        throw ValidationFailed(description, [{ field, message: description }]);
      }
      throw err;
    }
  };

  router.get('/users', async (ctx) => {
    ctx.body = await users.list(tenantIdOf(ctx), readQuery(ctx, s.ListUsers));
  });
  router.post('/users', async (ctx) => {
    const user = await users.create(tenantIdOf(ctx), readBody(ctx, s.CreateUser));
    ctx.status = 201;
    ctx.set('Location', `${ctx.path}/${user.id}`);
    ctx.body = presentUser(user);
  });
  router.get('/users/:userId', async (ctx) => {
    const { userId } = params(ctx, s.UserId, 'user');
    ctx.body = presentUser(await users.get(tenantIdOf(ctx), userId));
  });
  router.patch('/users/:userId', async (ctx) => {
    const { userId } = params(ctx, s.UserId, 'user');
    ctx.body = presentUser(await users.update(tenantIdOf(ctx), userId, readBody(ctx, s.UpdateUser)));
  });
  router.delete('/users/:userId', async (ctx) => {
    const { userId } = params(ctx, s.UserId, 'user');
    await users.delete(tenantIdOf(ctx), userId);
    ctx.status = 204;
  });

  router.post('/users/:userId/unlock', async (ctx) => {
    const { userId } = params(ctx, s.UserId, 'user');
    const user = await users.get(tenantIdOf(ctx), userId);
    await deps.bruteForce.unlock(tenantIdOf(ctx), user.email);
    ctx.status = 204;
  });
  router.post('/users/:userId/password-reset', async (ctx) => {
    const { userId } = params(ctx, s.UserId, 'user');
    const user = await users.get(tenantIdOf(ctx), userId);
    await deps.accounts.requestPasswordReset(tenantIdOf(ctx), user.email);
    ctx.status = 202;
    ctx.body = { status: 'queued', to: user.email };
  });

  router.get('/settings', (ctx) => {
    ctx.body = deps.tenants.presentSettings((ctx.state.runtime as TenantRuntime).tenant);
  });
  router.patch('/settings', async (ctx) => {
    const runtime = ctx.state.runtime as TenantRuntime;
    const updated = await deps.tenants.updateSettings(runtime.tenant, readBody(ctx, s.UpdateSettings));
    deps.runtimes.invalidate(runtime.tenant.slug);
    ctx.body = deps.tenants.presentSettings(updated);
  });

  router.get('/mail', async (ctx) => {
    ctx.body = await deps.outbox.list(tenantIdOf(ctx), readQuery(ctx, s.ListMail));
  });

  router.get('/clients', async (ctx) => {
    ctx.body = await clients.list(tenantIdOf(ctx), readQuery(ctx, s.ListPage));
  });
  router.post('/clients', async (ctx) => {
    const { row, secret } = await clients.create(tenantIdOf(ctx), readBody(ctx, s.CreateClient), validateWith(ctx));
    ctx.status = 201;
    ctx.set('Location', `${ctx.path}/${row.client_id}`);
    ctx.body = { ...presentClient(row), ...(secret ? { client_secret: secret } : {}) };
  });
  router.get('/clients/:clientId', async (ctx) => {
    const { clientId } = params(ctx, s.ClientId, 'client');
    ctx.body = presentClient(await clients.get(tenantIdOf(ctx), clientId));
  });
  router.patch('/clients/:clientId', async (ctx) => {
    const { clientId } = params(ctx, s.ClientId, 'client');
    const { row, secret } = await clients.update(tenantIdOf(ctx), clientId, readBody(ctx, s.UpdateClient), validateWith(ctx));
    ctx.body = { ...presentClient(row), ...(secret ? { client_secret: secret } : {}) };
  });
  router.delete('/clients/:clientId', async (ctx) => {
    const { clientId } = params(ctx, s.ClientId, 'client');
    await clients.delete(tenantIdOf(ctx), clientId);
    ctx.status = 204;
  });

  return router;
}
