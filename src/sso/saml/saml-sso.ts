import { X509Certificate } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import * as samlify from 'samlify';
import type { Database } from '../../db/database.ts';
import { inTenant } from '../../db/tenant-scope.ts';
import { parseEmail } from '../../users/email-address.ts';
import type { ConnectionRow } from '../sso.table.ts';
import { checkedFor, rememberRequest, type SsoBinding, takeRequest } from '../sso-request.ts';
import { SsoRefused, type UpstreamProfile } from '../upstream.ts';
import { MS_AUTHN_METHODS_ATTRIBUTE, samlReportedMfa } from './authn-context.ts';
import { installSamlSchemaValidator } from './schema-validator.ts';

/** Clock skew allowed on NotBefore / NotOnOrAfter. */
export const SKEW_MS = 2 * 60 * 1000;
const { binding } = samlify.Constants.namespace;

export interface SamlConfig {
  metadata_url?: string;
  /** Our certificate for this connection: IdPs encrypt assertions to it (SP metadata). */
  sp_encryption_cert?: string;
  idp_entity_id: string;
  idp_sso_url: string;
  idp_certificates: string[];
  /** The assertion itself must carry a valid signature (default true; false: a signed response suffices). */
  want_assertions_signed?: boolean;
  /** AuthnContextClassRef values that mean the IdP used more than one factor (absent: the default list). */
  mfa_authn_contexts?: string[];
}

/** Whether a connection requires signed assertions (the default) — what its SP metadata says too. */
export const wantsSignedAssertions = (cfg: SamlConfig) => cfg.want_assertions_signed !== false;

export function spEntityId(publicUrl: string, slug: string, connectionId: string) {
  return `${publicUrl}/t/${slug}/sso/saml/${connectionId}/metadata`;
}
export function acsUrl(publicUrl: string, slug: string, connectionId: string) {
  return `${publicUrl}/t/${slug}/sso/saml/${connectionId}/acs`;
}

/** Certificates as admins see them: who, and until when. */
export function describeCertificates(pems: string[]) {
  return pems.map((pem) => {
    try {
      const cert = new X509Certificate(pem);
      return { subject: cert.subject, not_after: new Date(cert.validTo).toISOString(), fingerprint256: cert.fingerprint256 };
    } catch {
      return { subject: null, not_after: null, fingerprint256: null };
    }
  });
}

/** Reads an IdP's metadata XML into the fields Tessera stores. */
export function parseIdpMetadata(xml: string): SamlConfig {
  installSamlSchemaValidator();
  const idp = samlify.IdentityProvider({ metadata: xml });
  const meta = idp.entityMeta;
  // samlify answers a URL for a known binding key, or the whole { binding: URL } map.
  const raw = meta.getSingleSignOnService('redirect') as unknown;
  const sso = typeof raw === 'string' ? raw : Object.values((raw ?? {}) as Record<string, unknown>).find((v) => typeof v === 'string');
  const certs = meta.getX509Certificate('signing');
  const list = (Array.isArray(certs) ? certs : [certs]).filter(Boolean) as string[];
  return {
    idp_entity_id: meta.getEntityID(),
    idp_sso_url: typeof sso === 'string' ? sso : '',
    idp_certificates: list.map(toPem),
  };
}

