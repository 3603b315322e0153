/**
 * Conversations: create, read, update, delete, list. No HTTP here; REST and the WebSocket call these.
 */
import { and, count, desc, eq, inArray, isNull, or, sql } from "drizzle-orm";
import { actingOrgReach } from "../../auth/act-as";
import { isOrgMember, type Principal } from "../../auth/principal";
import { conversations, messages, participants, type ParticipantRow } from "../../db/schema";
import { requireParticipant, requireReader } from "../../domain/access";
import { checkMetadata } from "../../domain/limits";
import {
  toConversation,
  toParticipant,
  type ConversationResource,
  type ConversationWithParticipants,
} from "../../domain/resources";
import { fail, notFound } from "../../core/errors";
import { writeAndAnnounce } from "../../domain/announced-write";
import type { Scope } from "../../core/scope";
import type { Services } from "../../services";
import type { CreateConversationInput, UpdateConversationInput } from "./model";

export const PRIVATE_CONVERSATION_LIMIT = 2;

/** Latest activity: the last message, or the last change to the conversation itself (newest first). */
export const byLatestActivity = [
  desc(sql`greatest(${conversations.last_message_at}, ${conversations.updated_at})`),
  desc(conversations.id),
];

/** The org a request acts in: the explicit parameter, else X-Org-Id. The caller must belong to it. */
export function resolveOrg(principal: Principal, explicit: string | undefined, scope: Scope): string | undefined {
  const orgId = explicit ?? scope.orgId;
  if (orgId && !isOrgMember(principal, orgId)) {
    throw fail.org_forbidden("You are not a member of this organization");
  }
  return orgId;
}

export async function createConversation(
  services: Services,
  principal: Principal,
  input: CreateConversationInput,
  scope: Scope,
): Promise<ConversationWithParticipants> {
  const name = input.name?.trim();
  if (input.type === "group" && !name) throw fail.name_required("A group conversation needs a name");
  checkMetadata(services.config, input.metadata);
  const orgId = resolveOrg(principal, input.orgId, scope);

  // The creator is the owner; listed participants join as members (duplicates and the creator dropped).
  const others = new Map<string, ParticipantRow["user_type"]>();
  for (const p of input.participants ?? []) {
    if (p.userId !== principal.id) others.set(p.userId, p.userType ?? "user");
  }
  if (input.type === "private" && others.size + 1 > PRIVATE_CONVERSATION_LIMIT) {
    throw fail.too_many_participants("A private conversation holds at most two participants");
  }

  return writeAndAnnounce(services, async (tx, announce) => {
    const [conversation] = await tx
      .insert(conversations)
      .values({
        type: input.type,
        name: name ?? null,
        description: input.description ?? null,
        org_id: orgId ?? null,
        created_by: principal.id,
        metadata: input.metadata ?? {},
      })
      .returning();
    const rows = await tx
      .insert(participants)
      .values([
        { conversation_id: conversation.id, user_id: principal.id, user_type: principal.type, role: "owner" as const },
        ...[...others].map(([userId, userType]) => ({
          conversation_id: conversation.id,
          user_id: userId,
          user_type: userType,
          role: "member" as const,
        })),
      ])
      .returning();
    const created = { ...toConversation(conversation), participants: rows.map(toParticipant) };
    announce({ type: "conversation.created", conversationId: created.id, conversation: created });
    return created;
  });
}

export async function getConversation(
  services: Services,
  principal: Principal,
  conversationId: string,
): Promise<ConversationWithParticipants> {
  const { db } = services.database;
  const { conversation } = await requireReader(db, principal, conversationId);
  const rows = await db
    .select()
    .from(participants)
    .where(eq(participants.conversation_id, conversationId))
    .orderBy(participants.joined_at, participants.id);
  return { ...toConversation(conversation), participants: rows.map(toParticipant) };
}

/** Unread messages are counted up to this many: a list shows "100+" rather than scanning a long backlog. */
export const UNREAD_COUNT_LIMIT = 100;

/** A conversation as its participant lists it: with when they last read it and how much came since. */
export type ConversationSummary = ConversationResource & { last_read_at: string | null; unread_count: number };

