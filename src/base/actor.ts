/**
 * Who makes a change: what the Admin API's guard puts in `ctx.state.actor`, what the services'
 * rules judge (the permission ceiling: org-rules.ts), and what the audit log and an invitation's
 * `invited_by` store, as this JSON. A tenant's admin API key, a machine client with the admin
 * scope, a user (a tenant admin through the Admin API, or anyone through the portal), or an
 * organization's SSO connection provisioning its members.
 */
export type Actor = { type: 'api_key' } | { type: 'client'; id: string } | { type: 'user'; id: string } | { type: 'sso_connection'; id: string };
