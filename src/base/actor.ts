/**
 * Who makes a change: what the Admin API's guard puts in `ctx.state.actor`, what the services'
 * rules judge (the permission ceiling: org-rules.ts), and what the audit log and an invitation's
 * `invited_by` store, as this JSON. A tenant's admin API key, a machine client with the admin
 * scope, a user (a tenant admin through the Admin API, or anyone through the portal), or an
 * organization's SSO connection or SCIM directory provisioning its members, or a setup link an
 * owner gave the customer's IT admin; or the service itself (a scheduled job).
 */
export type Actor =
  | { type: 'api_key' }
  | { type: 'client'; id: string }
  | { type: 'user'; id: string }
  | { type: 'sso_connection'; id: string }
  | { type: 'scim_directory'; id: string }
  | { type: 'setup_link'; id: string }
  /** A job of the service itself, such as ending trials (`trial_expiry`). */
  | { type: 'system'; id: string };

/**
 * Actors that act on configuration an owner made (an IdP's assertions, a directory's pushes, a
 * setup link's pages): they never make anyone an owner, whatever that configuration says.
 */
export const isConfiguredActor = (actor: Actor) => actor.type === 'sso_connection' || actor.type === 'scim_directory' || actor.type === 'setup_link';

/**
 * What a setup link configures is never trusted by itself: an IdP decides who its users become
 * (on the organization's verified domains, its owners included) and a directory who is in the
 * organization, so an SSO connection or a directory a link creates or changes is off until an
 * owner (or a tenant administrator) turns it on. A link's test sign-in works while it is off.
 */
export const offUntilAnOwnerTurnsItOn = (actor: Actor) => actor.type === 'setup_link';
