import Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountSecurity } from '../accounts/account-security.service.ts';
import type { BruteForce } from '../accounts/brute-force.ts';
import { ACR } from '../auth-policy/policy.ts';
import type { Render } from '../base/views.ts';
import type { FactorService, TotpEnrollment } from '../factors/factor.service.ts';
import type { PasskeyService } from '../factors/passkeys.ts';
import { qrCodeDataUrl } from '../factors/qr-code.ts';
import { factorsTurnedOff, kindAllowed } from '../factors/tenant-factors.ts';
import { formField, renderPage } from '../http/pages.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { OrgTokens } from '../orgs/org-tokens.ts';
import { effectiveSettings } from '../tenants/settings.ts';
import { requestedOrganization } from './org-request.ts';
import { interactionBase, PASSKEY_SCRIPTS } from './passkey-offer.ts';
import { acrSatisfies, requestedAcrValues } from './requested-acr.ts';
import { finishSignIn, passkeyAnswer } from './sign-in-pages.ts';

/**
 * The state between a correct password and a factor set up within sign-in, kept on the
 * interaction (`lastSubmission`, as the code step's state is; see interactions.routes.ts) under
 * its own key: only the password step writes it, so no one reaches enrollment without the
 * password, and the code step's state never opens these pages (nor theirs the code step).
 *
 * - `optional`: the organization's grace period is running; the person may go on without a factor.
 * - `factorId`: the enrollment started for this sign-in (unconfirmed until the end).
 * - `passkey`: or a passkey was registered instead (views/assets/passkeys.js runs the ceremony);
 *   unlike an app, it counts from its registration: the device that made it is the proof.
 * - `recoveryCodeHashes`: once the first code was right (or the passkey made), the codes shown,
 *   stored only when the person says they saved them. Leaving before that leaves no confirmed
 *   app (a passkey stays: it works).
 */
interface PendingEnrollment {
  accountId: string;
  email: string;
  optional?: { orgName: string; graceUntil: string };
  factorId?: string;
  /** A passkey registered within this sign-in: it counts from then on, and signs this sign-in in with it. */
  passkey?: { factorId: string; amr: string[] };
  recoveryCodeHashes?: string[];
}
const ENROLL_KEY = 'tessera_pending_enrollment';

type Details = Awaited<ReturnType<Context['state']['runtime']['provider']['interactionDetails']>>;

function pendingEnrollment(details: Details): PendingEnrollment | undefined {
  if (details.prompt.name !== 'login') return undefined;
  const p = details.lastSubmission?.[ENROLL_KEY] as Partial<PendingEnrollment> | undefined;
  if (typeof p?.accountId !== 'string' || typeof p.email !== 'string') return undefined;
  return p as PendingEnrollment;
}

async function savePending(details: Details, pending: PendingEnrollment) {
  details.lastSubmission = { [ENROLL_KEY]: pending };
  await details.persist();
}

const INVALID_CODE = 'That code is not valid. Check the time on your phone and enter the current code.';

/** "7 December 2026": the day a grace period ends, in UTC as the Admin API gives it. */
function graceDate(iso: string) {
  return new Date(iso).toLocaleDateString('en-GB', { timeZone: 'UTC', day: 'numeric', month: 'long', year: 'numeric' });
}

/**
 * Setting up a second factor within sign-in, for a person who must have one and has none (tenant
 * `mfa: required`, or the requested organization requires MFA and its grace period is over), and
 * the reminder shown while an organization's grace period runs. Mounted beside the sign-in pages
 * at /t/<slug>/interaction/<uid>/mfa/enroll and /mfa/reminder.
 */
