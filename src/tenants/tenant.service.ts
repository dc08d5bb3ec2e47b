import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import type { Actor } from '../base/actor.ts';
import { Conflict, Forbidden, isUniqueViolation, NotFound, ValidationFailed } from '../base/errors.ts';
import { fieldErrors } from '../base/validate.ts';
import { constantTimeEqual, randomSecret, sha256Hex } from '../crypto/secrets.ts';
import type { Database, TenantTx } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import { passwordProblem } from '../users/password-policy.ts';
import { hashPassword } from '../users/passwords.ts';
import { findUserByEmail, insertUser } from '../users/user.repo.ts';
import { UserService } from '../users/user.service.ts';
import { userFields } from '../users/user-fields.ts';
import { issuerOf } from './issuer.ts';
import { effectiveSettings, type UpdateSettings } from './settings.ts';
import { createSigningKey, rotateSigningKey, type SigningAlg } from './signing-keys.ts';
import type { TenantRow } from './tenant.repo.ts';
import * as repo from './tenant.repo.ts';
import type { TenantSettings } from './tenant.table.ts';
import { insertTenantAudit, tenantAuditPage } from './tenant-audit.repo.ts';

/** Lowercase letters, digits and inner hyphens; 2–40 characters. It is part of every URL and issuer. */
export const slugSchema = z
  .string()
  .min(2, 'must be 2–40 characters')
  .max(40, 'must be 2–40 characters')
  .regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/, 'use lowercase letters, digits and hyphens, not at the start or end');

const CreateTenantInput = z.strictObject({
  slug: slugSchema,
  name: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
  adminEmail: userFields.email.optional(),
  // The same password policy as every other account (length, common passwords, the email in it).
  adminPassword: userFields.password.optional(),
  settings: z.custom<TenantSettings>().optional(),
  signingAlg: z.enum(['ES256', 'RS256']).optional(),
});

export interface CreatedTenant {
  tenant: { id: string; slug: string; name: string };
  issuer: string;
  admin_api_key: string;
  admin?: { email: string; id: string };
}

const API_KEY_PREFIX = 'tsk_';

const newApiKey = () => API_KEY_PREFIX + randomSecret(32);

/** What is stored of a key: the first characters, to tell keys apart, and its SHA-256. */
const apiKeyRow = (apiKey: string) => ({ prefix: apiKey.slice(0, 10), key_hash: sha256Hex(apiKey) });

const API_KEY_TOUCH_MS = 60_000;

export class TenantService {
  /**
   * Verified admin API keys, for `cacheTtlMs` (the bound on cross-instance staleness that tenants
   * and clients use): the Admin API checked the key in its own transaction on every call. Only
   * successes are kept. Whatever revokes a key one day must `forgetApiKeys()` here too.
   */
  private readonly verifiedKeys: LRUCache<string, true> | undefined;

  constructor(
    private readonly db: Database,
    private readonly publicUrl: string,
    private readonly encryptionKey: Buffer,
    cacheTtlMs = 0,
  ) {
    this.verifiedKeys = cacheTtlMs > 0 ? new LRUCache({ max: 10_000, ttl: cacheTtlMs }) : undefined;
  }

  forgetApiKeys() {
    this.verifiedKeys?.clear();
  }

  /** A tenant with its first signing key, an admin API key (returned once) and optionally an admin user. */
  async create(input: z.input<typeof CreateTenantInput>): Promise<CreatedTenant> {
    return (await this.insert(input))!;
  }

  /**
   * `create`, but only on a database without tenants, decided under a lock: of several instances
   * starting at once on an empty database, exactly one creates it; the others get undefined.
   */
  async createIfNone(input: z.input<typeof CreateTenantInput>): Promise<CreatedTenant | undefined> {
    return this.insert(input, async (owner) => {
      await repo.lockFirstTenant(owner);
      return (await repo.countTenants(owner)) === 0;
    });
  }

