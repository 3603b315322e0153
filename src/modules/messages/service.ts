/**
 * Messages: send (the hot path), edit with history, soft delete, list and replay.
 *
 * Sending is one SQL statement (./send-statement.ts), handed to the send batcher (services.sends,
 * src/db/statement-batcher.ts), which writes concurrent sends together in one transaction; when it
 * inserts nothing, the reason is looked up afterwards, off the hot path.
 */
import { and, asc, desc, eq, gt, gte, isNull, lt, type SQL } from "drizzle-orm";
import { actingOrgReach, withActor } from "../../auth/act-as";
import type { Principal, PrincipalType } from "../../auth/principal";
import { messages, messageVersions, participants, runs, type MessageRow } from "../../db/schema";
import { requireParticipant, requireReader } from "../../domain/access";
import { checkContent, checkMetadata, normaliseContentType } from "../../domain/limits";
import { runStartedBy, toMessage, type MessageResource } from "../../domain/resources";
import { AppError, fail, notFound } from "../../core/errors";
import { constraintName, sqlState } from "../../core/database-errors";
import type { Scope } from "../../core/scope";
import type { Services } from "../../services";
import type { EditMessageInput, SendMessageInput } from "./model";
import { isPlainSend, lockRunsOf, sendParameters, sendsCombiner, sendStatementFor, type SendOutcome, type SendRow } from "./send-statement";
import { preemptForPriority } from "../runs/service";
import { writeAndAnnounce } from "../../domain/announced-write";
import type { StreamOrigin } from "../../domain/message-streams";
import { isEnded } from "../../domain/run-rules";

export interface StoredMessage {
  message: MessageResource;
  /** The message serialised once; REST answers with it and the realtime hub wraps it in its frame. */
  json: string;
  /** True when a client id was sent again and the stored message is returned (no new sequence, no event). */
  replayed: boolean;
  /** What the send statement found out besides (absent on a replay). */
  outcome?: SendOutcome;
}

/** Everything a new message row needs besides its sequence (which the statement assigns). */
export interface NewMessage {
  id?: string;
  content: string;
  contentType: string;
  replyTo?: string;
  runId?: string;
  traceId?: string;
  priority: MessageRow["priority"];
  interruptible: boolean;
  preemptedBy?: string;
  metadata: Record<string, unknown>;
  /** A streaming message: its content follows in appends (./streams.ts). */
  streaming?: boolean;
}

/** Scope headers recorded on what a request creates. */
function scopedMetadata(metadata: Record<string, unknown> | undefined, scope: Scope): Record<string, unknown> {
  return scope.serviceId ? { ...metadata, serviceId: scope.serviceId } : (metadata ?? {});
}

/**
 * Stores a message and announces it. The statement is handed to the batcher before the first `await`:
 * sends called one after another (a socket's pipelined frames) are written in that order.
 */
export async function sendMessage(
  services: Services,
  principal: Principal,
  conversationId: string,
  input: SendMessageInput,
  scope: Scope,
  origin?: StreamOrigin,
): Promise<StoredMessage> {
  const contentType = normaliseContentType(input.contentType);
  const streaming = input.streaming === true;
  // A stream may start empty; what it starts with obeys the same limits as any content.
  if (!streaming || input.content.length > 0) checkContent(services.config, input.content, contentType);
  checkMetadata(services.config, input.metadata);
  if (streaming) services.streams.checkRoom(origin);
  const stored = await insertMessage(services, principal, conversationId, scope, {
    id: input.id,
    content: input.content,
    contentType,
    replyTo: input.replyTo,
    runId: input.runId,
    traceId: input.traceId,
    priority: input.priority ?? "normal",
    interruptible: input.interruptible ?? true,
    preemptedBy: input.preemptedBy,
    metadata: scopedMetadata(input.metadata, scope),
    streaming,
  }, ({ message, json, outcome }) => {
    // Held from now on (synchronously); recording the holder in the row follows off this path.
    if (streaming) void services.streams.opened(message, origin);
    if (outcome?.run_started) {
      services.domainEvents.emit({ type: "run.started", conversationId, run: runStartedBy(message), startedBy: { messageId: message.id, sequence: message.sequence } });
    }
    services.domainEvents.emit({ type: "message.created", conversationId, message, json });
  });
  if (stored.replayed) return stored;
  // Rare: the message outranks someone's active run. The preemption follows it in the sequence.
  if (stored.outcome?.preempts_runs) await preemptForPriority(services, stored.message);
  return stored;
}


/**
 * The one-statement insert shared by messages and control events. `announce` runs once the message is
 * committed, before this resolves and in the order the batch wrote its messages (domain events go there,
 * so that they follow sequence order); it does not run for a replay or a refusal.
 */
