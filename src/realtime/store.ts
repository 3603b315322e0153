/**
 * What the hub needs to read, as an interface: the domain implements it (src/domain/conversation-reads.ts)
 * and the hub runs no SQL of its own. Every method that decides access throws the domain's AppError.
 */
import type { Principal } from "../auth/principal";
import type { ConversationResource, MessageResource, RunResource } from "../domain/resources";
import type { StreamHolder, StreamPeers } from "../domain/stream-peers";

export interface RealtimeStore {
  /** May the principal watch the conversation? As a participant (with presence) or read-only. */
  authorizeReader(principal: Principal, conversationId: string): Promise<{ lastSequence: number; participant: boolean }>;
  /** May the principal announce typing there? */
  authorizeTyping(principal: Principal, conversationId: string): Promise<void>;
  /** Messages above `since`, ascending, in their current state (deleted ones without content). */
  messagesSince(conversationId: string, since: number, limit: number): Promise<MessageResource[]>;
  /** Streaming messages still open in the database (stream_state streaming), ascending. */
  openStreams(conversationId: string): Promise<MessageResource[]>;
  /** Runs not ended yet, oldest first. */
  openRuns(conversationId: string): Promise<RunResource[]>;
  message(messageId: string): Promise<MessageResource | undefined>;
  conversation(conversationId: string): Promise<ConversationResource | undefined>;
  /** Conversations the principal joined after `since`, oldest first, at most `limit`. */
  conversationsJoinedSince(principalId: string, since: Date, limit: number): Promise<{ conversation: ConversationResource; role: string }[]>;
  /** Last sequence and current members, or undefined once the conversation is deleted. */
  conversationState(conversationId: string): Promise<{ lastSequence: number; members: ReadonlySet<string> } | undefined>;
}

/**
 * The content so far of streams this instance holds in memory or mirrors from another instance
 * (docs/streaming.md). Read synchronously by joins, in the same step that subscribes, so a replayed
 * content and the live deltas after it meet exactly.
 */
export interface LiveStreams extends StreamHolder {
  contentOf(messageId: string): string | undefined;
  /** Brings here the content so far of a stream held elsewhere (a mirror), before a join reads it. */
  follow(messageId: string, conversationId: string): Promise<void>;
  /** The other instances, reached through the hub's broker. */
  usePeers(peers: StreamPeers): void;
}
