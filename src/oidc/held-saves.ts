import { AsyncLocalStorage } from 'node:async_hooks';
import type { GroupCommit } from '../db/group-commit.ts';
import type { PayloadConsume, PayloadWrite, Refund } from '../oidc-store/oidc-payload.repo.ts';

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
 *
 * What the request spent is noted too. The spending is its own statement, committed before the
 * new tokens are made; if the request then hands out no tokens — the database went away before
 * the saves were stored, a read for the claims failed, the answer is an error — the code or
 * refresh token it spent is given back (spend-refunds.ts): a failed request spends nothing the
 * client still needs.
 */
type Writes = GroupCommit<PayloadWrite, boolean>;

/** Rows of tokens a request hands out: made fresh by it (random ids), so its own to delete. */
const TOKEN_MODELS = new Set(['AccessToken', 'RefreshToken']);

class HeldSaves {
  private target: Writes | undefined;
  private saves: PayloadWrite[] = [];
  /** Spent by this request, or maybe (the outcome never came back). */
  private readonly spends: PayloadConsume[] = [];
  private readonly created: Array<{ model: string; id: string }> = [];

  get holding(): boolean {
    return this.saves.length > 0;
  }

  hold(target: Writes, save: PayloadWrite) {
    this.bind(target);
    this.saves.push(save);
    if (TOKEN_MODELS.has(save.model)) this.created.push({ model: save.model, id: save.id });
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
    if (write.op === 'consume') this.spends.push(write);
    const outcome = held.length ? (await target.addAll([...held, write])).at(-1) : await target.add(write);
    // Told it did not spend the row (someone else had): nothing of it is this request's to give back.
    if (write.op === 'consume' && outcome === false) this.spends.splice(this.spends.indexOf(write), 1);
    return outcome;
  }

  /** Everything still held (at the end of the request). */
  async flush() {
    if (this.target) await this.send(this.target);
  }

  /** An error answer refers to no token: what is held is never sent. */
  discard() {
    this.saves = [];
  }

  /** What to give back when the request hands out no tokens. */
  refunds(): Refund[] {
    return this.spends.flatMap((s) => (s.spentAt ? [{ model: s.model, id: s.id, spentAt: s.spentAt, created: this.created }] : []));
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
 * Runs `work` (a token request) holding its saves. If `succeeded()` says its answer hands out
 * tokens, what it held is sent before this returns (a failure to send it is HeldSavesNotStored);
 * otherwise nothing held is sent. Whenever the tokens are not handed out — an error answer, a
 * failed send, an error of `work` — `undelivered` is told what the request spent, to give back.
 */
export async function withHeldSaves(work: () => Promise<unknown>, opts: { succeeded: () => boolean; undelivered: (refunds: Refund[]) => void }): Promise<void> {
  const held = new HeldSaves();
  let delivered = false;
  try {
    await current.run(held, work);
    if (!opts.succeeded()) {
      held.discard();
      return;
    }
    try {
      await held.flush();
    } catch (err) {
      throw new HeldSavesNotStored(err);
    }
    delivered = true;
  } finally {
    if (!delivered) {
      const refunds = held.refunds();
      if (refunds.length) opts.undelivered(refunds);
    }
  }
}

/** The saves held for the request in progress, if it holds them. */
export function heldSaves(): HeldSaves | undefined {
  return current.getStore();
}
