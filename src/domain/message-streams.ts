/**
 * Streaming messages (docs/streaming.md): the open streams of this instance, their content in memory, and
 * the batched writes that make it durable.
 *
 * A streaming message is stored at creation like any message (its sequence included), with
 * `stream_state = 'streaming'`. Its appends then touch memory only: the content grows here, each delta
 * goes out at once as a `message.delta` domain event (one frame), and every flush interval one statement
 * writes the content of every stream that changed. The same statement reports each stream's run state,
 * so a pause or cancel made on another instance reaches the stream within one interval; on this instance
 * the run listener (src/listeners.ts) applies it at once.
 *
 * The instance that created a stream holds it until it ends. A row still `streaming` that nobody holds
 * (the holder was killed) is marked `interrupted` by the sweep: at start on the embedded database (one
 * process per data directory), and on PostgreSQL for rows not written for longer than the idle timeout.
 */
import type { Principal } from "../auth/principal";
import type { Config } from "../config";
import { fail, notFound } from "../core/errors";
import type { EventBus } from "../core/event-bus";
import { sql } from "drizzle-orm";
import { rows, type Database, type Tx } from "../db/client";
import type { MessageRow } from "../db/schema";
import { writeAndAnnounce, type AnnouncingWriter } from "./announced-write";
import type { DomainEvent } from "./domain-events";
import { checkContent, isStorableText } from "./limits";
import { toMessage, type MessageResource, type RunResource } from "./resources";
import { isEnded } from "./run-rules";
import { describeError, log } from "../log";

export type StreamState = NonNullable<MessageRow["stream_state"]>;

interface OpenStream {
  /** The message as created; its content is `content` below. */
  message: MessageResource;
  content: string;
  /** UTF-8 size of `content`, kept as it grows (the limit is in bytes). */
  bytes: number;
  /** Changed since the last flush. */
  dirty: boolean;
  lastAppendAt: number;
  /** The WebSocket connection that created it, for the per-connection limit. */
  connectionId?: string;
  /** The run is paused or preempted: appends are refused until it resumes. */
  paused: boolean;
  /** Set once the stream is ending: appends are refused from then on, while the final write runs. */
  ending?: StreamState;
}

/** Where a stream was created from: a WebSocket connection counts against its limit. */
export interface StreamOrigin {
  connectionId?: string;
}

/** How often the periodic sweep of unheld rows runs on PostgreSQL, at most. */
const SWEEP_EVERY_MS = 30_000;

const FLUSH_STATEMENT = `
update messages m
   set content = v.content, updated_at = now()
  from jsonb_to_recordset($1::jsonb) as v(id uuid, content text)
 where m.id = v.id and m.stream_state = 'streaming'
returning m.id, (select r.state from runs r where r.conversation_id = m.conversation_id and r.id = m.run_id) as run_state`;

/** A stream's end; in a transaction with what its `message.updated` makes durable (./announced-write.ts). */
const endStatement = (id: string, content: string, state: StreamState) => sql`
update messages set content = ${content}, stream_state = ${state}, updated_at = now()
 where id = ${id} and stream_state = 'streaming'
returning *`;

export class MessageStreams {
  private readonly open = new Map<string, OpenStream>();
  private timer?: ReturnType<typeof setInterval>;
  private flushing?: Promise<void>;
  private lastSweepAt = Date.now();
  /** Statements that wrote streamed content (flushes and ends), for the benchmark. */
  writes = 0;

  /** Ends and sweeps are written with their `message.updated` (./announced-write.ts). */
  private readonly writer: AnnouncingWriter;

  constructor(
    private readonly config: Config,
    private readonly database: Database,
    private readonly events: EventBus<DomainEvent, Tx>,
  ) {
    this.writer = { database, domainEvents: events };
  }

  get openCount(): number {
    return this.open.size;
  }

