import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as samlify from 'samlify';

const DIR = fileURLToPath(new URL('./schemas/', import.meta.url));
const file = (fileName: string) => ({ fileName, contents: readFileSync(DIR + fileName, 'utf8') });

// The OASIS SAML 2.0 protocol and assertion schemas with the W3C XML-DSig and XML-Enc schemas
// they import (their DOCTYPE headers removed: nothing in them uses the declared entities).
const PROTOCOL = file('saml-schema-protocol-2.0.xsd');
const PRELOAD = [file('saml-schema-assertion-2.0.xsd'), file('xmldsig-core-schema.xsd'), file('xenc-schema.xsd')];

interface Result {
  exitCode: number;
  stderr: string;
}

/**
 * A few long-lived xmllint workers (xmllint-worker.cjs): libxml2's xmllint compiled to
 * WebAssembly, its module compiled once per worker. Validations queue per worker; a worker that
 * dies is replaced on the next call.
 */
class XmllintPool {
  private readonly workers: Array<{ worker: Worker; pending: Map<number, (r: Result) => void> } | undefined>;
  private next = 0;
  private ids = 0;

  constructor(size: number) {
    this.workers = Array.from({ length: size }, () => undefined);
  }

  private worker(i: number) {
    let w = this.workers[i];
    if (!w) {
      const worker = new Worker(fileURLToPath(new URL('./xmllint-worker.cjs', import.meta.url)), { execArgv: [] });
      const entry = { worker, pending: new Map<number, (r: Result) => void>() };
      worker.on('message', (m: { tesseraXmllint?: boolean; id: number } & Result) => {
        if (m?.tesseraXmllint !== true) return;
        entry.pending.get(m.id)?.({ exitCode: m.exitCode, stderr: m.stderr });
        entry.pending.delete(m.id);
        if (entry.pending.size === 0) worker.unref();
      });
      const fail = (err: unknown) => {
        this.workers[i] = undefined;
        for (const done of entry.pending.values()) done({ exitCode: -1, stderr: `xmllint worker failed: ${String(err)}` });
        entry.pending.clear();
      };
      worker.on('error', fail);
      worker.on('exit', (code) => fail(`exited with ${code}`));
      // Referenced only while it has work (after the listeners: attaching one refs it again), so
      // an idle pool never keeps the process alive and a pending validation always does.
      worker.unref();
      w = entry;
      this.workers[i] = w;
    }
    return w;
  }

  run(inputFiles: Array<{ fileName: string; contents: string }>, args: string[]): Promise<Result> {
    const i = this.next++ % this.workers.length;
    const w = this.worker(i);
    const id = ++this.ids;
    return new Promise((resolve) => {
      if (w.pending.size === 0) w.worker.ref();
      w.pending.set(id, resolve);
      w.worker.postMessage({ tesseraXmllint: true, id, inputFiles, args });
    });
  }
}

const pool = new XmllintPool(Math.max(1, Math.min(4, availableParallelism())));

/** XSD validation of a SAML protocol message: true (valid), or the first errors. */
export async function validateSamlXml(xml: string): Promise<{ valid: true } | { valid: false; errors: string[] }> {
  const r = await pool.run([{ fileName: 'message.xml', contents: xml }, PROTOCOL, ...PRELOAD], ['--schema', PROTOCOL.fileName, '--noout', 'message.xml']);
  if (r.exitCode === 0) return { valid: true };
  if (r.exitCode === 3 || r.exitCode === 4) {
    return {
      valid: false,
      errors: r.stderr
        .split('\n')
        .filter((l) => l && !l.endsWith(' validates') && !l.endsWith(' fails to validate'))
        .slice(0, 3),
    };
  }
  throw new Error(`xmllint could not validate the message (exit ${r.exitCode}): ${r.stderr.slice(0, 200)}`);
}

/**
 * samlify needs a schema validator. This one is libxml2's xmllint compiled to WebAssembly: a real
 * XSD validation, in process, without the per-validation memory leak of
 * @authenio/samlify-node-xmllint and without a Java runtime.
 */
export const samlSchemaValidator = {
  /** Counted, so a test can show which paths never reach it. */
  calls: 0,
  validate: async (xml: string) => {
    samlSchemaValidator.calls++;
    const result = await validateSamlXml(xml);
    if (result.valid) return 'SUCCESS_VALIDATE_XML';
    throw new Error(`the SAML message does not match the SAML 2.0 schema: ${result.errors.join('; ')}`);
  },
};

let installed = false;
export function installSamlSchemaValidator() {
  if (installed) return;
  installed = true;
  samlify.setSchemaValidator({ validate: (xml: string) => samlSchemaValidator.validate(xml) });
}
