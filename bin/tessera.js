#!/usr/bin/env node
// The `tessera` command. TypeScript sources run through tsx's loader, so there is no build step.
// The Node.js version is checked first, before anything that an older Node.js could fail on is
// loaded (tsx, the sources): this file is written for any Node.js that loads ES modules (so no
// top-level await, which Node.js 12 and 13 cannot parse).
import { nodeVersionProblem } from './node-version.js';

const tooOld = nodeVersionProblem(process.versions.node, process.execPath);
if (tooOld) {
  console.error(tooOld);
  process.exit(2);
}

// V8 learns to allocate objects straight into the old generation ("pretenuring") at allocation
// sites whose objects survived a few young-generation GCs. A burst of slow requests (lock waits,
// a slow database) teaches it that for the request path's hottest sites, and it never unlearns:
// from then on every scavenge copies what those objects keep alive, and takes several times
// longer. Set before the application is loaded, so every allocation site of Tessera's code is
// created under it (docs/performance.md, "Garbage collection settings").
const v8 = import('node:v8').then((v8) => v8.setFlagsFromString('--no-allocation-site-pretenuring'));
// `npm start` passes two more (package.json), measured in the same section:
// `--max-semi-space-size=16` (V8 fixes the young generation's size when the heap is made, so it
// can't be set from here), because much of what Tessera allocates lives about a second —
// providers replaced in the cache, tenant and client rows, requests in flight — and V8's own
// young generation, sized by the machine's memory, made each scavenge copy all of it; and
// `--no-memory-reducer`, because the heap-shrinking collection V8 starts when load drops pauses
// the requests that come next. The cost: the heap stays at its peak size after a peak.

v8.then(() => import('tsx/esm/api'))
  .then((tsx) => {
    tsx.register();
    return import('../src/main.ts');
  })
  .then((cli) => cli.main(process.argv.slice(2)));