export async function insertMessage(
  services: Services,
  principal: Principal,
  conversationId: string,
  scope: Scope,
  m: NewMessage,
  announce?: (stored: StoredMessage) => void,
): Promise<StoredMessage> {
  const id = m.id ?? Bun.randomUUIDv7();
  const replyTo = m.replyTo ?? null;
  const preemptedBy = m.preemptedBy ?? null;
  let stored: StoredMessage | undefined;
  const row: SendRow = {
    id,
    conversationId,
    sender: principal,
    content: m.content,
    contentType: m.contentType,
    replyTo,
    preemptedBy,
    runId: m.runId ?? null,
    traceId: m.traceId ?? null,
    priority: m.priority,
    interruptible: m.interruptible,
    metadataJson: JSON.stringify(withActor(m.metadata, principal)),
    scope,
    streamState: m.streaming ? "streaming" : null,
    orgReach: actingOrgReach(principal) ?? null,
  };
  try {
    await services.sends.submit<MessageRow & SendOutcome>({
      // The database compares ids as UUIDs: the same conversation spelt in capitals is the same key.
      key: conversationId.toLowerCase(),
      text: sendStatementFor(row.runId),
      params: sendParameters(row),
      prelude: lockRunsOf,
      combiner: isPlainSend(row) ? sendsCombiner : undefined,
      committed: ([inserted]) => {
        if (!inserted) return;
        const message = toMessage(inserted);
        stored = { message, json: JSON.stringify(message), replayed: false, outcome: { run_started: inserted.run_started, preempts_runs: inserted.preempts_runs } };
        announce?.(stored);
      },
    });
  } catch (error) {
    // The same id committed by another writer between the statement's check and its insert.
    if (sqlState(error) === "23505" && constraintName(error) === "messages_pkey" && m.id) {
      const replay = await replayClientId(services, principal, conversationId, m.id);
      if (replay) return replay;
      throw fail.duplicate_id("A message with this id already exists");
    }
    throw error;
  }
  if (stored) return stored;
  // Nothing inserted: a client id seen before, or a rule said no.
  if (m.id) {
    const replay = await replayClientId(services, principal, conversationId, m.id);
    if (replay) return replay;
  }
  throw await explainRejectedSend(services, principal, conversationId, replyTo, preemptedBy, m.runId);
}

/**
 * A client id seen before: the same sender and conversation get the stored message back, anyone else
 * 409; undefined when no message has the id.
 */
async function replayClientId(
  services: Services,
  principal: Principal,
  conversationId: string,
  id: string,
): Promise<StoredMessage | undefined> {
  const [existing] = await services.database.db.select().from(messages).where(eq(messages.id, id));
  if (!existing) return undefined;
  if (existing.sender_id !== principal.id || existing.conversation_id !== conversationId) {
    throw fail.duplicate_id("A message with this id already exists");
  }
  const message = toMessage(existing);
  return { message, json: JSON.stringify(message), replayed: true };
}

/** Off the hot path: the statement inserted nothing, find out which rule said no. */
async function explainRejectedSend(
  services: Services,
  principal: Principal,
  conversationId: string,
  replyTo: string | null,
  preemptedBy: string | null,
  runId: string | undefined,
): Promise<AppError> {
  const { db } = services.database;
  try {
    // The statement enforces participation atomically; the rule and its refusal are the domain's.
    await requireParticipant(db, principal, conversationId);
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  for (const [field, ref] of [["replyTo", replyTo], ["preemptedBy", preemptedBy]] as const) {
    if (!ref) continue;
    const [found] = await db
      .select({ id: messages.id })
      .from(messages)
      .where(and(eq(messages.id, ref), eq(messages.conversation_id, conversationId)));
    if (!found) return fail.invalid_reference(`${field} does not name a message of this conversation`);
  }
  if (runId !== undefined) {
    const [run] = await db.select().from(runs).where(and(eq(runs.conversation_id, conversationId), eq(runs.id, runId)));
    if (run && isEnded(run.state)) return fail.run_ended(`Run ${runId} has ended (${run.state})`).with({ state: run.state });
    if (run && run.owner_id !== principal.id) return fail.not_run_owner(`Run ${runId} belongs to ${run.owner_id}`).with({ state: run.state });
    if (run && run.state !== "active") return fail.run_paused(`Run ${runId} is ${run.state}`).with({ state: run.state });
  }
  return notFound("Conversation");
}

type Cursor = { sequence: number } | { time: Date };

/** Sequences are PostgreSQL integers; a larger cursor means the same as the largest one. */
const MAX_SEQUENCE = 2_147_483_647;

function parseCursor(name: string, value: string | undefined): Cursor | undefined {
  if (value === undefined) return undefined;
  if (/^\d{1,10}$/.test(value)) return { sequence: Math.min(Number(value), MAX_SEQUENCE) };
  // ISO-8601 date or date-time only: Date.parse alone accepts too much.
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value)) {
    const time = new Date(value);
    // PostgreSQL has no year 0 (nor earlier years in this notation).
    if (!Number.isNaN(time.getTime()) && time.getUTCFullYear() >= 1) return { time };
  }
  throw fail.invalid_cursor(`${name} must be a sequence number or an ISO-8601 time`);
}