  /** Refuses a new stream when the connection already holds the most it may. */
  checkRoom(origin: StreamOrigin | undefined): void {
    if (!origin?.connectionId) return;
    let held = 0;
    for (const stream of this.open.values()) if (stream.connectionId === origin.connectionId && !stream.ending) held++;
    if (held >= this.config.streamMaxPerConnection) {
      throw fail.too_many_streams(`A connection holds at most ${this.config.streamMaxPerConnection} open streams`);
    }
  }

  /** A streaming message was just stored: hold it here from now on. */
  opened(message: MessageResource, origin: StreamOrigin | undefined): void {
    this.open.set(message.id, {
      message,
      content: message.content,
      bytes: Buffer.byteLength(message.content),
      dirty: false,
      lastAppendAt: Date.now(),
      connectionId: origin?.connectionId,
      paused: false,
    });
    this.startTimer();
  }

  /**
   * Appends a delta, in the order appends arrive, and publishes it at once. Synchronous once the stream is
   * found: the content and the published deltas never disagree (joins rely on it).
   */
  async append(principal: Principal, messageId: string, delta: string, conversationId?: string): Promise<{ messageId: string; length: number }> {
    let stream = this.streamFor(principal, messageId, conversationId);
    if (!stream) throw await this.whyNotOpen(principal, messageId, conversationId);
    if (stream.paused) {
      // Paused here; the run may have resumed on another instance meanwhile (rare: look it up).
      await this.refreshRunState(stream);
      stream = this.streamFor(principal, messageId, conversationId);
      if (!stream) throw await this.whyNotOpen(principal, messageId, conversationId);
      if (stream.paused) throw fail.run_paused(`Run ${stream.message.run_id} is paused; appends resume when it does`);
    }
    if (!isStorableText(delta)) throw fail.invalid_text("delta holds a NUL character or an unpaired surrogate");
    const bytes = stream.bytes + Buffer.byteLength(delta);
    if (bytes > this.config.maxMessageBytes) throw fail.too_large(`content would exceed ${this.config.maxMessageBytes} bytes`);
    const offset = stream.content.length;
    stream.lastAppendAt = Date.now();
    if (delta.length === 0) return { messageId, length: offset };
    stream.content += delta;
    stream.bytes = bytes;
    stream.dirty = true;
    const { message } = stream;
    const json = JSON.stringify({
      conversationId: message.conversation_id,
      messageId,
      ...(message.run_id !== null && { runId: message.run_id }),
      offset,
      delta,
    });
    this.events.emit({ type: "message.delta", conversationId: message.conversation_id, messageId, offset, length: delta.length, json });
    return { messageId, length: stream.content.length };
  }

  /** Ends the stream as complete; `content`, when given, replaces what was appended. */
  async finish(principal: Principal, messageId: string, content: string | undefined, conversationId?: string): Promise<{ message: MessageResource; json: string }> {
    const stream = this.streamFor(principal, messageId, conversationId);
    if (!stream) throw await this.whyNotOpen(principal, messageId, conversationId);
    if (content !== undefined) checkContent(this.config, content, stream.message.content_type);
    const ended = await this.end(stream, "complete", content);
    if (!ended) throw await this.whyNotOpen(principal, messageId, conversationId);
    return ended;
  }

  /** The content so far of a stream held here, merged over a row read from the database. */
  merge(message: MessageResource): MessageResource {
    const stream = message.stream_state === "streaming" ? this.open.get(message.id) : undefined;
    return stream ? { ...message, content: stream.content } : message;
  }

  /** Content so far of a stream held here (realtime joins read it synchronously). */
  contentOf(messageId: string): string | undefined {
    return this.open.get(messageId)?.content;
  }

  /** Streams of a conversation held here, with their content so far. */
  *openIn(conversationId: string): Iterable<MessageResource> {
    for (const stream of this.open.values()) {
      if (stream.message.conversation_id === conversationId && !stream.ending) yield { ...stream.message, content: stream.content };
    }
  }

