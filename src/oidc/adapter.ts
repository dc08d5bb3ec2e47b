import { AsyncLocalStorage } from 'node:async_hooks';
import { type Adapter, type AdapterPayload, errors } from 'oidc-provider';
import { forget, readOnce, remember } from '../base/request-reads.ts';
import { findUnstorable, isStorableText } from '../base/storable-text.ts';
import type { Database } from '../db/database.ts';
import { GroupCommit } from '../db/group-commit.ts';
import { scopedBatch, scopedStatement } from '../db/one-shot.ts';
import type { inTenant } from '../db/tenant-scope.ts';
import * as repo from '../oidc-store/oidc-payload.repo.ts';
import { grantOrgKey, machineOrgStillWorks, machineTokenOrg } from '../orgs/org-tokens.ts';
import { userKey } from '../users/user.service.ts';
import type { ClientService } from './client.service.ts';
import { heldSaves } from './held-saves.ts';
import type { SpendRefunds } from './spend-refunds.ts';
import { findTokenWithRelated, PREFETCHING_MODELS } from './token-prefetch.ts';

/**
 * Access tokens are JWTs that oidc-provider does not store; Tessera stores their payload by jti
 * (see token-gateway.ts) so userinfo, introspection and revocation can tell a live token
 * from a revoked one. Such a row may only be found for a request whose JWT was verified first:
 * the gateway runs the provider inside this store with the jti it verified, so a caller that
 * merely knows a jti (it is readable in the JWT) cannot use it as a bearer token.
 */
export const verifiedAccessToken = new AsyncLocalStorage<{ jti: string; payload: Record<string, unknown> }>();

const JWT_BACKED_MODELS = new Set(['AccessToken', 'ClientCredentials']);

/** What a token request spends (and may be given back: spend-refunds.ts). */
const SPENDABLE_MODELS = new Set(['AuthorizationCode', 'RefreshToken']);