function toPem(cert: string): string {
  if (cert.includes('BEGIN CERTIFICATE')) return cert.trim();
  const body = cert
    .replace(/\s+/g, '')
    .match(/.{1,64}/g)!
    .join('\n');
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----`;
}

/**
 * Checks of the raw response before samlify parses it. No DOCTYPE or entities (XXE, entity
 * expansion); no comments (they split text nodes: "alice@corp.example<!---->.evil.com");
 * exactly one Assertion and no EncryptedAssertion (signature-wrapping variants smuggle a second
 * one); no SHA-1 or unknown algorithms.
 */
const ALLOWED_ALGORITHMS = new Set([
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256',
  'http://www.w3.org/2001/04/xmlenc#sha256',
  'http://www.w3.org/2001/04/xmlenc#sha512',
  'http://www.w3.org/2001/10/xml-exc-c14n#',
  'http://www.w3.org/2001/10/xml-exc-c14n#WithComments',
  'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
  'http://www.w3.org/TR/2001/REC-xml-c14n-20010315',
  // Encrypted assertions: AES (CBC or GCM) content, RSA-OAEP key transport. Not RSA 1.5.
  'http://www.w3.org/2001/04/xmlenc#aes128-cbc',
  'http://www.w3.org/2001/04/xmlenc#aes256-cbc',
  'http://www.w3.org/2009/xmlenc11#aes128-gcm',
  'http://www.w3.org/2009/xmlenc11#aes256-gcm',
  'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
  'http://www.w3.org/2009/xmlenc11#rsa-oaep',
  'http://www.w3.org/2000/09/xmldsig#sha1', // only as RSA-OAEP's mask digest (xenc default), never for signatures
]);

/**
 * SHA-1 inside a signature (SignedInfo's SignatureMethod / DigestMethod) is refused. (SHA-1 as
 * RSA-OAEP's mask digest in an EncryptionMethod is the XML-Enc default and not a signature.)
 * Checked on the raw response and again on the decrypted one.
 */
export function rejectWeakSignatures(xml: string) {
  for (const signedInfo of xml.match(/<(?:[\w-]+:)?SignedInfo[\s>][\s\S]*?<\/(?:[\w-]+:)?SignedInfo>/g) ?? []) {
    for (const m of signedInfo.matchAll(/Algorithm="([^"]*)"/g)) {
      if (/sha1$/i.test(m[1]!)) throw new SsoRefused(`algorithm ${m[1]} is not accepted (SHA-1 signatures and digests are refused)`);
    }
  }
}

export function precheck(xml: string): { encrypted: boolean } {
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new SsoRefused('the response contains a DOCTYPE or entity declaration');
  if (xml.includes('<!--')) throw new SsoRefused('the response contains XML comments');
  const plain = (xml.match(/<(?:[\w-]+:)?Assertion[\s>]/g) ?? []).length;
  const encrypted = (xml.match(/<(?:[\w-]+:)?EncryptedAssertion[\s>]/g) ?? []).length;
  if (plain + encrypted !== 1) throw new SsoRefused(`the response holds ${plain + encrypted} assertions; exactly one is accepted`);
  rejectWeakSignatures(xml);
  for (const m of xml.matchAll(/Algorithm="([^"]*)"/g)) {
    if (!ALLOWED_ALGORITHMS.has(m[1]!)) throw new SsoRefused(`algorithm ${m[1]} is not accepted (SHA-1 and unknown algorithms are refused)`);
  }
  return { encrypted: encrypted === 1 };
}

/**
 * Tessera as a SAML service provider for one organization's IdP. samlify checks the XML schema,
 * the signature, the issuer and the time window; the checks it leaves out — Audience,
 * Destination, Recipient, InResponseTo bound to a request we issued, and assertion replay — are
 * done here, each with a test.
 */
export class SamlSso {
  constructor(
    private readonly db: Database,
    private readonly publicUrl: string,
    /** Our private key for the connection's encrypted assertions (decrypted from the database). */
    private readonly spPrivateKey: (conn: ConnectionRow) => string | undefined,
  ) {
    installSamlSchemaValidator();
  }

  private sp(conn: ConnectionRow, slug: string, encPrivateKey?: string) {
    const cfg = conn.config as unknown as SamlConfig;
    return samlify.ServiceProvider({
      ...(cfg.sp_encryption_cert ? { encryptCert: cfg.sp_encryption_cert } : {}),
      ...(encPrivateKey ? { encPrivateKey } : {}),
      entityID: spEntityId(this.publicUrl, slug, conn.id),
      assertionConsumerService: [{ Binding: binding.post, Location: acsUrl(this.publicUrl, slug, conn.id) }],
      wantAssertionsSigned: wantsSignedAssertions(cfg),
      authnRequestsSigned: false,
      clockDrifts: [-SKEW_MS, SKEW_MS],
    });
  }

  /** Built once per connection version (samlify also warns once per build about the absent logout endpoint). */
  private readonly idps = new LRUCache<string, ReturnType<typeof samlify.IdentityProvider>>({ max: 1000 });

  private idp(conn: ConnectionRow, encrypted = false) {
    const key = `${conn.tenant_id}:${conn.id}:${conn.updated_at.getTime()}:${encrypted}`;
    let idp = this.idps.get(key);
    if (!idp) {
      idp = this.buildIdp(conn, encrypted);
      this.idps.set(key, idp);
    }
    return idp;
  }

  private buildIdp(conn: ConnectionRow, encrypted: boolean) {
    const cfg = conn.config as unknown as SamlConfig;
    return samlify.IdentityProvider({
      isAssertionEncrypted: encrypted,
      entityID: cfg.idp_entity_id,
      singleSignOnService: [{ Binding: binding.redirect, Location: cfg.idp_sso_url }],
      signingCert: cfg.idp_certificates as unknown as string,
      wantAuthnRequestsSigned: false,
    });
  }

  metadata(conn: ConnectionRow, slug: string): string {
    return this.sp(conn, slug).getMetadata();
  }

  /**
   * "Test connection": a certificate valid now (and a warning when it expires within 30 days),
   * and an AuthnRequest to the IdP's SSO URL can be built.
   */
  check(conn: ConnectionRow, slug: string): string {
    const cfg = conn.config as unknown as SamlConfig;
    const now = Date.now();
    const certs = describeCertificates(cfg.idp_certificates);
    const valid = certs.filter((c) => c.not_after && new Date(c.not_after).getTime() > now);
    if (!valid.length) throw new Error('every IdP signing certificate has expired or cannot be read: paste the current one (or the metadata)');
    this.sp(conn, slug).createLoginRequest(this.idp(conn), 'redirect');
    const soonest = Math.max(...valid.map((c) => new Date(c.not_after!).getTime()));
    const days = Math.floor((soonest - now) / 86_400_000);
    return `Sign-ins go to ${cfg.idp_sso_url}; the IdP's signing certificate is valid for ${days} more days${days < 30 ? ' — ask the IdP for its next one soon' : ''}.`;
  }

  /** The redirect to the IdP with an AuthnRequest whose ID we remember (InResponseTo binding). */
  async start(conn: ConnectionRow, slug: string, binding: SsoBinding): Promise<string> {
    const { id, context } = this.sp(conn, slug).createLoginRequest(this.idp(conn), 'redirect') as { id: string; context: string };
    await rememberRequest(this.db, conn, id, binding);
    return context;
  }

  /**
   * samlify accepts a response whose message OR assertion signature verifies, and stops at the
   * first that does. Requiring a signed assertion means checking the assertion's own signature:
   * the same verification, on the document with every signature outside the assertion removed
   * (the assertion's signature covers only the assertion, so removing the others changes nothing
   * it signed). `content` holds exactly one assertion and no comments (checked before).
   */
  private assertionSignatureValid(conn: ConnectionRow, content: string): boolean {
    const open = /<((?:[\w-]+:)?)Assertion[\s>]/.exec(content);
    if (!open) return false;
    const close = content.indexOf(`</${open[1]}Assertion>`, open.index);
    if (close < 0) return false;
    const end = close + `</${open[1]}Assertion>`.length;
    const outside = (part: string) => part.replace(/<((?:[\w-]+:)?)Signature[\s>][\s\S]*?<\/\1Signature>/g, '');
    const assertionOnly = outside(content.slice(0, open.index)) + content.slice(open.index, end) + outside(content.slice(end));
    try {
      const [verified] = samlify.SamlLib.verifySignature(assertionOnly, { metadata: this.idp(conn).entityMeta, signatureAlgorithm: undefined } as never) as [
        boolean,
        unknown,
      ];
      return verified === true;
    } catch {
      return false;
    }
  }

  async finish(conn: ConnectionRow, slug: string, samlResponse: string): Promise<{ profile: UpstreamProfile; binding: SsoBinding }> {
    if (!samlResponse || samlResponse.length > 500_000) throw new SsoRefused('no SAMLResponse, or one too large');
    const xml = Buffer.from(samlResponse, 'base64').toString('utf8');
    const { encrypted } = precheck(xml);
    // InResponseTo first, and used up at once: only an answer to a sign-in this connection
    // started reaches the schema validation and signature checks — xmllint-wasm costs ~225 ms of
    // CPU per message (bench SamlAcs), which an unauthenticated POST must not be able to buy.
    const claimed = /<(?:[\w-]+:)?Response\b[^>]*?\sInResponseTo="([^"]{1,200})"/.exec(xml)?.[1];
    if (!claimed) throw new SsoRefused('unsolicited response (no InResponseTo); IdP-initiated sign-in is not accepted');
    const request = await takeRequest(this.db, conn, claimed, `InResponseTo ${claimed}`);
    return checkedFor(request.binding, async () => {
      const key = encrypted ? this.spPrivateKey(conn) : undefined;
      if (encrypted && !key) throw new SsoRefused('the assertion is encrypted but this connection has no decryption key');
      let parsed: { extract: any; samlContent: string };
      try {
        parsed = (await this.sp(conn, slug, key).parseLoginResponse(this.idp(conn, encrypted), 'post', {
          body: { SAMLResponse: samlResponse },
        })) as typeof parsed;
      } catch (err) {
        throw new SsoRefused(`samlify refused the response: ${(err as Error).message ?? err}`);
      }
      const ex = parsed.extract;
      // The verified message: for an encrypted assertion, samlify verified the decrypted document
      // but hands back the encrypted one, so decrypt it again (same key) to read what it leaves out.
      const content = encrypted
        ? (
            await (samlify.SamlLib as unknown as { decryptAssertion(sp: unknown, xml: string): Promise<[string, string]> }).decryptAssertion(
              this.sp(conn, slug, key),
              xml,
            )
          )[0]
        : parsed.samlContent;
      // Still exactly one assertion (no wrapping inside the encrypted part), and no SHA-1 in the
      // signature that was inside it.
      if ((content.match(/<(?:[\w-]+:)?Assertion[\s>]/g) ?? []).length !== 1)
        throw new SsoRefused('the decrypted response does not hold exactly one assertion');
      if (encrypted) rejectWeakSignatures(content);
      const acs = acsUrl(this.publicUrl, slug, conn.id);
      const cfg = conn.config as unknown as SamlConfig;
      if (wantsSignedAssertions(cfg) && !this.assertionSignatureValid(conn, content)) {
        throw new SsoRefused('the assertion is not signed by the IdP (this connection requires signed assertions, as its SP metadata says)');
      }

      if (ex.issuer !== cfg.idp_entity_id) throw new SsoRefused(`issuer ${ex.issuer} is not this connection's IdP`);
      const audiences = [ex.audience].flat().filter(Boolean);
      if (!audiences.includes(spEntityId(this.publicUrl, slug, conn.id)))
        throw new SsoRefused(`audience ${audiences.join(', ') || '(none)'} is not this service provider`);
      if (ex.response?.destination !== acs) throw new SsoRefused(`destination ${ex.response?.destination ?? '(none)'} is not this ACS`);
      const root = /^\s*(?:<\?xml[^>]*>\s*)?<(?:[\w-]+:)?Assertion[\s>]/.test(content) ? [] : ['Response'];
      const confirmation = samlify.Extractor.extract(content, [
        {
          key: 'data',
          localPath: [...root, 'Assertion', 'Subject', 'SubjectConfirmation', 'SubjectConfirmationData'],
          attributes: ['Recipient', 'InResponseTo', 'NotOnOrAfter'],
        },
        { key: 'assertion', localPath: [...root, 'Assertion'], attributes: ['ID'] },
        { key: 'authnContext', localPath: [...root, 'Assertion', 'AuthnStatement', 'AuthnContext', 'AuthnContextClassRef'], attributes: [] },
      ]) as {
        data?: { recipient?: string; inResponseTo?: string; notOnOrAfter?: string };
        assertion?: string;
        authnContext?: string | string[];
      };
      // (a single selected attribute comes back as its value, not as an object)
      if (confirmation.data?.recipient !== acs) throw new SsoRefused(`recipient ${confirmation.data?.recipient ?? '(none)'} is not this ACS`);
      const now = Date.now();
      const notBefore = ex.conditions?.notBefore ? Date.parse(ex.conditions.notBefore) : NaN;
      const notOnOrAfter = ex.conditions?.notOnOrAfter ? Date.parse(ex.conditions.notOnOrAfter) : NaN;
      if (Number.isNaN(notOnOrAfter) || now >= notOnOrAfter + SKEW_MS) throw new SsoRefused('the assertion has expired');
      if (!Number.isNaN(notBefore) && now < notBefore - SKEW_MS) throw new SsoRefused('the assertion is not valid yet');

      // InResponseTo: a request we issued for this connection, used once.
      const inResponseTo = ex.response?.inResponseTo;
      if (!inResponseTo) throw new SsoRefused('unsolicited response (no InResponseTo); IdP-initiated sign-in is not accepted');
      if (confirmation.data?.inResponseTo && confirmation.data.inResponseTo !== inResponseTo)
        throw new SsoRefused('InResponseTo of the response and the assertion differ');
      // The verified InResponseTo must be the one the request was found by.
      if (inResponseTo !== claimed) throw new SsoRefused('InResponseTo changed between the raw and the verified response');

      // Replay: each assertion id once, remembered until it would have expired anyway.
      const assertionId = typeof confirmation.assertion === 'string' ? confirmation.assertion : undefined;
      if (!assertionId) throw new SsoRefused('the assertion has no ID');
      const fresh = await inTenant(this.db, conn.tenant_id, (tx) =>
        tx
          .insertInto('saml_replay')
          .values({ tenant_id: conn.tenant_id, connection_id: conn.id, assertion_id: assertionId, expires_at: new Date(notOnOrAfter + SKEW_MS) })
          .onConflict((oc) => oc.doNothing())
          .returning('assertion_id')
          .executeTakeFirst(),
      );
      if (!fresh) throw new SsoRefused(`assertion ${assertionId} was already used (replay)`);

      const attributes = (ex.attributes ?? {}) as Record<string, string | string[]>;
      const map = {
        email: 'email',
        name: 'name',
        given_name: 'given_name',
        family_name: 'family_name',
        groups: 'groups',
        ...(conn.attribute_mapping as object),
      } as Record<string, string>;
      const one = (k: string) => {
        const v = attributes[map[k]!];
        return typeof v === 'string' ? v.slice(0, 200) : Array.isArray(v) ? String(v[0] ?? '').slice(0, 200) : undefined;
      };
      const nameId = typeof ex.nameID === 'string' ? ex.nameID : '';
      const asserted = (one('email') ?? (nameId.includes('@') ? nameId : '')).trim();
      if (!asserted) throw new SsoRefused('the assertion carries no email address');
      const parsedEmail = parseEmail(asserted);
      if (!parsedEmail.ok)
        throw new SsoRefused(`the assertion carries ${JSON.stringify(asserted)}, which is not a usable email address: it ${parsedEmail.problem}`);
      const email = parsedEmail.email.address;
      if (!nameId) throw new SsoRefused('the assertion has no NameID');
      const groupsRaw = attributes[map.groups!];
      const groups = Array.isArray(groupsRaw) ? groupsRaw.map(String) : typeof groupsRaw === 'string' ? [groupsRaw] : undefined;
      // Read from the verified content, as everything above: a class ref, or Microsoft's methods attribute.
      const methods = attributes[MS_AUTHN_METHODS_ATTRIBUTE];
      const contexts = [confirmation.authnContext, methods]
        .flat()
        .filter((v): v is string => typeof v === 'string')
        .slice(0, 50);
      const mfa = samlReportedMfa(contexts, cfg.mfa_authn_contexts);
      return {
        binding: request.binding,
        profile: { subject: nameId, email, name: one('name'), given_name: one('given_name'), family_name: one('family_name'), groups, mfa },
      };
    });
  }
}
