/**
 * What each client event does. Writes go through the same domain functions as REST (permission checks,
 * transaction, domain event included); the hub then broadcasts the domain event like any other. Every
 * handler returns its ack result as JSON text, so a stored message goes out as the bytes the domain
 * serialised.
 */
import { requireParticipant } from "../domain/access";
import { AppError, isDatabaseUnavailable } from "../http/errors";
import { describeError, log } from "../log";
import { sendControl } from "../modules/control/service";
import { deleteMessage, editMessage, sendMessage } from "../modules/messages/service";
import { CLOSE, type Connection } from "./connection";
import type { ClientEvent } from "./events";
import { ackErrorFrame, ackFrame, errorFrame, serverFrame } from "./frames";
import type { RealtimeHub } from "./hub";
import { conversationIdOf, parseClientFrame, type AckId, type ClientPayload } from "./protocol";

type Handler<E extends ClientEvent> = (hub: RealtimeHub, connection: Connection, data: ClientPayload<E>) => Promise<string>;

const serverTime = () => JSON.stringify({ serverTime: new Date().toISOString() });

const HANDLERS: { [E in ClientEvent]: Handler<E> } = {
  "join:conversation": async (hub, connection, data) =>
    JSON.stringify(await hub.join(connection, conversationIdOf(data), typeof data === "string" ? undefined : data.since)),

  "leave:conversation": async (hub, connection, data) => {
    const conversationId = conversationIdOf(data);
    hub.leave(connection, conversationId);
    return JSON.stringify({ conversationId });
  },

  "message:send": async (hub, connection, { conversationId, ...input }) =>
    (await sendMessage(hub.services, connection.principal, conversationId, input, connection.scope)).json,

  "message:edit": async (hub, connection, { messageId, conversationId, content, contentType }) =>
    (await editMessage(hub.services, connection.principal, { messageId, conversationId }, { content, contentType })).json,

  "message:delete": async (hub, connection, { messageId, conversationId }) => {
    const deleted = await deleteMessage(hub.services, connection.principal, { messageId, conversationId });
    return JSON.stringify({ id: deleted.id, conversationId: deleted.conversationId });
  },

  "control:send": async (hub, connection, { conversationId, ...input }) =>
    (await sendControl(hub.services, connection.principal, conversationId, input, connection.scope)).json,

  "typing:start": async (hub, connection, data) => {
    const conversationId = conversationIdOf(data);
    // Typing is a write: participants only, not read-only observers.
    await requireParticipant(hub.services.database.db, connection.principal, conversationId);
    hub.typing.start(connection, conversationId);
    return "{}";
  },

  "typing:stop": async (hub, connection, data) => {
    hub.typing.stop(connection, conversationIdOf(data));
    return "{}";
  },

  "presence:update": async (hub, connection, { status }) => {
    hub.presence.update(connection, status);
    return JSON.stringify({ status });
  },

  ping: async () => serverTime(),
};

/** An error as the client sees it: AppError keeps its code and message; anything else stays internal. */
function clientErrorOf(error: unknown, connection: Connection, event: string): { code: string; message: string } {
  if (error instanceof AppError) return { code: error.code, message: error.message };
  if (isDatabaseUnavailable(error)) return { code: "database_unavailable", message: "Database unavailable" };
  log.error("socket frame failed", { connectionId: connection.id, principal: connection.principal.id, event, ...describeError(error) });
  return { code: "internal_error", message: "Internal server error" };
}

function reject(connection: Connection, ack: AckId | undefined, code: string, message: string, event?: string): void {
  connection.send(ack !== undefined ? ackErrorFrame(ack, code, message) : errorFrame(code, message, event));
}

/** Entry point for every text or binary frame a client sends. */
export function receiveFrame(hub: RealtimeHub, connection: Connection, message: unknown): void {
  if (connection.closed) return;
  if (!connection.rate.take()) {
    if (connection.rate.isFlooding()) {
      connection.close(CLOSE.policyViolation, "rate limit exceeded");
      return;
    }
    const ack = typeof message === "object" && message !== null ? (message as { ack?: unknown }).ack : undefined;
    const retry = connection.rate.retryAfterSeconds().toFixed(2);
    reject(connection, typeof ack === "string" || typeof ack === "number" ? ack : undefined, "rate_limited", `Too many frames; retry in ${retry} s`);
    return;
  }
  const frame = parseClientFrame(message);
  if (!frame.ok) return reject(connection, frame.ack, frame.code, frame.message, frame.event);
  if (hub.shuttingDown) return reject(connection, frame.ack, "shutting_down", "The server is shutting down", frame.event);

  const { event, data, ack } = frame;
  hub.run(connection, async () => {
    if (connection.closed) return;
    try {
      const result = await (HANDLERS[event] as Handler<ClientEvent>)(hub, connection, data as never);
      if (ack !== undefined) connection.send(ackFrame(ack, result));
      else if (event === "ping") connection.send(serverFrame("pong", JSON.parse(result)));
    } catch (error) {
      const { code, message } = clientErrorOf(error, connection, event);
      reject(connection, ack, code, message, event);
    }
  });
}
