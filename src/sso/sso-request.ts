import type { Database } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import type { ConnectionRow } from './sso.table.ts';
import { SsoRefused } from './upstream.ts';

const REQUEST_TTL_MS = 10 * 60 * 1000;

/**
 * What a sign-in at an organization's IdP comes back to: the authorization request waiting for
 * it, or (started from an invitation link) the invitation it may use.
 */
export interface SsoBinding {
  interactionUid: string | null;
  invitationId: string | null;
  /**
   * A test sign-in a setup link started: the answer is checked as any other, then shown on the
   * link's page instead of signing anyone in.
   */
  setupLinkId?: string | null | undefined;
}

/** Remembers a request we sent to an IdP (SAML request id, or OIDC state): single use, 10 minutes. */
export async function rememberRequest(
  db: Database,
  conn: ConnectionRow,
  id: string,
  binding: SsoBinding,
  oidc: { nonce: string; codeVerifier: string } | null = null,
) {
  await inTenant(db, conn.tenant_id, (tx) =>
    tx
      .insertInto('sso_requests')
      .values({
        tenant_id: conn.tenant_id,
        id,
        connection_id: conn.id,
        interaction_uid: binding.interactionUid,
        invitation_id: binding.invitationId,
        setup_link_id: binding.setupLinkId ?? null,
        nonce: oidc?.nonce ?? null,
        code_verifier: oidc?.codeVerifier ?? null,
        expires_at: new Date(Date.now() + REQUEST_TTL_MS),
      })
      .execute(),
  );
}

/** Uses up the request `id` names: it must be this connection's, and unexpired. */
export async function takeRequest(db: Database, conn: ConnectionRow, id: string, what: string) {
  const request = await inTenant(db, conn.tenant_id, (tx) =>
    tx.deleteFrom('sso_requests').where('tenant_id', '=', conn.tenant_id).where('id', '=', id).returningAll().executeTakeFirst(),
  );
  if (!request || request.connection_id !== conn.id)
    throw new SsoRefused(`${what} is not a request this connection sent (unknown, used, or another connection's)`);
  if (request.expires_at.getTime() < Date.now()) throw new SsoRefused('the sign-in request expired');
  return {
    ...request,
    binding: { interactionUid: request.interaction_uid, invitationId: request.invitation_id, setupLinkId: request.setup_link_id } satisfies SsoBinding,
  };
}

const BINDING = Symbol('sso binding');

/**
 * Runs the checks that follow finding the request: an error they throw (a refusal or a fault)
 * carries the request's binding, so the caller knows where the answer was going even when it is
 * refused (a setup link's test sign-in shows the reason on the link's own page).
 */
export async function checkedFor<T>(binding: SsoBinding, checks: () => Promise<T>): Promise<T> {
  try {
    return await checks();
  } catch (err) {
    if (err instanceof Error) Object.assign(err, { [BINDING]: binding });
    throw err;
  }
}

/** The binding of the request an error of `checkedFor` was about, when it got that far. */
export const bindingOfError = (err: unknown): SsoBinding | undefined =>
  err instanceof Error ? (err as Error & { [BINDING]?: SsoBinding })[BINDING] : undefined;
