import Router from '@koa/router';
import type { Context } from 'koa';
import { type AccountService, PasswordRejected } from '../accounts/account.service.ts';
import type { BruteForce } from '../accounts/brute-force.ts';
import { ACR } from '../auth-policy/policy.ts';
import type { Render } from '../base/views.ts';
import type { FactorService } from '../factors/factor.service.ts';
import { LOW_RECOVERY_CODES } from '../factors/recovery-codes.ts';
import { factorsTurnedOff, kindAllowed, usableKinds } from '../factors/tenant-factors.ts';
import { emailFieldError, formField, renderPage } from '../http/pages.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { type OrgTokens, statusRefusalText } from '../orgs/org-tokens.ts';
import type { OrgSignIn, SsoRouter } from '../sso/sso-router.ts';
import { effectiveSettings } from '../tenants/settings.ts';
import type { UserService } from '../users/user.service.ts';
import type { ClientService } from './client.service.ts';
import { type MissingConsent, recordConsent } from './consent.ts';
import type { MfaEnrollment } from './mfa-enroll.routes.ts';
import { requestedOrganization, requestedTeam } from './org-request.ts';
import { interactionBase } from './passkey-offer.ts';
import {
  codeStepPage,
  confirmEmailFirstPage,
  finishSignIn,
  loginPage,
  namedOrganization as namedOrg,
  PENDING_SECOND_FACTOR,
  type PendingSecondFactor,
  pendingSecondFactor,
} from './sign-in-pages.ts';

const INVALID_CREDENTIALS = 'Invalid email or password.';
const INVALID_CODE = 'That code is not valid. Try again, or use a recovery code.';

/** RFC 8176 methods and Tessera's acr values of a finished sign-in (see the CONTRACT's "Sign-in facts"). */
const passwordOnly = () => ({ amr: ['pwd'], acr: ACR.pwd });
const passwordAndCode = () => ({ amr: ['pwd', 'otp', 'mfa'], acr: ACR.mfa });

/**
 * The pages oidc-provider sends a browser to: sign-in and consent. Mounted at
 * /t/<slug>/interaction/<uid>; the interaction cookie (path-scoped to that URL) binds the page
 * to the browser that started the authorization request.
 */
