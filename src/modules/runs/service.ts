/**
 * Agent runs: start, read, end, and the transitions the `stream.*` control events make (docs/runs.md).
 *
 * A transition is one transaction: the runs it applies to are locked (FOR UPDATE, in id order), checked
 * against the rules of src/domain/run-rules.ts, changed, and each transition is stored as a control
 * message in the conversation's sequence. Sends into a run share-lock the same row in the send statement,
 * so a send and a transition never interleave: the send lands before the pause, or is refused after it.
 */
import { and, asc, count, desc, eq, inArray, isNull, notInArray, sql } from "drizzle-orm";
import { withActor } from "../../auth/act-as";
import type { Principal } from "../../auth/principal";
import { fail, notFound } from "../../core/errors";
import type { Scope } from "../../core/scope";
import type { Tx } from "../../db/client";
import { conversations, messages, runs, type MessageRow, type RunRow } from "../../db/schema";
import { requireParticipant, requireReader } from "../../domain/access";
import { controlBroadcastOf, type ControlEvent } from "../../domain/control-events";
import { checkMetadata } from "../../domain/limits";
import { toMessage, toRun, type MessageResource, type RunResource } from "../../domain/resources";
import {
  ENDED_STATES,
  isEnded,
  mayControlRun,
  nextState,
  priorityRank,
  SERVER_SENDER,
  statesTaking,
  type RunPriority,
  type RunState,
} from "../../domain/run-rules";
import type { Services } from "../../services";
import { writeAndAnnounce, type Announce } from "../../domain/announced-write";

export interface StartRunInput {
  runId?: string;
  priority?: RunPriority;
  interruptible?: boolean;
  metadata?: Record<string, unknown>;
}

export interface Transition {
  event: string;
  from: RunState | null;
  to: RunState | null;
  by: string;
  at: string;
  sequence: number;
  reason?: string;
}

export type RunWithTransitions = RunResource & { transitions: Transition[] };

export async function startRun(services: Services, principal: Principal, conversationId: string, input: StartRunInput): Promise<RunResource> {
  checkMetadata(services.config, input.metadata);
  await requireParticipant(services.database.db, principal, conversationId);
  return writeAndAnnounce(services, async (tx, announce) => {
    const [row] = await tx
    .insert(runs)
    .values({
      conversation_id: conversationId,
      id: input.runId ?? Bun.randomUUIDv7(),
      owner_id: principal.id,
      owner_type: principal.type,
      state: "active",
      priority: input.priority ?? "normal",
      interruptible: input.interruptible ?? true,
      metadata: input.metadata ?? {},
    })
    .onConflictDoNothing()
    .returning();
    if (!row) throw fail.run_exists();
    const run = toRun(row);
    announce({ type: "run.started", conversationId, run });
    return run;
  });
}

const STATE_FILTERS: Record<string, RunState[]> = {
  active: ["active"],
  paused: ["paused"],
  preempted: ["preempted"],
  ended: [...ENDED_STATES],
};

export async function listRuns(
  services: Services,
  principal: Principal,
  conversationId: string,
  query: { state?: keyof typeof STATE_FILTERS; limit?: number; offset?: number },
): Promise<{ items: RunResource[]; limit: number; offset: number; total: number }> {
  const { db } = services.database;
  await requireReader(db, principal, conversationId);
  const limit = query.limit ?? 100;
  const offset = query.offset ?? 0;
  const where = and(eq(runs.conversation_id, conversationId), query.state ? inArray(runs.state, STATE_FILTERS[query.state]) : undefined);
  const [rows, [{ total }]] = await Promise.all([
    db.select().from(runs).where(where).orderBy(desc(runs.started_at), desc(runs.id)).limit(limit).offset(offset),
    db.select({ total: count() }).from(runs).where(where),
  ]);
  return { items: rows.map(toRun), limit, offset, total: Number(total) };
}

export async function getRun(services: Services, principal: Principal, conversationId: string, runId: string): Promise<RunWithTransitions> {
  const { db } = services.database;
  await requireReader(db, principal, conversationId);
  const [row] = await db.select().from(runs).where(and(eq(runs.conversation_id, conversationId), eq(runs.id, runId)));
  if (!row) throw notFound("Run");
  const stored = await db
    .select()
    .from(messages)
    .where(and(eq(messages.conversation_id, conversationId), eq(messages.run_id, runId), eq(messages.content_type, "event"), isNull(messages.deleted_at)))
    .orderBy(asc(messages.sequence));
  return { ...toRun(row), transitions: stored.map((m) => transitionOf(toMessage(m))) };
}

