/**
 * What an endpoint can receive, and how a committed domain event becomes one webhook event: its type, the
 * key that makes enqueueing it twice harmless, and its `data` in the REST resource shapes (docs/webhooks.md).
 */
import { CONTROL_EVENTS } from "../domain/control-events";
import type { DomainEvent } from "../domain/domain-events";

export const WEBHOOK_EVENT_TYPES = [
  "message.created",
  "message.updated",
  "message.deleted",
  ...CONTROL_EVENTS,
  "participant.added",
  "participant.removed",
  "conversation.created",
  "conversation.updated",
  "conversation.deleted",
  "run.started",
  "run.ended",
] as const;

/** Filters accept every type above, and `stream.*` for every control event. */
export const CONTROL_WILDCARD = "stream.*";
export const TEST_EVENT_TYPE = "webhook.test";

export function isEventFilter(value: string): boolean {
  return value === CONTROL_WILDCARD || (WEBHOOK_EVENT_TYPES as readonly string[]).includes(value);
}

export interface WebhookEvent {
  type: string;
  conversationId: string;
  /** Unique per endpoint for one event. */
  key: string;
  occurredAt: string;
  data: unknown;
  messageId?: string;
  sequence?: number;
  /** Who caused it, when known: an endpoint of that principal does not get its own messages back. */
  actorId?: string;
  /** Principals concerned who may no longer be participants (removed; a deleted conversation's members). */
  members?: string[];
  /** The conversation's organisation when the event says it (the row may be gone). */
  orgId?: string | null;
}

/**
 * Events delivered from the message log (./dispatcher.ts): stored messages, stored control messages, and
 * a run a message started. Every other webhook event is an outbox row written in its write's transaction
 * (src/domain/announced-write.ts).
 */
export function deliveredFromLog(event: DomainEvent): boolean {
  return event.type === "message.created" || event.type === "control.sent" || (event.type === "run.started" && event.startedBy !== undefined);
}

export function webhookEventOf(event: DomainEvent): WebhookEvent | undefined {
  const { conversationId } = event;
  const now = new Date().toISOString();
  switch (event.type) {
    case "message.created":
      return {
        type: event.type,
        conversationId,
        key: `message.created:${event.message.id}`,
        occurredAt: event.message.created_at,
        data: event.message,
        messageId: event.message.id,
        sequence: event.message.sequence,
        actorId: event.message.sender_id,
        orgId: event.message.org_id,
      };
    case "control.sent":
      return {
        type: event.control.event,
        conversationId,
        key: `control:${event.message.id}`,
        occurredAt: event.message.created_at,
        data: event.control,
        messageId: event.message.id,
        sequence: event.message.sequence,
        actorId: event.message.sender_id,
        orgId: event.message.org_id,
      };
    case "message.updated":
      return {
        type: event.type,
        conversationId,
        key: `message.updated:${event.message.id}:${event.message.version}`,
        occurredAt: event.message.updated_at ?? now,
        data: event.message,
        messageId: event.message.id,
        actorId: event.message.sender_id,
        orgId: event.message.org_id,
      };
    case "message.deleted":
      return {
        type: event.type,
        conversationId,
        key: `message.deleted:${event.message.id}`,
        occurredAt: event.message.deletedAt,
        data: event.message,
        messageId: event.message.id,
        actorId: event.deletedBy,
      };
    case "participant.added":
      return {
        type: event.type,
        conversationId,
        key: `participant.added:${event.participant.id}`,
        occurredAt: event.participant.joined_at,
        data: event.participant,
        orgId: event.conversation.org_id,
      };
    case "participant.removed":
      return {
        type: event.type,
        conversationId,
        key: `participant.removed:${event.participant.id}`,
        occurredAt: now,
        data: event.participant,
        members: [event.participant.user_id],
        orgId: event.orgId,
      };
    case "conversation.created":
      return {
        type: event.type,
        conversationId,
        key: `conversation.created:${conversationId}`,
        occurredAt: event.conversation.created_at,
        data: event.conversation,
        members: event.conversation.participants.map((p) => p.user_id),
        orgId: event.conversation.org_id,
      };
    case "conversation.updated":
      return {
        type: event.type,
        conversationId,
        key: `conversation.updated:${conversationId}:${event.conversation.updated_at}`,
        occurredAt: event.conversation.updated_at,
        data: event.conversation,
        orgId: event.conversation.org_id,
      };
    case "conversation.deleted":
      return {
        type: event.type,
        conversationId,
        key: `conversation.deleted:${conversationId}`,
        occurredAt: now,
        data: { id: conversationId },
        members: event.participantIds,
        orgId: event.orgId,
      };
    // Run ids are unique per conversation only.
    case "run.started":
      return {
        type: event.type,
        conversationId,
        key: `run.started:${conversationId}:${event.run.id}`,
        occurredAt: event.run.started_at,
        data: event.run,
        messageId: event.startedBy?.messageId,
        sequence: event.startedBy?.sequence,
        actorId: event.run.owner_id,
      };
    case "run.ended":
      return {
        type: event.type,
        conversationId,
        key: `run.ended:${conversationId}:${event.run.id}`,
        occurredAt: event.run.ended_at ?? now,
        data: event.run,
      };
    // Role changes are not webhook events (yet); stream deltas never are (the finished message is).
    case "participant.updated":
    case "message.delta":
      return undefined;
  }
}
