/**
 * Streaming messages over the WebSocket: deltas live with contiguous offsets, acks with the length, the
 * append rate limit apart from other frames, the per-connection limit of open streams, and joins in the
 * middle of a stream (raw frames and the SDK reconnecting every 100 ms) that yield the exact text.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { StreamText } from "../../src/client";
import { startTestServer, type TestServer } from "../support/server";
import { useEndToEndTimeout } from "../support/timeout";
import { eventually, groupConversation, joinedSocket, openSocket, sdkClient, type Frame } from "./helpers";

useEndToEndTimeout();

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ STREAM_MAX_PER_CONNECTION: "2", STREAM_FLUSH_MS: "50" });
});
afterAll(() => server.stop());

async function stage() {
  const owner = await server.principal();
  const agent = await server.principal({ type: "agent" });
  const id = await groupConversation(server, owner, [agent]);
  return { id, owner, agent };
}

const deltasOf = (frames: Frame[], messageId: string) => frames.filter((f) => f.event === "message:delta" && f.data.messageId === messageId).map((f) => f.data);

describe("streaming over the WebSocket", () => {
  test("message:send streaming, appends published at once with contiguous offsets, finish broadcast as message:updated", async () => {
    const s = await stage();
    const watcher = await joinedSocket(server, s.owner, s.id);
    const agent = await openSocket(server, s.agent);
    const created = await agent.request("message:send", { conversationId: s.id, content: "", streaming: true, runId: "ws-run" });
    expect(created.ok).toBe(true);
    const mid = created.data.id;
    expect(created.data).toMatchObject({ stream_state: "streaming", run_id: "ws-run", content: "" });
    await watcher.next((f) => f.event === "message:new" && f.data.id === mid);

    const pieces = ["Once ", "upon ", "a time ", "🙂", " the end"];
    for (const piece of pieces.slice(0, 4)) agent.send({ event: "message:append", data: { messageId: mid, delta: piece } });
    const acked = await agent.request("message:append", { messageId: mid, delta: pieces[4] });
    expect(acked.data).toEqual({ messageId: mid, length: pieces.join("").length });
    await eventually(() => deltasOf(watcher.frames, mid).length === pieces.length);
    const deltas = deltasOf(watcher.frames, mid);
    let offset = 0;
    for (const [i, d] of deltas.entries()) {
      expect(d).toEqual({ conversationId: s.id, messageId: mid, runId: "ws-run", offset, delta: pieces[i] });
      offset += pieces[i].length;
    }
    expect(deltas.every((d) => !("sequence" in d))).toBe(true);

    const finished = await agent.request("message:finish", { messageId: mid });
    expect(finished.data).toMatchObject({ content: pieces.join(""), stream_state: "complete" });
    const updated = await watcher.next((f) => f.event === "message:updated" && f.data.id === mid);
    expect(updated.data.content).toBe(pieces.join(""));
    const late = await agent.request("message:append", { messageId: mid, delta: "x" });
    expect(late.error?.code).toBe("stream_closed");
    const stranger = await openSocket(server, s.owner);
    const notSender = await stranger.request("message:append", { messageId: mid, delta: "x" });
    expect(notSender.error?.code).toBe("not_sender");
    for (const socket of [watcher, agent, stranger]) socket.close();
  });

  test("1,000 appends in a burst are not rate-limited, while other frames keep their own limit", async () => {
    const s = await stage();
    const agent = await openSocket(server, s.agent);
    const mid = (await agent.request("message:send", { conversationId: s.id, content: "", streaming: true })).data.id;
    for (let i = 0; i < 1000; i++) agent.send({ event: "message:append", data: { messageId: mid, delta: "t" } });
    const last = await agent.request("message:append", { messageId: mid, delta: "!" }, 10_000);
    expect(last.data.length).toBe(1001);
    expect(agent.count("error")).toBe(0);
    await agent.request("message:finish", { messageId: mid });
    // Other frames still count in their own bucket (an agent's: burst 2000 by default).
    for (let i = 0; i < server.config.wsServiceRateLimitBurst + 50; i++) agent.send({ event: "typing:stop", data: s.id });
    await agent.next((f) => f.event === "error" && f.data.code === "rate_limited");
    agent.close();
  });

  test("a connection holds at most STREAM_MAX_PER_CONNECTION open streams", async () => {
    const s = await stage();
    const agent = await openSocket(server, s.agent);
    const open = () => agent.request("message:send", { conversationId: s.id, content: "", streaming: true });
    const first = await open();
    expect((await open()).ok).toBe(true);
    expect((await open()).error?.code).toBe("too_many_streams");
    await agent.request("message:finish", { messageId: first.data.id, content: "done" });
    expect((await open()).ok).toBe(true);
    agent.close();
  });
});

describe("joining in the middle of a stream", () => {
  test("join with since while deltas flow: the snapshot plus the deltas after it are the exact text", async () => {
    const s = await stage();
    const agent = await openSocket(server, s.agent);
    const mid = (await agent.request("message:send", { conversationId: s.id, content: "", streaming: true })).data.id;
    const sequence = (await server.request("GET", `/api/conversations/${s.id}/messages/${mid}`, { as: s.owner })).body.sequence;
    let expected = "";
    let streaming = true;
    const writer = (async () => {
      for (let i = 0; streaming; i++) {
        const piece = `${i} `;
        expected += piece;
        agent.send({ event: "message:append", data: { messageId: mid, delta: piece } });
        await Bun.sleep(1);
      }
    })();
    for (let round = 0; round < 10; round++) {
      await Bun.sleep(20);
      const reader = await openSocket(server, s.owner);
      // since before the message: the replay carries it; at the message: a message:updated snapshot does.
      const since = round % 2 === 0 ? sequence - 1 : sequence;
      const join = await reader.request("join:conversation", { conversationId: s.id, since });
      expect(join.ok).toBe(true);
      await Bun.sleep(20);
      const snapshot = reader.frames.find((f) => (f.event === "message:new" || f.event === "message:updated") && f.data.id === mid);
      expect(snapshot).toBeDefined();
      let text: string = snapshot!.data.content;
      expect(join.data.streams).toContainEqual({ messageId: mid, length: text.length });
      for (const d of deltasOf(reader.frames, mid)) {
        expect(d.offset).toBe(text.length);
        text += d.delta;
      }
      expect(expected.startsWith(text)).toBe(true);
      reader.close();
    }
    streaming = false;
    await writer;
    agent.close();
  });

  test("the SDK, reconnecting every 100 ms while 2,000 deltas go out, ends with the exact text", async () => {
    const s = await stage();
    const writer = sdkClient(server, s.agent).realtime();
    await writer.connect();
    const reader = sdkClient(server, s.owner).realtime();
    await reader.connect();
    await reader.join(s.id);
    const message = await writer.startStream(s.id);
    let seen = "";
    let added = "";
    reader.on("stream:text", (change: StreamText) => {
      if (change.messageId !== message.id) return;
      seen = change.text;
      added += change.added;
    });
    const reconnects = setInterval(() => reader.reconnect(), 100);
    let expected = "";
    try {
      for (let i = 0; i < 2000; i++) {
        const piece = `w${i}.`;
        expected += piece;
        await writer.append(message.id, piece);
        // About 2 s of stream: some twenty reconnects happen while it flows.
        if (i % 2 === 0) await Bun.sleep(2);
      }
      await writer.append(message.id, "", { ack: true });
      await Bun.sleep(300);
    } finally {
      clearInterval(reconnects);
    }
    await eventually(() => seen === expected, 5000, "the reader's text equals what was streamed");
    expect(reader.stats.reconnects).toBeGreaterThanOrEqual(5);
    // Each delta counted once: what the events added is the text itself.
    expect(added).toBe(expected);
    const finished = await writer.finish(message.id);
    expect(finished.content).toBe(expected);
    await eventually(() => reader.streamText(message.id) === expected);
    writer.close();
    reader.close();
  });
});
