/**
 * What the domain announces after a write has committed. The realtime hub turns each event into exactly
 * one pre-serialised frame published on the conversation's topic (and, with several instances, a NOTIFY).
 */
import type { ControlBroadcast } from "./control-events";
import type { ConversationResource, ConversationWithParticipants, MessageResource, ParticipantResource, RunResource } from "./resources";

export type DomainEvent =
  | { type: "message.created"; conversationId: string; message: MessageResource; json: string }
  | { type: "message.updated"; conversationId: string; message: MessageResource; json: string }
  /**
   * A piece appended to a streaming message (docs/streaming.md): not stored one by one, and frequent (an
   * agent may send hundreds a second). `json` is the `message:delta` payload, serialised once.
   */
  | { type: "message.delta"; conversationId: string; messageId: string; offset: number; length: number; json: string }
  | {
      type: "message.deleted";
      conversationId: string;
      message: { id: string; conversationId: string; sequence: number; deletedAt: string };
      /** Who deleted it (the sender, or an owner or admin of the conversation). */
      deletedBy: string;
    }
  /** `run`: the run after the transition, when the event applied to one. */
  | { type: "control.sent"; conversationId: string; message: MessageResource; control: ControlBroadcast; run?: RunResource }
  /** `startedBy`: the message that started the run by naming it (the send statement wrote both). */
  | { type: "run.started"; conversationId: string; run: RunResource; startedBy?: { messageId: string; sequence: number } }
  | { type: "run.ended"; conversationId: string; run: RunResource }
  /** `conversation`: the conversation the participant was added to, as it stood then. */
  | { type: "participant.added"; conversationId: string; participant: ParticipantResource; conversation: ConversationResource }
  /** `orgId`: the conversation's organisation, for whom the removal may be told (an acting socket's reach). */
  | { type: "participant.removed"; conversationId: string; participant: ParticipantResource; orgId: string | null }
  | { type: "participant.updated"; conversationId: string; participant: ParticipantResource }
  | { type: "conversation.created"; conversationId: string; conversation: ConversationWithParticipants }
  | { type: "conversation.updated"; conversationId: string; conversation: ConversationResource }
  /** `orgId` and `participantIds`: the conversation's, as they were just before the deletion. */
  | { type: "conversation.deleted"; conversationId: string; orgId: string | null; participantIds: string[] };
