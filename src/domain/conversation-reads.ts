/**
 * What the realtime layer reads from the database, as domain functions: who may watch or type in a
 * conversation, the messages after a sequence (for replay and for filling gaps), and a conversation's
 * current state for catching up. The hub is given these (src/realtime/store.ts describes what it needs)
 * and runs no SQL of its own.
 */
import { and, asc, eq, gt, isNull, notInArray } from "drizzle-orm";
import type { Principal } from "../auth/principal";
import type { Executor } from "../db/client";
import { conversations, messages, participants, runs } from "../db/schema";
import { ENDED_STATES } from "./run-rules";
import { currentMembers, requireReader, requireTypist } from "./access";
import { toConversation, toMessage, toRun, type ConversationResource, type MessageResource, type RunResource } from "./resources";

export class ConversationReads {
  constructor(private readonly db: Executor) {}

  /** May `principal` watch the conversation, and as a participant or read-only? Throws the refusal. */
  async authorizeReader(principal: Principal, conversationId: string): Promise<{ lastSequence: number; participant: boolean }> {
    const access = await requireReader(this.db, principal, conversationId);
    return { lastSequence: Number(access.conversation.last_sequence), participant: access.participant !== undefined };
  }

  authorizeTyping(principal: Principal, conversationId: string): Promise<void> {
    return requireTypist(this.db, principal, conversationId);
  }

  /**
   * Messages above `since` in their current state, for resuming a stream: edited ones with their new
   * content, deleted ones with `deleted_at` and no content (a deleted message keeps its place in the
   * sequence, but what it said is gone for readers).
   */
  async messagesSince(conversationId: string, since: number, limit: number): Promise<MessageResource[]> {
    const rows = await this.db
      .select()
      .from(messages)
      .where(and(eq(messages.conversation_id, conversationId), gt(messages.sequence, since)))
      .orderBy(asc(messages.sequence))
      .limit(limit);
    return rows.map((row) => toMessage(row.deleted_at ? { ...row, content: "", metadata: {} } : row));
  }

  async message(messageId: string): Promise<MessageResource | undefined> {
    const [row] = await this.db.select().from(messages).where(eq(messages.id, messageId));
    return row && toMessage(row);
  }

  async conversation(conversationId: string): Promise<ConversationResource | undefined> {
    const [row] = await this.db.select().from(conversations).where(eq(conversations.id, conversationId));
    return row && toConversation(row);
  }

  /**
   * The conversations a principal joined after `since`, oldest first, at most `limit`: what a socket
   * reconnecting with `addedSince` was not told while it was away.
   */
  async conversationsJoinedSince(principalId: string, since: Date, limit: number): Promise<{ conversation: ConversationResource; role: string }[]> {
    const rows = await this.db
      .select({ conversation: conversations, role: participants.role })
      .from(participants)
      .innerJoin(conversations, eq(conversations.id, participants.conversation_id))
      .where(and(eq(participants.user_id, principalId), gt(participants.joined_at, since)))
      .orderBy(asc(participants.joined_at), asc(participants.conversation_id))
      .limit(limit);
    return rows.map((row) => ({ conversation: toConversation(row.conversation), role: row.role }));
  }

  /** Runs not ended, oldest first: a client joining late learns what is streaming and who owns it. */
  async openStreams(conversationId: string): Promise<MessageResource[]> {
    const rows = await this.db
      .select()
      .from(messages)
      .where(and(eq(messages.conversation_id, conversationId), eq(messages.stream_state, "streaming"), isNull(messages.deleted_at)))
      .orderBy(asc(messages.sequence));
    return rows.map(toMessage);
  }

  async openRuns(conversationId: string): Promise<RunResource[]> {
    const rows = await this.db
      .select()
      .from(runs)
      .where(and(eq(runs.conversation_id, conversationId), notInArray(runs.state, [...ENDED_STATES])))
      .orderBy(asc(runs.started_at), asc(runs.id));
    return rows.map(toRun);
  }

  /** The last sequence and the members now, or undefined when the conversation is gone. */
  async conversationState(conversationId: string): Promise<{ lastSequence: number; members: Set<string> } | undefined> {
    const [row] = await this.db
      .select({ last_sequence: conversations.last_sequence })
      .from(conversations)
      .where(eq(conversations.id, conversationId));
    if (!row) return undefined;
    return { lastSequence: Number(row.last_sequence), members: await currentMembers(this.db, conversationId) };
  }
}
