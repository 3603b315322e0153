/**
 * What each client event does. Writes go through the same domain functions as REST (permission checks,
 * transaction, domain event included); the hub then broadcasts the domain event like any other. Every
 * handler returns its ack result as JSON text, so a stored message goes out as the bytes the domain
 * serialised.
 */
import { AppError, fail } from "../core/errors";
import { isDatabaseUnavailable } from "../core/database-errors";
import { describeError, log } from "../log";
import { messagesSent, wsFramesRateLimited, wsFramesReceived } from "../metrics/registry";
import { sendControl } from "../modules/control/service";
import { deleteMessage, editMessage, sendMessage } from "../modules/messages/service";
import { CLOSE, type Connection } from "./connection";
import type { ClientEvent } from "./wire-events";
import { ackErrorFrame, ackFrame, errorFrame, serverFrame } from "./frames";
import type { RealtimeHub } from "./hub";
import type { Services } from "../services";
import { conversationIdOf, parseClientFrame, type AckId, type ClientPayload } from "./protocol";

type Handler<E extends ClientEvent> = (hub: RealtimeHub, services: Services, connection: Connection, data: ClientPayload<E>) => Promise<string>;

const serverTime = () => JSON.stringify({ serverTime: new Date().toISOString() });

const HANDLERS: { [E in ClientEvent]: Handler<E> } = {
  "join:conversation": async (hub, _services, connection, data) =>
    JSON.stringify(await hub.join(connection, conversationIdOf(data), typeof data === "string" ? undefined : data.since)),

  "leave:conversation": async (hub, _services, connection, data) => {
    const conversationId = conversationIdOf(data);
    hub.leave(connection, conversationId);
    return JSON.stringify({ conversationId });
  },

  "message:send": async (_hub, services, connection, { conversationId, ...input }) => {
    const stored = await sendMessage(services, connection.principal, conversationId, input, connection.scope, { connectionId: connection.id });
    if (!stored.replayed) messagesSent.websocket.inc();
    return stored.json;
  },

  "message:append": async (_hub, services, connection, { messageId, conversationId, delta }) =>
    JSON.stringify(await services.streams.append(connection.principal, messageId, delta, conversationId)),

  "message:finish": async (_hub, services, connection, { messageId, conversationId, content }) =>
    (await services.streams.finish(connection.principal, messageId, content, conversationId)).json,

  "message:edit": async (_hub, services, connection, { messageId, conversationId, content, contentType }) =>
    (await editMessage(services, connection.principal, { messageId, conversationId }, { content, contentType })).json,

  "message:delete": async (_hub, services, connection, { messageId, conversationId }) => {
    const deleted = await deleteMessage(services, connection.principal, { messageId, conversationId });
    return JSON.stringify({ id: deleted.id, conversationId: deleted.conversationId });
  },

  "control:send": async (_hub, services, connection, { conversationId, ...input }) =>
    (await sendControl(services, connection.principal, conversationId, input, connection.scope)).json,

  "typing:start": async (hub, _services, connection, data) => {
    const conversationId = conversationIdOf(data);
    await hub.store.authorizeTyping(connection.principal, conversationId);
    hub.typing.start(connection, conversationId);
    return "{}";
  },

  "typing:stop": async (hub, _services, connection, data) => {
    hub.typing.stop(connection, conversationIdOf(data));
    return "{}";
  },

  "presence:update": async (hub, _services, connection, { status }) => {
    hub.presence.update(connection, status);
    return JSON.stringify({ status });
  },

  ping: async () => serverTime(),
};

/**
 * The WebSocket's one error mapper: what a client is told when a frame fails. AppError keeps its catalogue
 * code and message (the same as REST would answer); anything else is logged and stays internal.
 */
export function socketErrorOf(error: unknown, context: { connectionId?: string; principal?: string; event?: string } = {}): AppError {
  if (error instanceof AppError) return error;
  if (isDatabaseUnavailable(error)) return fail.database_unavailable();
  log.error("socket frame failed", { ...context, ...describeError(error) });
  return fail.internal_error();
}

/** An ack error when the frame asked for an ack, else an `error` frame naming the event. */
function reject(connection: Connection, ack: AckId | undefined, error: AppError, event?: string): void {
  connection.send(ack !== undefined ? ackErrorFrame(ack, error.code, error.message, error.details) : errorFrame(error.code, error.message, event, error.details));
}

function isAppend(message: unknown): boolean {
  return typeof message === "object" && message !== null && (message as { event?: unknown }).event === "message:append";
}

/** Entry point for every text or binary frame a client sends. */
export function receiveFrame(hub: RealtimeHub, services: Services, connection: Connection, message: unknown): void {
  if (connection.closed) return;
  wsFramesReceived.inc();
  // Appends (an agent streaming tokens) count in a bucket of their own, with a higher limit.
  const rate = isAppend(message) ? connection.appendRate : connection.rate;
  if (!rate.take()) {
    wsFramesRateLimited.inc();
    if (rate.isFlooding()) {
      connection.close(CLOSE.policyViolation, "rate limit exceeded");
      return;
    }
    const ack = typeof message === "object" && message !== null ? (message as { ack?: unknown }).ack : undefined;
    // Never 0: a refused frame needs at least the next token, and a client told 0 would come straight back.
    const retry = Math.max(0.01, Math.ceil(rate.retryAfterSeconds() * 100) / 100).toFixed(2);
    reject(connection, typeof ack === "string" || typeof ack === "number" ? ack : undefined, fail.rate_limited(`Too many frames; retry in ${retry} s`).with({ retryAfter: Number(retry) }));
    return;
  }
  const frame = parseClientFrame(message);
  if (!frame.ok) return reject(connection, frame.ack, new AppError(frame.code, frame.message), frame.event);
  if (hub.shuttingDown) return reject(connection, frame.ack, fail.shutting_down(), frame.event);

  const { event, data, ack } = frame;
  // Sends may overlap one another (up to WS_SEND_WINDOW); every other frame runs alone, in order. A send
  // that opens a stream too: the connection's count of open streams is checked before it is written.
  const overlaps = event === "message:send" && (data as ClientPayload<"message:send">).streaming !== true;
  hub.run(connection, async () => {
    if (connection.closed) return;
    try {
      const result = await (HANDLERS[event] as Handler<ClientEvent>)(hub, services, connection, data as never);
      if (ack !== undefined) connection.send(ackFrame(ack, result));
      else if (event === "ping") connection.send(serverFrame("pong", JSON.parse(result)));
    } catch (error) {
      reject(connection, ack, socketErrorOf(error, { connectionId: connection.id, principal: connection.principal.id, event }), event);
    }
  }, overlaps);
}
