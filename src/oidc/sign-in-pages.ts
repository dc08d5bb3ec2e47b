import type { Context } from 'koa';
import { BadRequest } from '../base/errors.ts';
import type { Render } from '../base/views.ts';
import type { FactorService } from '../factors/factor.service.ts';
import type { FactorKind } from '../factors/factor.table.ts';
import { parseCredentialJson, UnreadableCredential } from '../factors/passkeys.ts';
import { usableKinds } from '../factors/tenant-factors.ts';
import { formField, renderPage } from '../http/pages.ts';
import type { OrgSignIn, SsoRouter } from '../sso/sso-router.ts';
import { effectiveSettings } from '../tenants/settings.ts';
import { requestedOrganization } from './org-request.ts';
import { interactionBase, passkeySecondFactorOffer, passkeySignInOffer } from './passkey-offer.ts';

/**
 * The pages and state the sign-in's steps share (the password step, the code step, passkeys,
 * setting up a factor): one place builds each page, whichever step shows it.
 */

/**
 * The state between a correct password and the second factor, kept on the interaction itself
 * (`lastSubmission`, which oidc-provider persists with it but never treats as a result): bound to
 * this interaction and, through the interaction cookie, to this browser. Only the password step
 * writes it, so there is no way to the code step without the password.
 */
export interface PendingSecondFactor {
  accountId: string;
  email: string;
  /** The kinds of factor the person had that count here, read at the password step: what the page offers (a check still reads the factors). */
  kinds?: FactorKind[];
}
export const PENDING_SECOND_FACTOR = 'tessera_pending_second_factor';

export function pendingSecondFactor(details: { prompt: { name: string }; lastSubmission?: Record<string, unknown> }): PendingSecondFactor | undefined {
  if (details.prompt.name !== 'login') return undefined;
  const pending = details.lastSubmission?.[PENDING_SECOND_FACTOR] as Partial<PendingSecondFactor> | undefined;
  if (typeof pending?.accountId !== 'string' || typeof pending.email !== 'string') return undefined;
  return { accountId: pending.accountId, email: pending.email, ...(Array.isArray(pending.kinds) ? { kinds: pending.kinds } : {}) };
}

/** The organization `organization=` names, when it is one of this tenant that signs people in. */
export function namedOrganization(ctx: Context, sso: SsoRouter, details: { params: Record<string, unknown> }): Promise<OrgSignIn | undefined> {
  const requested = requestedOrganization(details.params);
  return requested ? sso.organizationSignIn(ctx.state.runtime, requested) : Promise.resolve(undefined);
}

/**
 * The email-first sign-in page of this interaction (and its password step, with `step: 'password'`
 * in `extra`), branded for the organization the request names: its name, its logo, its SSO
 * first. For any other request — no organization, or one that is unknown, another tenant's,
 * suspended or pending — the tenant's own page, the same as without the parameter. `known`: the
 * organization already looked up for this request (null: none).
 */
export async function loginPage(
  ctx: Context,
  render: Render,
  sso: SsoRouter,
  details: { uid: string; params: Record<string, unknown> },
  extra: Record<string, unknown> = {},
  status?: number,
  known?: OrgSignIn | null,
) {
  const { tenant, provider } = ctx.state.runtime;
  const base = interactionBase(ctx, details.uid);
  const org = known === undefined ? await namedOrganization(ctx, sso, details) : (known ?? undefined);
  const clientId = details.params.client_id;
  const client = typeof clientId === 'string' ? await provider.Client.find(clientId) : undefined;
  renderPage(
    ctx,
    render,
    'login.njk',
    {
      title: 'Sign in',
      clientName: client?.clientName ?? client?.clientId ?? 'the application',
      action: `${base}/login`,
      identifyUrl: `${base}/identify`,
      restartUrl: base,
      abortUrl: `${base}/abort`,
      forgotUrl: `/t/${tenant.slug}/account/forgot-password`,
      registerUrl: effectiveSettings(tenant.settings).registration_enabled ? `${base}/register` : undefined,
      email: typeof details.params.login_hint === 'string' ? details.params.login_hint : '',
      ...passkeySignInOffer(ctx, details.uid),
      ...(org ? { org: { name: org.name, logoUrl: org.logoUrl, ssoUrl: org.hasSso ? `${base}/sso` : undefined } } : {}),
      ...extra,
    },
    status,
  );
}

/**
 * The code step's page for this pending sign-in: the method chosen (`totp` or `recovery`) — or
 * recovery codes only when none of the person's factors is a kind the tenant accepts now
 * (`recoveryOnly` says why) — and a passkey where the person has one.
 */
export async function codeStepPage(
  ctx: Context,
  render: Render,
  factors: FactorService,
  uid: string,
  pending: PendingSecondFactor,
  chosen: 'totp' | 'recovery',
  extra: Record<string, unknown> = {},
  status?: number,
) {
  const base = interactionBase(ctx, uid);
  const recoveryOnly = pending.kinds !== undefined && usableKinds(effectiveSettings(ctx.state.runtime.tenant.settings), pending.kinds).size === 0;
  renderPage(
    ctx,
    render,
    'mfa.njk',
    {
      title: 'Second step',
      action: `${base}/mfa`,
      restartUrl: base,
      abortUrl: `${base}/abort`,
      ...(recoveryOnly ? { method: 'recovery', recoveryOnly: true } : { method: chosen }),
      ...(await passkeySecondFactorOffer(ctx, factors, uid, pending)),
      ...extra,
    },
    status,
  );
}

/** Ends the login prompt as `accountId`, signed in with these methods; answers where the browser goes next. */
export function finishSignIn(ctx: Context, accountId: string, shown: { amr: string[]; acr: string }): Promise<string> {
  return ctx.state.runtime.provider.interactionResult(ctx.req, ctx.res, { login: { accountId, ...shown } }, { mergeWithLastSubmission: false });
}

/**
 * The page of a sign-in stopped because the tenant asks for a verified email and this account's
 * is not (a new confirmation link was just mailed): the same page whatever proved the account
 * (a password, a passkey).
 */
export function confirmEmailFirstPage(ctx: Context, render: Render, email: string, backToSignIn: string) {
  renderPage(
    ctx,
    render,
    'message.njk',
    {
      title: 'Confirm your email first',
      paragraphs: [`We have sent a confirmation link to ${email}. Open it, then sign in again.`],
      link: { href: backToSignIn, text: 'Back to sign in' },
    },
    403,
  );
}

/** The browser's answer to a passkey ceremony, posted as the form field `response` (JSON). Missing or unreadable JSON is a 400. */
export function passkeyAnswer(ctx: Context): unknown {
  const text = formField(ctx, 'response', 12_000, false);
  if (!text) throw BadRequest('No passkey answer was sent.');
  try {
    return parseCredentialJson(text);
  } catch (err) {
    if (err instanceof UnreadableCredential) throw BadRequest(err.message);
    throw err;
  }
}
