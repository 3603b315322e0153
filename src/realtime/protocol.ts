/**
 * Client frames: the envelope `{event, data, ack?}` and the payload schema of each client event. The
 * message and control payloads reuse the REST body schemas, so both transports accept the same input.
 */
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { t, type TSchema } from "elysia";
import { ACT_AS_QUERY } from "../auth/act-as";
import { SendControlBody } from "../modules/control/model";
import { AppendBody, EditMessageBody, FinishBody, SendMessageBody } from "../modules/messages/model";
import { Uuid } from "../modules/shared-models";
import { CLIENT_EVENTS, type ClientEvent } from "./wire-events";

const ConversationRef = t.Object({ conversationId: Uuid });
/** join, leave and typing also take the bare conversation id. */
const ConversationRefOrId = t.Union([Uuid, ConversationRef]);

const PAYLOADS = {
  "join:conversation": t.Union([
    Uuid,
    t.Object({ conversationId: Uuid, since: t.Optional(t.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })) }),
  ]),
  "leave:conversation": ConversationRefOrId,
  "message:send": t.Composite([ConversationRef, SendMessageBody]),
  "message:edit": t.Composite([t.Object({ messageId: Uuid, conversationId: t.Optional(Uuid) }), EditMessageBody]),
  "message:delete": t.Object({ messageId: Uuid, conversationId: t.Optional(Uuid) }),
  "control:send": t.Composite([ConversationRef, SendControlBody]),
  "message:append": t.Composite([t.Object({ messageId: Uuid, conversationId: t.Optional(Uuid) }), AppendBody]),
  "message:finish": t.Composite([t.Object({ messageId: Uuid, conversationId: t.Optional(Uuid) }), FinishBody]),
  "typing:start": ConversationRefOrId,
  "typing:stop": ConversationRefOrId,
  "presence:update": t.Object({
    status: t.Union([t.Literal("online"), t.Literal("away"), t.Literal("busy"), t.Literal("offline")]),
  }),
  ping: t.Unknown(),
} satisfies Record<ClientEvent, TSchema>;

export type ClientPayload<E extends ClientEvent> = (typeof PAYLOADS)[E]["static"];

const checks = Object.fromEntries(
  Object.entries(PAYLOADS).map(([event, schema]) => [event, TypeCompiler.Compile(schema)]),
) as { [E in ClientEvent]: TypeCheck<(typeof PAYLOADS)[E]> };

const KNOWN_EVENTS: ReadonlySet<string> = new Set(CLIENT_EVENTS);
const MAX_ACK_LENGTH = 128;

export type AckId = string | number;

export type ParsedFrame =
  | { ok: true; event: ClientEvent; data: unknown; ack?: AckId }
  | { ok: false; code: "invalid_frame" | "unknown_event" | "invalid_input"; message: string; event?: string; ack?: AckId };

function ackOf(value: unknown): AckId | undefined | null {
  if (value === undefined) return undefined;
  if (typeof value === "string" && value.length <= MAX_ACK_LENGTH) return value;
  if (typeof value === "number" && Number.isFinite(value)) return value;
  return null;
}

/**
 * Checks the envelope and the payload of a frame Elysia has already parsed (JSON text that failed to parse
 * arrives here as the raw string). The ack id is kept whenever it is readable, so that even a rejected
 * frame gets its ack answered.
 */
export function parseClientFrame(message: unknown): ParsedFrame {
  if (message instanceof ArrayBuffer || ArrayBuffer.isView(message)) {
    return { ok: false, code: "invalid_frame", message: "Binary frames are not supported; send JSON text" };
  }
  if (typeof message !== "object" || message === null || Array.isArray(message)) {
    return { ok: false, code: "invalid_frame", message: 'A frame is a JSON object {"event", "data", "ack"?}' };
  }
  const frame = message as Record<string, unknown>;
  const ack = ackOf(frame.ack);
  if (ack === null) {
    return { ok: false, code: "invalid_frame", message: `ack must be a string of at most ${MAX_ACK_LENGTH} characters or a number` };
  }
  if (typeof frame.event !== "string") return { ok: false, code: "invalid_frame", message: "event must be a string", ack };
  const event = frame.event;
  if (!KNOWN_EVENTS.has(event)) {
    return { ok: false, code: "unknown_event", message: `Unknown event ${JSON.stringify(event.slice(0, 64))}`, event: event.slice(0, 64), ack };
  }
  // Acting for someone is the connection's (?asUserId= on the upgrade); ignored here, the frame would go
  // out as the caller.
  if (typeof frame.data === "object" && frame.data !== null && ACT_AS_QUERY in frame.data) {
    return { ok: false, code: "invalid_input", message: `${ACT_AS_QUERY} is not a frame field: act for another principal with ?${ACT_AS_QUERY}= on the connection`, event, ack };
  }
  const check = checks[event as ClientEvent];
  if (!check.Check(frame.data)) {
    const first = check.Errors(frame.data).First();
    const field = first?.path ? first.path.replace(/^\//, "").replace(/\//g, ".") : "data";
    return { ok: false, code: "invalid_input", message: `${field}: ${first?.message ?? "invalid"}`, event, ack };
  }
  return { ok: true, event: event as ClientEvent, data: frame.data, ack };
}

/** The conversation a join, leave or typing payload names. */
export function conversationIdOf(data: string | { conversationId: string }): string {
  return typeof data === "string" ? data : data.conversationId;
}
