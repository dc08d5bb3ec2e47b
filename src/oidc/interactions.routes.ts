import Router from '@koa/router';
import type { Context } from 'koa';
import type { TenantRuntime } from '../tenants/tenant-runtime.ts';
import type { UserService } from '../users/user.service.ts';
import type { Render } from '../views.ts';
import type { ClientService } from './client.service.ts';

const INVALID_CREDENTIALS = 'Invalid email or password.';

/**
 * The pages oidc-provider sends a browser to: sign-in and consent. Mounted at
 * /t/<slug>/interaction/<uid>; the interaction cookie (path-scoped to that URL) binds the page
 * to the browser that started the authorization request.
 */
export function interactionRoutes(deps: { users: UserService; clients: ClientService; render: Render }) {
  const router = new Router();

  const runtimeOf = (ctx: Context) => ctx.state.runtime as TenantRuntime;
  const base = (ctx: Context, uid: string) => `/t/${runtimeOf(ctx).tenant.slug}/interaction/${encodeURIComponent(uid)}`;

  async function clientName(ctx: Context, clientId: unknown) {
    const client = typeof clientId === 'string' ? await runtimeOf(ctx).provider.Client.find(clientId) : undefined;
    return client?.clientName ?? client?.clientId ?? 'the application';
  }

  function page(ctx: Context, template: string, context: Record<string, unknown>) {
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = deps.render(template, { tenantName: runtimeOf(ctx).tenant.name, ...context });
  }

  router.get('/:uid', async (ctx) => {
    const { provider, tenant } = runtimeOf(ctx);
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const uid = details.uid;
    if (details.prompt.name === 'login') {
      return page(ctx, 'login.njk', {
        title: 'Sign in',
        clientName: await clientName(ctx, details.params.client_id),
        action: `${base(ctx, uid)}/login`,
        abortUrl: `${base(ctx, uid)}/abort`,
        email: typeof details.params.login_hint === 'string' ? details.params.login_hint : '',
      });
    }
    if (details.prompt.name === 'consent') {
      const clientId = details.params.client_id as string;
      if (!(await deps.clients.requiresConsent(tenant.id, clientId))) {
        return finishConsent(ctx);
      }
      const scopes = String(details.params.scope ?? '').split(' ').filter(Boolean);
      return page(ctx, 'consent.njk', {
        title: 'Allow access',
        clientName: await clientName(ctx, clientId),
        scopes,
        action: `${base(ctx, uid)}/confirm`,
        abortUrl: `${base(ctx, uid)}/abort`,
      });
    }
    ctx.status = 400;
    return page(ctx, 'error.njk', { title: 'Unsupported step', detail: `This sign-in asks for "${details.prompt.name}", which this server does not offer.` });
  });

  router.post('/:uid/login', async (ctx) => {
    const { provider, tenant } = runtimeOf(ctx);
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const body = (ctx.request as { body?: Record<string, unknown> }).body ?? {};
    const email = typeof body.email === 'string' ? body.email.trim().slice(0, 254) : '';
    const password = typeof body.password === 'string' ? body.password.slice(0, 256) : '';
    const user = email && password ? await deps.users.authenticate(tenant.id, email, password) : undefined;
    if (!user) {
      ctx.status = 401;
      return page(ctx, 'login.njk', {
        title: 'Sign in',
        clientName: await clientName(ctx, details.params.client_id),
        action: `${base(ctx, details.uid)}/login`,
        abortUrl: `${base(ctx, details.uid)}/abort`,
        email,
        error: INVALID_CREDENTIALS,
      });
    }
    const to = await provider.interactionResult(ctx.req, ctx.res, { login: { accountId: user.id } }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(to);
  });

  router.post('/:uid/confirm', async (ctx) => finishConsent(ctx));

  router.get('/:uid/abort', async (ctx) => {
    const to = await runtimeOf(ctx).provider.interactionResult(
      ctx.req,
      ctx.res,
      { error: 'access_denied', error_description: 'The user cancelled the sign-in.' },
      { mergeWithLastSubmission: false },
    );
    ctx.status = 303;
    ctx.redirect(to);
  });

  /**
   * Records consent in the grant. The `admin` scope is granted only to tenant administrators,
   * whatever the client may request.
   */
  async function finishConsent(ctx: Context) {
    const { provider, tenant } = runtimeOf(ctx);
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.prompt.name !== 'consent' || !details.session?.accountId) {
      ctx.status = 400;
      return page(ctx, 'error.njk', { title: 'Nothing to confirm', detail: 'This sign-in is not waiting for consent. Start again from the application.' });
    }
    const accountId = details.session.accountId;
    const user = await deps.users.find(tenant.id, accountId);
    const allowed = (scopes: string[]) => scopes.filter((s) => s !== 'admin' || user?.tenant_admin === true);
    const refused = (scopes: string[]) => scopes.filter((s) => !allowed([s]).length);

    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: details.params.client_id as string });
    if (!grant) {
      ctx.status = 400;
      return page(ctx, 'error.njk', { title: 'Sign-in expired', detail: 'Start again from the application.' });
    }
    const missing = details.prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    // Refused scopes are recorded as rejected, so the provider treats them as decided (not missing).
    if (missing.missingOIDCScope) {
      grant.addOIDCScope(allowed(missing.missingOIDCScope).join(' '));
      grant.rejectOIDCScope(refused(missing.missingOIDCScope).join(' '));
    }
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(resource, allowed(scopes).join(' '));
      grant.rejectResourceScope(resource, refused(scopes).join(' '));
    }
    const grantId = await grant.save();
    const to = await provider.interactionResult(ctx.req, ctx.res, { consent: details.grantId ? {} : { grantId } }, { mergeWithLastSubmission: true });
    ctx.status = 303;
    ctx.redirect(to);
  }

  return router;
}
