/**
 * Agent runs: the state the stream.* events change, who may change it, sends enforced against it,
 * automatic preemption, and transitions that race. REST here; the WebSocket and the SDK in
 * test/realtime/runs.test.ts; two instances in test/cluster/runs.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestServer, type TestPrincipal, type TestServer } from "../support/server";
import { useEndToEndTimeout } from "../support/timeout";
import { createConversation, expectError, expectStatus, UNKNOWN_ID } from "./fixtures";

useEndToEndTimeout();

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.stop());

const INTERRUPT = "cap:messaging.interrupt";
const ROUTE = "cap:messaging.route";

/** An owner (a person), an agent that runs, a second agent, a supervisor with both capabilities, a plain member. */
async function stage(metadata?: Record<string, unknown>) {
  const owner = await t.principal();
  const agent = await t.principal({ type: "agent" });
  const agent2 = await t.principal({ type: "agent" });
  const supervisor = await t.principal({ entitlements: [INTERRUPT, ROUTE] });
  const member = await t.principal();
  const conversation = await createConversation(t, owner, { members: [agent, agent2, supervisor, member], metadata });
  return { id: conversation.id, owner, agent, agent2, supervisor, member };
}

const runs = (id: string) => `/api/conversations/${id}/runs`;
const start = (as: TestPrincipal, id: string, body: Record<string, unknown> = {}) => t.request("POST", runs(id), { as, body });
const control = (as: TestPrincipal, id: string, body: Record<string, unknown>) => t.request("POST", `/api/conversations/${id}/control`, { as, body });
const send = (as: TestPrincipal, id: string, body: Record<string, unknown>) =>
  t.request("POST", `/api/conversations/${id}/messages`, { as, body: { content: "token", ...body } });
const stateOf = async (as: TestPrincipal, id: string, runId: string) => (await t.request("GET", `${runs(id)}/${encodeURIComponent(runId)}`, { as })).body.state;

/** Puts a fresh run of `agent` in `state` (through legal transitions by the supervisor). */
async function runIn(s: Awaited<ReturnType<typeof stage>>, state: string): Promise<string> {
  const res = await start(s.agent, s.id);
  expectStatus(res, 201);
  const runId = res.body.id as string;
  const path: Record<string, string[]> = {
    active: [],
    paused: ["stream.pause"],
    preempted: ["stream.preempt"],
    cancelled: ["stream.cancel"],
  };
  for (const event of path[state] ?? []) expectStatus(await control(s.supervisor, s.id, { event, runId }), 201);
  if (state === "completed") expectStatus(await t.request("POST", `${runs(s.id)}/${runId}/complete`, { as: s.agent, body: {} }), 200);
  return runId;
}

