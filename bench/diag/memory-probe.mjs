/**
 * Loaded into Tessera by bench/diag/memory.ts (`--import ./bench/diag/memory-probe.mjs`), never in
 * production: once a second, one JSON line of `process.memoryUsage()` (bytes) with the wall clock
 * (`t`, epoch ms) to $MEMORY_PROBE_LOG.
 */
import { openSync, writeSync } from 'node:fs';

const out = openSync(process.env.MEMORY_PROBE_LOG ?? 'memory.jsonl', 'a');
setInterval(() => writeSync(out, `${JSON.stringify({ t: Date.now(), ...process.memoryUsage() })}\n`), 1000).unref();
