import type { Kysely, Transaction } from 'kysely';
import type { AdminApiKeyTable, TenantTable } from '../tenants/tenant.table.ts';
import type { ClientTable, OidcPayloadTable, SigningKeyTable } from '../oidc/oidc.table.ts';
import type { UserTable } from '../users/user.table.ts';

export interface DB {
  tenants: TenantTable;
  admin_api_keys: AdminApiKeyTable;
  signing_keys: SigningKeyTable;
  oidc_payloads: OidcPayloadTable;
  clients: ClientTable;
  users: UserTable;
}

export type Database = Kysely<DB>;
/** A transaction bound to one tenant: row-level security applies (see tenant-scope.ts). */
export type TenantTx = Transaction<DB>;