describe("starting and reading runs", () => {
  test("POST /runs starts an active run owned by the caller; the id may be chosen; a repeated id is 409", async () => {
    const s = await stage();
    const res = await start(s.agent, s.id, { runId: "answer #1 / draft", priority: "low", interruptible: false, metadata: { model: "m" } });
    expectStatus(res, 201);
    expect(res.body).toMatchObject({
      id: "answer #1 / draft",
      conversation_id: s.id,
      owner_id: s.agent.id,
      owner_type: "agent",
      state: "active",
      priority: "low",
      interruptible: false,
      ended_at: null,
      end_reason: null,
      preempted_by: null,
      metadata: { model: "m" },
    });
    expectError(await start(s.agent2, s.id, { runId: "answer #1 / draft" }), 409, "run_exists");
    const generated = await start(s.agent, s.id);
    expect(generated.body.id).toMatch(/^[0-9a-f-]{36}$/);
    const got = await t.request("GET", `${runs(s.id)}/${encodeURIComponent("answer #1 / draft")}`, { as: s.member });
    expectStatus(got, 200);
    expect(got.body).toMatchObject({ id: "answer #1 / draft", state: "active", transitions: [] });
  });

  test("a message naming an unknown run starts it, owned by the sender, announced to nobody twice", async () => {
    const s = await stage();
    const first = await send(s.agent, s.id, { runId: "implicit", priority: "high" });
    expectStatus(first, 201);
    const run = (await t.request("GET", `${runs(s.id)}/implicit`, { as: s.owner })).body;
    expect(run).toMatchObject({ id: "implicit", owner_id: s.agent.id, state: "active", priority: "high" });
    expectStatus(await send(s.agent, s.id, { runId: "implicit" }), 201);
    expect((await t.request("GET", runs(s.id), { as: s.owner })).body.map((r: any) => r.id)).toEqual(["implicit"]);
  });

  test("listing: newest first, by state; strangers 403, unknown run 404, bad input 400", async () => {
    const s = await stage();
    const a = await runIn(s, "active");
    const p = await runIn(s, "paused");
    const c = await runIn(s, "cancelled");
    const all = (await t.request("GET", runs(s.id), { as: s.member })).body.map((r: any) => r.id);
    expect(all).toEqual([c, p, a]);
    expect((await t.request("GET", `${runs(s.id)}?state=paused`, { as: s.member })).body.map((r: any) => r.id)).toEqual([p]);
    expect((await t.request("GET", `${runs(s.id)}?state=ended`, { as: s.member })).body.map((r: any) => r.id)).toEqual([c]);
    expectError(await t.request("GET", `${runs(s.id)}?state=sleeping`, { as: s.member }), 400, "invalid_input");
    const stranger = await t.principal();
    expectError(await t.request("GET", runs(s.id), { as: stranger }), 403, "not_participant");
    expectError(await t.request("GET", `${runs(s.id)}/${a}`, { as: stranger }), 403, "not_participant");
    expectError(await start(stranger, s.id), 403, "not_participant");
    expectError(await t.request("GET", `${runs(s.id)}/nope`, { as: s.member }), 404, "not_found");
    expectError(await start(s.agent, s.id, { priority: "urgent" }), 400, "invalid_input");
    expectError(await start(s.agent, s.id, { runId: "" }), 400, "invalid_input");
    expectError(await start(s.agent, s.id, { runId: "x".repeat(256) }), 400, "invalid_input");
    expectError(await start(s.agent, UNKNOWN_ID), 404, "not_found");
  });

  test("the transitions are the stored control messages, in sequence, with from and to", async () => {
    const s = await stage();
    const runId = await runIn(s, "active");
    expectStatus(await control(s.supervisor, s.id, { event: "stream.pause", runId, reason: "wait" }), 201);
    expectStatus(await control(s.agent, s.id, { event: "stream.resume", runId }), 201);
    const run = (await t.request("GET", `${runs(s.id)}/${runId}`, { as: s.member })).body;
    expect(run.transitions).toMatchObject([
      { event: "stream.pause", from: "active", to: "paused", by: s.supervisor.id, sequence: 1, reason: "wait" },
      { event: "stream.resume", from: "paused", to: "active", by: s.agent.id, sequence: 2 },
    ]);
  });
});

