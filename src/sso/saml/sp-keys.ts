// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata polyfill first.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/**
 * The SP's encryption key pair of one SAML connection: the IdP encrypts assertions to this
 * certificate (published in our SP metadata); the private key decrypts them. Self-signed, as SAML
 * metadata keys usually are — trust comes from the metadata exchange, not from a CA.
 */
export async function generateSpEncryptionKey(commonName: string): Promise<{ privateKeyPem: string; certificatePem: string }> {
  const algorithm = { name: 'RSA-OAEP', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['encrypt', 'decrypt'])) as CryptoKeyPair;
  // A certificate must be signed; an RSA-PSS/PKCS1 signing view of the same key material.
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const spki = await webcrypto.subtle.exportKey('spki', keys.publicKey);
  const signAlg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  const signingKeys = {
    privateKey: await webcrypto.subtle.importKey('pkcs8', pkcs8, signAlg, true, ['sign']),
    publicKey: await webcrypto.subtle.importKey('spki', spki, signAlg, true, ['verify']),
  };
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex'),
    name: `CN=${commonName.replace(/[,=+<>#;"\\]/g, ' ').slice(0, 60)}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 10 * 365 * 24 * 3600 * 1000),
    signingAlgorithm: signAlg,
    keys: signingKeys as CryptoKeyPair,
    extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.digitalSignature, true)],
  });
  const b64 = Buffer.from(pkcs8)
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n');
  return { privateKeyPem: `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`, certificatePem: cert.toString('pem') };
}
