/**
 * Delivers webhooks by (endpoint, conversation) pair, on every instance at once, without two instances
 * delivering one pair at the same time:
 *
 * - A pair's events are its conversation's message log past the pair's cursor, merged with the pair's
 *   pending outbox rows (./outbox.ts), which sit between the messages by `after_sequence`
 *   (./pair-statements.ts). They go one at a time, in that order: a conversation's events reach an
 *   endpoint in sequence order.
 * - An instance delivers a pair while it holds the lease on the pair's cursor row: taken with `FOR UPDATE
 *   SKIP LOCKED` where no live lease is, kept while the pair has work (each record of progress extends
 *   it), given back when it has had none for a moment. A process killed mid-delivery leaves a lease that
 *   runs out; whoever takes the pair next starts from the cursor: delivery is at least once, and an event
 *   delivered twice has the same `webhook-id`.
 * - Sends cost nothing here: after commit the outbox hints which conversation's log grew, and the pair's
 *   session reads what is new (reads and records of all sessions are batched into one statement each).
 *   Hints are this instance's own; what other instances or a killed process left is found by a sweep
 *   every `pollMs` (cursors behind their conversation, rows due) and, for pairs with no cursor yet, by a
 *   look at recently written conversations at start and every minute.
 * - A message's event that fails becomes an outbox row (status, attempts, next attempt) and the cursor
 *   moves past it; that row holds the pair's later events back until it is delivered or fails for good.
 *   Retries back off exponentially with jitter (Retry-After honoured) on timeouts, connection errors, 5xx
 *   and 429; other answers fail the delivery at once. 410 disables the endpoint, and so do
 *   `disableAfterFailures` failed attempts in a row, with the reason kept on the endpoint.
 */
import { randomUUID } from "node:crypto";
import { Batcher } from "../core/batcher";
import type { WebhookConfig } from "../config";
import type { Database } from "../db/client";
import type { MessageRow } from "../db/schema";
import { describeError, log } from "../log";
import { attemptDelivery, type AttemptOutcome } from "./attempt";
import { logDeliveryId, logEventData, logEventKey, type LoggedMessage } from "./log-events";
import { run, runPrepared } from "./statement";
import { ACTIVE_REFRESH_MS, type WebhookOutbox } from "./outbox";
import {
  COUNT_FAILURE,
  DISABLE,
  DISCOVER_PAIRS,
  ENSURE_PAIRS,
  LEASE_PAIRS,
  LOG_EVENT_FAILED,
  PRUNE,
  PRUNE_CURSORS,
  READ_LOG,
  READ_ROWS,
  RECORD,
  RELEASE_ALL,
  ROW_FAILED,
} from "./pair-statements";

const DISCOVER_EVERY_MS = 60_000;
/** How far back the look for pairs with no cursor goes (a process killed between commit and hint). */
const DISCOVER_WINDOW_SECONDS = 600;
const PRUNE_EVERY_MS = 3600_000;
/** Delivered and failed rows are kept this long for GET …/deliveries and manual retries. */
const RETENTION_DAYS = 7;
/**
 * While other pairs wait for room (more pairs with work than `WEBHOOK_CONCURRENCY`), a session that has
 * delivered for this long gives its pair back and queues behind them: busy conversations take turns
 * instead of holding the room for as long as they stay busy.
 */
const TURN_MS = 1_000;
/** Reads, and records, of at most this many pairs per statement. */
const BATCH_LIMIT = 128;
/** Messages, and rows, read per pair at once. */
const READ_AHEAD = 32;
/** A session with nothing to deliver for this long gives its pair back. */
const IDLE_MS = 2_000;
/** While delivering, a session records its progress (and extends its lease) at least this often. */
const RECORD_EVERY_MS = 250;
/**
 * Reads (and records) of the sessions start at most this often, so that under load one statement serves
 * many pairs instead of one statement per pair and message: a delivery waits up to this long longer.
 */
const STATEMENT_SPACING_MS = 20;
/** Whom a conversation's events concern is read again after this long. */
const AUDIENCE_TTL_MS = 10_000;

/** A receiver's Retry-After is honoured up to this; beyond it the delivery still retries after an hour. */
const RETRY_AFTER_CAP_MS = 3600_000;

