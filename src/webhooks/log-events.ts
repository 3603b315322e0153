/**
 * The webhook events of a stored message (the message log is the outbox of sends, ./dispatcher.ts): their
 * keys (as ./event-types.ts makes them for the same events), their `webhook-id` per endpoint, and what
 * each carries, in the REST shapes.
 */
import type { MessageRow } from "../db/schema";
import { controlBroadcastOf } from "../domain/control-events";
import { runStartedBy, toMessage } from "../domain/resources";

/** A message as READ_LOG (./pair-statements.ts) answers it: for a pair, with the events its endpoint takes. */
export type LoggedMessage = MessageRow & { pair_endpoint: string; pair_conversation: string; log_end: number | null; types: string[] | null };

/** The key of one of a message's events: `run.started`, its control event, or `message.created`. */
export function logEventKey(message: Pick<MessageRow, "id" | "conversation_id" | "run_id" | "content_type">, type: string): string {
  if (type === "run.started") return `run.started:${message.conversation_id}:${message.run_id}`;
  if (message.content_type === "event") return `control:${message.id}`;
  return `message.created:${message.id}`;
}

/** What one of a message's events carries. */
export function logEventData(message: MessageRow, type: string): unknown {
  const resource = toMessage(message);
  if (type === "run.started") return runStartedBy(resource);
  if (message.content_type === "event") return controlBroadcastOf(resource);
  return resource;
}

/**
 * The `webhook-id` of a message's event for one endpoint, the same on every attempt and instance (and the
 * id of its row, if it gets one): a UUID made of a SHA-256 of the endpoint and the event's key.
 */
export function logDeliveryId(endpointId: string, eventKey: string): string {
  const hex = new Bun.CryptoHasher("sha256").update(`${endpointId}\n${eventKey}`).digest("hex");
  const variant = ((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
