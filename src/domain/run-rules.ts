/**
 * Agent runs: the states, what each `stream.*` event does to them, and who may send which. Pure: the run
 * service applies these inside its transaction, and docs/runs.md is their description.
 */
import { ENTITLEMENT, hasEntitlement, type Principal } from "../auth/principal";
import type { RunRow } from "../db/schema";
import type { ControlEvent } from "./control-events";

export type RunState = RunRow["state"];
export type RunPriority = RunRow["priority"];

export const RUN_STATES = ["active", "paused", "preempted", "completed", "failed", "cancelled"] as const satisfies readonly RunState[];
export const ENDED_STATES: ReadonlySet<RunState> = new Set(["completed", "failed", "cancelled"]);
export const PRIORITIES = ["low", "normal", "high", "critical"] as const satisfies readonly RunPriority[];

export const isEnded = (state: RunState) => ENDED_STATES.has(state);

/** `same`: the event changes something else than the state (the owner, the priority). */
const TRANSITIONS: Record<ControlEvent, { from: readonly RunState[]; to: RunState | "same" }> = {
  "stream.pause": { from: ["active"], to: "paused" },
  "stream.resume": { from: ["paused", "preempted"], to: "active" },
  "stream.preempt": { from: ["active", "paused"], to: "preempted" },
  "stream.cancel": { from: ["active", "paused", "preempted"], to: "cancelled" },
  "stream.route": { from: ["active", "paused", "preempted"], to: "same" },
  "stream.handoff": { from: ["active", "paused", "preempted"], to: "same" },
  "stream.priority": { from: ["active", "paused", "preempted"], to: "same" },
};

/** The state after `event`, or undefined when the run cannot take it from `state`. */
export function nextState(event: ControlEvent, state: RunState): RunState | undefined {
  const rule = TRANSITIONS[event];
  if (!rule.from.includes(state)) return undefined;
  return rule.to === "same" ? state : rule.to;
}

/** The states a run can take `event` from (for error messages and docs). */
export function statesTaking(event: ControlEvent): readonly RunState[] {
  return TRANSITIONS[event].from;
}

/** Higher is more urgent. */
export function priorityRank(priority: RunPriority): number {
  return PRIORITIES.indexOf(priority);
}

/**
 * Who may send `event` to a run:
 * - pause, resume, preempt, priority: the run's owner, or `cap:messaging.interrupt`;
 * - cancel: the same, and the conversation's owner and admins (a person can always stop an agent);
 * - route: `cap:messaging.route`;
 * - handoff: `cap:messaging.route`, or the run's owner handing its own run on.
 */
export function mayControlRun(
  principal: Principal,
  event: ControlEvent,
  run: Pick<RunRow, "owner_id">,
  conversationRole: "owner" | "admin" | "member",
): boolean {
  const isOwner = run.owner_id === principal.id;
  switch (event) {
    case "stream.route":
      return hasEntitlement(principal, ENTITLEMENT.route);
    case "stream.handoff":
      return isOwner || hasEntitlement(principal, ENTITLEMENT.route);
    case "stream.cancel":
      return isOwner || hasEntitlement(principal, ENTITLEMENT.interrupt) || conversationRole !== "member";
    default:
      return isOwner || hasEntitlement(principal, ENTITLEMENT.interrupt);
  }
}

/** Who the server is when it acts by itself (automatic preemption). */
export const SERVER_SENDER = { id: "symbia-messaging", type: "service" } as const;
