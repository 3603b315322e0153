/**
 * A PostgreSQL LISTEN/NOTIFY channel shared by the instances of one installation.
 *
 * Sending: items are queued and go out coalesced, one statement for all items ready within about a
 * millisecond, with as many notifications as PostgreSQL's 8,000-byte payload limit requires. Under
 * sustained traffic two sends are at least `spacingMs` (10 ms) apart: what a send costs PostgreSQL (its
 * commit, waking every listener) and every instance (an event-loop turn) is mostly per send, not per byte.
 * NOTIFY runs on a connection of its own and never inside a write transaction: a transaction holding a
 * notification takes a database-wide lock at commit (notifications are kept in commit order), which would
 * serialise every writer under load. One batch is in flight at a time on that one connection (what
 * queues meanwhile goes in the next, so a slow database gets fewer, fuller batches), and every instance
 * receives one instance's items in the order they were queued.
 *
 * Receiving: postgres.js keeps the LISTEN connection alive and reconnects it by itself; `onListen` runs
 * on every (re)connect so that the caller can catch up on what it may have missed meanwhile.
 *
 * Both relays between instances use it: frames and presence (`symbia_events`, ./postgres-broker.ts) and
 * credential changes (`symbia_auth`, ./auth-relay.ts).
 */
import postgres from "postgres";
import { reconnectBackoff } from "../../db/client";
import { describeError, log } from "../../log";
import { relayBatches, relayItemsDropped, relayItemsReceived, relayItemsSent, relayQueueDepth } from "../../metrics/registry";

/** NOTIFY payloads must stay under 8,000 bytes; keep room for the envelope. */
export const MAX_PAYLOAD_BYTES = 7_800;

/**
 * Payloads of one batch go in one statement, hence one transaction: most of what a notification costs
 * PostgreSQL is per transaction (its commit, waking every listener), not per byte.
 */
const PAYLOADS_PER_STATEMENT = 16;
/** The longest a batch may take before its connection counts as dead (see sendWithin). */
const SEND_TIMEOUT_MS = 3_000;
/** Items waiting beyond this are dropped (about 8 MB of frames; PostgreSQL is not keeping up). */
const MAX_QUEUED_ITEMS = 20_000;
const notifyStatements: string[] = [];

/** `select pg_notify($1, $2), pg_notify($1, $3), …`: PostgreSQL delivers them in this order. */
function notifyStatement(payloads: number): string {
  return (notifyStatements[payloads] ??= `select ${Array.from({ length: payloads }, (_, i) => `pg_notify($1, $${i + 2})`).join(", ")}`);
}

export interface Envelope<T> {
  /** The sending instance; an instance ignores its own envelopes. */
  o: string;
  i: T[];
}

export interface NotifyChannelOptions<T> {
  url: string;
  channel: string;
  origin: string;
  /** The LISTEN side; the pool's client, which manages the listening connection. Absent: send only. */
  listener?: postgres.Sql;
  onItems?(items: T[], origin: string): void;
  onListen?(reconnected: boolean): void;
  /** How long to wait for more items before sending. */
  coalesceMs?: number;
  /** The shortest time between two sends: under load, items wait until this long after the previous send. */
  spacingMs?: number;
}

export class NotifyChannel<T> {
  private sender: postgres.Sql;
  private queue: string[] = [];
  private timer?: ReturnType<typeof setTimeout>;
  /** The batch being sent, if any: one at a time, and what queues meanwhile goes in the next one. */
  private sending?: Promise<void>;
  private subscription?: { unlisten(): Promise<void> };
  private listens = 0;
  private stopped = false;
  /** Items that could not be sent (database down, or too many waiting); counted, not retried. */
  dropped = 0;
  /** How this instance's envelopes begin. They come back through LISTEN like everyone's, and are dropped unparsed. */
  private readonly head: string;
  /** When the last batch was handed over (performance.now()). */
  private lastFlush = -Infinity;
  /** When one of this instance's own envelopes last came back through LISTEN (performance.now()). */
  private lastOwnEcho = -Infinity;
  /** This channel's series of the relay metrics, bound once. */
  private readonly measured;

  constructor(private readonly options: NotifyChannelOptions<T>) {
    this.head = `{"o":${JSON.stringify(options.origin)},"i":[`;
    const { channel } = options;
    this.measured = {
      queued: relayQueueDepth.labels(channel),
      batches: relayBatches.labels(channel),
      sent: relayItemsSent.labels(channel),
      received: relayItemsReceived.labels(channel),
      droppedQueueFull: relayItemsDropped.labels(channel, "queue_full"),
      droppedSendFailed: relayItemsDropped.labels(channel, "send_failed"),
    };
    this.sender = this.newSender();
  }

  async start(): Promise<void> {
    if (!this.options.listener) return;
    this.subscription = await this.options.listener.listen(
      this.options.channel,
      (payload) => this.receive(payload),
      () => {
        this.options.onListen?.(this.listens > 0);
        this.listens++;
      },
    );
  }

