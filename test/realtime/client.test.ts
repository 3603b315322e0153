/**
 * The SDK against the real server: every REST method, and the WebSocket client's acks, events,
 * reconnection and resumption.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  ApiError,
  MessagingClient,
  RealtimeClient,
  RealtimeError,
  type ControlBroadcast as ClientControlBroadcast,
  type Conversation,
  type JoinResult,
  type Message,
  type Participant,
  type Run,
  type Webhook,
  type WebhookDelivery,
  type ControlEventName,
} from "../../src/client";
import type { ControlEvent } from "../../src/domain/control-events";
import type { toDelivery, toWebhook } from "../../src/modules/webhooks/service";
import type { ControlBroadcast as ServerControlBroadcast } from "../../src/domain/control-events";
import type { ConversationResource, MessageResource, ParticipantResource, RunResource } from "../../src/domain/resources";
import type { JoinResult as ServerJoinResult } from "../../src/realtime/hub";
import { startTestServer, type TestServer } from "../support/server";
import { eventually, restSend, sdkClient } from "./helpers";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

describe("REST", () => {
  test("every endpoint has a method, and errors carry the API's code", async () => {
    const password = "correct horse battery staple";
    const ownerPrincipal = await server.principal({ password });
    const memberPrincipal = await server.principal();
    const org = await server.org();
    const joinerPrincipal = await server.principal({ orgs: [org] });
    const adminPrincipal = await server.principal({ superAdmin: true });
    const supervisor = await server.principal({ entitlements: ["cap:messaging.interrupt"] });

    const anonymous = new MessagingClient({ baseUrl: server.url });
    expect(await anonymous.health()).toEqual({ status: "ok", service: "symbia-messaging" });
    expect((await anonymous.bootstrap()).websocketEvents?.server).toContain("message:new");
    expect(await anonymous.session()).toEqual({ authenticated: false });
    const unauthorized = await anonymous.listConversations().catch((e) => e);
    expect(unauthorized).toBeInstanceOf(ApiError);
    expect(unauthorized).toMatchObject({ status: 401, code: "unauthorized" });

    const owner = new MessagingClient({ baseUrl: server.url });
    const login = await owner.login(ownerPrincipal.email!, password);
    expect(login.user.id).toBe(ownerPrincipal.id);
    expect((await owner.me()).id).toBe(ownerPrincipal.id);
    expect(await owner.session()).toMatchObject({ authenticated: true });

    const created = await owner.createConversation({ type: "group", name: "sdk", orgId: undefined, participants: [{ userId: memberPrincipal.id }] });
    expect(created.participants).toHaveLength(2);
    expect((await owner.listConversations()).map((c) => c.id)).toContain(created.id);
    expect((await owner.getConversation(created.id)).name).toBe("sdk");
    expect((await owner.updateConversation(created.id, { description: "about" })).description).toBe("about");

    const sent = await owner.sendMessage(created.id, { content: "hello" });
    expect(sent.sequence).toBe(1);
    const edited = await owner.editMessage(created.id, sent.id, { content: "hello again" });
    expect(edited.version).toBe(2);
    expect((await owner.messageHistory(created.id, sent.id)).versions).toHaveLength(2);
    expect((await owner.listMessages(created.id, { after: 0, limit: 10 })).map((m) => m.id)).toEqual([sent.id]);
    await owner.deleteMessage(created.id, sent.id);
    expect(await owner.listMessages(created.id)).toEqual([]);

    const supervisorClient = sdkClient(server, supervisor);
    await owner.addParticipant(created.id, { userId: supervisor.id });
    expect((await supervisorClient.sendControl(created.id, { event: "stream.pause" })).content_type).toBe("event");
    expect((await owner.changeRole(created.id, memberPrincipal.id, "admin")).role).toBe("admin");
    await owner.removeParticipant(created.id, supervisor.id);
    const member = sdkClient(server, memberPrincipal);
    await member.leaveConversation(created.id);

    const group = await owner.createConversation({ type: "group", name: "org room", orgId: undefined });
    const orgOwner = sdkClient(server, joinerPrincipal);
    const orgRoom = await orgOwner.createConversation({ type: "group", name: "org", orgId: org });
    const joiner = sdkClient(server, await server.principal({ orgs: [org] }));
    expect((await joiner.joinConversation(orgRoom.id)).role).toBe("member");

    const admin = sdkClient(server, adminPrincipal);
    expect((await admin.adminListConversations({ limit: 5 })).limit).toBe(5);
    expect((await admin.adminGetConversation(created.id)).conversation.id).toBe(created.id);
    expect((await admin.adminUserConversations(ownerPrincipal.id)).map((c) => c.id)).toContain(group.id);
    expect((await admin.adminAddParticipant(group.id, { userId: memberPrincipal.id, role: "admin" })).role).toBe("admin");
    await admin.adminRemoveParticipant(group.id, memberPrincipal.id);
    expect(typeof (await admin.adminStats()).totalMessages).toBe("number");
    await admin.adminDeleteConversation(group.id);
    await owner.deleteConversation(created.id);
    const gone = await owner.getConversation(created.id).catch((e) => e);
    expect(gone).toMatchObject({ status: 404, code: "not_found" });

    await owner.logout();
    expect(await owner.session()).toEqual({ authenticated: false });
  });

  test("scope options become headers", async () => {
    const org = await server.org();
    const who = await server.principal({ orgs: [org] });
    const client = new MessagingClient({ baseUrl: server.url, token: who.token, scope: { orgId: org, serviceId: "svc-1", dataClass: "pii" } });
    const conversation = await client.createConversation({ type: "group", name: "scoped" });
    expect(conversation.org_id).toBe(org);
    const message = await client.sendMessage(conversation.id, { content: "x" });
    expect(message).toMatchObject({ data_class: "pii", metadata: { serviceId: "svc-1" } });
  });
});

describe("WebSocket", () => {
  test("acks resolve with results, failures reject with the server's code, events arrive as callbacks", async () => {
    const [alicePrincipal, bobPrincipal] = await Promise.all([server.principal(), server.principal()]);
    const alice = sdkClient(server, alicePrincipal);
    const conversation = await alice.createConversation({ type: "group", name: "ws", participants: [{ userId: bobPrincipal.id }] });
    const aliceSocket = alice.realtime();
    const bobSocket = sdkClient(server, bobPrincipal).realtime();
    const session = await aliceSocket.connect();
    expect(session.user).toEqual({ id: alicePrincipal.id, type: "user" });
    await bobSocket.connect();

    const received: Message[] = [];
    const typing: string[] = [];
    bobSocket.on("message:new", (m) => received.push(m));
    bobSocket.on("typing:started", (t) => typing.push(t.userId));
    await aliceSocket.join(conversation.id);
    await bobSocket.join(conversation.id);

    const sent = await aliceSocket.send(conversation.id, { content: "hi bob" });
    expect(sent).toMatchObject({ content: "hi bob", sequence: 1 });
    expect(sent.id).toMatch(/^[0-9a-f-]{36}$/);
    // Sending the same client id again is safe: the stored message comes back.
    expect((await aliceSocket.send(conversation.id, { id: sent.id, content: "hi bob" })).sequence).toBe(1);
    await aliceSocket.startTyping(conversation.id);
    await eventually(() => received.length === 1 && typing.length === 1, 2000, "events");
    expect(received[0]).toEqual(sent);
    expect(bobSocket.lastSequence(conversation.id)).toBe(1);

    expect((await aliceSocket.edit(sent.id, { content: "edited" })).version).toBe(2);
    expect(await aliceSocket.delete(sent.id)).toEqual({ id: sent.id, conversationId: conversation.id });
    expect((await aliceSocket.ping()).serverTime).toEqual(expect.any(String));
    await aliceSocket.setPresence("away");

    const failure = await bobSocket.edit(sent.id, { content: "not mine" }).catch((e) => e);
    expect(failure).toBeInstanceOf(RealtimeError);
    expect(failure.code).toBe("not_sender");
    const control = await aliceSocket.control(conversation.id, { event: "stream.pause" }).catch((e) => e);
    expect(control.code).toBe("missing_entitlement");

    await bobSocket.leave(conversation.id);
    expect(bobSocket.joined()).toEqual([]);
    aliceSocket.close();
    bobSocket.close();
    expect((await aliceSocket.ping().catch((e) => e)).code).toBe("not_connected");
  });

  test("after the server drops the connection, the client reconnects and resumes without loss or duplicates", async () => {
    const owner = await server.principal();
    const client = sdkClient(server, owner);
    const conversation = await client.createConversation({ type: "group", name: "resume" });
    const socket = client.realtime({ reconnect: { initialDelayMs: 200, maxDelayMs: 400 } });
    const sequences: number[] = [];
    const lifecycle: string[] = [];
    socket.on("message:new", (m) => sequences.push(m.sequence));
    socket.on("close", (c) => lifecycle.push(`close:${c.code}:${c.reconnecting}`));
    socket.on("resumed", (r) => lifecycle.push(`resumed:${r.replayed}`));
    const session = await socket.connect();
    await socket.join(conversation.id);
    await restSend(server, owner, conversation.id, "before");
    await eventually(() => sequences.length === 1, 2000, "first message");

    // Closed by the server (e.g. a restart elsewhere); messages keep coming while it is away.
    server.server.realtime.connection(session.connectionId)!.close(1012, "service restart");
    for (let i = 0; i < 5; i++) await restSend(server, owner, conversation.id, `while away ${i}`);
    await eventually(() => sequences.length === 6, 5000, "resumed messages");
    await restSend(server, owner, conversation.id, "after");
    await eventually(() => sequences.length === 7, 2000, "live again");
    expect(sequences).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(lifecycle[0]).toBe("close:1012:true");
    // Usually all five were sent while away and come back replayed; a quick reconnect gets some live.
    expect(lifecycle.some((entry) => entry.startsWith("resumed:"))).toBe(true);
    expect(socket.stats).toEqual({ reconnects: 1, duplicatesDropped: 0, rateLimitedRetries: 0 });
    socket.close();
  });

  test("a revoked credential (4401) ends the client without reconnecting", async () => {
    const user = await server.principal();
    const client = sdkClient(server, user);
    const socket = client.realtime({ reconnect: { initialDelayMs: 10 } });
    const closes: { code: number; reconnecting: boolean }[] = [];
    socket.on("close", (c) => closes.push(c));
    await socket.connect();
    await client.logout();
    await eventually(() => closes.length === 1, 2000, "close");
    expect(closes[0]).toMatchObject({ code: 4401, reconnecting: false });
    await Bun.sleep(100);
    expect(socket.stats.reconnects).toBe(0);
    expect(socket.connected).toBe(false);
  });

  test("browsers' way: credentials in the query string", async () => {
    const agent = await server.principal({ type: "agent" });
    const socket = sdkClient(server, agent).realtime({ auth: "query" });
    expect((await socket.connect()).user).toEqual({ id: agent.id, type: "agent" });
    socket.close();
  });

  test("a bad credential rejects connect()", async () => {
    const socket = new MessagingClient({ baseUrl: server.url, token: "nope" }).realtime();
    const error = await socket.connect().catch((e) => e);
    expect(error).toBeInstanceOf(RealtimeError);
    expect(error.code).toBe("connect_failed");
  });

  test("a conversation the user was removed from is not resumed", async () => {
    const [owner, member] = await Promise.all([server.principal(), server.principal()]);
    const ownerClient = sdkClient(server, owner);
    const conversation = await ownerClient.createConversation({ type: "group", name: "removal", participants: [{ userId: member.id }] });
    const socket = sdkClient(server, member).realtime();
    const left: string[] = [];
    socket.on("participant:left", (p) => left.push(p.userId));
    await socket.connect();
    await socket.join(conversation.id);
    await ownerClient.removeParticipant(conversation.id, member.id);
    await eventually(() => left.length === 1, 2000, "participant:left");
    expect(socket.joined()).toEqual([]);
    socket.close();
  });
});

describe("WebSocket timeouts", () => {
  /** A server that starts a session and then never answers. */
  function silentServer(heartbeatMs: number) {
    let sessions = 0;
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: (request, srv) => (srv.upgrade(request) ? undefined : new Response("no", { status: 400 })),
      websocket: {
        open: (ws) => {
          sessions++;
          ws.send(JSON.stringify({ event: "session:ready", data: { connectionId: "c", user: { id: "u", type: "user" }, heartbeatMs, serverTime: "" } }));
        },
        message: () => {},
      },
    });
    return { server, sessions: () => sessions };
  }

  test("a connection that stays silent past a heartbeat is probed, and replaced when the probe goes unanswered", async () => {
    const { server: silent, sessions } = silentServer(100);
    try {
      const socket = new RealtimeClient({
        url: `ws://127.0.0.1:${silent.port}/api/ws`,
        credentials: () => ({ headers: {} }),
        reconnect: { initialDelayMs: 10, maxDelayMs: 20 },
      });
      await socket.connect();
      await eventually(() => sessions() >= 2, 3000, "a reconnect after the unanswered probe");
      socket.close();
    } finally {
      silent.stop(true);
    }
  });

  test("a request without an ack in time rejects with timeout", async () => {
    const { server: silent } = silentServer(30_000);
    try {
      const socket = new RealtimeClient({ url: `ws://127.0.0.1:${silent.port}/api/ws`, credentials: () => ({ headers: {} }), ackTimeoutMs: 100 });
      await socket.connect();
      const error = await socket.ping().catch((e) => e);
      expect(error).toMatchObject({ code: "timeout", event: "ping" });
      socket.close();
    } finally {
      silent.stop(true);
    }
  });
});

describe("types", () => {
  test("the SDK's resource types match the server's (checked by the compiler)", () => {
    const same = <A, B extends A>(value?: B): A | undefined => value;
    same<Message, MessageResource>();
    same<MessageResource, Message>();
    same<Conversation, ConversationResource>();
    same<ConversationResource, Conversation>();
    same<Participant, ParticipantResource>();
    same<ParticipantResource, Participant>();
    same<ClientControlBroadcast, ServerControlBroadcast & { event: ClientControlBroadcast["event"] }>();
    same<ServerControlBroadcast, ClientControlBroadcast>();
    same<JoinResult, ServerJoinResult>();
    same<Run, RunResource>();
    same<Webhook, ReturnType<typeof toWebhook>>();
    same<ReturnType<typeof toWebhook>, Webhook>();
    same<WebhookDelivery, ReturnType<typeof toDelivery>>();
    same<ReturnType<typeof toDelivery>, WebhookDelivery>();
    same<RunResource, Run>();
    // The SDK's copy of the control event names is the server's one list.
    same<ControlEventName, ControlEvent>();
    same<ControlEvent, ControlEventName>();
    expect(true).toBe(true);
  });
});
