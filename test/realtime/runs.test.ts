/**
 * Runs over the WebSocket: transitions and refusals as acks, run:started / run:ended frames, a late joiner
 * told what is streaming, the preemption that follows its message, and the SDK's run handle whose abort
 * signal stops an agent loop within one event.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RunHandle } from "../../src/client";
import { startTestServer, type TestServer } from "../support/server";
import { useEndToEndTimeout } from "../support/timeout";
import { groupConversation, joinedSocket, openSocket, sdkClient } from "./helpers";

useEndToEndTimeout();

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

async function stage() {
  const owner = await server.principal();
  const agent = await server.principal({ type: "agent" });
  const other = await server.principal({ type: "agent" });
  const supervisor = await server.principal({ entitlements: ["cap:messaging.interrupt", "cap:messaging.route"] });
  const conversationId = await groupConversation(server, owner, [agent, other, supervisor]);
  return { owner, agent, other, supervisor, conversationId };
}

describe("runs over the WebSocket", () => {
  test("a send naming a run starts it (run:started before its message), transitions and refusals come as acks", async () => {
    const { owner, agent, supervisor, conversationId } = await stage();
    const watcher = await joinedSocket(server, owner, conversationId);
    const agentSocket = await joinedSocket(server, agent, conversationId);
    const supervisorSocket = await joinedSocket(server, supervisor, conversationId);

    const first = await agentSocket.request("message:send", { conversationId, content: "Thinking", runId: "ws-run" });
    expect(first.ok).toBe(true);
    const started = await watcher.next("run:started");
    expect(started.data).toMatchObject({ id: "ws-run", owner_id: agent.id, state: "active" });
    const newMessage = await watcher.next("message:new");
    expect(watcher.frames.indexOf(started)).toBeLessThan(watcher.frames.indexOf(newMessage));

    const pause = await supervisorSocket.request("control:send", { conversationId, event: "stream.pause", runId: "ws-run" });
    expect(pause.ok).toBe(true);
    expect((await agentSocket.next("stream.pause")).data).toMatchObject({ runId: "ws-run", from: "active", to: "paused" });
    const refused = await agentSocket.request("message:send", { conversationId, content: "more", runId: "ws-run" });
    expect(refused.error).toMatchObject({ code: "run_paused", state: "paused" });
    const again = await supervisorSocket.request("control:send", { conversationId, event: "stream.pause", runId: "ws-run" });
    expect(again.error).toMatchObject({ code: "invalid_transition", state: "paused" });

    const cancel = await watcher.request("control:send", { conversationId, event: "stream.cancel", runId: "ws-run" });
    expect(cancel.ok).toBe(true);
    expect((await agentSocket.next("run:ended")).data).toMatchObject({ conversationId, runId: "ws-run", state: "cancelled", endReason: "cancelled" });
    expect((await agentSocket.request("message:send", { conversationId, content: "late", runId: "ws-run" })).error).toMatchObject({ code: "run_ended" });
    for (const socket of [watcher, agentSocket, supervisorSocket]) socket.close();
  });

  test("a client joining late learns the open runs from the join ack", async () => {
    const { owner, agent, other, supervisor, conversationId } = await stage();
    const client = sdkClient(server, agent);
    await client.createRun(conversationId, { runId: "streaming", priority: "low" });
    await sdkClient(server, other).createRun(conversationId, { runId: "waiting" });
    await server.request("POST", `/api/conversations/${conversationId}/control`, { as: supervisor, body: { event: "stream.pause", runId: "waiting" } });
    const done = await client.createRun(conversationId, { runId: "done" });
    await client.completeRun(conversationId, done.id);

    const late = await openSocket(server, owner);
    const ack = await late.request("join:conversation", { conversationId });
    expect(ack.data.runs.map((r: any) => [r.id, r.owner_id, r.state, r.priority])).toEqual([
      ["streaming", agent.id, "active", "low"],
      ["waiting", other.id, "paused", "normal"],
    ]);
    late.close();
  });

  test("a critical correction preempts the agent's run: the preempt follows the message for every observer", async () => {
    const { owner, agent, conversationId } = await stage();
    const watcher = await joinedSocket(server, owner, conversationId);
    const agentSocket = await joinedSocket(server, agent, conversationId);
    await sdkClient(server, agent).createRun(conversationId, { runId: "long-answer", priority: "normal" });
    const correction = await watcher.request("message:send", { conversationId, content: "Stop: use metric units", priority: "critical" });
    expect(correction.ok).toBe(true);
    for (const socket of [watcher, agentSocket]) {
      const message = await socket.next((f) => f.event === "message:new" && f.data.id === correction.data.id);
      const preempt = await socket.next("stream.preempt");
      expect(preempt.data).toMatchObject({
        runId: "long-answer",
        preemptedBy: correction.data.id,
        reason: "priority",
        senderId: "symbia-messaging",
        sequence: correction.data.sequence + 1,
        from: "active",
        to: "preempted",
      });
      expect(socket.frames.indexOf(message)).toBeLessThan(socket.frames.indexOf(preempt));
    }
    watcher.close();
    agentSocket.close();
  });
});

describe("the SDK's run handle", () => {
  /** An "agent" that produces a token every 5 ms until its run's signal aborts; resolves with when it stopped. */
  function agentLoop(run: RunHandle): Promise<{ stoppedAt: number; tokens: number }> {
    const signal = run.signal;
    return new Promise((resolve) => {
      let tokens = 0;
      const timer = setInterval(() => {
        if (signal.aborted) return;
        tokens++;
      }, 5);
      signal.addEventListener("abort", () => {
        clearInterval(timer);
        resolve({ stoppedAt: performance.now(), tokens });
      });
    });
  }

  test.each([
    ["stream.pause", "paused", "paused"],
    ["stream.preempt", "preempted", "preempted"],
    ["stream.cancel", "cancelled", "cancelled"],
    ["stream.handoff", "active", "handed-off"],
  ] as const)("%s aborts the run's signal within 100 ms", async (event, state, reason) => {
    const { agent, other, supervisor, conversationId } = await stage();
    const client = sdkClient(server, agent);
    const socket = client.realtime();
    await socket.connect();
    const run = await client.startRun(conversationId, { socket, priority: "low" });
    expect(run.state).toBe("active");
    expect(run.mayContinue).toBe(true);
    const changes: string[] = [];
    run.onStateChange((change) => changes.push(change.state));
    const loop = agentLoop(run);
    await Bun.sleep(30);
    const res = await server.request("POST", `/api/conversations/${conversationId}/control`, {
      as: supervisor,
      body: { event, runId: run.id, target: other.id },
    });
    expect(res.status).toBe(201);
    // The event is published before the REST answer leaves: the loop stops within 100 ms of the answer
    // (usually before it), whatever the request itself took on a loaded machine.
    const answeredAt = performance.now();
    const { stoppedAt, tokens } = await loop;
    expect(stoppedAt - answeredAt).toBeLessThan(100);
    expect(tokens).toBeGreaterThan(0);
    expect(run.signal.aborted).toBe(true);
    expect(RunHandle.reasonOf(run.signal)).toBe(reason);
    expect(run.state).toBe(state);
    expect(changes).toEqual([state]);
    socket.close();
  });

  test("after a resume the handle has a fresh signal and posts again; complete ends it", async () => {
    const { agent, supervisor, conversationId } = await stage();
    const client = sdkClient(server, agent);
    const socket = client.realtime();
    await socket.connect();
    const run = await client.startRun(conversationId, { socket });
    expect((await run.send({ content: "part 1" })).run_id).toBe(run.id);
    const control = (event: string) =>
      server.request("POST", `/api/conversations/${conversationId}/control`, { as: supervisor, body: { event, runId: run.id } });
    const paused = run.signal;
    await control("stream.pause");
    await new Promise((resolve) => (paused.aborted ? resolve(null) : paused.addEventListener("abort", resolve)));
    await expect(run.send({ content: "while paused" })).rejects.toMatchObject({ code: "run_paused" });
    await control("stream.resume");
    const deadline = Date.now() + 2000;
    while (!run.mayContinue && Date.now() < deadline) await Bun.sleep(5);
    expect(run.signal.aborted).toBe(false);
    expect(run.signal).not.toBe(paused);
    expect((await run.send({ content: "part 2" })).sequence).toBeGreaterThan(0);
    const completed = await run.complete();
    expect(completed.state).toBe("completed");
    expect(RunHandle.reasonOf(run.signal)).toBe("completed");
    socket.close();
  });
});
