/**
 * Participants: join, leave, add, remove, change role (ownership transfer included). Each change is
 * announced so that the realtime layer can subscribe or unsubscribe the principal's sockets at once.
 */
import { and, eq } from "drizzle-orm";
import { isOrgMember, type Principal } from "../../auth/principal";
import type { Executor } from "../../db/client";
import { conversations, participants, type ParticipantRow } from "../../db/schema";
import { findParticipant, loadConversation, requireParticipant } from "../../domain/access";
import { toConversation, toParticipant, type ConversationResource, type ParticipantResource } from "../../domain/resources";
import { fail, notFound } from "../../core/errors";
import { sqlState } from "../../core/database-errors";
import { writeAndAnnounce } from "../../domain/announced-write";
import type { Services } from "../../services";
import { PRIVATE_CONVERSATION_LIMIT } from "../conversations/service";

export type ParticipantType = ParticipantRow["user_type"];
export type Role = ParticipantRow["role"];

export interface Joined {
  participant: ParticipantResource;
  /** False when the principal was already a participant. */
  created: boolean;
}

export async function joinConversation(services: Services, principal: Principal, conversationId: string): Promise<Joined> {
  const { db } = services.database;
  const conversation = await loadConversation(db, conversationId);
  const existing = await findParticipant(db, conversationId, principal.id);
  if (existing) return { participant: toParticipant(existing), created: false };
  if (conversation.type !== "group") throw fail.not_joinable("Only group conversations can be joined");
  // Joining is open to the members of the conversation's organisation; a conversation with no
  // organisation is joined only by invitation (POST /participants).
  if (!conversation.org_id) {
    throw fail.invitation_only("This conversation belongs to no organization, so it cannot be joined: an owner or admin adds participants");
  }
  if (!isOrgMember(principal, conversation.org_id)) {
    throw fail.org_forbidden("Only members of the conversation's organization can join it");
  }
  return writeAndAnnounce(services, async (tx, announce) => {
    const joined = await insertParticipant(tx, conversationId, principal.id, principal.type, "member");
    if (joined.created) announce({ type: "participant.added", conversationId, participant: joined.participant, conversation: toConversation(conversation) });
    return joined;
  });
}

export async function leaveConversation(services: Services, principal: Principal, conversationId: string): Promise<void> {
  const { conversation, participant } = await requireParticipant(services.database.db, principal, conversationId);
  if (participant.role === "owner") {
    throw fail.owner_cannot_leave("The owner cannot leave; transfer ownership first");
  }
  await deleteParticipant(services, participant, conversation.org_id);
}

export async function addParticipant(
  services: Services,
  principal: Principal,
  conversationId: string,
  input: { userId: string; userType?: ParticipantType },
): Promise<ParticipantResource> {
  const { db } = services.database;
  await requireParticipant(db, principal, conversationId, ["owner", "admin"]);
  return (await addAs(services, conversationId, input.userId, input.userType ?? "user", "member")).participant;
}

/** Adds a participant with a role, enforcing the private-conversation limit. Used by owners and the admin API. */
export async function addAs(
  services: Services,
  conversationId: string,
  userId: string,
  userType: ParticipantType,
  role: Role,
): Promise<Joined> {
  return writeAndAnnounce(services, async (tx, announce) => {
    // Adds to one conversation take turns on its row, so that the duplicate check and the private limit
    // hold under concurrency (two adds could otherwise both see one participant and both insert).
    const [conversation] = await tx.select().from(conversations).where(eq(conversations.id, conversationId)).for("update");
    if (!conversation) throw notFound("Conversation");
    if (await findParticipant(tx, conversationId, userId)) {
      throw fail.already_participant("This principal is already a participant");
    }
    if (conversation.type === "private") {
      const count = (await tx.select({ id: participants.id }).from(participants).where(eq(participants.conversation_id, conversationId))).length;
      if (count >= PRIVATE_CONVERSATION_LIMIT) {
        throw fail.conversation_full("A private conversation holds at most two participants");
      }
    }
    const demoted = role === "owner" ? await demoteOwner(tx, conversationId) : [];
    const joined = await insertParticipant(tx, conversationId, userId, userType, role);
    // A join that does not take the lock may still have won the race.
    if (!joined.created) throw fail.already_participant("This principal is already a participant");
    for (const row of demoted) announce({ type: "participant.updated", conversationId, participant: toParticipant(row) });
    announce({ type: "participant.added", conversationId, participant: joined.participant, conversation: toConversation(conversation) });
    return joined;
  });
}