/** Exponential back-off with jitter (50–100 % of the step), never shorter than what Retry-After asked. */
export function retryDelayMs(config: WebhookConfig, attempts: number, retryAfterMs?: number, random = Math.random()): number {
  const step = Math.min(config.retryMaxMs, config.retryBaseMs * 2 ** Math.max(0, attempts - 1));
  const jittered = Math.round(step * (0.5 + random * 0.5));
  return Math.max(jittered, Math.min(retryAfterMs ?? 0, RETRY_AFTER_CAP_MS));
}

interface Endpoint {
  id: string;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | string | null;
  enabled: boolean;
}

interface PendingRow {
  pair_endpoint: string;
  pair_conversation: string;
  id: string;
  event_type: string;
  event_key: string;
  message_id: string | null;
  after_sequence: number;
  payload: unknown;
  attempts: number;
  occurred_at: Date | string;
  due: boolean;
  /** For a row without a payload (a message's event that failed first): the message, from the log. */
  logged?: MessageRow;
}


/** One event to deliver: a row of the outbox, or the events of one message of the log. */
type Item = { kind: "row"; row: PendingRow } | { kind: "log"; message: LoggedMessage };

interface PairRead {
  endpointId: string;
  conversationId: string;
  sequence: number;
  /** Whether to read the pair's rows too (they are rare: only when some may have come). */
  withRows: boolean;
  rows: PendingRow[];
  messages: LoggedMessage[];
  logEnd: number;
}

interface PairRecord {
  endpointId: string;
  conversationId: string;
  sequence: number;
  release: boolean;
  succeeded: boolean;
  delivered: { id: string; status: number; attempts: number }[];
  /** Set by the record: whether the lease still holds. */
  held?: boolean;
}

const pairKey = (endpointId: string, conversationId: string) => `${endpointId}/${conversationId}`;

function iso(value: Date | string): string {
  return value instanceof Date ? value.toISOString() : new Date(value).toISOString();
}

export class WebhookDispatcher {
  private readonly token = randomUUID();
  private readonly sessions = new Map<string, PairSession>();
  /** Conversations whose log grew (here) and the sequence it reached, not yet handed to a session. */
  private readonly hinted = new Map<string, number>();
  /** Whom each recently hinted conversation concerns: its endpoints (each a pair with a cursor). */
  private readonly audiences = new Map<string, { endpoints: string[]; at: number }>();
  /** How many pairs with work were left for lack of room at the last look: as many sessions end their turn (TURN_MS). */
  private turnsWanted = 0;
  private claiming = false;
  private again = false;
  private sweepDue = true;
  private stopped = true;
  private timers: ReturnType<typeof setInterval>[] = [];
  private detach: (() => void)[] = [];
  /** Endpoints read for the sessions; null: read, and no longer there. Cleared when endpoints change. */
  private endpoints = new Map<string, Endpoint | null>();

  /** Reads of every session that wants its next events, as one pair of statements. */
  private readonly reads = new Batcher<PairRead>((reads) => this.readPairs(reads), BATCH_LIMIT, STATEMENT_SPACING_MS);
  /** Progress of every session that has some, as one statement. */
  private readonly records = new Batcher<PairRecord>((records) => this.recordPairs(records), BATCH_LIMIT, STATEMENT_SPACING_MS);

  constructor(
    private readonly database: Database,
    private readonly outbox: WebhookOutbox,
    readonly config: WebhookConfig,
  ) {}

  start(): void {
    this.stopped = false;
    this.detach.push(
      this.outbox.onEnqueued(() => this.wake()),
      this.outbox.onLogged((conversationId, sequence) => this.hint(conversationId, sequence)),
      this.outbox.onAudienceChanged((conversationId) => {
        if (conversationId === undefined) this.audiences.clear();
        else this.audiences.delete(conversationId);
        this.endpoints.clear();
      }),
    );
    const every = (ms: number, task: () => void) => {
      const timer = setInterval(task, ms);
      timer.unref?.();
      this.timers.push(timer);
    };
    every(this.config.pollMs, () => this.wake());
    every(DISCOVER_EVERY_MS, () => void this.discover());
    every(ACTIVE_REFRESH_MS, () => void this.outbox.refresh().catch((error) => log.warn("webhook endpoints not read", describeError(error))));
    every(PRUNE_EVERY_MS, () => {
      void run(this.database.db, PRUNE, [RETENTION_DAYS]).catch(() => {});
      void run(this.database.db, PRUNE_CURSORS).catch(() => {});
    });
    this.wake();
  }

