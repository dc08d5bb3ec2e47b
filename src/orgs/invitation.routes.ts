import Router from '@koa/router';
import type { Context } from 'koa';
import { PasswordRejected } from '../accounts/account.service.ts';
import type { BruteForce } from '../accounts/brute-force.ts';
import { AppError, isUniqueViolation } from '../base/errors.ts';
import type { Render } from '../base/views.ts';
import type { Database } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import type { FactorService } from '../factors/factor.service.ts';
import { factorsTurnedOff, kindAllowed, usableKinds } from '../factors/tenant-factors.ts';
import { formField, renderPage } from '../http/pages.ts';
import type { ConnectionService } from '../sso/connection.service.ts';
import type { SsoRouter } from '../sso/sso-router.ts';
import { effectiveSettings } from '../tenants/settings.ts';
import { passwordProblem } from '../users/password-policy.ts';
import { hashPassword } from '../users/passwords.ts';
import { findUserByEmail, insertUser } from '../users/user.repo.ts';
import type { UserService } from '../users/user.service.ts';
import { type InvitationService, isInvitedAccount, joinRefusal } from './invitation.service.ts';
import type { OrgTokens } from './org-tokens.ts';

const GONE: Record<string, { title: string; text: string }> = {
  accepted: { title: 'Invitation already accepted', text: 'This invitation has been used. Sign in from your application to reach the organization.' },
  revoked: { title: 'Invitation revoked', text: 'This invitation was withdrawn. Ask the organization for a new one.' },
  expired: { title: 'Invitation expired', text: 'This invitation has expired. Ask the organization to send it again.' },
};

/**
 * Where an invitation email's link lands: /t/<slug>/invitations/<token>. Someone new registers
 * (the email is the invited one, and counts as verified: the link reached that mailbox); someone
 * with an account signs in, or, already signed in as the invited email, accepts with one click;
 * signed in as someone else, they are told so.
 */
