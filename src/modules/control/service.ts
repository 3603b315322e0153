/**
 * Control events (stream.pause, stream.handoff, ...): stored as `event` messages in the conversation's
 * sequence, then broadcast under their own event name.
 */
import { and, eq, or } from "drizzle-orm";
import { ENTITLEMENT, hasEntitlement, type Principal } from "../../auth/principal";
import { participants } from "../../db/schema";
import { requireParticipant } from "../../domain/access";
import type { ControlBroadcast } from "../../domain/events";
import type { MessageResource } from "../../domain/resources";
import { checkMetadata } from "../../domain/limits";
import { badRequest, forbidden } from "../../http/errors";
import type { Scope } from "../../http/scope";
import type { Services } from "../../services";
import { insertMessage, type StoredMessage } from "../messages/service";
import type { SendControlInput } from "./model";

const ROUTING_EVENTS = new Set(["stream.route", "stream.handoff"]);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function requiredEntitlement(event: string): string {
  return ROUTING_EVENTS.has(event) ? ENTITLEMENT.route : ENTITLEMENT.interrupt;
}

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
    if (ROUTING_EVENTS.has(event)) throw badRequest(`${event} needs a target: the participant to hand over to`, "target_required");
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
  if (ROUTING_EVENTS.has(event)) throw badRequest("target does not name a participant of this conversation", "invalid_target");
  return { principalId, principalType: typeof target === "string" ? "user" : (target.principalType ?? "user") };
}

/**
 * The `stream.*` event of a stored control message. Built from the message alone, so that an instance
 * reading it back from the database (a gap after a lost notification) sends what the live event carried.
 */
export function controlBroadcastOf(message: MessageResource): ControlBroadcast {
  const { control, serviceId: _serviceId, ...metadata } = message.metadata as {
    control?: { event: string; target?: unknown; reason?: string; preemptedBy?: string };
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
    effectiveAt: message.created_at,
    ...(Object.keys(metadata).length > 0 && { metadata }),
  };
}

export interface StoredControl extends StoredMessage {
  broadcast: ControlBroadcast;
}

export async function sendControl(
  services: Services,
  principal: Principal,
  conversationId: string,
  input: SendControlInput,
  scope: Scope,
): Promise<StoredControl> {
  const entitlement = requiredEntitlement(input.event);
  if (!hasEntitlement(principal, entitlement)) {
    throw forbidden(`${input.event} needs the entitlement ${entitlement}`, "missing_entitlement");
  }
  checkMetadata(services.config, input.metadata);
  // Checked before the target so that a stranger learns nothing about who participates.
  await requireParticipant(services.database.db, principal, conversationId);
  const target = await resolveTarget(services, conversationId, input.event, input.target);
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
    runId: input.runId,
    traceId: input.traceId,
    metadata: {
      ...input.metadata,
      ...(scope.serviceId && { serviceId: scope.serviceId }),
      control,
    },
  });
  const { message } = stored;
  const broadcast = controlBroadcastOf(message);
  services.domainEvents.emit({ type: "control.sent", conversationId, message, control: broadcast });
  return { ...stored, broadcast };
}
