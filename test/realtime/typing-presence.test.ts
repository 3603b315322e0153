/**
 * Typing indicators (to others, expiring on the server) and presence (per principal, only where it has
 * joined, offline when its last connection goes).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestServer, type TestServer } from "../support/server";
import { groupConversation, joinedSocket, openSocket } from "./helpers";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

const TYPING_TTL_MS = 300;
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ TYPING_TTL_MS: String(TYPING_TTL_MS) });
});
afterAll(() => server.stop());

describe("typing", () => {
  test("start and stop reach the others, not the typist", async () => {
    const [alice, bob] = await Promise.all([server.principal(), server.principal()]);
    const conversationId = await groupConversation(server, alice, [bob]);
    const aliceSocket = await joinedSocket(server, alice, conversationId);
    const bobSocket = await joinedSocket(server, bob, conversationId);

    expect((await aliceSocket.request("typing:start", { conversationId })).data).toEqual({});
    expect((await bobSocket.next("typing:started")).data).toEqual({ conversationId, userId: alice.id, userType: "user" });
    // The bare conversation id works too.
    expect((await aliceSocket.request("typing:stop", conversationId)).ok).toBe(true);
    expect((await bobSocket.next("typing:stopped")).data).toEqual({ conversationId, userId: alice.id, userType: "user" });
    await aliceSocket.expectNone((f) => f.event.startsWith("typing:"), 100);
    aliceSocket.close();
    bobSocket.close();
  });

  test("a start without a stop expires after TYPING_TTL_MS, and repeated starts extend it", async () => {
    const [alice, bob] = await Promise.all([server.principal(), server.principal()]);
    const conversationId = await groupConversation(server, alice, [bob]);
    const aliceSocket = await joinedSocket(server, alice, conversationId);
    const bobSocket = await joinedSocket(server, bob, conversationId);

    const started = Date.now();
    await aliceSocket.request("typing:start", conversationId);
    await bobSocket.next("typing:started");
    await Bun.sleep(TYPING_TTL_MS / 2);
    await aliceSocket.request("typing:start", conversationId);
    await bobSocket.next("typing:stopped", 3000);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(TYPING_TTL_MS * 1.4);
    expect(bobSocket.count("typing:started")).toBe(1);
    expect(bobSocket.count("typing:stopped")).toBe(1);
    aliceSocket.close();
    bobSocket.close();
  });

  test("a typist whose connection closes stops typing", async () => {
    const [alice, bob] = await Promise.all([server.principal(), server.principal()]);
    const conversationId = await groupConversation(server, alice, [bob]);
    const aliceSocket = await joinedSocket(server, alice, conversationId);
    const bobSocket = await joinedSocket(server, bob, conversationId);
    await aliceSocket.request("typing:start", conversationId);
    await bobSocket.next("typing:started");
    aliceSocket.close();
    await bobSocket.next("typing:stopped", TYPING_TTL_MS / 2);
    bobSocket.close();
  });
});

describe("presence", () => {
  test("two tabs of one user: online once, offline only after the second tab closes", async () => {
    const [alice, bob] = await Promise.all([server.principal(), server.principal()]);
    const conversationId = await groupConversation(server, alice, [bob]);
    const bobSocket = await joinedSocket(server, bob, conversationId);

    const tab1 = await joinedSocket(server, alice, conversationId);
    const online = await bobSocket.next("presence:changed");
    expect(online.data).toEqual({ userId: alice.id, userType: "user", status: "online", conversationId });
    const tab2 = await joinedSocket(server, alice, conversationId);
    const joinAck = await tab2.request("join:conversation", conversationId);
    expect(joinAck.data.presence).toEqual(
      expect.arrayContaining([
        { userId: alice.id, userType: "user", status: "online" },
        { userId: bob.id, userType: "user", status: "online" },
      ]),
    );

    tab1.close();
    await tab1.closed;
    await bobSocket.expectNone((f) => f.event === "presence:changed" && f.data.status === "offline", 200);
    tab2.close();
    const offline = await bobSocket.next((f) => f.event === "presence:changed" && f.data.status === "offline");
    expect(offline.data).toEqual({ userId: alice.id, userType: "user", status: "offline", conversationId });
    expect(bobSocket.count((f) => f.event === "presence:changed" && f.data.userId === alice.id && f.data.status === "online")).toBe(1);
    bobSocket.close();
  });

  test("presence:update goes to every conversation the user joined, and nowhere else", async () => {
    const [alice, bob, carol, dave] = await Promise.all([server.principal(), server.principal(), server.principal(), server.principal()]);
    const withBob = await groupConversation(server, alice, [bob]);
    const withCarol = await groupConversation(server, alice, [carol]);
    const notJoined = await groupConversation(server, alice, [dave]);
    const bobSocket = await joinedSocket(server, bob, withBob);
    const carolSocket = await joinedSocket(server, carol, withCarol);
    const daveSocket = await joinedSocket(server, dave, notJoined);
    const stranger = await openSocket(server, await server.principal());

    const aliceTab1 = await joinedSocket(server, alice, withBob);
    const aliceTab2 = await joinedSocket(server, alice, withCarol);
    const ack = await aliceTab1.request("presence:update", { status: "busy" });
    expect(ack.data).toEqual({ status: "busy" });
    expect((await bobSocket.next((f) => f.event === "presence:changed" && f.data.status === "busy")).data.conversationId).toBe(withBob);
    expect((await carolSocket.next((f) => f.event === "presence:changed" && f.data.status === "busy")).data.conversationId).toBe(withCarol);
    // Alice's other tab is told too; Dave (a conversation Alice has not joined) and strangers are not.
    await aliceTab2.next((f) => f.event === "presence:changed" && f.data.status === "busy");
    await daveSocket.expectNone("presence:changed", 100);
    await stranger.expectNone("presence:changed", 10);

    // The status belongs to the user: a later join announces it.
    const third = await groupConversation(server, alice, [dave]);
    await daveSocket.request("join:conversation", third);
    await aliceTab1.request("join:conversation", third);
    expect((await daveSocket.next((f) => f.event === "presence:changed" && f.data.conversationId === third)).data.status).toBe("busy");

    for (const s of [bobSocket, carolSocket, daveSocket, stranger, aliceTab1, aliceTab2]) s.close();
  });

  test("leaving a conversation's topic says offline there when no other tab watches it", async () => {
    const [alice, bob] = await Promise.all([server.principal(), server.principal()]);
    const conversationId = await groupConversation(server, alice, [bob]);
    const bobSocket = await joinedSocket(server, bob, conversationId);
    const alice1 = await joinedSocket(server, alice, conversationId);
    await bobSocket.next("presence:changed");
    await alice1.request("leave:conversation", conversationId);
    expect((await bobSocket.next((f) => f.event === "presence:changed" && f.data.status === "offline")).data.userId).toBe(alice.id);
    alice1.close();
    bobSocket.close();
  });
});