  /**
   * Queues one item; it goes out with whatever else is queued within the coalescing delay, or, right after
   * another send, when the spacing since that send has passed.
   */
  send(item: T): void {
    if (this.stopped) return;
    const encoded = JSON.stringify(item);
    if (Buffer.byteLength(encoded) > MAX_PAYLOAD_BYTES) {
      throw new Error(`relay item of ${Buffer.byteLength(encoded)} bytes exceeds the NOTIFY payload limit`);
    }
    if (this.queue.length >= MAX_QUEUED_ITEMS) {
      // PostgreSQL does not take notifications as fast as they come (or at all): rather than grow without
      // bound, drop. Receivers read missing messages back by sequence.
      this.measured.droppedQueueFull.inc();
      if (this.dropped++ % 10_000 === 0) log.warn("cross-instance notifications dropped: too many waiting", { channel: this.options.channel });
      return;
    }
    this.queue.push(encoded);
    this.measured.queued.inc();
    if (!this.timer && !this.sending) this.schedule(this.options.coalesceMs ?? 1);
  }

  /** Settles when everything queued so far has been handed to PostgreSQL. */
  async drain(): Promise<void> {
    for (;;) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      if (!this.sending && this.queue.length > 0) this.flush();
      if (!this.sending) return;
      await this.sending;
    }
  }

  /** The next batch goes after `delayMs`, and never sooner than the spacing after the previous one. */
  private schedule(delayMs: number): void {
    const spaced = this.lastFlush + (this.options.spacingMs ?? 10) - performance.now();
    this.timer = setTimeout(() => this.flush(), Math.max(delayMs, spaced));
  }

  async stop(): Promise<void> {
    await this.drain();
    this.stopped = true;
    await this.subscription?.unlisten().catch(() => {});
    await this.sender.end({ timeout: 2 });
  }

  private flush(): void {
    this.timer = undefined;
    if (this.sending) return; // the send under way schedules the next batch when it is done
    this.lastFlush = performance.now();
    const items = this.queue;
    this.queue = [];
    if (items.length === 0) return;
    this.measured.queued.dec(items.length);
    this.measured.batches.inc();
    const payloads = this.pack(items);
    this.sending = (async () => {
      for (let from = 0; from < payloads.length; from += PAYLOADS_PER_STATEMENT) {
        const some = payloads.slice(from, from + PAYLOADS_PER_STATEMENT);
        try {
          await this.sendWithin(SEND_TIMEOUT_MS, notifyStatement(some.length), [this.options.channel, ...some.map((p) => p.payload)]);
          this.measured.sent.inc(some.reduce((n, p) => n + p.items, 0));
        } catch (error) {
          // Other instances find the gap by sequence and read it from the database; what has no sequence
          // (typing, presence) is transient anyway.
          const lost = some.reduce((n, p) => n + p.items, 0);
          this.dropped += lost;
          this.measured.droppedSendFailed.inc(lost);
          log.warn("cross-instance notification not sent", { channel: this.options.channel, ...describeError(error) });
        }
      }
    })().finally(() => {
      this.sending = undefined;
      if (this.queue.length > 0 && !this.timer && !this.stopped) this.schedule(0);
    });
  }

  private newSender(): postgres.Sql {
    return postgres(this.options.url, { max: 1, onnotice: () => {}, connect_timeout: 5, idle_timeout: 0, backoff: reconnectBackoff });
  }

  /**
   * A batch takes milliseconds; one that takes seconds is on a connection that died without a word (a
   * backend killed behind a proxy, a half-open TCP connection), which would hold every later batch, and
   * this instance's heartbeats, forever. It is abandoned, counted as dropped, and a fresh connection
   * takes over; receivers read what was lost back by sequence.
   */
  private async sendWithin(ms: number, statement: string, parameters: string[]): Promise<void> {
    const sender = this.sender;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from PostgreSQL within ${ms} ms; reconnecting`)), ms);
    });
    try {
      await Promise.race([sender.unsafe(statement, parameters, { prepare: true }), timedOut]);
    } catch (error) {
      if (sender === this.sender && !this.stopped && (error as Error).message.startsWith("no answer from PostgreSQL")) {
        this.sender = this.newSender();
        sender.end({ timeout: 0 }).catch(() => {});
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Packs encoded items into as few envelopes as fit under the payload limit, keeping their order. */
  private pack(items: string[]): { payload: string; items: number }[] {
    const head = this.head;
    const payloads: { payload: string; items: number }[] = [];
    let current: string[] = [];
    let size = head.length + 2;
    const close = () => payloads.push({ payload: head + current.join(",") + "]}", items: current.length });
    for (const item of items) {
      const itemSize = Buffer.byteLength(item) + 1;
      if (current.length > 0 && size + itemSize > MAX_PAYLOAD_BYTES) {
        close();
        current = [];
        size = head.length + 2;
      }
      current.push(item);
      size += itemSize;
    }
    if (current.length > 0) close();
    return payloads;
  }

  /** How long ago this instance last heard itself: its LISTEN connection worked then. */
  msSinceOwnEcho(): number {
    return performance.now() - this.lastOwnEcho;
  }

  private receive(payload: string): void {
    if (payload.startsWith(this.head)) {
      this.lastOwnEcho = performance.now();
      return;
    }
    let envelope: Envelope<T>;
    try {
      envelope = JSON.parse(payload);
    } catch {
      return;
    }
    if (!envelope || envelope.o === this.options.origin || !Array.isArray(envelope.i)) return;
    this.measured.received.inc(envelope.i.length);
    this.options.onItems?.(envelope.i, envelope.o);
  }
}
