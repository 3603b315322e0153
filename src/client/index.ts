/**
 * Typed client of symbia-messaging: REST methods for every endpoint, and a WebSocket connection with acks
 * as promises, events as callbacks, automatic reconnection and resumption without loss.
 *
 *   const client = new MessagingClient({ baseUrl: "http://localhost:5005", apiKey });
 *   const socket = client.realtime();
 *   socket.on("message:new", (message) => console.log(message.sequence, message.content));
 *   await socket.connect();
 *   await socket.join(conversationId);
 *   await socket.send(conversationId, { content: "hello" });
 */
import { RealtimeClient, type RealtimeOptions } from "./realtime.js";
import { RestClient, type RestOptions } from "./rest.js";
import { RunHandle } from "./run.js";
import type { StartRunInput } from "./types.js";

export class MessagingClient extends RestClient {
  constructor(options: RestOptions) {
    super(options);
  }

  /** URL of the WebSocket endpoint. */
  get websocketUrl(): string {
    return `${this.baseUrl.replace(/^http/, "ws")}/api/ws`;
  }

  /**
   * Starts a run owned by this client's principal and follows it on `socket` (joined here if it has not
   * joined the conversation): the handle's `signal` aborts when the run is paused, preempted, cancelled or
   * handed to someone else.
   */
  async startRun(conversationId: string, options: StartRunInput & { socket: RealtimeClient }): Promise<RunHandle> {
    const { socket, ...input } = options;
    const session = socket.session ?? (await socket.connect());
    if (!socket.joined().includes(conversationId)) await socket.join(conversationId);
    const run = await this.createRun(conversationId, input);
    return new RunHandle(this, socket, run, session.user.id);
  }

  /** A WebSocket connection using this client's credentials (call `connect()` on it). */
  realtime(options: Partial<Omit<RealtimeOptions, "credentials">> = {}): RealtimeClient {
    return new RealtimeClient({
      url: this.websocketUrl,
      retry: this.retry,
      ...options,
      credentials: () => ({ token: this.token, apiKey: this.apiKey, headers: this.authHeaders() }),
    });
  }
}

export { ApiError, RealtimeError } from "./errors.js";
export type { RetryOptions } from "./rate-limit.js";
export { RealtimeClient } from "./realtime.js";
export type { ConnectionEvents, RealtimeEvents, RealtimeOptions, ReconnectOptions } from "./realtime.js";
export { RestClient } from "./rest.js";
export { RunHandle } from "./run.js";
export type { RunChange, RunStopReason } from "./run.js";
export type { FetchFunction, RestOptions, ScopeOptions } from "./rest.js";
export { SequenceTracker } from "./sequence-tracker.js";
export { setDefaultWebSocket } from "./transport.js";
export type { CredentialTransport, WebSocketConstructor, WebSocketLike } from "./transport.js";
export type * from "./types.js";
