import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { BruteForce } from '../accounts/brute-force.ts';
import { ACR } from '../auth-policy/policy.ts';
import { isUuid } from '../base/ids.ts';
import type { Logger } from '../base/logger.ts';
import type { Render } from '../base/views.ts';
import type { Database } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import type { FactorService } from '../factors/factor.service.ts';
import { formField, renderPage } from '../http/pages.ts';
import type { MailOutbox } from '../mail/outbox.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { InvitationService } from '../orgs/invitation.service.ts';
import { findOrg } from '../orgs/org.repo.ts';
import type { SetupLinkService } from '../setup-links/setup-link.service.ts';
import { previewSignIn } from '../setup-links/sign-in-preview.ts';
import { effectiveSettings } from '../tenants/settings.ts';
import type { UserService } from '../users/user.service.ts';
import type { ConnectionService } from './connection.service.ts';
import type { DomainService } from './domain.service.ts';
import { linkProven, type Provisioned, provision } from './jit.ts';
import { auditLink } from './link-audit.ts';
import { type LinkFactorStep, linkFactorStep } from './link-second-factor.ts';
import type { OidcSso } from './oidc-sso.ts';
import { PENDING_LINK_TTL_MS, type PendingLink, type PendingLinks } from './pending-links.ts';
import type { SamlSso } from './saml/saml-sso.ts';
import type { ConnectionRow } from './sso.table.ts';
import { mailLinkMade } from './sso-link-mail.ts';
import { bindingOfError, type SsoBinding } from './sso-request.ts';
import { SsoRefused, type UpstreamProfile } from './upstream.ts';

/** The browser's handle on a pending link (see PendingLinks): HttpOnly, this tenant's /sso/link only. */
const LINK_COOKIE = 'tessera.sso_link';

export interface SsoRouteDeps {
  db: Database;
  connections: ConnectionService;
  domains: DomainService;
  oidc: OidcSso;
  saml: SamlSso;
  invitations: InvitationService;
  pendingLinks: PendingLinks;
  users: UserService;
  factors: FactorService;
  bruteForce: BruteForce;
  /** The account holder's "your account was linked" mail. */
  outbox: MailOutbox;
  render: Render;
  log: Logger;
  /** The same-origin check of form posts (CSRF), for the account-linking forms. */
  sameOrigin: Middleware;
  metrics: Metrics;
  /** Where a setup link's test sign-in reports what the IdP sent. */
  setupLinks: SetupLinkService;
}

const linkPath = (ctx: Context) => `/t/${ctx.state.runtime.tenant.slug}/sso/link`;

/**
 * /t/<slug>/sso/… — where an organization's IdP sends the browser back (SAML ACS, OIDC callback).
 * Any failure shows the user a generic page; the exact reason goes to the logs, to the
 * connection's last_error and, for a refused link, to the organization's audit log.
 */
