/**
 * Who may do what in a conversation. Every domain function starts here, so a rule is written once for
 * REST and the WebSocket alike.
 */
import { and, eq } from "drizzle-orm";
import { requireActingReach } from "../auth/act-as";
import { ENTITLEMENT, hasEntitlement, isSystemAdmin, type Principal } from "../auth/principal";
import type { Executor } from "../db/client";
import { conversations, participants, type ConversationRow, type ParticipantRow } from "../db/schema";
import { fail, notFound } from "../core/errors";

export type ConversationRole = ParticipantRow["role"];

export interface ConversationAccess {
  conversation: ConversationRow;
  /** Absent when the caller reads as a system admin or observer without being a participant. */
  participant?: ParticipantRow;
}

export async function loadConversation(db: Executor, conversationId: string): Promise<ConversationRow> {
  const [conversation] = await db.select().from(conversations).where(eq(conversations.id, conversationId));
  if (!conversation) throw notFound("Conversation");
  return conversation;
}

export async function findParticipant(
  db: Executor,
  conversationId: string,
  userId: string,
): Promise<ParticipantRow | undefined> {
  const [row] = await db
    .select()
    .from(participants)
    .where(and(eq(participants.conversation_id, conversationId), eq(participants.user_id, userId)));
  return row;
}

/** The caller must be a participant (optionally with one of `roles`). */
export async function requireParticipant(
  db: Executor,
  principal: Principal,
  conversationId: string,
  roles?: ConversationRole[],
): Promise<Required<ConversationAccess>> {
  const conversation = await loadConversation(db, conversationId);
  const participant = await findParticipant(db, conversationId, principal.id);
  if (!participant) throw fail.not_participant("You are not a participant of this conversation");
  requireActingReach(principal, conversation.org_id);
  if (roles && !roles.includes(participant.role)) {
    throw fail.insufficient_role(`This needs the role ${roles.join(" or ")} in the conversation`);
  }
  return { conversation, participant };
}

/** Typing is a write: participants only, not read-only observers. */
export async function requireTypist(db: Executor, principal: Principal, conversationId: string): Promise<void> {
  await requireParticipant(db, principal, conversationId);
}

/** Who participates in a conversation now (principal ids): memberships end when they are not in it. */
export async function currentMembers(db: Executor, conversationId: string): Promise<Set<string>> {
  const rows = await db.select({ user_id: participants.user_id }).from(participants).where(eq(participants.conversation_id, conversationId));
  return new Set(rows.map((row) => row.user_id));
}

/** Readers: participants, system admins, and agents entitled to observe (read-only). */
export function mayObserve(principal: Principal): boolean {
  return isSystemAdmin(principal) || hasEntitlement(principal, ENTITLEMENT.observe);
}

/**
 * The organisations an admin or observer acts on: all (undefined) for super admins and for grants bound to
 * no organisation, which are installation-wide; otherwise the principal's own organisations.
 */
export function orgScopeOf(principal: Principal): string[] | undefined {
  if (principal.isSuperAdmin || principal.orgs.length === 0) return undefined;
  return principal.orgs.map((o) => o.id);
}

export function inOrgScope(principal: Principal, orgId: string | null): boolean {
  const scope = orgScopeOf(principal);
  return !scope || (orgId !== null && scope.includes(orgId));
}

export async function requireReader(db: Executor, principal: Principal, conversationId: string): Promise<ConversationAccess> {
  const conversation = await loadConversation(db, conversationId);
  const participant = await findParticipant(db, conversationId, principal.id);
  if (participant) {
    requireActingReach(principal, conversation.org_id);
    return { conversation, participant };
  }
  if (mayObserve(principal) && inOrgScope(principal, conversation.org_id)) return { conversation };
  throw fail.not_participant("You are not a participant of this conversation");
}
