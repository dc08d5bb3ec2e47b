import { CompiledQuery, sql } from 'kysely';
import type { TenantTx } from '../db/database.ts';

/**
 * SQL for oidc-provider's stored models. The adapter (oidc/adapter.ts) is the provider-facing side;
 * these functions are also what revocation outside the OIDC endpoints uses — users, accounts,
 * organizations and API tokens end grants and sessions here, so this store sits below them all.
 */
export interface StoredPayload {
  payload: Record<string, unknown>;
  expires_at: Date | null;
  consumed_at: Date | null;
}

/** A row to save. */
export interface PayloadUpsert {
  model: string;
  id: string;
  payload: Record<string, unknown>;
  expiresInSeconds: number | undefined;
}

/** Spending a code or refresh token. */
export interface PayloadConsume {
  op: 'consume';
  model: string;
  id: string;
  /**
   * The `consumed_at` the batch carrying it marks the row with, set by payloadWriteBatch as it
   * builds the statement — before it is sent, so a caller that never learns the outcome still
   * knows which mark would be its own (refundStatements).
   */
  spentAt?: string;
}

/** What the adapter writes by group commit: saves, spending a code or token, removals. */
export type PayloadWrite = ({ op: 'upsert' } & PayloadUpsert) | PayloadConsume | { op: 'destroy'; model: string; id: string };

function rowOf(w: PayloadUpsert) {
  const str = (k: string) => (typeof w.payload[k] === 'string' ? (w.payload[k] as string) : null);
  return {
    payload: JSON.stringify(w.payload),
    grant_id: str('grantId'),
    user_code: str('userCode'),
    uid: str('uid'),
    expires_at: w.expiresInSeconds ? new Date(Date.now() + w.expiresInSeconds * 1000) : null,
  };
}

export async function upsertPayload(
  tx: TenantTx,
  tenantId: string,
  model: string,
  id: string,
  payload: Record<string, unknown>,
  expiresInSeconds: number | undefined,
): Promise<void> {
  await tx.executeQuery(upsertStatement(tenantId, [{ model, id, payload, expiresInSeconds }]));
}

/*
 * The adapter's writes are the hottest statements Tessera runs (three per refresh, two per code
 * exchange), so they are written as SQL text with numbered parameters rather than built with
 * kysely's query builder each time: building and compiling their trees was a measurable share of a
 * refresh's CPU (docs/performance.md, "Held saves and cheaper statements"). They say exactly what the builder said; the integration tests in
 * db-round-trips run them, row-level security included.
 */

/** `($1, $2, …)` for each tuple, numbering on from what `params` holds, which it fills. */
function tuples(params: unknown[], rows: unknown[][]): string {
  return rows.map((values) => `(${values.map((v) => `$${params.push(v)}`).join(', ')})`).join(', ');
}

/** `("model" = $n and "id" = $m) or …` for the given rows. */
function rowsMatching(params: unknown[], rows: Array<{ model: string; id: string }>): string {
  return rows.map((w) => `("model" = $${params.push(w.model)} and "id" = $${params.push(w.id)})`).join(' or ');
}

/**
 * Several rows in one statement. The ids must be distinct: one INSERT … ON CONFLICT may not
 * update the same row twice.
 */
function upsertStatement(tenantId: string, rows: PayloadUpsert[]): CompiledQuery {
  const params: unknown[] = [];
  const values = tuples(
    params,
    rows.map((w) => {
      const r = rowOf(w);
      return [tenantId, w.model, w.id, r.payload, r.grant_id, r.user_code, r.uid, r.expires_at];
    }),
  );
  return CompiledQuery.raw(
    `insert into "oidc_payloads" ("tenant_id", "model", "id", "payload", "grant_id", "user_code", "uid", "expires_at") values ${values} ` +
      'on conflict ("tenant_id", "model", "id") do update set "payload" = "excluded"."payload", "grant_id" = "excluded"."grant_id", ' +
      '"user_code" = "excluded"."user_code", "uid" = "excluded"."uid", "expires_at" = "excluded"."expires_at"',
    params,
  );
}

/**
 * The statements that apply a batch of writes from concurrent requests (the adapter's group
 * commit), and how to read each write's outcome from their rows. All saves go in one statement,
 * then the spending, then the removals. Writes of one request never share a batch (each waits for
 * its own), so only concurrent requests' writes — which have no order between them anyway — are
 * reordered. Of several saves of one row, the last counts.
 *
 * A consume marks a code or refresh token used only if it is not already (`consumed_at is null`):
 * of concurrent requests spending the same one, exactly one is told `true` — also when two of them
 * land in the same batch. oidc-provider checks `consumed` on the row it read and spends it later,
 * so without this, concurrent redemptions of one code all succeeded.
 */
