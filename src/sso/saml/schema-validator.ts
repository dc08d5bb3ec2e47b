import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as samlify from 'samlify';
import { validateXML } from 'xmllint-wasm';

const DIR = fileURLToPath(new URL('./schemas/', import.meta.url));
const file = (fileName: string) => ({ fileName, contents: readFileSync(DIR + fileName, 'utf8') });

// The OASIS SAML 2.0 protocol and assertion schemas with the W3C XML-DSig and XML-Enc schemas
// they import (their DOCTYPE headers removed: nothing in them uses the declared entities).
const PROTOCOL = file('saml-schema-protocol-2.0.xsd');
const PRELOAD = [file('saml-schema-assertion-2.0.xsd'), file('xmldsig-core-schema.xsd'), file('xenc-schema.xsd')];

/**
 * samlify needs a schema validator. This one is libxml2's xmllint compiled to WebAssembly: a real
 * XSD validation, in process, without the per-validation memory leak of
 * @authenio/samlify-node-xmllint and without a Java runtime.
 */
export const samlSchemaValidator = {
  /** Counted, so a test can show which paths never reach it (it costs ~225 ms of CPU a call). */
  calls: 0,
  validate: async (xml: string) => {
    samlSchemaValidator.calls++;
    const result = await validateXML({ xml: [{ fileName: 'message.xml', contents: xml }], schema: [PROTOCOL], preload: PRELOAD });
    if (result.valid) return 'SUCCESS_VALIDATE_XML';
    throw new Error(`the SAML message does not match the SAML 2.0 schema: ${result.errors.slice(0, 3).map((e) => e.message).join('; ')}`);
  },
};

let installed = false;
export function installSamlSchemaValidator() {
  if (installed) return;
  installed = true;
  samlify.setSchemaValidator({ validate: (xml: string) => samlSchemaValidator.validate(xml) });
}
