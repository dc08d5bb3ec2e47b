import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * What one HTTP request has already read from the database, so it is read once: oidc-provider
 * looks the same interaction, session, grant and account up several times while handling one
 * request, and a token lookup can bring the rows the rest of the request will ask for (see
 * oidc/token-prefetch.ts). Lives for one request only; writes through the same code forget
 * what they change. Outside a request (jobs, CLI) nothing is remembered.
 */
const store = new AsyncLocalStorage<Map<string, Promise<unknown>>>();

export function withRequestReads<T>(work: () => Promise<T>): Promise<T> {
  return store.run(new Map(), work);
}

/** `load()` once per request for `key`; a failed load is not remembered. */
export function readOnce<T>(key: string, load: () => Promise<T>): Promise<T> {
  const reads = store.getStore();
  if (!reads) return load();
  const hit = reads.get(key) as Promise<T> | undefined;
  if (hit) return hit;
  const loading = load();
  reads.set(key, loading);
  loading.catch(() => reads.delete(key));
  return loading;
}

/** Seeds the request's reads with a row fetched along with another. */
export function remember(key: string, value: unknown) {
  store.getStore()?.set(key, Promise.resolve(value));
}

/** Forgets every read whose key starts with `prefix` (after a write to those rows). */
export function forget(prefix: string) {
  const reads = store.getStore();
  if (!reads) return;
  for (const key of reads.keys()) if (key.startsWith(prefix)) reads.delete(key);
}