  /** Stops taking pairs, waits (bounded) for the attempts under way, and gives the pairs back. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopped = true;
    for (const off of this.detach.splice(0)) off();
    for (const timer of this.timers.splice(0)) clearInterval(timer);
    const running = [...this.sessions.values()].map((session) => session.done);
    for (const session of this.sessions.values()) session.stop();
    if (running.length > 0) await Promise.race([Promise.allSettled(running), Bun.sleep(timeoutMs)]);
    await run(this.database.db, RELEASE_ALL, [this.token]).catch(() => {});
  }

  /**
   * Cursors for pairs that should have one and do not: what a process killed between a commit and its
   * hint left behind. Run before serving (src/server.ts) and every minute.
   */
  async discover(): Promise<number> {
    try {
      await this.outbox.refresh();
      if (!this.outbox.isActive) return 0;
      const created = await run<{ endpoint_id: string }>(this.database.db, DISCOVER_PAIRS, [DISCOVER_WINDOW_SECONDS]);
      if (created.length > 0) {
        log.info("webhook deliveries resumed from the message log", { pairs: created.length });
        this.wake();
      }
      return created.length;
    } catch (error) {
      log.warn("webhook pairs not discovered", describeError(error));
      return 0;
    }
  }

  /** The log of a conversation grew to `sequence` here. */
  hint(conversationId: string, sequence: number): void {
    if (this.stopped) return;
    let handed = false;
    const audience = this.audiences.get(conversationId);
    if (audience && Date.now() - audience.at < AUDIENCE_TTL_MS) {
      handed = true;
      for (const endpointId of audience.endpoints) {
        const session = this.sessions.get(pairKey(endpointId, conversationId));
        if (session) session.hint(sequence);
        else handed = false;
      }
    }
    if (handed) return;
    this.hinted.set(conversationId, Math.max(sequence, this.hinted.get(conversationId) ?? 0));
    this.pump();
  }

  /** Something may be due: sweep for it, and let the sessions read their rows again. */
  wake(): void {
    this.sweepDue = true;
    for (const session of this.sessions.values()) session.rowsMayHaveCome();
    this.pump();
  }

  /** Takes pairs with work, as many as there is room for, and starts their sessions. */
  private pump(): void {
    if (this.stopped) return;
    if (this.claiming) {
      this.again = true;
      return;
    }
    if (!this.outbox.isActive || (this.hinted.size === 0 && !this.sweepDue)) return;
    const room = this.config.concurrency - this.sessions.size;
    if (room <= 0) {
      // A sweep that is due may find pairs that nothing here hints (another instance's writes): room for one.
      this.turnsWanted = Math.max(this.turnsWanted, this.hinted.size + (this.sweepDue ? 1 : 0));
      return;
    }
    this.claiming = true;
    this.again = false;
    this.claim(room)
      .catch((error) => log.warn("webhook pairs not taken", describeError(error)))
      .finally(() => {
        this.claiming = false;
        if (this.again) this.pump();
      });
  }