function transitionOf(message: MessageResource): Transition {
  const control = (message.metadata.control ?? {}) as { event?: string; from?: RunState; to?: RunState; reason?: string };
  return {
    event: control.event ?? message.content,
    from: control.from ?? null,
    to: control.to ?? null,
    by: message.sender_id,
    at: message.created_at,
    sequence: message.sequence,
    ...(control.reason !== undefined && { reason: control.reason }),
  };
}

/** complete / fail: the owner ends its run. */
export async function endRun(
  services: Services,
  principal: Principal,
  conversationId: string,
  runId: string,
  outcome: "completed" | "failed",
  reason?: string,
): Promise<RunResource> {
  const { db } = services.database;
  await requireParticipant(db, principal, conversationId);
  return writeAndAnnounce(services, async (tx, announce) => {
    const [row] = await tx.select().from(runs).where(and(eq(runs.conversation_id, conversationId), eq(runs.id, runId))).for("update");
    if (!row) throw notFound("Run");
    if (row.owner_id !== principal.id) throw fail.forbidden("Only the run's owner ends it");
    if (isEnded(row.state)) throw fail.run_ended().with({ state: row.state });
    const now = new Date();
    const [updated] = await tx
      .update(runs)
      .set({ state: outcome, ended_at: now, updated_at: now, end_reason: reason ?? outcome })
      .where(and(eq(runs.conversation_id, conversationId), eq(runs.id, runId)))
      .returning();
    const run = toRun(updated);
    announce({ type: "run.ended", conversationId, run });
    return run;
  });
}

export interface ControlRequest {
  event: ControlEvent;
  runId?: string;
  target?: { principalId: string; principalType: string; participantId?: string };
  reason?: string;
  preemptedBy?: string;
  traceId?: string;
  priority?: RunPriority;
  metadata?: Record<string, unknown>;
}

/** A transition stored: the control message and the run after it. */
export interface AppliedTransition {
  message: MessageResource;
  run: RunResource;
}

/**
 * Applies a control event to runs. With `runId`, to that run (404 unknown, 409 ended or not allowed from its
 * state, 403 not allowed for the caller); without, to every run not ended that can take it and that the
 * caller may act on. Returns the transitions stored, none when no run took it (the caller then stores
 * the event as a plain control message, as clients without runs expect).
 */
export async function applyControl(
  services: Services,
  principal: Principal,
  conversationId: string,
  request: ControlRequest,
  scope: Scope,
  participant: { role: "owner" | "admin" | "member" },
): Promise<AppliedTransition[]> {
  if (request.preemptedBy) await requireMessageOf(services, conversationId, request.preemptedBy, "preemptedBy");
  return writeAndAnnounce(services, async (tx, announce) => {
    const candidates = await tx
      .select()
      .from(runs)
      .where(
        and(
          eq(runs.conversation_id, conversationId),
          request.runId !== undefined ? eq(runs.id, request.runId) : notInArray(runs.state, [...ENDED_STATES]),
        ),
      )
      .orderBy(asc(runs.id))
      .for("update");
    let targets: { run: RunRow; to: RunState }[];
    if (request.runId !== undefined) {
      const run = candidates[0];
      if (!run) throw notFound("Run");
      if (isEnded(run.state)) throw fail.run_ended().with({ state: run.state });
      const to = nextState(request.event, run.state);
      if (!to) {
        throw fail
          .invalid_transition(`${request.event} needs the run to be ${statesTaking(request.event).join(" or ")}; it is ${run.state}`)
          .with({ state: run.state });
      }
      if (!mayControlRun(principal, request.event, run, participant.role)) {
        throw fail.missing_entitlement(`You may not send ${request.event} to this run`);
      }
      targets = [{ run, to }];
    } else {
      targets = [];
      for (const run of candidates) {
        const to = nextState(request.event, run.state);
        if (to && mayControlRun(principal, request.event, run, participant.role)) targets.push({ run, to });
      }
    }
    const results: AppliedTransition[] = [];
    for (const { run, to } of targets) results.push(announceTransition(announce, await transition(tx, run, to, request, principal, scope)));
    return results;
  });
}

async function requireMessageOf(services: Services, conversationId: string, messageId: string, field: string): Promise<void> {
  const [found] = await services.database.db
    .select({ id: messages.id })
    .from(messages)
    .where(and(eq(messages.id, messageId), eq(messages.conversation_id, conversationId)));
  if (!found) throw fail.invalid_reference(`${field} does not name a message of this conversation`);
}

