import { AsyncLocalStorage } from 'node:async_hooks';
import type { GroupCommit } from '../db/group-commit.ts';
import type { PayloadWrite } from '../oidc-store/oidc-payload.repo.ts';

/**
 * Saves held back within one token request, sent with the request's next write or, at the latest,
 * before its response — never after: nothing the request answers refers to a row not yet stored.
 *
 * oidc-provider saves one model at a time and awaits each: a refresh spends the old refresh token,
 * then saves the new one, then the access token's row — three round trips to PostgreSQL in
 * sequence. Held, the two saves travel together as one statement just before the response (and a
 * code exchange's the same way): one round trip fewer per token request.
 *
 * Order is kept: any other write or read of the request (spending a code, a removal, a lookup)
 * first sends what is held, in the same batch when it is a write, so the database sees the
 * request's writes in the order it made them.
 */
type Writes = GroupCommit<PayloadWrite, boolean>;

class HeldSaves {
  private target: Writes | undefined;
  private saves: PayloadWrite[] = [];

  get holding(): boolean {
    return this.saves.length > 0;
  }

  hold(target: Writes, save: PayloadWrite) {
    this.bind(target);
    this.saves.push(save);
  }

  /** Sends what is held, with `write` after it when given; answers `write`'s outcome. */
  async send(target: Writes, write?: PayloadWrite): Promise<boolean | undefined> {
    this.bind(target);
    const held = this.saves;
    this.saves = [];
    if (!write) {
      if (held.length) await target.addAll(held);
      return undefined;
    }
    if (!held.length) return target.add(write);
    return (await target.addAll([...held, write])).at(-1);
  }

  /** Everything still held (at the end of the request). */
  async flush() {
    if (this.target) await this.send(this.target);
  }

  /** A request is served by one tenant's adapter; a second one would mean the order is lost. */
  private bind(target: Writes) {
    if (this.target && this.target !== target) throw new Error('held saves for two adapters in one request');
    this.target = target;
  }
}

/** The saves a request held could not be stored (after its work succeeded). */
export class HeldSavesNotStored extends Error {
  constructor(cause: unknown) {
    super('the saves held for this request could not be stored', { cause });
  }
}

const current = new AsyncLocalStorage<HeldSaves>();

/**
 * Runs `work` (a token request) holding its saves, and sends them before it returns. An error of
 * `work` is its own (nothing held is sent); a failure to send what it held is HeldSavesNotStored.
 */
export async function withHeldSaves<T>(work: () => Promise<T>): Promise<T> {
  const held = new HeldSaves();
  const result = await current.run(held, work);
  try {
    await held.flush();
  } catch (err) {
    throw new HeldSavesNotStored(err);
  }
  return result;
}

/** The saves held for the request in progress, if it holds them. */
export function heldSaves(): HeldSaves | undefined {
  return current.getStore();
}
