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
 * The instance that created a stream holds it until it ends. The others reach it through their peers
 * (./stream-peers.ts): appends and finishes that reach them are forwarded to the holder, and an instance
 * where a client joins or reads a stream it does not hold keeps a mirror of it (the holder's content so
 * far, then every relayed delta), so that what it sends meets the live deltas exactly.
 *
 * A row still `streaming` that nobody holds (the holder was killed) is marked `interrupted`: at start on
 * the embedded database (one process per data directory); on PostgreSQL as soon as the other instances
 * notice that its holder (`stream_holder`) is gone, and by a periodic sweep of rows whose holder is not
 * among the live instances or that were not written for longer than the idle timeout.
 */
import type { Principal } from "../auth/principal";
import type { Config } from "../config";
import { AppError, fail, notFound } from "../core/errors";
import type { EventBus } from "../core/event-bus";
import { sql, type SQL } from "drizzle-orm";
import { rows, type Database, type Tx } from "../db/client";
import type { MessageRow } from "../db/schema";
import { writeAndAnnounce, type AnnouncingWriter } from "./announced-write";
import type { DomainEvent } from "./domain-events";
import { checkContent, isStorableText } from "./limits";
import { toMessage, type MessageResource, type RunResource } from "./resources";
import { isEnded } from "./run-rules";
import { describeError, log } from "../log";
import { NO_STREAM_PEERS, type RunStateChange, type StreamAnswer, type StreamHolder, type StreamPeers, type StreamRequest } from "./stream-peers";

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
  /** When a refused append last read the run's state. */
  runReadAt?: number;
  /**
   * Run changes heard (this instance's, or signalled): a run state read from the database before one of
   * them is older than what the stream already knows, and is not applied.
   */
  runChanges: number;
  /** Set once the stream is ending: appends are refused from then on, while the final write runs. */
  ending?: StreamState;
}

/** Where a stream was created from: a WebSocket connection counts against its limit. */
export interface StreamOrigin {
  connectionId?: string;
}

/** How often the periodic sweep of unheld rows runs on PostgreSQL, at most. */
const SWEEP_EVERY_MS = 30_000;
/** A mirror without a delta for this long is dropped (a later join asks for the content again). */
const MIRROR_IDLE_MS = 60_000;
/** How long a stream that ended here is remembered, so that its holder keeps answering for it. */
const ENDED_MEMORY_MS = 60_000;
/** After nobody answered for a stream, joins and reads do not ask again for this long. */
const UNANSWERED_MS = 5_000;

/** Another instance's stream, as this one has delivered it so far. */
interface MirroredStream {
  conversationId: string;
  content: string;
  lastDeltaAt: number;
}

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

export class MessageStreams implements StreamHolder {
  private readonly open = new Map<string, OpenStream>();
  private readonly mirrors = new Map<string, MirroredStream>();
  /** Streams that ended here lately, and when: appends to them are answered here (refused), not forwarded. */
  private readonly endedHere = new Map<string, number>();
  /** Streams no instance answered for, until when not to ask again. */
  private readonly unanswered = new Map<string, number>();
  private peers: StreamPeers = NO_STREAM_PEERS;
  private timer?: ReturnType<typeof setInterval>;
  private flushing?: Promise<void>;
  private lastSweepAt = Date.now();
  private sweptWithPeers = false;
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

