/**
 * The WebSocket side of the SDK: requests answered by acks (as promises), server events (as callbacks),
 * automatic reconnection with exponential backoff and jitter, and resumption of every joined conversation
 * from the last sequence seen, so that an application sees each message once across reconnects.
 *
 * Works with Bun's WebSocket and `ws` (credentials in headers) and browsers' (credentials in the query
 * string, since browsers cannot set headers on a socket). Frames the server refuses with `rate_limited` are
 * sent again after the delay it advertises, paced so that the retries do not count as flooding.
 */
import { RealtimeError } from "./errors.js";
import { ackRetryDelayMs, fallbackDelayMs, FramePacer, retryOptions, type RetryOptions } from "./rate-limit.js";
import { SequenceTracker } from "./sequence-tracker.js";
import { StreamTexts, type StreamText } from "./stream-texts.js";
import { defaultWebSocket, type CredentialTransport, type WebSocketConstructor, type WebSocketLike } from "./transport.js";
import type {
  ClientEvents,
  EditMessageInput,
  JoinResult,
  Message,
  MessageDelta,
  PresenceStatus,
  SendControlInput,
  SendMessageInput,
  ServerEvents,
  SessionReady,
} from "./types.js";

export interface ReconnectOptions {
  /** Default true. */
  enabled?: boolean;
  /** First delay, doubled on each failed attempt up to `maxDelayMs`; each delay is jittered to 50–100 %. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Give up after this many consecutive failed attempts (default: never). */
  maxAttempts?: number;
}

export interface RealtimeOptions {
  /** ws:// or wss:// URL of /api/ws. */
  url: string;
  /** Read on every (re)connect, so a refreshed token is picked up. */
  credentials: () => { token?: string; apiKey?: string; headers: Record<string, string> };
  /**
   * How credentials travel: headers or query parameters. Default: headers under Bun and on Node (with
   * `ws`), query parameters elsewhere and with a `WebSocket` passed here.
   */
  auth?: CredentialTransport;
  /** How long a request waits for its ack (default 10 s). */
  ackTimeoutMs?: number;
  reconnect?: ReconnectOptions;
  /**
   * Join every conversation this principal is added to (`conversation:added`) as soon as it is told,
   * from its start, and keep it joined like any other; after a reconnect, also those it was added to
   * while away (the server tells of them, see `addedSince` in docs/protocol.md). Default false.
   */
  autoJoin?: boolean;
  /** Sending again after `rate_limited` (default: up to 5 times, waiting up to 10 s); false to surface it. */
  retry?: RetryOptions | false;
  /** A WebSocket implementation other than the default (the global one; `ws` on Node). */
  WebSocket?: WebSocketConstructor;
}

/** Events about the connection itself, next to the server's events. */
export interface ConnectionEvents {
  /** A session started (first connect and every reconnect). */
  open: SessionReady;
  close: { code: number; reason: string; reconnecting: boolean };
  reconnecting: { attempt: number; delayMs: number };
  /** A joined conversation was resumed after a reconnect. */
  resumed: JoinResult;
  /** A joined conversation could not be resumed (e.g. no longer a participant); it is dropped. */
  resumeFailed: { conversationId: string; code: string; message: string };
  /** A streaming message's text grew (a delta) or was set (a snapshot, its end): the whole text so far. */
  "stream:text": StreamText;
  /** With `autoJoin`: a conversation this principal was added to has been joined. */
  autoJoined: JoinResult;
  /** With `autoJoin`: joining a conversation this principal was added to failed. */
  autoJoinFailed: { conversationId: string; code: string; message: string };
}

export type RealtimeEvents = ServerEvents & ConnectionEvents;
type Listener<K extends keyof RealtimeEvents> = (data: RealtimeEvents[K]) => void;

