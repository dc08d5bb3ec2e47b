import Router from '@koa/router';
import { z } from 'zod';
import { type AccountService, PasswordRejected } from '../accounts/account.service.ts';
import { AuthPolicyNotMet, Forbidden, NotFound, TooManyRequests, ValidationFailed } from '../base/errors.ts';
import { isUuid } from '../base/ids.ts';
import { readBody } from '../base/validate.ts';
import { API_TOKENS_CLIENT, type ClientService } from '../oidc/client.service.ts';
import { carriedSignIn } from '../oidc/org-request.ts';
import { mintAccessToken } from '../oidc/provider.ts';
import type { InvitationService } from '../orgs/invitation.service.ts';
import type { OrgService } from '../orgs/org.service.ts';
import { type OrgTokens, statusRefusalText } from '../orgs/org-tokens.ts';
import type { TeamService } from '../orgs/team.service.ts';
import { effectiveSettings } from '../tenants/settings.ts';

const SwitchBody = z.strictObject({ team: z.string().min(1, 'required').max(100).optional() });

const ChangePassword = z.strictObject({
  current_password: z.string().min(1, 'required').max(256),
  new_password: z.string().min(1, 'required').max(1000),
});

/** The signed-in user's own API, /t/<slug>/api/v1/me. */
export function meRoutes(deps: {
  accounts: AccountService;
  orgTokens: OrgTokens;
  orgs: OrgService;
  teams: TeamService;
  invitations: InvitationService;
  clients: ClientService;
}) {
  const router = new Router();

  /**
   * Change password. Every other session and token of the user is revoked; the sign-in this
   * request's token belongs to stays valid.
   */
  router.post('/password', async (ctx) => {
    const body = readBody(ctx, ChangePassword);
    const user = ctx.state.user;
    const tenantId = ctx.state.runtime.tenant.id;
    try {
      const outcome = await deps.accounts.changePassword(tenantId, user.userId, body.current_password, body.new_password, user.grantId, {
        ip: ctx.ip,
        bruteForce: effectiveSettings(ctx.state.runtime.tenant.settings).brute_force,
      });
      if (outcome === 'locked') throw TooManyRequests('Too many wrong passwords for this account: wait a few minutes, then try again.');
      if (outcome === 'wrong_password') throw ValidationFailed('The current password is not right.', [{ field: 'current_password', message: 'is not right' }]);
    } catch (err) {
      if (err instanceof PasswordRejected) throw ValidationFailed(err.message, [{ field: 'new_password', message: err.message }]);
      throw err;
    }
    ctx.status = 204;
  });

  /** Every organization the user is in (suspended ones too, marked), with their roles and teams there. */
  router.get('/organizations', async (ctx) => {
    const user = ctx.state.user;
    const runtime = ctx.state.runtime;
    const current = user.grantId ? await deps.orgTokens.grantOrg(runtime.tenant.id, user.grantId) : undefined;
    const [all, teams] = await Promise.all([
      deps.orgTokens.memberships(runtime.tenant.id, user.userId, { includeNotWorking: true }),
      deps.teams.teamsOf(runtime.tenant.id, user.userId),
    ]);
    ctx.body = { data: all.map((o) => ({ ...o, teams: teams.get(o.id) ?? [], current: o.id === current })), next_cursor: null };
  });

  /**
   * Switch the sign-in this token belongs to into another organization, without signing in
   * again: later tokens of the sign-in (refresh included) carry it, and a new access token is
   * returned now.
   */
  router.post('/organizations/:orgId/switch', async (ctx) => {
    const user = ctx.state.user;
    const runtime = ctx.state.runtime;
    const tenantId = runtime.tenant.id;
    if (!user.grantId || user.clientId === API_TOKENS_CLIENT) {
      throw Forbidden('This token is not part of a sign-in that can switch organizations (API tokens keep the organization they were made for).');
    }
    // The client's organization_usage, as at its authorization and refresh requests.
    if (!(await deps.clients.usesOrganizations(tenantId, user.clientId))) {
      throw Forbidden("This token's client does not use organizations (its organization_usage is deny): it cannot switch into one.");
    }
    const grantId = user.grantId;
    const orgId = String(ctx.params.orgId).slice(0, 100);
    // A body is optional: `{ "team": "<id or slug>" }` switches into a team of the organization.
    const team = ctx.request.length ? readBody(ctx, SwitchBody).team : undefined;
    const r = await deps.orgTokens.claimsFor(tenantId, user.userId, orgId, {
      facts: user.signIn,
      tenantMfa: effectiveSettings(runtime.tenant.settings).mfa,
      grantId,
    });
    if ('refused' in r) {
      if (r.refused === 'policy') throw AuthPolicyNotMet(`${r.detail} Sign in again as it requires, then switch.`, r.missing);
      if (r.refused === 'not_found_or_not_member') throw NotFound('You are not a member of that organization (or it does not exist).');
      throw Forbidden(statusRefusalText(r.refused));
    }
    let teamId: string | null = null;
    if (team !== undefined) {
      // Refused as the organization is for a non-member: the same 404, whatever the reason.
      const t = await deps.orgTokens.teamClaimsFor(tenantId, user.userId, r.claims.org_id, { team });
      if (!('claims' in t) || !t.claims.team_id) throw NotFound('You are not a member of that team of the organization (or it does not exist).');
      teamId = t.claims.team_id;
    }
    await deps.orgTokens.selectForGrant(tenantId, grantId, user.userId, r.claims.org_id, teamId);
    const teams = await deps.orgTokens.teamClaimsFor(tenantId, user.userId, r.claims.org_id, { grantId });
    // The new token says how the sign-in was made, as the one presented did.
    const token = await carriedSignIn.run(user.signIn, () =>
      mintAccessToken(runtime, {
        accountId: user.userId,
        clientId: user.clientId,
        grantId,
        scope: [...user.scopes].join(' '),
        gty: 'urn:tessera:switch',
      }),
    );
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { new_token: token.value, token_type: 'Bearer', expires_in: token.expiresIn, ...r.claims, ...('claims' in teams ? teams.claims : {}) };
  });

  /** Leave an organization (the membership only; the last owner can't: 409). */
  router.delete('/organizations/:orgId', async (ctx) => {
    const user = ctx.state.user;
    const tenantId = ctx.state.runtime.tenant.id;
    const orgId = String(ctx.params.orgId);
    if (!isUuid(orgId)) throw NotFound('You are not a member of that organization.');
    await deps.orgs.removeMember(tenantId, { type: 'user', id: user.userId }, orgId, user.userId);
    ctx.status = 204;
  });

  /** Pending invitations to the user's email, to accept or decline here. */
  router.get('/invitations', async (ctx) => {
    const user = ctx.state.user;
    ctx.body = { data: await deps.invitations.invitationsFor(ctx.state.runtime.tenant.id, user.userId), next_cursor: null };
  });
  router.post('/invitations/:invitationId/accept', async (ctx) => {
    const user = ctx.state.user;
    const id = String(ctx.params.invitationId);
    if (!isUuid(id)) throw NotFound('No such invitation for you.');
    ctx.body = { organization: await deps.invitations.acceptInvitationById(ctx.state.runtime.tenant.id, user.userId, id) };
  });
  router.post('/invitations/:invitationId/decline', async (ctx) => {
    const user = ctx.state.user;
    const id = String(ctx.params.invitationId);
    if (!isUuid(id)) throw NotFound('No such invitation for you.');
    await deps.invitations.declineInvitation(ctx.state.runtime.tenant.id, user.userId, id);
    ctx.status = 204;
  });

  return router;
}
