import test from 'ava';
import { loopbackIdpsAllowed } from '../../src/sso/connection.service.ts';
import { precheck } from '../../src/sso/saml/saml-sso.ts';

test('plain-http IdPs on loopback only while Tessera itself runs on loopback', (t) => {
  t.true(loopbackIdpsAllowed('http://localhost:3000'));
  t.true(loopbackIdpsAllowed('http://127.0.0.1:8080'));
  t.false(loopbackIdpsAllowed('https://id.example.com'));
});

test('SAML pre-checks refuse what must never reach the parser', (t) => {
  const one = '<samlp:Response><saml:Assertion ID="a"></saml:Assertion></samlp:Response>';
  t.deepEqual(precheck(one), { encrypted: false });
  t.throws(() => precheck(`<!DOCTYPE x>${one}`), { message: /DOCTYPE/ });
  t.throws(() => precheck(one.replace('ID="a">', 'ID="a"><!-- x -->')), { message: /comments/ });
  t.throws(() => precheck('<samlp:Response></samlp:Response>'), { message: /0 assertions/ });
  t.throws(() => precheck(one.replace('</samlp:Response>', '<saml:Assertion ID="b"></saml:Assertion></samlp:Response>')), { message: /2 assertions/ });
  t.throws(
    () =>
      precheck(one.replace('ID="a">', 'ID="a"><ds:SignedInfo><ds:SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/></ds:SignedInfo>')),
    { message: /SHA-1/ },
  );
  t.throws(() => precheck(one.replace('ID="a">', 'ID="a"><x Algorithm="urn:made-up"/>')), { message: /not accepted/ });
  t.deepEqual(precheck('<samlp:Response><saml:EncryptedAssertion></saml:EncryptedAssertion></samlp:Response>'), { encrypted: true });
});