interface PendingRequest {
  event: string;
  resolve: (value: any) => void;
  reject: (error: RealtimeError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Close codes after which reconnecting with the same credential is pointless. */
const FINAL_CLOSE_CODES = new Set([4401]);
/** How far before the last frame heard a reconnect asks from: room for the clocks' estimate. */
const ADDED_SINCE_MARGIN_MS = 5_000;
const OPEN = 1;

export class RealtimeClient {
  private socket?: WebSocketLike;
  private sessionInfo?: SessionReady;
  private readonly pending = new Map<string, PendingRequest>();
  private readonly listeners = new Map<keyof RealtimeEvents, Set<Listener<any>>>();
  private readonly conversations = new Map<string, SequenceTracker>();
  private readonly readyWaiters = new Set<() => void>();
  private nextAck = 0;
  private connecting?: Promise<SessionReady>;
  private attempt = 0;
  private stopped = true;
  private reconnectTimer?: ReturnType<typeof setTimeout>;
  private watchdog?: ReturnType<typeof setInterval>;
  private lastFrameAt = 0;
  /** Server time minus local time, as the last session:ready told. */
  private serverClockOffsetMs = 0;
  /** Server time of the last frame a finished session heard (undefined before the first one ends). */
  private heardUntil?: number;
  private readonly pacer = new FramePacer();
  /** Counters, for monitoring and tests. */
  readonly stats = { reconnects: 0, duplicatesDropped: 0, rateLimitedRetries: 0 };
  private readonly streams = new StreamTexts();

  constructor(private readonly options: RealtimeOptions) {}

  get session(): SessionReady | undefined {
    return this.sessionInfo;
  }

  get connected(): boolean {
    return this.socket?.readyState === OPEN && this.sessionInfo !== undefined;
  }

  /**
   * Opens the connection; resolves once the server's `session:ready` arrives. Conversations joined before
   * a `close()` are resumed.
   */
  connect(): Promise<SessionReady> {
    if (this.connected) return Promise.resolve(this.sessionInfo!);
    if (this.connecting) return this.connecting;
    this.stopped = false;
    this.connecting = this.openSocket()
      .then((session) => {
        if (this.conversations.size > 0) void this.resume();
        return session;
      })
      .finally(() => {
        this.connecting = undefined;
      });
    return this.connecting;
  }

  /** Closes for good: no reconnection, pending requests fail with `closed`. */
  close(code = 1000, reason = "client closed"): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.stopWatchdog();
    const socket = this.socket;
    this.socket = undefined;
    this.sessionInfo = undefined;
    this.failPending("closed", "The client was closed");
    socket?.close(code, reason);
  }

  /** Drops the current connection and reconnects now, resuming every joined conversation. */
  reconnect(): void {
    if (this.stopped) return;
    this.socket?.close(4000, "client reconnecting");
  }

  on<K extends keyof RealtimeEvents>(event: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * Sends a client event and resolves with its ack result. A `rate_limited` refusal is retried after the
   * advertised delay (see `retry`); other failures reject with the server's code.
   */
  async request<E extends keyof ClientEvents>(
    event: E,
    data: ClientEvents[E]["data"],
    options: { timeoutMs?: number } = {},
  ): Promise<ClientEvents[E]["result"]> {
    const { attempts, maxDelayMs } = retryOptions(this.options.retry);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.requestOnce(event, data, options);
      } catch (error) {
        if (!(error instanceof RealtimeError) || error.code !== "rate_limited" || attempt >= attempts) throw error;
        const delayMs = error.retryAfterMs ?? fallbackDelayMs(attempt);
        if (delayMs > maxDelayMs) throw error;
        this.pacer.refused(delayMs);
        this.stats.rateLimitedRetries += 1;
      }
    }
  }

