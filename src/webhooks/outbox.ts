/**
 * The webhook outbox, for what the message log cannot give back. Messages and control events (the send
 * statement's, and the control messages run transitions store) are delivered from the log itself: a
 * cursor per (endpoint, conversation) says how far delivery got (./dispatcher.ts), so that a send writes
 * nothing for its webhooks and costs nothing while no endpoint is enabled. Here:
 *
 * - Rows written with the write. Every other event (participants, conversations, edits, deletions, runs
 *   started or ended without a message) is announced inside its write's transaction
 *   (src/domain/announced-write.ts), and `enqueueWithWrite` (a write listener of the domain bus,
 *   src/listeners.ts) inserts one row per endpoint that should hear it, with the conversation's sequence
 *   at that moment (`after_sequence`: delivered after the messages up to it), and the pair's cursor if it
 *   has none. Rows commit with the write or not at all. That costs such a write one statement, also while
 *   no endpoint is enabled (it then matches none): a flag read every few seconds could miss an endpoint
 *   just enabled on another instance, and the event with it.
 * - Hints after commit. The deferred listener tells the dispatcher which conversation's log grew, and to
 *   which sequence, so that it need not poll. A process killed before its hints only delays delivery:
 *   the log and the cursors say what is left (the dispatcher's sweeps).
 *
 * Keys (./event-types.ts) make every insert idempotent, so an event is never enqueued twice.
 */
import type { Database, Executor } from "../db/client";
import type { MessageRow } from "../db/schema";
import type { DomainEvent } from "../domain/domain-events";
import { log } from "../log";
import { run } from "./statement";
import { ENSURE_PAIRS, KEEP_PAYLOADS, LOG_TO_ROWS, MEMBER_UNTIL, PAIRS_OF_CONVERSATION, READ_LOG, ROWS_FROM_LOG, cursorStart, reaches } from "./pair-statements";
import { logDeliveryId, logEventData, logEventKey, type LoggedMessage } from "./log-events";
import { deliveredFromLog, webhookEventOf, type WebhookEvent } from "./event-types";

/** Messages per endpoint made rows when their conversation is deleted before they were delivered. */
const LOG_TO_ROWS_LIMIT = 10_000;

/** How often an instance re-reads whether any endpoint is enabled (and whether the endpoints changed). */
export const ACTIVE_REFRESH_MS = 5_000;

/**
 * Which endpoints hear each event of a batch ($1: a JSON array of `EnqueuedRow`), inserted in batch order
 * so that one (endpoint, conversation) gets its rows in the order the events were announced, each after
 * the messages its conversation had then; and the cursors of pairs that had none.
 */
const ENQUEUE = `
with inserted as (
  insert into webhook_deliveries (endpoint_id, conversation_id, event_type, event_key, message_id, sequence, after_sequence, occurred_at, payload)
  select e.id, v.conversation_id, v.type, v.key, v.message_id, v.sequence,
         coalesce((select c.last_sequence from conversations c where c.id = v.conversation_id), 2147483647), v.occurred_at, v.payload
    from jsonb_to_recordset($1::jsonb) as v(n int, conversation_id uuid, type text, key text, message_id uuid, sequence int,
                                            occurred_at timestamptz, payload jsonb, org_id text, actor_id text, members jsonb)
    join webhook_endpoints e
      on e.enabled
     and (e.events is null or v.type = any(e.events) or (v.type like 'stream.%' and 'stream.*' = any(e.events)))
     and case e.scope
           when 'installation' then true
           when 'org' then e.org_id = coalesce(v.org_id, (select c.org_id from conversations c where c.id = v.conversation_id))
           else e.principal_id is distinct from v.actor_id
                and ${reaches("coalesce(v.org_id, (select c.org_id from conversations c where c.id = v.conversation_id))")}
                and (e.principal_id in (select jsonb_array_elements_text(v.members))
                     or exists (select 1 from participants p where p.conversation_id = v.conversation_id and p.user_id = e.principal_id))
         end
   order by v.n, e.id
  on conflict (endpoint_id, event_key) do nothing
  returning endpoint_id, conversation_id
),
cursors as (
  insert into webhook_cursors (endpoint_id, conversation_id, sequence)
  select distinct on (i.endpoint_id, i.conversation_id) i.endpoint_id, i.conversation_id,
         ${cursorStart("i.conversation_id", "(select e.receives_since from webhook_endpoints e where e.id = i.endpoint_id)")}
    from inserted i
  on conflict do nothing
)
select endpoint_id, conversation_id from inserted`;

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

