/**
 * Every committed write reaches the conversation's sockets once, whichever transport made it; membership
 * follows the database; strangers hear nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestServer, type TestServer } from "../support/server";
import { groupConversation, joinedSocket, openSocket, restSend } from "./helpers";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

describe("messages", () => {
  test("a message sent over REST arrives once on every joined socket, the same bytes the API answered", async () => {
    const [alice, bob, carol] = await Promise.all([server.principal(), server.principal(), server.principal()]);
    const conversationId = await groupConversation(server, alice, [bob, carol]);
    const sockets = await Promise.all([alice, bob, carol].map((p) => joinedSocket(server, p, conversationId)));
    const sent = await restSend(server, alice, conversationId, "hello over REST");
    for (const socket of sockets) {
      const frame = await socket.next("message:new");
      expect(frame.data).toEqual(sent);
      await socket.expectNone("message:new", 50);
      socket.close();
    }
  });

  test("a message sent over the socket is acked with the message, broadcast, and listed over REST", async () => {
    const [alice, bob] = await Promise.all([server.principal(), server.principal()]);
    const conversationId = await groupConversation(server, alice, [bob]);
    const aliceSocket = await joinedSocket(server, alice, conversationId);
    const bobSocket = await joinedSocket(server, bob, conversationId);
    const ack = await aliceSocket.request("message:send", { conversationId, content: "hello over WS", priority: "high", metadata: { k: 1 } });
    expect(ack.ok).toBe(true);
    expect(ack.data).toMatchObject({ conversation_id: conversationId, sender_id: alice.id, content: "hello over WS", sequence: 1, priority: "high" });
    expect((await bobSocket.next("message:new")).data).toEqual(ack.data);
    expect((await aliceSocket.next("message:new")).data).toEqual(ack.data);
    const listed = await server.request("GET", `/api/conversations/${conversationId}/messages`, { as: bob });
    expect(listed.body).toEqual([ack.data]);
    aliceSocket.close();
    bobSocket.close();
  });

  test("a client id sent twice is one message and one broadcast", async () => {
    const alice = await server.principal();
    const conversationId = await groupConversation(server, alice);
    const socket = await joinedSocket(server, alice, conversationId);
    const id = crypto.randomUUID();
    const first = await socket.request("message:send", { conversationId, id, content: "once" });
    const second = await socket.request("message:send", { conversationId, id, content: "once" });
    expect(second.data).toEqual(first.data);
    await socket.expectNone((f) => f.event === "message:new" && f.data.sequence !== 1, 100);
    expect(socket.count("message:new")).toBe(1);
    socket.close();
  });

  test("edits and deletes are broadcast, over REST and over the socket alike", async () => {
    const [alice, bob] = await Promise.all([server.principal(), server.principal()]);
    const conversationId = await groupConversation(server, alice, [bob]);
    const aliceSocket = await joinedSocket(server, alice, conversationId);
    const bobSocket = await joinedSocket(server, bob, conversationId);
    const sent = (await aliceSocket.request("message:send", { conversationId, content: "first draft" })).data;

    const edited = await aliceSocket.request("message:edit", { messageId: sent.id, content: "second draft" });
    expect(edited.data).toMatchObject({ id: sent.id, content: "second draft", version: 2 });
    expect((await bobSocket.next("message:updated")).data).toEqual(edited.data);

    const restEdit = await server.request("PATCH", `/api/conversations/${conversationId}/messages/${sent.id}`, {
      as: alice,
      body: { content: "third draft" },
    });
    expect((await bobSocket.next((f) => f.event === "message:updated" && f.data.version === 3)).data).toEqual(restEdit.body);

    const bobEdit = await bobSocket.request("message:edit", { messageId: sent.id, content: "not mine" });
    expect(bobEdit.error!.code).toBe("not_sender");

    const deleted = await aliceSocket.request("message:delete", { messageId: sent.id });
    expect(deleted.data).toEqual({ id: sent.id, conversationId });
    const frame = await bobSocket.next("message:deleted");
    expect(frame.data).toMatchObject({ id: sent.id, conversationId, sequence: 1 });
    expect(typeof frame.data.deletedAt).toBe("string");

    const again = await aliceSocket.request("message:delete", { messageId: sent.id });
    expect(again.error!.code).toBe("not_found");
    aliceSocket.close();
    bobSocket.close();
  });

  test("control events are stored in the sequence and broadcast under their own name", async () => {
    const supervisor = await server.principal({ entitlements: ["cap:messaging.interrupt", "cap:messaging.route"] });
    const agent = await server.principal({ type: "agent" });
    const conversationId = await groupConversation(server, supervisor, [agent]);
    const agentSocket = await joinedSocket(server, agent, conversationId);
    const supervisorSocket = await joinedSocket(server, supervisor, conversationId);
    expect((await server.request("POST", `/api/conversations/${conversationId}/runs`, { as: supervisor, body: { runId: "run-1" } })).status).toBe(201);
    expect((await agentSocket.next("run:started")).data).toMatchObject({ id: "run-1", owner_id: supervisor.id, state: "active" });

    const ack = await supervisorSocket.request("control:send", { conversationId, event: "stream.pause", reason: "hold on", runId: "run-1" });
    expect(ack.ok).toBe(true);
    expect(ack.data).toMatchObject({ content_type: "event", priority: "high", sequence: 1 });
    const pause = await agentSocket.next("stream.pause");
    expect(pause.data).toMatchObject({
      event: "stream.pause",
      conversationId,
      messageId: ack.data.id,
      sequence: 1,
      senderId: supervisor.id,
      senderType: "user",
      reason: "hold on",
      runId: "run-1",
      from: "active",
      to: "paused",
    });

    await server.request("POST", `/api/conversations/${conversationId}/control`, {
      as: supervisor,
      body: { event: "stream.handoff", target: agent.id },
    });
    const handoff = await agentSocket.next("stream.handoff");
    expect(handoff.data).toMatchObject({ sequence: 2, target: { principalId: agent.id, principalType: "agent" } });

    // The agent owns the run now, but routing it on still needs cap:messaging.route.
    const denied = await agentSocket.request("control:send", { conversationId, event: "stream.route", target: supervisor.id });
    expect(denied.error!.code).toBe("missing_entitlement");
    agentSocket.close();
    supervisorSocket.close();
  });
});

describe("membership", () => {
  test("joining needs participation; observers watch read-only", async () => {
    const [owner, stranger] = await Promise.all([server.principal(), server.principal()]);
    const admin = await server.principal({ superAdmin: true });
    const observer = await server.principal({ type: "agent", entitlements: ["cap:messaging.observe"] });
    const conversationId = await groupConversation(server, owner);

    const strangerSocket = await openSocket(server, stranger);
    expect((await strangerSocket.request("join:conversation", { conversationId })).error!.code).toBe("not_participant");
    expect((await strangerSocket.request("join:conversation", crypto.randomUUID())).error!.code).toBe("not_found");

    const ownerSocket = await joinedSocket(server, owner, conversationId);
    const adminSocket = await joinedSocket(server, admin, conversationId);
    const observerSocket = await joinedSocket(server, observer, conversationId);
    await restSend(server, owner, conversationId, "watched");
    expect((await adminSocket.next("message:new")).data.content).toBe("watched");
    expect((await observerSocket.next("message:new")).data.content).toBe("watched");

    expect((await observerSocket.request("message:send", { conversationId, content: "hi" })).error!.code).toBe("not_participant");
    expect((await observerSocket.request("typing:start", conversationId)).error!.code).toBe("not_participant");
    // Watching read-only is invisible: no presence for observers.
    await ownerSocket.expectNone((f) => f.event === "presence:changed" && f.data.userId !== owner.id, 100);
    await strangerSocket.expectNone("message:new", 50);
    for (const s of [strangerSocket, ownerSocket, adminSocket, observerSocket]) s.close();
  });

  test("non-participants hear nothing of a conversation", async () => {
    const [alice, bob, eve] = await Promise.all([server.principal(), server.principal(), server.principal()]);
    const conversationId = await groupConversation(server, alice, [bob]);
    const aliceSocket = await joinedSocket(server, alice, conversationId);
    const eveSocket = await openSocket(server, eve);
    await eveSocket.request("join:conversation", { conversationId });
    await restSend(server, alice, conversationId, "secret");
    await aliceSocket.request("typing:start", conversationId);
    await aliceSocket.request("presence:update", { status: "busy" });
    await server.request("PATCH", `/api/conversations/${conversationId}`, { as: alice, body: { name: "renamed" } });
    await aliceSocket.next("conversation:updated");
    await eveSocket.expectNone((f) => f.event !== "ack", 300);
    aliceSocket.close();
    eveSocket.close();
  });

  test("participant changes are announced, and a removed participant stops receiving at once", async () => {
    const [owner, member, late] = await Promise.all([server.principal(), server.principal(), server.principal()]);
    const conversationId = await groupConversation(server, owner, [member]);
    const ownerSocket = await joinedSocket(server, owner, conversationId);
    const memberTabs = await Promise.all([joinedSocket(server, member, conversationId), joinedSocket(server, member, conversationId)]);

    await server.request("POST", `/api/conversations/${conversationId}/participants`, { as: owner, body: { userId: late.id } });
    const joined = await ownerSocket.next("participant:joined");
    expect(joined.data).toEqual({ conversationId, userId: late.id, userType: "user", role: "member" });

    await server.request("PATCH", `/api/conversations/${conversationId}/participants/${member.id}`, { as: owner, body: { role: "admin" } });
    expect((await ownerSocket.next("participant:updated")).data).toEqual({ conversationId, userId: member.id, userType: "user", role: "admin" });

    const removed = await server.request("DELETE", `/api/conversations/${conversationId}/participants/${member.id}`, { as: owner });
    expect(removed.status).toBe(204);
    for (const tab of memberTabs) {
      // They learn it, then nothing more.
      expect((await tab.next("participant:left")).data).toMatchObject({ conversationId, userId: member.id });
    }
    await restSend(server, owner, conversationId, "after the removal");
    await ownerSocket.next((f) => f.event === "message:new" && f.data.content === "after the removal");
    for (const tab of memberTabs) await tab.expectNone("message:new", 150);
    expect((await memberTabs[0].request("join:conversation", conversationId)).error!.code).toBe("not_participant");
    for (const s of [ownerSocket, ...memberTabs]) s.close();
  });

  test("leaving over REST unsubscribes every socket of the leaver", async () => {
    const [owner, member] = await Promise.all([server.principal(), server.principal()]);
    const conversationId = await groupConversation(server, owner, [member]);
    const memberSocket = await joinedSocket(server, member, conversationId);
    expect((await server.request("POST", `/api/conversations/${conversationId}/leave`, { as: member })).status).toBe(204);
    await memberSocket.next("participant:left");
    await restSend(server, owner, conversationId, "gone");
    await memberSocket.expectNone("message:new", 150);
    memberSocket.close();
  });

  test("leave:conversation stops the topic for that socket only, without ending participation", async () => {
    const [owner, member] = await Promise.all([server.principal(), server.principal()]);
    const conversationId = await groupConversation(server, owner, [member]);
    const tab1 = await joinedSocket(server, member, conversationId);
    const tab2 = await joinedSocket(server, member, conversationId);
    const ack = await tab1.request("leave:conversation", { conversationId });
    expect(ack.data).toEqual({ conversationId });
    await restSend(server, owner, conversationId, "still here");
    await tab2.next("message:new");
    await tab1.expectNone("message:new", 100);
    const participants = await server.request("GET", `/api/conversations/${conversationId}`, { as: member });
    expect(participants.body.participants.map((p: any) => p.user_id)).toContain(member.id);
    tab1.close();
    tab2.close();
  });

  test("conversation updates reach the topic; deletion is announced and unsubscribes everyone", async () => {
    const [owner, member] = await Promise.all([server.principal(), server.principal()]);
    const conversationId = await groupConversation(server, owner, [member]);
    const memberSocket = await joinedSocket(server, member, conversationId);
    const patched = await server.request("PATCH", `/api/conversations/${conversationId}`, { as: owner, body: { name: "new name" } });
    expect((await memberSocket.next("conversation:updated")).data).toEqual(patched.body);
    await server.request("DELETE", `/api/conversations/${conversationId}`, { as: owner });
    expect((await memberSocket.next("conversation:deleted")).data).toEqual({ id: conversationId });
    expect(server.server.realtime.connectionCount).toBeGreaterThan(0);
    expect((await memberSocket.request("join:conversation", conversationId)).error!.code).toBe("not_found");
    memberSocket.close();
  });
});