export function ssoRoutes(deps: SsoRouteDeps) {
  const router = new Router();
  const failed = (ctx: Context) =>
    renderPage(
      ctx,
      deps.render,
      'message.njk',
      {
        title: 'Single sign-on failed',
        paragraphs: ['We could not sign you in with your organization. Try again from your application, or contact your administrator.'],
      },
      403,
    );

  router.get('/unavailable', (ctx) => failed(ctx));

  async function connectionOf(ctx: Context, type: 'oidc' | 'saml') {
    const id = String(ctx.params.connectionId);
    const conn = isUuid(id) ? await deps.connections.find(ctx.state.runtime.tenant.id, id) : undefined;
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
    ctx.body = deps.saml.metadata(conn, ctx.state.runtime.tenant.slug);
  });

  /** The Assertion Consumer Service: the IdP posts the response here (cross-site, by design). */
  router.post('/saml/:connectionId/acs', async (ctx) => {
    const conn = await connectionOf(ctx, 'saml');
    if (!conn) return failed(ctx);
    const body = (ctx.request as { body?: Record<string, unknown> }).body ?? {};
    const samlResponse = typeof body.SAMLResponse === 'string' ? body.SAMLResponse : '';
    await complete(ctx, conn, () => deps.saml.finish(conn, ctx.state.runtime.tenant.slug, samlResponse));
  });

  router.get('/oidc/:connectionId/callback', async (ctx) => {
    const conn = await connectionOf(ctx, 'oidc');
    if (!conn) return failed(ctx);
    await complete(ctx, conn, () => deps.oidc.finish(conn, ctx.state.runtime.tenant.slug, new URL(ctx.href)));
  });

  /** After either protocol: JIT, then back into the waiting sign-in (or the invitation). */
  async function complete(ctx: Context, conn: ConnectionRow, upstream: () => Promise<{ profile: UpstreamProfile; binding: SsoBinding }>) {
    const runtime = ctx.state.runtime;
    let profile: UpstreamProfile | undefined;
    try {
      const answer = await upstream();
      profile = answer.profile;
      if (answer.binding.setupLinkId) return await tested(ctx, conn, answer.binding.setupLinkId, profile);
      // Only a setup link's test sign-in runs through a connection that is off (see
      // offUntilAnOwnerTurnsItOn): a real sign-in needs it on, checked after the answer's own
      // checks so a test's answer still finds its way back to the link's page.
      if (!conn.enabled) throw new SsoRefused('the connection is turned off: an owner of the organization turns it on');
      const emailDomainVerified = await deps.domains.isVerifiedFor(runtime.tenant.id, conn.org_id, profile.email);
      const outcome = await provision(deps.db, deps.invitations, conn, profile, {
        emailDomainVerified,
        invitationId: answer.binding.invitationId,
      });
      if (outcome.kind === 'proof_required') {
        deps.metrics.ssoSignIn(conn.type, 'proof_required');
        await record(conn, 'sso.link_deferred', profile, outcome);
        const cookie = await deps.pendingLinks.create(runtime.tenant.id, conn.id, outcome.userId, profile, answer.binding);
        setLinkCookie(ctx, cookie);
        ctx.status = 303;
        return ctx.redirect(linkPath(ctx));
      }
      if (outcome.kind === 'refused') {
        await record(conn, 'sso.link_refused', profile, outcome);
        throw new SsoRefused(outcome.reason);
      }
      deps.log.info({ tenant: runtime.tenant.slug, connection: conn.id, userId: outcome.userId, created: outcome.created }, 'sso sign-in');
      const done = await signedIn(ctx, conn, outcome.userId, answer.binding, profile.mfa === true);
      deps.metrics.ssoSignIn(conn.type, 'signed_in');
      return done;
    } catch (err) {
      deps.metrics.ssoSignIn(conn.type, err instanceof SsoRefused ? 'refused' : 'error');
      const reason = err instanceof SsoRefused ? err.message : `unexpected: ${(err as Error).message}`;
      deps.log.warn({ tenant: runtime.tenant.slug, connection: conn.id, reason }, 'sso sign-in refused');
      await deps.connections.recordError(runtime.tenant.id, conn.id, reason);
      const setupLinkId = bindingOfError(err)?.setupLinkId;
      if (setupLinkId) {
        await deps.setupLinks.testFinished(runtime.tenant.id, setupLinkId, { ok: false, error: reason });
        return backToSetup(ctx);
      }
      return failed(ctx);
    }
  }

  /**
   * A setup link's test sign-in: the answer passed every check of a sign-in. Instead of signing
   * anyone in, what the IdP sent and what a real sign-in would do go to the link's test page —
   * no account, link, membership or session is made.
   */
  async function tested(ctx: Context, conn: ConnectionRow, setupLinkId: string, profile: UpstreamProfile) {
    const outcome = await previewSignIn(deps.db, deps.domains, deps.invitations, conn, profile);
    await deps.setupLinks.testFinished(conn.tenant_id, setupLinkId, {
      ok: true,
      outcome,
      profile: {
        subject: profile.subject,
        email: profile.email,
        name: profile.name ?? null,
        given_name: profile.given_name ?? null,
        family_name: profile.family_name ?? null,
        groups: (profile.groups ?? []).slice(0, 50).map((g) => g.slice(0, 200)),
        mfa: profile.mfa === true,
      },
    });
    deps.log.info({ tenant: ctx.state.runtime.tenant.slug, connection: conn.id, setupLink: setupLinkId }, 'setup link test sign-in');
    return backToSetup(ctx);
  }

  /** The setup pages find the link again from this browser's cookie (setup-pages.ts, /tested). */
  function backToSetup(ctx: Context) {
    ctx.status = 303;
    ctx.redirect(`/t/${ctx.state.runtime.tenant.slug}/setup/tested`);
  }

  /** A refusal or deferral in the organization's audit log (its own transaction: nothing else was written). */
  async function record(
    conn: ConnectionRow,
    action: 'sso.link_refused' | 'sso.link_deferred',
    profile: UpstreamProfile,
    outcome: Extract<Provisioned, { kind: 'refused' | 'proof_required' }>,
  ) {
    await inTenant(deps.db, conn.tenant_id, (tx) =>
      auditLink(tx, conn, action, { subject: profile.subject, user_id: outcome.userId, reason: `${outcome.reason} (asserted email ${profile.email})` }),
    );
  }

  /** The account is settled: resume the authorization request, or (from an invitation) say welcome. */
  /** `upstreamMfa`: the IdP reported more than one factor; organizations may accept that as MFA (auth-policy). */
  async function signedIn(ctx: Context, conn: ConnectionRow, userId: string, binding: SsoBinding, upstreamMfa: boolean) {
    const runtime = ctx.state.runtime;
    if (binding.interactionUid) {
      ctx.status = 303;
      return ctx.redirect(
        await resume(runtime.provider, binding.interactionUid, {
          login: { accountId: userId, amr: upstreamMfa ? ['fed', 'mfa'] : ['fed'], acr: ACR.fed },
          sso: { org_id: conn.org_id, connection_id: conn.id },
        }),
      );
    }
    const org = await inTenant(deps.db, conn.tenant_id, (tx) => findOrg(tx, conn.tenant_id, conn.org_id));
    const name = org?.name ?? 'the organization';
    return renderPage(ctx, deps.render, 'message.njk', {
      title: `Welcome to ${name}`,
      paragraphs: [`You are now a member of ${name}. Sign in from your application with your organization's single sign-on to start working in it.`],
    });
  }

  // ── proving an existing account is yours ─────────────────────────────────
  // Unlike the ACS, these forms take same-origin posts only (deps.sameOrigin: CSRF).

  function setLinkCookie(ctx: Context, value: string) {
    ctx.cookies.set(LINK_COOKIE, value, {
      path: linkPath(ctx),
      httpOnly: true,
      sameSite: 'lax',
      secure: ctx.secure,
      maxAge: PENDING_LINK_TTL_MS,
      overwrite: true,
    });
  }

  function clearLinkCookie(ctx: Context) {
    ctx.cookies.set(LINK_COOKIE, '', { path: linkPath(ctx), httpOnly: true, sameSite: 'lax', secure: ctx.secure, maxAge: 0, overwrite: true });
  }

  async function describePending(pending: PendingLink) {
    // A connection turned off since the sign-in began completes nothing (the page says it expired).
    const found = await deps.connections.find(pending.tenantId, pending.connectionId);
    const conn = found?.enabled ? found : undefined;
    const org = conn ? await inTenant(deps.db, pending.tenantId, (tx) => findOrg(tx, pending.tenantId, conn.org_id)) : undefined;
    const user = await deps.users.find(pending.tenantId, pending.userId);
    return conn && org && user ? { conn, org, user } : undefined;
  }

  const expired = (ctx: Context) =>
    renderPage(
      ctx,
      deps.render,
      'message.njk',
      {
        title: 'This sign-in has expired',
        paragraphs: ['Start again from your application and sign in with your organization once more.'],
      },
      410,
    );

  const otherBrowser = (ctx: Context) =>
    renderPage(
      ctx,
      deps.render,
      'message.njk',
      {
        title: 'Open this link where you signed in',
        paragraphs: ['This link works only in the browser where you signed in with your organization a moment ago. Open it there; nothing was changed.'],
      },
      409,
    );

  /** An account with factors, none of which the tenant allows now: never linked by password or mail alone. */
  async function factorNotAllowed(ctx: Context, pending: PendingLink, conn: ConnectionRow) {
    deps.metrics.signIn('sso_link', 'refused');
    await record(conn, 'sso.link_refused', pending.profile, {
      kind: 'refused',
      userId: pending.userId,
      reason: "the account's second factors are all of kinds the tenant does not allow now",
    });
    return renderPage(
      ctx,
      deps.render,
      'message.njk',
      {
        title: 'This account cannot be linked here',
        paragraphs: [
          `Your account has a second factor that cannot be used here, so ${conn.name} cannot be linked to it with a password or an email link alone. Nothing was linked.`,
          'Ask an administrator for help.',
        ],
      },
      403,
    );
  }

  /** What the link pages show when the account's factor is asked for (see link-second-factor.ts). */
  const codeStep = (step: Extract<LinkFactorStep, { kind: 'code' }>) => ({ step: 'code', passkeyOnly: step.passkeyOnly });

  async function linkPage(ctx: Context, pending: PendingLink, extra: Record<string, unknown> = {}, status = 200) {
    const found = await describePending(pending);
    if (!found) return expired(ctx);
    renderPage(
      ctx,
      deps.render,
      'sso-link.njk',
      {
        title: 'Confirm this is your account',
        orgName: found.org.name,
        connectionName: found.conn.name,
        email: found.user.email,
        hasPassword: Boolean(found.user.password_hash),
        action: linkPath(ctx),
        forgotUrl: `/t/${ctx.state.runtime.tenant.slug}/account/forgot-password`,
        ...extra,
      },
      status,
    );
  }

  const pendingOf = (ctx: Context) => deps.pendingLinks.forBrowser(ctx.state.runtime.tenant.id, ctx.cookies.get(LINK_COOKIE));

  router.get('/link', async (ctx) => {
    const pending = await pendingOf(ctx);
    if (!pending) return expired(ctx);
    await linkPage(ctx, pending);
  });

  /**
   * The account's own password proves it; brute-force rules as at any sign-in. An account with a
   * second factor gives its code too. Nothing is kept between the two submissions: the second
   * carries the password again with the code, and only both together count as a success (a right
   * password alone does not clear wrong codes); a wrong code counts toward the account's lock.
   */
  router.post('/link/password', deps.sameOrigin, async (ctx) => {
    const { tenant } = ctx.state.runtime;
    const pending = await pendingOf(ctx);
    if (!pending) return expired(ctx);
    const found = await describePending(pending);
    if (!found) return expired(ctx);
    const password = formField(ctx, 'password', 256, false);
    const code = formField(ctx, 'code', 64);
    const settings = effectiveSettings(tenant.settings);
    const verdict = await deps.bruteForce.check(tenant.id, settings.brute_force, found.user.email, ctx.ip);
    const user = !verdict.ipBlocked && password ? await deps.users.checkSignIn(tenant.id, found.user, password) : undefined;
    if (!user || verdict.accountLocked) {
      deps.metrics.signIn('sso_link', verdict.ipBlocked || verdict.accountLocked ? 'locked' : 'invalid_credentials');
      await deps.bruteForce.recordFailure(tenant.id, settings.brute_force, found.user.email, ctx.ip, verdict);
      // Whoever typed a code was at the code step: keep its field (the password is checked first, so
      // this page says nothing about the account's factors to someone without the password).
      return linkPage(ctx, pending, { error: 'That password is not right.', ...(code ? { step: 'code' } : {}) }, 401);
    }
    const factor = await linkFactorStep(deps.factors, settings, tenant.id, user.id);
    if (factor.kind === 'refused') return factorNotAllowed(ctx, pending, found.conn);
    if (factor.kind === 'code') {
      if (!code) return linkPage(ctx, pending, codeStep(factor));
      const checked = await deps.factors.verifySecondFactor(tenant.id, user.id, code, factor.accept);
      if (!checked.ok) {
        deps.metrics.signIn('sso_link', 'invalid_credentials');
        await deps.bruteForce.recordFailure(tenant.id, settings.brute_force, found.user.email, ctx.ip, verdict);
        return linkPage(ctx, pending, { ...codeStep(factor), error: 'That code is not valid. Enter your password and a current code again.' }, 401);
      }
    }
    await deps.bruteForce.recordSuccess(tenant.id, found.user.email, verdict);
    return finishLink(ctx, pending, found, 'password', factor.kind === 'code');
  });

  /** A one-time link to the account's stored address (never the address the IdP asserted). */
  router.post('/link/email', deps.sameOrigin, async (ctx) => {
    const pending = await pendingOf(ctx);
    if (!pending) return expired(ctx);
    const found = await describePending(pending);
    if (!found) return expired(ctx);
    const sent = await deps.pendingLinks.mailLink(pending, found.user.email, { connectionName: found.conn.name, orgName: found.org.name });
    if (!sent) return linkPage(ctx, pending, { error: 'A link was sent a moment ago (at most three, one a minute). Check your inbox, including spam.' }, 429);
    return linkPage(ctx, { ...pending, mailsSent: pending.mailsSent + 1 }, { mailed: true });
  });

  /** The mailed link shows a button; only the POST uses it (mail scanners follow GETs). */
  router.get('/link/confirm/:token', async (ctx) => {
    const pending = await deps.pendingLinks.forMailToken(ctx.state.runtime.tenant.id, String(ctx.params.token));
    const found = pending && (await describePending(pending));
    if (!found) return expired(ctx);
    if ((await pendingOf(ctx))?.id !== pending!.id) return otherBrowser(ctx);
    const factor = await linkFactorStep(deps.factors, effectiveSettings(ctx.state.runtime.tenant.settings), pending!.tenantId, pending!.userId);
    if (factor.kind === 'refused') return factorNotAllowed(ctx, pending!, found.conn);
    confirmPage(ctx, found, factor);
  });

  function confirmPage(
    ctx: Context,
    found: NonNullable<Awaited<ReturnType<typeof describePending>>>,
    factor: LinkFactorStep,
    extra: Record<string, unknown> = {},
    status = 200,
  ) {
    renderPage(
      ctx,
      deps.render,
      'sso-link-confirm.njk',
      {
        title: 'Link your account',
        orgName: found.org.name,
        connectionName: found.conn.name,
        email: found.user.email,
        action: ctx.path,
        ...(factor.kind === 'code' ? codeStep(factor) : {}),
        ...extra,
      },
      status,
    );
  }

  router.post('/link/confirm/:token', deps.sameOrigin, async (ctx) => {
    const pending = await deps.pendingLinks.forMailToken(ctx.state.runtime.tenant.id, String(ctx.params.token));
    const found = pending && (await describePending(pending));
    if (!pending || !found) return expired(ctx);
    // Only in the browser that came back from the IdP: whoever triggered the mail must also be
    // the one who reads it. (Otherwise an IdP's owner could start a link to someone's account and
    // have them click "it was me" in their own mail client.)
    if ((await pendingOf(ctx))?.id !== pending.id) return otherBrowser(ctx);
    // The mailed link proves the mailbox, not the second factor: with one, its code too, counted
    // toward the account's lock like a wrong password. The link's token stays the proof of the
    // mailbox at each attempt (it is used up only by the link), so nothing else is kept.
    const { tenant } = ctx.state.runtime;
    const settings = effectiveSettings(tenant.settings);
    const factor = await linkFactorStep(deps.factors, settings, tenant.id, pending.userId);
    if (factor.kind === 'refused') return factorNotAllowed(ctx, pending, found.conn);
    if (factor.kind === 'code') {
      const code = formField(ctx, 'code', 64);
      if (!code) return confirmPage(ctx, found, factor, { error: 'Enter the code.' }, 400);
      const verdict = await deps.bruteForce.check(tenant.id, settings.brute_force, found.user.email, ctx.ip);
      const checked =
        verdict.ipBlocked || verdict.accountLocked ? { ok: false } : await deps.factors.verifySecondFactor(tenant.id, pending.userId, code, factor.accept);
      if (!checked.ok) {
        deps.metrics.signIn('sso_link', verdict.ipBlocked || verdict.accountLocked ? 'locked' : 'invalid_credentials');
        await deps.bruteForce.recordFailure(tenant.id, settings.brute_force, found.user.email, ctx.ip, verdict);
        return confirmPage(ctx, found, factor, { error: 'That code is not valid. Enter a current code.' }, 401);
      }
      await deps.bruteForce.recordSuccess(tenant.id, found.user.email, verdict);
    }
    return finishLink(ctx, pending, found, 'email_link', factor.kind === 'code');
  });

  router.post('/link/cancel', deps.sameOrigin, async (ctx) => {
    const pending = await pendingOf(ctx);
    if (pending) await deps.pendingLinks.remove(pending.tenantId, pending.id);
    clearLinkCookie(ctx);
    if (pending?.binding.interactionUid) {
      const interaction = await ctx.state.runtime.provider.Interaction.find(pending.binding.interactionUid);
      if (interaction) {
        ctx.status = 303;
        return ctx.redirect(
          await resume(ctx.state.runtime.provider, pending.binding.interactionUid, {
            error: 'access_denied',
            error_description: 'The user did not link their organization sign-in to their account.',
          }),
        );
      }
    }
    return renderPage(ctx, deps.render, 'message.njk', { title: 'Nothing was linked', paragraphs: ['Your account was not changed.'] });
  });

  /** Makes the proven link (and mails the account holder about it), then continues the sign-in. */
  async function finishLink(
    ctx: Context,
    pending: PendingLink,
    found: NonNullable<Awaited<ReturnType<typeof describePending>>>,
    reason: 'password' | 'email_link',
    withFactor: boolean,
  ) {
    const runtime = ctx.state.runtime;
    const { conn, org } = found;
    await deps.pendingLinks.remove(pending.tenantId, pending.id);
    clearLinkCookie(ctx);
    try {
      const outcome = await linkProven(
        deps.db,
        deps.invitations,
        conn,
        pending.profile,
        pending.userId,
        reason,
        withFactor,
        pending.binding.invitationId,
        (tx, user) => mailLinkMade(deps.outbox, tx, pending.tenantId, user.email, { connectionName: conn.name, orgName: org.name, proof: reason }),
      );
      if (outcome.kind !== 'signed_in') {
        await record(conn, 'sso.link_refused', pending.profile, outcome);
        throw new SsoRefused(outcome.reason);
      }
      deps.log.info({ tenant: runtime.tenant.slug, connection: conn.id, userId: outcome.userId, proof: reason }, 'sso link proven');
      if (!pending.binding.interactionUid || (await runtime.provider.Interaction.find(pending.binding.interactionUid))) {
        const done = await signedIn(ctx, conn, outcome.userId, pending.binding, pending.profile.mfa === true);
        deps.metrics.signIn('sso_link', 'signed_in');
        return done;
      }
      return renderPage(ctx, deps.render, 'message.njk', {
        title: 'Your account is linked',
        paragraphs: [`From now on, signing in with ${conn.name} opens this account. Go back to your application and sign in again.`],
      });
    } catch (err) {
      deps.metrics.signIn('sso_link', err instanceof SsoRefused ? 'refused' : 'error');
      const why = err instanceof SsoRefused ? err.message : `unexpected: ${(err as Error).message}`;
      deps.log.warn({ tenant: runtime.tenant.slug, connection: conn.id, reason: why }, 'sso link refused');
      await deps.connections.recordError(runtime.tenant.id, conn.id, why);
      return failed(ctx);
    }
  }

  return router;
}

/**
 * Records the result on the waiting interaction and returns where to resume it. (The callback
 * is not under the interaction's cookie path, so the interaction is found by the uid we stored
 * with the request; oidc-provider still requires that browser's interaction cookie to resume.)
 */
async function resume(provider: Provider, uid: string, result: Record<string, unknown>): Promise<string> {
  const interaction = await provider.Interaction.find(uid);
  if (!interaction) throw new SsoRefused('the sign-in waiting for this IdP has expired');
  interaction.result = result;
  await interaction.save(Math.max(1, interaction.exp - Math.floor(Date.now() / 1000)));
  return interaction.returnTo;
}
