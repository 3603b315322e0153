/**
 * The webhook outbox: a committed domain event becomes one `webhook_deliveries` row per endpoint that
 * should receive it, in a single INSERT … SELECT that does the matching (scope, event filter, an agent's
 * own messages left out). The dispatcher (./dispatcher.ts) delivers the rows.
 *
 * Cost on the write path: nothing. The listener is deferred, and while no endpoint is enabled anywhere
 * (`active`: set at once by an endpoint enabled here, re-read by the dispatcher every few seconds for
 * those enabled on other instances) it returns without touching the database.
 *
 * Durability: the row is written just after the write committed, so a process killed in that instant
 * would lose it. For messages and control events, the bulk of the traffic, the message log itself closes
 * that gap: `repair()` (run at start and every minute, on every instance) enqueues recent messages that
 * an endpoint should have and does not, reading their payload from the log at delivery. Keys make every
 * insert idempotent, so the listener, the repair and other instances never deliver an event twice.
 */
import type { Database } from "../db/client";
import type { DomainEvent } from "../domain/domain-events";
import { log } from "../log";
import { run } from "./statement";
import { webhookEventOf, type WebhookEvent } from "./event-types";

/** How far back the repair looks for messages that were never enqueued. */
const REPAIR_WINDOW_SECONDS = 600;
/** The repair leaves the newest messages to the listener, which enqueues them within milliseconds. */
export const REPAIR_GRACE_SECONDS = 2;
/** How often an instance re-reads whether any endpoint is enabled. */
export const ACTIVE_REFRESH_MS = 5_000;

/** Which endpoints hear an event. $1 conversation, $2 type, $8 org, $9 actor, $10 members. */
const ENQUEUE = `
insert into webhook_deliveries (endpoint_id, conversation_id, event_type, event_key, message_id, sequence, occurred_at, payload)
select e.id, $1::uuid, $2, $3, $4::uuid, $5::int, $6::timestamptz, $7::jsonb
  from webhook_endpoints e
 where e.enabled
   and (e.events is null or $2 = any(e.events) or ($2 like 'stream.%' and 'stream.*' = any(e.events)))
   and case e.scope
         when 'installation' then true
         when 'org' then e.org_id = coalesce($8::text, (select c.org_id from conversations c where c.id = $1::uuid))
         else e.principal_id is distinct from $9::text
              and (e.principal_id in (select jsonb_array_elements_text($10::jsonb))
                   or exists (select 1 from participants p where p.conversation_id = $1::uuid and p.user_id = e.principal_id))
       end
on conflict (endpoint_id, event_key) do nothing
returning endpoint_id`;

/** Recent messages and control events an enabled endpoint should have and does not. */
const REPAIR = `
insert into webhook_deliveries (endpoint_id, conversation_id, event_type, event_key, message_id, sequence, occurred_at)
select e.id, m.conversation_id, t.type, t.prefix || m.id, m.id, m.sequence, m.created_at
  from webhook_endpoints e
  join conversations c
    on c.last_message_at > now() - make_interval(secs => $1)
   and (e.scope = 'installation' or (e.scope = 'org' and c.org_id = e.org_id) or e.scope = 'principal')
  join messages m
    on m.conversation_id = c.id
   and m.created_at > greatest(e.created_at, e.updated_at, now() - make_interval(secs => $1))
   and m.created_at < now() - make_interval(secs => $2)
  cross join lateral (
    select case when m.content_type = 'event' then coalesce(m.metadata->'control'->>'event', m.content) else 'message.created' end as type,
           case when m.content_type = 'event' then 'control:' else 'message.created:' end as prefix
  ) t
 where e.enabled
   and (e.scope <> 'principal' or (
         m.sender_id <> e.principal_id
         and exists (select 1 from participants p where p.conversation_id = c.id and p.user_id = e.principal_id and p.joined_at <= m.created_at)))
   and (e.events is null or t.type = any(e.events) or (m.content_type = 'event' and 'stream.*' = any(e.events)))
 order by m.conversation_id, m.sequence
on conflict (endpoint_id, event_key) do nothing
returning endpoint_id`;

export class WebhookOutbox {
  /** Whether any endpoint is enabled; while false the listener costs nothing. */
  private active = false;
  /** Bumped by `markActive`, so that a refresh read before it cannot turn `active` off again. */
  private activations = 0;
  /** Inserts run one after another, so that rows of one instance are numbered in emit (commit) order. */
  private tail: Promise<void> = Promise.resolve();
  private readonly wakers = new Set<() => void>();

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

  /** The deferred listener of domain events. */
  handle(event: DomainEvent): Promise<void> | void {
    if (!this.active) return;
    const webhookEvent = webhookEventOf(event);
    if (!webhookEvent) return;
    const run = this.tail.then(async () => {
      await this.enqueue(webhookEvent);
    });
    this.tail = run.catch(() => {});
    return run;
  }

  /** Waits for the inserts queued so far (tests, shutdown). */
  async settled(): Promise<void> {
    await this.tail;
  }

  async enqueue(event: WebhookEvent): Promise<number> {
    const inserted = await run<{ endpoint_id: string }>(this.database.db, ENQUEUE, [
      event.conversationId,
      event.type,
      event.key,
      event.messageId ?? null,
      event.sequence ?? null,
      event.occurredAt,
      JSON.stringify(event.data),
      event.orgId ?? null,
      event.actorId ?? null,
      JSON.stringify(event.members ?? []),
    ]);
    if (inserted.length > 0) this.wake();
    return inserted.length;
  }

  /** Enqueues recent messages that were committed but never enqueued (a process killed in between). */
  async repair(): Promise<number> {
    await this.refresh();
    if (!this.active) return 0;
    const inserted = await run<{ endpoint_id: string }>(this.database.db, REPAIR, [REPAIR_WINDOW_SECONDS, REPAIR_GRACE_SECONDS]);
    if (inserted.length > 0) {
      log.info("webhook deliveries recovered from the message log", { deliveries: inserted.length });
      this.wake();
    }
    return inserted.length;
  }

  async refresh(): Promise<void> {
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
