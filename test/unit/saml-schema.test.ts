import test from 'ava';
import { validateSamlXml } from '../../src/sso/saml/schema-validator.ts';

// The XSD check samlify relies on against signature wrapping, through the long-lived xmllint
// workers: what the schema allows passes, what it does not is refused with the reason.
const RESPONSE = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>https://idp.test</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:Response>`;

test('a schema-valid SAML response passes; an unexpected element, a missing attribute or garbage is refused', async (t) => {
  t.deepEqual(await validateSamlXml(RESPONSE), { valid: true });
  const extra = await validateSamlXml(RESPONSE.replace('<samlp:Status>', '<samlp:Smuggled/><samlp:Status>'));
  t.false(extra.valid);
  t.regex(!extra.valid ? extra.errors.join(' ') : '', /Smuggled.*not expected/);
  t.false((await validateSamlXml(RESPONSE.replace(' Version="2.0"', ''))).valid);
  t.false((await validateSamlXml('not xml at all')).valid);
});

test('validations run concurrently and each gets a fresh xmllint (no state carries over)', async (t) => {
  const bad = RESPONSE.replace('<samlp:Status>', '<samlp:Smuggled/><samlp:Status>');
  const results = await Promise.all(Array.from({ length: 24 }, (_, i) => validateSamlXml(i % 2 ? bad : RESPONSE)));
  for (const [i, r] of results.entries()) t.is(r.valid, i % 2 === 0, `validation ${i}`);
});
