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
// The young generation's size can't be set from here (V8 fixes it when the heap is made), so
// `npm start` passes `--max-semi-space-size=8` (package.json). V8's default on a machine with a
// few GB is 32 MB, and much of what Tessera allocates lives about a second — cached providers
// being replaced, tenant and client rows, requests in flight — so each scavenge of a full 32 MB
// copied ~10 MB of survivors: 20–46 ms pauses under ManyTenants. With 8 MB they stay under
// ~12–20 ms, with no throughput cost measured elsewhere (bench/REPORT.md, fourth session).

register();
const { main } = await import('../src/main.ts');
await main(process.argv.slice(2));
