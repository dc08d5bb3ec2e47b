import { sql } from 'kysely';
import { type Actor, offUntilAnOwnerTurnsItOn } from '../base/actor.ts';
import { NotFound, ValidationFailed } from '../base/errors.ts';
import { type Outbound, OutboundRefused, refusedField } from '../base/outbound-fetch.ts';
import { decrypt, encrypt } from '../crypto/secrets.ts';
import type { Database, TenantTx } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import { insertAudit } from '../orgs/org.repo.ts';
import { assertGrantable } from '../orgs/org-rules.ts';
import { DEFAULT_MFA_AUTHN_CONTEXTS } from './saml/authn-context.ts';
import { acsUrl, describeCertificates, parseIdpMetadata, type SamlConfig, spEntityId } from './saml/saml-sso.ts';
import { generateSpEncryptionKey } from './saml/sp-keys.ts';
import type { AttributeMapping, ConnectionRow } from './sso.table.ts';

/** What every connection has, whatever its protocol. */
interface ConnectionCommonInput {
  name: string;
  enabled?: boolean | undefined;
  auto_provision?: boolean | undefined;
  default_role?: string | undefined;
  attribute_mapping?: AttributeMapping | undefined;
  group_roles?: Record<string, string> | undefined;
}

export interface OidcConnectionInput extends ConnectionCommonInput {
  type: 'oidc';
  issuer_url: string;
  client_id: string;
  client_secret: string;
  scopes?: string[] | undefined;
}

export interface SamlConnectionInput extends ConnectionCommonInput {
  type: 'saml';
  metadata_xml?: string | undefined;
  /** Fetched now and refreshed on a schedule (maintenance), so IdP certificate rollovers are picked up. */
  metadata_url?: string | undefined;
  idp_entity_id?: string | undefined;
  idp_sso_url?: string | undefined;
  idp_certificates?: string[] | undefined;
  want_assertions_signed?: boolean | undefined;
  /** AuthnContextClassRef values that mean MFA at this IdP; null: back to the default list. */
  mfa_authn_contexts?: string[] | null | undefined;
}

export type ConnectionPatch = Partial<Omit<OidcConnectionInput, 'type'>> & Partial<Omit<SamlConnectionInput, 'type' | 'name'>>;

/** Hosts that are this machine, where plain-http IdPs are allowed in development. */
export const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Plain-http IdPs on this machine are for development and tests: allowed only while Tessera
 * itself runs on a loopback PUBLIC_URL, so a tenant admin of a deployed Tessera can't point a
 * connection at the server's own local services.
 */
export function loopbackIdpsAllowed(publicUrl: string) {
  return LOOPBACK_HOSTS.has(new URL(publicUrl).hostname);
}

/**
 * IdP metadata by URL: https (plain http to this machine only in development), public addresses
 * only, 10 s, 1 MB at most (base/outbound-fetch.ts).
 */
async function fetchMetadata(outbound: Outbound, url: string, allowLoopback: boolean): Promise<string> {
  const u = new URL(url);
  if (u.protocol !== 'https:' && !(allowLoopback && u.protocol === 'http:' && LOOPBACK_HOSTS.has(u.hostname))) {
    throw ValidationFailed('metadata_url must be an https URL.', [{ field: 'metadata_url', message: 'must be https' }]);
  }
  let res: Response;
  try {
    res = await outbound.fetch(u, { redirect: 'error' });
  } catch (err) {
    if (err instanceof OutboundRefused && err.kind) throw refusedField('metadata_url', err);
    throw ValidationFailed(`The metadata could not be fetched: ${(err as Error).message}`, [{ field: 'metadata_url', message: 'not reachable' }]);
  }
  const text = await res.text();
  if (!res.ok) throw ValidationFailed(`The metadata URL answered ${res.status}.`, [{ field: 'metadata_url', message: `answered ${res.status}` }]);
  return text;
}

export const DEFAULT_ATTRIBUTES: Required<AttributeMapping> = {
  email: 'email',
  name: 'name',
  given_name: 'given_name',
  family_name: 'family_name',
  groups: 'groups',
};

/**
 * Enterprise SSO connections of an organization. Secrets are encrypted at rest and never shown;
 * the last failure of a sign-in is kept on the connection for its admins.
 */