  private async claim(room: number): Promise<void> {
    const hinted = new Map(this.hinted);
    this.hinted.clear();
    const sweep = this.sweepDue;
    this.sweepDue = false;
    const leaseSeconds = this.leaseSeconds();
    let left = 0;
    // The sweep goes first, longest waiting pairs first: pairs that only it finds are not left behind
    // by hinted ones that keep coming back.
    if (sweep) {
      room -= await this.lease(null, room, leaseSeconds);
      // A full sweep may have left more behind.
      if (room <= 0) {
        this.sweepDue = true;
        left++;
      }
    }
    if (hinted.size > 0) {
      const unknown = [...hinted.keys()].filter((id) => {
        const audience = this.audiences.get(id);
        return !audience || Date.now() - audience.at >= AUDIENCE_TTL_MS;
      });
      if (unknown.length > 0) {
        const pairs = await runPrepared<{ endpoint_id: string; conversation_id: string }>(this.database, ENSURE_PAIRS, [JSON.stringify(unknown)]);
        const at = Date.now();
        for (const id of unknown) this.audiences.set(id, { endpoints: [], at });
        for (const pair of pairs) this.audiences.get(pair.conversation_id)?.endpoints.push(pair.endpoint_id);
      }
      const wanted: { endpoint_id: string; conversation_id: string }[] = [];
      for (const [conversationId, sequence] of hinted) {
        for (const endpointId of this.audiences.get(conversationId)?.endpoints ?? []) {
          const session = this.sessions.get(pairKey(endpointId, conversationId));
          if (session) session.hint(sequence);
          else wanted.push({ endpoint_id: endpointId, conversation_id: conversationId });
        }
      }
      const taking = wanted.slice(0, Math.max(0, room));
      if (taking.length > 0) room -= await this.lease(JSON.stringify(taking), room, leaseSeconds);
      // Those beyond the room stay hinted, in their order, and are taken as sessions give pairs back.
      for (const pair of wanted.slice(taking.length)) {
        left++;
        const sequence = hinted.get(pair.conversation_id) ?? 0;
        this.hinted.set(pair.conversation_id, Math.max(sequence, this.hinted.get(pair.conversation_id) ?? 0));
      }
    }
    this.turnsWanted = Math.max(left, this.hinted.size);
  }

  /**
   * Whether a session should give its pair back for another with work that waits for room; answers yes
   * to as many sessions as pairs wait.
   */
  /**
   * Whether pairs with work may be waiting for room: hinted ones, or a due sweep while every session is
   * taken. A session with nothing left to deliver then gives its pair back at once instead of idling.
   */
  get roomWanted(): boolean {
    return this.turnsWanted > 0 || this.hinted.size > 0 || (this.sweepDue && this.sessions.size >= this.config.concurrency);
  }

  takeTurn(): boolean {
    if (this.turnsWanted <= 0) return false;
    this.turnsWanted--;
    return true;
  }

  /** Leases pairs (those named, or any with work) and starts a session for each; answers how many. */
  private async lease(named: string | null, room: number, leaseSeconds: number): Promise<number> {
    const leased = await runPrepared<{ endpoint_id: string; conversation_id: string; sequence: number }>(this.database, LEASE_PAIRS, [
      named,
      room,
      leaseSeconds,
      this.token,
    ]);
    let started = 0;
    for (const pair of leased) {
      const key = pairKey(pair.endpoint_id, pair.conversation_id);
      if (this.sessions.has(key)) continue;
      const session = new PairSession(this, pair.endpoint_id, pair.conversation_id, Number(pair.sequence));
      this.sessions.set(key, session);
      started++;
      session.done.finally(() => {
        this.sessions.delete(key);
        // Hinted while giving the pair back: taken again at once rather than at the next sweep.
        if (session.unhandledHint > 0) this.hint(pair.conversation_id, session.unhandledHint);
        else this.pump();
      });
    }
    return started;
  }