  /** A run changed state (after commit, on this instance): pause, resume, or end its streams. */
  runChanged(run: RunResource): void {
    for (const stream of this.open.values()) {
      if (stream.message.run_id !== run.id || stream.message.conversation_id !== run.conversation_id) continue;
      this.applyRunState(stream, run.state);
    }
  }

  private applyRunState(stream: OpenStream, state: RunResource["state"] | null): void {
    if (state === null || state === "active") stream.paused = false;
    else if (state === "paused" || state === "preempted") stream.paused = true;
    else if (isEnded(state)) void this.end(stream, endStateOf(state)).catch((error) => log.error("stream end failed", { messageId: stream.message.id, ...describeError(error) }));
  }

  private streamFor(principal: Principal, messageId: string, conversationId?: string): OpenStream | undefined {
    const stream = this.open.get(messageId);
    if (!stream || (conversationId && stream.message.conversation_id !== conversationId)) return undefined;
    if (stream.message.sender_id !== principal.id) throw fail.not_sender("Only the sender appends to a streaming message");
    if (stream.ending) return undefined;
    return stream;
  }

  /** Off the hot path: the message is not an open stream here; say why. */
  private async whyNotOpen(principal: Principal, messageId: string, conversationId?: string): Promise<Error> {
    const [row] = await this.database.query<MessageRow & { run_state: string | null }>(
      `select m.*, (select r.state from runs r where r.conversation_id = m.conversation_id and r.id = m.run_id) as run_state
         from messages m where m.id = $1 and m.deleted_at is null`,
      [messageId],
    );
    if (!row || (conversationId && row.conversation_id !== conversationId)) return notFound("Message");
    if (row.sender_id !== principal.id) return fail.not_sender("Only the sender appends to a streaming message");
    if (row.stream_state === null) return fail.not_streaming();
    if (row.stream_state === "streaming") {
      return fail.conflict("The stream is held by another instance; append over the connection that holds it").with({ stream_state: row.stream_state });
    }
    if (row.run_state && isEnded(row.run_state as RunResource["state"])) return fail.run_ended(`Run ${row.run_id} has ended (${row.run_state})`).with({ stream_state: row.stream_state });
    return fail.stream_closed(`The stream is ${row.stream_state}`).with({ stream_state: row.stream_state });
  }

  private async refreshRunState(stream: OpenStream): Promise<void> {
    if (stream.message.run_id === null) return;
    const [run] = await this.database.query<{ state: RunResource["state"] }>(
      "select state from runs where conversation_id = $1 and id = $2",
      [stream.message.conversation_id, stream.message.run_id],
    );
    this.applyRunState(stream, run?.state ?? null);
  }

  /**
   * Writes the final content and state, then announces the message. Appends are refused from the moment
   * this is called; undefined when the row was no longer streaming (ended elsewhere).
   */
  private async end(stream: OpenStream, state: StreamState, content?: string): Promise<{ message: MessageResource; json: string } | undefined> {
    if (stream.ending) return undefined;
    stream.ending = state;
    const id = stream.message.id;
    try {
      this.writes++;
      const ended = await writeAndAnnounce(this.writer, async (tx, announce) => {
        const [row] = await rows<MessageRow>(tx, endStatement(id, content ?? stream.content, state));
        if (!row) return undefined;
        const message = toMessage(row);
        const json = JSON.stringify(message);
        announce({ type: "message.updated", conversationId: message.conversation_id, message, json });
        return { message, json };
      });
      this.open.delete(id);
      return ended;
    } catch (error) {
      // Not written: the stream stays open (its content is still here) and the next end or flush retries.
      stream.ending = undefined;
      throw error;
    }
  }

