/**
 * Things one operation uses at a time (a refresh-token chain): taken when free, made when none
 * is, given back after. Works the same whether workers loop (saturation) or operations arrive on
 * a schedule (fixed rate), where there is no stable worker to hold one. With `max`, no more are
 * ever made than that: an operation that finds none free waits for one to be given back (the
 * wait counts in its latency), so a row meant to measure refreshes alone never signs in — at a
 * fixed rate a stall once let in-flight refreshes outgrow the chains, and the sign-ins made to
 * feed them (argon2 included) were measured as 2.8–4.7 s refreshes.
 */
export class Pool<T> {
  private readonly idle: T[] = [];
  private readonly waiting: Array<(item: T) => void> = [];
  private made = 0;
  constructor(
    private readonly make: () => Promise<T>,
    private readonly max = Infinity,
  ) {}
  async use(work: (item: T) => Promise<T | undefined>): Promise<void> {
    const item = await this.take();
    let back: T | undefined;
    try {
      back = await work(item);
    } finally {
      if (back !== undefined) this.give(back);
      else this.replaceLost();
    }
  }
  private take(): Promise<T> {
    const free = this.idle.pop();
    if (free !== undefined) return Promise.resolve(free);
    if (this.made < this.max) {
      this.made++;
      return this.make().catch((err: unknown) => {
        this.made--;
        throw err;
      });
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }
  private give(item: T) {
    const next = this.waiting.shift();
    if (next) next(item);
    else this.idle.push(item);
  }
  /** An item used up (a chain's last refresh) or lost to an error: one waiting gets a new one. */
  private replaceLost() {
    this.made--;
    const next = this.waiting.shift();
    if (!next) return;
    this.made++;
    this.make().then(next, () => {
      this.made--;
      this.waiting.unshift(next);
    });
  }
}
