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
// `npm start` passes `--max-semi-space-size=16` (package.json). V8's own choice grows with the
// machine's memory (up to 64 MB per semi-space with 24 GB), and much of what Tessera allocates
// lives about a second — providers being replaced in the cache, tenant and client rows, requests
// in flight — so a scavenge of a full young generation copied 8–10 MB of survivors: 16–70 ms
// pauses, 15–45 of them over 20 ms per ManyTenants run. With 16 MB the largest were 13–21 ms;
// 8 MB did as well there but showed signs of costing refreshes per CPU second, 16 MB none
// beyond the machine's noise (bench/REPORT.md, fourth session).
// It also passes `--no-memory-reducer`: when the allocation rate drops — a burst of load ending —
// V8's memory reducer marks and compacts the whole heap to give memory back, and that
// `Mark-Compact (reduce)` (17–46 ms, plus its marking threads on a small machine) fell in the
// next rows: AdminOrgs.list at a fixed rate after its saturation row, p99 52–218 ms with it in
// four runs, 6.9 and 13.5 ms without. The cost: the heap stays at its peak size after a peak.

register();
const { main } = await import('../src/main.ts');
await main(process.argv.slice(2));
