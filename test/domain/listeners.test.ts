/**
 * Listeners of domain events cannot change what a client is answered: one that throws on every event
 * leaves every REST status and WebSocket ack as it was, and is counted.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { useEndToEndTimeout } from "../support/timeout";
import { startTestServer, type TestServer } from "../support/server";
import { groupConversation, joinedSocket } from "../realtime/helpers";

useEndToEndTimeout();

let server: TestServer;
const seen: string[] = [];

beforeAll(async () => {
  server = await startTestServer();
  const bus = server.server.services.domainEvents;
  bus.on("throws inline", () => {
    throw new Error("inline listener failure");
  }, { inline: true });
  bus.on("throws later", () => {
    throw new Error("deferred listener failure");
  });
  bus.on("rejects", async () => {
    throw new Error("async listener failure");
  });
  bus.on("records", (event) => void seen.push(event.type));
});
afterAll(() => server.stop());

describe("failing domain event listeners", () => {
  test("every write answers as usual, sockets still hear it, and the failures are counted", async () => {
    const bus = server.server.services.domainEvents;
    const before = bus.failures();
    const [alice, bob] = await Promise.all([server.principal(), server.principal()]);
    const conversationId = await groupConversation(server, alice, [bob]);
    const bobSocket = await joinedSocket(server, bob, conversationId);

    const sent = await server.request("POST", `/api/conversations/${conversationId}/messages`, { as: alice, body: { content: "hi" } });
    expect(sent.status).toBe(201);
    expect((await bobSocket.next("message:new")).data.id).toBe(sent.body.id);

    const edited = await server.request("PATCH", `/api/conversations/${conversationId}/messages/${sent.body.id}`, { as: alice, body: { content: "hi!" } });
    expect(edited.status).toBe(200);
    const ack = await bobSocket.request("message:send", { conversationId, content: "over the socket" });
    expect(ack.ok).toBe(true);
    expect(ack.data.sequence).toBe(2);
    const deleted = await server.request("DELETE", `/api/conversations/${conversationId}/messages/${sent.body.id}`, { as: alice });
    expect(deleted.status).toBe(204);
    bobSocket.close();

    await Bun.sleep(20);
    const after = bus.failures();
    // conversation.created, participant events are not in this count: 4 writes after the socket joined
    for (const name of ["throws inline", "throws later", "rejects"]) expect(after[name] - (before[name] ?? 0)).toBeGreaterThanOrEqual(4);
    expect(seen).toContain("conversation.created");
    expect(seen).toContain("message.created");
    expect(seen).toContain("message.deleted");
  });
});
