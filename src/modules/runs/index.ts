/**
 * REST routes of agent runs: /api/conversations/:id/runs (docs/runs.md). Transitions go through
 * POST /api/conversations/:id/control with `runId`.
 */
import { Elysia } from "elysia";
import { authenticated } from "../../http/context";
import type { Services } from "../../services";
import { ConversationParams, jsonBodyOnly } from "../shared-models";
import { FailRunBody, ListRunsQuery, RunParams, StartRunBody } from "./model";
import { endRun, getRun, listRuns, startRun } from "./service";

export function runsModule(services: Services) {
  return new Elysia({ prefix: "/api/conversations/:id/runs", tags: ["runs"] })
    .use(authenticated)
    .onParse(jsonBodyOnly)
    .post(
      "",
      async ({ principal, params, body, set }) => {
        set.status = 201;
        return startRun(services, principal, params.id, body);
      },
      { params: ConversationParams, body: StartRunBody, detail: { summary: "Start a run owned by the caller (a participant)" } },
    )
    .get("", ({ principal, params, query }) => listRuns(services, principal, params.id, query), {
      params: ConversationParams,
      query: ListRunsQuery,
      detail: { summary: "The conversation's runs, newest first, optionally by state (active, paused, preempted, ended)" },
    })
    .get("/:runId", ({ principal, params }) => getRun(services, principal, params.id, params.runId), {
      params: RunParams,
      detail: { summary: "A run and its transitions (the stored control messages)" },
    })
    .post("/:runId/complete", ({ principal, params }) => endRun(services, principal, params.id, params.runId, "completed"), {
      params: RunParams,
      detail: { summary: "The owner ends its run: completed" },
    })
    .post("/:runId/fail", ({ principal, params, body }) => endRun(services, principal, params.id, params.runId, "failed", body?.reason), {
      params: RunParams,
      body: FailRunBody,
      detail: { summary: "The owner ends its run: failed, with an optional reason" },
    });
}
