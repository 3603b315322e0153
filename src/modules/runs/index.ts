/**
 * REST routes of agent runs: /api/conversations/:id/runs (docs/runs.md). Transitions go through
 * POST /api/conversations/:id/control with `runId`.
 */
import { Elysia } from "elysia";
import { authenticated } from "../../http/context";
import type { Services } from "../../services";
import { setOffsetPageHeaders } from "../../http/paging";
import { ConversationParams, jsonBodyOnly, queryIntegers, Run, RunList, RunWithTransitions } from "../shared-models";
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
      { params: ConversationParams, body: StartRunBody, response: { 201: Run }, detail: { summary: "Start a run owned by the caller (a participant)" } },
    )
    .get(
      "",
      async ({ principal, params, query, request, set }) => {
        const page = await listRuns(services, principal, params.id, query);
        setOffsetPageHeaders(set.headers, request, services.config.publicUrl, { ...page, returned: page.items.length });
        return page.items;
      },
      {
        params: ConversationParams,
        query: ListRunsQuery,
        transform: queryIntegers(ListRunsQuery),
        response: { 200: RunList },
        detail: { summary: "The conversation's runs, newest first, optionally by state (active, paused, preempted, ended); paged like every list" },
      },
    )
    .get("/:runId", ({ principal, params }) => getRun(services, principal, params.id, params.runId), {
      params: RunParams,
      response: { 200: RunWithTransitions },
      detail: { summary: "A run and its transitions (the stored control messages)" },
    })
    .post("/:runId/complete", ({ principal, params }) => endRun(services, principal, params.id, params.runId, "completed"), {
      params: RunParams,
      response: { 200: Run },
      detail: { summary: "The owner ends its run: completed" },
    })
    .post("/:runId/fail", ({ principal, params, body }) => endRun(services, principal, params.id, params.runId, "failed", body?.reason), {
      params: RunParams,
      body: FailRunBody,
      response: { 200: Run },
      detail: { summary: "The owner ends its run: failed, with an optional reason" },
    });
}
