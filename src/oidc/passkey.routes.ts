import Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountService } from '../accounts/account.service.ts';
import type { BruteForce, Verdict } from '../accounts/brute-force.ts';
import { ACR } from '../auth-policy/policy.ts';
import { BadRequest, NotFound } from '../base/errors.ts';
import type { Render } from '../base/views.ts';
import type { FactorService } from '../factors/factor.service.ts';
import type { AssertionResult, PasskeyService, StoredChallenge } from '../factors/passkeys.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { SsoRouter } from '../sso/sso-router.ts';
import { effectiveSettings } from '../tenants/settings.ts';
import type { UserService } from '../users/user.service.ts';
import { interactionBase, passkeysAllowed } from './passkey-offer.ts';
import { codeStepPage, confirmEmailFirstPage, finishSignIn, loginPage, type PendingSecondFactor, passkeyAnswer, pendingSecondFactor } from './sign-in-pages.ts';

/** The sign-in challenge rides on the interaction, beside the pending second factor (see interactions.routes.ts). */
const CHALLENGE_KEY = 'tessera_passkey_challenge';

const PASSKEY_REFUSED = 'That passkey did not sign you in. Try again, or use another way.';
const PASSKEY_EXPIRED = 'The passkey request expired or was already used. Try again.';

type Details = Awaited<ReturnType<Context['state']['runtime']['provider']['interactionDetails']>>;

/** Keeps a new challenge on the interaction (replacing any earlier one), beside what is already there. */
async function keepChallenge(details: Details, stored: StoredChallenge) {
  details.lastSubmission = { ...(details.lastSubmission ?? {}), [CHALLENGE_KEY]: stored };
  await details.persist();
}

/**
 * Takes the interaction's challenge away before anything is verified, so that it answers one
 * assertion only, right or wrong. Undefined when there is none, it is for the other step, or it
 * expired.
 */
async function spendChallenge(details: Details, purpose: StoredChallenge['purpose']): Promise<string | undefined> {
  const stored = details.lastSubmission?.[CHALLENGE_KEY] as Partial<StoredChallenge> | undefined;
  if (!stored) return undefined;
  const { [CHALLENGE_KEY]: _spent, ...rest } = details.lastSubmission!;
  details.lastSubmission = rest;
  await details.persist();
  if (stored.purpose !== purpose || typeof stored.challenge !== 'string' || typeof stored.expiresAt !== 'number' || stored.expiresAt <= Date.now()) {
    return undefined;
  }
  return stored.challenge;
}

/** Only the address counts: no account was named (an unknown credential). */
const addressOnly = (verdict: Verdict): Verdict => ({ ...verdict, accountLocked: true });

/**
 * Passkeys at sign-in, mounted beside the interaction routes at /t/<slug>/interaction/<uid>:
 * - `POST /passkey/options` and `POST /passkey`: passwordless, from the email-first page, with
 *   user verification required. Same rails as a password: brute-force block, SSO required for
 *   the email's organization, disabled account, email verification.
 * - `POST /mfa/passkey/options` and `POST /mfa/passkey`: the second factor after the password,
 *   for one of that person's passkeys only; a failure counts like a wrong code.
 * Options are JSON (fetched by views/assets/passkeys.js); answers are form posts whose refusals
 * are pages with a 4xx.
 */