export function mfaEnrollment(deps: {
  factors: FactorService;
  passkeys: PasskeyService;
  security: AccountSecurity;
  orgTokens: OrgTokens;
  bruteForce: BruteForce;
  render: Render;
  metrics: Metrics;
}) {
  const router = new Router();
  const base = interactionBase;
  const page = (ctx: Context, template: string, context: Record<string, unknown>, status?: number) => renderPage(ctx, deps.render, template, context, status);
  const settingsOf = (ctx: Context) => effectiveSettings(ctx.state.runtime.tenant.settings);

  /**
   * Called by the password step for a person with no factor that counts: where they go next, or
   * undefined when the password alone finishes the sign-in. With `mfa: off` no factor is asked.
   */
  async function stepAfterPassword(ctx: Context, details: Details, accountId: string, email: string): Promise<string | undefined> {
    const settings = settingsOf(ctx);
    if (factorsTurnedOff(settings)) return undefined;
    let optional: PendingEnrollment['optional'];
    // An app asking for a two-factor sign-in (acr_values, its step-up) gets one: set up here.
    const requestedAcr = requestedAcrValues(details.params);
    const appAsksForMfa = requestedAcr.includes(ACR.mfa) && !acrSatisfies(ACR.pwd, requestedAcr);
    if (settings.mfa !== 'required' && !appAsksForMfa) {
      const requested = requestedOrganization(details.params);
      const org = requested ? await deps.orgTokens.mfaAtSignIn(ctx.state.runtime.tenant.id, accountId, requested, settings.mfa) : undefined;
      if (!org || org.mfa === 'none') return undefined;
      if (org.mfa === 'grace' && org.graceUntil) optional = { orgName: org.orgName, graceUntil: org.graceUntil.toISOString() };
    }
    await savePending(details, { accountId, email, ...(optional ? { optional } : {}) });
    return `${base(ctx, details.uid)}/mfa/${optional ? 'reminder' : 'enroll'}`;
  }

  function notWaiting(ctx: Context) {
    page(ctx, 'error.njk', { title: 'Sign in first', detail: 'This sign-in is not setting up a second factor. Start again from the application.' }, 400);
  }

  async function finish(ctx: Context, accountId: string, amr: string[], acr: string) {
    const to = await finishSignIn(ctx, accountId, { amr, acr });
    deps.metrics.signIn('password', 'signed_in');
    ctx.status = 303;
    ctx.redirect(to);
  }

  /**
   * "Add a passkey instead", where the tenant allows passkeys: registration options whose
   * challenge is stored for this person (5 minutes, one answer), for the page's script.
   */
  async function passkeyOffer(ctx: Context, uid: string, pending: PendingEnrollment): Promise<Record<string, unknown>> {
    const { tenant } = ctx.state.runtime;
    if (!kindAllowed(settingsOf(ctx), 'passkey')) return {};
    const options = await deps.passkeys.registrationOptions(tenant.id, { id: pending.accountId, email: pending.email, name: null }, tenant.name);
    return { passkey: { action: `${base(ctx, uid)}/mfa/enroll/passkey`, options: JSON.stringify(options) }, scripts: PASSKEY_SCRIPTS };
  }

  const common = (ctx: Context, uid: string, pending: PendingEnrollment) => ({
    title: 'Set up a second factor',
    restartUrl: base(ctx, uid),
    abortUrl: `${base(ctx, uid)}/abort`,
    laterAction: pending.optional ? `${base(ctx, uid)}/mfa/reminder/later` : undefined,
    requiredBy: pending.optional?.orgName,
  });

  async function appPage(
    ctx: Context,
    uid: string,
    pending: PendingEnrollment,
    enrollment: TotpEnrollment,
    extra: Record<string, unknown> = {},
    status?: number,
  ) {
    page(
      ctx,
      'mfa-enroll.njk',
      {
        ...common(ctx, uid, pending),
        stage: 'app',
        action: `${base(ctx, uid)}/mfa/enroll`,
        secret: enrollment.secret,
        uri: enrollment.uri,
        qrCode: await qrCodeDataUrl(enrollment.uri),
        ...(await passkeyOffer(ctx, uid, pending)),
        ...extra,
      },
      status,
    );
  }

  /** Only passkeys are allowed: the page offers just the passkey (without scripts it says what to do). */
  async function passkeyOnlyPage(ctx: Context, uid: string, pending: PendingEnrollment, extra: Record<string, unknown> = {}, status?: number) {
    page(ctx, 'mfa-enroll.njk', { ...common(ctx, uid, pending), stage: 'passkey_only', ...(await passkeyOffer(ctx, uid, pending)), ...extra }, status);
  }

  /** The recovery codes, shown now and never again; they are stored when the person says they saved them. */
  async function codesPage(ctx: Context, details: Details, pending: PendingEnrollment, extra: Record<string, unknown> = {}, status?: number) {
    const { codes, hashes } = deps.factors.draftRecoveryCodes();
    await savePending(details, { ...pending, recoveryCodeHashes: hashes });
    page(
      ctx,
      'mfa-enroll.njk',
      { ...common(ctx, details.uid, pending), stage: 'codes', action: `${base(ctx, details.uid)}/mfa/enroll/finish`, recoveryCodes: codes, ...extra },
      status,
    );
  }

  router.get('/:uid/mfa/reminder', async (ctx) => {
    const details = await ctx.state.runtime.provider.interactionDetails(ctx.req, ctx.res);
    const pending = pendingEnrollment(details);
    if (!pending) return notWaiting(ctx);
    if (!pending.optional) return ctx.redirect(`${base(ctx, details.uid)}/mfa/enroll`);
    page(ctx, 'mfa-reminder.njk', {
      title: 'Second factor required soon',
      orgName: pending.optional.orgName,
      graceUntil: pending.optional.graceUntil,
      graceDate: graceDate(pending.optional.graceUntil),
      enrollUrl: `${base(ctx, details.uid)}/mfa/enroll`,
      laterAction: `${base(ctx, details.uid)}/mfa/reminder/later`,
    });
  });

  /** "Later": only while the grace period runs (the pending state says so); otherwise there is no way around enrollment. */
  router.post('/:uid/mfa/reminder/later', async (ctx) => {
    const details = await ctx.state.runtime.provider.interactionDetails(ctx.req, ctx.res);
    const pending = pendingEnrollment(details);
    if (!pending) return notWaiting(ctx);
    if (!pending.optional) {
      return page(ctx, 'error.njk', { title: 'A second factor is required', detail: 'Set up a second factor to finish signing in.' }, 403);
    }
    await finish(ctx, pending.accountId, ['pwd'], ACR.pwd);
  });

  /** The enrollment page as it stands: the codes once a factor is made, else an app (and a passkey), or a passkey only. */
  async function enrollPage(ctx: Context, details: Details, pending: PendingEnrollment, extra: Record<string, unknown> = {}, status?: number) {
    const { tenant } = ctx.state.runtime;
    if (pending.recoveryCodeHashes) return codesPage(ctx, details, pending);
    if (!kindAllowed(settingsOf(ctx), 'totp')) return passkeyOnlyPage(ctx, details.uid, pending, extra, status);
    let enrollment = pending.factorId
      ? await deps.factors.unconfirmedEnrollment(tenant.id, pending.accountId, pending.factorId, tenant.name, pending.email)
      : undefined;
    if (!enrollment) {
      enrollment = await deps.factors.startTotp(tenant.id, pending.accountId, tenant.name, pending.email);
      await savePending(details, { ...pending, factorId: enrollment.factorId });
    }
    await appPage(ctx, details.uid, pending, enrollment, extra, status);
  }

  router.get('/:uid/mfa/enroll', async (ctx) => {
    const details = await ctx.state.runtime.provider.interactionDetails(ctx.req, ctx.res);
    const pending = pendingEnrollment(details);
    if (!pending) return notWaiting(ctx);
    await enrollPage(ctx, details, pending);
  });

  /** The first code from the app. A wrong one counts toward the account's lock like a wrong password. */
  router.post('/:uid/mfa/enroll', async (ctx) => {
    const { provider, tenant } = ctx.state.runtime;
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const pending = pendingEnrollment(details);
    if (!pending) return notWaiting(ctx);
    const settings = settingsOf(ctx);
    if (!kindAllowed(settings, 'totp') || !pending.factorId || pending.recoveryCodeHashes) {
      ctx.status = 303;
      return ctx.redirect(`${base(ctx, details.uid)}/mfa/enroll`);
    }
    const code = formField(ctx, 'code', 20);
    const verdict = await deps.bruteForce.check(tenant.id, settings.brute_force, pending.email, ctx.ip);
    const ok =
      !verdict.ipBlocked && !verdict.accountLocked && code
        ? await deps.factors.checkEnrollmentCode(tenant.id, pending.accountId, pending.factorId, code)
        : false;
    if (!ok) {
      await deps.bruteForce.recordFailure(tenant.id, settings.brute_force, pending.email, ctx.ip, verdict);
      const enrollment = await deps.factors.unconfirmedEnrollment(tenant.id, pending.accountId, pending.factorId, tenant.name, pending.email);
      if (!enrollment) return notWaiting(ctx);
      const error = verdict.ipBlocked || verdict.accountLocked ? 'Too many wrong codes. Wait a few minutes, then try again.' : INVALID_CODE;
      return appPage(ctx, details.uid, pending, enrollment, { error }, 401);
    }
    await deps.bruteForce.recordSuccess(tenant.id, pending.email, verdict);
    await codesPage(ctx, details, pending);
  });

  /**
   * A passkey made instead of an app: the browser's answer to the options `passkeyOffer` gave.
   * It is registered at once (challenge bound to this person, spent whatever the outcome); then
   * the recovery codes, as for an app.
   */
  router.post('/:uid/mfa/enroll/passkey', async (ctx) => {
    const { tenant } = ctx.state.runtime;
    const details = await ctx.state.runtime.provider.interactionDetails(ctx.req, ctx.res);
    const pending = pendingEnrollment(details);
    if (!pending) return notWaiting(ctx);
    if (!kindAllowed(settingsOf(ctx), 'passkey') || pending.recoveryCodeHashes) {
      ctx.status = 303;
      return ctx.redirect(`${base(ctx, details.uid)}/mfa/enroll`);
    }
    const result = await deps.passkeys.register(tenant.id, pending.accountId, passkeyAnswer(ctx), '');
    if (!result.ok) {
      const error = result.refused === 'already_registered' ? 'That passkey is already registered.' : 'That passkey could not be set up. Try again.';
      return enrollPage(ctx, details, pending, { error }, result.refused === 'already_registered' ? 409 : 400);
    }
    await deps.security.factorAdded(tenant.id, pending.email, 'passkey');
    const withPasskey = { ...pending, passkey: { factorId: result.factor.id, amr: result.amr } };
    await codesPage(ctx, details, withPasskey);
  });

  /** "I have saved these codes": the factor and its codes now count, and the sign-in finishes with both factors. */
  router.post('/:uid/mfa/enroll/finish', async (ctx) => {
    const { provider, tenant } = ctx.state.runtime;
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const pending = pendingEnrollment(details);
    if (!(pending?.factorId || pending?.passkey) || !pending.recoveryCodeHashes) return notWaiting(ctx);
    if (formField(ctx, 'saved', 10) !== 'yes') {
      // The codes shown before were never stored: new ones, shown again, lose nothing.
      return codesPage(ctx, details, pending, { error: 'Confirm that you saved your recovery codes.' }, 400);
    }
    if (pending.passkey) {
      if (!(await deps.factors.saveRecoveryCodes(tenant.id, pending.accountId, pending.recoveryCodeHashes))) return notWaiting(ctx);
      return finish(ctx, pending.accountId, ['pwd', ...pending.passkey.amr, 'mfa'], ACR.mfa);
    }
    if (!(await deps.factors.completeEnrollment(tenant.id, pending.accountId, pending.factorId!, pending.recoveryCodeHashes))) return notWaiting(ctx);
    await deps.security.factorAdded(tenant.id, pending.email, 'totp');
    await finish(ctx, pending.accountId, ['pwd', 'otp', 'mfa'], ACR.mfa);
  });

  return { routes: router, stepAfterPassword };
}

export type MfaEnrollment = ReturnType<typeof mfaEnrollment>;
