/**
 * POST /api/conversations/:id/control: control events stored in the conversation's sequence, their
 * entitlements, targets and references, and who may send them.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestServer, type TestPrincipal, type TestServer } from "../support/server";
import { UNKNOWN_ID, createConversation, expectError, expectStatus, listMessages, sendMessage } from "./fixtures";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.stop());

const INTERRUPT = "cap:messaging.interrupt";
const ROUTE = "cap:messaging.route";
const INTERRUPT_EVENTS = ["stream.pause", "stream.resume", "stream.preempt", "stream.cancel", "stream.priority"];
const ROUTING_EVENTS = ["stream.route", "stream.handoff"];

const controlPath = (id: string) => `/api/conversations/${id}/control`;

/** A conversation with an owner, an operator holding both capabilities, a plain member and an agent. */
async function stage() {
  const org = await t.org();
  const owner = await t.principal({ orgs: [org] });
  const operator = await t.principal({ orgs: [org], entitlements: [INTERRUPT, ROUTE] });
  const member = await t.principal({ orgs: [org] });
  const agent = await t.principal({ type: "agent", entitlements: [INTERRUPT] });
  const conversation = await createConversation(t, owner, { orgId: org, members: [operator, member, agent] });
  return { org, id: conversation.id, participants: conversation.participants, owner, operator, member, agent };
}

const send = (as: TestPrincipal, id: string, body: unknown, headers?: Record<string, string>) =>
  t.request("POST", controlPath(id), { as, body, headers });

