/**
 * Delivers the outbox (./outbox.ts), on every instance at once without delivering anything twice:
 *
 * - A delivery is taken with a lease: `FOR UPDATE SKIP LOCKED` picks rows no other instance is taking at
 *   that moment, and `lease_until` keeps them while the HTTP attempt runs. A process killed mid-attempt
 *   leaves a lease that runs out, and another instance (or this one, restarted) takes the row again:
 *   delivery is at least once.
 * - Only the first pending row of each (endpoint, conversation) can be taken, and the lease on it holds
 *   the whole pair: up to `PER_PAIR` rows behind it are read with it and attempted one after the other,
 *   in order, and recorded together at the end (a share of a claim and one write per delivery).
 *   One pair has at most one attempt in flight and its events arrive in order; a row waiting for its
 *   retry holds the rest back.
 * - Retries back off exponentially with jitter (Retry-After honoured) on timeouts, connection errors,
 *   5xx and 429; other answers fail the delivery at once. 410 disables the endpoint, and so do
 *   `disableAfterFailures` failed attempts in a row, with the reason kept on the endpoint.
 */
import { randomUUID } from "node:crypto";
import { Batcher } from "../core/batcher";
import type { WebhookConfig } from "../config";
import type { Database } from "../db/client";
import type { MessageRow } from "../db/schema";
import { controlBroadcastOf } from "../domain/control-events";
import { runStartedBy, toMessage } from "../domain/resources";
import { describeError, log } from "../log";
import { attemptDelivery, type AttemptOutcome } from "./attempt";
import { run, runPrepared } from "./statement";
import { ACTIVE_REFRESH_MS, type WebhookOutbox } from "./outbox";

const REPAIR_EVERY_MS = 60_000;
const PRUNE_EVERY_MS = 3600_000;
/** Delivered and failed rows are kept this long for GET …/deliveries and manual retries. */
const RETENTION_DAYS = 7;
/** Pairs (endpoint, conversation) in delivery per instance, one attempt in flight each. */
const CONCURRENCY = 32;
/** Rows of one pair taken at once (in order, behind its first). */
const PER_PAIR = 20;

interface ClaimedDelivery {
  id: string;
  /** The pair's first row, which holds the lease for the rest. */
  head: boolean;
  endpoint_id: string;
  conversation_id: string | null;
  position: number | string;
  event_type: string;
  message_id: string | null;
  occurred_at: Date | string;
  payload: unknown;
  attempts: number;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | string | null;
}

/**
 * Takes up to $1 due deliveries, each the first pending one of its (endpoint, conversation). The heads are
 * found by skipping through the pending index from one conversation to the next, for enabled endpoints
 * only: two index probes per pair with something pending, whatever the backlog behind them (an anti-join
 * per pending row, or sorting them all, grew with the backlog and could not keep up with it). Rows of no
 * conversation (test events) queue per endpoint. A head another instance is taking is skipped (SKIP
 * LOCKED), and one it has taken fails the lease check on the row's committed version.
 */
const CLAIM = `
with recursive pairs as (
  select f.endpoint_id, f.conversation_id
    from webhook_endpoints e
    cross join lateral (
      select w.endpoint_id, w.conversation_id from webhook_deliveries w
       where w.status = 'pending' and w.endpoint_id = e.id and w.conversation_id is not null
       order by w.conversation_id limit 1) f
   where e.enabled
  union all
  select n.endpoint_id, n.conversation_id
    from pairs p
    cross join lateral (
      select w.endpoint_id, w.conversation_id from webhook_deliveries w
       where w.status = 'pending' and w.endpoint_id = p.endpoint_id and w.conversation_id > p.conversation_id
       order by w.conversation_id limit 1) n
),
heads as (
  select h.*
    from pairs p
    cross join lateral (
      select w.id, w.position, w.next_attempt_at, w.lease_until from webhook_deliveries w
       where w.status = 'pending' and w.endpoint_id = p.endpoint_id and w.conversation_id = p.conversation_id
       order by w.position limit 1) h
  union all
  select h.*
    from webhook_endpoints e
    cross join lateral (
      select w.id, w.position, w.next_attempt_at, w.lease_until from webhook_deliveries w
       where w.status = 'pending' and w.endpoint_id = e.id and w.conversation_id is null
       order by w.position limit 1) h
   where e.enabled
),
due as (
  select id from heads
   where next_attempt_at <= now() and (lease_until is null or lease_until < now())
   order by position
   limit $1
),
taken as (
  select d.id
    from webhook_deliveries d
   where d.id in (select id from due) and d.status = 'pending' and (d.lease_until is null or d.lease_until < now())
     for update of d skip locked
),
leased as (
  update webhook_deliveries d
     set lease_until = now() + make_interval(secs => $2::double precision), lease_token = $3::uuid, attempts = d.attempts + 1
   where d.id in (select id from taken)
  returning d.id, d.endpoint_id, d.conversation_id, d.position, d.event_type, d.message_id, d.occurred_at, d.payload, d.attempts, true as head
),
behind as (
  select b.*
    from leased h
    cross join lateral (
      select w.id, w.endpoint_id, w.conversation_id, w.position, w.event_type, w.message_id, w.occurred_at, w.payload, w.attempts, false as head
        from webhook_deliveries w
       where w.status = 'pending' and w.endpoint_id = h.endpoint_id and w.conversation_id = h.conversation_id and w.position > h.position
       order by w.position limit $4::int - 1) b
)
select r.*, e.url, e.secret, e.previous_secret, e.previous_secret_expires_at
  from (select * from leased union all select * from behind) r
  join webhook_endpoints e on e.id = r.endpoint_id`;

