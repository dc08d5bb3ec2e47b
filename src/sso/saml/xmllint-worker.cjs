// A long-lived xmllint worker (see schema-validator.ts). xmllint-wasm's own API starts a new
// worker and compiles its 780 KB WebAssembly module for every validation (~225 ms of CPU); here
// the module is compiled once per worker and each validation gets a fresh instance of it (fresh
// memory and file system, as xmllint's main() expects), which costs a few milliseconds.
'use strict';
const { parentPort } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const { join, dirname } = require('node:path');

const packageDir = dirname(require.resolve('xmllint-wasm/package.json'));
// Loading the glue also registers xmllint-wasm's own message handler; it ignores our messages
// (they do not carry its key).
const createXmllint = require(join(packageDir, 'xmllint-node.js'));
const compiled = new WebAssembly.Module(readFileSync(join(packageDir, 'xmllint.wasm')));

parentPort.on('message', (job) => {
  if (job?.tesseraXmllint !== true) return;
  let stdout = '';
  let stderr = '';
  let answered = false;
  const answer = (exitCode, err) => {
    if (answered) return;
    answered = true;
    parentPort.postMessage({ tesseraXmllint: true, id: job.id, exitCode, stdout, stderr: err ?? stderr });
  };
  try {
    createXmllint({
      inputFiles: job.inputFiles,
      arguments: job.args,
      print: (t) => {
        stdout += `${t}\n`;
      },
      printErr: (t) => {
        stderr += `${t}\n`;
      },
      onExit: (code) => answer(code),
      onAbort: (reason) => answer(-1, `WASM Abort: ${reason}`),
      wasmMemory: new WebAssembly.Memory({ initial: 256, maximum: 512 }),
      instantiateWasm(imports, done) {
        WebAssembly.instantiate(compiled, imports).then(
          (instance) => done(instance, compiled),
          (err) => answer(-1, String(err)),
        );
        return {};
      },
    }).catch((err) => answer(-1, String(err?.message || err)));
  } catch (err) {
    answer(-1, String(err?.message || err));
  }
});