  /** The other instances (the realtime layer connects them once a broker exists). */
  usePeers(peers: StreamPeers): void {
    this.peers = peers;
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

  /** A streaming message was just stored: hold it here from now on, and say so in its row. */
  async opened(message: MessageResource, origin: StreamOrigin | undefined): Promise<void> {
    this.open.set(message.id, {
      message,
      content: message.content,
      bytes: Buffer.byteLength(message.content),
      dirty: false,
      lastAppendAt: Date.now(),
      connectionId: origin?.connectionId,
      paused: false,
      runChanges: 0,
    });
    this.startTimer();
    const holder = this.peers.holderId();
    if (!holder) return;
    try {
      await this.database.query("update messages set stream_holder = $2 where id = $1", [message.id, holder]);
    } catch (error) {
      // The stream works without it; only the early end after a crash falls back to the idle sweep.
      log.warn("stream holder not recorded", { messageId: message.id, ...describeError(error) });
    }
  }

  /**
   * Appends a delta, in the order appends arrive, and publishes it at once. Synchronous once the stream is
   * found: the content and the published deltas never disagree (joins rely on it). A stream held by
   * another instance gets the append forwarded.
   */
  async append(principal: Principal, messageId: string, delta: string, conversationId?: string): Promise<{ messageId: string; length: number }> {
    if (!this.isHeld(messageId)) {
      if (!isStorableText(delta)) throw fail.invalid_text("delta holds a NUL character or an unpaired surrogate");
      const value = await this.forward({ op: "append", messageId, conversationId, senderId: principal.id, delta });
      return value as { messageId: string; length: number };
    }
    return this.appendAs(principal.id, messageId, delta, conversationId);
  }

  private async appendAs(senderId: string, messageId: string, delta: string, conversationId?: string): Promise<{ messageId: string; length: number }> {
    let stream = this.streamFor(senderId, messageId, conversationId);
    if (!stream) throw await this.whyNotOpen(senderId, messageId, conversationId);
    if (stream.paused) {
      // A resume anywhere reaches this instance at once (./stream-peers.ts); the run is still read, at most
      // once a flush interval, in case that signal was lost.
      const now = Date.now();
      if (now - (stream.runReadAt ?? 0) >= this.config.streamFlushMs) {
        stream.runReadAt = now;
        await this.refreshRunState(stream);
      }
      stream = this.streamFor(senderId, messageId, conversationId);
      if (!stream) throw await this.whyNotOpen(senderId, messageId, conversationId);
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
    if (!this.isHeld(messageId)) {
      await this.forward({ op: "finish", messageId, conversationId, senderId: principal.id, content });
      // The holder wrote it: read it back for the answer.
      const [row] = await this.database.query<MessageRow>("select * from messages where id = $1", [messageId]);
      if (!row) throw notFound("Message");
      const message = toMessage(row);
      return { message, json: JSON.stringify(message) };
    }
    return this.finishAs(principal.id, messageId, content, conversationId);
  }

  private async finishAs(senderId: string, messageId: string, content: string | undefined, conversationId?: string): Promise<{ message: MessageResource; json: string }> {
    const stream = this.streamFor(senderId, messageId, conversationId);
    if (!stream) throw await this.whyNotOpen(senderId, messageId, conversationId);
    if (content !== undefined) checkContent(this.config, content, stream.message.content_type);
    const ended = await this.end(stream, "complete", content);
    if (!ended) throw await this.whyNotOpen(senderId, messageId, conversationId);
    return ended;
  }

  /**
   * An append or finish for a stream not held here goes to its holder. When no instance answers, the
   * stream is held nowhere (or its holder is unreachable): the row says why.
   */
  private async forward(request: Extract<StreamRequest, { op: "append" | "finish" }>): Promise<unknown> {
    const answer = await this.peers.ask(request);
    if (!answer) throw await this.whyNotOpen(request.senderId, request.messageId, request.conversationId, true);
    if (!answer.ok) throw new AppError(answer.error.code, answer.error.message).with(answer.error.details ?? {});
    return answer.value;
  }

  /** A request forwarded by another instance, for a stream held here. */
  answer(request: Extract<StreamRequest, { op: "append" | "finish" }>): Promise<StreamAnswer> | undefined {
    if (!this.isHeld(request.messageId)) return undefined;
    const applied =
      request.op === "append"
        ? this.appendAs(request.senderId, request.messageId, request.delta, request.conversationId)
        : this.finishAs(request.senderId, request.messageId, request.content, request.conversationId).then(({ message }) => ({ id: message.id }));
    return applied.then(
      (value): StreamAnswer => ({ ok: true, value }),
      (error): StreamAnswer => {
        if (error instanceof AppError) return { ok: false, error: { code: error.code, message: error.message, details: error.details } };
        log.error("forwarded stream request failed", { messageId: request.messageId, ...describeError(error) });
        return { ok: false, error: { code: "internal_error", message: "The stream request failed" } };
      },
    );
  }

  /** Held here, or ended here lately (this instance still answers for it). */
  private isHeld(messageId: string): boolean {
    return this.open.has(messageId) || this.endedHere.has(messageId);
  }

  heldContent(messageId: string): string | undefined {
    const stream = this.open.get(messageId);
    return stream && !stream.ending ? stream.content : undefined;
  }

  /**
   * Makes sure the content so far of a stream held elsewhere is here (a mirror), before a join or a read
   * uses it. Without an answer (the holder is gone) the stored content stands in.
   */
  async follow(messageId: string, conversationId: string): Promise<void> {
    if (this.open.has(messageId) || this.mirrors.has(messageId)) return;
    if ((this.unanswered.get(messageId) ?? 0) > Date.now()) return;
    const seeded = await this.peers.snapshot({ op: "snapshot", messageId, conversationId });
    if (!seeded) this.unanswered.set(messageId, Date.now() + UNANSWERED_MS);
  }

  mirrorSeeded(messageId: string, conversationId: string, content: string): void {
    this.unanswered.delete(messageId);
    this.mirrors.set(messageId, { conversationId, content, lastDeltaAt: Date.now() });
    this.startTimer();
  }

  deltaDelivered(messageId: string, offset: number, frame: string): void {
    const mirror = this.mirrors.get(messageId);
    if (!mirror) return;
    const { data } = JSON.parse(frame) as { data: { delta: string } };
    const have = mirror.content.length;
    mirror.lastDeltaAt = Date.now();
    if (offset > have) {
      // A delta went missing on the way here: this copy is no longer the stream's.
      this.mirrors.delete(messageId);
    } else if (offset + data.delta.length > have) {
      mirror.content += data.delta.slice(have - offset);
    }
  }

  forgetMirrors(): void {
    this.mirrors.clear();
  }

  holderGone(instanceId: string): void {
    this.interruptWhere(sql`stream_holder = ${instanceId}`).catch((error) =>
      log.warn("streams of a gone instance not ended", { instanceId, ...describeError(error) }),
    );
  }

  remoteRunChanged(run: RunStateChange): void {
    for (const stream of this.open.values()) {
      if (stream.message.run_id !== run.id || stream.message.conversation_id !== run.conversation_id) continue;
      stream.runChanges++;
      this.applyRunState(stream, run.state);
    }
  }

  /** The content so far of a stream (held here or mirrored), merged over a row read from the database. */
  merge(message: MessageResource): MessageResource {
    if (message.stream_state !== "streaming") return message;
    const content = this.contentOf(message.id);
    return content === undefined ? message : { ...message, content };
  }

  /** Like `merge`, first asking the holder for the content of streams held elsewhere. */
  async mergeFollowing(messages: MessageResource[]): Promise<MessageResource[]> {
    const elsewhere = messages.filter((m) => m.stream_state === "streaming" && this.contentOf(m.id) === undefined);
    if (elsewhere.length > 0) await Promise.all(elsewhere.map((m) => this.follow(m.id, m.conversation_id)));
    return messages.map((message) => this.merge(message));
  }

  /** Content so far of a stream held or mirrored here (realtime joins read it synchronously). */
  contentOf(messageId: string): string | undefined {
    return this.open.get(messageId)?.content ?? this.mirrors.get(messageId)?.content;
  }

  /** Streams of a conversation held here, with their content so far. */
  *openIn(conversationId: string): Iterable<MessageResource> {
    for (const stream of this.open.values()) {
      if (stream.message.conversation_id === conversationId && !stream.ending) yield { ...stream.message, content: stream.content };
    }
  }

  /** A run changed state (after commit, on this instance): pause, resume, or end its streams, wherever held. */
  runChanged(run: RunResource): void {
    this.remoteRunChanged(run);
    this.peers.runChanged({ id: run.id, conversation_id: run.conversation_id, state: run.state });
  }

  private applyRunState(stream: OpenStream, state: RunResource["state"] | null): void {
    if (state === null || state === "active") stream.paused = false;
    else if (state === "paused" || state === "preempted") stream.paused = true;
    else if (isEnded(state)) void this.end(stream, endStateOf(state)).catch((error) => log.error("stream end failed", { messageId: stream.message.id, ...describeError(error) }));
  }

  private streamFor(senderId: string, messageId: string, conversationId?: string): OpenStream | undefined {
    const stream = this.open.get(messageId);
    if (!stream || (conversationId && stream.message.conversation_id !== conversationId)) return undefined;
    if (stream.message.sender_id !== senderId) throw fail.not_sender("Only the sender appends to a streaming message");
    if (stream.ending) {
      // Its end is being written: refused as the ended stream will be.
      const { ending } = stream;
      if (ending === "cancelled") throw fail.run_ended(`Run ${stream.message.run_id} has ended (cancelled)`).with({ stream_state: ending });
      throw fail.stream_closed(`The stream is ${ending}`).with({ stream_state: ending });
    }
    return stream;
  }

  /**
   * Off the hot path: the message is not an open stream here; say why. `asked`: no instance answered for
   * it either, so a row still `streaming` has no reachable holder.
   */
  private async whyNotOpen(senderId: string, messageId: string, conversationId?: string, asked = false): Promise<Error> {
    const [row] = await this.database.query<MessageRow & { run_state: string | null }>(
      `select m.*, (select r.state from runs r where r.conversation_id = m.conversation_id and r.id = m.run_id) as run_state
         from messages m where m.id = $1 and m.deleted_at is null`,
      [messageId],
    );
    if (!row || (conversationId && row.conversation_id !== conversationId)) return notFound("Message");
    if (row.sender_id !== senderId) return fail.not_sender("Only the sender appends to a streaming message");
    if (row.stream_state === null) return fail.not_streaming();
    if (row.stream_state === "streaming") {
      return asked
        ? fail.stream_unreachable().with({ stream_state: row.stream_state })
        : fail.conflict("The stream is ending; retry").with({ stream_state: row.stream_state });
    }
    if (row.run_state && isEnded(row.run_state as RunResource["state"])) return fail.run_ended(`Run ${row.run_id} has ended (${row.run_state})`).with({ stream_state: row.stream_state });
    return fail.stream_closed(`The stream is ${row.stream_state}`).with({ stream_state: row.stream_state });
  }

  private async refreshRunState(stream: OpenStream): Promise<void> {
    if (stream.message.run_id === null) return;
    const heard = stream.runChanges;
    const [run] = await this.database.query<{ state: RunResource["state"] }>(
      "select state from runs where conversation_id = $1 and id = $2",
      [stream.message.conversation_id, stream.message.run_id],
    );
    if (stream.runChanges === heard) this.applyRunState(stream, run?.state ?? null);
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
      this.endedHere.set(id, Date.now());
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
        this.pruneMirrors();
        await this.endIdle();
        await this.flush();
        const firstWithPeers = !this.sweptWithPeers && this.peers.liveInstances() !== undefined;
        if (this.database.kind === "postgres" && (firstWithPeers || Date.now() - this.lastSweepAt > Math.min(SWEEP_EVERY_MS, this.config.streamIdleMs))) {
          // The first sweep that knows the live instances ends the streams of instances that died before this one started.
          if (firstWithPeers) this.sweptWithPeers = true;
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

  private pruneMirrors(now = Date.now()): void {
    for (const [id, mirror] of this.mirrors) if (now - mirror.lastDeltaAt > MIRROR_IDLE_MS) this.mirrors.delete(id);
    for (const [id, until] of this.unanswered) if (until < now) this.unanswered.delete(id);
    for (const [id, at] of this.endedHere) if (now - at > ENDED_MEMORY_MS) this.endedHere.delete(id);
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
    const heard = dirty.map((s) => s.runChanges);
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
    for (const [i, stream] of dirty.entries()) {
      if (!seen.has(stream.message.id)) {
        // No longer streaming in the database (swept, or ended by another instance): stop holding it.
        if (!stream.ending) this.open.delete(stream.message.id);
        continue;
      }
      // A pause or resume heard while the statement ran is newer than the state it read.
      if (!stream.ending && stream.runChanges === heard[i]) this.applyRunState(stream, seen.get(stream.message.id) ?? null);
    }
  }

  /**
   * Marks `interrupted` the streaming rows nobody holds. On the embedded database at start every such row
   * qualifies (only one process opens a data directory). On PostgreSQL: rows whose holder is not among
   * the live instances (once those are known; a row younger than 3 s is left alone, as its holder may
   * have started too recently to be heard: it says so within a heartbeat), and rows not written for
   * longer than the idle timeout (a holder writes at least every flush interval while content arrives;
   * rows from before holders were recorded have none).
   */
  async sweepUnheld(ownsDatabase = false): Promise<number> {
    this.lastSweepAt = Date.now();
    const everything = ownsDatabase && this.database.kind === "pglite";
    const live = this.database.kind === "postgres" ? this.peers.liveInstances() : undefined;
    const held = JSON.stringify([...this.open.keys()]);
    const holderKnown = live !== undefined;
    const liveJson = JSON.stringify(live ?? []);
    return this.interruptWhere(
      sql`(${everything}::boolean
           or coalesce(updated_at, created_at) < now() - make_interval(secs => ${this.config.streamIdleMs}::double precision / 1000)
           or (${holderKnown}::boolean and stream_holder is not null
               and stream_holder not in (select jsonb_array_elements_text(${liveJson}::jsonb))
               and created_at < now() - interval '3 seconds'))
          and not (id = any(select jsonb_array_elements_text(${held}::jsonb)::uuid))`,
    );
  }

  /** Ends as interrupted the streaming rows that match, announcing each (durably: ./announced-write.ts). */
  private async interruptWhere(condition: SQL): Promise<number> {
    const swept = await writeAndAnnounce(this.writer, async (tx, announce) => {
      const found = await rows<MessageRow>(
        tx,
        sql`update messages set stream_state = 'interrupted', updated_at = now()
             where stream_state = 'streaming' and ${condition}
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
