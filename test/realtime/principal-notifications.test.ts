/**
 * A connection hears about its own principal's memberships without joining anything: added to a new
 * conversation, added to an existing one, removed. The SDK can join what it is added to by itself.
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import postgres from "postgres";
import { TEST_DATABASE_URL } from "../support/database";
import { startTestServer, type TestServer } from "../support/server";
import { RawSocket, eventually, groupConversation, openSocket, restSend, sdkClient } from "./helpers";

// End-to-end tests start servers and processes: more than the runner's 5 s default.
setDefaultTimeout(60_000);

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

describe("principal notifications", () => {
  test("a socket connected before the conversation exists is told it was added, with the conversation and its role", async () => {
    const [alice, agent, stranger] = await Promise.all([
      server.principal(),
      server.principal({ type: "agent" }),
      server.principal(),
    ]);
    const [agentSocket, secondAgentSocket, aliceSocket, strangerSocket] = await Promise.all([
      openSocket(server, agent),
      openSocket(server, agent),
      openSocket(server, alice),
      openSocket(server, stranger),
    ]);
    const conversationId = await groupConversation(server, alice, [agent]);
    for (const socket of [agentSocket, secondAgentSocket]) {
      const added = await socket.next("conversation:added");
      expect(added.data.role).toBe("member");
      expect(added.data.conversation).toMatchObject({ id: conversationId, type: "group", name: "realtime test", created_by: alice.id });
      expect(added.data.conversation.participants).toBeUndefined();
    }
    expect((await aliceSocket.next("conversation:added")).data).toMatchObject({ conversation: { id: conversationId }, role: "owner" });
    await strangerSocket.expectNone("conversation:added", 200);
    for (const socket of [agentSocket, secondAgentSocket, aliceSocket, strangerSocket]) socket.close();
  });

  test("an add and a removal reach only that principal's sockets, and the removed one no longer hears the topic", async () => {
    const [alice, bob, carol] = await Promise.all([server.principal(), server.principal(), server.principal()]);
    const conversationId = await groupConversation(server, alice, [carol]);
    const [bobSocket, carolSocket] = await Promise.all([openSocket(server, bob), openSocket(server, carol)]);
    const from = carolSocket.frames.length;
    const added = await server.request("POST", `/api/conversations/${conversationId}/participants`, { as: alice, body: { userId: bob.id } });
    expect(added.status).toBe(201);
    expect((await bobSocket.next("conversation:added")).data).toMatchObject({ conversation: { id: conversationId }, role: "member" });
    expect((await bobSocket.request("join:conversation", { conversationId })).ok).toBe(true);

    const removed = await server.request("DELETE", `/api/conversations/${conversationId}/participants/${bob.id}`, { as: alice });
    expect(removed.status).toBe(204);
    expect((await bobSocket.next("conversation:removed")).data).toEqual({ conversationId });
    await restSend(server, alice, conversationId, "after bob left");
    await bobSocket.expectNone("message:new", 200);
    expect(carolSocket.frames.slice(from).some((f) => f.event === "conversation:added" || f.event === "conversation:removed")).toBe(false);
    bobSocket.close();
    carolSocket.close();
  });

  test("deleting a conversation tells every participant, joined or not", async () => {
    const [alice, bob] = await Promise.all([server.principal(), server.principal()]);
    const conversationId = await groupConversation(server, alice, [bob]);
    const [aliceSocket, bobSocket] = await Promise.all([openSocket(server, alice), openSocket(server, bob)]);
    expect((await server.request("DELETE", `/api/conversations/${conversationId}`, { as: alice })).status).toBe(204);
    for (const socket of [aliceSocket, bobSocket]) {
      expect((await socket.next("conversation:removed")).data).toEqual({ conversationId });
      socket.close();
    }
  });

  test("joining a conversation oneself is announced to one's other sockets", async () => {
    const org = await server.org();
    const [alice, bob] = await Promise.all([server.principal({ orgs: [org] }), server.principal({ orgs: [org] })]);
    const created = await server.request("POST", "/api/conversations", { as: alice, body: { type: "group", name: "open", orgId: org } });
    expect(created.status).toBe(201);
    const bobElsewhere = await openSocket(server, bob);
    const joined = await server.request("POST", `/api/conversations/${created.body.id}/join`, { as: bob, headers: { "x-org-id": org } });
    expect(joined.status).toBeLessThan(300);
    expect((await bobElsewhere.next("conversation:added")).data.conversation.id).toBe(created.body.id);
    bobElsewhere.close();
  });

  test("the SDK surfaces the events and, with autoJoin, joins from the start: a message sent right after the add is not missed", async () => {
    const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
    const client = sdkClient(server, agent).realtime({ autoJoin: true });
    const added: string[] = [];
    const removed: string[] = [];
    const received: string[] = [];
    client.on("conversation:added", (event) => added.push(event.conversation.id));
    client.on("conversation:removed", (event) => removed.push(event.conversationId));
    client.on("message:new", (message) => received.push(message.content));
    await client.connect();
    const conversationId = await groupConversation(server, alice, [agent]);
    await restSend(server, alice, conversationId, "right away");
    await eventually(() => received.includes("right away"), 3000, "the first message");
    expect(added).toEqual([conversationId]);
    expect(client.joined()).toEqual([conversationId]);
    await restSend(server, alice, conversationId, "live");
    await eventually(() => received.includes("live"), 3000, "the live message");
    expect(received).toEqual(["right away", "live"]);

    await server.request("DELETE", `/api/conversations/${conversationId}/participants/${agent.id}`, { as: alice });
    await eventually(() => removed.length === 1, 3000, "the removal");
    expect(client.joined()).toEqual([]);
    client.close();
  });

  test("a socket opened with addedSince is told of the conversations its principal joined since then and is still in", async () => {
    const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
    const before = await groupConversation(server, alice, [agent]);
    await Bun.sleep(20);
    const since = new Date().toISOString();
    await Bun.sleep(20);
    const first = await groupConversation(server, alice, [agent]);
    const left = await groupConversation(server, alice, [agent]);
    const second = await groupConversation(server, alice);
    expect((await server.request("POST", `/api/conversations/${second}/participants`, { as: alice, body: { userId: agent.id, userType: "agent" } })).status).toBe(201);
    expect((await server.request("DELETE", `/api/conversations/${left}/participants/${agent.id}`, { as: alice })).status).toBe(204);

    const socket = new RawSocket(new WebSocket(`${server.wsUrl}?addedSince=${encodeURIComponent(since)}`, { headers: agent.headers } as any));
    await socket.next("session:ready");
    await socket.next((frame) => frame.event === "conversation:added" && frame.data.conversation.id === second);
    const told = socket.frames.filter((frame) => frame.event === "conversation:added").map((frame) => frame.data);
    expect(told.map((added) => added.conversation.id)).toEqual([first, second]);
    expect(told.map((added) => added.role)).toEqual(["member", "member"]);
    expect(told[0].conversation.participants).toBeUndefined();
    await socket.expectNone("conversation:added", 200);
    expect(told.map((added) => added.conversation.id)).not.toContain(before);
    // Without the parameter nothing is told.
    const plain = await openSocket(server, agent);
    await plain.expectNone("conversation:added", 200);
    socket.close();
    plain.close();
  });

  test("addedSince that is not a time refuses the upgrade with 400", async () => {
    const agent = await server.principal({ type: "agent" });
    for (const value of ["yesterday", "2026-12-01", "2026-12-01T20:33:33", "2026-13-45T99:00:00Z"]) {
      const response = await fetch(`${server.url}/api/ws?addedSince=${encodeURIComponent(value)}`, {
        headers: { ...agent.headers, connection: "upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" },
      });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { code: string }).code).toBe("invalid_input");
    }
  });

  test("the SDK with autoJoin joins, after a reconnect, what its principal was added to while it was away", async () => {
    const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
    const client = sdkClient(server, agent).realtime({ autoJoin: true, reconnect: { initialDelayMs: 3000 } });
    const received: string[] = [];
    client.on("message:new", (message) => received.push(message.content));
    const closed = new Promise<void>((resolve) => client.on("close", () => resolve()));
    await client.connect();
    client.reconnect();
    await closed;
    // Added and written to while no socket was open.
    const conversationId = await groupConversation(server, alice, [agent]);
    await restSend(server, alice, conversationId, "while away");
    expect(client.connected).toBe(false);
    await eventually(() => received.includes("while away"), 8000, "the message sent while away");
    expect(client.joined()).toEqual([conversationId]);
    expect(client.stats.reconnects).toBe(1);
    await restSend(server, alice, conversationId, "live");
    await eventually(() => received.includes("live"), 3000, "the live message");
    expect(received).toEqual(["while away", "live"]);
    client.close();
  });
});

describe.skipIf(!TEST_DATABASE_URL)("a deletion racing an add (PostgreSQL: two transactions at once)", () => {
  test("a participant committed while the conversation is being deleted is told of the deletion", async () => {
    const [alice, latecomer] = await Promise.all([server.principal(), server.principal()]);
    const conversationId = await groupConversation(server, alice);
    const socket = await openSocket(server, latecomer);
    const other = postgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {} });
    try {
      // An add in flight: its row written, its transaction not yet committed (it holds the conversation's key share lock).
      const reserved = await other.reserve();
      await reserved`begin`;
      await reserved`insert into participants (id, conversation_id, user_id, user_type, role) values (${Bun.randomUUIDv7()}, ${conversationId}, ${latecomer.id}, 'user', 'member')`;
      const deletion = server.request("DELETE", `/api/conversations/${conversationId}`, { as: alice });
      await Bun.sleep(300);
      await reserved`commit`;
      reserved.release();
      expect((await deletion).status).toBe(204);
      expect((await socket.next("conversation:removed")).data).toEqual({ conversationId });
    } finally {
      socket.close();
      await other.end();
    }
  });
});