export class WebhookOutbox {
  /** Whether any endpoint is enabled; while false the listener costs nothing. */
  private active = false;
  /** Bumped by `markActive`, so that a refresh read before it cannot turn `active` off again. */
  private activations = 0;
  /** What the enabled endpoints looked like at the last refresh; a change tells the dispatcher to forget whom conversations concern. */
  private endpointsVersion = "";
  private readonly wakers = new Set<() => void>();
  private readonly loggedListeners = new Set<(conversationId: string, sequence: number) => void>();
  private readonly changeListeners = new Set<(conversationId?: string) => void>();
  /** Events whose rows were written in their write's transaction: whether it inserted any. */
  private readonly written = new WeakMap<DomainEvent, boolean>();
  private notDurableCount = 0;

  constructor(private readonly database: Database) {}

  /** Called when rows were added here: the local dispatcher need not wait for its next poll. */
  onEnqueued(wake: () => void): () => void {
    this.wakers.add(wake);
    return () => this.wakers.delete(wake);
  }

  /** Called after commit with each conversation whose log grew, and its new sequence. */
  onLogged(listener: (conversationId: string, sequence: number) => void): () => void {
    this.loggedListeners.add(listener);
    return () => this.loggedListeners.delete(listener);
  }

  /** Called when whom a conversation's events concern may have changed (a conversation's members; any conversation's, when endpoints changed). */
  onAudienceChanged(listener: (conversationId?: string) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** An endpoint was enabled here: stop skipping events at once. */
  markActive(): void {
    this.active = true;
    this.activations++;
    this.endpointsChanged();
  }

  /** An endpoint was changed here (disabled, its url, events or secret): the dispatcher reads it again. */
  endpointsChanged(): void {
    for (const listener of this.changeListeners) listener();
  }

  /**
   * The write listener: the rows of a write's events, inside its transaction. While no endpoint is
   * enabled the statement matches none and inserts nothing. Events the log gives back need no row.
   */
  async enqueueWithWrite(events: readonly DomainEvent[], tx: Executor): Promise<void> {
    const rows: WebhookEvent[] = [];
    for (const event of events) {
      if (deliveredFromLog(event)) continue;
      const webhookEvent = webhookEventOf(event);
      if (webhookEvent) rows.push(webhookEvent);
    }
    const inserted = rows.length > 0 && (await run(tx, ENQUEUE, [JSON.stringify(rows.map(enqueuedRow))])).length > 0;
    for (const event of events) {
      if (event.type === "participant.removed") await run(tx, MEMBER_UNTIL, [event.participant.user_id, event.conversationId, event.participant.joined_at]);
    }
    // Marked even without a webhook event, so that the listener after commit knows it was written.
    for (const event of events) this.written.set(event, inserted);
  }

  /**
   * Before a conversation is deleted, with its log, in the deletion's transaction: the messages its
   * endpoints have not had yet become rows, with their payload (up to LOG_TO_ROWS_LIMIT per endpoint).
   */
  async beforeConversationDeleted(tx: Executor, conversationId: string): Promise<void> {
    // Read in the transaction: the embedded database has one connection, which the transaction holds.
    await this.copyUnreadLog(tx, conversationId);
    // Rows waiting for a retry that read their message from the log keep it (even an endpoint disabled
    // now may be enabled again and retry them). Read after the copy: a first attempt that failed while
    // the copy was made is either seen by the copy (its cursor still before the message) or committed
    // before this read (its row is found here); a row the copy inserted first makes it insert nothing.
    const waiting = await run<MessageRow & { delivery_id: string; delivery_type: string }>(tx, ROWS_FROM_LOG, [conversationId]);
    if (waiting.length > 0) {
      const payloads = waiting.map((row) => ({ id: row.delivery_id, payload: logEventData(row, row.delivery_type) }));
      await run(tx, KEEP_PAYLOADS, [JSON.stringify(payloads)]);
    }
  }

  /** The messages of a conversation its enabled endpoints have not read yet become rows with their payload. */
  private async copyUnreadLog(tx: Executor, conversationId: string): Promise<void> {
    const [enabled] = await run<{ any: boolean }>(tx, "select exists (select 1 from webhook_endpoints where enabled) as any");
    if (!enabled?.any) return;
    const ids = JSON.stringify([conversationId]);
    await run(tx, ENSURE_PAIRS, [ids]);
    const pairs = await run<{ endpoint_id: string; conversation_id: string; sequence: number }>(tx, PAIRS_OF_CONVERSATION, [conversationId]);
    if (pairs.length === 0) return;
    const logged = await run<LoggedMessage>(tx, READ_LOG, [JSON.stringify(pairs), LOG_TO_ROWS_LIMIT]);
    const rows: unknown[] = [];
    for (const message of logged) {
      if (!message.id) continue;
      for (const type of message.types ?? []) {
        const key = logEventKey(message, type);
        rows.push({
          n: rows.length,
          endpoint_id: message.pair_endpoint,
          conversation_id: conversationId,
          id: logDeliveryId(message.pair_endpoint, key),
          event_type: type,
          event_key: key,
          message_id: message.id,
          sequence: message.sequence,
          occurred_at: message.created_at,
          payload: logEventData(message, type),
        });
      }
    }
    await run(tx, LOG_TO_ROWS, [JSON.stringify(rows), conversationId]);
  }

  /** The deferred listener of domain events, after commit. */
  handle(event: DomainEvent): void {
    if (event.type === "participant.added" || event.type === "participant.removed") {
      for (const listener of this.changeListeners) listener(event.conversationId);
    }
    if (deliveredFromLog(event)) {
      if (!this.active) return;
      const sequence = loggedSequenceOf(event);
      if (sequence !== undefined) for (const listener of this.loggedListeners) listener(event.conversationId, sequence);
      return;
    }
    const written = this.written.get(event);
    if (written === undefined) {
      if (this.active && webhookEventOf(event)) this.notDurable(event);
      return;
    }
    // Committed now, so the dispatcher can take the rows; and some endpoint is enabled after all.
    if (written) {
      if (!this.active) this.markActive();
      this.wake();
    }
  }

  /** A webhook event emitted outside its write's transaction: not delivered (announce it through writeAndAnnounce). */
  private notDurable(event: DomainEvent): void {
    if (this.notDurableCount++ === 0) {
      log.warn("a webhook event was not written with its write (announce it through writeAndAnnounce)", { event: event.type });
    }
  }

  /** How many events `notDurable` saw: none, unless a write emits outside src/domain/announced-write.ts. */
  get notDurableEvents(): number {
    return this.notDurableCount;
  }

  async refresh(): Promise<void> {
    const activations = this.activations;
    const [row] = await run<{ active: boolean; version: string }>(
      this.database.db,
      "select count(*) > 0 as active, count(*) || ':' || coalesce(max(updated_at)::text, '') as version from webhook_endpoints where enabled",
    );
    if (activations !== this.activations) return;
    this.active = Boolean(row?.active);
    const version = row?.version ?? "";
    if (version !== this.endpointsVersion) {
      this.endpointsVersion = version;
      this.endpointsChanged();
    }
  }

  /** Whether any endpoint is enabled, as last known here. */
  get isActive(): boolean {
    return this.active;
  }

  wake(): void {
    for (const wake of this.wakers) wake();
  }
}

/** The sequence a log event's message took. */
function loggedSequenceOf(event: DomainEvent): number | undefined {
  if (event.type === "message.created" || event.type === "control.sent") return event.message.sequence;
  if (event.type === "run.started") return event.startedBy?.sequence;
  return undefined;
}
