/**
 * The webhook outbox: a domain event becomes one `webhook_deliveries` row per endpoint that should receive
 * it, in a single INSERT … SELECT that does the matching (scope, event filter, an agent's own messages
 * left out) for every event of a batch. The dispatcher (./dispatcher.ts) delivers the rows.
 *
 * Durability, along two paths:
 * - Written with the write. Every event but the send statement's is announced inside its write's
 *   transaction (src/domain/announced-write.ts), and `enqueueWithWrite` (a write listener of the domain
 *   bus, src/listeners.ts) inserts its rows there: they commit with the write or not at all. That costs
 *   the write one statement, also while no endpoint is enabled (it then matches no endpoint): a flag
 *   read every few seconds could miss an endpoint just enabled on another instance, and the event with it.
 * - Recovered from the log. The send statement's events (messages, control events, a run a message
 *   started) are enqueued after commit by the deferred listener, in sequence order per conversation and
 *   batched, so that a send stays one statement and costs nothing while no endpoint is enabled. A process
 *   killed between the commit and that insert loses the rows but not the events: `repair()` (at start
 *   before serving, and every minute, on every instance) enqueues recent messages an endpoint should have
 *   and does not, reading their payload from the log at delivery.
 *
 * Keys (./event-types.ts) make every insert idempotent, so the listener, the repair and other instances
 * never deliver an event twice.
 */
import type { Database, Executor } from "../db/client";
import type { DomainEvent } from "../domain/domain-events";
import { Batcher } from "../core/batcher";
import { SequenceOrder } from "../core/sequence-order";
import { describeError, log } from "../log";
import { run, runPrepared } from "./statement";
import { recoverableFromLog, webhookEventOf, type WebhookEvent } from "./event-types";

/** How far back the repair looks for messages that were never enqueued. */
const REPAIR_WINDOW_SECONDS = 600;
/** A transition's catch-up looks this far back: its predecessors were enqueued or committed moments ago. */
const CATCH_UP_WINDOW_SECONDS = 60;
/** The repair leaves the newest messages to the listener, which enqueues them within milliseconds. */
export const REPAIR_GRACE_SECONDS = 2;
/** How often an instance re-reads whether any endpoint is enabled. */
export const ACTIVE_REFRESH_MS = 5_000;

/**
 * Which endpoints hear each event of a batch ($1: a JSON array of `EnqueuedRow`), inserted in batch order
 * so that one (endpoint, conversation) gets its rows in the order the events were announced.
 */
const ENQUEUE = `
insert into webhook_deliveries (endpoint_id, conversation_id, event_type, event_key, message_id, sequence, occurred_at, payload)
select e.id, v.conversation_id, v.type, v.key, v.message_id, v.sequence, v.occurred_at, v.payload
  from jsonb_to_recordset($1::jsonb) as v(n int, conversation_id uuid, type text, key text, message_id uuid, sequence int,
                                          occurred_at timestamptz, payload jsonb, org_id text, actor_id text, members jsonb)
  join webhook_endpoints e
    on e.enabled
   and (e.events is null or v.type = any(e.events) or (v.type like 'stream.%' and 'stream.*' = any(e.events)))
   and case e.scope
         when 'installation' then true
         when 'org' then e.org_id = coalesce(v.org_id, (select c.org_id from conversations c where c.id = v.conversation_id))
         else e.principal_id is distinct from v.actor_id
              and (e.principal_id in (select jsonb_array_elements_text(v.members))
                   or exists (select 1 from participants p where p.conversation_id = v.conversation_id and p.user_id = e.principal_id))
       end
 order by v.n, e.id
on conflict (endpoint_id, event_key) do nothing
returning endpoint_id`;

/** One event as ENQUEUE reads it. */
function enqueuedRow(event: WebhookEvent, n: number) {
  return {
    n,
    conversation_id: event.conversationId,
    type: event.type,
    key: event.key,
    message_id: event.messageId ?? null,
    sequence: event.sequence ?? null,
    occurred_at: event.occurredAt,
    payload: event.data,
    org_id: event.orgId ?? null,
    actor_id: event.actorId ?? null,
    members: event.members ?? null,
  };
}

/**
 * Recent messages and control events an enabled endpoint should have and does not, and the runs that
 * messages started (before the message, as the listener enqueues them; their run row was written by the
 * same statement, with the same `now()`). Keys as in ./event-types.ts. $1: how far back; $2: the newest
 * seconds left to the listener (null: none); $3: null, or only these conversations, below these
 * sequences (a JSON array of {conversation_id, below}).
 */