function cursorCondition(cursor: Cursor, direction: "before" | "after"): SQL {
  if ("sequence" in cursor) {
    return direction === "before" ? lt(messages.sequence, cursor.sequence) : gt(messages.sequence, cursor.sequence);
  }
  if (direction === "before") return lt(messages.created_at, cursor.time);
  // Times leave the API in milliseconds while the column keeps microseconds: "after T" starts at the next
  // millisecond, so that a message's own created_at, used as the cursor, does not return it again.
  return gte(messages.created_at, new Date(cursor.time.getTime() + 1));
}

/** Reading marks `last_read_at`, at most once per this many ms per reader, to keep reads free of writes. */
const READ_MARK_INTERVAL_MS = 5000;
const lastReadMarks = new Map<string, number>();

async function markRead(services: Services, conversationId: string, userId: string): Promise<void> {
  const key = `${conversationId}:${userId}`;
  const now = Date.now();
  if ((lastReadMarks.get(key) ?? 0) > now - READ_MARK_INTERVAL_MS) return;
  if (lastReadMarks.size > 100_000) lastReadMarks.clear();
  lastReadMarks.set(key, now);
  await services.database.db
    .update(participants)
    .set({ last_read_at: new Date(now) })
    .where(and(eq(participants.conversation_id, conversationId), eq(participants.user_id, userId)));
}

/**
 * A page of live (not deleted) messages in ascending sequence. With `before`, the newest `limit` below it;
 * with only `after`, the oldest `limit` above it; with neither, the newest `limit`.
 */
export async function listMessages(
  services: Services,
  principal: Principal,
  conversationId: string,
  options: { limit?: number; before?: string; after?: string },
): Promise<MessageResource[]> {
  const limit = options.limit ?? 50;
  const before = parseCursor("before", options.before);
  const after = parseCursor("after", options.after);
  const access = await requireReader(services.database.db, principal, conversationId);
  const where = and(
    eq(messages.conversation_id, conversationId),
    isNull(messages.deleted_at),
    before ? cursorCondition(before, "before") : undefined,
    after ? cursorCondition(after, "after") : undefined,
  );
  const newestFirst = Boolean(before) || !after;
  const page = await services.database.db
    .select()
    .from(messages)
    .where(where)
    .orderBy(newestFirst ? desc(messages.sequence) : asc(messages.sequence))
    .limit(limit);
  if (newestFirst) page.reverse();
  if (access.participant) await markRead(services, conversationId, principal.id);
  // A stream reads with its content so far (from its holder when another instance holds it), not the last flush.
  return services.streams.mergeFollowing(page.map(toMessage));
}

/** One live message; a stream with its content so far. */
export async function getMessage(services: Services, principal: Principal, conversationId: string, messageId: string): Promise<MessageResource> {
  const { db } = services.database;
  await requireReader(db, principal, conversationId);
  const [row] = await db
    .select()
    .from(messages)
    .where(and(eq(messages.id, messageId), eq(messages.conversation_id, conversationId), isNull(messages.deleted_at)));
  if (!row) throw notFound("Message");
  const [message] = await services.streams.mergeFollowing([toMessage(row)]);
  return message!;
}

/** Loads a message for a change by `principal`, who must still participate in its conversation. */
async function messageForChange(services: Services, principal: Principal, messageId: string, conversationId?: string) {
  const { db } = services.database;
  const [row] = await db.select().from(messages).where(eq(messages.id, messageId));
  if (!row || (conversationId && row.conversation_id !== conversationId)) throw notFound("Message");
  const { participant } = await requireParticipant(db, principal, row.conversation_id);
  return { row, participant };
}

