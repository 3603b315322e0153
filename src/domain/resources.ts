/**
 * API resources (snake_case, docs/api.md, Resources). Rows of the messaging tables already have these
 * field names; a resource is a row without its internal columns, with times as ISO strings.
 */
import type { ConversationRow, MessageRow, ParticipantRow, RunRow } from "../db/schema";

type Iso<T> = { [K in keyof T]: T[K] extends Date ? string : T[K] extends Date | null ? string | null : T[K] };

/** `stream_holder` is internal: which instance holds an open stream. */
export type MessageResource = Iso<Omit<MessageRow, "stream_holder">>;
export type ParticipantResource = Iso<ParticipantRow>;
export type ConversationResource = Iso<Omit<ConversationRow, "last_sequence" | "last_message_at">>;
export type ConversationWithParticipants = ConversationResource & { participants: ParticipantResource[] };
export type RunResource = Iso<RunRow>;

const iso = (value: Date | string | null | undefined): string | null =>
  value == null ? null : value instanceof Date ? value.toISOString() : new Date(value).toISOString();

/** Raw rows may carry jsonb as text on some paths; normalise once here. */
const object = (value: unknown): Record<string, unknown> =>
  value == null ? {} : typeof value === "string" ? JSON.parse(value) : (value as Record<string, unknown>);

export function toMessage(row: MessageRow): MessageResource {
  return {
    id: row.id,
    conversation_id: row.conversation_id,
    sender_id: row.sender_id,
    sender_type: row.sender_type,
    content: row.content,
    content_type: row.content_type,
    reply_to: row.reply_to ?? null,
    org_id: row.org_id ?? null,
    run_id: row.run_id ?? null,
    trace_id: row.trace_id ?? null,
    sequence: Number(row.sequence),
    priority: row.priority,
    interruptible: row.interruptible,
    preempted_by: row.preempted_by ?? null,
    created_at: iso(row.created_at)!,
    updated_at: iso(row.updated_at),
    deleted_at: iso(row.deleted_at),
    metadata: object(row.metadata),
    version: Number(row.version),
    data_class: row.data_class ?? null,
    policy_ref: row.policy_ref ?? null,
    stream_state: row.stream_state ?? null,
  };
}

export function toParticipant(row: ParticipantRow): ParticipantResource {
  return {
    id: row.id,
    conversation_id: row.conversation_id,
    user_id: row.user_id,
    user_type: row.user_type,
    role: row.role,
    joined_at: iso(row.joined_at)!,
    last_read_at: iso(row.last_read_at),
  };
}

export function toConversation(row: ConversationRow): ConversationResource {
  return {
    id: row.id,
    type: row.type,
    name: row.name ?? null,
    description: row.description ?? null,
    org_id: row.org_id ?? null,
    created_by: row.created_by,
    created_at: iso(row.created_at)!,
    updated_at: iso(row.updated_at)!,
    metadata: object(row.metadata),
  };
}

export function toRun(row: RunRow): RunResource {
  return {
    id: row.id,
    conversation_id: row.conversation_id,
    owner_id: row.owner_id,
    owner_type: row.owner_type,
    state: row.state,
    priority: row.priority,
    interruptible: row.interruptible,
    started_at: iso(row.started_at)!,
    updated_at: iso(row.updated_at)!,
    ended_at: iso(row.ended_at),
    end_reason: row.end_reason ?? null,
    preempted_by: row.preempted_by ?? null,
    metadata: object(row.metadata),
  };
}

/**
 * The run a message started by naming it: what the send statement inserted (the same `now()` for both
 * rows), without reading it back.
 */
export function runStartedBy(message: MessageResource): RunResource {
  return {
    id: message.run_id!,
    conversation_id: message.conversation_id,
    owner_id: message.sender_id,
    owner_type: message.sender_type,
    state: "active",
    priority: message.priority,
    interruptible: message.interruptible,
    started_at: message.created_at,
    updated_at: message.created_at,
    ended_at: null,
    end_reason: null,
    preempted_by: null,
    metadata: {},
  };
}