export function passkeyRoutes(deps: {
  passkeys: PasskeyService;
  factors: FactorService;
  users: UserService;
  accounts: AccountService;
  bruteForce: BruteForce;
  sso: SsoRouter;
  render: Render;
  metrics: Metrics;
}) {
  const router = new Router();
  const settingsOf = (ctx: Context) => effectiveSettings(ctx.state.runtime.tenant.settings);

  function refuseUnlessAllowed(ctx: Context) {
    if (!passkeysAllowed(ctx)) throw NotFound('Passkeys are not offered here.');
  }

  const signInPage = (ctx: Context, details: Details, error: string, status: number) => loginPage(ctx, deps.render, deps.sso, details, { error }, status);
  const secondFactorPage = (ctx: Context, details: Details, pending: PendingSecondFactor, error: string, status: number) =>
    codeStepPage(ctx, deps.render, deps.factors, details.uid, pending, 'totp', { error }, status);

  async function loginPrompt(ctx: Context) {
    const details = await ctx.state.runtime.provider.interactionDetails(ctx.req, ctx.res);
    if (details.prompt.name !== 'login') throw BadRequest('This sign-in is not waiting for a passkey. Start again from the application.');
    return details;
  }

  async function finish(ctx: Context, accountId: string, amr: string[]) {
    const to = await finishSignIn(ctx, accountId, { amr, acr: ACR.mfa });
    ctx.status = 303;
    ctx.redirect(to);
  }

  // ── passwordless ───────────────────────────────────────────────────────────

  router.post('/:uid/passkey/options', async (ctx) => {
    refuseUnlessAllowed(ctx);
    const details = await loginPrompt(ctx);
    const { options, stored } = await deps.passkeys.authenticationOptions(ctx.state.runtime.tenant.id, { purpose: 'signin' });
    await keepChallenge(details, stored);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = options;
  });

  router.post('/:uid/passkey', async (ctx) => {
    const { tenant } = ctx.state.runtime;
    refuseUnlessAllowed(ctx);
    const details = await loginPrompt(ctx);
    const answer = passkeyAnswer(ctx);
    const challenge = await spendChallenge(details, 'signin');
    if (!challenge) return signInPage(ctx, details, PASSKEY_EXPIRED, 400);
    const settings = settingsOf(ctx);
    const ownerId = await deps.passkeys.ownerOf(tenant.id, answer);
    const owner = ownerId ? await deps.users.find(tenant.id, ownerId) : undefined;
    const email = owner?.email ?? '';
    const verdict = await deps.bruteForce.check(tenant.id, settings.brute_force, email, ctx.ip);
    const blocked = verdict.ipBlocked || verdict.accountLocked;
    const result: AssertionResult =
      owner && !blocked
        ? await deps.passkeys.verifyAssertion(tenant.id, answer, { challenge, userId: owner.id, requireUserVerification: true })
        : { ok: false, refused: 'unknown_credential' };
    if (!result.ok || !owner) {
      deps.metrics.signIn('passkey', blocked ? 'locked' : 'invalid_credentials');
      await deps.bruteForce.recordFailure(tenant.id, settings.brute_force, email, ctx.ip, owner ? verdict : addressOnly(verdict));
      return signInPage(ctx, details, PASSKEY_REFUSED, 401);
    }
    await deps.bruteForce.recordSuccess(tenant.id, email, verdict);
    // The rails of a password sign-in, checked once the passkey proved whose account this is.
    const sso = await deps.sso.requiredFor(ctx.state.runtime, email, details.uid);
    if (sso.required) {
      deps.metrics.signIn('passkey', 'sso_required');
      if (sso.redirect) return ctx.redirect(sso.redirect);
      return signInPage(ctx, details, 'Your organization requires single sign-on, which is not available right now. Contact your administrator.', 403);
    }
    if (owner.disabled) {
      deps.metrics.signIn('passkey', 'invalid_credentials');
      return signInPage(ctx, details, PASSKEY_REFUSED, 401);
    }
    if (settings.email_verification_required && !owner.email_verified) {
      deps.metrics.signIn('passkey', 'email_unverified');
      await deps.accounts.requestVerification(tenant.id, owner.email);
      return confirmEmailFirstPage(ctx, deps.render, owner.email, interactionBase(ctx, details.uid));
    }
    deps.metrics.signIn('passkey', 'signed_in');
    // A passkey with user verification is two factors in one: something you have, and a PIN or
    // biometric that unlocked it.
    await finish(ctx, owner.id, [...result.amr, 'mfa']);
  });

  // ── second factor ──────────────────────────────────────────────────────────

  async function pendingOrRefuse(ctx: Context) {
    refuseUnlessAllowed(ctx);
    const details = await ctx.state.runtime.provider.interactionDetails(ctx.req, ctx.res);
    const pending = pendingSecondFactor(details);
    if (!pending) throw BadRequest('This sign-in is not waiting for a second factor. Start again from the application.');
    return { details, pending };
  }

  router.post('/:uid/mfa/passkey/options', async (ctx) => {
    const { details, pending } = await pendingOrRefuse(ctx);
    const { options, stored } = await deps.passkeys.authenticationOptions(ctx.state.runtime.tenant.id, { userId: pending.accountId, purpose: 'mfa' });
    if (options.allowCredentials?.length === 0) throw NotFound('You have no passkey here.');
    await keepChallenge(details, stored);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = options;
  });

  router.post('/:uid/mfa/passkey', async (ctx) => {
    const { tenant } = ctx.state.runtime;
    const { details, pending } = await pendingOrRefuse(ctx);
    const answer = passkeyAnswer(ctx);
    const challenge = await spendChallenge(details, 'mfa');
    if (!challenge) return secondFactorPage(ctx, details, pending, PASSKEY_EXPIRED, 400);
    const settings = settingsOf(ctx);
    const verdict = await deps.bruteForce.check(tenant.id, settings.brute_force, pending.email, ctx.ip);
    const blocked = verdict.ipBlocked || verdict.accountLocked;
    // Only the person who gave the password: another person's passkey is not found.
    const result: AssertionResult = blocked
      ? { ok: false, refused: 'invalid' }
      : await deps.passkeys.verifyAssertion(tenant.id, answer, { challenge, userId: pending.accountId, requireUserVerification: false });
    if (!result.ok) {
      deps.metrics.signIn('password', blocked ? 'locked' : 'invalid_credentials');
      await deps.bruteForce.recordFailure(tenant.id, settings.brute_force, pending.email, ctx.ip, verdict);
      return secondFactorPage(ctx, details, pending, PASSKEY_REFUSED, 401);
    }
    await deps.bruteForce.recordSuccess(tenant.id, pending.email, verdict);
    deps.metrics.signIn('password', 'signed_in');
    await finish(ctx, pending.accountId, ['pwd', ...result.amr, 'mfa']);
  });

  return router;
}