describe("the transition table", () => {
  const legal: [string, string, string][] = [
    ["stream.pause", "active", "paused"],
    ["stream.resume", "paused", "active"],
    ["stream.resume", "preempted", "active"],
    ["stream.preempt", "active", "preempted"],
    ["stream.preempt", "paused", "preempted"],
    ["stream.cancel", "active", "cancelled"],
    ["stream.cancel", "paused", "cancelled"],
    ["stream.cancel", "preempted", "cancelled"],
    ["stream.priority", "active", "active"],
    ["stream.priority", "paused", "paused"],
    ["stream.priority", "preempted", "preempted"],
    ["stream.route", "active", "active"],
    ["stream.route", "paused", "paused"],
    ["stream.handoff", "preempted", "preempted"],
  ];
  test.each(legal)("%s from %s → %s", async (event, from, to) => {
    const s = await stage();
    const runId = await runIn(s, from);
    const res = await control(s.supervisor, s.id, { event, runId, target: s.agent2.id, priority: "critical" });
    expectStatus(res, 201);
    expect(res.body.metadata.control).toMatchObject({ event, from, to });
    const run = (await t.request("GET", `${runs(s.id)}/${runId}`, { as: s.owner })).body;
    expect(run.state).toBe(to);
    if (event === "stream.route" || event === "stream.handoff") expect(run.owner_id).toBe(s.agent2.id);
    if (event === "stream.priority") expect(run.priority).toBe("critical");
    if (to === "cancelled") expect(run).toMatchObject({ end_reason: "cancelled", ended_at: expect.any(String) });
  });

  const illegal: [string, string][] = [
    ["stream.pause", "paused"],
    ["stream.pause", "preempted"],
    ["stream.resume", "active"],
    ["stream.preempt", "preempted"],
  ];
  test.each(illegal)("%s from %s → 409 invalid_transition with the state", async (event, from) => {
    const s = await stage();
    const runId = await runIn(s, from);
    const res = await control(s.supervisor, s.id, { event, runId });
    expectError(res, 409, "invalid_transition", { state: from });
    expect(await stateOf(s.owner, s.id, runId)).toBe(from);
  });

  test.each(["stream.pause", "stream.resume", "stream.preempt", "stream.cancel", "stream.route", "stream.handoff", "stream.priority"])(
    "%s on an ended run → 409 run_ended; on an unknown run → 404",
    async (event) => {
      const s = await stage();
      for (const ended of ["cancelled", "completed"]) {
        const runId = await runIn(s, ended);
        const res = await control(s.supervisor, s.id, { event, runId, target: s.agent2.id, priority: "low" });
        expectError(res, 409, "run_ended", { state: ended });
      }
      expectError(await control(s.supervisor, s.id, { event, runId: "never-started", target: s.agent2.id, priority: "low" }), 404, "not_found");
    },
  );

  test("without runId an event applies to every run that can take it; with none, it is stored as before", async () => {
    const s = await stage();
    const a = await runIn(s, "active");
    const b = await runIn(s, "active");
    const p = await runIn(s, "paused");
    const res = await control(s.supervisor, s.id, { event: "stream.pause" });
    expectStatus(res, 201);
    expect([await stateOf(s.owner, s.id, a), await stateOf(s.owner, s.id, b), await stateOf(s.owner, s.id, p)]).toEqual(["paused", "paused", "paused"]);
    // One stored transition per run that took it, each with its run id.
    const messages = (await t.request("GET", `/api/conversations/${s.id}/messages`, { as: s.owner })).body;
    const pauses = messages.filter((m: any) => m.content === "stream.pause" && m.sequence >= res.body.sequence);
    expect(pauses.map((m: any) => m.run_id).sort()).toEqual([a, b].sort());

    const quiet = await stage();
    const plain = await control(quiet.supervisor, quiet.id, { event: "stream.pause", reason: "old client" });
    expectStatus(plain, 201);
    expect(plain.body).toMatchObject({ content: "stream.pause", run_id: null });
    expect(plain.body.metadata.control.from).toBeUndefined();
  });
});