export function interactionRoutes(deps: {
  users: UserService;
  clients: ClientService;
  accounts: AccountService;
  bruteForce: BruteForce;
  factors: FactorService;
  enrollment: MfaEnrollment;
  orgTokens: OrgTokens;
  sso: SsoRouter;
  render: Render;
  metrics: Metrics;
}) {
  const router = new Router();

  const base = interactionBase;

  async function clientName(ctx: Context, clientId: unknown) {
    const client = typeof clientId === 'string' ? await ctx.state.runtime.provider.Client.find(clientId) : undefined;
    return client?.clientName ?? client?.clientId ?? 'the application';
  }

  const page = (ctx: Context, template: string, context: Record<string, unknown>, status?: number) => renderPage(ctx, deps.render, template, context, status);
  const settingsOf = (ctx: Context) => effectiveSettings(ctx.state.runtime.tenant.settings);

  const signInPage = (
    ctx: Context,
    details: { uid: string; params: Record<string, unknown> },
    extra: Record<string, unknown> = {},
    status?: number,
    known?: OrgSignIn | null,
  ) => loginPage(ctx, deps.render, deps.sso, details, extra, status, known);

  const namedOrganization = (ctx: Context, details: { params: Record<string, unknown> }) => namedOrg(ctx, deps.sso, details);

  const ssoLoginHint = (details: { params: Record<string, unknown> }) =>
    typeof details.params.login_hint === 'string' ? details.params.login_hint : undefined;

  router.get('/:uid', async (ctx) => {
    const { provider, tenant } = ctx.state.runtime;
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const uid = details.uid;
    if (details.prompt.name === 'login') {
      // organization=<id or slug> whose policy requires SSO goes straight to its IdP: a password
      // sign-in could not work in it anyway. Otherwise its SSO is offered first, on the page.
      const org = await namedOrganization(ctx, details);
      const to = org?.ssoRequired ? await deps.sso.startForOrganization(ctx.state.runtime, org, uid, ssoLoginHint(details)) : undefined;
      if (to) return ctx.redirect(to);
      return signInPage(ctx, details, {}, undefined, org ?? null);
    }
    if (details.prompt.name === 'consent') {
      const clientId = details.params.client_id as string;
      if (!(await deps.clients.requiresConsent(tenant.id, clientId))) {
        return finishConsent(ctx);
      }
      const scopes = String(details.params.scope ?? '')
        .split(' ')
        .filter(Boolean);
      return page(ctx, 'consent.njk', {
        title: 'Allow access',
        clientName: await clientName(ctx, clientId),
        scopes,
        action: `${base(ctx, uid)}/confirm`,
        abortUrl: `${base(ctx, uid)}/abort`,
      });
    }
    if (details.prompt.name === 'organization') return chooseOrganization(ctx);
    return page(
      ctx,
      'error.njk',
      { title: 'Unsupported step', detail: `This sign-in asks for "${details.prompt.name}", which this server does not offer.` },
      400,
    );
  });

  /**
   * "Continue with <organization>'s SSO": the IdP of the organization the request itself names —
   * never one a form field names, so the button starts no other organization's sign-in.
   */
  router.post('/:uid/sso', async (ctx) => {
    const details = await ctx.state.runtime.provider.interactionDetails(ctx.req, ctx.res);
    if (details.prompt.name !== 'login') {
      return page(
        ctx,
        'error.njk',
        { title: 'Already signed in', detail: 'This sign-in is not waiting for you to sign in. Start again from the application.' },
        400,
      );
    }
    const org = await namedOrganization(ctx, details);
    const to = org ? await deps.sso.startForOrganization(ctx.state.runtime, org, details.uid, ssoLoginHint(details)) : undefined;
    if (!to) return signInPage(ctx, details, { error: 'Single sign-on is not available for this sign-in. Sign in with your email instead.' }, 400, org ?? null);
    ctx.status = 303;
    ctx.redirect(to);
  });

  /**
   * Email first: a verified domain of an organization with an enabled connection goes to its
   * IdP; any other email is asked for its password. Routing is by domain, so the answer says
   * nothing about whether an account exists.
   */
  router.post('/:uid/identify', async (ctx) => {
    const details = await ctx.state.runtime.provider.interactionDetails(ctx.req, ctx.res);
    const email = formField(ctx, 'email', 320);
    const emailError = emailFieldError(email);
    if (emailError) return signInPage(ctx, details, { email, error: emailError }, 400);
    const to = await deps.sso.startForEmail(ctx.state.runtime, email, details.uid);
    if (to) return ctx.redirect(to);
    return signInPage(ctx, details, { email, step: 'password' });
  });

  /**
   * Email + password. Brute-force protection first: a blocked address is refused without its
   * attempt counting against the account; a locked account is refused even with the right
   * password. Every refusal shows the same message.
   */
  router.post('/:uid/login', async (ctx) => {
    const { provider, tenant } = ctx.state.runtime;
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const settings = settingsOf(ctx);
    const email = formField(ctx, 'email', 320);
    const password = formField(ctx, 'password', 256, false);
    // An address the email rule refuses has no account and no organization: say what is wrong
    // with it rather than count a password attempt against nobody.
    const emailError = emailFieldError(email);
    if (emailError) return signInPage(ctx, details, { email, error: emailError }, 400);
    // Three reads that don't depend on one another, so they share one round trip (grouped reads):
    // whether the email's organization requires SSO, the brute-force record, and the account. The
    // account is used only once both checks let a password through.
    const [sso, verdict, account] = await Promise.all([
      deps.sso.requiredFor(ctx.state.runtime, email, details.uid),
      deps.bruteForce.check(tenant.id, settings.brute_force, email, ctx.ip),
      email && password ? deps.users.findForSignIn(tenant.id, email) : undefined,
    ]);
    // "SSO required": a user of the organization's domain never signs in with a password.
    if (sso.required) {
      deps.metrics.signIn('password', 'sso_required');
      if (sso.redirect) return ctx.redirect(sso.redirect);
      return signInPage(
        ctx,
        details,
        { email, step: 'password', error: 'Your organization requires single sign-on, which is not available right now. Contact your administrator.' },
        403,
      );
    }
    const user = !verdict.ipBlocked && email && password ? await deps.users.checkSignIn(tenant.id, account, password) : undefined;
    if (!user || verdict.accountLocked) {
      deps.metrics.signIn('password', verdict.ipBlocked || verdict.accountLocked ? 'locked' : 'invalid_credentials');
      await deps.bruteForce.recordFailure(tenant.id, settings.brute_force, email, ctx.ip, verdict);
      return signInPage(ctx, details, { email, step: 'password', error: INVALID_CREDENTIALS }, 401);
    }
    // A right password clears the account's failures only where it ends the step: before a second
    // factor, the code step does that, so knowing the password does not reset the count of wrong codes.
    if (settings.email_verification_required && !user.email_verified) {
      await deps.bruteForce.recordSuccess(tenant.id, email, verdict);
      deps.metrics.signIn('password', 'email_unverified');
      await deps.accounts.requestVerification(tenant.id, user.email);
      return confirmEmailFirstPage(ctx, deps.render, user.email, base(ctx, details.uid));
    }
    // Only factors the tenant's settings count ask for a code (none with `mfa: off`).
    const confirmed = await deps.factors.confirmedKinds(tenant.id, user.id);
    const usable = usableKinds(settings, confirmed);
    // Factors of kinds the tenant no longer accepts still protect the account: such a person gives
    // a recovery code (the code step offers only that), and is never walked through setting up a
    // new factor with the password alone.
    if (usable.size > 0 || (confirmed.length > 0 && !factorsTurnedOff(settings))) {
      const pending = { accountId: user.id, email, kinds: [...usable] } satisfies PendingSecondFactor;
      details.lastSubmission = { [PENDING_SECOND_FACTOR]: pending };
      await details.persist();
      // The code step is this answer's page, its forms posting to /mfa: no redirect to a page that
      // would read the interaction again (a two-step sign-in is one request and one read shorter).
      return codeStep(ctx, details.uid, pending, 'totp');
    }
    // No factor yet, but the tenant or the requested organization wants one: set it up now (or be reminded).
    const enrollAt = await deps.enrollment.stepAfterPassword(ctx, details, user.id, email);
    if (enrollAt) {
      ctx.status = 303;
      return ctx.redirect(enrollAt);
    }
    await deps.bruteForce.recordSuccess(tenant.id, email, verdict);
    const to = await finishSignIn(ctx, user.id, passwordOnly());
    deps.metrics.signIn('password', 'signed_in');
    ctx.status = 303;
    ctx.redirect(to);
  });

  const codeStep = (
    ctx: Context,
    uid: string,
    pending: PendingSecondFactor,
    chosen: 'totp' | 'recovery',
    extra: Record<string, unknown> = {},
    status?: number,
  ) => codeStepPage(ctx, deps.render, deps.factors, uid, pending, chosen, extra, status);

  function noSecondFactorStep(ctx: Context) {
    page(ctx, 'error.njk', { title: 'Sign in first', detail: 'This sign-in is not waiting for a code. Start again from the application.' }, 400);
  }

  router.get('/:uid/mfa', async (ctx) => {
    const details = await ctx.state.runtime.provider.interactionDetails(ctx.req, ctx.res);
    const pending = pendingSecondFactor(details);
    if (!pending) return noSecondFactorStep(ctx);
    await codeStep(ctx, details.uid, pending, ctx.query.method === 'recovery' ? 'recovery' : 'totp');
  });

  /**
   * The code after the password: a TOTP code or a recovery code. A wrong code counts toward the
   * account's lock exactly as a wrong password does, and a locked account is refused even with
   * a right code.
   */
  router.post('/:uid/mfa', async (ctx) => {
    const { provider, tenant } = ctx.state.runtime;
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const pending = pendingSecondFactor(details);
    if (!pending) return noSecondFactorStep(ctx);
    const settings = settingsOf(ctx);
    const method = formField(ctx, 'method', 20) === 'recovery' ? 'recovery' : 'totp';
    const code = formField(ctx, 'code', 64);
    const verdict = await deps.bruteForce.check(tenant.id, settings.brute_force, pending.email, ctx.ip);
    // A kind of factor the tenant does not allow is not accepted (recovery codes stand in for the allowed ones).
    const accept = { totp: kindAllowed(settings, 'totp'), recovery: true };
    const result =
      !verdict.ipBlocked && !verdict.accountLocked && code
        ? await deps.factors.verifySecondFactor(tenant.id, pending.accountId, code, accept)
        : { ok: false as const };
    if (!result.ok) {
      deps.metrics.signIn('password', verdict.ipBlocked || verdict.accountLocked ? 'locked' : 'invalid_credentials');
      await deps.bruteForce.recordFailure(tenant.id, settings.brute_force, pending.email, ctx.ip, verdict);
      return codeStep(ctx, details.uid, pending, method, { error: INVALID_CODE }, 401);
    }
    await deps.bruteForce.recordSuccess(tenant.id, pending.email, verdict);
    const to = await finishSignIn(ctx, pending.accountId, passwordAndCode());
    deps.metrics.signIn('password', 'signed_in');
    if (result.method === 'recovery_code') return recoveryCodesLeft(ctx, tenant.id, pending.accountId, to);
    ctx.status = 303;
    ctx.redirect(to);
  });

  /**
   * After a sign-in with a recovery code: how many are left, before going on to the app (the
   * sign-in is already finished; Continue resumes it).
   */
  async function recoveryCodesLeft(ctx: Context, tenantId: string, accountId: string, resumeUrl: string) {
    const left = await deps.factors.unusedRecoveryCodes(tenantId, accountId);
    page(ctx, 'recovery-codes-left.njk', {
      title: 'Recovery code used',
      left,
      low: left <= LOW_RECOVERY_CODES,
      securityUrl: `/t/${ctx.state.runtime.tenant.slug}/account/security`,
      continueUrl: resumeUrl,
    });
  }

  router.get('/:uid/register', async (ctx) => {
    const details = await ctx.state.runtime.provider.interactionDetails(ctx.req, ctx.res);
    if (!settingsOf(ctx).registration_enabled) return registrationClosed(ctx, details.uid);
    registerPage(ctx, details.uid, { name: '', email: '' });
  });

  /** Same page, same timing, whether or not the email already has an account (see AccountService.register). */
  router.post('/:uid/register', async (ctx) => {
    const details = await ctx.state.runtime.provider.interactionDetails(ctx.req, ctx.res);
    if (!settingsOf(ctx).registration_enabled) return registrationClosed(ctx, details.uid);
    const name = formField(ctx, 'name', 200);
    const email = formField(ctx, 'email', 320);
    const password = formField(ctx, 'password', 1000, false);
    if (!name) return registerPage(ctx, details.uid, { name, email, error: 'Enter your name.' }, 400);
    const emailError = emailFieldError(email);
    if (emailError) return registerPage(ctx, details.uid, { name, email, error: emailError }, 400);
    try {
      await deps.accounts.register(ctx.state.runtime.tenant.id, { email, password, name });
    } catch (err) {
      if (!(err instanceof PasswordRejected)) throw err;
      return registerPage(ctx, details.uid, { name, email, error: err.message }, 400);
    }
    page(ctx, 'message.njk', {
      title: 'Check your inbox',
      paragraphs: [
        `We have sent a message to ${email}. Follow the link in it to confirm your address.`,
        settingsOf(ctx).email_verification_required ? 'Then sign in.' : 'You can sign in now.',
      ],
      link: { href: base(ctx, details.uid), text: 'Back to sign in' },
    });
  });

  function registerPage(ctx: Context, uid: string, values: Record<string, unknown>, status?: number) {
    page(ctx, 'register.njk', { title: 'Create your account', action: `${base(ctx, uid)}/register`, signInUrl: base(ctx, uid), ...values }, status);
  }

  function registrationClosed(ctx: Context, uid: string) {
    page(
      ctx,
      'message.njk',
      {
        title: 'Registration is closed',
        paragraphs: ['Accounts here are created by an administrator or by invitation.'],
        link: { href: base(ctx, uid), text: 'Back to sign in' },
      },
      404,
    );
  }

  router.post('/:uid/confirm', async (ctx) => finishConsent(ctx));

  router.post('/:uid/organization', async (ctx) => chooseOrganization(ctx, formField(ctx, 'org_id', 100)));

  /**
   * The organization step: the one the request named, or the one picked on the page (when the
   * client requires an organization and none was named). Not a member, an unknown organization
   * or a suspended one ends the request with an OAuth error for the app — never a token.
   */
  async function chooseOrganization(ctx: Context, picked?: string) {
    const { provider, tenant } = ctx.state.runtime;
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const accountId = details.session?.accountId;
    if (details.prompt.name !== 'organization' || !accountId || !details.grantId) {
      return page(
        ctx,
        'error.njk',
        { title: 'Nothing to choose', detail: 'This sign-in is not waiting for an organization. Start again from the application.' },
        400,
      );
    }
    // Named on the request, chosen by signing in through an organization's SSO, or picked here.
    const ssoOrg = (details.lastSubmission as { sso?: { org_id?: string } } | undefined)?.sso?.org_id;
    const team = requestedTeam(details.params);
    // A team named by its id alone says its organization — only for a team the person is in:
    // any other is answered like an unknown one (the picker), never with its organization's id.
    const teamOrg = team && !requestedOrganization(details.params) && !ssoOrg ? await deps.orgTokens.teamOrg(tenant.id, accountId, team) : undefined;
    const wanted = requestedOrganization(details.params) ?? ssoOrg ?? teamOrg ?? picked;
    if (!wanted) {
      const [organizations, user] = await Promise.all([deps.orgTokens.memberships(tenant.id, accountId), deps.users.find(tenant.id, accountId)]);
      // The user's active organization (last chosen here, in the account pages or by an app) first.
      const active = organizations.some((o) => o.id === user?.active_org_id) ? user!.active_org_id : organizations[0]?.id;
      return page(ctx, 'select-organization.njk', {
        title: 'Choose an organization',
        clientName: await clientName(ctx, details.params.client_id),
        organizations,
        active,
        action: `${base(ctx, details.uid)}/organization`,
        abortUrl: `${base(ctx, details.uid)}/abort`,
      });
    }
    const r = await deps.orgTokens.claimsFor(tenant.id, accountId, wanted);
    if ('refused' in r) {
      const description =
        r.refused === 'not_found_or_not_member' || r.refused === 'policy' // no policy is judged without a sign-in
          ? `The user is not a member of the organization ${wanted}, or it does not exist.`
          : statusRefusalText(r.refused, wanted);
      const to = await provider.interactionResult(
        ctx.req,
        ctx.res,
        { error: 'access_denied', error_description: description },
        { mergeWithLastSubmission: false },
      );
      ctx.status = 303;
      return ctx.redirect(to);
    }
    let teamId: string | null = null;
    if (team) {
      // Refused as an organization is: not in the team, or a team of another organization.
      const t = await deps.orgTokens.teamClaimsFor(tenant.id, accountId, r.claims.org_id, { team });
      if (!('claims' in t) || !t.claims.team_id) {
        const to = await provider.interactionResult(
          ctx.req,
          ctx.res,
          { error: 'access_denied', error_description: `The user is not a member of the team ${team} of the organization ${wanted}, or it does not exist.` },
          { mergeWithLastSubmission: false },
        );
        ctx.status = 303;
        return ctx.redirect(to);
      }
      teamId = t.claims.team_id;
    }
    await deps.orgTokens.selectForGrant(tenant.id, details.grantId, accountId, r.claims.org_id, teamId);
    const to = await provider.interactionResult(ctx.req, ctx.res, { organization: { id: r.claims.org_id } }, { mergeWithLastSubmission: true });
    ctx.status = 303;
    ctx.redirect(to);
  }

  router.get('/:uid/abort', async (ctx) => {
    const to = await ctx.state.runtime.provider.interactionResult(
      ctx.req,
      ctx.res,
      { error: 'access_denied', error_description: 'The user cancelled the sign-in.' },
      { mergeWithLastSubmission: false },
    );
    ctx.status = 303;
    ctx.redirect(to);
  });

  /**
   * Records consent in the grant (recordConsent: the `admin` scope only for tenant administrators).
   * First-party clients mostly never get here: their grant is decided when the sign-in resumes
   * (loadExistingGrant in provider.ts). A first-party native client still comes through here: the
   * provider always starts a consent interaction for native clients, which is finished at once.
   */
  async function finishConsent(ctx: Context) {
    const { provider, tenant } = ctx.state.runtime;
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.prompt.name !== 'consent' || !details.session?.accountId) {
      return page(ctx, 'error.njk', { title: 'Nothing to confirm', detail: 'This sign-in is not waiting for consent. Start again from the application.' }, 400);
    }
    const accountId = details.session.accountId;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: details.params.client_id as string });
    if (!grant) {
      return page(ctx, 'error.njk', { title: 'Sign-in expired', detail: 'Start again from the application.' }, 400);
    }
    recordConsent(grant, details.prompt.details as MissingConsent, await deps.users.find(tenant.id, accountId));
    const grantId = await grant.save();
    const to = await provider.interactionResult(ctx.req, ctx.res, { consent: details.grantId ? {} : { grantId } }, { mergeWithLastSubmission: true });
    ctx.status = 303;
    ctx.redirect(to);
  }

  return router;
}
