import { CompiledQuery } from 'kysely';
import type { TenantTx } from '../db/database.ts';
import type { StoredPayload } from '../oidc-store/oidc-payload.repo.ts';
import type { UserRow } from '../users/user.repo.ts';

/** Tokens whose lookup brings the rows the rest of the request asks for next. */
export const PREFETCHING_MODELS = new Set(['AccessToken', 'ClientCredentials', 'RefreshToken', 'AuthorizationCode']);

export interface TokenWithRelated {
  model: string;
  token: StoredPayload;
  grant: StoredPayload | undefined;
  session: StoredPayload | undefined;
  user: UserRow | undefined;
  grantOrg: string | undefined;
  /**
   * For an org-scoped client-credentials token: its organization's status and whether the client
   * is still granted it (judged by OrgTokens' machineOrgStillWorks); null when the organization
   * is gone, or the token is not one.
   */
  machineOrg: MachineOrg | null;
}

/** What an org-scoped machine token's organization and client say now. */
export interface MachineOrg {
  status: string;
  granted: boolean;
}

interface JsonPayload {
  payload: Record<string, unknown>;
  expires_at: string | null;
  consumed_at: string | null;
}

interface TokenWithRelatedRow {
  model: string;
  payload: Record<string, unknown>;
  expires_at: Date | null;
  consumed_at: Date | null;
  grant: JsonPayload | null;
  session: JsonPayload | null;
  account: (Omit<UserRow, 'created_at' | 'updated_at' | 'last_login_at'> & { created_at: string; updated_at: string; last_login_at: string | null }) | null;
  grant_org: string | null;
  machine_org: MachineOrg | null;
}

const date = (s: string | null) => (s === null ? null : new Date(s));
const stored = (j: JsonPayload | null): StoredPayload | undefined =>
  j ? { payload: j.payload, expires_at: date(j.expires_at), consumed_at: date(j.consumed_at) } : undefined;

/**
 * A token by id (of one of `models`), with — in the same statement — what oidc-provider and
 * Tessera read right after it on every token request: its grant, the session it is bound to,
 * the account, and the organization the grant works in. One round trip instead of five
 * transactions at userinfo and introspection (measured with `npm run bench`, tx/op).
 * The filters are those of findPayload, findUserById and OrgTokens.grantOrg. For an org-scoped
 * client-credentials token it also reads its organization's status and the client's grant of it
 * (two primary-key lookups, in the same round trip): such a token stops working with them.
 */
export async function findTokenWithRelated(tx: TenantTx, tenantId: string, models: string[], id: string): Promise<TokenWithRelated | undefined> {
  const r = await tx.executeQuery(tokenWithRelatedQuery(tenantId, models, id));
  const row = r.rows[0];
  if (!row) return undefined;
  const a = row.account;
  return {
    model: row.model,
    token: { payload: row.payload, expires_at: row.expires_at, consumed_at: row.consumed_at },
    grant: stored(row.grant),
    session: stored(row.session),
    user: a ? { ...a, created_at: new Date(a.created_at), updated_at: new Date(a.updated_at), last_login_at: date(a.last_login_at) } : undefined,
    grantOrg: row.grant_org ?? undefined,
    machineOrg: row.machine_org,
  };
}

/**
 * The statement of findTokenWithRelated (exported for the plan test in query-plans.test.ts).
 *
 * The token's references (grant id, session uid, account id) are read out of its payload in an
 * inner query and the lookups compare plain columns with them. Under row-level security
 * PostgreSQL uses a condition as an index condition only if every function in it is leakproof,
 * and `->>` and the uuid cast are not: written as `g.id = t.payload->>'grantId'`, each lookup read
 * every grant, session and user of the tenant (5,000 grants after a minute of sign-ins: 3–6 ms
 * per introspection instead of ~0.1). The inner LIMIT also keeps PostgreSQL from merging the
 * inner query into the outer one, which would bring the expressions back.
 */
export function tokenWithRelatedQuery(tenantId: string, models: string[], id: string): CompiledQuery<TokenWithRelatedRow> {
  // The text depends only on how many models are asked for (one, or two at introspection), so it
  // is written once per count: compiling the template each time was ~1 % of a refresh's CPU.
  let text = statementFor.get(models.length);
  if (!text) {
    text = tokenWithRelatedText(models.length);
    statementFor.set(models.length, text);
  }
  return CompiledQuery.raw(text, [tenantId, ...models, id]) as CompiledQuery<TokenWithRelatedRow>;
}

const statementFor = new Map<number, string>();
const UUID = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

/** Parameters: $1 the tenant, $2…$(n+1) the models, $(n+2) the token id. */
function tokenWithRelatedText(modelCount: number): string {
  const live = (alias: string) => `(${alias}.expires_at is null or ${alias}.expires_at > now())`;
  const models = Array.from({ length: modelCount }, (_, i) => `$${i + 2}`).join(', ');
  return `
    select t.model, t.payload, t.expires_at, t.consumed_at,
      (select json_build_object('payload', g.payload, 'expires_at', g.expires_at, 'consumed_at', g.consumed_at)
         from oidc_payloads g
        where g.tenant_id = t.tenant_id and g.model = 'Grant' and g.id = t.grant_ref and ${live('g')}) as grant,
      (select json_build_object('payload', s.payload, 'expires_at', s.expires_at, 'consumed_at', s.consumed_at)
         from oidc_payloads s
        where s.tenant_id = t.tenant_id and s.model = 'Session' and s.uid = t.session_ref and ${live('s')}
        limit 1) as session,
      (select row_to_json(u) from users u where u.tenant_id = t.tenant_id and u.id = t.account_ref) as account,
      (select go.org_id from grant_organizations go where go.tenant_id = t.tenant_id and go.grant_id = t.grant_ref) as grant_org,
      (select json_build_object('status', o.status, 'granted', coalesce((select o.id = any(c.organization_ids)
           from clients c where c.tenant_id = t.tenant_id and c.client_id = t.client_ref), false))
         from organizations o
        where o.tenant_id = t.tenant_id and o.id = t.machine_org_ref) as machine_org
    from (
      select t.tenant_id, t.model, t.payload, t.expires_at, t.consumed_at,
        t.payload->>'grantId' as grant_ref,
        t.payload->>'sessionUid' as session_ref,
        case when t.payload->>'accountId' ~ '${UUID}'
             then (t.payload->>'accountId')::uuid end as account_ref,
        case when t.model = 'ClientCredentials' and t.payload->'extra'->>'org_id' ~ '${UUID}'
             then (t.payload->'extra'->>'org_id')::uuid end as machine_org_ref,
        t.payload->>'clientId' as client_ref
      from oidc_payloads t
      where t.tenant_id = $1 and t.model in (${models}) and t.id = $${modelCount + 2} and ${live('t')}
      limit 1
    ) t`;
}
