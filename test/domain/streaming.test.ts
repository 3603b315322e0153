/**
 * Streaming messages over REST: create, append, finish; who may append and when; the size limit; reads
 * during a stream; runs that pause, resume and cancel. The WebSocket, joins with resume and a killed
 * process are in test/realtime/streaming.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestServer, type TestPrincipal, type TestServer } from "../support/server";
import { useEndToEndTimeout } from "../support/timeout";
import { createConversation, expectError, expectStatus } from "./fixtures";

useEndToEndTimeout();

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ MAX_MESSAGE_BYTES: "1000", STREAM_FLUSH_MS: "50" });
});
afterAll(() => t.stop());

async function stage() {
  const owner = await t.principal();
  const agent = await t.principal({ type: "agent" });
  const supervisor = await t.principal({ entitlements: ["cap:messaging.interrupt"] });
  const conversation = await createConversation(t, owner, { members: [agent, supervisor] });
  return { id: conversation.id as string, owner, agent, supervisor };
}

const messages = (id: string) => `/api/conversations/${id}/messages`;
const open = (as: TestPrincipal, id: string, body: Record<string, unknown> = {}) =>
  t.request("POST", messages(id), { as, body: { content: "", streaming: true, ...body } });
const append = (as: TestPrincipal, id: string, mid: string, delta: string) => t.request("POST", `${messages(id)}/${mid}/append`, { as, body: { delta } });
const finish = (as: TestPrincipal, id: string, mid: string, body: Record<string, unknown> = {}) =>
  t.request("POST", `${messages(id)}/${mid}/finish`, { as, body });
const control = (as: TestPrincipal, id: string, body: Record<string, unknown>) => t.request("POST", `/api/conversations/${id}/control`, { as, body });

describe("a streaming message over REST", () => {
  test("is created empty with its sequence, grows by appends, and finishes complete", async () => {
    const s = await stage();
    const created = await open(s.agent, s.id);
    expectStatus(created, 201);
    expect(created.body).toMatchObject({ content: "", stream_state: "streaming", sequence: expect.any(Number) });
    const mid = created.body.id;
    expect((await append(s.agent, s.id, mid, "Hel")).body).toEqual({ messageId: mid, length: 3 });
    expect((await append(s.agent, s.id, mid, "lo ✓")).body).toEqual({ messageId: mid, length: 7 });

    // During the stream, reads return the content so far.
    const during = await t.request("GET", `${messages(s.id)}/${mid}`, { as: s.owner });
    expect(during.body).toMatchObject({ content: "Hello ✓", stream_state: "streaming" });
    const listed = await t.request("GET", messages(s.id), { as: s.owner });
    expect(listed.body.find((m: any) => m.id === mid).content).toBe("Hello ✓");

    const done = await finish(s.agent, s.id, mid);
    expectStatus(done, 200);
    expect(done.body).toMatchObject({ content: "Hello ✓", stream_state: "complete" });
    expectError(await append(s.agent, s.id, mid, "more"), 409, "stream_closed", { stream_state: "complete" });
    expectError(await finish(s.agent, s.id, mid), 409, "stream_closed", { stream_state: "complete" });
  });

  test("finish with content replaces what was appended; ordinary messages have stream_state null", async () => {
    const s = await stage();
    const mid = (await open(s.agent, s.id, { content: "draft" })).body.id;
    await append(s.agent, s.id, mid, " and more");
    const done = await finish(s.agent, s.id, mid, { content: "final answer" });
    expect(done.body).toMatchObject({ content: "final answer", stream_state: "complete" });
    const plain = await t.request("POST", messages(s.id), { as: s.owner, body: { content: "hi" } });
    expect(plain.body.stream_state).toBeNull();
    expectError(await append(s.owner, s.id, plain.body.id, "x"), 409, "not_streaming");
    expectError(await t.request("POST", messages(s.id), { as: s.owner, body: { content: "" } }), 400, "empty_content");
  });

  test("only the sender appends; the total stays under MAX_MESSAGE_BYTES", async () => {
    const s = await stage();
    const mid = (await open(s.agent, s.id)).body.id;
    expectError(await append(s.owner, s.id, mid, "x"), 403, "not_sender");
    expectStatus(await append(s.agent, s.id, mid, "a".repeat(990)), 200);
    expectError(await append(s.agent, s.id, mid, "€€€€"), 413, "too_large");
    expect((await append(s.agent, s.id, mid, "b".repeat(10))).body.length).toBe(1000);
    expectError(await append(s.agent, s.id, mid, "\u0000"), 400, "invalid_text");
  });

  test("the content is written in batches while it streams, not per append", async () => {
    const s = await stage();
    const mid = (await open(s.agent, s.id)).body.id;
    const before = t.server.services.streams.writes;
    for (let i = 0; i < 50; i++) await append(s.agent, s.id, mid, `${i},`);
    await Bun.sleep(150);
    const [row] = await t.server.services.database.query<{ content: string }>("select content from messages where id = $1", [mid]);
    expect(row.content.startsWith("0,1,2,")).toBe(true);
    expect(row.content.endsWith("49,")).toBe(true);
    expect(t.server.services.streams.writes - before).toBeLessThan(25);
    await finish(s.agent, s.id, mid);
  });
});

describe("a streaming message in a run", () => {
  test("pause refuses appends (run_paused), resume lets the same message continue", async () => {
    const s = await stage();
    const created = await open(s.agent, s.id, { runId: "answer-1" });
    expectStatus(created, 201);
    const mid = created.body.id;
    await append(s.agent, s.id, mid, "one ");
    expectStatus(await control(s.supervisor, s.id, { event: "stream.pause", runId: "answer-1" }), 201);
    expectError(await append(s.agent, s.id, mid, "two "), 409, "run_paused");
    expectStatus(await control(s.supervisor, s.id, { event: "stream.resume", runId: "answer-1" }), 201);
    expectStatus(await append(s.agent, s.id, mid, "two"), 200);
    expect((await finish(s.agent, s.id, mid)).body.content).toBe("one two");
  });

  test("cancel ends the stream as cancelled at once with its partial content; appends then get run_ended", async () => {
    const s = await stage();
    const mid = (await open(s.agent, s.id, { runId: "answer-2" })).body.id;
    await append(s.agent, s.id, mid, "partial");
    expectStatus(await control(s.owner, s.id, { event: "stream.cancel", runId: "answer-2" }), 201);
    const deadline = Date.now() + 2000;
    let read: any;
    do read = (await t.request("GET", `${messages(s.id)}/${mid}`, { as: s.owner })).body;
    while (read.stream_state === "streaming" && Date.now() < deadline);
    expect(read).toMatchObject({ content: "partial", stream_state: "cancelled" });
    expectError(await append(s.agent, s.id, mid, " more"), 409, "run_ended", { stream_state: "cancelled" });
  });

  test("a stream idle for STREAM_IDLE_MS ends as interrupted", async () => {
    const idle = await startTestServer({ STREAM_IDLE_MS: "300", STREAM_FLUSH_MS: "50" });
    try {
      const owner = await idle.principal();
      const conversation = await createConversation(idle, owner);
      const mid = (await idle.request("POST", messages(conversation.id), { as: owner, body: { content: "", streaming: true } })).body.id;
      await idle.request("POST", `${messages(conversation.id)}/${mid}/append`, { as: owner, body: { delta: "so far" } });
      await Bun.sleep(700);
      const read = await idle.request("GET", `${messages(conversation.id)}/${mid}`, { as: owner });
      expect(read.body).toMatchObject({ content: "so far", stream_state: "interrupted" });
    } finally {
      await idle.stop();
    }
  });
});
