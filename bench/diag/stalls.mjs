/**
 * Loaded into Tessera for a stall hunt, never in production:
 *
 *   STALLS_LOG=/tmp/stalls.txt npm run bench -- AdminOrgs.list --node-flags="--import ./bench/diag/stalls.mjs" --slow-log /tmp/slow.txt
 *
 * One line per event, wall-clock seconds first, so it lines up with the load generator's
 * `--slow-log` and with `perf record -a -k realtime` (bench/README.md, "Hunting a latency tail"):
 *
 *   req  <finished at> <ms>  <method> <path>   a request that took over 20 ms inside Tessera
 *   loop <noticed at>  <ms>                    the event loop ran a 1 ms timer over 10 ms late
 *   gc   <started at>  <ms>  kind<n>           a collection over 5 ms (1 scavenge, 2 minor mark-sweep, 4 mark-compact)
 */
import { openSync, writeSync } from 'node:fs';
import http from 'node:http';
import { PerformanceObserver } from 'node:perf_hooks';

const out = openSync(process.env.STALLS_LOG ?? 'stalls.txt', 'a');
const line = (text) => writeSync(out, `${text}\n`);
const wall = (msSinceOrigin = performance.now()) => ((performance.timeOrigin + msSinceOrigin) / 1000).toFixed(3);

const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (...args) {
  const [event, req, res] = args;
  if (event === 'request') {
    const started = performance.now();
    res.once('finish', () => {
      const ms = performance.now() - started;
      if (ms > 20) line(`req ${wall()} ${ms.toFixed(1)} ${req.method} ${req.url.slice(0, 80)}`);
    });
  }
  return emit.apply(this, args);
};

let last = performance.now();
setInterval(() => {
  const now = performance.now();
  const late = now - last - 1;
  last = now;
  if (late > 10) line(`loop ${wall(now)} ${late.toFixed(1)}`);
}, 1).unref();

new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (e.duration > 5) line(`gc ${wall(e.startTime)} ${e.duration.toFixed(1)} kind${e.detail?.kind}`);
}).observe({ entryTypes: ['gc'] });