describe("who may", () => {
  test("the run's owner pauses, resumes and changes priority without any capability; others need cap:messaging.interrupt", async () => {
    const s = await stage();
    const runId = await runIn(s, "active");
    for (const event of ["stream.pause", "stream.preempt", "stream.priority"]) {
      expectError(await control(s.member, s.id, { event, runId, priority: "high" }), 403, "missing_entitlement");
      expectError(await control(s.agent2, s.id, { event, runId, priority: "high" }), 403, "missing_entitlement");
    }
    expectStatus(await control(s.agent, s.id, { event: "stream.pause", runId }), 201);
    expectStatus(await control(s.agent, s.id, { event: "stream.resume", runId }), 201);
    expectStatus(await control(s.agent, s.id, { event: "stream.priority", runId, metadata: { priority: "high" } }), 201);
    expect((await t.request("GET", `${runs(s.id)}/${runId}`, { as: s.owner })).body.priority).toBe("high");
    expectError(await control(s.agent, s.id, { event: "stream.priority", runId }), 400, "invalid_input");
  });

  test("a person can always stop an agent: the conversation's owner and admins cancel; a plain member cannot", async () => {
    const s = await stage();
    const runId = await runIn(s, "active");
    expectError(await control(s.member, s.id, { event: "stream.cancel", runId }), 403, "missing_entitlement");
    expectError(await control(s.owner, s.id, { event: "stream.pause", runId }), 403, "missing_entitlement");
    expectStatus(await control(s.owner, s.id, { event: "stream.cancel", runId }), 201);
    expect(await stateOf(s.owner, s.id, runId)).toBe("cancelled");
    // Without runId, the owner's cancel stops every run.
    const r1 = await runIn(s, "active");
    const r2 = await runIn(s, "paused");
    expectStatus(await control(s.owner, s.id, { event: "stream.cancel" }), 201);
    expect([await stateOf(s.owner, s.id, r1), await stateOf(s.owner, s.id, r2)]).toEqual(["cancelled", "cancelled"]);
  });

  test("route needs cap:messaging.route; handoff that or being the owner; the target must participate", async () => {
    const s = await stage();
    const runId = await runIn(s, "active");
    expectError(await control(s.agent, s.id, { event: "stream.route", runId, target: s.agent2.id }), 403, "missing_entitlement");
    expectError(await control(s.member, s.id, { event: "stream.handoff", runId, target: s.agent2.id }), 403, "missing_entitlement");
    const stranger = await t.principal({ type: "agent" });
    expectError(await control(s.agent, s.id, { event: "stream.handoff", runId, target: stranger.id }), 400, "invalid_target");
    expectStatus(await control(s.agent, s.id, { event: "stream.handoff", runId, target: s.agent2.id }), 201);
    expect((await t.request("GET", `${runs(s.id)}/${runId}`, { as: s.owner })).body.owner_id).toBe(s.agent2.id);
    expectStatus(await control(s.supervisor, s.id, { event: "stream.route", runId, target: s.agent.id }), 201);
    expect((await t.request("GET", `${runs(s.id)}/${runId}`, { as: s.owner })).body.owner_id).toBe(s.agent.id);
  });

  test("complete and fail: the owner only, once", async () => {
    const s = await stage();
    const runId = await runIn(s, "active");
    expectError(await t.request("POST", `${runs(s.id)}/${runId}/complete`, { as: s.supervisor, body: {} }), 403, "forbidden");
    const failed = await t.request("POST", `${runs(s.id)}/${runId}/fail`, { as: s.agent, body: { reason: "model timed out" } });
    expectStatus(failed, 200);
    expect(failed.body).toMatchObject({ state: "failed", end_reason: "model timed out", ended_at: expect.any(String) });
    expectError(await t.request("POST", `${runs(s.id)}/${runId}/complete`, { as: s.agent, body: {} }), 409, "run_ended", { state: "failed" });
    expectError(await t.request("POST", `${runs(s.id)}/nope/complete`, { as: s.agent, body: {} }), 404, "not_found");
  });
});

describe("sends into a run", () => {
  test("paused or preempted: 409 run_paused; resumed: accepted again; ended: run_ended; messages without runId unaffected", async () => {
    const s = await stage();
    const runId = await runIn(s, "active");
    expectStatus(await send(s.agent, s.id, { runId }), 201);
    expectStatus(await control(s.supervisor, s.id, { event: "stream.pause", runId }), 201);
    expectError(await send(s.agent, s.id, { runId }), 409, "run_paused", { state: "paused" });
    expectStatus(await send(s.agent, s.id, {}), 201);
    expectStatus(await control(s.supervisor, s.id, { event: "stream.preempt", runId }), 201);
    expectError(await send(s.agent, s.id, { runId }), 409, "run_paused", { state: "preempted" });
    expectStatus(await control(s.supervisor, s.id, { event: "stream.resume", runId }), 201);
    expectStatus(await send(s.agent, s.id, { runId }), 201);
    expectStatus(await control(s.owner, s.id, { event: "stream.cancel", runId }), 201);
    expectError(await send(s.agent, s.id, { runId }), 409, "run_ended", { state: "cancelled" });
    // Refusals leave no gap in the sequence.
    const messages = (await t.request("GET", `/api/conversations/${s.id}/messages`, { as: s.owner })).body;
    expect(messages.map((m: any) => m.sequence)).toEqual(messages.map((_: unknown, i: number) => i + 1));
  });

  test("after a handoff only the new owner posts into the run", async () => {
    const s = await stage();
    const runId = await runIn(s, "active");
    expectStatus(await control(s.agent, s.id, { event: "stream.handoff", runId, target: s.agent2.id }), 201);
    expectError(await send(s.agent, s.id, { runId }), 409, "not_run_owner", { state: "active" });
    expectStatus(await send(s.agent2, s.id, { runId }), 201);
    expectError(await send(s.member, s.id, { runId }), 409, "not_run_owner", { state: "active" });
  });
});

