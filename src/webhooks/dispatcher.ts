/**
 * Delivers the outbox (./outbox.ts), on every instance at once without delivering anything twice:
 *
 * - A delivery is taken with a lease: `FOR UPDATE SKIP LOCKED` picks rows no other instance is taking at
 *   that moment, and `lease_until` keeps them while the HTTP attempt runs. A process killed mid-attempt
 *   leaves a lease that runs out, and another instance (or this one, restarted) takes the row again:
 *   delivery is at least once.
 * - Only the first pending row of each (endpoint, conversation) can be taken, so one pair has at most one
 *   attempt in flight and its events arrive in order; a row waiting for its retry holds the rest back.
 * - Retries back off exponentially with jitter (Retry-After honoured) on timeouts, connection errors,
 *   5xx and 429; other answers fail the delivery at once. 410 disables the endpoint, and so do
 *   `disableAfterFailures` failed attempts in a row, with the reason kept on the endpoint.
 */
import { randomUUID } from "node:crypto";
import type { WebhookConfig } from "../config";
import type { Database } from "../db/client";
import type { MessageRow } from "../db/schema";
import { controlBroadcastOf } from "../domain/control-events";
import { runStartedBy, toMessage } from "../domain/resources";
import { describeError, log } from "../log";
import { attemptDelivery, type AttemptOutcome } from "./attempt";
import { run } from "./statement";
import { ACTIVE_REFRESH_MS, REPAIR_GRACE_SECONDS, type WebhookOutbox } from "./outbox";

const REPAIR_EVERY_MS = 60_000;
const PRUNE_EVERY_MS = 3600_000;
/** Delivered and failed rows are kept this long for GET …/deliveries and manual retries. */
const RETENTION_DAYS = 7;
const CONCURRENCY = 8;