export function invitationRoutes(deps: {
  db: Database;
  invitations: InvitationService;
  users: UserService;
  bruteForce: BruteForce;
  factors: FactorService;
  orgTokens: OrgTokens;
  connections: ConnectionService;
  sso: SsoRouter;
  render: Render;
}) {
  const router = new Router();
  const page = (ctx: Context, template: string, context: Record<string, unknown>, status?: number) => renderPage(ctx, deps.render, template, context, status);
  const message = (ctx: Context, title: string, text: string, status = 200) => page(ctx, 'message.njk', { title, paragraphs: [text] }, status);

  async function load(ctx: Context) {
    const token = String(ctx.params.token).slice(0, 100);
    const found = await deps.invitations.inspectInvitation(ctx.state.runtime.tenant.id, token);
    if (!found) {
      message(ctx, 'Invitation not found', 'This invitation link is not valid. Check that you opened the whole link from the email.', 404);
      return undefined;
    }
    if (found.status !== 'pending') {
      const gone = GONE[found.status]!;
      message(ctx, gone.title, gone.text, 410);
      return undefined;
    }
    // An organization that doesn't work (suspended, pending, rejected) takes nobody in: no form, no SSO.
    const refused = joinRefusal(found.org);
    if (refused) {
      message(ctx, `Can't join ${found.org.name} now`, refused, 409);
      return undefined;
    }
    if (found.invitation.email_key === null) {
      message(
        ctx,
        'Invitation no longer usable',
        `This invitation is for ${found.invitation.email}, which is not a usable email address. Ask the organization to invite you again.`,
        410,
      );
      return undefined;
    }
    return { token, ...found };
  }

  /** The account signed in at this tenant in this browser, if any (oidc-provider's session cookie). */
  async function signedInUser(ctx: Context) {
    const session = await ctx.state.runtime.provider.Session.get(ctx as never);
    return session.accountId ? deps.users.find(ctx.state.runtime.tenant.id, session.accountId) : undefined;
  }

  async function show(ctx: Context, inv: NonNullable<Awaited<ReturnType<typeof load>>>, extra: Record<string, unknown> = {}, status?: number) {
    const tenantId = ctx.state.runtime.tenant.id;
    const email = inv.invitation.email;
    const current = await signedInUser(ctx);
    if (current && !isInvitedAccount(inv.invitation, current)) {
      return message(
        ctx,
        'This invitation is for someone else',
        `You are signed in as ${current.email}, but this invitation is for ${email}. Sign out, then open the link again.`,
        409,
      );
    }
    const [existing, connection] = await Promise.all([
      current ?? inTenant(deps.db, tenantId, (tx) => findUserByEmail(tx, tenantId, email)),
      deps.connections.enabledFor(tenantId, inv.org.id),
    ]);
    page(
      ctx,
      'invitation.njk',
      {
        title: `Join ${inv.org.name}`,
        orgName: inv.org.name,
        role: inv.role.name,
        email,
        mode: current ? 'accept' : existing ? 'signin' : 'register',
        action: ctx.path,
        forgotUrl: `/t/${ctx.state.runtime.tenant.slug}/account/forgot-password`,
        // Joining through the organization's IdP, carrying this invitation (its link proves the mailbox).
        ssoName: current ? undefined : connection?.name,
        name: '',
        ...extra,
      },
      status,
    );
  }

  function joined(ctx: Context, orgName: string, mfa?: { mfa: 'enroll' | 'grace' | 'none'; graceUntil: Date | null }) {
    const paragraphs = [`You are now a member of ${orgName}. Sign in from your application to start working in it.`];
    if (mfa) {
      const from = mfa.mfa === 'grace' && mfa.graceUntil ? ` from ${mfa.graceUntil.toISOString().slice(0, 10)}` : '';
      paragraphs.push(
        `${orgName} requires a second factor${from}, and your account has none yet. When you sign in, you will be asked to set one up; you can also add an authenticator app now on your account's Security page.`,
      );
    }
    const link = mfa ? { href: `/t/${ctx.state.runtime.tenant.slug}/account/security`, text: 'Go to your Security page' } : undefined;
    page(ctx, 'message.njk', { title: `Welcome to ${orgName}`, paragraphs, link });
  }

  router.get('/:token', async (ctx) => {
    const inv = await load(ctx);
    if (inv) await show(ctx, inv);
  });

  router.post('/:token', async (ctx) => {
    const inv = await load(ctx);
    if (!inv) return;
    const { tenant } = ctx.state.runtime;
    const email = inv.invitation.email;
    const mode = formField(ctx, 'mode', 20);
    try {
      if (mode === 'accept') {
        const current = await signedInUser(ctx);
        if (!current || !isInvitedAccount(inv.invitation, current)) return show(ctx, inv);
        await inTenant(deps.db, tenant.id, (tx) => deps.invitations.acceptInvitation(tx, tenant.id, inv.token, current.id));
        return joined(ctx, inv.org.name);
      }
      if (mode === 'sso') {
        const to = await deps.sso.startForInvitation(ctx.state.runtime, inv.org.id, inv.invitation.id, email);
        if (!to) return show(ctx, inv, { error: 'The organization has no single sign-on to join with. Use a password instead.' }, 409);
        ctx.status = 303;
        return ctx.redirect(to);
      }
      if (mode === 'signin') {
        const password = formField(ctx, 'password', 256, false);
        const code = formField(ctx, 'code', 64);
        const settings = effectiveSettings(tenant.settings);
        const verdict = await deps.bruteForce.check(tenant.id, settings.brute_force, email, ctx.ip);
        const user = !verdict.ipBlocked ? await deps.users.authenticate(tenant.id, email, password) : undefined;
        if (!user || verdict.accountLocked) {
          await deps.bruteForce.recordFailure(tenant.id, settings.brute_force, email, ctx.ip, verdict);
          return show(ctx, inv, { error: 'Invalid email or password.', step: code ? 'code' : undefined }, 401);
        }
        // A person with a second factor gives its code too, as at sign-in. Nothing is kept between
        // the two submissions: the second one carries the password again with the code, and only
        // both together count as a success (a right password alone does not clear wrong codes).
        const confirmed = await deps.factors.confirmedKinds(tenant.id, user.id);
        const usable = usableKinds(settings, confirmed);
        // Factors of kinds the tenant no longer accepts still protect the account: a recovery code then.
        if (usable.size > 0 || (confirmed.length > 0 && !factorsTurnedOff(settings))) {
          // A passkey is not asked for on this page: whose only factor is one signs in to their
          // account with it and opens the link again (accepting as the signed-in person), or
          // gives a recovery code here.
          const codeStep = {
            step: 'code',
            passkeyOnly: usable.has('passkey') && !usable.has('totp'),
            recoveryOnly: usable.size === 0,
            accountUrl: `/t/${tenant.slug}/account/security`,
          };
          if (!code) return show(ctx, inv, codeStep);
          const accept = { totp: kindAllowed(settings, 'totp'), recovery: true };
          const checked = await deps.factors.verifySecondFactor(tenant.id, user.id, code, accept);
          if (!checked.ok) {
            await deps.bruteForce.recordFailure(tenant.id, settings.brute_force, email, ctx.ip, verdict);
            return show(ctx, inv, { ...codeStep, error: 'That code is not valid. Enter your password and a current code again.' }, 401);
          }
        }
        await deps.bruteForce.recordSuccess(tenant.id, email, verdict);
        await inTenant(deps.db, tenant.id, (tx) => deps.invitations.acceptInvitation(tx, tenant.id, inv.token, user.id));
        // Joined an organization (or a tenant) that will ask for a factor this person does not have: say what to do.
        const mfa = usable.size > 0 || factorsTurnedOff(settings) ? undefined : await deps.orgTokens.mfaAtSignIn(tenant.id, user.id, inv.org.id, settings.mfa);
        return joined(ctx, inv.org.name, mfa && mfa.mfa !== 'none' ? mfa : undefined);
      }
      if (mode === 'register') {
        const name = formField(ctx, 'name', 200);
        const password = formField(ctx, 'password', 1000, false);
        if (!name) return show(ctx, inv, { error: 'Enter your name.' }, 400);
        const problem = passwordProblem(password, { email });
        if (problem) throw new PasswordRejected(`The password ${problem}.`);
        const passwordHash = await hashPassword(password);
        const result = await inTenant(deps.db, tenant.id, async (tx) => {
          if (await findUserByEmail(tx, tenant.id, email)) return 'exists' as const;
          const user = await insertUser(tx, tenant.id, { email, name, password_hash: passwordHash, email_verified: true });
          await deps.invitations.acceptInvitation(tx, tenant.id, inv.token, user.id);
          return 'joined' as const;
        }).catch((err: unknown) => {
          // Lost a race with a registration through the same link a moment ago: the address is taken now.
          if (isUniqueViolation(err)) return 'exists' as const;
          throw err;
        });
        if (result === 'exists') return show(ctx, inv, { error: 'This email already has an account: sign in instead.' }, 409);
        return joined(ctx, inv.org.name);
      }
      return show(ctx, inv, {}, 400);
    } catch (err) {
      if (err instanceof PasswordRejected) return show(ctx, inv, { error: err.message }, 400);
      // The organization is full, or the invitation was used a moment ago: say so plainly.
      if (err instanceof AppError && err.status === 409) return message(ctx, 'Could not join', err.detail, 409);
      throw err;
    }
  });

  return router;
}
