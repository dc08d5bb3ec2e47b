export interface LoadResult {
  ops: number;
  errors: number;
  firstError?: string;
  wallSeconds: number;
  latenciesMs: number[];
}

export type Op = (worker: number) => Promise<void>;

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
 * earlier ones have finished, and latency counts from when it was due — so a stall shows in the
 * percentiles instead of quietly lowering the rate (no coordinated omission). At most
 * `maxInFlight` run at once; arrivals beyond that count as errors.
 */
export async function fixedRate(op: Op, rate: number, durationMs: number, maxInFlight = 512): Promise<LoadResult> {
  const latenciesMs: number[] = [];
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
    pending.push(
      op(i)
        .then(() => {
          latenciesMs.push(performance.now() - due);
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
  return { ops: latenciesMs.length, errors, firstError, wallSeconds: (performance.now() - start) / 1000, latenciesMs };
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
