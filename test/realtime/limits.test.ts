/**
 * Protection of the server: per-connection rate limit with a close on flooding, and slow consumers
 * closed before their send buffer grows without bound.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { wsClosesOf, wsSlowConsumerCloses } from "../../src/metrics/registry";
import { hardBackpressureLimit } from "../../src/realtime/socket-options";
import { startTestServer, type TestServer } from "../support/server";
import { eventually, groupConversation, joinedSocket, openSocket, RawSocket, restSend } from "./helpers";
import { RawTcpWebSocket } from "./raw-tcp";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

const BURST = 20;
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ WS_RATE_LIMIT: "10", WS_RATE_BURST: String(BURST), WS_BACKPRESSURE_BYTES: String(64 * 1024) });
});
afterAll(() => server.stop());

describe("rate limit", () => {
  test("frames beyond the burst get rate_limited; the connection stays and recovers", async () => {
    const socket = await openSocket(server, await server.principal());
    for (let i = 0; i < BURST + 5; i++) socket.send({ event: "ping", ack: i });
    await socket.next((f) => f.event === "ack" && f.ack === BURST - 1);
    const limited = await socket.next((f) => f.event === "ack" && f.ack === BURST + 4);
    expect(limited.error!.code).toBe("rate_limited");
    expect(socket.count((f) => f.event === "ack" && f.ok === true)).toBe(BURST);
    expect(socket.count((f) => f.event === "ack" && f.error?.code === "rate_limited")).toBe(5);
    await Bun.sleep(250);
    expect((await socket.request("ping")).ok).toBe(true);
    expect(socket.isClosed).toBe(false);
    socket.close();
  });

  test("a service sending 300 messages in a burst over one socket is not refused by the default service budget", async () => {
    const owner = await server.principal();
    const service = await server.principal({ type: "service" });
    const conversationId = await groupConversation(server, owner, [service]);
    const socket = await openSocket(server, service);
    const total = 300;
    for (let i = 0; i < total; i++) socket.send({ event: "message:send", data: { conversationId, content: `m${i}` }, ack: i });
    await eventually(() => socket.count("ack") === total, 30_000, "every ack");
    expect(socket.count((f) => f.event === "ack" && f.ok === true)).toBe(total);
    const sequences = socket.frames.filter((f) => f.event === "ack").map((f) => f.data.sequence).sort((a, b) => a - b);
    expect(sequences).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(socket.isClosed).toBe(false);
    socket.close();
  }, 60_000);

  test("a service acting for a user keeps the service budget", async () => {
    const org = await server.org();
    const service = await server.principal({ type: "service", orgs: [org], entitlements: ["messaging:act-as"] });
    const user = await server.principal({ orgs: [org] });
    const socket = new RawSocket(new WebSocket(`${server.wsUrl}?asUserId=${encodeURIComponent(user.id)}`, { headers: service.headers } as any));
    expect((await socket.next("session:ready")).data.user.type).toBe("user");
    for (let i = 0; i < 3 * BURST; i++) socket.send({ event: "ping", ack: i });
    await eventually(() => socket.count("ack") === 3 * BURST, 5000, "every ack");
    expect(socket.count((f) => f.event === "ack" && f.ok === true)).toBe(3 * BURST);
    socket.close();
  });

  test("a client that keeps flooding is closed with 1008", async () => {
    const socket = await openSocket(server, await server.principal());
    const policyClosesBefore = wsClosesOf(1008).value;
    for (let i = 0; i < BURST + 5 * BURST + 10; i++) socket.send({ event: "ping" });
    expect(socket.count("error")).toBeLessThanOrEqual(5 * BURST + 1);
    const closed = await socket.closed;
    expect(closed.code).toBe(1008);
    expect(socket.frames.some((f) => f.event === "error" && f.data.code === "rate_limited")).toBe(true);
    await eventually(() => wsClosesOf(1008).value === policyClosesBefore + 1, 3000, "close counted under 1008");
  });
});

describe("slow consumers", () => {
  test("a socket that stops reading is closed with 4008 while the server's buffers stay bounded", async () => {
    const [owner, reader] = await Promise.all([server.principal(), server.principal()]);
    const conversationId = await groupConversation(server, owner, [reader]);
    const healthy = await joinedSocket(server, owner, conversationId);

    const slow = await RawTcpWebSocket.connect(server.server.port, reader.headers);
    slow.sendText(JSON.stringify({ event: "join:conversation", data: { conversationId }, ack: "join" }));
    await eventually(() => slow.frames().some((f) => f.event === "ack" && f.ack === "join"), 3000, "join ack");
    const connectionsBefore = server.server.realtime.connectionCount;
    const slowClosesBefore = wsSlowConsumerCloses.value;
    slow.pause();

    // Publish (over REST) until the server gives up on the slow one.
    const content = "y".repeat(60 * 1024);
    const cap = hardBackpressureLimit(server.config) + 512 * 1024;
    let maxBuffered = 0;
    let sent = 0;
    while (server.server.realtime.connectionCount === connectionsBefore) {
      if (sent > 1000) throw new Error("the slow consumer was never closed");
      const acks = [];
      for (let i = 0; i < 10; i++) acks.push(restSend(server, owner, conversationId, content));
      await Promise.all(acks);
      sent += 10;
      maxBuffered = Math.max(maxBuffered, server.server.realtime.bufferedBytes());
      await Bun.sleep(5);
    }
    expect(maxBuffered).toBeLessThan(cap);
    expect(server.server.realtime.bufferedBytes()).toBeLessThan(cap);

    // When it reads again, it finds what was buffered and then the close frame.
    slow.resume();
    await eventually(() => slow.closeCode !== undefined || slow.ended, 10_000, "close frame");
    expect(slow.closeCode).toBe(4008);
    expect(wsSlowConsumerCloses.value).toBe(slowClosesBefore + 1);
    expect(healthy.isClosed).toBe(false);
    expect(healthy.count("message:new")).toBe(sent);
    healthy.close();
  }, 60_000);
});

describe("the service budget", () => {
  let small: TestServer;
  beforeAll(async () => {
    small = await startTestServer({ WS_SERVICE_RATE_LIMIT: "10", WS_SERVICE_RATE_BURST: String(BURST) });
  });
  afterAll(() => small.stop());

  test("an agent past its own budget is refused, then closed when it keeps flooding", async () => {
    const socket = await openSocket(small, await small.principal({ type: "agent" }));
    for (let i = 0; i < BURST + 5; i++) socket.send({ event: "ping", ack: i });
    const limited = await socket.next((f) => f.event === "ack" && f.ack === BURST + 4);
    expect(limited.error!.code).toBe("rate_limited");
    expect(socket.count((f) => f.event === "ack" && f.ok === true)).toBe(BURST);
    for (let i = 0; i < 5 * BURST + 10; i++) socket.send({ event: "ping" });
    expect((await socket.closed).code).toBe(1008);
  });

  test("people keep WS_RATE_LIMIT / WS_RATE_BURST (100 by default) on that server", async () => {
    const socket = await openSocket(small, await small.principal());
    for (let i = 0; i < 105; i++) socket.send({ event: "ping", ack: i });
    await eventually(() => socket.count("ack") === 105, 5000, "every ack");
    expect(socket.count((f) => f.event === "ack" && f.ok === true)).toBe(100);
    expect(socket.count((f) => f.event === "ack" && f.error?.code === "rate_limited")).toBe(5);
    socket.close();
  });
});