describe("control events", () => {
  test.each([...INTERRUPT_EVENTS, ...ROUTING_EVENTS])("%s is stored as an event message (201)", async (event) => {
    const { id, org, operator, member } = await stage();
    await sendMessage(t, member, id);
    // No run in the conversation: the event is stored and broadcast as it is (runs: test/domain/runs.test.ts).
    const res = await send(operator, id, { event, target: member.id, reason: "because", traceId: "trace-9" });
    expectStatus(res, 201);
    expect(res.body).toMatchObject({
      conversation_id: id,
      sender_id: operator.id,
      content: event,
      content_type: "event",
      priority: "high",
      interruptible: false,
      sequence: 2,
      org_id: org,
      run_id: null,
      trace_id: "trace-9",
      version: 1,
    });
    expect(res.body.metadata.control).toMatchObject({ event, reason: "because", target: { principalId: member.id, principalType: "user" } });
    // It takes its place in the conversation's sequence, in the list like any message.
    const listed = await listMessages(t, member, id);
    expect(listed.map((m) => [m.sequence, m.content_type])).toEqual([
      [1, "text/plain"],
      [2, "event"],
    ]);
    expect((await sendMessage(t, member, id)).sequence).toBe(3);
  });

  test("interrupt events need cap:messaging.interrupt (403 without it, or with only the route capability)", async () => {
    const { id, owner, member } = await stage();
    const router = await t.principal({ entitlements: [ROUTE] });
    expectStatus(await t.request("POST", `/api/conversations/${id}/participants`, { as: owner, body: { userId: router.id } }), 201);
    for (const event of INTERRUPT_EVENTS) {
      expectError(await send(member, id, { event }), 403, "missing_entitlement");
      expectError(await send(owner, id, { event }), 403, "missing_entitlement");
      expectError(await send(router, id, { event }), 403, "missing_entitlement");
    }
  });

  test("route and handoff need cap:messaging.route (403 with only the interrupt capability)", async () => {
    const { id, agent, member } = await stage();
    for (const event of ROUTING_EVENTS) {
      expectError(await send(agent, id, { event, target: member.id }), 403, "missing_entitlement");
      expectError(await send(member, id, { event, target: member.id }), 403, "missing_entitlement");
    }
  });

  test("an agent whose API key carries the capability sends with sender_type agent; super admins hold every capability", async () => {
    const { id, owner, agent } = await stage();
    const res = await send(agent, id, { event: "stream.cancel" });
    expectStatus(res, 201);
    expect(res.body.sender_type).toBe("agent");
    expect(res.body.metadata.control).toEqual({ event: "stream.cancel" });
    const superAdmin = await t.principal({ superAdmin: true });
    expectStatus(await t.request("POST", `/api/conversations/${id}/participants`, { as: owner, body: { userId: superAdmin.id } }), 201);
    expectStatus(await send(superAdmin, id, { event: "stream.handoff", target: owner.id }), 201);
  });

  test("route and handoff must target a participant: by principal id, participant id or object", async () => {
    const { id, operator, member, agent, participants } = await stage();
    const agentParticipant = participants.find((p: any) => p.user_id === agent.id);
    const byParticipantId = await send(operator, id, { event: "stream.handoff", target: agentParticipant.id });
    expectStatus(byParticipantId, 201);
    expect(byParticipantId.body.metadata.control.target).toEqual({
      principalId: agent.id,
      principalType: "agent",
      participantId: agentParticipant.id,
    });
    const byObject = await send(operator, id, { event: "stream.route", target: { principalId: member.id } });
    expectStatus(byObject, 201);
    expect(byObject.body.metadata.control.target.principalId).toBe(member.id);

    const outsider = await t.principal();
    for (const event of ROUTING_EVENTS) {
      expectError(await send(operator, id, { event, target: outsider.id }), 400, "invalid_target");
      expectError(await send(operator, id, { event, target: { principalId: "assistant:nobody" } }), 400, "invalid_target");
      expectError(await send(operator, id, { event, target: UNKNOWN_ID }), 400, "invalid_target");
      expectError(await send(operator, id, { event }), 400, "target_required");
    }
  });

  test("other events carry a target that does not participate as given", async () => {
    const { id, operator } = await stage();
    const res = await send(operator, id, { event: "stream.pause", target: { principalId: "assistant:elsewhere", principalType: "agent" } });
    expectStatus(res, 201);
    expect(res.body.metadata.control.target).toEqual({ principalId: "assistant:elsewhere", principalType: "agent" });
  });

  test("preemptedBy must name a message of the same conversation", async () => {
    const { id, operator, member } = await stage();
    const message = await sendMessage(t, member, id);
    const res = await send(operator, id, { event: "stream.preempt", preemptedBy: message.id });
    expectStatus(res, 201);
    expect(res.body.preempted_by).toBe(message.id);
    expect(res.body.metadata.control.preemptedBy).toBe(message.id);

    const other = await stage();
    const foreign = await sendMessage(t, other.member, other.id);
    expectError(await send(operator, id, { event: "stream.preempt", preemptedBy: foreign.id }), 400, "invalid_reference");
    expectError(await send(operator, id, { event: "stream.preempt", preemptedBy: UNKNOWN_ID }), 400, "invalid_reference");
    expectError(await send(operator, id, { event: "stream.preempt", preemptedBy: "nope" }), 400, "invalid_input");
  });

  test("metadata and scope headers are kept beside the control payload", async () => {
    const { id, operator } = await stage();
    const res = await send(
      operator,
      id,
      { event: "stream.priority", metadata: { level: "urgent", control: "overwritten" } },
      { "x-service-id": "orchestrator", "x-data-class": "secret", "x-policy-ref": "p-1" },
    );
    expectStatus(res, 201);
    expect(res.body.metadata).toEqual({ level: "urgent", serviceId: "orchestrator", control: { event: "stream.priority" } });
    expect(res.body.data_class).toBe("secret");
    expect(res.body.policy_ref).toBe("p-1");
  });

  test("invalid input is 400; oversized metadata 413", async () => {
    const { id, operator } = await stage();
    for (const body of [{}, { event: "stream.explode" }, { event: "pause" }, { event: 1 }, { event: "stream.pause", reason: 5 }, { event: "stream.pause", target: 5 }]) {
      expectError(await send(operator, id, body), 400, "invalid_input");
    }
    expectError(await send(operator, id, { event: "stream.pause", reason: "x".repeat(2001) }), 400);
    expectError(await send(operator, id, { event: "stream.pause", metadata: { v: "x".repeat(t.config.maxMessageBytes) } }), 413, "too_large");
  });

  test("a non-participant with the capability is 403; unknown or malformed conversations 404; no credentials 401", async () => {
    const { id } = await stage();
    const outsider = await t.principal({ entitlements: [INTERRUPT, ROUTE] });
    expectError(await send(outsider, id, { event: "stream.pause" }), 403, "not_participant");
    expectError(await send(outsider, UNKNOWN_ID, { event: "stream.pause" }), 404);
    expectError(await send(outsider, "not-a-uuid", { event: "stream.pause" }), 404);
    expectError(await t.request("POST", controlPath(id), { body: { event: "stream.pause" } }), 401);
  });
});