export function payloadWriteBatch(tenantId: string, writes: PayloadWrite[]) {
  const key = (w: { model: string; id: string }) => `${w.model}\0${w.id}`;
  const upserts = new Map<string, PayloadUpsert>();
  const consumed = new Map<string, PayloadWrite>();
  const destroyed: PayloadWrite[] = [];
  let spentAt: string | undefined;
  for (const w of writes) {
    if (w.op === 'upsert') upserts.set(key(w), w);
    else if (w.op === 'consume') {
      spentAt ??= spendMark();
      w.spentAt = spentAt;
      consumed.set(key(w), w);
    } else destroyed.push(w);
  }
  const statements: CompiledQuery[] = [];
  if (upserts.size) statements.push(upsertStatement(tenantId, [...upserts.values()]));
  const consumeAt = statements.length;
  if (consumed.size) {
    const params: unknown[] = [spentAt, tenantId];
    const which = rowsMatching(params, [...consumed.values()]);
    statements.push(
      CompiledQuery.raw(
        `update "oidc_payloads" set "consumed_at" = $1 where "tenant_id" = $2 and "consumed_at" is null and (${which}) returning "model", "id"`,
        params,
      ),
    );
  }
  if (destroyed.length) {
    const params: unknown[] = [tenantId];
    statements.push(CompiledQuery.raw(`delete from "oidc_payloads" where "tenant_id" = $1 and (${rowsMatching(params, destroyed)})`, params));
  }
  /** One outcome per write: true, but for a consume that did not spend its row (or came second). */
  const outcomes = (rows: unknown[][]): boolean[] => {
    const spent = new Set(consumed.size ? (rows[consumeAt] as { model: string; id: string }[]).map(key) : []);
    return writes.map((w) => {
      if (w.op !== 'consume') return true;
      const won = spent.has(key(w));
      spent.delete(key(w)); // a second consume of the same row in this batch loses
      return won;
    });
  };
  return { statements, outcomes };
}

let lastSpendMark = 0;

/**
 * A `consumed_at` no other batch of this process uses: the time in microseconds (PostgreSQL's
 * resolution), one more than the last mark when the clock has not moved on. It tells this
 * batch's spending from anyone else's, so a refund takes back only its own.
 */
function spendMark(): string {
  const micros = Math.max(Date.now() * 1000, lastSpendMark + 1);
  lastSpendMark = micros;
  return new Date(Math.floor(micros / 1000)).toISOString().replace('Z', `${String(micros % 1000).padStart(3, '0')}Z`);
}

/**
 * A code or refresh token spent by a token request that then handed out no tokens, and the rows
 * of the tokens it made instead (never handed out; maybe stored).
 */
export interface Refund {
  model: string;
  id: string;
  spentAt: string;
  created: Array<{ model: string; id: string }>;
}

/**
 * Gives a spent code or refresh token back: unspent, but only if it is still marked with the
 * request's own mark (nobody else spent it; it was not revoked), and the tokens made in its place
 * are deleted. Neither happens once one of those tokens has itself been spent: it was not handed
 * out, but someone who read it elsewhere (the database's traffic, its logs) used it, and the grant
 * keeps the one chain that was used rather than gaining a second. Run as one batch: all or nothing.
 */
export function refundStatements(tenantId: string, refund: Refund): CompiledQuery[] {
  const unspendParams: unknown[] = [tenantId, refund.model, refund.id, refund.spentAt];
  const unspend = `update "oidc_payloads" set "consumed_at" = null where "tenant_id" = $1 and "model" = $2 and "id" = $3 and "consumed_at" = $4`;
  if (!refund.created.length) return [CompiledQuery.raw(unspend, unspendParams)];
  const deleteParams: unknown[] = [tenantId];
  const noneSpent = (params: unknown[]) =>
    `not exists (select 1 from "oidc_payloads" where "tenant_id" = $1 and (${rowsMatching(params, refund.created)}) and "consumed_at" is not null)`;
  return [
    CompiledQuery.raw(`${unspend} and ${noneSpent(unspendParams)}`, unspendParams),
    CompiledQuery.raw(
      `delete from "oidc_payloads" where "tenant_id" = $1 and (${rowsMatching(deleteParams, refund.created)}) and ${noneSpent(deleteParams)}`,
      deleteParams,
    ),
  ];
}

