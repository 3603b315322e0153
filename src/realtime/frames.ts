/**
 * Server frames as strings. A frame is serialised once, here, and the same bytes go to every subscriber:
 * Bun's publish copies them into each socket's buffer without re-encoding.
 */
import { controlBroadcastOf } from "../domain/control-events";
import type { DomainEvent } from "../domain/domain-events";
import type { ConversationResource, MessageResource, ParticipantResource } from "../domain/resources";
import type { ServerEvent } from "./wire-events";

export type PresenceStatus = "online" | "away" | "busy" | "offline";

/** One frame for one conversation topic, ready to send. */
export interface TopicFrame {
  conversationId: string;
  frame: string;
  /** The message sequence the frame carries (new messages, control events): replay and live are joined on it. */
  sequence?: number;
  /**
   * Membership ends with this frame: after it is out, the principal's sockets (or every socket) stop
   * receiving the topic. Carried with the frame so that a relay from another instance has the same effect.
   */
  revoke?: { principalId: string } | { everyone: true };
  /** A connection that must not receive the frame (typing goes to everyone but the typist). */
  exceptConnectionId?: string;
  /** A `message:delta` frame: which stream, and the offset it starts at (joins drop what they replayed). */
  delta?: { messageId: string; offset: number; end: number };
  /** Where another instance reads the frame's content again when it is too large to relay. */
  reload?: { messageId: string } | { conversation: true };
  /**
   * Not for sockets: a part of a stream's content so far, sent by its holder to the instance that asked
   * (./stream-relay.ts). It travels as a frame so that it arrives in its place among the stream's deltas.
   */
  streamSnapshot?: StreamSnapshotPart;
}

export interface StreamSnapshotPart {
  /** The instance that asked, and its request. */
  to: string;
  id: string;
  messageId: string;
  index: number;
  count: number;
  text: string;
}

export function serverFrame(event: ServerEvent, data: unknown): string {
  return JSON.stringify({ event, data });
}

/** Wraps JSON the domain already produced, so that a message is never serialised twice. */
export function frameWithJson(event: ServerEvent, json: string): string {
  return `{"event":${JSON.stringify(event)},"data":${json}}`;
}

export function ackFrame(ack: string | number, dataJson: string): string {
  return `{"event":"ack","ack":${JSON.stringify(ack)},"ok":true,"data":${dataJson}}`;
}

export function ackErrorFrame(ack: string | number, code: string, message: string, details?: Record<string, unknown>): string {
  return JSON.stringify({ event: "ack", ack, ok: false, error: { ...details, code, message } });
}

export function errorFrame(code: string, message: string, event?: string, details?: Record<string, unknown>): string {
  return JSON.stringify({ event: "error", data: { ...details, code, message, ...(event !== undefined && { event }) } });
}

function participantPayload(participant: ParticipantResource) {
  return {
    conversationId: participant.conversation_id,
    userId: participant.user_id,
    userType: participant.user_type,
    role: participant.role,
  };
}

export function presenceFrame(conversationId: string, userId: string, userType: string, status: PresenceStatus): string {
  return serverFrame("presence:changed", { userId, userType, status, conversationId });
}

export function typingFrame(event: "typing:started" | "typing:stopped", conversationId: string, userId: string, userType: string): string {
  return serverFrame(event, { conversationId, userId, userType });
}

/**
 * What a committed domain event looks like on the wire. Pure: the same event always gives the same frame,
 * and nothing here knows about sockets. Undefined for events no conversation topic hears (a new
 * conversation has no subscribers yet).
 */
export function frameOfDomainEvent(event: DomainEvent): TopicFrame | undefined {
  const conversationId = event.conversationId;
  switch (event.type) {
    case "message.created":
      return { conversationId, frame: frameWithJson("message:new", event.json), sequence: event.message.sequence };
    case "message.updated":
      return { conversationId, frame: frameWithJson("message:updated", event.json), reload: { messageId: event.message.id } };
    case "message.deleted":
      return { conversationId, frame: serverFrame("message:deleted", event.message) };
    case "message.delta":
      return {
        conversationId,
        frame: frameWithJson("message:delta", event.json),
        delta: { messageId: event.messageId, offset: event.offset, end: event.offset + event.length },
      };
    case "control.sent":
      return {
        conversationId,
        frame: serverFrame(event.control.event as ServerEvent, event.control),
        sequence: event.control.sequence,
      };
    case "participant.added":
      return { conversationId, frame: serverFrame("participant:joined", participantPayload(event.participant)) };
    case "participant.removed":
      return {
        conversationId,
        frame: serverFrame("participant:left", participantPayload(event.participant)),
        revoke: { principalId: event.participant.user_id },
      };
    case "participant.updated":
      return { conversationId, frame: serverFrame("participant:updated", participantPayload(event.participant)) };
    case "conversation.created":
      return undefined;
    case "run.started":
      return { conversationId, frame: serverFrame("run:started", event.run) };
    case "run.ended":
      return {
        conversationId,
        frame: serverFrame("run:ended", {
          conversationId,
          runId: event.run.id,
          state: event.run.state,
          endReason: event.run.end_reason,
          endedAt: event.run.ended_at,
        }),
      };
    case "conversation.updated":
      return { conversationId, frame: serverFrame("conversation:updated", event.conversation), reload: { conversation: true } };
    case "conversation.deleted":
      return { conversationId, frame: serverFrame("conversation:deleted", { id: conversationId }), revoke: { everyone: true } };
  }
}