/** Inserts the row inside the caller's transaction; the caller announces it. */
async function insertParticipant(
  db: Executor,
  conversationId: string,
  userId: string,
  userType: ParticipantType,
  role: Role,
): Promise<Joined> {
  let row: ParticipantRow | undefined;
  try {
    // No exception on a duplicate: inside a transaction it would abort it, and the lookup below with it.
    [row] = await db
      .insert(participants)
      .values({ conversation_id: conversationId, user_id: userId, user_type: userType, role })
      .onConflictDoNothing({ target: [participants.conversation_id, participants.user_id] })
      .returning();
  } catch (error) {
    if (sqlState(error) === "23503") throw notFound("Conversation");
    throw error;
  }
  if (!row) {
    // Two joins racing: the unique index lets one through; the other finds the row.
    const existing = await findParticipant(db, conversationId, userId);
    if (!existing) throw fail.already_participant("This principal is already a participant");
    return { participant: toParticipant(existing), created: false };
  }
  return { participant: toParticipant(row), created: true };
}

/** The previous owner becomes an admin; the rows are returned so that the change is announced too. */
async function demoteOwner(db: Executor, conversationId: string): Promise<ParticipantRow[]> {
  return db
    .update(participants)
    .set({ role: "admin" })
    .where(and(eq(participants.conversation_id, conversationId), eq(participants.role, "owner")))
    .returning();
}

export async function removeParticipant(
  services: Services,
  principal: Principal,
  conversationId: string,
  userId: string,
): Promise<void> {
  const { db } = services.database;
  const { conversation, participant: actor } = await requireParticipant(db, principal, conversationId, ["owner", "admin"]);
  const target = await findParticipant(db, conversationId, userId);
  if (!target) throw notFound("Participant");
  if (target.role === "owner") throw fail.owner_cannot_be_removed("The owner cannot be removed");
  if (target.role === "admin" && actor.role !== "owner" && target.user_id !== principal.id) {
    throw fail.insufficient_role("Only the owner can remove an admin");
  }
  await deleteParticipant(services, target, conversation.org_id);
}

/** Removal by a system admin through the admin API: anyone but the owner. */
export async function removeParticipantAsAdmin(services: Services, conversationId: string, userId: string): Promise<void> {
  const { db } = services.database;
  const conversation = await loadConversation(db, conversationId);
  const target = await findParticipant(db, conversationId, userId);
  if (!target) throw notFound("Participant");
  if (target.role === "owner") throw fail.owner_cannot_be_removed("The owner cannot be removed");
  await deleteParticipant(services, target, conversation.org_id);
}

async function deleteParticipant(services: Services, target: ParticipantRow, orgId: string | null): Promise<void> {
  await writeAndAnnounce(services, async (tx, announce) => {
    const deleted = await tx.delete(participants).where(eq(participants.id, target.id)).returning();
    if (deleted.length === 0) throw notFound("Participant");
    announce({ type: "participant.removed", conversationId: target.conversation_id, participant: toParticipant(deleted[0]), orgId });
  });
}

/**
 * Only the owner changes roles. Giving `owner` to someone transfers ownership: they become owner and the
 * previous owner becomes an admin, in one transaction.
 */
export async function changeRole(
  services: Services,
  principal: Principal,
  conversationId: string,
  userId: string,
  role: Role,
): Promise<ParticipantResource> {
  const { db } = services.database;
  await requireParticipant(db, principal, conversationId, ["owner"]);
  if (userId === principal.id) {
    throw fail.invalid_role_change("The owner changes their own role by transferring ownership to someone else");
  }
  return writeAndAnnounce(services, async (tx, announce) => {
    const target = await findParticipant(tx, conversationId, userId);
    if (!target) throw notFound("Participant");
    const updates: ParticipantRow[] = [];
    if (role === "owner") {
      updates.push(
        ...(await tx
          .update(participants)
          .set({ role: "admin" })
          .where(and(eq(participants.conversation_id, conversationId), eq(participants.user_id, principal.id)))
          .returning()),
      );
    }
    const [updated] = await tx.update(participants).set({ role }).where(eq(participants.id, target.id)).returning();
    for (const row of [...updates, updated]) announce({ type: "participant.updated", conversationId, participant: toParticipant(row) });
    return toParticipant(updated);
  });
}
