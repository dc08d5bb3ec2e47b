import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import { NotFound } from '../base/errors.ts';
import { isUuid } from '../base/ids.ts';
import type { Render } from '../base/views.ts';
import type { FactorService, TotpEnrollment } from '../factors/factor.service.ts';
import { qrCodeDataUrl } from '../factors/qr-code.ts';
import { LOW_RECOVERY_CODES } from '../factors/recovery-codes.ts';
import { factorsTurnedOff, kindAllowed, usableKinds } from '../factors/tenant-factors.ts';
import { formField } from '../http/pages.ts';
import { PORTAL_CLIENT } from '../oidc/client.service.ts';
import type { InvitationService } from '../orgs/invitation.service.ts';
import type { OrgService } from '../orgs/org.service.ts';
import { type OrgTokens, statusRefusalText } from '../orgs/org-tokens.ts';
import type { TeamService } from '../orgs/team.service.ts';
import { type FormErrors, FormRejected, formErrorsOf, formValues, noticeFor, parseForm, portalPage, redirectWithNotice } from '../portal/forms.ts';
import { portalSignIn, renderPolicyNotMet, stepUpsFor } from '../portal/org-policy-gate.ts';
import { effectiveSettings } from '../tenants/settings.ts';
import type { UserService } from '../users/user.service.ts';
import { type AccountService, PasswordRejected } from './account.service.ts';
import type { AccountSecurity } from './account-security.service.ts';
import type { SessionService } from './session.service.ts';

const NOTICES = {
  switched: 'Active organization switched.',
  left: 'You left the organization.',
  accepted: 'Invitation accepted: you are a member now.',
  declined: 'Invitation declined.',
  profile_saved: 'Profile saved.',
  password_changed: 'Password changed. Every other session was signed out.',
  session_revoked: 'That session is signed out.',
  factor_added: 'Authenticator app added. Sign-ins now ask for its code after your password.',
  factor_removed: 'Factor removed.',
  passkey_added: 'Passkey added. You can sign in with it, or use it after your password.',
  factor_renamed: 'Factor renamed.',
};
const REFUSALS: Record<string, string> = {
  last_owner: 'You are the last owner of that organization: make another member owner first, then leave.',
};

const optionalName = z
  .string()
  .trim()
  .max(200, 'must be at most 200 characters')
  .transform((s) => s || null);
const Profile = z.strictObject({ name: optionalName, given_name: optionalName, family_name: optionalName });

/**
 * The signed-in user's own pages at /t/<slug>/account: organizations (switch, leave,
 * invitations), profile, password and sessions. Same services as the /api/v1/me endpoints.
 */
