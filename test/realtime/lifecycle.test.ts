/**
 * Sockets end with their credential (4401 on logout, revocation, disable, expiry) and with the server
 * (1001 after in-flight frames are answered).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { IdentityDirectory } from "../../src/auth/identity-directory";
import { startTestServer, type TestServer } from "../support/server";
import { eq } from "drizzle-orm";
import { principals } from "../../src/db/schema";
import { eventually, groupConversation, joinedSocket, openSocket, restSend } from "./helpers";
import { RawTcpWebSocket } from "./raw-tcp";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let server: TestServer;
let admin: IdentityDirectory;

beforeAll(async () => {
  server = await startTestServer();
  admin = new IdentityDirectory(server.server.services.database.db, server.server.services.authChanges);
});
afterAll(() => server.stop());

describe("credentials", () => {
  test("logout closes the session's sockets with 4401, and only those", async () => {
    const user = await server.principal();
    const other = await server.principal();
    const sockets = await Promise.all([openSocket(server, user), openSocket(server, user)]);
    const bystander = await openSocket(server, other);
    const logout = await server.request("POST", "/api/auth/logout", { as: user });
    expect(logout.status).toBe(200);
    for (const socket of sockets) expect((await socket.closed).code).toBe(4401);
    expect(bystander.isClosed).toBe(false);
    expect((await bystander.request("ping")).ok).toBe(true);
    // The credential no longer opens a socket.
    const again = await fetch(server.url + "/api/ws", { headers: { ...user.headers, upgrade: "websocket", connection: "Upgrade" } });
    expect(again.status).toBe(401);
    bystander.close();
  });

  test("revoking an API key closes its sockets with 4401", async () => {
    const agent = await server.principal({ type: "agent" });
    const socket = await openSocket(server, agent);
    const [key] = await admin.listKeys({ principalId: agent.id });
    await admin.revokeKey(key.id);
    const closed = await socket.closed;
    expect(closed.code).toBe(4401);
    expect(closed.reason).toBe("credential revoked");
  });

  test("disabling a principal closes its sockets with 4401; a change that keeps it valid does not", async () => {
    const user = await server.principal();
    const conversationId = await groupConversation(server, user);
    const socket = await joinedSocket(server, user, conversationId);
    server.server.services.authChanges.emit({ kind: "principal_changed", principalId: user.id });
    await Bun.sleep(100);
    expect(socket.isClosed).toBe(false);
    expect((await socket.request("message:send", { conversationId, content: "still here" })).ok).toBe(true);

    await admin.disableUser(user.id);
    expect((await socket.closed).code).toBe(4401);
  });

  test("an observer whose grant is withdrawn stops receiving what it watched", async () => {
    const owner = await server.principal();
    const watcher = await server.principal({ entitlements: ["cap:messaging.observe"] });
    const conversationId = await groupConversation(server, owner);
    const socket = await joinedSocket(server, watcher, conversationId);
    await server.server.services.database.db.update(principals).set({ entitlements: [] }).where(eq(principals.id, watcher.id));
    server.server.services.authChanges.emit({ kind: "principal_changed", principalId: watcher.id });
    const revoked = await socket.next("error");
    expect(revoked.data).toMatchObject({ code: "access_revoked", event: "join:conversation" });
    await restSend(server, owner, conversationId, "no longer for your eyes");
    await socket.expectNone("message:new", 150);
    expect(socket.isClosed).toBe(false);
    socket.close();
  });

  test("a session that expires closes its sockets with 4401", async () => {
    const user = await server.principal({ sessionExpiresAt: new Date(Date.now() + 800) });
    const socket = await openSocket(server, user);
    const closed = await socket.closed;
    expect(closed).toEqual({ code: 4401, reason: "credential expired" });
  });
});

describe("heartbeat", () => {
  test("silent sockets are pinged every heartbeat; one that never answers is closed", async () => {
    const own = await startTestServer({ HEARTBEAT_MS: "4000" });
    try {
      const user = await own.principal();
      const healthy = await openSocket(own, user);
      expect(healthy.frames[0].data.heartbeatMs).toBe(4000);
      const deaf = await RawTcpWebSocket.connect(own.server.port, user.headers);
      const opened = Date.now();
      // Bun's timers tick every 4 s, so a ping comes within one heartbeat, the close within two or three.
      await eventually(() => deaf.pings > 0, 6000, "a ping");
      await eventually(() => deaf.ended, 8000, "the close of the socket that never answered");
      expect(Date.now() - opened).toBeLessThan(12_000);
      // A normal client answers pings by itself and stays.
      expect(healthy.isClosed).toBe(false);
      expect((await healthy.request("ping")).ok).toBe(true);
      healthy.close();
    } finally {
      await own.stop();
    }
  }, 20_000);
});

describe("shutdown", () => {
  test("stopping the server answers frames in flight, then closes every socket with 1001", async () => {
    const own = await startTestServer();
    const user = await own.principal();
    const conversationId = await groupConversation(own, user);
    const sockets = await Promise.all([joinedSocket(own, user, conversationId), openSocket(own, await own.principal())]);
    sockets[0].send({ event: "message:send", data: { conversationId, content: "last words" }, ack: "last" });
    await Bun.sleep(2);
    const stopped = own.stop();
    const closes = await Promise.all(sockets.map((s) => s.closed));
    expect(closes.map((c) => c.code)).toEqual([1001, 1001]);
    const ack = sockets[0].frames.find((f) => f.event === "ack" && f.ack === "last");
    expect(ack).toBeDefined();
    expect(ack!.ok || ack!.error!.code === "shutting_down").toBe(true);
    await stopped;
  });

  test("the 1001 waits for a frame still being handled", async () => {
    const own = await startTestServer();
    const socket = await openSocket(own, await own.principal());
    const hub = own.server.realtime;
    const connection = hub.connection(socket.frames[0].data.connectionId)!;
    hub.run(connection, async () => {
      await Bun.sleep(200);
      connection.send(JSON.stringify({ event: "pong", data: { late: true } }));
    });
    const stopped = own.stop();
    expect((await socket.closed).code).toBe(1001);
    expect(socket.frames.at(-1)).toEqual({ event: "pong", data: { late: true } });
    await stopped;
  });
});
