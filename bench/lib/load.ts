export interface LoadResult {
  ops: number;
  errors: number;
  firstError?: string;
  wallSeconds: number;
  latenciesMs: number[];
  /** Fixed rate only: the 99th percentile of how late the generator sent an operation. */
  sendLagP99Ms?: number;
}

export type Op = (worker: number) => Promise<void>;

/** Told of every completed fixed-rate operation: when it was sent (performance.now()) and how long it took. */
export type SlowLog = (sentAt: number, ms: number) => void;

/**
 * Saturation (closed loop): `concurrency` workers, each starting its next operation when the
 * last one ends, for `durationMs`.
 */
export async function saturate(op: Op, concurrency: number, durationMs: number): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const end = start + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          await op(worker);
          latenciesMs.push(performance.now() - t0);
        } catch (err) {
          errors++;
          firstError ??= (err as Error).message;
        }
      }
    }),
  );
  return { ops: latenciesMs.length, errors, firstError, wallSeconds: (performance.now() - start) / 1000, latenciesMs };
}

/**
 * Fixed arrival rate (open loop): an operation starts every 1/rate seconds whether or not the
 * earlier ones have finished, so a server stall shows in the percentiles instead of quietly
 * lowering the rate (no coordinated omission). At most `maxInFlight` run at once; arrivals beyond
 * that count as errors — the generator never waits for the server.
 *
 * Latency counts from when the operation was sent. How late the generator itself sent it (timer
 * granularity, its own event loop: up to 2 ms here at 100/s) is the generator's cost, not the
 * server's; it is reported apart as `sendLagP99Ms`, so a generator that can't keep time is seen.
 */
export async function fixedRate(op: Op, rate: number, durationMs: number, opts: { maxInFlight?: number; slow?: SlowLog } = {}): Promise<LoadResult> {
  const maxInFlight = opts.maxInFlight ?? 512;
  const latenciesMs: number[] = [];
  const lagMs: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let inFlight = 0;
  const pending: Promise<void>[] = [];
  const start = performance.now();
  const total = Math.max(1, Math.floor((rate * durationMs) / 1000));
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    if (inFlight >= maxInFlight) {
      errors++;
      firstError ??= `more than ${maxInFlight} operations in flight: the server is not keeping up with ${rate}/s`;
      continue;
    }
    inFlight++;
    const sent = performance.now();
    lagMs.push(sent - due);
    pending.push(
      op(i)
        .then(() => {
          const ms = performance.now() - sent;
          latenciesMs.push(ms);
          opts.slow?.(sent, ms);
        })
        .catch((err: Error) => {
          errors++;
          firstError ??= err.message;
        })
        .finally(() => {
          inFlight--;
        }),
    );
  }
  await Promise.all(pending);
  const sendLagP99Ms = percentile(
    lagMs.sort((a, b) => a - b),
    99,
  );
  return { ops: latenciesMs.length, errors, firstError, wallSeconds: (performance.now() - start) / 1000, latenciesMs, sendLagP99Ms };
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