  leaseSeconds(): number {
    // Long enough for an attempt (bounded by its timeout) and recording it; a dead instance's pairs wait no longer.
    return (2 * this.config.timeoutMs) / 1000 + 5;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  // ------------------------------------------------------------ batched statements of the sessions

  read(pair: PairRead): Promise<void> {
    return this.reads.add(pair);
  }

  record(progress: PairRecord): Promise<void> {
    return this.records.add(progress);
  }

  private async readPairs(reads: PairRead[]): Promise<void> {
    const pairsOf = (some: PairRead[]) => JSON.stringify(some.map((r) => ({ endpoint_id: r.endpointId, conversation_id: r.conversationId, sequence: r.sequence })));
    const input = pairsOf(reads);
    const withRows = reads.filter((r) => r.withRows);
    const rowsInput = pairsOf(withRows);
    // The log is read before the rows, not beside them: a row committed before a message the log read
    // saw is then always among the rows (on another connection, the rows' read could have run first and
    // missed it, and the message would go out ahead of the row written before it).
    const readEvents = async (): Promise<[PendingRow[], LoggedMessage[]]> => {
      const messages = await runPrepared<LoggedMessage>(this.database, READ_LOG, [input, READ_AHEAD]);
      const rows = withRows.length > 0 ? await runPrepared<PendingRow>(this.database, READ_ROWS, [rowsInput, READ_AHEAD]) : [];
      return [rows, messages];
    };
    const [[rows, messages]] = await Promise.all([readEvents(), this.loadEndpoints(reads)]);
    const byPair = new Map(reads.map((r) => [pairKey(r.endpointId, r.conversationId), r]));
    for (const read of reads) {
      read.rows = [];
      read.messages = [];
      read.logEnd = read.sequence;
    }
    for (const row of rows) byPair.get(pairKey(row.pair_endpoint, row.pair_conversation))?.rows.push(row);
    const ids = rows.filter((row) => (row.payload === null || row.payload === undefined) && row.message_id).map((row) => row.message_id!);
    if (ids.length > 0) {
      const logged = await runPrepared<MessageRow>(this.database, "select * from messages where id in (select jsonb_array_elements_text($1::jsonb)::uuid)", [JSON.stringify(ids)]);
      const byId = new Map(logged.map((message) => [message.id, message]));
      for (const row of rows) if (row.message_id) row.logged = byId.get(row.message_id);
    }
    for (const message of messages) {
      const read = byPair.get(pairKey(message.pair_endpoint, message.pair_conversation));
      if (!read) continue;
      if (message.log_end !== null) read.logEnd = Math.max(read.logEnd, Number(message.log_end));
      if (message.id) read.messages.push(message);
    }
  }

  private async recordPairs(records: PairRecord[]): Promise<void> {
    const pairs = records.map((r) => ({
      endpoint_id: r.endpointId,
      conversation_id: r.conversationId,
      token: this.token,
      sequence: r.sequence,
      release: r.release,
      succeeded: r.succeeded,
    }));
    const delivered = records.flatMap((r) =>
      r.delivered.map((d) => ({ ...d, endpoint_id: r.endpointId, conversation_id: r.conversationId, token: this.token })),
    );
    const held = await runPrepared<{ endpoint_id: string; conversation_id: string }>(this.database, RECORD, [
      JSON.stringify(pairs),
      JSON.stringify(delivered),
      this.leaseSeconds(),
    ]);
    const still = new Set(held.map((h) => pairKey(h.endpoint_id, h.conversation_id)));
    for (const record of records) record.held = record.release || still.has(pairKey(record.endpointId, record.conversationId));
  }

  /** The endpoints of these pairs (url, secrets), read once and kept until endpoints change. */
  private async loadEndpoints(reads: PairRead[]): Promise<void> {
    const missing = [...new Set(reads.map((r) => r.endpointId))].filter((id) => !this.endpoints.has(id));
    if (missing.length === 0) return;
    const rows = await runPrepared<Endpoint>(
      this.database,
      "select id, url, secret, previous_secret, previous_secret_expires_at, enabled from webhook_endpoints where id in (select jsonb_array_elements_text($1::jsonb)::uuid)",
      [JSON.stringify(missing)],
    );
    for (const id of missing) this.endpoints.set(id, null);
    for (const row of rows) this.endpoints.set(row.id, row);
  }

  /** The endpoint as last read; null when it is gone, undefined when not read since endpoints changed. */
  endpoint(id: string): Endpoint | null | undefined {
    return this.endpoints.get(id);
  }

  forgetEndpoint(id: string): void {
    this.endpoints.delete(id);
  }

  // ------------------------------------------------------------ attempts and failures

  attempt(endpoint: Endpoint, deliveryId: string, type: string, occurredAt: Date | string, data: unknown): Promise<AttemptOutcome> {
    const body = JSON.stringify({ type, timestamp: iso(occurredAt), data });
    const secrets = [endpoint.secret];
    if (endpoint.previous_secret && endpoint.previous_secret_expires_at && new Date(endpoint.previous_secret_expires_at).getTime() > Date.now()) {
      secrets.push(endpoint.previous_secret);
    }
    return attemptDelivery({
      url: endpoint.url,
      deliveryId,
      body,
      secrets,
      timeoutMs: this.config.timeoutMs,
      allowPrivate: this.config.allowPrivate,
    });
  }

  /** What a failed attempt means for the endpoint: disabled (410, or too many failures in a row), or not. */
  async endpointAfterFailure(endpointId: string, outcome: Exclude<AttemptOutcome, { kind: "delivered" }>, counts: boolean): Promise<"disabled" | "enabled"> {
    const { database, config } = this;
    if (outcome.kind === "disable") {
      await run(database.db, DISABLE, [endpointId, outcome.error]);
      this.forgetEndpoint(endpointId);
      log.warn("webhook endpoint disabled", { endpointId, reason: outcome.error });
      return "disabled";
    }
    if (!counts) return "enabled";
    const reason = `disabled after ${config.disableAfterFailures} failed attempts in a row; the last: ${outcome.error}`.slice(0, 1000);
    const [endpoint] = await run<{ enabled: boolean }>(database.db, COUNT_FAILURE, [endpointId, config.disableAfterFailures, reason]);
    if (endpoint && !endpoint.enabled) {
      this.forgetEndpoint(endpointId);
      log.warn("webhook endpoint disabled", { endpointId, reason: "consecutive failures" });
      return "disabled";
    }
    return "enabled";
  }

  /** A message's events from `failedIndex` on become rows (the failed one with its outcome); answers whether the lease held. */
  async logEventFailed(
    session: PairSession,
    message: LoggedMessage,
    types: string[],
    failedIndex: number,
    outcome: Exclude<AttemptOutcome, { kind: "delivered" }>,
  ): Promise<{ held: boolean; retry: boolean }> {
    const retry = outcome.kind === "retry" && this.config.maxAttempts > 1;
    const delaySeconds = retry ? retryDelayMs(this.config, 1, outcome.retryAfterMs) / 1000 : 0;
    const rows = types.slice(failedIndex).map((type, i) => {
      const key = logEventKey(message, type);
      const first = i === 0;
      return {
        n: i,
        id: logDeliveryId(session.endpointId, key),
        event_type: type,
        event_key: key,
        message_id: message.id,
        occurred_at: iso(message.created_at),
        status: first && !retry ? "failed" : "pending",
        attempts: first ? 1 : 0,
        delay: first ? delaySeconds : 0,
        last_status: first ? (outcome.status ?? null) : null,
        last_error: first ? outcome.error.slice(0, 1000) : null,
      };
    });
    const [answer] = await run<{ held: boolean }>(this.database.db, LOG_EVENT_FAILED, [
      session.endpointId,
      session.conversationId,
      this.token,
      message.sequence,
      JSON.stringify(rows),
    ]);
    return { held: Boolean(answer?.held), retry };
  }

  /** Records a row's attempt that did not deliver; answers whether the lease held and whether it waits for a retry. */
  async rowFailed(session: PairSession, row: PendingRow, attempts: number, outcome: Exclude<AttemptOutcome, { kind: "delivered" }>): Promise<{ held: boolean; retry: boolean }> {
    const retry = outcome.kind === "retry" && attempts < this.config.maxAttempts;
    const delaySeconds = retry ? retryDelayMs(this.config, attempts, outcome.retryAfterMs) / 1000 : 0;
    const [answer] = await run<{ held: boolean }>(this.database.db, ROW_FAILED, [
      row.id,
      this.token,
      retry ? "pending" : "failed",
      delaySeconds,
      outcome.status ?? null,
      outcome.error.slice(0, 1000),
      attempts,
      session.endpointId,
      session.conversationId,
    ]);
    return { held: Boolean(answer?.held), retry };
  }
}

/**
 * One pair in delivery on this instance: reads its next events, delivers them one after the other,
 * records how far it got, and gives the pair back when nothing is left for a moment, when a row waits for
 * its retry, when its endpoint is disabled, or when its lease was lost.
 */
class PairSession {
  readonly done: Promise<void>;
  private stopped = false;
  /** The highest sequence this instance hinted for the conversation. */
  private hintedSequence = 0;
  private wakeUp?: () => void;
  /** Whether the next read reads the pair's rows: after rows came here, and now and then (from other instances). */
  private rowsWanted = true;
  private rowsReadAt = 0;
  /** Delivered or turned into rows, not yet recorded. */
  private progress: PairRecord;
  private lastRecord = Date.now();
  private readonly startedAt = Date.now();
  /** It gave its pair back for others to have a turn, maybe with more to deliver. */
  turnEnded = false;

