/**
 * Resume without loss: replay after `since` in current state, truncation at the replay limit, and the
 * switch from replay to live under concurrent senders with a receiver that keeps reconnecting.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { RealtimeClient } from "../../src/client";
import { startTestServer, type TestServer } from "../support/server";
import { eventually, groupConversation, joinedSocket, openSocket, restSend, sdkClient } from "./helpers";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

const REPLAY_LIMIT = 5;
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ REPLAY_LIMIT: String(REPLAY_LIMIT) });
});
afterAll(() => server.stop());

describe("join with since", () => {
  test("replays every later message in its current state, in order, before the ack", async () => {
    const owner = await server.principal({ entitlements: ["cap:messaging.interrupt"] });
    const conversationId = await groupConversation(server, owner);
    const first = await restSend(server, owner, conversationId, "one");
    const second = await restSend(server, owner, conversationId, "two");
    const third = await restSend(server, owner, conversationId, "three");
    await server.request("PATCH", `/api/conversations/${conversationId}/messages/${second.id}`, { as: owner, body: { content: "two, edited" } });
    await server.request("DELETE", `/api/conversations/${conversationId}/messages/${third.id}`, { as: owner });
    await server.request("POST", `/api/conversations/${conversationId}/control`, { as: owner, body: { event: "stream.pause" } });

    const socket = await openSocket(server, owner);
    const ack = await socket.request("join:conversation", { conversationId, since: first.sequence });
    expect(ack.data).toMatchObject({ conversationId, lastSequence: 4, replayed: 3, truncated: false });
    const replayed = socket.frames.filter((f) => f.event === "message:new").map((f) => f.data);
    expect(replayed.map((m) => m.sequence)).toEqual([2, 3, 4]);
    expect(replayed[0]).toMatchObject({ id: second.id, content: "two, edited", version: 2 });
    expect(replayed[1].deleted_at).toEqual(expect.any(String));
    expect(replayed[2]).toMatchObject({ content_type: "event", content: "stream.pause" });
    const ackIndex = socket.frames.findIndex((f) => f.event === "ack");
    expect(socket.frames.findLastIndex((f) => f.event === "message:new")).toBeLessThan(ackIndex);
    socket.close();
  });

  test("a join without since replays nothing and reports the last sequence", async () => {
    const owner = await server.principal();
    const conversationId = await groupConversation(server, owner);
    await restSend(server, owner, conversationId, "before");
    const socket = await openSocket(server, owner);
    const ack = await socket.request("join:conversation", conversationId);
    expect(ack.data).toMatchObject({ conversationId, lastSequence: 1, replayed: 0, truncated: false });
    expect(socket.count("message:new")).toBe(0);
    socket.close();
  });

  test("beyond the replay limit the oldest are replayed and the ack says truncated", async () => {
    const owner = await server.principal();
    const conversationId = await groupConversation(server, owner);
    for (let i = 1; i <= 12; i++) await restSend(server, owner, conversationId, `m${i}`);
    const socket = await openSocket(server, owner);
    const ack = await socket.request("join:conversation", { conversationId, since: 0 });
    expect(ack.data).toMatchObject({ lastSequence: REPLAY_LIMIT, replayed: REPLAY_LIMIT, truncated: true });
    expect(socket.frames.filter((f) => f.event === "message:new").map((f) => f.data.sequence)).toEqual([1, 2, 3, 4, 5]);
    // Live messages still arrive after a truncated replay.
    await restSend(server, owner, conversationId, "live");
    expect((await socket.next((f) => f.event === "message:new" && f.data.content === "live")).data.sequence).toBe(13);
    socket.close();
  });

  test("the SDK completes a truncated resume by joining again from where the replay stopped", async () => {
    const owner = await server.principal();
    const conversationId = await groupConversation(server, owner);
    for (let i = 1; i <= 12; i++) await restSend(server, owner, conversationId, `m${i}`);
    const client = sdkClient(server, owner).realtime();
    const seen: number[] = [];
    client.on("message:new", (m) => seen.push(m.sequence));
    await client.connect();
    const result = await client.join(conversationId, { since: 0 });
    expect(result.truncated).toBe(false);
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(client.lastSequence(conversationId)).toBe(12);
    client.close();
  });
});

test("a replay larger than half the slow-consumer limit stops early, truncated, and the rest follows on request", async () => {
  const own = await startTestServer({ WS_BACKPRESSURE_BYTES: String(64 * 1024) });
  try {
    const owner = await own.principal();
    const conversationId = await groupConversation(own, owner);
    for (let i = 1; i <= 8; i++) await restSend(own, owner, conversationId, `${i}`.repeat(10 * 1024));
    const socket = await openSocket(own, owner);
    const first = await socket.request("join:conversation", { conversationId, since: 0 });
    expect(first.data.truncated).toBe(true);
    expect(first.data.replayed).toBeLessThan(8);
    expect(first.data.lastSequence).toBe(first.data.replayed);
    let last = first.data;
    for (let round = 0; last.truncated && round < 8; round++) {
      last = (await socket.request("join:conversation", { conversationId, since: last.lastSequence })).data;
    }
    expect(last).toMatchObject({ truncated: false, lastSequence: 8 });
    expect(socket.frames.filter((f) => f.event === "message:new").map((f) => f.data.sequence)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    socket.close();
  } finally {
    await own.stop();
  }
});

describe("no loss across reconnects", () => {
  // A replay limit above everything these tests send: a resume here is never truncated, so every message
  // reaches the receiver once (sends written together go fast enough that a receiver reconnecting every
  // 100 ms can fall more than the default 1000 behind; truncated resumes have tests of their own above).
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ WS_RATE_LIMIT: "100000", WS_RATE_BURST: "100000", REPLAY_LIMIT: "100000" });
  });
  afterAll(() => server.stop());

  test("3 senders, 2,000 messages, a receiver reconnecting every 100 ms: it ends with 1..N, each once", async () => {
    const [owner, ...senders] = await Promise.all([server.principal(), server.principal(), server.principal(), server.principal()]);
    const receiverPrincipal = await server.principal();
    const conversationId = await groupConversation(server, owner, [...senders, receiverPrincipal]);
    const TOTAL = 2000;

    const receiver = sdkClient(server, receiverPrincipal).realtime({ reconnect: { initialDelayMs: 5, maxDelayMs: 50 }, ackTimeoutMs: 5000 });
    const received: number[] = [];
    receiver.on("message:new", (m) => received.push(m.sequence));
    await receiver.connect();
    await receiver.join(conversationId);
    const churn = setInterval(() => receiver.reconnect(), 100);

    const senderClients: RealtimeClient[] = senders.map((s) => sdkClient(server, s).realtime());
    await Promise.all(senderClients.map((c) => c.connect()));
    const perSender = [667, 667, 666];
    const started = performance.now();
    try {
      await Promise.all(
        senderClients.map(async (client, index) => {
          // A window of sends in flight per sender, as a chatty client would.
          const inFlight = new Set<Promise<unknown>>();
          for (let i = 0; i < perSender[index]; i++) {
            const sent = client.send(conversationId, { content: `s${index}-${i}` }).finally(() => inFlight.delete(sent));
            inFlight.add(sent);
            if (inFlight.size >= 16) await Promise.race(inFlight);
          }
          await Promise.all(inFlight);
        }),
      );
    } finally {
      clearInterval(churn);
    }
    const sendMs = performance.now() - started;

    await eventually(() => receiver.lastSequence(conversationId) === TOTAL, 15_000, "receiver caught up");
    expect(received.length).toBe(TOTAL);
    expect([...received].sort((a, b) => a - b)).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));
    // Each arrived once from the server: the SDK had no duplicate to drop.
    expect(receiver.stats.duplicatesDropped).toBe(0);
    console.log(`loss test: ${TOTAL} messages sent in ${Math.round(sendMs)} ms, receiver reconnected ${receiver.stats.reconnects} times`);
    expect(receiver.stats.reconnects).toBeGreaterThanOrEqual(Math.min(5, Math.floor(sendMs / 100) - 1));

    const listed = await server.request("GET", `/api/conversations/${conversationId}/messages?before=${TOTAL + 1}&limit=5`, { as: owner });
    expect(listed.body.at(-1).sequence).toBe(TOTAL);
    receiver.close();
    for (const client of senderClients) client.close();
  }, 90_000);

  test("a raw receiver resuming with since while others send gets every sequence once", async () => {
    const [owner, sender] = await Promise.all([server.principal(), server.principal()]);
    const conversationId = await groupConversation(server, owner, [sender]);
    const senderSocket = await joinedSocket(server, sender, conversationId);
    let sending = true;
    const sendLoop = (async () => {
      while (sending) await senderSocket.request("message:send", { conversationId, content: "x" });
    })();

    const sequences: number[] = [];
    let since = 0;
    for (let round = 0; round < 8; round++) {
      const socket = await openSocket(server, owner);
      const ack = await socket.request("join:conversation", { conversationId, since });
      expect(ack.data.truncated).toBe(false);
      await Bun.sleep(30);
      socket.close();
      await socket.closed;
      const got = socket.frames.filter((f) => f.event === "message:new").map((f) => f.data.sequence as number);
      sequences.push(...got);
      since = got.length > 0 ? got.at(-1)! : Math.max(since, ack.data.lastSequence);
    }
    sending = false;
    await sendLoop;
    expect(sequences.length).toBeGreaterThan(10);
    expect(sequences).toEqual(Array.from({ length: sequences.length }, (_, i) => i + 1));
    senderSocket.close();
  });
});
