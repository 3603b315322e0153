/**
 * Control events: the one list of their names, who may send which, and what a stored control message
 * announces. The REST schema, the WebSocket event lists, the bootstrap document and the SDK's copy (pinned
 * by a test) all derive from CONTROL_EVENTS.
 */
import { ENTITLEMENT } from "../auth/principal";
import type { MessageResource } from "./resources";

export const CONTROL_EVENTS = [
  "stream.pause",
  "stream.resume",
  "stream.preempt",
  "stream.route",
  "stream.handoff",
  "stream.cancel",
  "stream.priority",
] as const;

export type ControlEvent = (typeof CONTROL_EVENTS)[number];

/** Events that hand a stream to someone else: they name a participant as target. */
export const ROUTING_EVENTS: ReadonlySet<ControlEvent> = new Set(["stream.route", "stream.handoff"]);

export function isRoutingEvent(event: string): boolean {
  return ROUTING_EVENTS.has(event as ControlEvent);
}

export function requiredEntitlement(event: string): string {
  return isRoutingEvent(event) ? ENTITLEMENT.route : ENTITLEMENT.interrupt;
}

/** The payload of a `stream.*` WebSocket event (docs/protocol.md). */
export interface ControlBroadcast {
  event: string;
  conversationId: string;
  messageId: string;
  sequence: number;
  senderId: string;
  senderType: string;
  target?: unknown;
  reason?: string;
  preemptedBy?: string;
  runId?: string;
  traceId?: string;
  /** The run's state before and after, when the event applied to a run. */
  from?: string;
  to?: string;
  /** stream.priority: the run's new priority. */
  priority?: string;
  effectiveAt: string;
  metadata?: Record<string, unknown>;
}

/**
 * The `stream.*` event of a stored control message. Built from the message alone, so that an instance
 * reading it back from the database (a gap after a lost notification) sends what the live event carried.
 */
export function controlBroadcastOf(message: MessageResource): ControlBroadcast {
  const { control, serviceId: _serviceId, ...metadata } = message.metadata as {
    control?: { event: string; target?: unknown; reason?: string; preemptedBy?: string; from?: string; to?: string; priority?: string };
    serviceId?: string;
  } & Record<string, unknown>;
  return {
    event: control?.event ?? message.content,
    conversationId: message.conversation_id,
    messageId: message.id,
    sequence: message.sequence,
    senderId: message.sender_id,
    senderType: message.sender_type,
    ...(control?.target !== undefined && { target: control.target }),
    ...(control?.reason !== undefined && { reason: control.reason }),
    ...(control?.preemptedBy !== undefined && { preemptedBy: control.preemptedBy }),
    ...(message.run_id !== null && { runId: message.run_id }),
    ...(message.trace_id !== null && { traceId: message.trace_id }),
    ...(control?.from !== undefined && { from: control.from }),
    ...(control?.to !== undefined && { to: control.to }),
    ...(control?.priority !== undefined && { priority: control.priority }),
    effectiveAt: message.created_at,
    ...(Object.keys(metadata).length > 0 && { metadata }),
  };
}
