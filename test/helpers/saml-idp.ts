import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as samlify from 'samlify';
import { installSamlSchemaValidator } from '../../src/sso/saml/schema-validator.ts';

/** A throwaway RSA key and self-signed certificate (openssl, as any IdP admin would make one). */
export function keyPair(cn = 'Test IdP'): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'saml-key-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-sha256',
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
}

export interface ResponseOptions {
  inResponseTo: string;
  nameId: string;
  attributes?: Record<string, string | string[]>;
  /** The AuthnContextClassRef of the AuthnStatement (default: Password). */
  authnContextClassRef?: string;
  /** Override any tag of samlify's response template (Audience, Destination, times, …). */
  tags?: Record<string, string>;
}

const iso = (ms: number) => new Date(Date.now() + ms).toISOString();
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * A real SAML IdP made with samlify: it reads our AuthnRequests and signs responses (the
 * assertion, as our SP metadata asks) with its own key.
 */
export class TestSamlIdp {
  readonly entityId: string;
  readonly ssoUrl = 'https://idp.test/sso';
  readonly idp: ReturnType<typeof samlify.IdentityProvider>;

  constructor(
    readonly keys = keyPair(),
    opts: { entityId?: string; signatureAlgorithm?: string; encrypt?: boolean } = {},
  ) {
    installSamlSchemaValidator();
    this.entityId = opts.entityId ?? 'https://idp.test/metadata';
    this.idp = samlify.IdentityProvider({
      entityID: this.entityId,
      privateKey: keys.key,
      signingCert: keys.cert,
      singleSignOnService: [{ Binding: samlify.Constants.namespace.binding.redirect, Location: this.ssoUrl }],
      requestSignatureAlgorithm: opts.signatureAlgorithm ?? 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
      // Encrypts to the certificate in the SP's metadata.
      isAssertionEncrypted: opts.encrypt ?? false,
    });
  }

  /** The AuthnRequest id of the redirect our SP sent the browser with. */
  async requestIdOf(sp: ReturnType<typeof samlify.ServiceProvider>, redirectUrl: string): Promise<string> {
    const url = new URL(redirectUrl);
    const parsed = await this.idp.parseLoginRequest(sp, 'redirect', { query: Object.fromEntries(url.searchParams), octetString: url.search.slice(1) });
    return (parsed.extract as { request: { id: string } }).request.id;
  }

  /** A signed SAMLResponse (base64) for our SP. */
  async response(sp: ReturnType<typeof samlify.ServiceProvider>, acs: string, audience: string, o: ResponseOptions): Promise<string> {
    const attributes = Object.entries(o.attributes ?? {})
      .map(
        ([name, v]) =>
          `<saml:Attribute Name="${esc(name)}">${[v]
            .flat()
            .map((x) => `<saml:AttributeValue xsi:type="xs:string">${esc(x)}</saml:AttributeValue>`)
            .join('')}</saml:Attribute>`,
      )
      .join('');
    const id = `_${randomUUID()}`;
    const tags: Record<string, string> = {
      ID: id,
      AssertionID: `_${randomUUID()}`,
      Destination: acs,
      Audience: audience,
      SubjectRecipient: acs,
      NameIDFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
      NameID: esc(o.nameId),
      Issuer: this.entityId,
      IssueInstant: iso(0),
      StatusCode: 'urn:oasis:names:tc:SAML:2.0:status:Success',
      ConditionsNotBefore: iso(-60_000),
      ConditionsNotOnOrAfter: iso(5 * 60_000),
      SubjectConfirmationDataNotOnOrAfter: iso(5 * 60_000),
      InResponseTo: o.inResponseTo,
      AuthnStatement: `<saml:AuthnStatement AuthnInstant="${iso(0)}" SessionIndex="_s1"><saml:AuthnContext><saml:AuthnContextClassRef>${esc(o.authnContextClassRef ?? 'urn:oasis:names:tc:SAML:2.0:ac:classes:Password')}</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`,
      AttributeStatement: attributes ? `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>` : '',
      ...o.tags,
    };
    const result = await this.idp.createLoginResponse(
      sp,
      { extract: { request: { id: o.inResponseTo } } },
      'post',
      { email: o.nameId },
      (template: string) => ({
        id: tags.ID!,
        context: template.replace(/\{(\w+)\}/g, (m, k: string) => (k in tags ? tags[k]! : m)),
      }),
    );
    return (result as { context: string }).context;
  }
}
