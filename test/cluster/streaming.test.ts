/**
 * Streaming messages across two instances, A holding the stream and B not: appends and finishes reaching
 * B are forwarded to A; reads and late joins on B get the content so far (not the last flush) and the
 * live deltas from exactly there; a pause or cancel made on B stops A's stream at once. The flush
 * interval is long, so that nothing here can come from the database. PostgreSQL only.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { StreamText } from "../../src/client";
import { TEST_DATABASE_URL, usingPostgres } from "../support/database";
import { startTestServer, type TestServer } from "../support/server";
import { useEndToEndTimeout } from "../support/timeout";
import { eventually, groupConversation, joinedSocket, openSocket, sdkClient, type Frame, type RawSocket } from "../realtime/helpers";

useEndToEndTimeout();

let a: TestServer;
let b: TestServer;

function deltasOf(socket: RawSocket, messageId: string): { offset: number; delta: string }[] {
  return socket.frames.filter((f) => f.event === "message:delta" && f.data.messageId === messageId).map((f) => f.data);
}

function contiguous(deltas: { offset: number; delta: string }[], from: number): boolean {
  let at = from;
  for (const d of deltas) {
    if (d.offset !== at) return false;
    at += d.delta.length;
  }
  return true;
}

describe.skipIf(!usingPostgres)("streaming on two instances", () => {
  beforeAll(async () => {
    // DATABASE_URL: the instances relay frames to each other through PostgreSQL (LISTEN/NOTIFY).
    const env = { STREAM_FLUSH_MS: "10000", DATABASE_URL: TEST_DATABASE_URL ?? "" };
    a = await startTestServer(env);
    b = await startTestServer(env);
    // Both know each other before a request is forwarded.
    await Bun.sleep(300);
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  test("appends and finish on B reach the holder A; reads on B return the content so far", async () => {
    const owner = await a.principal();
    const agent = await a.principal({ type: "agent" });
    const conversationId = await groupConversation(a, owner, [agent]);
    const path = `/api/conversations/${conversationId}/messages`;
    const onA = await joinedSocket(a, owner, conversationId);
    const onB = await joinedSocket(b, owner, conversationId);
    const mid = (await a.request("POST", path, { as: agent, body: { content: "", streaming: true } })).body.id;
    let expected = "";
    for (let i = 0; i < 40; i++) {
      const piece = i === 7 ? "é😀".repeat(600) : `${i} `; // one delta long enough to travel in parts
      expected += piece;
      const via = i % 2 === 0 ? a : b;
      const appended = await via.request("POST", `${path}/${mid}/append`, { as: agent, body: { delta: piece } });
      expect(appended.status).toBe(200);
      expect(appended.body).toEqual({ messageId: mid, length: expected.length });
    }
    for (const socket of [onA, onB]) {
      await eventually(() => deltasOf(socket, mid).length === 40, 5000, "40 deltas");
      expect(deltasOf(socket, mid).map((d) => d.delta).join("")).toBe(expected);
      expect(contiguous(deltasOf(socket, mid), 0)).toBe(true);
    }

    // Nothing was flushed yet (10 s interval): B's answers come from the holder.
    const one = await b.request("GET", `${path}/${mid}`, { as: owner });
    expect(one.body).toMatchObject({ content: expected, stream_state: "streaming" });
    const list = await b.request("GET", path, { as: owner });
    expect(list.body.find((m: any) => m.id === mid).content).toBe(expected);

    const stranger = await b.request("POST", `${path}/${mid}/append`, { as: owner, body: { delta: "x" } });
    expect(stranger.status).toBe(403);
    expect(stranger.body.code).toBe("not_sender");
    const huge = await b.request("POST", `${path}/${mid}/append`, { as: agent, body: { delta: "x".repeat(70_000) } });
    expect(huge.status).toBe(413);

    const finished = await b.request("POST", `${path}/${mid}/finish`, { as: agent, body: { content: "the final answer" } });
    expect(finished.status).toBe(200);
    expect(finished.body).toMatchObject({ id: mid, content: "the final answer", stream_state: "complete" });
    const after = await b.request("POST", `${path}/${mid}/append`, { as: agent, body: { delta: "late" } });
    expect(after.status).toBe(409);
    expect(after.body).toMatchObject({ code: "stream_closed", stream_state: "complete" });
    await onB.next((f) => f.event === "message:updated" && f.data.id === mid && f.data.stream_state === "complete");
    onA.close();
    onB.close();
  });

  test("late joiners on B while deltas flow: the content so far, then the deltas from exactly there", async () => {
    const owner = await a.principal();
    const agent = await a.principal({ type: "agent" });
    const conversationId = await groupConversation(a, owner, [agent]);
    const path = `/api/conversations/${conversationId}/messages`;
    const mid = (await a.request("POST", path, { as: agent, body: { content: "start:", streaming: true } })).body.id;
    const agentSocket = await openSocket(a, agent);
    let expected = "start:";
    let streaming = true;
    const producer = (async () => {
      for (let i = 0; i < 600; i++) {
        const delta = `<${i}>`;
        expected += delta;
        agentSocket.send({ event: "message:append", data: { messageId: mid, delta } });
        if (i % 20 === 0) await Bun.sleep(5);
      }
      streaming = false;
    })();

    const joiners: { socket: RawSocket; ack: Frame }[] = [];
    while (streaming || joiners.length < 3) {
      const socket = await openSocket(b, owner);
      joiners.push({ socket, ack: await socket.request("join:conversation", { conversationId }) });
      await Bun.sleep(15);
    }
    await producer;
    const finished = await agentSocket.request("message:finish", { messageId: mid });
    expect(finished.ok).toBe(true);

    for (const { socket, ack } of joiners) {
      expect(ack.ok).toBe(true);
      await socket.next((f) => f.event === "message:updated" && f.data.id === mid && f.data.stream_state === "complete", 5000);
      const stream = ack.data.streams.find((s: { messageId: string }) => s.messageId === mid);
      const snapshot = socket.frames.find((f) => (f.event === "message:updated" || f.event === "message:new") && f.data.id === mid);
      if (!stream) {
        // Joined after the end: the stored message is whole.
        expect(snapshot?.data.content ?? expected).toBe(expected);
        continue;
      }
      expect(snapshot!.data.content.length).toBe(stream.length);
      expect(expected.startsWith(snapshot!.data.content)).toBe(true);
      const live = deltasOf(socket, mid);
      expect(contiguous(live, stream.length)).toBe(true);
      expect(snapshot!.data.content + live.map((d) => d.delta).join("")).toBe(expected);
      socket.close();
    }
    // Some of them joined in the middle of the stream.
    expect(joiners.filter(({ ack }) => ack.data.streams.some((s: any) => s.messageId === mid && s.length > 6 && s.length < expected.length)).length).toBeGreaterThan(0);
    agentSocket.close();
  });

  test("a pause, resume and cancel made on B stop and restart A's stream at once", async () => {
    const owner = await a.principal({ entitlements: ["cap:messaging.interrupt"] });
    const agent = await a.principal({ type: "agent" });
    const conversationId = await groupConversation(a, owner, [agent]);
    const path = `/api/conversations/${conversationId}`;
    const mid = (await a.request("POST", `${path}/messages`, { as: agent, body: { content: "", streaming: true, runId: "far" } })).body.id;
    const append = (delta: string) => a.request("POST", `${path}/messages/${mid}/append`, { as: agent, body: { delta } });
    expect((await append("partial")).status).toBe(200);

    const refusedWithin = async (code: string) => {
      const started = Date.now();
      for (;;) {
        const res = await append(".");
        if (res.status !== 200) {
          expect(res.body.code).toBe(code);
          return Date.now() - started;
        }
        if (Date.now() - started > 1000) throw new Error(`appends still accepted ${Date.now() - started} ms later`);
        await Bun.sleep(5);
      }
    };
    expect((await b.request("POST", `${path}/control`, { as: owner, body: { event: "stream.pause", runId: "far" } })).status).toBe(201);
    expect(await refusedWithin("run_paused")).toBeLessThan(1000);
    expect((await b.request("POST", `${path}/control`, { as: owner, body: { event: "stream.resume", runId: "far" } })).status).toBe(201);
    await eventually(async () => (await append("!")).status === 200, 1000, "appends accepted again");

    const client = sdkClient(b, owner).realtime();
    await client.connect();
    const texts: StreamText[] = [];
    client.on("stream:text", (change) => change.messageId === mid && texts.push(change));
    await client.join(conversationId);
    expect((await b.request("POST", `${path}/control`, { as: owner, body: { event: "stream.cancel", runId: "far" } })).status).toBe(201);
    expect(await refusedWithin("run_ended")).toBeLessThan(1000);
    // Appends are refused from the moment the cancel arrives; the stream's end is written just after.
    let read = await b.request("GET", `${path}/messages/${mid}`, { as: owner });
    await eventually(async () => (read = await b.request("GET", `${path}/messages/${mid}`, { as: owner })).body.stream_state !== "streaming", 2000, "the end written");
    expect(read.body.stream_state).toBe("cancelled");
    expect(read.body.content.startsWith("partial")).toBe(true);
    await eventually(() => texts.at(-1)?.state === "cancelled", 3000, "the cancel heard on B");
    expect(texts.at(-1)!.text).toBe(read.body.content);
    client.close();
  });
});