export async function listConversations(
  services: Services,
  principal: Principal,
  options: { orgId?: string; limit?: number; offset?: number },
  scope: Scope,
): Promise<{ items: ConversationSummary[]; limit: number; offset: number; total: number }> {
  const orgId = resolveOrg(principal, options.orgId, scope);
  const { db } = services.database;
  const mine = and(eq(participants.conversation_id, conversations.id), eq(participants.user_id, principal.id));
  const reach = actingOrgReach(principal);
  const where = and(
    orgId ? eq(conversations.org_id, orgId) : undefined,
    // Acting for someone lists only what the acting reaches (src/auth/act-as.ts).
    reach ? or(isNull(conversations.org_id), inArray(conversations.org_id, reach)) : undefined,
  );
  // Others' messages (not control events, not deleted) after the reader's last read, through the
  // (conversation_id, created_at) index, stopping at the limit.
  const unread = sql<number>`(select count(*) from (select 1 from ${messages} m
    where m.conversation_id = ${conversations.id} and m.deleted_at is null and m.sender_id <> ${principal.id}
      and m.content_type <> 'event'
      and (${participants.last_read_at} is null or m.created_at > ${participants.last_read_at})
    limit ${UNREAD_COUNT_LIMIT}) as unread)`.mapWith(Number);
  const limit = options.limit ?? 100;
  const offset = options.offset ?? 0;
  const [rows, [{ total }]] = await Promise.all([
    db
      .select({ conversation: conversations, lastReadAt: participants.last_read_at, unread })
      .from(conversations)
      .innerJoin(participants, mine)
      .where(where)
      .orderBy(...byLatestActivity)
      .limit(limit)
      .offset(offset),
    db.select({ total: count() }).from(conversations).innerJoin(participants, mine).where(where),
  ]);
  const items = rows.map((row) => ({
    ...toConversation(row.conversation),
    last_read_at: row.lastReadAt ? new Date(row.lastReadAt).toISOString() : null,
    unread_count: row.unread,
  }));
  return { items, limit, offset, total: Number(total) };
}

export async function updateConversation(
  services: Services,
  principal: Principal,
  conversationId: string,
  input: UpdateConversationInput,
): Promise<ConversationResource> {
  const { db } = services.database;
  checkMetadata(services.config, input.metadata);
  const name = input.name?.trim();
  if (input.name !== undefined && !name) throw fail.name_required("name cannot be blank");
  const { conversation } = await requireParticipant(db, principal, conversationId, ["owner", "admin"]);
  const changes: Partial<typeof conversations.$inferInsert> = { updated_at: sql`now()` as unknown as Date };
  if (name !== undefined) changes.name = name;
  if (input.description !== undefined) changes.description = input.description;
  if (input.metadata !== undefined) changes.metadata = input.metadata;
  if (conversation.type === "group" && changes.name === null) throw fail.name_required("A group conversation needs a name");
  return writeAndAnnounce(services, async (tx, announce) => {
    const [updated] = await tx.update(conversations).set(changes).where(eq(conversations.id, conversationId)).returning();
    if (!updated) throw notFound("Conversation");
    const resource = toConversation(updated);
    announce({ type: "conversation.updated", conversationId, conversation: resource });
    return resource;
  });
}

export async function deleteConversation(services: Services, principal: Principal, conversationId: string): Promise<void> {
  const { db } = services.database;
  await requireParticipant(db, principal, conversationId, ["owner"]);
  await removeConversation(services, conversationId);
}

/** Deletes a conversation with its participants and messages (cascade) and announces it. */
export async function removeConversation(services: Services, conversationId: string): Promise<void> {
  await writeAndAnnounce(services, async (tx, announce) => {
    // Locked first: a participant being added meanwhile is either committed before the list below is
    // read (and told of the deletion) or waits, and then finds the conversation gone (404).
    const [locked] = await tx.select({ id: conversations.id }).from(conversations).where(eq(conversations.id, conversationId)).for("update");
    if (!locked) return;
    // Who took part, read before the cascade removes them: listeners (webhooks) tell them too.
    const members = await tx.select({ user_id: participants.user_id }).from(participants).where(eq(participants.conversation_id, conversationId));
    // The log is the outbox of sends (src/webhooks/): what endpoints have not had yet must outlive it.
    await services.webhooks.beforeConversationDeleted(tx, conversationId);
    const deleted = await tx
      .delete(conversations)
      .where(eq(conversations.id, conversationId))
      .returning({ id: conversations.id, org_id: conversations.org_id });
    if (deleted.length === 0) return;
    announce({ type: "conversation.deleted", conversationId, orgId: deleted[0].org_id ?? null, participantIds: members.map((m) => m.user_id) });
  });
}