export class ConnectionService {
  constructor(
    private readonly db: Database,
    private readonly encryptionKey: Buffer,
    private readonly publicUrl: string,
    private readonly outbound: Outbound,
  ) {}

  present(tenantSlug: string, c: ConnectionRow) {
    const cfg = c.config as { issuer_url?: string; client_id?: string; scopes?: string[] };
    const common = {
      id: c.id,
      type: c.type,
      name: c.name,
      enabled: c.enabled,
      auto_provision: c.auto_provision,
      jit_provisioning: c.auto_provision,
      default_role: c.default_role,
      attribute_mapping: { ...DEFAULT_ATTRIBUTES, ...c.attribute_mapping },
      group_roles: c.group_roles,
      last_error: c.last_error,
      last_error_at: c.last_error_at?.toISOString() ?? null,
      created_at: c.created_at.toISOString(),
      updated_at: c.updated_at.toISOString(),
    };
    if (c.type === 'saml') {
      const saml = c.config as unknown as SamlConfig;
      return {
        ...common,
        sp_entity_id: spEntityId(this.publicUrl, tenantSlug, c.id),
        acs_url: acsUrl(this.publicUrl, tenantSlug, c.id),
        sp_metadata_url: spEntityId(this.publicUrl, tenantSlug, c.id),
        idp_entity_id: saml.idp_entity_id,
        idp_sso_url: saml.idp_sso_url,
        idp_certificates: saml.idp_certificates,
        metadata_url: saml.metadata_url ?? null,
        sp_encryption_certificate: saml.sp_encryption_cert ?? null,
        idp_certificate_details: describeCertificates(saml.idp_certificates),
        want_assertions_signed: saml.want_assertions_signed !== false,
        mfa_authn_contexts: saml.mfa_authn_contexts ?? [...DEFAULT_MFA_AUTHN_CONTEXTS],
      };
    }
    return {
      ...common,
      issuer_url: cfg.issuer_url,
      client_id: cfg.client_id,
      scopes: cfg.scopes,
      redirect_uri: this.redirectUri(tenantSlug, c.id),
    };
  }

  redirectUri(tenantSlug: string, connectionId: string) {
    return `${this.publicUrl}/t/${tenantSlug}/sso/oidc/${connectionId}/callback`;
  }

  private aad(tenantId: string, id: string) {
    return `sso_connections:${tenantId}:${id}`;
  }

  /** SAML: our private key for decrypting this connection's encrypted assertions. */
  spPrivateKey(c: ConnectionRow): string | undefined {
    return c.type === 'saml' && c.secret_encrypted ? this.clientSecret(c) : undefined;
  }

  clientSecret(c: ConnectionRow): string {
    return c.secret_encrypted ? decrypt(this.encryptionKey, c.secret_encrypted, this.aad(c.tenant_id, c.id)) : '';
  }

  /** `default_role` and `group_roles`: existing roles, never owner, nothing the actor lacks (org-rules.ts). */
  private grantsOf(input: { default_role?: string | undefined; group_roles?: Record<string, string> | undefined }) {
    return [
      ...(input.default_role !== undefined ? [{ field: 'default_role', role: input.default_role }] : []),
      ...Object.entries(input.group_roles ?? {}).map(([group, role]) => ({ field: `group_roles.${group}`, role })),
    ];
  }

  private async orgExists(tx: TenantTx, tenantId: string, orgId: string) {
    const org = await tx.selectFrom('organizations').select('id').where('tenant_id', '=', tenantId).where('id', '=', orgId).executeTakeFirst();
    if (!org) throw NotFound(`No organization ${orgId} in this tenant.`);
  }