/** Makes oidc-provider's Adapter class for one tenant: every row is keyed and filtered by tenant. */
export function adapterFor(db: Database, tenantId: string, issuer: string, clients: ClientService, refunds: SpendRefunds) {
  // Every write — saves of tokens, codes, grants, sessions and interactions, spending a code or
  // refresh token, removals — goes to PostgreSQL by group commit: concurrent requests' writes share
  // one round trip, and each caller still waits until its write has committed (a token is handed
  // out only once it is stored) and learns its outcome (whether its consume spent the row).
  const writes = new GroupCommit<repo.PayloadWrite, boolean>(async (batch) => {
    const { statements, outcomes } = repo.payloadWriteBatch(tenantId, batch);
    return outcomes(await scopedBatch(db, tenantId, () => statements));
  });

  return class TenantAdapter implements Adapter {
    constructor(private readonly model: string) {}

    /** Every adapter operation is one statement: one round trip (db/one-shot.ts). */
    private run<T>(work: Parameters<typeof inTenant<T>>[2]): Promise<T> {
      return scopedStatement(db, tenantId, work);
    }

    /** This request's reads of the model (base/request-reads.ts), keyed per tenant. */
    private key(by: 'id' | 'uid' | 'userCode', value: string) {
      return `oidc:${tenantId}:${this.model}:${by}:${value}`;
    }

    private changed() {
      forget(`oidc:${tenantId}:${this.model}:`);
      if (JWT_BACKED_MODELS.has(this.model)) forget(`oidc:${tenantId}:jwt:`);
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      // Requests' text is checked where they are read (oauth-input.ts, provider.ts); this keeps
      // one that slipped through from failing every write of the batch it would join.
      const unstorable = findUnstorable(payload);
      if (unstorable) throw new errors.InvalidRequest(`${unstorable.field} ${unstorable.message}`);
      this.changed();
      const save: repo.PayloadWrite = { op: 'upsert', model: this.model, id, payload: payload as Record<string, unknown>, expiresInSeconds: expiresIn };
      const held = heldSaves();
      if (held)
        held.hold(writes, save); // sent with the request's next write, or before its response
      else await writes.add(save);
    }

    /** A write, after whatever this request holds (held-saves.ts), in the same batch. */
    private async write(w: repo.PayloadWrite): Promise<boolean> {
      const held = heldSaves();
      return held ? (await held.send(writes, w))! : writes.add(w);
    }

    /**
     * Before a read: the request's held saves are stored first, so it reads what it wrote. Not an
     * async function: a read with nothing held (most of them) makes no promise here.
     */
    private sendHeld(): Promise<unknown> | undefined {
      const held = heldSaves();
      return held?.holding ? held.send(writes) : undefined;
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      // Codes, tokens, uids and client ids come from requests: one PostgreSQL can't store names no row.
      if (!isStorableText(id)) return undefined;
      if (this.model === 'Client') return clients.providerMetadata(tenantId, id, issuer);
      if (JWT_BACKED_MODELS.has(this.model) && verifiedAccessToken.getStore()?.jti !== id) return undefined;
      // Our refresh tokens are opaque (no dots); a JWT offered at introspection is not one, and
      // neither is the jti the gateway handed on for it (introspection asks all three models).
      if (this.model === 'RefreshToken' && (id.includes('.') || verifiedAccessToken.getStore()?.jti === id)) return undefined;
      // Spent by a request that handed out nothing, and not yet given back: given back first.
      const settling = SPENDABLE_MODELS.has(this.model) ? refunds.settle(tenantId, this.model, id) : undefined;
      if (settling) await settling;
      await this.sendHeld();
      if (!PREFETCHING_MODELS.has(this.model)) {
        return readOnce(this.key('id', id), async () => this.found(await this.run((tx) => repo.findPayload(tx, tenantId, this.model, { id }))));
      }
      // A verified JWT's jti names an access token or a client-credentials token, and
      // introspection asks for both at once: one shared query answers both.
      if (JWT_BACKED_MODELS.has(this.model)) {
        const hit = await readOnce(`oidc:${tenantId}:jwt:${id}`, () => this.findWithRelated([...JWT_BACKED_MODELS], id));
        if (hit?.model !== this.model) return undefined;
        // An org-scoped machine token is found only while it still works in its organization.
        if (hit.model === 'ClientCredentials' && machineTokenOrg(hit.token.payload) && !machineOrgStillWorks(hit.machineOrg)) return undefined;
        return this.found(hit.token);
      }
      return readOnce(this.key('id', id), async () => this.found((await this.findWithRelated([this.model], id))?.token));
    }

    /** The token and, remembered for the rest of the request, its grant, session, account and working organization. */
    private async findWithRelated(models: string[], id: string) {
      const hit = await this.run((tx) => findTokenWithRelated(tx, tenantId, models, id));
      if (!hit) return undefined;
      const p = hit.token.payload;
      if (typeof p.grantId === 'string') {
        remember(`oidc:${tenantId}:Grant:id:${p.grantId}`, this.found(hit.grant));
        remember(grantOrgKey(tenantId, p.grantId), hit.grantOrg);
      }
      if (typeof p.sessionUid === 'string') remember(`oidc:${tenantId}:Session:uid:${p.sessionUid}`, this.found(hit.session));
      if (typeof p.accountId === 'string') remember(userKey(tenantId, p.accountId), hit.user);
      return hit;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      if (!isStorableText(uid)) return undefined;
      await this.sendHeld();
      return readOnce(this.key('uid', uid), async () => this.found(await this.run((tx) => repo.findPayload(tx, tenantId, this.model, { uid }))));
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      if (!isStorableText(userCode)) return undefined;
      await this.sendHeld();
      return this.found(await this.run((tx) => repo.findPayload(tx, tenantId, this.model, { userCode })));
    }

    /**
     * Codes and refresh tokens are spent atomically (repo.payloadWriteBatch): a request that loses
     * the race to spend one is a replay, answered as oidc-provider answers a sequential one — the
     * grant it came from is revoked (RFC 6749 §4.1.2, and refresh-token reuse detection of the
     * OAuth security BCP) and the request gets invalid_grant.
     */
    async consume(id: string): Promise<void> {
      this.changed();
      // A token request notes the spending in its held saves (held-saves.ts), to give it back if
      // the request hands out no tokens.
      if (await this.write({ op: 'consume', model: this.model, id })) return;
      const grantId = await this.run((tx) => repo.grantOf(tx, tenantId, this.model, id));
      if (grantId) {
        forget(`oidc:${tenantId}:`);
        await this.run((tx) => repo.revokeGrant(tx, tenantId, grantId));
      }
      throw new errors.InvalidGrant(`${this.model === 'RefreshToken' ? 'refresh token' : 'authorization code'} already used`);
    }

    async destroy(id: string): Promise<void> {
      this.changed();
      await this.write({ op: 'destroy', model: this.model, id });
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await this.sendHeld();
      forget(`oidc:${tenantId}:`);
      await this.run((tx) => repo.revokeModelByGrant(tx, tenantId, this.model, grantId));
    }

    private found(row: repo.StoredPayload | undefined): AdapterPayload | undefined {
      if (!row) return undefined;
      return {
        ...(row.payload as AdapterPayload),
        ...(row.consumed_at ? { consumed: Math.floor(row.consumed_at.getTime() / 1000) } : {}),
      };
    }
  };
}