  private async requestOnce<E extends keyof ClientEvents>(
    event: E,
    data: ClientEvents[E]["data"],
    options: { timeoutMs?: number },
  ): Promise<ClientEvents[E]["result"]> {
    const timeoutMs = options.timeoutMs ?? this.options.ackTimeoutMs ?? 10_000;
    await this.pacer.turn();
    await this.ready(timeoutMs);
    const ack = `${++this.nextAck}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(ack);
        reject(new RealtimeError("timeout", `No answer to ${event} within ${timeoutMs} ms`, event));
      }, timeoutMs);
      this.pending.set(ack, { event, resolve, reject, timer });
      try {
        this.socket!.send(JSON.stringify({ event, data, ack }));
      } catch {
        clearTimeout(timer);
        this.pending.delete(ack);
        reject(new RealtimeError("disconnected", `The connection closed before ${event} was sent`, event));
      }
    });
  }

  /**
   * Watches a conversation. With `since`, every message after it is replayed first. The client then keeps
   * the conversation joined across reconnects, resuming from the last sequence it saw.
   */
  async join(conversationId: string, options: { since?: number } = {}): Promise<JoinResult> {
    const tracker = options.since !== undefined ? new SequenceTracker(options.since) : (this.conversations.get(conversationId) ?? new SequenceTracker());
    this.conversations.set(conversationId, tracker);
    const since = tracker.resumeFrom;
    try {
      return await this.joinWith(conversationId, since);
    } catch (error) {
      this.conversations.delete(conversationId);
      throw error;
    }
  }

  async leave(conversationId: string): Promise<void> {
    this.conversations.delete(conversationId);
    await this.request("leave:conversation", { conversationId });
  }

  /** Joined conversations. */
  joined(): string[] {
    return [...this.conversations.keys()];
  }

  /** Every sequence up to this one has been seen in the conversation. */
  lastSequence(conversationId: string): number | undefined {
    return this.conversations.get(conversationId)?.resumeFrom;
  }

  /** Sends a message. A client id is generated when none is given, so resending after `disconnected` is safe. */
  send(conversationId: string, input: SendMessageInput): Promise<Message> {
    return this.request("message:send", { conversationId, ...input, id: input.id ?? crypto.randomUUID() });
  }

  edit(messageId: string, input: EditMessageInput): Promise<Message> {
    return this.request("message:edit", { messageId, ...input });
  }

  delete(messageId: string): Promise<{ id: string; conversationId: string }> {
    return this.request("message:delete", { messageId });
  }

  control(conversationId: string, input: SendControlInput): Promise<Message> {
    return this.request("control:send", { conversationId, ...input });
  }

  async startTyping(conversationId: string): Promise<void> {
    await this.request("typing:start", { conversationId });
  }

  async stopTyping(conversationId: string): Promise<void> {
    await this.request("typing:stop", { conversationId });
  }

  async setPresence(status: PresenceStatus): Promise<void> {
    await this.request("presence:update", { status });
  }

  ping(): Promise<{ serverTime: string }> {
    return this.request("ping", {});
  }

  // Connection management

  /** The implementation, and how credentials travel with it. */
  private transport(): { WebSocket: WebSocketConstructor; auth: CredentialTransport } {
    const fallback = defaultWebSocket();
    const Impl = this.options.WebSocket ?? fallback.WebSocket;
    if (!Impl) {
      throw new RealtimeError(
        "no_websocket",
        "This runtime has no global WebSocket: pass the WebSocket option (e.g. the ws package's class), or import the SDK's Node entry",
      );
    }
    return { WebSocket: Impl, auth: this.options.auth ?? (this.options.WebSocket ? "query" : fallback.auth) };
  }

  private socketUrl(auth: CredentialTransport): string {
    const url = new URL(this.options.url);
    // Back after a session: the server tells of conversations this principal joined while away.
    if (this.heardUntil !== undefined) url.searchParams.set("addedSince", new Date(this.heardUntil - ADDED_SINCE_MARGIN_MS).toISOString());
    if (auth === "header") return url.toString();
    const { token, apiKey, headers } = this.options.credentials();
    if (token) url.searchParams.set("token", token);
    if (apiKey) url.searchParams.set("apiKey", apiKey);
    if (headers["x-as-user-id"]) url.searchParams.set("asUserId", headers["x-as-user-id"]);
    return url.toString();
  }

  private async openSocket(): Promise<SessionReady> {
    const { WebSocket: Impl, auth } = this.transport();
    const url = this.socketUrl(auth);
    // Bun's WebSocket and ws take headers as a second-argument option; browsers take only protocols.
    const socket = auth === "header" ? new Impl(url, { headers: this.options.credentials().headers }) : new Impl(url);
    this.socket = socket;
    this.sessionInfo = undefined;
    return new Promise<SessionReady>((resolve, reject) => {
      let settled = false;
      socket.onmessage = (message: { data: unknown }) => {
        if (this.socket !== socket) return;
        const frame = this.parse(message.data);
        if (!frame) return;
        if (frame.event === "session:ready" && !settled) {
          settled = true;
          this.sessionInfo = frame.data as SessionReady;
          this.serverClockOffsetMs = Date.parse(this.sessionInfo.serverTime) - Date.now() || 0;
          this.attempt = 0;
          this.startWatchdog(this.sessionInfo.heartbeatMs);
          resolve(this.sessionInfo);
          for (const wake of [...this.readyWaiters]) wake();
          this.emit("open", this.sessionInfo);
        }
        this.handleFrame(frame);
      };
      socket.onclose = (event: { code: number; reason: string }) => {
        if (this.socket !== socket) return;
        // What this session heard, in the server's clock: the next one asks for what came after.
        if (settled) this.heardUntil = this.lastFrameAt + this.serverClockOffsetMs;
        this.socket = undefined;
        this.sessionInfo = undefined;
        this.stopWatchdog();
        this.failPending("disconnected", `The connection closed (${event.code}) before the answer came`);
        const reconnecting = !this.stopped && settled && this.mayReconnect(event.code);
        this.emit("close", { code: event.code, reason: event.reason, reconnecting });
        if (!settled) {
          settled = true;
          reject(new RealtimeError("connect_failed", `WebSocket closed before the session started (${event.code} ${event.reason})`));
          // A reconnect attempt that failed keeps trying; the first connect reports the failure instead.
          if (!this.stopped && this.attempt > 0 && this.mayReconnect(event.code)) this.scheduleReconnect();
          return;
        }
        if (reconnecting) this.scheduleReconnect();
      };
      socket.onerror = () => {
        // A close event follows; it carries the outcome.
      };
    });
  }

  private mayReconnect(code: number): boolean {
    const options = this.options.reconnect ?? {};
    if (options.enabled === false || FINAL_CLOSE_CODES.has(code)) return false;
    return this.attempt < (options.maxAttempts ?? Number.POSITIVE_INFINITY);
  }

  private scheduleReconnect(): void {
    const { initialDelayMs = 250, maxDelayMs = 10_000 } = this.options.reconnect ?? {};
    const base = Math.min(maxDelayMs, initialDelayMs * 2 ** this.attempt);
    const delayMs = Math.round(base * (0.5 + Math.random() * 0.5));
    this.attempt += 1;
    this.emit("reconnecting", { attempt: this.attempt, delayMs });
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      if (this.stopped) return;
      this.stats.reconnects += 1;
      this.openSocket().then(
        () => this.resume(),
        () => {}, // the close handler schedules the next attempt
      );
    }, delayMs);
  }

  /** After a reconnect: join every conversation again from the last sequence seen. */
  private async resume(): Promise<void> {
    await Promise.all(
      [...this.conversations.entries()].map(async ([conversationId, tracker]) => {
        try {
          this.emit("resumed", await this.joinWith(conversationId, tracker.resumeFrom));
        } catch (error) {
          if (error instanceof RealtimeError && (error.code === "disconnected" || error.code === "timeout")) return;
          this.conversations.delete(conversationId);
          const { code, message } = error instanceof RealtimeError ? error : { code: "error", message: String(error) };
          this.emit("resumeFailed", { conversationId, code, message });
        }
      }),
    );
  }

  /**
   * Joins, and when the server replayed only part of what was missing (`truncated`), joins again from
   * where the replay stopped until the conversation is complete.
   */
  private async joinWith(conversationId: string, since: number | undefined): Promise<JoinResult> {
    let result = await this.request("join:conversation", since === undefined ? { conversationId } : { conversationId, since });
    this.conversations.get(conversationId)?.[since === undefined ? "startFrom" : "coveredUpTo"](result.lastSequence);
    while (result.truncated) {
      const tracker = this.conversations.get(conversationId);
      if (!tracker) return result;
      result = await this.request("join:conversation", { conversationId, since: tracker.resumeFrom! });
      this.conversations.get(conversationId)?.coveredUpTo(result.lastSequence);
    }
    return result;
  }

  private async ready(timeoutMs: number): Promise<void> {
    if (this.connected) return;
    if (this.stopped) throw new RealtimeError("not_connected", "The client is not connected; call connect() first");
    await new Promise<void>((resolve, reject) => {
      const wake = () => {
        clearTimeout(timer);
        this.readyWaiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(() => {
        this.readyWaiters.delete(wake);
        reject(new RealtimeError("not_connected", `Not connected within ${timeoutMs} ms`));
      }, timeoutMs);
      this.readyWaiters.add(wake);
    });
  }

  /** Pings when the connection has been silent for a heartbeat, and reconnects if the ping goes unanswered. */
  private startWatchdog(heartbeatMs: number): void {
    this.stopWatchdog();
    this.lastFrameAt = Date.now();
    this.watchdog = setInterval(() => {
      if (Date.now() - this.lastFrameAt < heartbeatMs) return;
      this.request("ping", {}, { timeoutMs: Math.min(heartbeatMs, this.options.ackTimeoutMs ?? 10_000) }).catch(() => this.reconnect());
    }, heartbeatMs);
    (this.watchdog as { unref?: () => void }).unref?.();
  }

  private stopWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  private failPending(code: string, message: string): void {
    for (const [ack, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new RealtimeError(code, message, pending.event));
      this.pending.delete(ack);
    }
  }

  // Incoming frames

  private parse(data: unknown): { event: string; data?: unknown; ack?: string; ok?: boolean; error?: { code: string; message: string; retryAfter?: unknown } } | undefined {
    if (typeof data !== "string") return undefined;
    try {
      const frame = JSON.parse(data);
      return typeof frame?.event === "string" ? frame : undefined;
    } catch {
      return undefined;
    }
  }

  private handleFrame(frame: NonNullable<ReturnType<RealtimeClient["parse"]>>): void {
    this.lastFrameAt = Date.now();
    if (frame.event === "ack") {
      const pending = frame.ack !== undefined ? this.pending.get(String(frame.ack)) : undefined;
      if (!pending) return;
      this.pending.delete(String(frame.ack));
      clearTimeout(pending.timer);
      if (frame.ok) pending.resolve(frame.data);
      else {
        const code = frame.error?.code ?? "error";
        const retryAfterMs = code === "rate_limited" ? ackRetryDelayMs(frame.error) : undefined;
        pending.reject(new RealtimeError(code, frame.error?.message ?? "Request failed", pending.event, retryAfterMs));
      }
      return;
    }
    if (!this.isNew(frame.event, frame.data)) {
      this.stats.duplicatesDropped += 1;
      return;
    }
    this.forgetEnded(frame.event, frame.data);
    if (frame.event === "message:delta") {
      const delta = frame.data as MessageDelta;
      const change = this.streams.delta(delta);
      if (!change) {
        this.stats.duplicatesDropped += 1;
        return;
      }
      // Only what is new: an overlapping delta is cut to its unseen part.
      const offset = change.text.length - change.added.length;
      this.emit("message:delta", offset === delta.offset ? delta : { ...delta, offset, delta: change.added });
      this.emit("stream:text", change);
      return;
    }
    this.emit(frame.event as keyof RealtimeEvents, frame.data as never);
    if (frame.event === "message:new" || frame.event === "message:updated") {
      const change = this.streams.snapshot(frame.data as Message);
      if (change) this.emit("stream:text", change);
    }
    if (frame.event === "conversation:added" && this.options.autoJoin) this.autoJoin(frame.data as ServerEvents["conversation:added"]);
  }

  /** From sequence 0: whatever was sent between the add and the join is replayed, nothing is lost. */
  private autoJoin({ conversation }: ServerEvents["conversation:added"]): void {
    if (this.conversations.has(conversation.id)) return;
    this.join(conversation.id, { since: 0 }).then(
      (result) => this.emit("autoJoined", result),
      (error) => {
        const { code, message } = error instanceof RealtimeError ? error : { code: "error", message: String(error) };
        this.emit("autoJoinFailed", { conversationId: conversation.id, code, message });
      },
    );
  }

  /** The text so far of a streaming message this client has heard of. */
  streamText(messageId: string): string | undefined {
    return this.streams.text(messageId);
  }

  /** Starts a streaming message (content may be empty); append to it, then finish it. */
  startStream(conversationId: string, input: Omit<SendMessageInput, "streaming"> = { content: "" }): Promise<Message> {
    return this.request("message:send", { conversationId, ...input, streaming: true });
  }

  /**
   * Appends a delta. Without `ack` nothing is awaited (a refusal arrives as an `error` event naming
   * `message:append`); with it, resolves with the new length once the server applied it.
   */
  append(messageId: string, delta: string, options: { ack?: boolean } = {}): Promise<{ messageId: string; length: number } | undefined> {
    if (options.ack) return this.request("message:append", { messageId, delta });
    if (this.socket?.readyState !== OPEN) return Promise.reject(new RealtimeError("not_connected", "Not connected", "message:append"));
    this.socket.send(JSON.stringify({ event: "message:append", data: { messageId, delta } }));
    return Promise.resolve(undefined);
  }

  /** Ends a streaming message as complete; `content` replaces what was appended. */
  finish(messageId: string, content?: string): Promise<Message> {
    return this.request("message:finish", content === undefined ? { messageId } : { messageId, content });
  }

  /** Messages and control events carry a sequence: a sequence seen before is a duplicate. */
  private isNew(event: string, data: unknown): boolean {
    const payload = data as { sequence?: number; conversation_id?: string; conversationId?: string } | undefined;
    if (typeof payload?.sequence !== "number") return true;
    let conversationId: string | undefined;
    if (event === "message:new") conversationId = payload.conversation_id;
    else if (event.startsWith("stream.")) conversationId = payload.conversationId;
    const tracker = conversationId ? this.conversations.get(conversationId) : undefined;
    return tracker ? tracker.see(payload.sequence) : true;
  }

  /** The server unsubscribed us (removed from the conversation, or it was deleted): stop resuming it. */
  private forgetEnded(event: string, data: unknown): void {
    if (event === "conversation:deleted") this.conversations.delete((data as { id: string }).id);
    if (event === "conversation:removed") this.conversations.delete((data as { conversationId: string }).conversationId);
    if (event === "participant:left") {
      const change = data as { conversationId: string; userId: string };
      if (change.userId === this.sessionInfo?.user.id) this.conversations.delete(change.conversationId);
    }
  }

  private emit<K extends keyof RealtimeEvents>(event: K, data: RealtimeEvents[K]): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        listener(data);
      } catch (error) {
        // A listener's bug must not break the connection.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