  constructor(
    private readonly dispatcher: WebhookDispatcher,
    readonly endpointId: string,
    readonly conversationId: string,
    private sequence: number,
  ) {
    this.progress = this.freshProgress();
    this.done = this.run().catch((error) => log.warn("webhook delivery stopped", { endpointId, conversationId, ...describeError(error) }));
  }

  hint(sequence: number): void {
    if (sequence > this.hintedSequence) this.hintedSequence = sequence;
    this.wakeUp?.();
  }

  stop(): void {
    this.stopped = true;
    this.wakeUp?.();
  }

  /** A sequence hinted that this session did not reach before it ended, or past its place when its turn ended (0: none). */
  get unhandledHint(): number {
    if (this.hintedSequence > this.sequence) return this.hintedSequence;
    return this.turnEnded ? this.sequence + 1 : 0;
  }

  rowsMayHaveCome(): void {
    this.rowsWanted = true;
  }

  private freshProgress(): PairRecord {
    return { endpointId: this.endpointId, conversationId: this.conversationId, sequence: this.sequence, release: false, succeeded: false, delivered: [] };
  }

  private async run(): Promise<void> {
    let idleSince = Date.now();
    let held = true;
    try {
      while (!this.stopped && !this.dispatcher.isStopped && held) {
        // Its turn is over when others wait for room (its own hints bring it back, behind them).
        if (Date.now() - this.startedAt >= TURN_MS && this.dispatcher.takeTurn()) {
          this.turnEnded = true;
          break;
        }
        const withRows = this.rowsWanted || Date.now() - this.rowsReadAt >= this.dispatcher.config.pollMs;
        const read: PairRead = { endpointId: this.endpointId, conversationId: this.conversationId, sequence: this.sequence, withRows, rows: [], messages: [], logEnd: this.sequence };
        if (withRows) {
          this.rowsWanted = false;
          this.rowsReadAt = Date.now();
        }
        await this.dispatcher.read(read);
        // Rows read in full are delivered or hold the pair; more than were read are read next time too.
        if (read.rows.length > 0) this.rowsWanted = true;
        const endpoint = this.dispatcher.endpoint(this.endpointId);
        // Changed again since the read: read it (and the events) once more.
        if (endpoint === undefined) continue;
        if (endpoint === null || !endpoint.enabled) break;
        const outcome = await this.deliver(read, endpoint);
        if (outcome === "stop") break;
        if (outcome === "lost") {
          held = false;
          break;
        }
        if (outcome === "delivered") idleSince = Date.now();
        // Rows delivered are recorded before the next read, which would read them again; the cursor
        // lives here meanwhile, and is recorded now and then.
        if (this.progress.delivered.length > 0 || Date.now() - this.lastRecord >= RECORD_EVERY_MS) held = await this.flush(false);
        if (outcome === "more" || this.hintedSequence > this.sequence) continue;
        // Caught up while others wait for room: the pair goes back at once (its next hint queues it again).
        if (Date.now() - idleSince >= IDLE_MS || this.dispatcher.roomWanted) break;
        // Caught up: the place is recorded now, so that whoever reads the cursor next (a deletion turning
        // the log into rows, another instance after this one) sends little twice.
        if (this.progress.sequence !== this.sequence || this.progress.succeeded) {
          held = await this.flush(false);
          if (!held) break;
          // A hint that came while recording is not waited for.
          if (this.hintedSequence > this.sequence) continue;
        }
        // Nothing left that this instance knows of: wait for a hint, or look again after a poll interval
        // (other instances write into this conversation too).
        await this.pause(this.dispatcher.config.pollMs);
      }
    } finally {
      if (held) await this.flush(true).catch((error) => log.warn("webhook progress not recorded", { endpointId: this.endpointId, ...describeError(error) }));
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = undefined;
        done();
      };
    });
  }

  /** Records progress (and extends or gives back the lease); answers whether the lease still holds. */
  private async flush(release: boolean): Promise<boolean> {
    const progress = this.progress;
    progress.sequence = this.sequence;
    progress.release = release;
    this.progress = this.freshProgress();
    this.lastRecord = Date.now();
    await this.dispatcher.record(progress);
    return progress.held !== false;
  }

  /**
   * Delivers what was read, in order: the rows and the messages merged by `after_sequence`. Answers
   * "more" when it may not have read everything, "delivered" when it delivered something and read it
   * all, "idle" when there was nothing, "stop" when the pair must wait (a retry, a disabled endpoint),
   * "lost" when the lease was.
   */
  private async deliver(read: PairRead, endpoint: Endpoint): Promise<"more" | "delivered" | "idle" | "stop" | "lost"> {
    const { rows, messages } = read;
    const logComplete = messages.length < READ_AHEAD;
    let r = 0;
    let m = 0;
    let delivered = false;
    for (;;) {
      if (this.stopped || this.dispatcher.isStopped) return "stop";
      // The endpoint changed (a new url or secret, disabled, deleted) since this read: read it again first.
      if (this.dispatcher.endpoint(this.endpointId) !== endpoint) return "more";
      // Attempts may take up to the timeout each: the lease is extended between them, and a lost one stops the pair.
      if (delivered && Date.now() - this.lastRecord >= RECORD_EVERY_MS && !(await this.flush(false))) return "lost";
      let item: Item | undefined;
      const row = rows[r];
      const message = messages[m];
      if (message && (!row || Number(message.sequence) <= Number(row.after_sequence))) item = { kind: "log", message };
      else if (row && (message || logComplete)) item = { kind: "row", row };
      if (!item) break;
      if (item.kind === "row") {
        if (!item.row.due) return "stop";
        const result = await this.deliverRow(endpoint, item.row);
        if (result !== "delivered") return result;
        r++;
      } else {
        const result = await this.deliverMessage(endpoint, item.message);
        if (result !== "delivered") return result;
        m++;
      }
      delivered = true;
    }
    // Everything the read saw is done: the cursor may pass messages the endpoint does not hear.
    if (logComplete && r === rows.length && read.logEnd > this.sequence) this.sequence = read.logEnd;
    if (!logComplete || rows.length === READ_AHEAD) return "more";
    return delivered ? "delivered" : "idle";
  }

  private async deliverRow(endpoint: Endpoint, row: PendingRow): Promise<"delivered" | "stop" | "lost"> {
    const attempts = row.attempts + 1;
    let outcome: AttemptOutcome;
    if (row.payload !== null && row.payload !== undefined) {
      const data = typeof row.payload === "string" ? JSON.parse(row.payload) : row.payload;
      outcome = await this.dispatcher.attempt(endpoint, row.id, row.event_type, row.occurred_at, data);
    } else if (row.logged) {
      outcome = await this.dispatcher.attempt(endpoint, row.id, row.event_type, row.occurred_at, logEventData(row.logged, row.event_type));
    } else {
      outcome = { kind: "failed", error: "the message no longer exists" };
    }
    if (outcome.kind === "delivered") {
      this.progress.delivered.push({ id: row.id, status: outcome.status, attempts });
      this.progress.succeeded = true;
      return "delivered";
    }
    // What went before is recorded first, so that the failure lands after it.
    if (!(await this.flush(false))) return "lost";
    const { held, retry } = await this.dispatcher.rowFailed(this, row, attempts, outcome);
    if (!held) return "lost";
    const after = await this.dispatcher.endpointAfterFailure(this.endpointId, outcome, row.payload !== null || row.logged !== undefined);
    return retry || after === "disabled" ? "stop" : "delivered";
  }

  private async deliverMessage(endpoint: Endpoint, message: LoggedMessage): Promise<"delivered" | "stop" | "lost"> {
    const types = message.types ?? [];
    for (const [index, type] of types.entries()) {
      const deliveryId = logDeliveryId(this.endpointId, logEventKey(message, type));
      const outcome = await this.dispatcher.attempt(endpoint, deliveryId, type, message.created_at, logEventData(message, type));
      if (outcome.kind === "delivered") {
        this.progress.succeeded = true;
        continue;
      }
      if (!(await this.flush(false))) return "lost";
      const { held, retry } = await this.dispatcher.logEventFailed(this, message, types, index, outcome);
      if (!held) return "lost";
      this.sequence = Math.max(this.sequence, Number(message.sequence));
      const after = await this.dispatcher.endpointAfterFailure(this.endpointId, outcome, true);
      // The rest of this message's events are rows now, behind the failed one.
      return retry || after === "disabled" || index < types.length - 1 ? "stop" : "delivered";
    }
    this.sequence = Math.max(this.sequence, Number(message.sequence));
    return "delivered";
  }
}