interface ClaimedDelivery {
  id: string;
  endpoint_id: string;
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

const CLAIM = `
update webhook_deliveries d
   set lease_until = now() + make_interval(secs => $2::double precision), lease_token = $3::uuid, attempts = d.attempts + 1
  from webhook_endpoints e
 where e.id = d.endpoint_id
   and d.id in (
     select w.id
       from webhook_deliveries w
       join webhook_endpoints we on we.id = w.endpoint_id and we.enabled
      where w.status = 'pending'
        and w.next_attempt_at <= now()
        and (w.lease_until is null or w.lease_until < now())
        and not exists (
          select 1 from webhook_deliveries x
           where x.status = 'pending' and x.endpoint_id = w.endpoint_id
             and x.conversation_id is not distinct from w.conversation_id
             and x.position < w.position)
      order by w.position
      limit $1
      for update of w skip locked)
returning d.id, d.endpoint_id, d.event_type, d.message_id, d.occurred_at, d.payload, d.attempts,
          e.url, e.secret, e.previous_secret, e.previous_secret_expires_at`;

const DELIVERED = `
with done as (
  update webhook_deliveries
     set status = 'delivered', delivered_at = now(), lease_until = null, last_status = $3, last_error = null
   where id = $1 and lease_token = $2::uuid
  returning endpoint_id)
update webhook_endpoints set consecutive_failures = 0
 where id in (select endpoint_id from done) and consecutive_failures <> 0`;

const ATTEMPT_FAILED = `
update webhook_deliveries
   set status = $3, next_attempt_at = now() + make_interval(secs => $4::double precision), lease_until = null,
       last_status = $5, last_error = $6
 where id = $1 and lease_token = $2::uuid
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

/** A receiver's Retry-After is honoured up to this; beyond it the delivery still retries after an hour. */
const RETRY_AFTER_CAP_MS = 3600_000;

/** Exponential back-off with jitter (50–100 % of the step), never shorter than what Retry-After asked. */
export function retryDelayMs(config: WebhookConfig, attempts: number, retryAfterMs?: number, random = Math.random()): number {
  const step = Math.min(config.retryMaxMs, config.retryBaseMs * 2 ** Math.max(0, attempts - 1));
  const jittered = Math.round(step * (0.5 + random * 0.5));
  return Math.max(jittered, Math.min(retryAfterMs ?? 0, RETRY_AFTER_CAP_MS));
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
    void this.repair().finally(() => this.pump());
    // Messages of the last moments before a crash are left to the listener by the first repair: look again.
    const again = setTimeout(() => void this.repair(), (REPAIR_GRACE_SECONDS + 1) * 1000);
    again.unref?.();
    this.timers.push(again);
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

  /** Takes as many due deliveries as there is room for, and starts them. */
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
    // Long enough for the attempt (bounded by its timeout) and recording it; a dead instance's rows wait no longer.
    const leaseSeconds = (2 * this.config.timeoutMs) / 1000 + 5;
    run<ClaimedDelivery>(this.database.db, CLAIM, [room, leaseSeconds, token])
      .then((claimed) => {
        for (const delivery of claimed) this.launch(delivery, token);
        if (claimed.length === room) this.again = true;
      })
      .catch((error) => log.warn("webhook deliveries not claimed", describeError(error)))
      .finally(() => {
        this.claiming = false;
        if (this.again) this.pump();
      });
  }

  private launch(delivery: ClaimedDelivery, token: string): void {
    this.inflight++;
    const done = this.deliver(delivery, token)
      .catch((error) => log.warn("webhook delivery not recorded", { deliveryId: delivery.id, ...describeError(error) }))
      .finally(() => {
        this.inflight--;
        this.running.delete(done);
        this.pump();
      });
    this.running.add(done);
  }

  private async deliver(delivery: ClaimedDelivery, token: string): Promise<void> {
    const data = await this.dataOf(delivery);
    if (data === undefined) {
      await this.record(delivery, token, { kind: "failed", error: "the message no longer exists" }, false);
      return;
    }
    const body = JSON.stringify({ type: delivery.event_type, timestamp: iso(delivery.occurred_at), data });
    const secrets = [delivery.secret];
    if (delivery.previous_secret && delivery.previous_secret_expires_at && new Date(delivery.previous_secret_expires_at).getTime() > Date.now()) {
      secrets.push(delivery.previous_secret);
    }
    const outcome = await attemptDelivery({
      url: delivery.url,
      deliveryId: delivery.id,
      body,
      secrets,
      timeoutMs: this.config.timeoutMs,
      allowPrivate: this.config.allowPrivate,
    });
    await this.record(delivery, token, outcome, true);
  }

  /** A stored payload, or (for rows the repair enqueued) what the message in the log says: itself, its control event, or the run it started. */
  private async dataOf(delivery: ClaimedDelivery): Promise<unknown> {
    if (delivery.payload !== null && delivery.payload !== undefined) {
      return typeof delivery.payload === "string" ? JSON.parse(delivery.payload) : delivery.payload;
    }
    if (!delivery.message_id) return undefined;
    const [row] = await run<MessageRow>(this.database.db, "select * from messages where id = $1", [delivery.message_id]);
    if (!row) return undefined;
    const message = toMessage(row);
    if (delivery.event_type === "message.created") return message;
    if (delivery.event_type === "run.started") return runStartedBy(message);
    return controlBroadcastOf(message);
  }

  private async record(delivery: ClaimedDelivery, token: string, outcome: AttemptOutcome, counts: boolean): Promise<void> {
    const { database, config } = this;
    if (outcome.kind === "delivered") {
      await run(database.db, DELIVERED, [delivery.id, token, outcome.status]);
      return;
    }
    const retry = outcome.kind === "retry" && delivery.attempts < config.maxAttempts;
    const delaySeconds = retry ? retryDelayMs(config, delivery.attempts, outcome.retryAfterMs) / 1000 : 0;
    const updated = await run(database.db, ATTEMPT_FAILED, [
      delivery.id,
      token,
      retry ? "pending" : "failed",
      delaySeconds,
      outcome.status ?? null,
      outcome.error.slice(0, 1000),
    ]);
    // The lease ran out and another attempt took over: that one records the outcome.
    if (updated.length === 0) return;
    if (outcome.kind === "disable") {
      await run(database.db, DISABLE, [delivery.endpoint_id, outcome.error]);
      log.warn("webhook endpoint disabled", { endpointId: delivery.endpoint_id, reason: outcome.error });
      return;
    }
    if (!counts) return;
    const reason = `disabled after ${config.disableAfterFailures} failed attempts in a row; the last: ${outcome.error}`.slice(0, 1000);
    const [endpoint] = await run<{ enabled: boolean }>(database.db, COUNT_FAILURE, [delivery.endpoint_id, config.disableAfterFailures, reason]);
    if (endpoint && !endpoint.enabled) log.warn("webhook endpoint disabled", { endpointId: delivery.endpoint_id, reason: "consecutive failures" });
  }
}