  /** A SAML IdP from its metadata (XML or URL), or from entity id + SSO URL + certificates (several, for rotation). */
  private async samlConfig(input: Partial<SamlConnectionInput>, current?: SamlConfig): Promise<SamlConfig> {
    let cfg: Partial<SamlConfig> = { ...current };
    if (input.metadata_url) {
      input = { ...input, metadata_xml: await fetchMetadata(this.outbound, input.metadata_url, loopbackIdpsAllowed(this.publicUrl)) };
      cfg.metadata_url = input.metadata_url;
    }
    if (input.metadata_xml) {
      try {
        cfg = {
          ...parseIdpMetadata(input.metadata_xml),
          ...(cfg.metadata_url ? { metadata_url: cfg.metadata_url } : {}),
          ...(cfg.sp_encryption_cert ? { sp_encryption_cert: cfg.sp_encryption_cert } : {}),
          ...(cfg.want_assertions_signed !== undefined ? { want_assertions_signed: cfg.want_assertions_signed } : {}),
          ...(cfg.mfa_authn_contexts !== undefined ? { mfa_authn_contexts: cfg.mfa_authn_contexts } : {}),
        };
      } catch (err) {
        throw ValidationFailed(`The IdP metadata could not be read: ${(err as Error).message}`, [{ field: 'metadata_xml', message: 'not valid IdP metadata' }]);
      }
    }
    if (input.idp_entity_id) cfg.idp_entity_id = input.idp_entity_id;
    if (input.idp_sso_url) cfg.idp_sso_url = input.idp_sso_url;
    if (input.idp_certificates) cfg.idp_certificates = input.idp_certificates.map((p) => p.trim());
    if (input.want_assertions_signed !== undefined) cfg.want_assertions_signed = input.want_assertions_signed;
    else if (current?.want_assertions_signed !== undefined) cfg.want_assertions_signed = current.want_assertions_signed;
    if (input.mfa_authn_contexts === null) delete cfg.mfa_authn_contexts;
    else if (input.mfa_authn_contexts !== undefined) cfg.mfa_authn_contexts = [...new Set(input.mfa_authn_contexts.map((v) => v.trim()))];
    if (!cfg.idp_entity_id || !cfg.idp_sso_url || !cfg.idp_certificates?.length) {
      throw ValidationFailed('Give metadata_xml, or idp_entity_id, idp_sso_url and idp_certificates.', [
        { field: 'metadata_xml', message: 'or idp_entity_id + idp_sso_url + idp_certificates' },
      ]);
    }
    const bad = describeCertificates(cfg.idp_certificates).findIndex((d) => !d.not_after);
    if (bad >= 0)
      throw ValidationFailed('A certificate is not a PEM X.509 certificate.', [{ field: `idp_certificates.${bad}`, message: 'not a PEM X.509 certificate' }]);
    return cfg as SamlConfig;
  }