const DELTA_PREFIX = '{"event":"message:delta","data":';

/**
 * The stream and offset of a `message:delta` frame; relayed frames from other instances carry only their
 * text, so it is read from there (joins only, never on the live path).
 */
export function deltaOf(frame: TopicFrame): { messageId: string; offset: number; end: number } | undefined {
  if (frame.delta) return frame.delta;
  if (!frame.frame.startsWith(DELTA_PREFIX)) return undefined;
  const { data } = JSON.parse(frame.frame) as { data: { messageId: string; offset: number; delta: string } };
  return { messageId: data.messageId, offset: data.offset, end: data.offset + data.delta.length };
}

/**
 * How a message read back from the database reaches a client; the one rule, for every path:
 * - "live": it stands in for the frame its write announced (a gap filled from the database, a catch-up
 *   after a lost connection), so it is that frame: `message:new`, or the `stream.*` event for a control
 *   message.
 * - "replay": history before the live stream (`join:conversation` with `since`) is a timeline of stored
 *   messages, all as `message:new`; a control message shows as such (`content_type: "event"`, the event
 *   in `metadata.control`).
 * A deleted message keeps its place (sequence, `deleted_at`) but not its content.
 */
export function frameOfStoredMessage(message: MessageResource, delivery: "live" | "replay"): TopicFrame {
  const conversationId = message.conversation_id;
  if (delivery === "live" && message.content_type === "event" && !message.deleted_at) {
    const control = controlBroadcastOf(message);
    return { conversationId, frame: serverFrame(control.event as ServerEvent, control), sequence: message.sequence };
  }
  return { conversationId, frame: frameWithJson("message:new", JSON.stringify(message)), sequence: message.sequence };
}

/**
 * One frame for every connection of one principal, whatever it has joined: the principal's own news (it
 * was added to or removed from a conversation). Travels to the other instances like topic frames do.
 */
export interface PrincipalFrame {
  principalId: string;
  frame: string;
  /** `conversation:added` can be rebuilt from the database when it is too large to relay. */
  reload?: { conversationId: string; role: string };
  /**
   * The organisation of the conversation it tells of, when known: a socket acting for the principal hears
   * only of conversations within the acting's reach (src/auth/act-as.ts).
   */
  orgId?: string;
}

export function conversationAddedFrame(principalId: string, conversation: ConversationResource, role: string): PrincipalFrame {
  return {
    principalId,
    frame: serverFrame("conversation:added", { conversation, role }),
    reload: { conversationId: conversation.id, role },
    ...(conversation.org_id ? { orgId: conversation.org_id } : {}),
  };
}

/**
 * What a committed domain event tells principals directly: each participant of a new conversation,
 * whoever is added or removed, and every participant of a deleted conversation. Pure, like
 * `frameOfDomainEvent`.
 */
export function principalFramesOfDomainEvent(event: DomainEvent): PrincipalFrame[] {
  switch (event.type) {
    case "conversation.created": {
      const { participants, ...conversation } = event.conversation;
      return participants.map((p) => conversationAddedFrame(p.user_id, conversation, p.role));
    }
    case "participant.added":
      return [conversationAddedFrame(event.participant.user_id, event.conversation, event.participant.role)];
    case "participant.removed":
      return [
        {
          principalId: event.participant.user_id,
          frame: serverFrame("conversation:removed", { conversationId: event.conversationId }),
          ...(event.orgId !== null && { orgId: event.orgId }),
        },
      ];
    case "conversation.deleted": {
      const frame = serverFrame("conversation:removed", { conversationId: event.conversationId });
      const orgId = event.orgId ?? undefined;
      return event.participantIds.map((principalId) => ({ principalId, frame, ...(orgId !== undefined && { orgId }) }));
    }
    default:
      return [];
  }
}
