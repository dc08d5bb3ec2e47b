import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { NotFound, ValidationFailed } from '../base/errors.ts';
import { isUuid } from '../base/ids.ts';
import type { Render } from '../base/views.ts';
import { PASSKEY_NAME_MAX, type PasskeyService } from '../factors/passkeys.ts';
import { formField } from '../http/pages.ts';
import { PASSKEY_SCRIPTS, passkeysAllowed } from '../oidc/passkey-offer.ts';
import { passkeyAnswer } from '../oidc/sign-in-pages.ts';
import { noticeFor, portalPage, redirectWithNotice } from '../portal/forms.ts';
import { effectiveSettings } from '../tenants/settings.ts';
import type { AccountSecurity } from './account-security.service.ts';

const REFUSALS: Record<string, string> = {
  expired: 'The passkey request expired or was already used. Start again.',
  malformed: 'Your browser sent something that is not a passkey. Start again.',
  invalid: 'That passkey could not be checked (wrong site, or the request was changed). Start again.',
  already_registered: 'That passkey is already registered.',
  unknown_credential: 'That passkey could not be checked. Start again.',
  counter_regressed: 'That passkey could not be checked. Start again.',
};

/**
 * Adding and renaming passkeys on the account's Security page (/t/<slug>/account/security/…):
 * - `POST /security/passkeys`: the current password again, then a page that runs the ceremony
 *   (views/assets/passkeys.js) with options whose challenge is stored for this person;
 * - `POST /security/passkeys/verify`: the authenticator's answer; the passkey is stored and the
 *   person mailed;
 * - `POST /security/factors/<id>/rename`.
 * Removing a passkey is the Security page's "Remove", as for any factor.
 */
export function passkeyPages(deps: { guard: Middleware; passkeys: PasskeyService; security: AccountSecurity; render: Render }) {
  const router = new Router();
  const page = portalPage(deps.render);
  const securityUrl = (ctx: Context) => `/t/${ctx.state.runtime.tenant.slug}/account/security`;
  const { guard } = deps;

  const addPage = (ctx: Context, extra: Record<string, unknown>, status = 200) =>
    page(
      ctx,
      'account/passkey-add.njk',
      { section: 'account', tab: 'security', title: 'Add a passkey', email: ctx.state.viewer.user.email, notice: noticeFor(ctx, {}), ...extra },
      status,
    );

  const refuseUnlessAllowed = (ctx: Context) => {
    if (!passkeysAllowed(ctx)) throw NotFound('Passkeys are not offered here.');
  };

  router.post('/security/passkeys', guard, async (ctx) => {
    refuseUnlessAllowed(ctx);
    const { user } = ctx.state.viewer;
    const { tenant } = ctx.state.runtime;
    const name = formField(ctx, 'name', PASSKEY_NAME_MAX);
    const password = formField(ctx, 'current_password', 256, false);
    const outcome = password
      ? await deps.security.reauthenticate(tenant.id, user.id, password, { ip: ctx.ip, bruteForce: effectiveSettings(tenant.settings).brute_force })
      : 'wrong_password';
    if (outcome !== 'ok') {
      const formError = outcome === 'locked' ? 'Too many wrong passwords. Wait a few minutes, then try again.' : 'That is not your current password.';
      return addPage(ctx, { name, formError }, outcome === 'locked' ? 429 : 422);
    }
    const options = await deps.passkeys.registrationOptions(tenant.id, user, tenant.name);
    addPage(ctx, { name, options: JSON.stringify(options), scripts: PASSKEY_SCRIPTS });
  });

  router.post('/security/passkeys/verify', guard, async (ctx) => {
    refuseUnlessAllowed(ctx);
    const { user } = ctx.state.viewer;
    const { tenant } = ctx.state.runtime;
    const name = formField(ctx, 'name', PASSKEY_NAME_MAX);
    const result = await deps.passkeys.register(tenant.id, user.id, passkeyAnswer(ctx), name);
    if (!result.ok) return addPage(ctx, { name, formError: REFUSALS[result.refused] }, result.refused === 'already_registered' ? 409 : 400);
    await deps.security.factorAdded(tenant.id, user.email, 'passkey');
    redirectWithNotice(ctx, securityUrl(ctx), 'passkey_added');
  });

  router.post('/security/factors/:factorId/rename', guard, async (ctx) => {
    const id = String(ctx.params.factorId);
    if (!isUuid(id)) throw NotFound('No such factor of yours.');
    const renamed = await deps.passkeys.rename(ctx.state.runtime.tenant.id, ctx.state.viewer.user.id, id, formField(ctx, 'name', 200));
    if (!renamed) throw ValidationFailed('Enter a name for the factor.');
    redirectWithNotice(ctx, securityUrl(ctx), 'factor_renamed');
  });

  return router;
}