  /**
   * `opts.id`: the connection's id chosen beforehand, so its ACS URL, entity ID or redirect URI
   * could be given to the IdP before its metadata existed (a setup link's SSO step).
   */
  async create(
    tenantId: string,
    actor: Actor,
    orgId: string,
    input: OidcConnectionInput | SamlConnectionInput,
    opts: { id?: string } = {},
  ): Promise<ConnectionRow> {
    // SAML: our encryption key pair for this connection, so IdPs may encrypt assertions to us.
    const spKey = input.type === 'saml' ? await generateSpEncryptionKey(`Tessera SP ${input.name}`) : undefined;
    const samlCfg = input.type === 'saml' ? { ...(await this.samlConfig(input)), sp_encryption_cert: spKey!.certificatePem } : undefined;
    if (input.type === 'oidc') await this.outbound.assertAllowedTarget(input.issuer_url, 'issuer_url');
    const oidcInput = input as OidcConnectionInput;
    const config = samlCfg ?? { issuer_url: oidcInput.issuer_url, client_id: oidcInput.client_id, scopes: oidcInput.scopes ?? ['openid', 'email', 'profile'] };
    return inTenant(this.db, tenantId, async (tx) => {
      await this.orgExists(tx, tenantId, orgId);
      await assertGrantable(tx, tenantId, orgId, actor, this.grantsOf({ default_role: input.default_role ?? 'member', group_roles: input.group_roles }));
      const inserted = await tx
        .insertInto('sso_connections')
        .values({
          tenant_id: tenantId,
          org_id: orgId,
          ...(opts.id ? { id: opts.id } : {}),
          type: input.type,
          name: input.name,
          enabled: offUntilAnOwnerTurnsItOn(actor) ? false : (input.enabled ?? true),
          auto_provision: input.auto_provision ?? true,
          default_role: input.default_role ?? 'member',
          attribute_mapping: JSON.stringify(input.attribute_mapping ?? {}),
          group_roles: JSON.stringify(input.group_roles ?? {}),
          config: JSON.stringify(config),
          secret_encrypted: null,
          last_error: null,
          last_error_at: null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      const secret = input.type === 'oidc' ? input.client_secret : spKey?.privateKeyPem;
      const row = secret
        ? await tx
            .updateTable('sso_connections')
            .set({ secret_encrypted: encrypt(this.encryptionKey, secret, this.aad(tenantId, inserted.id)) })
            .where('tenant_id', '=', tenantId)
            .where('id', '=', inserted.id)
            .returningAll()
            .executeTakeFirstOrThrow()
        : inserted;
      await insertAudit(tx, {
        tenant_id: tenantId,
        org_id: orgId,
        actor,
        action: 'connection.created',
        target_type: 'connection',
        target_id: row.id,
        before: null,
        after: { name: row.name, type: row.type },
      });
      return row;
    });
  }

  async list(tenantId: string, orgId: string) {
    return inTenant(this.db, tenantId, async (tx) => {
      await this.orgExists(tx, tenantId, orgId);
      return tx.selectFrom('sso_connections').selectAll().where('tenant_id', '=', tenantId).where('org_id', '=', orgId).orderBy('created_at').execute();
    });
  }

  async get(tenantId: string, orgId: string, id: string): Promise<ConnectionRow> {
    const row = await inTenant(this.db, tenantId, (tx) =>
      tx.selectFrom('sso_connections').selectAll().where('tenant_id', '=', tenantId).where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst(),
    );
    if (!row) throw NotFound('No such SSO connection in this organization.');
    return row;
  }

  /** By id alone (the callback URL names only the connection). */
  async find(tenantId: string, id: string): Promise<ConnectionRow | undefined> {
    return inTenant(this.db, tenantId, (tx) =>
      tx.selectFrom('sso_connections').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst(),
    );
  }

  /** The organization's first enabled connection, for routing sign-ins. */
  async enabledFor(tenantId: string, orgId: string): Promise<ConnectionRow | undefined> {
    return inTenant(this.db, tenantId, (tx) =>
      tx
        .selectFrom('sso_connections')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('org_id', '=', orgId)
        .where('enabled', '=', true)
        .orderBy('created_at')
        .executeTakeFirst(),
    );
  }

  async update(tenantId: string, actor: Actor, orgId: string, id: string, patch: ConnectionPatch): Promise<ConnectionRow> {
    if (patch.issuer_url) await this.outbound.assertAllowedTarget(patch.issuer_url, 'issuer_url');
    return inTenant(this.db, tenantId, async (tx) => {
      const before = await tx
        .selectFrom('sso_connections')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('org_id', '=', orgId)
        .where('id', '=', id)
        .forUpdate()
        .executeTakeFirst();
      if (!before) throw NotFound('No such SSO connection in this organization.');
      await assertGrantable(tx, tenantId, orgId, actor, this.grantsOf(patch));
      const cfg =
        before.type === 'saml' &&
        (patch.metadata_xml ||
          patch.metadata_url ||
          patch.idp_entity_id ||
          patch.idp_sso_url ||
          patch.idp_certificates ||
          patch.want_assertions_signed !== undefined ||
          patch.mfa_authn_contexts !== undefined)
          ? ((await this.samlConfig(patch, before.config as unknown as SamlConfig)) as unknown as Record<string, unknown>)
          : (before.config as Record<string, unknown>);
      const after = await tx
        .updateTable('sso_connections')
        .set({
          ...(patch.name !== undefined ? { name: patch.name } : {}),
          ...(offUntilAnOwnerTurnsItOn(actor) ? { enabled: false } : patch.enabled !== undefined ? { enabled: patch.enabled } : {}),
          ...(patch.auto_provision !== undefined ? { auto_provision: patch.auto_provision } : {}),
          ...(patch.default_role !== undefined ? { default_role: patch.default_role } : {}),
          ...(patch.attribute_mapping ? { attribute_mapping: JSON.stringify(patch.attribute_mapping) } : {}),
          ...(patch.group_roles ? { group_roles: JSON.stringify(patch.group_roles) } : {}),
          config: JSON.stringify({
            ...cfg,
            ...(patch.issuer_url ? { issuer_url: patch.issuer_url } : {}),
            ...(patch.client_id ? { client_id: patch.client_id } : {}),
            ...(patch.scopes ? { scopes: patch.scopes } : {}),
          }),
          ...(patch.client_secret ? { secret_encrypted: encrypt(this.encryptionKey, patch.client_secret, this.aad(tenantId, id)) } : {}),
          updated_at: new Date(),
        })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await insertAudit(tx, {
        tenant_id: tenantId,
        org_id: orgId,
        actor,
        action: 'connection.updated',
        target_type: 'connection',
        target_id: id,
        before: { name: before.name, enabled: before.enabled },
        after: { name: after.name, enabled: after.enabled },
      });
      return after;
    });
  }

  async delete(tenantId: string, actor: Actor, orgId: string, id: string) {
    await inTenant(this.db, tenantId, async (tx) => {
      const before = await tx
        .selectFrom('sso_connections')
        .select(['id', 'name'])
        .where('tenant_id', '=', tenantId)
        .where('org_id', '=', orgId)
        .where('id', '=', id)
        .executeTakeFirst();
      if (!before) throw NotFound('No such SSO connection in this organization.');
      // Its links to accounts go with it (cascade); the audit row says how many.
      const links = await tx
        .selectFrom('sso_identities')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('tenant_id', '=', tenantId)
        .where('connection_id', '=', id)
        .executeTakeFirstOrThrow();
      await tx.deleteFrom('sso_connections').where('tenant_id', '=', tenantId).where('id', '=', id).execute();
      await insertAudit(tx, {
        tenant_id: tenantId,
        org_id: orgId,
        actor,
        action: 'connection.deleted',
        target_type: 'connection',
        target_id: id,
        before,
        after: { links_removed: Number(links.n) },
      });
    });
  }

  /** Which connections a user came through (admins see where an account was provisioned from). */
  async identitiesOf(tenantId: string, userId: string) {
    const rows = await inTenant(this.db, tenantId, (tx) =>
      tx
        .selectFrom('sso_identities as i')
        .innerJoin('sso_connections as c', (j) => j.onRef('c.tenant_id', '=', 'i.tenant_id').onRef('c.id', '=', 'i.connection_id'))
        .select(['i.connection_id', 'c.org_id', 'c.name', 'c.type', 'i.subject', 'i.created_at', 'i.last_login_at'])
        .where('i.tenant_id', '=', tenantId)
        .where('i.user_id', '=', userId)
        .orderBy('i.created_at')
        .execute(),
    );
    return rows.map((r) => ({
      connection_id: r.connection_id,
      connection_name: r.name,
      type: r.type,
      organization_id: r.org_id,
      subject: r.subject,
      created_at: r.created_at.toISOString(),
      last_login_at: r.last_login_at?.toISOString() ?? null,
    }));
  }

  /**
   * Re-reads the metadata of every SAML connection configured by URL (across tenants; the
   * maintenance job calls this), so a certificate rollover at the IdP reaches us. A fetch that
   * fails keeps the last good metadata and records the reason.
   */
  async refreshSamlMetadata(): Promise<{ refreshed: number; failed: number }> {
    const rows = await this.db.selectFrom('sso_connections').selectAll().where('type', '=', 'saml').where(sql<boolean>`config ? 'metadata_url'`).execute();
    let refreshed = 0;
    let failed = 0;
    for (const c of rows) {
      const current = c.config as unknown as SamlConfig;
      try {
        const next = await this.samlConfig({ metadata_url: current.metadata_url }, current);
        await inTenant(this.db, c.tenant_id, (tx) =>
          tx
            .updateTable('sso_connections')
            .set({ config: JSON.stringify(next), updated_at: new Date() })
            .where('tenant_id', '=', c.tenant_id)
            .where('id', '=', c.id)
            .execute(),
        );
        refreshed++;
      } catch (err) {
        failed++;
        await this.recordError(c.tenant_id, c.id, `metadata refresh failed: ${(err as Error).message}`);
      }
    }
    return { refreshed, failed };
  }

  /** The exact reason of a failed sign-in, for the connection's admins (users see a generic page). */
  async recordError(tenantId: string, id: string, message: string) {
    await inTenant(this.db, tenantId, (tx) =>
      tx
        .updateTable('sso_connections')
        .set({ last_error: message.slice(0, 1000), last_error_at: new Date() })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .execute(),
    );
  }
}
