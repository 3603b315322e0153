/**
 * Publish/subscribe inside one process: the domain emits what happened (after commit) and the parts that
 * react (realtime delivery, the cross-instance relay, caches, and whatever hangs off domain events next)
 * listen under a name.
 *
 * A listener can never fail or hold up the write that emitted: whatever it throws (or its promise
 * rejects with) is logged under its name and counted, and the other listeners still run.
 * - Deferred listeners (the default) run after the emitting call has returned, in emit order, from a
 *   queue drained on the next turn of the event loop; a promise they return is not awaited.
 * - Inline listeners run inside `emit`, in registration order. Only what must happen before the write's
 *   caller continues belongs there (delivering a frame in commit order, emptying a credential cache), and
 *   it must stay short.
 *
 * Write listeners are the exception to "after commit": the writer hands them the events of its write,
 * with its transaction (`W`), before it commits (`written`). What they write commits or rolls back with
 * the write, so nothing is lost between the commit and a listener (a process killed in that instant);
 * in exchange a failure fails the write. Use them only for what must be exactly as durable as the write
 * (the webhook outbox), with one statement for all the events of a write.
 */
import { describeError, log } from "../log";

export type Listener<T> = (event: T) => void | Promise<void>;

/** Runs inside the write's transaction, with every event of the write; a throw rolls the write back. */
export type WriteListener<T, W> = (events: readonly T[], write: W) => Promise<void>;

export interface ListenerOptions {
  inline?: boolean;
}

interface Registration<T> {
  name: string;
  listener: Listener<T>;
  inline: boolean;
  failures: number;
}

export class EventBus<T extends object, W = never> {
  private readonly registrations: Registration<T>[] = [];
  private readonly writeListeners: { name: string; listener: WriteListener<T, W> }[] = [];
  private queue: T[] = [];
  private draining = false;

  /** `describe` names an event in failure logs (e.g. its type and conversation). */
  constructor(
    readonly busName: string,
    private readonly describe: (event: T) => Record<string, unknown> = () => ({}),
  ) {}

  on(name: string, listener: Listener<T>, options: ListenerOptions = {}): () => void {
    const registration: Registration<T> = { name, listener, inline: options.inline === true, failures: 0 };
    this.registrations.push(registration);
    return () => {
      const index = this.registrations.indexOf(registration);
      if (index >= 0) this.registrations.splice(index, 1);
    };
  }

  /** A listener of the write itself (see above); registered in one place with the others. */
  onWrite(name: string, listener: WriteListener<T, W>): () => void {
    const registration = { name, listener };
    this.writeListeners.push(registration);
    return () => {
      const index = this.writeListeners.indexOf(registration);
      if (index >= 0) this.writeListeners.splice(index, 1);
    };
  }

  /**
   * Called by the writer inside its transaction, before commit, with the events it will emit once
   * committed. Awaited, and unlike `emit` it throws what a listener threw (the write must not commit).
   */
  async written(events: readonly T[], write: W): Promise<void> {
    if (events.length === 0) return;
    for (const { name, listener } of this.writeListeners) {
      try {
        await listener(events, write);
      } catch (error) {
        log.error("write listener failed: the write is rolled back", { bus: this.busName, listener: name, ...this.describe(events[0]), ...describeError(error) });
        throw error;
      }
    }
  }

  emit(event: T): void {
    let deferred = false;
    for (const registration of this.registrations) {
      if (registration.inline) this.call(registration, event);
      else deferred = true;
    }
    if (!deferred) return;
    this.queue.push(event);
    if (!this.draining) {
      this.draining = true;
      setImmediate(() => this.drain());
    }
  }

  /** Failures per listener name since start: for logs, metrics and tests. */
  failures(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const { name, failures } of this.registrations) counts[name] = (counts[name] ?? 0) + failures;
    return counts;
  }

  /** Total failures of all listeners. */
  get failureCount(): number {
    let total = 0;
    for (const { failures } of this.registrations) total += failures;
    return total;
  }

  private drain(): void {
    const events = this.queue;
    this.queue = [];
    this.draining = false;
    const deferred = this.registrations.filter((r) => !r.inline);
    for (const event of events) for (const registration of deferred) this.call(registration, event);
  }

  private call(registration: Registration<T>, event: T): void {
    try {
      const result = registration.listener(event);
      if (result && typeof (result as Promise<void>).then === "function") {
        (result as Promise<void>).catch((error) => this.failed(registration, event, error));
      }
    } catch (error) {
      this.failed(registration, event, error);
    }
  }

  private failed(registration: Registration<T>, event: T, error: unknown): void {
    registration.failures++;
    log.error("event listener failed", { bus: this.busName, listener: registration.name, ...this.describe(event), ...describeError(error) });
  }
}
