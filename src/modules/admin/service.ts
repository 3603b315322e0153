/**
 * The admin API for system admins (super admins, or holders of `messaging:admin`). An admin bound to
 * organisations sees only those; see `orgScopeOf`.
 */
import { and, count, countDistinct, desc, eq, gt, inArray, isNull, type SQL, sql } from "drizzle-orm";
import { isSystemAdmin, type Principal } from "../../auth/principal";
import { conversations, messages, participants } from "../../db/schema";
import { inOrgScope, loadConversation, orgScopeOf } from "../../domain/access";
import { toConversation, toMessage, toParticipant } from "../../domain/resources";
import { fail, notFound } from "../../core/errors";
import type { Scope } from "../../core/scope";
import type { Services } from "../../services";
import { byLatestActivity, removeConversation } from "../conversations/service";
import { addAs, removeParticipantAsAdmin, type ParticipantType, type Role } from "../participants/service";

export function requireSystemAdmin(principal: Principal): void {
  if (!isSystemAdmin(principal)) throw fail.admin_required("This needs a system admin (messaging:admin)");
}

/** The org filter of an admin query: the requested org (which must be in scope), else the admin's scope. */
function orgFilter(principal: Principal, requested: string | undefined, scope: Scope): SQL | undefined {
  const orgId = requested ?? scope.orgId;
  const allowed = orgScopeOf(principal);
  if (orgId) {
    if (allowed && !allowed.includes(orgId)) throw fail.org_forbidden("That organization is outside your admin scope");
    return eq(conversations.org_id, orgId);
  }
  return allowed ? inArray(conversations.org_id, allowed.length ? allowed : [""]) : undefined;
}

async function conversationInScope(services: Services, principal: Principal, conversationId: string) {
  const conversation = await loadConversation(services.database.db, conversationId);
  // Out of scope looks the same as absent: an org admin learns nothing of other tenants.
  if (!inOrgScope(principal, conversation.org_id)) throw notFound("Conversation");
  return conversation;
}

export async function adminListConversations(
  services: Services,
  principal: Principal,
  query: { orgId?: string; type?: "private" | "group"; limit?: number; offset?: number },
  scope: Scope,
) {
  requireSystemAdmin(principal);
  const limit = query.limit ?? 50;
  const offset = query.offset ?? 0;
  const where = and(orgFilter(principal, query.orgId, scope), query.type ? eq(conversations.type, query.type) : undefined);
  const { db } = services.database;
  const [items, [{ total }]] = await Promise.all([
    db.select().from(conversations).where(where).orderBy(...byLatestActivity).limit(limit).offset(offset),
    db.select({ total: count() }).from(conversations).where(where),
  ]);
  return { items: items.map(toConversation), limit, offset, total: Number(total) };
}

export async function adminConversationDetail(services: Services, principal: Principal, conversationId: string) {
  requireSystemAdmin(principal);
  const conversation = await conversationInScope(services, principal, conversationId);
  const { db } = services.database;
  const [members, recent] = await Promise.all([
    db.select().from(participants).where(eq(participants.conversation_id, conversationId)).orderBy(participants.joined_at),
    db
      .select()
      .from(messages)
      .where(and(eq(messages.conversation_id, conversationId), isNull(messages.deleted_at)))
      .orderBy(desc(messages.sequence))
      .limit(50),
  ]);
  return {
    conversation: toConversation(conversation),
    participants: members.map(toParticipant),
    recentMessages: recent.reverse().map(toMessage),
  };
}

export async function adminDeleteConversation(services: Services, principal: Principal, conversationId: string) {
  requireSystemAdmin(principal);
  await conversationInScope(services, principal, conversationId);
  await removeConversation(services, conversationId);
}

export async function adminUserConversations(
  services: Services,
  principal: Principal,
  userId: string,
  query: { orgId?: string; limit?: number; offset?: number },
  scope: Scope,
) {
  requireSystemAdmin(principal);
  const limit = query.limit ?? 100;
  const offset = query.offset ?? 0;
  const theirs = services.database.db
    .select({ id: participants.conversation_id })
    .from(participants)
    .where(eq(participants.user_id, userId));
  const where = and(inArray(conversations.id, theirs), orgFilter(principal, query.orgId, scope));
  const { db } = services.database;
  const [rows, [{ total }]] = await Promise.all([
    db.select().from(conversations).where(where).orderBy(...byLatestActivity).limit(limit).offset(offset),
    db.select({ total: count() }).from(conversations).where(where),
  ]);
  return { items: rows.map(toConversation), limit, offset, total: Number(total) };
}

export async function adminAddParticipant(
  services: Services,
  principal: Principal,
  conversationId: string,
  input: { userId: string; userType?: ParticipantType; role: Role },
) {
  requireSystemAdmin(principal);
  await conversationInScope(services, principal, conversationId);
  return (await addAs(services, conversationId, input.userId, input.userType ?? "user", input.role)).participant;
}

export async function adminRemoveParticipant(services: Services, principal: Principal, conversationId: string, userId: string) {
  requireSystemAdmin(principal);
  await conversationInScope(services, principal, conversationId);
  await removeParticipantAsAdmin(services, conversationId, userId);
}

export async function adminStats(services: Services, principal: Principal, query: { orgId?: string }, scope: Scope) {
  requireSystemAdmin(principal);
  const filter = orgFilter(principal, query.orgId, scope);
  const { db } = services.database;
  const inScope = db.select({ id: conversations.id }).from(conversations).where(filter);
  const [[c], [m], [p], [active]] = await Promise.all([
    db.select({ n: count() }).from(conversations).where(filter),
    db.select({ n: count() }).from(messages).where(and(inArray(messages.conversation_id, inScope), isNull(messages.deleted_at))),
    db.select({ n: countDistinct(participants.user_id) }).from(participants).where(inArray(participants.conversation_id, inScope)),
    db
      .select({ n: count() })
      .from(conversations)
      .where(and(filter, gt(conversations.last_message_at, sql`now() - interval '24 hours'`))),
  ]);
  return {
    totalConversations: Number(c.n),
    totalMessages: Number(m.n),
    uniqueParticipants: Number(p.n),
    activeConversations24h: Number(active.n),
  };
}
