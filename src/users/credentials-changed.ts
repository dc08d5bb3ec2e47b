import type { TenantTx } from '../db/database.ts';

/**
 * Work that must happen in the same transaction as a change of an account's credentials — a new
 * password (by the person, a reset link or an administrator) or an administrator's reset of its
 * second factors. The app wires it (app.ts): SSO links proven by the old password end with it
 * (sso/password-proven-links.ts). A hook rather than an import, because the services that change
 * credentials sit below SSO.
 */
export type CredentialsChanged = (tx: TenantTx, tenantId: string, userId: string, why: string) => Promise<unknown>;

export const nothingMore: CredentialsChanged = async () => undefined;