/** Changes one locked run and stores the control message that records it. */
async function transition(
  tx: Tx,
  run: RunRow,
  to: RunState,
  request: ControlRequest,
  sender: Pick<Principal, "id" | "type" | "actedBy">,
  scope: Scope,
): Promise<{ message: MessageRow; run: RunRow }> {
  const now = new Date();
  const changes: Partial<RunRow> = { state: to, updated_at: now };
  if (request.event === "stream.route" || request.event === "stream.handoff") {
    changes.owner_id = request.target!.principalId;
    changes.owner_type = request.target!.principalType as RunRow["owner_type"];
  }
  if (request.event === "stream.priority" && request.priority) changes.priority = request.priority;
  if (request.event === "stream.preempt") changes.preempted_by = request.preemptedBy ?? null;
  if (to === "cancelled") {
    changes.ended_at = now;
    changes.end_reason = request.reason ?? "cancelled";
  }
  const [updated] = await tx
    .update(runs)
    .set(changes)
    .where(and(eq(runs.conversation_id, run.conversation_id), eq(runs.id, run.id)))
    .returning();
  const control = {
    event: request.event,
    from: run.state,
    to,
    ...(request.target && { target: request.target }),
    ...(request.reason !== undefined && { reason: request.reason }),
    ...(request.preemptedBy !== undefined && { preemptedBy: request.preemptedBy }),
    ...(request.event === "stream.priority" && { priority: updated.priority }),
  };
  const message = await storeControlMessage(tx, run.conversation_id, sender, scope, {
    runId: run.id,
    traceId: request.traceId,
    preemptedBy: request.preemptedBy,
    metadata: withActor({ ...request.metadata, ...(scope.serviceId && { serviceId: scope.serviceId }), control }, sender),
    content: request.event,
  });
  return { message, run: updated };
}

/** The next sequence and the control message, inside the transition's transaction. */
async function storeControlMessage(
  tx: Tx,
  conversationId: string,
  sender: { id: string; type: string },
  scope: Scope,
  m: { runId: string; traceId?: string; preemptedBy?: string; metadata: Record<string, unknown>; content: string },
): Promise<MessageRow> {
  const [next] = await tx
    .update(conversations)
    .set({ last_sequence: sql`${conversations.last_sequence} + 1`, last_message_at: new Date() })
    .where(eq(conversations.id, conversationId))
    .returning({ sequence: conversations.last_sequence, org_id: conversations.org_id });
  if (!next) throw notFound("Conversation");
  const [row] = await tx
    .insert(messages)
    .values({
      id: Bun.randomUUIDv7(),
      conversation_id: conversationId,
      sender_id: sender.id,
      sender_type: sender.type as MessageRow["sender_type"],
      content: m.content,
      content_type: "event",
      org_id: next.org_id,
      run_id: m.runId,
      trace_id: m.traceId ?? null,
      sequence: next.sequence,
      priority: "high",
      interruptible: false,
      preempted_by: m.preemptedBy ?? null,
      metadata: m.metadata,
      data_class: scope.dataClass ?? null,
      policy_ref: scope.policyRef ?? null,
    })
    .returning();
  return row;
}

/**
 * Automatic preemption: `message` outranks active, interruptible runs of others in its conversation.
 * The server preempts each (a stored `stream.preempt` with `preemptedBy` = the message and reason
 * "priority"), after the message in the sequence.
 */
export async function preemptForPriority(services: Services, message: MessageResource): Promise<AppliedTransition[]> {
  const conversationId = message.conversation_id;
  const rank = priorityRank(message.priority);
  return writeAndAnnounce(services, async (tx, announce) => {
    const active = await tx
      .select()
      .from(runs)
      .where(and(eq(runs.conversation_id, conversationId), eq(runs.state, "active"), eq(runs.interruptible, true)))
      .orderBy(asc(runs.id))
      .for("update");
    const results: AppliedTransition[] = [];
    for (const run of active) {
      if (run.owner_id === message.sender_id || priorityRank(run.priority) >= rank) continue;
      const request: ControlRequest = { event: "stream.preempt", runId: run.id, preemptedBy: message.id, reason: "priority" };
      results.push(announceTransition(announce, await transition(tx, run, "preempted", request, SERVER_SENDER, {})));
    }
    return results;
  });
}

/** A stored transition announces its control event, and run.ended when it ended the run. */
function announceTransition(announce: Announce, stored: { message: MessageRow; run: RunRow }): AppliedTransition {
  const message = toMessage(stored.message);
  const run = toRun(stored.run);
  const conversationId = message.conversation_id;
  announce({ type: "control.sent", conversationId, message, control: controlBroadcastOf(message), run });
  if (isEnded(run.state)) announce({ type: "run.ended", conversationId, run });
  return { message, run };
}