export function accountPages(deps: {
  guard: Middleware;
  users: UserService;
  orgs: OrgService;
  teams: TeamService;
  orgTokens: OrgTokens;
  invitations: InvitationService;
  accounts: AccountService;
  sessions: SessionService;
  factors: FactorService;
  security: AccountSecurity;
  render: Render;
}) {
  const router = new Router();
  const page = portalPage(deps.render);
  const url = (ctx: Context, path: string) => `/t/${ctx.state.runtime.tenant.slug}/account/${path}`;
  const view = (ctx: Context, template: string, tab: string, context: Record<string, unknown>, status = 200) =>
    page(ctx, template, { section: 'account', tab, notice: noticeFor(ctx, NOTICES), ...context }, status);
  const orgIdOf = (ctx: Context) => {
    const id = String(ctx.params.orgId);
    if (!isUuid(id)) throw NotFound('You are not a member of that organization.');
    return id;
  };
  const { guard } = deps;

  router.get('/organizations', guard, async (ctx) => {
    const viewer = ctx.state.viewer;
    const tenantId = ctx.state.runtime.tenant.id;
    const [memberships, invitations, current, teams] = await Promise.all([
      deps.orgTokens.memberships(tenantId, viewer.user.id, { includeNotWorking: true }),
      deps.invitations.invitationsFor(tenantId, viewer.user.id),
      deps.orgTokens.grantOrg(tenantId, viewer.grantId),
      deps.teams.teamsOf(tenantId, viewer.user.id),
    ]);
    const active = current ?? viewer.user.active_org_id;
    const refusal = typeof ctx.query.refused === 'string' ? REFUSALS[ctx.query.refused] : undefined;
    // Those whose policy this sign-in falls short of: marked, with the way to sign in as they require.
    const stepUps = await stepUpsFor(
      ctx,
      deps.orgTokens,
      memberships.map((m) => m.id),
      () => url(ctx, 'organizations'),
    );
    view(ctx, 'account/organizations.njk', 'organizations', {
      title: 'My organizations',
      memberships: memberships.map((m) => ({ ...m, teams: teams.get(m.id) ?? [], active: m.id === active, stepUp: stepUps.get(m.id) })),
      invitations,
      formError: refusal,
    });
  });

  /**
   * Switch: the portal's sign-in now works in this organization, and it becomes the user's
   * active organization, preselected when an app asks them to choose one.
   */
  router.post('/organizations/:orgId/switch', guard, async (ctx) => {
    const viewer = ctx.state.viewer;
    const tenantId = ctx.state.runtime.tenant.id;
    // Judged as the API's switch judges a token's sign-in: the organization's policy, one rule.
    const r = await deps.orgTokens.claimsFor(tenantId, viewer.user.id, orgIdOf(ctx), portalSignIn(ctx, viewer));
    if ('refused' in r && r.refused === 'policy') {
      return renderPolicyNotMet(deps.render, ctx, r, url(ctx, 'organizations'), 'switch to this organization');
    }
    if ('refused' in r) throw NotFound(r.refused === 'not_found_or_not_member' ? 'You are not a member of that organization.' : statusRefusalText(r.refused));
    await deps.orgTokens.selectForGrant(tenantId, viewer.grantId, viewer.user.id, r.claims.org_id);
    redirectWithNotice(ctx, url(ctx, 'organizations'), 'switched');
  });

  router.post('/organizations/:orgId/leave', guard, async (ctx) => {
    const viewer = ctx.state.viewer;
    try {
      await deps.orgs.removeMember(ctx.state.runtime.tenant.id, { type: 'user', id: viewer.user.id }, orgIdOf(ctx), viewer.user.id);
      redirectWithNotice(ctx, url(ctx, 'organizations'), 'left');
    } catch (err) {
      if ((err as { status?: number }).status !== 409) throw err;
      ctx.status = 303;
      ctx.redirect(`${url(ctx, 'organizations')}?refused=last_owner`);
    }
  });

  router.post('/invitations/:invitationId/:answer', guard, async (ctx) => {
    const viewer = ctx.state.viewer;
    const id = String(ctx.params.invitationId);
    const answer = ctx.params.answer;
    if (!isUuid(id) || (answer !== 'accept' && answer !== 'decline')) throw NotFound('No such invitation for you.');
    const tenantId = ctx.state.runtime.tenant.id;
    if (answer === 'accept') await deps.invitations.acceptInvitationById(tenantId, viewer.user.id, id);
    else await deps.invitations.declineInvitation(tenantId, viewer.user.id, id);
    redirectWithNotice(ctx, url(ctx, 'organizations'), answer === 'accept' ? 'accepted' : 'declined');
  });

  // ── profile ────────────────────────────────────────────────────────────────

  const profilePage = (ctx: Context, values: Record<string, unknown>, errors: FormErrors, status = 200) =>
    view(ctx, 'account/profile.njk', 'profile', { title: 'Profile', values, errors, formError: errors._form }, status);

  router.get('/profile', guard, (ctx) => {
    const { user } = ctx.state.viewer;
    profilePage(ctx, { name: user.name ?? '', given_name: user.given_name ?? '', family_name: user.family_name ?? '', email: user.email }, {});
  });

  router.post('/profile', guard, async (ctx) => {
    const { user } = ctx.state.viewer;
    const values = formValues(ctx, ['name', 'given_name', 'family_name'], 300);
    try {
      await deps.users.update(ctx.state.runtime.tenant.id, user.id, parseForm(Profile, values));
      redirectWithNotice(ctx, url(ctx, 'profile'), 'profile_saved');
    } catch (err) {
      profilePage(ctx, { ...values, email: user.email }, formErrorsOf(err), 422);
    }
  });

  // ── password ───────────────────────────────────────────────────────────────

  const passwordPage = (ctx: Context, errors: FormErrors, status = 200) =>
    view(
      ctx,
      'account/password.njk',
      'password',
      { title: 'Password', email: ctx.state.viewer.user.email, hasPassword: Boolean(ctx.state.viewer.user.password_hash), errors, formError: errors._form },
      status,
    );

  router.get('/password', guard, (ctx) => passwordPage(ctx, {}));

  /** Change password (brute-force accounting and revocation: AccountService.changePassword). */
  router.post('/password', guard, async (ctx) => {
    const viewer = ctx.state.viewer;
    const { tenant } = ctx.state.runtime;
    const current = formField(ctx, 'current_password', 256, false);
    const next = formField(ctx, 'new_password', 1000, false);
    const again = formField(ctx, 'confirm_password', 1000, false);
    try {
      if (!current) throw new FormRejected({ current_password: 'Enter your current password.' });
      if (next !== again) throw new FormRejected({ confirm_password: 'The two new passwords are not the same.' });
      const outcome = await deps.accounts.changePassword(tenant.id, viewer.user.id, current, next, viewer.grantId, {
        ip: ctx.ip,
        bruteForce: effectiveSettings(tenant.settings).brute_force,
      });
      if (outcome === 'locked') throw new FormRejected({ _form: 'Too many wrong passwords. Wait a few minutes, then try again.' });
      if (outcome === 'wrong_password') throw new FormRejected({ current_password: 'That is not your current password.' });
      redirectWithNotice(ctx, url(ctx, 'password'), 'password_changed');
    } catch (err) {
      if (err instanceof PasswordRejected) return passwordPage(ctx, { new_password: err.message }, 422);
      passwordPage(ctx, formErrorsOf(err), 422);
    }
  });

  // ── sessions ───────────────────────────────────────────────────────────────

  router.get('/sessions', guard, async (ctx) => {
    const viewer = ctx.state.viewer;
    const { provider, tenant } = ctx.state.runtime;
    const sessions = await deps.sessions.list(tenant.id, viewer.user.id);
    const appName = async (clientId: string) => (clientId === PORTAL_CLIENT ? 'This portal' : ((await provider.Client.find(clientId))?.clientName ?? clientId));
    const rows = await Promise.all(
      sessions.map(async (s) => ({
        ...s,
        current: s.authorizations.some((a) => a.grantId === viewer.grantId),
        apps: await Promise.all(s.authorizations.map((a) => appName(a.clientId))),
      })),
    );
    view(ctx, 'account/sessions.njk', 'sessions', { title: 'Sessions', sessions: rows });
  });

  router.post('/sessions/:sessionId/revoke', guard, async (ctx) => {
    const viewer = ctx.state.viewer;
    const id = String(ctx.params.sessionId).slice(0, 100);
    if (!(await deps.sessions.revoke(ctx.state.runtime.tenant.id, viewer.user.id, id))) throw NotFound('No such session of yours.');
    redirectWithNotice(ctx, url(ctx, 'sessions'), 'session_revoked');
  });

  // ── security: second factors ───────────────────────────────────────────────

  const securityPage = async (ctx: Context, extra: Record<string, unknown> = {}, status = 200) => {
    const { user } = ctx.state.viewer;
    const tenantId = ctx.state.runtime.tenant.id;
    const settings = effectiveSettings(ctx.state.runtime.tenant.settings);
    const [factors, recoveryLeft] = await Promise.all([deps.factors.list(tenantId, user.id), deps.factors.unusedRecoveryCodes(tenantId, user.id)]);
    const confirmed = factors.filter((f) => f.confirmed);
    const usable = usableKinds(
      settings,
      confirmed.map((f) => f.kind),
    );
    const enrollment = extra.enrollment as TotpEnrollment | undefined;
    view(
      ctx,
      'account/security.njk',
      'security',
      {
        title: 'Security',
        email: user.email,
        factors: confirmed,
        recoveryLeft,
        recoveryLow: usable.size > 0 && recoveryLeft <= LOW_RECOVERY_CODES,
        factorsOff: factorsTurnedOff(settings),
        totpAllowed: kindAllowed(settings, 'totp'),
        passkeysOffered: kindAllowed(settings, 'passkey'),
        // A current code from the app may stand in for the password when confirming a change.
        codeReauth: usable.has('totp'),
        qrCode: enrollment?.uri ? await qrCodeDataUrl(enrollment.uri) : undefined,
        errors: {},
        ...extra,
      },
      status,
    );
  };

  const REAUTH_REFUSALS: Record<string, string> = {
    locked: 'Too many wrong attempts. Wait a few minutes, then try again.',
    wrong_password: 'That is not your current password.',
    wrong_code: 'That code is not valid. Enter the current code from your authenticator app.',
  };

  /**
   * The current password — or a current code from the person's authenticator app — asked again
   * before a factor is added or removed or codes are shown. Either counts toward the account's lock.
   */
  const reauthenticated = async (ctx: Context): Promise<boolean> => {
    const { tenant } = ctx.state.runtime;
    const settings = effectiveSettings(tenant.settings);
    const attempt = { ip: ctx.ip, bruteForce: settings.brute_force };
    const userId = ctx.state.viewer.user.id;
    const password = formField(ctx, 'current_password', 256, false);
    const code = formField(ctx, 'current_code', 20);
    const outcome =
      password || !code
        ? password
          ? await deps.security.reauthenticate(tenant.id, userId, password, attempt)
          : 'wrong_password'
        : await deps.security.reauthenticateWithCode(tenant.id, userId, code, { ...attempt, totpAllowed: kindAllowed(settings, 'totp') });
    if (outcome === 'ok') return true;
    await securityPage(ctx, { formError: REAUTH_REFUSALS[outcome] }, outcome === 'locked' ? 429 : 422);
    return false;
  };

  /** No authenticator app is added where the tenant's settings turn factors off or leave apps out. */
  const appsRefused = async (ctx: Context): Promise<boolean> => {
    const settings = effectiveSettings(ctx.state.runtime.tenant.settings);
    if (kindAllowed(settings, 'totp')) return false;
    const formError = factorsTurnedOff(settings) ? 'Second factors are turned off here.' : 'Authenticator apps are not allowed here.';
    await securityPage(ctx, { formError }, 409);
    return true;
  };

  const factorIdOf = (ctx: Context) => {
    const id = String(ctx.params.factorId);
    if (!isUuid(id)) throw NotFound('No such factor of yours.');
    return id;
  };

  router.get('/security', guard, (ctx) => securityPage(ctx));

  /** Step one of adding an authenticator app: the password, then the secret to scan or type. */
  router.post('/security/totp', guard, async (ctx) => {
    if (await appsRefused(ctx)) return;
    if (!(await reauthenticated(ctx))) return;
    const { user } = ctx.state.viewer;
    const { tenant } = ctx.state.runtime;
    const enrollment = await deps.security.startTotp(tenant.id, user.id, tenant.name, user.email);
    await securityPage(ctx, { enrollment });
  });

  /** Step two: the first code from the app confirms it. */
  router.post('/security/totp/:factorId/confirm', guard, async (ctx) => {
    const { user } = ctx.state.viewer;
    const { tenant } = ctx.state.runtime;
    const id = factorIdOf(ctx);
    if (await appsRefused(ctx)) return;
    const code = formField(ctx, 'code', 20);
    if (await deps.security.confirmTotp(tenant.id, user.id, user.email, id, code)) return redirectWithNotice(ctx, url(ctx, 'security'), 'factor_added');
    // Shown again with the same secret, so a mistyped code does not mean scanning a new one.
    const secret = formField(ctx, 'secret', 64);
    const uri = formField(ctx, 'uri', 512);
    await securityPage(
      ctx,
      { enrollment: { factorId: id, secret, uri }, formError: 'That code is not valid. Check the time on your phone and enter the current code.' },
      422,
    );
  });

  router.post('/security/factors/:factorId/remove', guard, async (ctx) => {
    const id = factorIdOf(ctx);
    if (!(await reauthenticated(ctx))) return;
    const { user } = ctx.state.viewer;
    await deps.security.remove(ctx.state.runtime.tenant.id, user.id, user.email, id);
    redirectWithNotice(ctx, url(ctx, 'security'), 'factor_removed');
  });

  /** New recovery codes, shown this once; the old ones stop working. */
  router.post('/security/recovery-codes', guard, async (ctx) => {
    if (!(await reauthenticated(ctx))) return;
    const { user } = ctx.state.viewer;
    const tenantId = ctx.state.runtime.tenant.id;
    if (!(await deps.factors.hasConfirmedFactor(tenantId, user.id))) {
      return securityPage(ctx, { formError: 'Add an authenticator app first: recovery codes stand in for it.' }, 409);
    }
    const recoveryCodes = await deps.security.regenerateRecoveryCodes(tenantId, user.id, user.email);
    ctx.set('Cache-Control', 'no-store');
    await securityPage(ctx, { recoveryCodes });
  });

  return router;
}
