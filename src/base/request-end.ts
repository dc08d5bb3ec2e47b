import { AsyncLocalStorage } from 'node:async_hooks';

/** What one HTTP request must undo when it ends, and what it holds meanwhile (by key). */
interface RequestEnd {
  ends: Array<() => void>;
  held: Set<string>;
}
const store = new AsyncLocalStorage<RequestEnd>();

/** Runs one request; what `atRequestEnd` registered runs when it ends, whatever the outcome. */
export async function withRequestEnd<T>(work: () => Promise<T>): Promise<T> {
  const scope: RequestEnd = { ends: [], held: new Set() };
  try {
    return await store.run(scope, work);
  } finally {
    for (const end of scope.ends.splice(0)) end();
  }
}

/** Runs `end` when the current request ends. False outside a request (jobs, CLI, direct calls). */
export function atRequestEnd(end: () => void): boolean {
  const scope = store.getStore();
  if (!scope) return false;
  scope.ends.push(end);
  return true;
}

/** The keys the current request holds (so it never waits for itself); undefined outside a request. */
export function heldByThisRequest(): Set<string> | undefined {
  return store.getStore()?.held;
}
