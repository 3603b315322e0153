/**
 * Which run buttons a person sees: the who-may rules of the server (src/domain/run-rules.ts), from the
 * run's state, who owns it, the viewer's entitlements and their role in the conversation. The server
 * decides; this only leaves out buttons it would refuse. test/console/run-permissions.test.ts checks
 * that both agree on every case.
 */
import type { ConversationRole, Run } from "../client/index.ts";

export type RunAction = "pause" | "resume" | "preempt" | "cancel";

export const RUN_ACTIONS: readonly RunAction[] = ["pause", "resume", "preempt", "cancel"];

/** The control event each button sends. */
export const RUN_EVENT = {
  pause: "stream.pause",
  resume: "stream.resume",
  preempt: "stream.preempt",
  cancel: "stream.cancel",
} as const satisfies Record<RunAction, string>;

const FROM: Record<RunAction, readonly Run["state"][]> = {
  pause: ["active"],
  resume: ["paused", "preempted"],
  preempt: ["active", "paused"],
  cancel: ["active", "paused", "preempted"],
};

export interface Viewer {
  id: string;
  entitlements: readonly string[];
  isSuperAdmin: boolean;
}

/**
 * The actions `viewer` may take on `run` now. `role` is the viewer's role in the conversation; someone
 * who does not participate (an admin or observer watching) may take none.
 */
export function runActions(viewer: Viewer, run: Pick<Run, "owner_id" | "state">, role: ConversationRole | undefined): RunAction[] {
  if (!role) return [];
  const owner = run.owner_id === viewer.id;
  const interrupt = viewer.isSuperAdmin || viewer.entitlements.includes("cap:messaging.interrupt");
  return RUN_ACTIONS.filter((action) => {
    if (!FROM[action].includes(run.state)) return false;
    // A person can always stop an agent answering in their conversation: owners and admins may cancel.
    if (action === "cancel") return owner || interrupt || role !== "member";
    return owner || interrupt;
  });
}