export async function editMessage(
  services: Services,
  principal: Principal,
  target: { messageId: string; conversationId?: string },
  input: EditMessageInput,
): Promise<StoredMessage> {
  const { row } = await messageForChange(services, principal, target.messageId, target.conversationId);
  if (row.sender_id !== principal.id) throw fail.not_sender("Only the sender can edit a message");
  if (row.content_type === "event") throw fail.not_editable("Control events cannot be edited");
  if (row.stream_state === "streaming") throw fail.conflict("A streaming message can be edited once its stream has ended");
  const contentType = input.contentType === undefined ? row.content_type : normaliseContentType(input.contentType);
  checkContent(services.config, input.content, contentType);

  return writeAndAnnounce(services, async (tx, announce) => {
    // Lock the row so two concurrent edits each record the version they replaced.
    const [current] = await tx.select().from(messages).where(eq(messages.id, row.id)).for("update");
    if (!current || current.deleted_at) throw fail.message_deleted("A deleted message cannot be edited");
    await tx.insert(messageVersions).values({
      message_id: current.id,
      version: current.version,
      content: current.content,
      content_type: current.content_type,
      edited_by: current.sender_id,
      acted_by: actorOf(current.metadata),
      created_at: current.updated_at ?? current.created_at,
    });
    // metadata.actedBy tells who wrote the current version: set when a service edits for the sender,
    // dropped when the sender edits itself (the version replaced keeps its own in acted_by).
    const metadata = withActor((current.metadata ?? {}) as Record<string, unknown>, principal);
    const [next] = await tx
      .update(messages)
      .set({ content: input.content, content_type: contentType, metadata, version: current.version + 1, updated_at: new Date() })
      .where(eq(messages.id, current.id))
      .returning();
    const message = toMessage(next);
    const json = JSON.stringify(message);
    announce({ type: "message.updated", conversationId: message.conversation_id, message, json });
    return { message, json, replayed: false };
  });
}

export async function deleteMessage(
  services: Services,
  principal: Principal,
  target: { messageId: string; conversationId?: string },
): Promise<{ id: string; conversationId: string; sequence: number; deletedAt: string }> {
  const { row, participant } = await messageForChange(services, principal, target.messageId, target.conversationId);
  if (row.sender_id !== principal.id && participant.role === "member") {
    throw fail.not_allowed("Only the sender, an owner or an admin can delete a message");
  }
  return writeAndAnnounce(services, async (tx, announce) => {
    const [deleted] = await tx
      .update(messages)
      .set({ deleted_at: new Date() })
      .where(and(eq(messages.id, row.id), isNull(messages.deleted_at)))
      .returning({ deleted_at: messages.deleted_at });
    if (!deleted) throw notFound("Message");
    const result = {
      id: row.id,
      conversationId: row.conversation_id,
      sequence: Number(row.sequence),
      deletedAt: deleted.deleted_at!.toISOString(),
    };
    announce({ type: "message.deleted", conversationId: row.conversation_id, message: result, deletedBy: principal.id });
    return result;
  });
}

/** The actor a stored message's metadata names (set by the server only, see withActor), or null. */
function actorOf(metadata: unknown): { id: string; type: PrincipalType } | null {
  const actedBy = (metadata as { actedBy?: { id?: unknown; type?: unknown } } | null)?.actedBy;
  if (!actedBy || typeof actedBy.id !== "string" || typeof actedBy.type !== "string") return null;
  return { id: actedBy.id, type: actedBy.type as PrincipalType };
}

export interface MessageVersion {
  version: number;
  content: string;
  content_type: string;
  edited_by: string;
  /** Who wrote the version for `edited_by` when a service acted for it; null otherwise. */
  acted_by: { id: string; type: PrincipalType } | null;
  created_at: string;
  current: boolean;
}

/** Every version of a message, oldest first, the current one last. */
export async function messageHistory(
  services: Services,
  principal: Principal,
  conversationId: string,
  messageId: string,
): Promise<{ message_id: string; versions: MessageVersion[] }> {
  const { db } = services.database;
  await requireReader(db, principal, conversationId);
  const [row] = await db
    .select()
    .from(messages)
    .where(and(eq(messages.id, messageId), eq(messages.conversation_id, conversationId), isNull(messages.deleted_at)));
  if (!row) throw notFound("Message");
  const previous = await db
    .select()
    .from(messageVersions)
    .where(eq(messageVersions.message_id, messageId))
    .orderBy(asc(messageVersions.version));
  return {
    message_id: messageId,
    versions: [
      ...previous.map((v) => ({
        version: v.version,
        content: v.content,
        content_type: v.content_type,
        edited_by: v.edited_by,
        acted_by: v.acted_by ?? null,
        created_at: v.created_at.toISOString(),
        current: false,
      })),
      {
        version: row.version,
        content: row.content,
        content_type: row.content_type,
        edited_by: row.sender_id,
        acted_by: actorOf(row.metadata),
        created_at: (row.updated_at ?? row.created_at).toISOString(),
        current: true,
      },
    ],
  };
}