  private startTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.config.streamFlushMs);
    this.timer.unref?.();
  }

  private async tick(): Promise<void> {
    if (this.flushing) return;
    this.flushing = (async () => {
      try {
        await this.endIdle();
        await this.flush();
        if (this.database.kind === "postgres" && Date.now() - this.lastSweepAt > Math.min(SWEEP_EVERY_MS, this.config.streamIdleMs)) {
          await this.sweepUnheld();
        }
      } catch (error) {
        log.warn("stream flush failed", describeError(error));
      } finally {
        this.flushing = undefined;
        if (this.open.size === 0 && this.timer && this.database.kind !== "postgres") {
          clearInterval(this.timer);
          this.timer = undefined;
        }
      }
    })();
    await this.flushing;
  }

  /** Streams without an append for the idle timeout end as interrupted. */
  private async endIdle(): Promise<void> {
    const cutoff = Date.now() - this.config.streamIdleMs;
    for (const stream of [...this.open.values()]) {
      if (!stream.ending && stream.lastAppendAt < cutoff) await this.end(stream, "interrupted");
    }
  }

  /** One statement writes every stream that changed since the last flush. */
  async flush(): Promise<void> {
    const dirty = [...this.open.values()].filter((s) => s.dirty && !s.ending);
    if (dirty.length === 0) return;
    const batch = dirty.map((s) => {
      s.dirty = false;
      return { id: s.message.id, content: s.content };
    });
    let written: { id: string; run_state: RunResource["state"] | null }[];
    try {
      this.writes++;
      written = await this.database.query(FLUSH_STATEMENT, [JSON.stringify(batch)]);
    } catch (error) {
      for (const s of dirty) s.dirty = true;
      throw error;
    }
    const seen = new Map(written.map((w) => [w.id, w.run_state]));
    for (const stream of dirty) {
      if (!seen.has(stream.message.id)) {
        // No longer streaming in the database (swept, or ended by another instance): stop holding it.
        if (!stream.ending) this.open.delete(stream.message.id);
        continue;
      }
      if (!stream.ending) this.applyRunState(stream, seen.get(stream.message.id) ?? null);
    }
  }

  /**
   * Marks `interrupted` the streaming rows nobody holds. On the embedded database at start every such row
   * qualifies (only one process opens a data directory); on PostgreSQL, rows not written for longer than
   * the idle timeout (a holder writes at least every flush interval while content arrives).
   */
  async sweepUnheld(ownsDatabase = false): Promise<number> {
    this.lastSweepAt = Date.now();
    const everything = ownsDatabase && this.database.kind === "pglite";
    const held = JSON.stringify([...this.open.keys()]);
    const swept = await writeAndAnnounce(this.writer, async (tx, announce) => {
      const found = await rows<MessageRow>(
        tx,
        sql`update messages set stream_state = 'interrupted', updated_at = now()
             where stream_state = 'streaming'
               and (${everything}::boolean or coalesce(updated_at, created_at) < now() - make_interval(secs => ${this.config.streamIdleMs}::double precision / 1000))
               and not (id = any(select jsonb_array_elements_text(${held}::jsonb)::uuid))
            returning *`,
      );
      for (const row of found) {
        const message = toMessage(row);
        announce({ type: "message.updated", conversationId: message.conversation_id, message, json: JSON.stringify(message) });
      }
      return found.length;
    });
    if (swept > 0) log.info("streams interrupted", { count: swept });
    return swept;
  }

  /** At shutdown: every held stream is written and ends as interrupted (its holder is going away). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flushing;
    for (const stream of [...this.open.values()]) {
      await this.end(stream, "interrupted").catch((error) => log.warn("stream end failed", { messageId: stream.message.id, ...describeError(error) }));
    }
  }

  /** Postgres instances sweep periodically even with no stream of their own. */
  startSweeping(): void {
    if (this.database.kind === "postgres") this.startTimer();
  }
}

/** A run that ended takes its open streams with it. */
function endStateOf(runState: RunResource["state"]): StreamState {
  if (runState === "cancelled") return "cancelled";
  if (runState === "completed") return "complete";
  return "interrupted";
}