describe("automatic preemption", () => {
  test("a message of higher priority from someone else preempts an active, interruptible run, right after it", async () => {
    const s = await stage();
    const low = (await start(s.agent, s.id, { priority: "low" })).body.id;
    const keep = (await start(s.agent2, s.id, { priority: "low", interruptible: false })).body.id;
    const high = (await start(s.agent2, s.id, { priority: "high" })).body.id;
    const correction = await send(s.owner, s.id, { content: "stop, that is wrong", priority: "critical" });
    expectStatus(correction, 201);
    const lowRun = (await t.request("GET", `${runs(s.id)}/${low}`, { as: s.owner })).body;
    expect(lowRun).toMatchObject({ state: "preempted", preempted_by: correction.body.id });
    expect(lowRun.transitions).toMatchObject([
      { event: "stream.preempt", from: "active", to: "preempted", by: "symbia-messaging", sequence: correction.body.sequence + 1, reason: "priority" },
    ]);
    expect(await stateOf(s.owner, s.id, keep)).toBe("active");
    // critical > high: preempted too, after the first preemption.
    expect(await stateOf(s.owner, s.id, high)).toBe("preempted");
    expectError(await send(s.agent, s.id, { runId: low }), 409, "run_paused", { state: "preempted" });
    expectStatus(await control(s.agent, s.id, { event: "stream.resume", runId: low }), 201);
    expectStatus(await send(s.agent, s.id, { runId: low }), 201);
  });

  test("not by the run's owner, not by equal priority, not when the conversation turned it off", async () => {
    const s = await stage();
    const runId = (await start(s.agent, s.id, { priority: "normal" })).body.id;
    expectStatus(await send(s.agent, s.id, { priority: "critical" }), 201);
    expectStatus(await send(s.owner, s.id, { priority: "normal" }), 201);
    expect(await stateOf(s.owner, s.id, runId)).toBe("active");
    expectStatus(await send(s.owner, s.id, { priority: "high" }), 201);
    expect(await stateOf(s.owner, s.id, runId)).toBe("preempted");

    const off = await stage({ autoPreempt: false });
    const calm = (await start(off.agent, off.id, { priority: "low" })).body.id;
    expectStatus(await send(off.owner, off.id, { priority: "critical" }), 201);
    expect(await stateOf(off.owner, off.id, calm)).toBe("active");
  });
});

describe("concurrent transitions", () => {
  test("pause and cancel racing on 50 fresh runs: one outcome each, consistent with the stored transitions", async () => {
    const s = await stage();
    for (let round = 0; round < 50; round++) {
      const runId = (await start(s.agent, s.id)).body.id;
      const [pause, cancel] = await Promise.all([
        control(s.supervisor, s.id, { event: "stream.pause", runId }),
        control(s.owner, s.id, { event: "stream.cancel", runId }),
      ]);
      expect(cancel.status).toBe(201);
      expect([201, 409]).toContain(pause.status);
      const run = (await t.request("GET", `${runs(s.id)}/${runId}`, { as: s.owner })).body;
      expect(run.state).toBe("cancelled");
      const chain = run.transitions.map((x: any) => `${x.from}>${x.to}`);
      // Either pause then cancel from paused, or cancel alone (the pause then found the run ended).
      if (pause.status === 201) expect(chain).toEqual(["active>paused", "paused>cancelled"]);
      else {
        expect(pause.body.code).toBe("run_ended");
        expect(chain).toEqual(["active>cancelled"]);
      }
    }
  });
});
