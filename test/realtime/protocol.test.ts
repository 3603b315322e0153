/**
 * Connecting and the frame envelope: authentication before the upgrade, session:ready, acks, errors for
 * bad frames, frame and content size limits.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestServer, type TestServer } from "../support/server";
import { groupConversation, openSocket, RawSocket } from "./helpers";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

describe("connecting", () => {
  test("an upgrade without credentials is answered 401 and opens no socket", async () => {
    const response = await fetch(server.url + "/api/ws", {
      headers: { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" },
    });
    expect(response.status).toBe(401);
    expect(((await response.json()) as { code: string }).code).toBe("unauthorized");

    const socket = new RawSocket(new WebSocket(server.wsUrl));
    const closed = await socket.closed;
    expect(closed.code).not.toBe(1000);
    expect(socket.frames).toHaveLength(0);
    expect(server.server.realtime.connectionCount).toBe(0);
  });

  test("an invalid token is 401 too", async () => {
    const response = await fetch(server.url + "/api/ws?token=nope", { headers: { upgrade: "websocket", connection: "Upgrade" } });
    expect(response.status).toBe(401);
  });

  test("session:ready tells the connection id, the principal and the heartbeat", async () => {
    const user = await server.principal();
    const socket = new RawSocket(new WebSocket(server.wsUrl, { headers: user.headers } as any));
    const ready = await socket.next("session:ready");
    expect(ready.data.connectionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(ready.data.user).toEqual({ id: user.id, type: "user" });
    expect(ready.data.heartbeatMs).toBe(30_000);
    expect(Math.abs(Date.parse(ready.data.serverTime) - Date.now())).toBeLessThan(5000);
    expect(Object.keys(ready)).toEqual(["event", "data"]);
    socket.close();
  });

  test("browsers authenticate with ?token= and agents with ?apiKey=", async () => {
    const user = await server.principal();
    const agent = await server.principal({ type: "agent" });
    const byToken = new RawSocket(new WebSocket(`${server.wsUrl}?token=${encodeURIComponent(user.token)}`));
    expect((await byToken.next("session:ready")).data.user.id).toBe(user.id);
    const byKey = new RawSocket(new WebSocket(`${server.wsUrl}?apiKey=${encodeURIComponent(agent.token)}`));
    expect((await byKey.next("session:ready")).data.user).toEqual({ id: agent.id, type: "agent" });
    byToken.close();
    byKey.close();
  });

  test("the session cookie authenticates the upgrade", async () => {
    const user = await server.principal();
    const socket = new RawSocket(new WebSocket(server.wsUrl, { headers: { cookie: `symbia_session=${user.token}` } } as any));
    expect((await socket.next("session:ready")).data.user.id).toBe(user.id);
    socket.close();
  });

  test("bootstrap lists the WebSocket events, participant:updated included", async () => {
    const bootstrap = await server.request("GET", "/api/bootstrap");
    expect(bootstrap.body.websocketEvents.client).toContain("join:conversation");
    expect(bootstrap.body.websocketEvents.server).toContain("participant:updated");
  });
});

describe("frames", () => {
  test("ping is acked with the server time, or answered with pong without an ack", async () => {
    const user = await server.principal();
    const socket = await openSocket(server, user);
    const ack = await socket.request("ping", { anything: true });
    expect(ack).toMatchObject({ event: "ack", ok: true });
    expect(typeof ack.data.serverTime).toBe("string");
    socket.send({ event: "ping" });
    const pong = await socket.next("pong");
    expect(typeof pong.data.serverTime).toBe("string");
    socket.close();
  });

  test("numeric ack ids are echoed as numbers", async () => {
    const socket = await openSocket(server, await server.principal());
    socket.send({ event: "ping", ack: 42 });
    expect((await socket.next("ack")).ack).toBe(42);
    socket.close();
  });

  test("text that is not a JSON object gets invalid_frame and the connection stays", async () => {
    const socket = await openSocket(server, await server.principal());
    for (const bad of ["not json", "{broken", "[1,2]", "42", "null", '"just a string"', "true"]) {
      const from = socket.frames.length;
      socket.send(bad);
      const error = await socket.next("error", 3000, from);
      expect(error.data.code).toBe("invalid_frame");
    }
    socket.ws.send(new Uint8Array([1, 2, 3]));
    expect((await socket.next((f) => f.event === "error" && /Binary/.test(f.data.message))).data.code).toBe("invalid_frame");
    expect((await socket.request("ping")).ok).toBe(true);
    socket.close();
  });

  test("an unknown event gets unknown_event, with the ack when there is one", async () => {
    const socket = await openSocket(server, await server.principal());
    socket.send({ event: "message:explode", data: {} });
    const error = await socket.next("error");
    expect(error.data).toMatchObject({ code: "unknown_event", event: "message:explode" });
    const ack = await socket.request("message:explode", {});
    expect(ack).toMatchObject({ ok: false, error: { code: "unknown_event" } });
    expect(Object.keys(ack).sort()).toEqual(["ack", "error", "event", "ok"]);
    socket.close();
  });

  test("wrongly typed payloads get invalid_input naming the field", async () => {
    const user = await server.principal();
    const conversationId = await groupConversation(server, user);
    const socket = await openSocket(server, user);
    const cases: [string, unknown, RegExp][] = [
      ["message:send", { conversationId, content: 5 }, /content/],
      ["message:send", { conversationId: "not-a-uuid", content: "x" }, /conversationId/],
      ["message:send", { conversationId, content: "x", priority: "urgent" }, /priority/],
      ["join:conversation", { conversationId, since: -1 }, /./],
      ["join:conversation", 12, /./],
      ["message:edit", { messageId: conversationId }, /content/],
      ["presence:update", { status: "sleeping" }, /status/],
      ["control:send", { conversationId, event: "stream.explode" }, /event/],
      ["typing:start", { conversation: conversationId }, /./],
    ];
    for (const [event, data, field] of cases) {
      const ack = await socket.request(event, data);
      expect(ack.ok).toBe(false);
      expect(ack.error!.code).toBe("invalid_input");
      expect(ack.error!.message).toMatch(field);
    }
    socket.send({ event: "message:send", data: { conversationId } });
    const error = await socket.next("error");
    expect(error.data).toMatchObject({ code: "invalid_input", event: "message:send" });
    socket.close();
  });

  test("unknown payload fields are ignored, as over REST", async () => {
    const user = await server.principal();
    const conversationId = await groupConversation(server, user);
    const socket = await openSocket(server, user);
    const ack = await socket.request("message:send", { conversationId, content: "hello", color: "blue" });
    expect(ack.ok).toBe(true);
    expect(ack.data.content).toBe("hello");
    socket.close();
  });

  test("domain errors keep their code: a stranger sending is not_participant", async () => {
    const owner = await server.principal();
    const stranger = await server.principal();
    const conversationId = await groupConversation(server, owner);
    const socket = await openSocket(server, stranger);
    const ack = await socket.request("message:send", { conversationId, content: "let me in" });
    expect(ack).toMatchObject({ ok: false, error: { code: "not_participant" } });
    const missing = await socket.request("message:send", { conversationId: crypto.randomUUID(), content: "x" });
    expect(missing.error!.code).toBe("not_found");
    socket.close();
  });

  test("content over the message limit is too_large and the connection survives", async () => {
    const user = await server.principal();
    const conversationId = await groupConversation(server, user);
    const socket = await openSocket(server, user);
    const ack = await socket.request("message:send", { conversationId, content: "x".repeat(64 * 1024 + 1) });
    expect(ack).toMatchObject({ ok: false, error: { code: "too_large" } });
    const fits = await socket.request("message:send", { conversationId, content: "x".repeat(64 * 1024) });
    expect(fits.ok).toBe(true);
    expect(socket.isClosed).toBe(false);
    socket.close();
  });

  test("a frame over MAX_FRAME_BYTES closes the connection with 1009", async () => {
    const socket = await openSocket(server, await server.principal());
    socket.send(JSON.stringify({ event: "ping", data: "x".repeat(1024 * 1024 + 10) }));
    expect((await socket.closed).code).toBe(1009);
  });
});
