/**
 * The conversation's timeline as the console shows it: messages in sequence order, control events
 * among them as events (whether they came stored, replayed as `message:new`, or live as `stream.*`).
 */
import type { ControlBroadcast, Message } from "../client/index.ts";

export interface ControlInfo {
  event: string;
  runId?: string;
  from?: string;
  to?: string;
  reason?: string;
  target?: unknown;
  priority?: string;
}

/** The control event a stored message records, or undefined for an ordinary message. */
export function controlOf(message: Message): ControlInfo | undefined {
  if (message.content_type !== "event") return undefined;
  const control = (message.metadata.control ?? {}) as Partial<ControlInfo>;
  return { ...control, event: control.event ?? message.content, runId: message.run_id ?? undefined };
}

/** A live `stream.*` frame as the message it was stored as, so that it takes its place in the timeline. */
export function messageOfBroadcast(control: ControlBroadcast): Message {
  const { event, runId, from, to, reason, target, priority } = control;
  return {
    id: control.messageId,
    conversation_id: control.conversationId,
    sender_id: control.senderId,
    sender_type: control.senderType as Message["sender_type"],
    content: event,
    content_type: "event",
    reply_to: null,
    org_id: null,
    run_id: runId ?? null,
    trace_id: control.traceId ?? null,
    sequence: control.sequence,
    priority: "high",
    interruptible: false,
    preempted_by: control.preemptedBy ?? null,
    created_at: control.effectiveAt,
    updated_at: null,
    deleted_at: null,
    metadata: { control: { event, from, to, reason, target, priority } },
    version: 1,
    data_class: null,
    policy_ref: null,
    stream_state: null,
  };
}

const VERBS: Record<string, string> = {
  "stream.pause": "paused",
  "stream.resume": "resumed",
  "stream.preempt": "preempted",
  "stream.cancel": "cancelled",
  "stream.route": "routed",
  "stream.handoff": "handed off",
  "stream.priority": "changed the priority of",
};

/** "paused run r1 (active → paused)", without the sender (the caller names them). */
export function describeControl(control: ControlInfo): string {
  const verb = VERBS[control.event] ?? `sent ${control.event} to`;
  const subject = control.runId ? `run ${control.runId}` : "every run";
  const target = (control.target as { principalId?: string } | undefined)?.principalId;
  const parts = [`${verb} ${subject}`];
  if (target) parts.push(`to ${target}`);
  if (control.priority && control.event === "stream.priority") parts.push(`to ${control.priority}`);
  if (control.from && control.to && control.from !== control.to) parts.push(`(${control.from} → ${control.to})`);
  const text = parts.join(" ");
  return control.reason ? `${text}: ${control.reason}` : text;
}

/** Messages by id, in sequence order; a later copy (an edit, a stream's end) replaces an earlier one. */
export function inSequence(messages: Iterable<Message>): Message[] {
  return [...messages].sort((a, b) => a.sequence - b.sequence);
}