/**
 * Deliveries that succeeded ($1: a JSON array of {id, head, token, status, attempts}), recorded together;
 * only while the pair's first row (`head`) still holds the lease they were taken under.
 */
const DELIVERED = `
with done as (
  update webhook_deliveries d
     set status = 'delivered', delivered_at = now(), lease_until = null, last_status = v.status, last_error = null, attempts = v.attempts
    from jsonb_to_recordset($1::jsonb) as v(id uuid, head uuid, token uuid, status int, attempts int)
   where d.id = v.id and d.status = 'pending'
     and exists (select 1 from webhook_deliveries h where h.id = v.head and h.lease_token = v.token)
  returning d.endpoint_id)
update webhook_endpoints set consecutive_failures = 0
 where id in (select endpoint_id from done) and consecutive_failures <> 0`;

/** An attempt that did not deliver ($1 the row, $7 its attempts, $8 the pair's first row holding the lease). */
const ATTEMPT_FAILED = `
update webhook_deliveries d
   set status = $3, next_attempt_at = now() + make_interval(secs => $4::double precision), lease_until = null,
       last_status = $5, last_error = $6, attempts = $7
 where d.id = $1 and d.status = 'pending'
   and exists (select 1 from webhook_deliveries h where h.id = $8 and h.lease_token = $2::uuid)
returning endpoint_id`;

const COUNT_FAILURE = `
update webhook_endpoints
   set consecutive_failures = consecutive_failures + 1,
       enabled = enabled and consecutive_failures + 1 < $2,
       disabled_reason = case when enabled and consecutive_failures + 1 >= $2 then $3 else disabled_reason end,
       updated_at = case when enabled and consecutive_failures + 1 >= $2 then now() else updated_at end
 where id = $1
returning enabled`;

const DISABLE = `update webhook_endpoints set enabled = false, disabled_reason = $2, updated_at = now() where id = $1 and enabled`;

const PRUNE = `
delete from webhook_deliveries
 where id in (select id from webhook_deliveries
               where status <> 'pending' and created_at < now() - make_interval(days => $1)
               limit 10000)`;

/** An attempt starts only if it ends (timeout included) this long before the lease does. */
const LEASE_MARGIN_MS = 5_000;

/** A receiver's Retry-After is honoured up to this; beyond it the delivery still retries after an hour. */
const RETRY_AFTER_CAP_MS = 3600_000;

/** Exponential back-off with jitter (50–100 % of the step), never shorter than what Retry-After asked. */
export function retryDelayMs(config: WebhookConfig, attempts: number, retryAfterMs?: number, random = Math.random()): number {
  const step = Math.min(config.retryMaxMs, config.retryBaseMs * 2 ** Math.max(0, attempts - 1));
  const jittered = Math.round(step * (0.5 + random * 0.5));
  return Math.max(jittered, Math.min(retryAfterMs ?? 0, RETRY_AFTER_CAP_MS));
}

interface Success {
  id: string;
  head: string;
  token: string;
  status: number;
  attempts: number;
}

function iso(value: Date | string): string {
  return value instanceof Date ? value.toISOString() : new Date(value).toISOString();
}

export class WebhookDispatcher {
  private inflight = 0;
  private readonly running = new Set<Promise<void>>();
  private claiming = false;
  private again = false;
  private stopped = true;
  private timers: (ReturnType<typeof setInterval> | ReturnType<typeof setTimeout>)[] = [];
  private detach?: () => void;
  /** Successes are recorded together: one statement for those that finished while the last one ran. */
  private readonly delivered = new Batcher<Success[]>(async (runs) => {
    await runPrepared(this.database, DELIVERED, [JSON.stringify(runs.flat())]);
  });