const REPAIR = `
insert into webhook_deliveries (endpoint_id, conversation_id, event_type, event_key, message_id, sequence, occurred_at)
select e.id, m.conversation_id, t.type, t.key, m.id, m.sequence, m.created_at
  from webhook_endpoints e
  join conversations c
    on c.last_message_at > now() - make_interval(secs => $1)
   and (e.scope = 'installation' or (e.scope = 'org' and c.org_id = e.org_id) or e.scope = 'principal')
   and ($3::jsonb is null or c.id in (select v.conversation_id from jsonb_to_recordset($3::jsonb) as v(conversation_id uuid, below int)))
  join messages m
    on m.conversation_id = c.id
   and m.created_at > greatest(e.created_at, e.updated_at, now() - make_interval(secs => $1))
   and ($2::double precision is null or m.created_at < now() - make_interval(secs => $2::double precision))
   and ($3::jsonb is null or m.sequence < (select v.below from jsonb_to_recordset($3::jsonb) as v(conversation_id uuid, below int) where v.conversation_id = c.id))
  cross join lateral (
    select 0 as rank, 'run.started' as type, 'run.started:' || m.conversation_id || ':' || m.run_id as key
     where m.run_id is not null and m.content_type <> 'event'
       and exists (select 1 from runs r where r.conversation_id = m.conversation_id and r.id = m.run_id and r.started_at = m.created_at)
    union all
    select 1, case when m.content_type = 'event' then coalesce(m.metadata->'control'->>'event', m.content) else 'message.created' end,
           case when m.content_type = 'event' then 'control:' else 'message.created:' end || m.id
  ) t
 where e.enabled
   and (e.scope <> 'principal' or (
         m.sender_id <> e.principal_id
         and exists (select 1 from participants p where p.conversation_id = c.id and p.user_id = e.principal_id and p.joined_at <= m.created_at)))
   and (e.events is null or t.type = any(e.events) or (t.type like 'stream.%' and 'stream.*' = any(e.events)))
 order by m.conversation_id, m.sequence, t.rank
on conflict (endpoint_id, event_key) do nothing
returning endpoint_id`;

/** How long an event waits for a missing predecessor of its conversation (as the realtime hub does). */
const ORDER_HOLD_MS = 50;
/** A conversation with nothing sent for this long is forgotten by the ordering stage. */
const ORDER_IDLE_MS = 60_000;

/** A sequence used by an event written with its write (a run transition's control event): not waited for. */
interface WrittenSequence {
  conversationId: string;
  sequence: number;
  written: true;
}

export class WebhookOutbox {
  /** Whether any endpoint is enabled; while false the listener costs nothing. */
  private active = false;
  /** Bumped by `markActive`, so that a refresh read before it cannot turn `active` off again. */
  private activations = 0;
  /**
   * The inserts after commit: one statement for every event emitted while the previous one ran, one
   * statement at a time, so that rows of one instance are numbered in emit order.
   */
  private readonly afterCommit = new Batcher<WebhookEvent>((events) => this.insertAfterCommit(events));
  /**
   * Before the batches: the events of a conversation in sequence order. Sequences are handed out in
   * commit order, but the answers of two sends on different pooled connections can be read in the other
   * order, and the later one's event would be enqueued (and delivered) first.
   */
  private readonly order = new SequenceOrder<WebhookEvent | WrittenSequence>((item) => {
    if (!("written" in item)) void this.afterCommit.add(item);
  }, ORDER_HOLD_MS);
  private readonly wakers = new Set<() => void>();
  /** Events whose rows were written in their write's transaction: whether it inserted any, the sequence it used. */
  private readonly written = new WeakMap<DomainEvent, { inserted: boolean; sequence?: number }>();
  private notDurableCount = 0;

  constructor(private readonly database: Database) {}

  /** Called when rows were added here: the local dispatcher need not wait for its next poll. */
  onEnqueued(wake: () => void): () => void {
    this.wakers.add(wake);
    return () => this.wakers.delete(wake);
  }

  /** An endpoint was enabled here: stop skipping events at once. */
  markActive(): void {
    this.active = true;
    this.activations++;
  }

