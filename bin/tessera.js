#!/usr/bin/env node
// The `tessera` command. TypeScript sources run through tsx's loader, so there is no build step.
import v8 from 'node:v8';
import { register } from 'tsx/esm/api';

// V8 learns to allocate objects straight into the old generation ("pretenuring") at allocation
// sites whose objects survived a few young-generation GCs. A burst of slow requests (lock waits,
// a slow database) teaches it that for the request path's hottest sites, and it never unlearns:
// from then on those objects fill the old generation, keep young ones alive through every
// scavenge, and each scavenge took 7–14 ms instead of ~1 (`npm run bench -- AdminOrgs`, with
// --trace-gc: list p99 12–28 ms after the addMember row, 5.8 ms with this off). Set before the
// application is loaded, so every allocation site of Tessera's code is created under it.
v8.setFlagsFromString('--no-allocation-site-pretenuring');

register();
const { main } = await import('../src/main.ts');
await main(process.argv.slice(2));
