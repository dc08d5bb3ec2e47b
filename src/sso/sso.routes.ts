import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Database } from '../db/database.ts';
import { renderPage } from '../http/pages.ts';
import type { Logger } from '../logger.ts';
import type { TenantRuntime } from '../tenants/tenant-runtime.ts';
import type { Render } from '../views.ts';
import type { ConnectionService } from './connection.service.ts';
import type { DomainService } from './domain.service.ts';
import { provision, SsoRefused } from './jit.ts';
import type { OidcSso } from './oidc-sso.ts';
import type { SamlSso } from './saml/saml-sso.ts';
import { isUuid } from '../ids.ts';


/**
 * /t/<slug>/sso/oidc/<connectionId>/callback — where an organization's IdP sends the browser back.
 * Any failure shows the user a generic page; the exact reason goes to the logs and to the
 * connection's last_error, for its admins.
 */
export function ssoRoutes(deps: { db: Database; connections: ConnectionService; domains: DomainService; oidc: OidcSso; saml: SamlSso; render: Render; log: Logger }) {
  const router = new Router();
  const failed = (ctx: Context) =>
    renderPage(ctx, deps.render, 'message.njk', {
      title: 'Single sign-on failed',
      paragraphs: ['We could not sign you in with your organization. Try again from your application, or contact your administrator.'],
    }, 403);

  router.get('/unavailable', (ctx) => failed(ctx));

  async function connectionOf(ctx: Context, type: 'oidc' | 'saml') {
    const runtime = ctx.state.runtime as TenantRuntime;
    const id = String(ctx.params.connectionId);
    const conn = isUuid(id) ? await deps.connections.find(runtime.tenant.id, id) : undefined;
    return conn && conn.type === type ? conn : undefined;
  }

  /** SP metadata for the organization's IdP admin: entity id, ACS. */
  router.get('/saml/:connectionId/metadata', async (ctx) => {
    const conn = await connectionOf(ctx, 'saml');
    if (!conn) {
      ctx.status = 404;
      ctx.body = 'No such SAML connection.';
      return;
    }
    ctx.type = 'application/samlmetadata+xml';
    ctx.body = deps.saml.metadata(conn, (ctx.state.runtime as TenantRuntime).tenant.slug);
  });

  /** The Assertion Consumer Service: the IdP posts the response here (cross-site, by design). */
  router.post('/saml/:connectionId/acs', async (ctx) => {
    const conn = await connectionOf(ctx, 'saml');
    if (!conn?.enabled) return failed(ctx);
    const body = (ctx.request as { body?: Record<string, unknown> }).body ?? {};
    const samlResponse = typeof body.SAMLResponse === 'string' ? body.SAMLResponse : '';
    await complete(ctx, conn, () => deps.saml.finish(conn, (ctx.state.runtime as TenantRuntime).tenant.slug, samlResponse));
  });

  router.get('/oidc/:connectionId/callback', async (ctx) => {
    const conn = await connectionOf(ctx, 'oidc');
    if (!conn?.enabled) return failed(ctx);
    await complete(ctx, conn, () => deps.oidc.finish(conn, (ctx.state.runtime as TenantRuntime).tenant.slug, new URL(ctx.href)));
  });

  /** After either protocol: JIT, then back into the waiting sign-in. Failures: generic page, exact reason kept. */
  async function complete(ctx: Context, conn: NonNullable<Awaited<ReturnType<typeof connectionOf>>>, upstream: () => Promise<{ profile: import('./jit.ts').UpstreamProfile; interactionUid: string }>) {
    const runtime = ctx.state.runtime as TenantRuntime;
    try {
      const { profile, interactionUid } = await upstream();
      const emailDomainVerified = await deps.domains.isVerifiedFor(runtime.tenant.id, conn.org_id, profile.email);
      const { userId, created } = await provision(deps.db, conn, profile, { emailDomainVerified });
      deps.log.info({ tenant: runtime.tenant.slug, connection: conn.id, userId, created }, 'sso sign-in');
      return ctx.redirect(await resume(runtime.provider, interactionUid, { login: { accountId: userId }, sso: { org_id: conn.org_id, connection_id: conn.id } }));
    } catch (err) {
      const reason = err instanceof SsoRefused ? err.message : `unexpected: ${(err as Error).message}`;
      deps.log.warn({ tenant: runtime.tenant.slug, connection: conn.id, reason }, 'sso sign-in refused');
      await deps.connections.recordError(runtime.tenant.id, conn.id, reason);
      return failed(ctx);
    }
  }

  return router;
}

/**
 * Records the result on the waiting interaction and returns where to resume it. (The callback
 * is not under the interaction's cookie path, so the interaction is found by the uid we stored
 * with the request.)
 */
async function resume(provider: Provider, uid: string, result: Record<string, unknown>): Promise<string> {
  const interaction = await provider.Interaction.find(uid);
  if (!interaction) throw new SsoRefused('the sign-in waiting for this IdP has expired');
  interaction.result = result;
  await interaction.save(Math.max(1, interaction.exp - Math.floor(Date.now() / 1000)));
  return interaction.returnTo;
}