/** The grant a code or refresh token was issued under (for revoking it on a replay). */
export async function grantOf(tx: TenantTx, tenantId: string, model: string, id: string): Promise<string | null> {
  const row = await tx
    .selectFrom('oidc_payloads')
    .select('grant_id')
    .where('tenant_id', '=', tenantId)
    .where('model', '=', model)
    .where('id', '=', id)
    .executeTakeFirst();
  return row?.grant_id ?? null;
}

export async function findPayload(
  tx: TenantTx,
  tenantId: string,
  model: string,
  where: { id: string } | { uid: string } | { userCode: string },
): Promise<StoredPayload | undefined> {
  let qb = tx
    .selectFrom('oidc_payloads')
    .select(['payload', 'expires_at', 'consumed_at'])
    .where('tenant_id', '=', tenantId)
    .where('model', '=', model)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]));
  if ('id' in where) qb = qb.where('id', '=', where.id);
  else if ('uid' in where) qb = qb.where('uid', '=', where.uid);
  else qb = qb.where('user_code', '=', where.userCode);
  return qb.executeTakeFirst();
}

/** One model's rows issued under a grant (oidc-provider revokes model by model). */
export async function revokeModelByGrant(tx: TenantTx, tenantId: string, model: string, grantId: string): Promise<void> {
  await tx.deleteFrom('oidc_payloads').where('tenant_id', '=', tenantId).where('model', '=', model).where('grant_id', '=', grantId).execute();
}

/** Everything issued under one grant: codes, access and refresh tokens, the grant itself. */
export async function revokeGrant(tx: TenantTx, tenantId: string, grantId: string): Promise<void> {
  await tx
    .deleteFrom('oidc_payloads')
    .where('tenant_id', '=', tenantId)
    .where((eb) => eb.or([eb('grant_id', '=', grantId), eb.and([eb('model', '=', 'Grant'), eb('id', '=', grantId)])]))
    .execute();
}

/**
 * Signs a user out everywhere: their sessions, grants and every token issued to them — but for
 * `exceptGrantId`, the grant a password change was made with: it, its tokens and the session
 * it belongs to survive (refresh tokens without offline_access die with their session).
 */
export async function revokeEverythingOfAccount(
  tx: TenantTx,
  tenantId: string,
  accountId: string,
  opts: { exceptGrantId?: string | undefined } = {},
): Promise<void> {
  let qb = tx.deleteFrom('oidc_payloads').where('tenant_id', '=', tenantId).where(sql<string>`payload->>'accountId'`, '=', accountId);
  const keep = opts.exceptGrantId;
  if (keep) {
    qb = qb.where(sql<boolean>`
      coalesce(grant_id, '') <> ${keep}
      and not (model = 'Grant' and id = ${keep})
      and not (model = 'Session' and jsonb_path_exists(payload, '$.authorizations.*.grantId ? (@ == $g)', jsonb_build_object('g', ${keep}::text)))`);
  }
  await qb.execute();
}

/**
 * The client-credentials (machine) tokens scoped to organization `orgId` — of every client, or
 * only of `clientId`. Deleted, not marked: introspection and Tessera's own APIs find no row, so
 * the token is inactive for good, whatever later happens to the organization or the client.
 * These rows carry no grant; the organization is in the payload (`extra.org_id`), so this reads
 * the tenant's client-credentials rows (index prefix tenant_id, model) — run only when an
 * organization stops working or a client loses one, never on a token request.
 */
export async function revokeClientCredentialsOfOrg(tx: TenantTx, tenantId: string, orgId: string, clientId?: string): Promise<number> {
  let qb = tx
    .deleteFrom('oidc_payloads')
    .where('tenant_id', '=', tenantId)
    .where('model', '=', 'ClientCredentials')
    .where(sql<string>`payload->'extra'->>'org_id'`, '=', orgId);
  if (clientId !== undefined) qb = qb.where(sql<string>`payload->>'clientId'`, '=', clientId);
  const r = await qb.executeTakeFirst();
  return Number(r.numDeletedRows);
}

/** Tokens issued to a client (client credentials included), for when the client is deleted. */
export async function revokeEverythingOfClient(tx: TenantTx, tenantId: string, clientId: string): Promise<void> {
  await tx.deleteFrom('oidc_payloads').where('tenant_id', '=', tenantId).where(sql<string>`payload->>'clientId'`, '=', clientId).execute();
}