  constructor(
    private readonly database: Database,
    private readonly outbox: WebhookOutbox,
    private readonly config: WebhookConfig,
  ) {}

  start(): void {
    this.stopped = false;
    this.detach = this.outbox.onEnqueued(() => this.pump());
    const every = (ms: number, task: () => void) => {
      const timer = setInterval(task, ms);
      timer.unref?.();
      this.timers.push(timer);
    };
    every(this.config.pollMs, () => this.pump());
    every(REPAIR_EVERY_MS, () => void this.repair());
    every(ACTIVE_REFRESH_MS, () => void this.outbox.refresh().catch((error) => log.warn("webhook endpoints not read", describeError(error))));
    every(PRUNE_EVERY_MS, () => void run(this.database.db, PRUNE, [RETENTION_DAYS]).catch(() => {}));
    // What a process killed before this one left behind was recovered before listening (src/server.ts).
    this.pump();
  }

  /** Stops taking deliveries and waits (bounded) for the attempts under way. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopped = true;
    this.detach?.();
    for (const timer of this.timers.splice(0)) clearTimeout(timer);
    if (this.running.size > 0) await Promise.race([Promise.allSettled([...this.running]), Bun.sleep(timeoutMs)]);
  }

  private async repair(): Promise<void> {
    try {
      await this.outbox.repair();
    } catch (error) {
      log.warn("webhook outbox repair failed", describeError(error));
    }
  }

  /** Takes as many due pairs as there is room for, and starts them. */
  pump(): void {
    if (this.stopped) return;
    if (this.claiming) {
      this.again = true;
      return;
    }
    const room = CONCURRENCY - this.inflight;
    // No endpoint enabled anywhere: nothing can be due, and polling would cost a query a second.
    if (room <= 0 || !this.outbox.isActive) return;
    this.claiming = true;
    this.again = false;
    const token = randomUUID();
    // Long enough for an attempt (bounded by its timeout) and recording it; a dead instance's rows wait no longer.
    const leaseSeconds = (2 * this.config.timeoutMs) / 1000 + 5;
    const deadline = Date.now() + leaseSeconds * 1000;
    runPrepared<ClaimedDelivery>(this.database, CLAIM, [room, leaseSeconds, token, PER_PAIR])
      .then(async (claimed) => {
        const pairs = new Map<string, ClaimedDelivery[]>();
        for (const delivery of claimed.sort((a, b) => Number(a.position) - Number(b.position))) {
          const key = delivery.conversation_id === null ? delivery.id : `${delivery.endpoint_id}/${delivery.conversation_id}`;
          const rows = pairs.get(key);
          if (rows) rows.push(delivery);
          else pairs.set(key, [delivery]);
        }
        const logged = await this.messagesOf(claimed);
        for (const rows of pairs.values()) this.launch(rows, token, deadline, logged);
        if (pairs.size === room) this.again = true;
      })
      .catch((error) => log.warn("webhook deliveries not claimed", describeError(error)))
      .finally(() => {
        this.claiming = false;
        if (this.again) this.pump();
      });
  }

  private launch(rows: ClaimedDelivery[], token: string, deadline: number, logged: Map<string, MessageRow>): void {
    this.inflight++;
    const done = this.deliverInOrder(rows, token, deadline, logged)
      .catch((error) => log.warn("webhook delivery not recorded", { deliveryId: rows[0].id, ...describeError(error) }))
      .finally(() => {
        this.inflight--;
        this.running.delete(done);
        this.pump();
      });
    this.running.add(done);
  }

  /**
   * One pair's rows, one attempt after the other, recorded together at the end (the lease on the first
   * holds the pair until then). It stops at a row that waits for a retry, an endpoint disabled, any
   * failure of the first row (recorded, it no longer holds the pair), when stopping, and before an
   * attempt that could outlast the lease; what is left waits for the next claim.
   */
  private async deliverInOrder(rows: ClaimedDelivery[], token: string, deadline: number, logged: Map<string, MessageRow>): Promise<void> {
    const head = rows[0].id;
    const succeeded: Success[] = [];
    try {
      for (const [index, delivery] of rows.entries()) {
        if (index > 0 && (this.stopped || Date.now() + this.config.timeoutMs + LEASE_MARGIN_MS > deadline)) break;
        // The first row's attempt was counted when it was taken (a process killed mid-attempt counts it too).
        const attempts = delivery.head ? delivery.attempts : delivery.attempts + 1;
        const data = this.dataOf(delivery, logged);
        const outcome: AttemptOutcome = data === undefined ? { kind: "failed", error: "the message no longer exists" } : await this.attempt(delivery, data);
        if (outcome.kind === "delivered") {
          succeeded.push({ id: delivery.id, head, token, status: outcome.status, attempts });
          continue;
        }
        const verdict = await this.recordFailure({ ...delivery, attempts }, head, token, outcome, data !== undefined);
        if (verdict === "holds the rest" || delivery.head) break;
      }
    } finally {
      if (succeeded.length > 0) await this.delivered.add(succeeded);
    }
  }