  /**
   * The write listener: the rows of a write's events, inside its transaction. While no endpoint is
   * enabled the statement matches none and inserts nothing.
   */
  async enqueueWithWrite(events: readonly DomainEvent[], tx: Executor): Promise<void> {
    const batch = events.map(webhookEventOf);
    const rows = batch.filter((e) => e !== undefined);
    let inserted = false;
    if (rows.length > 0) {
      // A write that takes sequences (a run transition) comes after every message below them, whose rows
      // may still be on their way (enqueued after their commit): those rows go first, from the log.
      const below = new Map<string, number>();
      for (const { conversationId, sequence } of rows) {
        if (sequence !== undefined) below.set(conversationId, Math.min(sequence, below.get(conversationId) ?? sequence));
      }
      if (below.size > 0) {
        const filter = JSON.stringify([...below].map(([conversation_id, sequence]) => ({ conversation_id, below: sequence })));
        inserted = (await run(tx, REPAIR, [CATCH_UP_WINDOW_SECONDS, null, filter])).length > 0;
      }
      inserted = (await this.insert(tx, rows)) > 0 || inserted;
    }
    // Marked even without a webhook event, so that the listener after commit never enqueues them again.
    events.forEach((event, i) => this.written.set(event, { inserted, sequence: batch[i]?.sequence }));
  }

  /** The deferred listener of domain events, after commit. */
  handle(event: DomainEvent): Promise<void> | void {
    const written = this.written.get(event);
    if (written !== undefined) {
      // Committed now, so the dispatcher can take the rows; and some endpoint is enabled after all.
      if (written.inserted) {
        this.markActive();
        this.wake();
      }
      // Its sequence is not one the events after it should wait for.
      if (this.active && written.sequence !== undefined) this.order.push({ conversationId: event.conversationId, sequence: written.sequence, written: true });
      return;
    }
    if (!this.active) return;
    const webhookEvent = webhookEventOf(event);
    if (!webhookEvent) return;
    if (!recoverableFromLog(event)) this.notDurable(event);
    this.order.push(webhookEvent);
  }

  private async insertAfterCommit(events: WebhookEvent[]): Promise<void> {
    try {
      const inserted = await runPrepared<{ endpoint_id: string }>(this.database, ENQUEUE, [JSON.stringify(events.map(enqueuedRow))]);
      if (inserted.length > 0) this.wake();
    } catch (error) {
      // Logged once for the batch; its messages are recovered from the log by the next repair.
      log.warn("webhook deliveries not enqueued", { events: events.length, ...describeError(error) });
    }
  }

  /** A webhook event emitted outside its write's transaction: delivered, but lost if the process dies now. */
  private notDurable(event: DomainEvent): void {
    if (this.notDurableCount++ === 0) {
      log.warn("a webhook event was not written with its write (announce it through writeAndAnnounce)", { event: event.type });
    }
  }

  /** How many events `notDurable` saw: none, unless a write emits outside src/domain/announced-write.ts. */
  get notDurableEvents(): number {
    return this.notDurableCount;
  }

  /** Enqueues what is held and waits for the inserts queued so far (tests, shutdown). */
  async settled(): Promise<void> {
    this.order.releaseAll();
    await this.afterCommit.settled();
  }

  private async insert(executor: Executor, events: WebhookEvent[]): Promise<number> {
    const inserted = await run<{ endpoint_id: string }>(executor, ENQUEUE, [JSON.stringify(events.map(enqueuedRow))]);
    return inserted.length;
  }

  /**
   * Enqueues recent messages that were committed but never enqueued (a process killed in between).
   * `graceSeconds`: the newest messages are left to the listener, which enqueues them in order; null
   * before this process serves anything (at start), when none of them is this process's to enqueue.
   */
  async repair(graceSeconds: number | null = REPAIR_GRACE_SECONDS): Promise<number> {
    await this.refresh();
    if (!this.active) return 0;
    const inserted = await run<{ endpoint_id: string }>(this.database.db, REPAIR, [REPAIR_WINDOW_SECONDS, graceSeconds, null]);
    if (inserted.length > 0) {
      log.info("webhook deliveries recovered from the message log", { deliveries: inserted.length });
      this.wake();
    }
    return inserted.length;
  }

  async refresh(): Promise<void> {
    this.order.prune(Date.now(), ORDER_IDLE_MS);
    const activations = this.activations;
    const [row] = await run<{ active: boolean }>(this.database.db, "select exists (select 1 from webhook_endpoints where enabled) as active");
    if (activations === this.activations) this.active = Boolean(row?.active);
  }

  /** Whether any endpoint is enabled, as last known here. */
  get isActive(): boolean {
    return this.active;
  }

  wake(): void {
    for (const wake of this.wakers) wake();
  }
}
