/**
 * Writes items in batches, one batch at a time: what is added while a batch is being written goes into
 * the next one, so a burst costs one statement instead of one per item, and an idle moment costs no wait
 * (the first item goes at once, after the current turn's other items). Batches are written in the order
 * their items were added.
 */
export class Batcher<T> {
  private queue: { item: T; done: () => void; failed: (error: unknown) => void }[] = [];
  private running?: Promise<void>;

  constructor(
    private readonly write: (items: T[]) => Promise<void>,
    private readonly maxBatch = 1000,
    /** Batches start at least this far apart (ms): under load, fewer and larger ones, for a little latency. */
    private readonly spacingMs = 0,
  ) {}

  private lastStart = 0;

  /** Resolves once the batch holding `item` is written; rejects with what that write threw. */
  add(item: T): Promise<void> {
    return new Promise<void>((done, failed) => {
      this.queue.push({ item, done, failed });
      // A microtask later, so that items added in the same turn (e.g. one drain of a bus) go together.
      if (!this.running) this.running = Promise.resolve().then(() => this.drain());
    });
  }

  /** Resolves once everything added so far is written (or has failed). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        if (this.spacingMs > 0) {
          const wait = this.lastStart + this.spacingMs - performance.now();
          if (wait > 0) await Bun.sleep(wait);
          this.lastStart = performance.now();
        }
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          await this.write(batch.map((entry) => entry.item));
          for (const entry of batch) entry.done();
        } catch (error) {
          for (const entry of batch) entry.failed(error);
        }
      }
    } finally {
      this.running = undefined;
    }
  }
}
