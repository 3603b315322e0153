/**
 * Control events (stream.pause, stream.handoff, ...): stored as `event` messages in the conversation's
 * sequence, then broadcast under their own event name.
 */
import { and, eq, or } from "drizzle-orm";
import { hasEntitlement, type Principal } from "../../auth/principal";
import { participants } from "../../db/schema";
import { requireParticipant } from "../../domain/access";
import { controlBroadcastOf, isRoutingEvent, requiredEntitlement, type ControlBroadcast } from "../../domain/control-events";
import { checkMetadata } from "../../domain/limits";
import { fail } from "../../core/errors";
import type { Scope } from "../../core/scope";
import type { Services } from "../../services";
import { insertMessage, type StoredMessage } from "../messages/service";
import { applyControl } from "../runs/service";
import { PRIORITIES, type RunPriority } from "../../domain/run-rules";
import type { SendControlInput } from "./model";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface ResolvedTarget {
  principalId: string;
  principalType: string;
  participantId?: string;
}

/** Route and handoff must name a participant of the conversation; other events carry the target as given. */
async function resolveTarget(
  services: Services,
  conversationId: string,
  event: string,
  target: SendControlInput["target"],
): Promise<ResolvedTarget | undefined> {
  if (target === undefined) {
    if (isRoutingEvent(event)) throw fail.target_required(`${event} needs a target: the participant to hand over to`);
    return undefined;
  }
  const principalId = typeof target === "string" ? target : target.principalId;
  const byParticipantId = typeof target === "string" && UUID.test(target);
  const [participant] = await services.database.db
    .select()
    .from(participants)
    .where(
      and(
        eq(participants.conversation_id, conversationId),
        byParticipantId ? or(eq(participants.id, principalId), eq(participants.user_id, principalId)) : eq(participants.user_id, principalId),
      ),
    )
    .limit(1);
  if (participant) {
    return { principalId: participant.user_id, principalType: participant.user_type, participantId: participant.id };
  }
  if (isRoutingEvent(event)) throw fail.invalid_target("target does not name a participant of this conversation");
  return { principalId, principalType: typeof target === "string" ? "user" : (target.principalType ?? "user") };
}

export interface StoredControl extends StoredMessage {
  broadcast: ControlBroadcast;
}

/**
 * A control event: applied to the runs it names (or, without `runId`, to every run that can take it and
 * that the caller may act on), each transition stored and broadcast; with no run to act on, stored and
 * broadcast as a plain control message, which needs the event's entitlement. Answers the first message.
 */
export async function sendControl(
  services: Services,
  principal: Principal,
  conversationId: string,
  input: SendControlInput,
  scope: Scope,
): Promise<StoredControl> {
  checkMetadata(services.config, input.metadata);
  // Checked before the target so that a stranger learns nothing about who participates.
  const { participant } = await requireParticipant(services.database.db, principal, conversationId);
  const target = await resolveTarget(services, conversationId, input.event, input.target);
  const priority = priorityOf(input);
  // A priority change that names no priority changes no run (kept as a plain event, as before runs).
  const transitions = input.event === "stream.priority" && !priority ? [] : await applyControl(
    services,
    principal,
    conversationId,
    { event: input.event, runId: input.runId, target, reason: input.reason, preemptedBy: input.preemptedBy, traceId: input.traceId, priority, metadata: input.metadata },
    scope,
    participant,
  );
  if (transitions.length > 0) {
    const { message } = transitions[0];
    return { message, json: JSON.stringify(message), replayed: false, broadcast: controlBroadcastOf(message) };
  }

  const entitlement = requiredEntitlement(input.event);
  if (!hasEntitlement(principal, entitlement)) {
    throw fail.missing_entitlement(`${input.event} needs the entitlement ${entitlement}`);
  }
  const control = {
    event: input.event,
    ...(target && { target }),
    ...(input.reason !== undefined && { reason: input.reason }),
    ...(input.preemptedBy !== undefined && { preemptedBy: input.preemptedBy }),
  };
  const stored = await insertMessage(services, principal, conversationId, scope, {
    content: input.event,
    contentType: "event",
    priority: "high",
    interruptible: false,
    preemptedBy: input.preemptedBy,
    traceId: input.traceId,
    metadata: {
      ...input.metadata,
      ...(scope.serviceId && { serviceId: scope.serviceId }),
      control,
    },
  }, ({ message }) => services.domainEvents.emit({ type: "control.sent", conversationId, message, control: controlBroadcastOf(message) }));
  return { ...stored, broadcast: controlBroadcastOf(stored.message) };
}

/** stream.priority takes the new priority from `priority`, or else from `metadata.priority`. */
function priorityOf(input: SendControlInput): RunPriority | undefined {
  const value = input.priority ?? input.metadata?.priority;
  if (value === undefined) {
    if (input.event === "stream.priority" && input.runId !== undefined) {
      throw fail.invalid_input("stream.priority needs a priority: low, normal, high or critical");
    }
    return undefined;
  }
  if (!(PRIORITIES as readonly unknown[]).includes(value)) throw fail.invalid_input("priority must be low, normal, high or critical");
  return value as RunPriority;
}
