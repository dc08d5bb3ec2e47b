import type { Context } from 'koa';
import type { PasskeyService } from '../factors/passkeys.ts';
import { effectiveSettings } from '../tenants/settings.ts';

/**
 * What the sign-in pages need to offer passkeys (the routes that answer are in passkey.routes.ts):
 * nothing at all when the tenant's `mfa_factors` leaves passkeys out.
 */

export const interactionBase = (ctx: Context, uid: string) => `/t/${ctx.state.runtime.tenant.slug}/interaction/${encodeURIComponent(uid)}`;

/** The scripts of a page that runs a passkey ceremony: the WebAuthn browser library, then ours. */
export const PASSKEY_SCRIPTS = ['webauthn.js', 'passkeys.js'];

/** Whether the tenant lets people use passkeys at all (tenant setting `mfa_factors`). */
export const passkeysAllowed = (ctx: Context) => effectiveSettings(ctx.state.runtime.tenant.settings).mfa_factors.includes('passkey');

/** What the email-first page needs to offer "Sign in with a passkey" and autofill (nothing when passkeys are off). */
export function passkeySignInOffer(ctx: Context, uid: string): Record<string, unknown> {
  if (!passkeysAllowed(ctx)) return {};
  const base = interactionBase(ctx, uid);
  return { passkey: { optionsUrl: `${base}/passkey/options`, action: `${base}/passkey` }, scripts: PASSKEY_SCRIPTS };
}

/**
 * What the code step needs to offer "Use a passkey", when the person has one and the tenant allows
 * them. `only`: the person has no authenticator app, so the page does not ask for its code.
 */
export async function passkeySecondFactorOffer(ctx: Context, passkeys: PasskeyService, uid: string, accountId: string): Promise<Record<string, unknown>> {
  if (!passkeysAllowed(ctx)) return {};
  const kinds = await passkeys.factorKinds(ctx.state.runtime.tenant.id, accountId);
  if (!kinds.has('passkey')) return {};
  const base = interactionBase(ctx, uid);
  return { passkey: { optionsUrl: `${base}/mfa/passkey/options`, action: `${base}/mfa/passkey`, only: !kinds.has('totp') }, scripts: PASSKEY_SCRIPTS };
}