  private async insert(input: z.input<typeof CreateTenantInput>, proceed?: (owner: TenantTx) => Promise<boolean>): Promise<CreatedTenant | undefined> {
    const parsed = CreateTenantInput.safeParse(input);
    if (!parsed.success) {
      const errors = fieldErrors(parsed.error);
      throw ValidationFailed(errors.map((e) => `${e.field}: ${e.message}`).join('; '), errors);
    }
    const t = parsed.data;
    if ((t.adminEmail === undefined) !== (t.adminPassword === undefined)) {
      throw ValidationFailed('Give both an admin email and an admin password, or neither.', [{ field: 'adminPassword', message: 'required with adminEmail' }]);
    }
    const alg: SigningAlg = t.signingAlg ?? 'ES256';
    const passwordHash = t.adminPassword ? await hashPassword(t.adminPassword) : undefined;
    const apiKey = newApiKey();
    try {
      return await this.db.transaction().execute(async (owner) => {
        if (proceed && !(await proceed(owner))) return undefined;
        const tenant = await repo.insertTenant(owner, { slug: t.slug, name: t.name, settings: { signing_alg: alg, ...t.settings } });
        return inTenant(owner, tenant.id, async (tx) => {
          await createSigningKey(tx, tenant.id, alg, this.encryptionKey);
          await repo.insertApiKey(tx, { tenant_id: tenant.id, name: 'initial', ...apiKeyRow(apiKey) });
          const admin = t.adminEmail
            ? await insertUser(tx, tenant.id, {
                email: t.adminEmail,
                password_hash: passwordHash,
                email_verified: true,
                tenant_admin: true,
                name: 'Administrator',
              })
            : undefined;
          return {
            tenant: { id: tenant.id, slug: tenant.slug, name: tenant.name },
            issuer: issuerOf(this.publicUrl, tenant.slug),
            admin_api_key: apiKey,
            ...(admin ? { admin: { email: admin.email, id: admin.id } } : {}),
          };
        });
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw Conflict(`A tenant with slug "${t.slug}" already exists.`, [{ field: 'slug', message: 'already in use' }]);
      throw err;
    }
  }

  /**
   * A new admin API key (returned once) replaces every key the tenant had: for an operator who
   * lost the printed one, or fears it leaked. The old key stops working on the next request
   * here, and on other instances once their `cacheTtlMs` has passed.
   */
  async rotateAdminKey(tenant: TenantRow): Promise<string> {
    const apiKey = newApiKey();
    await inTenant(this.db, tenant.id, async (tx) => {
      await repo.deleteApiKeys(tx, tenant.id);
      await repo.insertApiKey(tx, { tenant_id: tenant.id, name: 'rotated', ...apiKeyRow(apiKey) });
    });
    this.forgetApiKeys();
    return apiKey;
  }

  /**
   * Sets a tenant administrator's password (a generated one unless `password` is given; returned
   * once) through the users' own update, which hashes it and signs the user out everywhere.
   * Refuses an email that is not a tenant administrator's: this is the way back into a tenant,
   * not a way around the users' own password reset.
   */
  async resetAdminPassword(tenant: TenantRow, email: string, password?: string): Promise<{ user: { id: string; email: string }; password: string }> {
    const user = await inTenant(this.db, tenant.id, (tx) => findUserByEmail(tx, tenant.id, email));
    if (!user) throw NotFound(`There is no user ${JSON.stringify(email)} in tenant "${tenant.slug}".`);
    if (!user.tenant_admin) {
      throw Forbidden(
        `${user.email} is not a tenant administrator of "${tenant.slug}"; only administrators' passwords are reset this way (other users: the forgot-password page, or POST /users/{id}/password-reset).`,
      );
    }
    const newPassword = password ?? randomSecret(18);
    const problem = passwordProblem(newPassword, { email: user.email });
    if (problem) throw ValidationFailed(`The password ${problem}.`, [{ field: 'password', message: problem }]);
    await new UserService(this.db).update(tenant.id, user.id, { password: newPassword });
    return { user: { id: user.id, email: user.email }, password: newPassword };
  }

  async findBySlug(slug: string): Promise<TenantRow | undefined> {
    return repo.findTenantBySlug(this.db, slug);
  }

  async isEmpty(): Promise<boolean> {
    return (await repo.countTenants(this.db)) === 0;
  }

  /** New signing key; the old one stays in the JWKS until its tokens have expired. */
  async rotateKeys(tenant: TenantRow, alg?: SigningAlg): Promise<string> {
    const useAlg = alg ?? tenant.settings.signing_alg ?? 'ES256';
    return this.db.transaction().execute(async (owner) => {
      // Owner statement first: inTenant drops the role for the rest of the transaction.
      await repo.bumpConfigVersion(owner, tenant.id);
      return inTenant(owner, tenant.id, (tx) => rotateSigningKey(tx, tenant.id, useAlg, this.encryptionKey));
    });
  }

  /** A page of the tenant's audit log, newest first. */
  auditLog(tenantId: string, q: { limit: number; cursor?: string | undefined }) {
    return inTenant(this.db, tenantId, (tx) => tenantAuditPage(tx, tenantId, q));
  }

  /** The settings as the Admin API shows them: every value, defaults filled in. */
  presentSettings(tenant: TenantRow) {
    return { name: tenant.name, slug: tenant.slug, ...effectiveSettings(tenant.settings) };
  }

  /** PATCH semantics, `brute_force` merged field by field. Bumps the config version so every instance sees it. */
  /**
   * Changes settings (Admin API, portal). A change of the tenant's authentication rule (`mfa`,
   * `mfa_factors`) or of its organization rules (`organization_approval`,
   * `max_organizations_per_user`) is written to the tenant's audit log with who made it.
   */
  async updateSettings(tenant: TenantRow, patch: UpdateSettings, actor?: Actor): Promise<TenantRow> {
    const { name, brute_force, ...rest } = patch;
    const settings: TenantSettings = {
      ...tenant.settings,
      ...rest,
      ...(brute_force ? { brute_force: { ...tenant.settings.brute_force, ...brute_force } } : {}),
    };
    const updated = await repo.updateTenant(this.db, tenant.id, { name, settings });
    // Rules that decide who may sign in, or who may make an organization work, are audited.
    for (const [action, rule] of [
      ['tenant.auth_policy.updated', authRule],
      ['tenant.organization_rules.updated', organizationRules],
    ] as const) {
      const before = rule(tenant.settings);
      const after = rule(updated.settings);
      if (!actor || JSON.stringify(before) === JSON.stringify(after)) continue;
      await inTenant(this.db, tenant.id, (tx) =>
        insertTenantAudit(tx, { tenant_id: tenant.id, actor, action, target_type: 'tenant', target_id: tenant.id, before, after }),
      );
    }
    return updated;
  }

  /** True when `presented` is one of the tenant's admin API keys. */
  async verifyApiKey(tenantId: string, presented: string): Promise<boolean> {
    if (!presented.startsWith(API_KEY_PREFIX) || presented.length > 200) return false;
    const hash = sha256Hex(presented);
    const cacheKey = `${tenantId}:${hash}`;
    if (this.verifiedKeys?.get(cacheKey)) return true;
    const ok = await inTenant(this.db, tenantId, async (tx) => {
      const row = await repo.findApiKeyByHash(tx, tenantId, hash);
      if (!row || !constantTimeEqual(row.key_hash, hash)) return false;
      // "Last used" to the minute: a write on every Admin API call cost a transaction per request.
      if (!row.last_used_at || Date.now() - row.last_used_at.getTime() > API_KEY_TOUCH_MS) await repo.touchApiKey(tx, tenantId, row.id);
      return true;
    });
    if (ok) this.verifiedKeys?.set(cacheKey, true);
    return ok;
  }
}

/** The tenant's part of the authentication policy, as its audit rows show it. */
function authRule(settings: TenantSettings) {
  const e = effectiveSettings(settings);
  return { mfa: e.mfa, mfa_factors: e.mfa_factors };
}

/** Who may make an organization work, as its audit rows show it. */
function organizationRules(settings: TenantSettings) {
  const e = effectiveSettings(settings);
  return { organization_approval: e.organization_approval, max_organizations_per_user: e.max_organizations_per_user };
}