  private attempt(delivery: ClaimedDelivery, data: unknown): Promise<AttemptOutcome> {
    const body = JSON.stringify({ type: delivery.event_type, timestamp: iso(delivery.occurred_at), data });
    const secrets = [delivery.secret];
    if (delivery.previous_secret && delivery.previous_secret_expires_at && new Date(delivery.previous_secret_expires_at).getTime() > Date.now()) {
      secrets.push(delivery.previous_secret);
    }
    return attemptDelivery({
      url: delivery.url,
      deliveryId: delivery.id,
      body,
      secrets,
      timeoutMs: this.config.timeoutMs,
      allowPrivate: this.config.allowPrivate,
    });
  }

  /** The messages behind the rows enqueued without a payload (by the log repair), in one read. */
  private async messagesOf(claimed: ClaimedDelivery[]): Promise<Map<string, MessageRow>> {
    const ids = claimed.filter((d) => (d.payload === null || d.payload === undefined) && d.message_id).map((d) => d.message_id!);
    if (ids.length === 0) return new Map();
    const rows = await runPrepared<MessageRow>(this.database, "select * from messages where id in (select jsonb_array_elements_text($1::jsonb)::uuid)", [JSON.stringify(ids)]);
    return new Map(rows.map((row) => [row.id, row]));
  }

  /** A stored payload, or (for rows the repair enqueued) what the message in the log says: itself, its control event, or the run it started. */
  private dataOf(delivery: ClaimedDelivery, logged: Map<string, MessageRow>): unknown {
    if (delivery.payload !== null && delivery.payload !== undefined) {
      return typeof delivery.payload === "string" ? JSON.parse(delivery.payload) : delivery.payload;
    }
    const row = delivery.message_id ? logged.get(delivery.message_id) : undefined;
    if (!row) return undefined;
    const message = toMessage(row);
    if (delivery.event_type === "message.created") return message;
    if (delivery.event_type === "run.started") return runStartedBy(message);
    return controlBroadcastOf(message);
  }

  /** Records an attempt that did not deliver; says whether the pair's later rows must wait. */
  private async recordFailure(
    delivery: ClaimedDelivery,
    head: string,
    token: string,
    outcome: Exclude<AttemptOutcome, { kind: "delivered" }>,
    counts: boolean,
  ): Promise<"holds the rest" | "done"> {
    const { database, config } = this;
    const retry = outcome.kind === "retry" && delivery.attempts < config.maxAttempts;
    const delaySeconds = retry ? retryDelayMs(config, delivery.attempts, outcome.retryAfterMs) / 1000 : 0;
    const updated = await run(database.db, ATTEMPT_FAILED, [
      delivery.id,
      token,
      retry ? "pending" : "failed",
      delaySeconds,
      outcome.status ?? null,
      outcome.error.slice(0, 1000),
      delivery.attempts,
      head,
    ]);
    // The lease ran out and another attempt took over: that one records the outcome, and has the pair.
    if (updated.length === 0) return "holds the rest";
    if (outcome.kind === "disable") {
      await run(database.db, DISABLE, [delivery.endpoint_id, outcome.error]);
      log.warn("webhook endpoint disabled", { endpointId: delivery.endpoint_id, reason: outcome.error });
      return "holds the rest";
    }
    if (counts) {
      const reason = `disabled after ${config.disableAfterFailures} failed attempts in a row; the last: ${outcome.error}`.slice(0, 1000);
      const [endpoint] = await run<{ enabled: boolean }>(database.db, COUNT_FAILURE, [delivery.endpoint_id, config.disableAfterFailures, reason]);
      if (endpoint && !endpoint.enabled) {
        log.warn("webhook endpoint disabled", { endpointId: delivery.endpoint_id, reason: "consecutive failures" });
        return "holds the rest";
      }
    }
    return retry ? "holds the rest" : "done";
  }
}
