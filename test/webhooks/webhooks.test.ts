/**
 * Webhook endpoints end to end: registration and management, Standard Webhooks signatures verified with
 * the `standardwebhooks` package by a receiver on loopback, scopes (an agent's conversations, an
 * organisation), order per conversation, retries, Retry-After, disabling on 410 and on repeated failure,
 * test events, manual retries, secret rotation, and messages recovered from the log.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test, setDefaultTimeout } from "bun:test";
import { sql } from "drizzle-orm";
import { startTestServer, type TestPrincipal, type TestServer } from "../support/server";
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from "../support/webhook-receiver";
import { eventually, groupConversation, restSend } from "../realtime/helpers";
import { WebhookDispatcher } from "../../src/webhooks/dispatcher";

setDefaultTimeout(60_000);

let server: TestServer;
let receiver: WebhookReceiver;

beforeAll(async () => {
  server = await startTestServer({
    WEBHOOK_ALLOW_PRIVATE: "true",
    WEBHOOK_POLL_MS: "20",
    WEBHOOK_RETRY_BASE_MS: "50",
    WEBHOOK_RETRY_MAX_MS: "400",
    WEBHOOK_DISABLE_AFTER_FAILURES: "4",
    WEBHOOK_TIMEOUT_MS: "1000",
  });
});
const registered: string[] = [];
afterAll(async () => {
  // On a shared test database, endpoints left enabled would receive the events of later test files.
  for (const id of registered) await server.server.services.database.db.execute(sql`delete from webhook_endpoints where id = ${id}`);
  await server.stop();
});

beforeEach(() => {
  receiver?.stop();
  receiver = startWebhookReceiver();
});

async function register(who: TestPrincipal, body: Record<string, unknown> = {}) {
  const created = await server.request("POST", "/api/webhooks", { as: who, body: { url: receiver.url, ...body } });
  if (created.status !== 201) throw new Error(`register: ${created.status} ${JSON.stringify(created.body)}`);
  registered.push(created.body.id);
  return created.body as { id: string; secret: string; [key: string]: unknown };
}

const ofConversation = (conversationId: string) => (r: ReceivedWebhook) =>
  r.status === 200 && (r.payload.data?.conversation_id === conversationId || r.payload.data?.conversationId === conversationId || r.payload.data?.id === conversationId);

describe("registering", () => {
  test("201 with a whsec_ secret shown once; listed and read without it; another principal sees nothing", async () => {
    const agent = await server.principal({ type: "agent" });
    const created = await register(agent, { description: "my agent", events: ["message.created", "stream.*"] });
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/=]{32}$/);
    expect(created).toMatchObject({ url: receiver.url, scope: "principal", principal_id: agent.id, events: ["message.created", "stream.*"], enabled: true, description: "my agent" });
    const listed = await server.request("GET", "/api/webhooks", { as: agent });
    expect(listed.body.map((w: { id: string }) => w.id)).toEqual([created.id]);
    expect(listed.body[0].secret).toBeUndefined();
    expect((await server.request("GET", `/api/webhooks/${created.id}`, { as: agent })).body.secret).toBeUndefined();
    const stranger = await server.principal();
    expect((await server.request("GET", `/api/webhooks/${created.id}`, { as: stranger })).status).toBe(404);
    expect((await server.request("DELETE", `/api/webhooks/${created.id}`, { as: stranger })).status).toBe(404);
    expect((await server.request("GET", "/api/webhooks", { as: stranger })).body).toEqual([]);
  });

  test("events null, as PATCH takes it, means every event type", async () => {
    const agent = await server.principal({ type: "agent" });
    const created = await register(agent, { events: null });
    expect(created.events).toBeNull();
  });

  test("bad input is 400 with its code; organisation and installation endpoints need a system admin", async () => {
    const user = await server.principal();
    const bad = async (body: unknown) => (await server.request("POST", "/api/webhooks", { as: user, body })).body.code;
    expect(await bad({ url: "ftp://example.test/x" })).toBe("invalid_webhook_url");
    expect(await bad({ url: "not a url" })).toBe("invalid_webhook_url");
    expect(await bad({ url: "https://user:pw@example.test/x" })).toBe("invalid_webhook_url");
    expect(await bad({ url: receiver.url, events: ["message.sent"] })).toBe("invalid_input");
    expect(await bad({ url: receiver.url, events: [] })).toBe("invalid_input");
    expect(await bad({ url: receiver.url, orgId: "some-org" })).toBe("admin_required");
    expect(await bad({ url: receiver.url, installation: true })).toBe("admin_required");
    const orgAdmin = await server.principal({ orgs: [await server.org()], entitlements: ["messaging:admin"] });
    const refused = await server.request("POST", "/api/webhooks", { as: orgAdmin, body: { url: receiver.url, orgId: "not-mine" } });
    expect([refused.status, refused.body.code]).toEqual([403, "org_forbidden"]);
    const wide = await server.request("POST", "/api/webhooks", { as: orgAdmin, body: { url: receiver.url, installation: true } });
    expect([wide.status, wide.body.code]).toEqual([403, "admin_required"]);
  });
});

describe("delivering an agent's conversations", () => {
  test("signed events of its conversations in the REST shapes, without its own messages", async () => {
    const [alice, agent, stranger] = await Promise.all([server.principal(), server.principal({ type: "agent" }), server.principal()]);
    const endpoint = await register(agent);
    const conversationId = await groupConversation(server, alice, [agent]);
    const sent = await restSend(server, alice, conversationId, "hello agent");
    await server.request("POST", `/api/conversations/${conversationId}/messages`, { as: agent, body: { content: "my own reply" } });
    const elsewhere = await groupConversation(server, alice, [stranger]);
    await restSend(server, alice, elsewhere, "not for the agent");
    const [created] = await receiver.waitFor(1, (r) => r.payload.type === "message.created");
    expect(created.payload).toEqual({ type: "message.created", timestamp: sent.created_at, data: sent });
    expect(receiver.verify(created, endpoint.secret)).toEqual(created.payload);
    expect(created.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.signature).toMatch(/^v1,[A-Za-z0-9+/=]+$/);
    expect(created.headers["content-type"]).toBe("application/json");
    const conversationCreated = receiver.of("conversation.created")[0];
    expect(conversationCreated.payload.data).toMatchObject({ id: conversationId, participants: [{ user_id: alice.id }, { user_id: agent.id }] });
    await Bun.sleep(300);
    expect(receiver.of("message.created").map((r) => r.payload.data.content)).toEqual(["hello agent"]);
    expect(receiver.received.every((r) => r.payload.data?.id !== elsewhere && r.payload.data?.conversation_id !== elsewhere)).toBe(true);
  });

  test("edits, deletions, control events, participants and the conversation's own changes", async () => {
    const alice = await server.principal({ entitlements: ["cap:messaging.interrupt"] });
    const [agent, bob] = await Promise.all([server.principal({ type: "agent" }), server.principal()]);
    await register(agent);
    const conversationId = await groupConversation(server, alice, [agent]);
    const sent = await restSend(server, alice, conversationId, "draft");
    await server.request("PATCH", `/api/conversations/${conversationId}/messages/${sent.id}`, { as: alice, body: { content: "final" } });
    await server.request("POST", `/api/conversations/${conversationId}/control`, { as: alice, body: { event: "stream.pause", reason: "wait" } });
    await server.request("DELETE", `/api/conversations/${conversationId}/messages/${sent.id}`, { as: alice });
    await server.request("POST", `/api/conversations/${conversationId}/participants`, { as: alice, body: { userId: bob.id } });
    await server.request("DELETE", `/api/conversations/${conversationId}/participants/${bob.id}`, { as: alice });
    await server.request("PATCH", `/api/conversations/${conversationId}`, { as: alice, body: { name: "renamed" } });
    await server.request("DELETE", `/api/conversations/${conversationId}`, { as: alice });
    const types = ["conversation.created", "message.created", "message.updated", "stream.pause", "message.deleted", "participant.added", "participant.removed", "conversation.updated", "conversation.deleted"];
    // At least once: an event may come twice (a deletion keeps what its log held), always under one id.
    const firstOfEach = () => receiver.received.filter((r, i) => receiver.received.findIndex((other) => other.id === r.id) === i);
    await eventually(() => firstOfEach().length >= types.length, 5000, "every event");
    expect(firstOfEach().map((r) => r.payload.type)).toEqual(types);
    expect(receiver.of("message.updated")[0].payload.data).toMatchObject({ id: sent.id, content: "final", version: 2 });
    expect(receiver.of("stream.pause")[0].payload.data).toMatchObject({ event: "stream.pause", conversationId, reason: "wait", senderId: alice.id });
    expect(receiver.of("message.deleted")[0].payload.data).toMatchObject({ id: sent.id, conversationId, sequence: 1 });
    expect(receiver.of("participant.removed")[0].payload.data).toMatchObject({ user_id: bob.id, conversation_id: conversationId });
    expect(receiver.of("conversation.updated")[0].payload.data).toMatchObject({ id: conversationId, name: "renamed" });
    expect(receiver.of("conversation.deleted")[0].payload.data).toEqual({ id: conversationId });
    // Every one of them was written with its write, none left to the moment after commit.
    expect(server.server.services.webhooks.notDurableEvents).toBe(0);
  });

  test("runs: started by its owner or by a message, ended by its owner or by a cancel", async () => {
    const alice = await server.principal({ entitlements: ["cap:messaging.interrupt"] });
    const agent = await server.principal({ type: "agent" });
    await register(agent, { events: ["run.started", "run.ended", "stream.*", "message.created"] });
    const conversationId = await groupConversation(server, alice, [agent]);
    const base = `/api/conversations/${conversationId}`;
    expect((await server.request("POST", `${base}/runs`, { as: alice, body: { runId: "r1" } })).status).toBe(201);
    expect((await server.request("POST", `${base}/runs/r1/complete`, { as: alice })).status).toBe(200);
    const sent = await server.request("POST", `${base}/messages`, { as: alice, body: { content: "starts r2", runId: "r2" } });
    expect(sent.status).toBe(201);
    expect((await server.request("POST", `${base}/control`, { as: alice, body: { event: "stream.cancel", runId: "r2" } })).status).toBe(201);
    const types = ["run.started", "run.ended", "run.started", "message.created", "stream.cancel", "run.ended"];
    await receiver.waitFor(types.length, ofConversation(conversationId));
    expect(receiver.received.map((r) => r.payload.type)).toEqual(types);
    expect(receiver.received.map((r) => r.payload.data.id ?? r.payload.data.runId)).toEqual(["r1", "r1", "r2", sent.body.id, "r2", "r2"]);
    expect(receiver.received[1].payload.data).toMatchObject({ state: "completed" });
    expect(receiver.received[2].payload.data).toMatchObject({ state: "active", owner_id: alice.id, started_at: sent.body.created_at });
    expect(receiver.received[5].payload.data).toMatchObject({ state: "cancelled" });
    expect(server.server.services.webhooks.notDurableEvents).toBe(0);
  });

  test("the rows commit with the write or not at all", async () => {
    const [alice, agent, bob, carol] = await Promise.all([server.principal(), server.principal({ type: "agent" }), server.principal(), server.principal()]);
    const endpoint = await register(agent, { events: ["participant.added"] });
    const conversationId = await groupConversation(server, alice, [agent]);
    const path = `/api/conversations/${conversationId}/participants`;
    const { services } = server.server;
    const rowsOf = async () => {
      const result = await services.database.db.execute(sql`select event_key from webhook_deliveries where endpoint_id = ${endpoint.id} order by position`);
      return (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as { event_key: string }[];
    };
    // A write listener after the outbox fails: the outbox's insert is rolled back with the participant.
    const off = services.domainEvents.onWrite("fails after the outbox", async () => {
      throw new Error("injected");
    });
    let refused;
    try {
      refused = await server.request("POST", path, { as: alice, body: { userId: bob.id } });
    } finally {
      off();
    }
    expect(refused.status).toBe(500);
    expect(await rowsOf()).toEqual([]);
    const participants = await server.request("GET", `/api/conversations/${conversationId}`, { as: alice });
    expect(participants.body.participants.map((p: { user_id: string }) => p.user_id)).not.toContain(bob.id);

    const added = await server.request("POST", path, { as: alice, body: { userId: carol.id } });
    expect(added.status).toBe(201);
    // Committed with the write, by the time its 201 arrives.
    expect(await rowsOf()).toEqual([{ event_key: `participant.added:${added.body.id}` }]);
    const duplicate = await server.request("POST", path, { as: alice, body: { userId: carol.id } });
    expect(duplicate.body.code).toBe("already_participant");
    const [delivered] = await receiver.waitFor(1);
    expect(delivered.payload.data).toMatchObject({ user_id: carol.id });
    await Bun.sleep(100);
    expect(receiver.received).toHaveLength(1);
  });

  test("messages not yet delivered when their conversation is deleted are delivered all the same", async () => {
    const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
    await register(agent, { events: ["message.created", "conversation.deleted"] });
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    receiver.respond = async (request) => {
      if (request.payload.data?.content === "m1") await held;
      return new Response("ok");
    };
    const conversationId = await groupConversation(server, alice, [agent]);
    for (let i = 1; i <= 3; i++) await restSend(server, alice, conversationId, `m${i}`);
    await receiver.waitFor(1);
    // The log goes with the conversation: what the endpoint has not had is kept as rows first.
    expect((await server.request("DELETE", `/api/conversations/${conversationId}`, { as: alice })).status).toBe(204);
    release();
    await eventually(() => receiver.received.some((r) => r.payload.type === "conversation.deleted"), 10_000, "the deletion delivered");
    const contents = [...new Set(receiver.of("message.created").map((r) => r.payload.data.content))];
    expect(contents).toEqual(["m1", "m2", "m3"]);
    expect(receiver.received.at(-1)!.payload.type).toBe("conversation.deleted");
  });

  test("an agent hears the deletion of its message by someone else, not its own deletions", async () => {
    const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
    await register(agent, { events: ["message.deleted"] });
    const conversationId = await groupConversation(server, alice, [agent]);
    const path = `/api/conversations/${conversationId}/messages`;
    const deletedByItself = (await server.request("POST", path, { as: agent, body: { content: "withdrawn" } })).body;
    const deletedByOwner = (await server.request("POST", path, { as: agent, body: { content: "moderated" } })).body;
    expect((await server.request("DELETE", `${path}/${deletedByItself.id}`, { as: agent })).status).toBe(204);
    expect((await server.request("DELETE", `${path}/${deletedByOwner.id}`, { as: alice })).status).toBe(204);
    await receiver.waitFor(1);
    await Bun.sleep(200);
    expect(receiver.received.map((r) => r.payload.data.id)).toEqual([deletedByOwner.id]);
  });

  test("events narrowed while some wait for a retry: those no longer taken fail, and say why", async () => {
    const [alice, bob, agent] = await Promise.all([server.principal(), server.principal(), server.principal({ type: "agent" })]);
    const endpoint = await register(agent, { events: ["message.created", "participant.added"] });
    receiver.respond = (request) =>
      request.payload.type === "participant.added" ? new Response("later", { status: 503, headers: { "retry-after": "1" } }) : new Response("ok");
    const conversationId = await groupConversation(server, alice, [agent]);
    expect((await server.request("POST", `/api/conversations/${conversationId}/participants`, { as: alice, body: { userId: bob.id } })).status).toBe(201);
    await receiver.waitFor(1, (r) => r.payload.type === "participant.added");
    const narrowed = await server.request("PATCH", `/api/webhooks/${endpoint.id}`, { as: agent, body: { events: ["message.created"] } });
    expect(narrowed.status).toBe(200);
    const log = await server.request("GET", `/api/webhooks/${endpoint.id}/deliveries`, { as: agent });
    expect(log.body).toMatchObject([{ type: "participant.added", status: "failed", last_error: "not delivered: the endpoint no longer takes this event type" }]);
    await restSend(server, alice, conversationId, "still taken");
    await receiver.waitFor(1, (r) => r.payload.type === "message.created");
    await Bun.sleep(1200);
    expect(receiver.received.map((r) => r.payload.type)).toEqual(["participant.added", "message.created"]);
  });

  test("the event filter; removed agents hear their removal and then nothing", async () => {
    const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
    await register(agent, { events: ["message.created", "participant.removed"] });
    const conversationId = await groupConversation(server, alice, [agent]);
    await restSend(server, alice, conversationId, "one");
    await server.request("DELETE", `/api/conversations/${conversationId}/participants/${agent.id}`, { as: alice });
    await restSend(server, alice, conversationId, "after removal");
    await receiver.waitFor(2);
    await Bun.sleep(200);
    expect(receiver.received.map((r) => r.payload.type)).toEqual(["message.created", "participant.removed"]);
  });
});

describe("registered by a service acting for its agent", () => {
  test("the endpoint hears only the organisations the service reached; the service sees only such endpoints", async () => {
    const [home, elsewhere] = await Promise.all([server.org(), server.org()]);
    const service = await server.principal({ type: "service", orgs: [home], entitlements: ["messaging:act-as"] });
    const agent = await server.principal({ type: "agent", orgs: [home, elsewhere] });
    const [homeOwner, elsewhereOwner] = await Promise.all([server.principal({ orgs: [home] }), server.principal({ orgs: [elsewhere] })]);
    const acting = { "x-as-user-id": agent.id };
    const created = await server.request("POST", "/api/webhooks", { as: service, headers: acting, body: { url: receiver.url, events: ["message.created", "conversation.created"] } });
    expect(created.status).toBe(201);
    expect(created.body.org_reach).toEqual([home]);
    registered.push(created.body.id);
    const own = await register(agent, { events: ["participant.added"] });
    expect(own.org_reach).toBeNull();
    const inOrg = async (owner: TestPrincipal, orgId: string) =>
      (await server.request("POST", "/api/conversations", { as: owner, body: { type: "group", name: "reach", orgId, participants: [{ userId: agent.id, userType: "agent" }] } })).body.id as string;
    const foreign = await inOrg(elsewhereOwner, elsewhere);
    await restSend(server, elsewhereOwner, foreign, "not for the service");
    const reached = await inOrg(homeOwner, home);
    await restSend(server, homeOwner, reached, "for the service");
    await receiver.waitFor(2, (r) => r.id !== "" && r.payload.data?.id !== foreign && r.payload.data?.conversation_id !== foreign);
    await Bun.sleep(300);
    const heard = receiver.received.filter((r) => r.status === 200).map((r) => [r.payload.type, r.payload.data.conversation_id ?? r.payload.data.id]);
    expect(heard).toEqual([["conversation.created", reached], ["message.created", reached]]);
    // Acting, the service manages what it registered, not the agent's own endpoint (whose url it could redirect).
    const listed = await server.request("GET", "/api/webhooks", { as: service, headers: acting });
    expect(listed.body.map((w: { id: string }) => w.id)).toEqual([created.body.id]);
    expect((await server.request("PATCH", `/api/webhooks/${own.id}`, { as: service, headers: acting, body: { url: receiver.url } })).status).toBe(404);
    const mine = await server.request("GET", "/api/webhooks", { as: agent });
    expect(mine.body.map((w: { id: string }) => w.id).sort()).toEqual([created.body.id, own.id].sort());
  });
});

describe("order, retries and disabling", () => {
  test("one conversation's messages arrive in sequence order, each first attempt failing with 500", async () => {
    const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
    await register(agent, { events: ["message.created"] });
    const seen = new Set<string>();
    receiver.respond = (request) => {
      if (seen.has(request.id)) return new Response("ok");
      seen.add(request.id);
      return new Response("try again", { status: 500 });
    };
    const conversationId = await groupConversation(server, alice, [agent]);
    for (let i = 1; i <= 10; i++) await restSend(server, alice, conversationId, `m${i}`);
    await receiver.waitFor(10, (r) => r.status === 200, 10_000);
    const attempts = receiver.received.map((r) => r.payload.data.sequence);
    // Never a later message before an earlier one is delivered: each pair is (failed, delivered) of one sequence.
    expect(attempts).toEqual(Array.from({ length: 10 }, (_, i) => [i + 1, i + 1]).flat());
    expect(receiver.of("message.created").map((r) => r.payload.data.sequence)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
  });

  test("rows taken together behind a pair's first: a failure among them holds back the rest, and attempts count right", async () => {
    const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
    const endpoint = await register(agent, { events: ["message.created"] });
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    let failedOnce = false;
    receiver.respond = async (request) => {
      const content = request.payload.data.content;
      // The first waits until the others are queued behind it: they are then taken as one batch.
      if (content === "m1") await held;
      if (content === "m4" && !failedOnce) {
        failedOnce = true;
        return new Response("once", { status: 500 });
      }
      return new Response("ok");
    };
    const conversationId = await groupConversation(server, alice, [agent]);
    for (let i = 1; i <= 6; i++) await restSend(server, alice, conversationId, `m${i}`);
    await receiver.waitFor(1);
    release();
    await receiver.waitFor(6, (r) => r.status === 200, 10_000);
    expect(receiver.received.map((r) => `${r.payload.data.content} ${r.status}`)).toEqual(["m1 200", "m2 200", "m3 200", "m4 500", "m4 200", "m5 200", "m6 200"]);
    await eventually(async () => (await server.request("GET", `/api/webhooks/${endpoint.id}/deliveries?status=pending`, { as: agent })).body.length === 0);
    // Messages delivered at their first attempt leave no row (the cursor says how far delivery got); the
    // one that failed first has its row, delivered at its second attempt, under the id it had from the start.
    const deliveries = (await server.request("GET", `/api/webhooks/${endpoint.id}/deliveries`, { as: agent })).body as { id: string; status: string; attempts: number }[];
    expect(deliveries.map((d) => [d.status, d.attempts])).toEqual([["delivered", 2]]);
    const m4 = receiver.received.filter((r) => r.payload.data.content === "m4");
    expect(m4.map((r) => r.id)).toEqual([deliveries[0].id, deliveries[0].id]);
  });

  test("429 with Retry-After waits at least that long; 4xx fails the delivery at once", async () => {
    const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
    const endpoint = await register(agent, { events: ["message.created"] });
    receiver.respond = (_request, index) =>
      index === 0 ? new Response("slow down", { status: 429, headers: { "retry-after": "1" } }) : index === 1 ? new Response("no", { status: 400 }) : new Response("ok");
    const conversationId = await groupConversation(server, alice, [agent]);
    await restSend(server, alice, conversationId, "first");
    await restSend(server, alice, conversationId, "second");
    await receiver.waitFor(3, () => true, 5000);
    const [limited, retried, third] = receiver.received;
    expect(retried.id).toBe(limited.id);
    expect(retried.receivedAt - limited.receivedAt).toBeGreaterThanOrEqual(950);
    expect(third.payload.data.content).toBe("second");
    const deliveries = await server.request("GET", `/api/webhooks/${endpoint.id}/deliveries`, { as: agent });
    expect(deliveries.body.map((d: { status: string; attempts: number; last_status: number }) => [d.status, d.attempts, d.last_status])).toEqual([
      // The retry after the 429 got a 400: failed at once, and the next message went out (at its first
      // attempt: no row).
      ["failed", 2, 400],
    ]);
    expect(receiver.received).toHaveLength(3);
  });

  test("410 disables the endpoint with its reason; re-enabling delivers what waited", async () => {
    const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
    const endpoint = await register(agent, { events: ["message.created"] });
    receiver.respond = () => new Response("gone", { status: 410 });
    const conversationId = await groupConversation(server, alice, [agent]);
    await restSend(server, alice, conversationId, "to a gone endpoint");
    await receiver.waitFor(1);
    await eventually(async () => (await server.request("GET", `/api/webhooks/${endpoint.id}`, { as: agent })).body.enabled === false, 3000, "disabled");
    const disabled = await server.request("GET", `/api/webhooks/${endpoint.id}`, { as: agent });
    expect(disabled.body.disabled_reason).toBe("the endpoint answered 410 Gone");

    receiver.respond = () => new Response("ok");
    const enabled = await server.request("PATCH", `/api/webhooks/${endpoint.id}`, { as: agent, body: { enabled: true } });
    expect(enabled.body).toMatchObject({ enabled: true, disabled_reason: null, consecutive_failures: 0 });
    await restSend(server, alice, conversationId, "back again");
    await receiver.waitFor(1, (r) => r.status === 200);
    expect(receiver.of("message.created").map((r) => r.payload.data.content)).toEqual(["back again"]);
  });

  test("what was written while disabled stays unheard through later disablings; what came before is delivered", async () => {
    const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
    const endpoint = await register(agent, { events: ["message.created"] });
    const patch = (enabled: boolean) => server.request("PATCH", `/api/webhooks/${endpoint.id}`, { as: agent, body: { enabled } });
    const conversationId = await groupConversation(server, alice, [agent]);
    await restSend(server, alice, conversationId, "heard");
    await receiver.waitFor(1);
    // Down while one message goes in, so that the cursor waits for something to deliver.
    const url = receiver.url;
    receiver.stop();
    await restSend(server, alice, conversationId, "waited");
    const { db } = server.server.services.database;
    const waiting = async () => (await server.request("GET", `/api/webhooks/${endpoint.id}/deliveries`, { as: agent })).body as { status: string }[];
    await eventually(async () => (await waiting()).some((d) => d.status === "pending"), 3000, "a row waiting");
    expect((await patch(false)).body.enabled).toBe(false);
    await restSend(server, alice, conversationId, "written while disabled");
    // Enabled and disabled again before anything is delivered: the conversation's pair is not taken in between.
    await db.execute(sql`update webhook_cursors set lease_until = now() + interval '1 hour' where endpoint_id = ${endpoint.id}`);
    expect((await patch(true)).body.enabled).toBe(true);
    expect((await patch(false)).body.enabled).toBe(false);
    await db.execute(sql`update webhook_cursors set lease_until = null, lease_token = null where endpoint_id = ${endpoint.id}`);
    await db.execute(sql`update webhook_deliveries set next_attempt_at = now() where endpoint_id = ${endpoint.id}`);
    receiver = startWebhookReceiver({ port: Number(new URL(url).port) });
    expect((await patch(true)).body.enabled).toBe(true);
    await restSend(server, alice, conversationId, "after");
    await receiver.waitFor(2);
    await Bun.sleep(200);
    expect(receiver.of("message.created").map((r) => r.payload.data.content)).toEqual(["waited", "after"]);
  });

  test("consecutive failures disable the endpoint with a reason", async () => {
    const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
    const endpoint = await register(agent, { events: ["message.created"] });
    receiver.respond = () => new Response("broken", { status: 503 });
    const conversationId = await groupConversation(server, alice, [agent]);
    await restSend(server, alice, conversationId, "never delivered");
    await eventually(async () => (await server.request("GET", `/api/webhooks/${endpoint.id}`, { as: agent })).body.enabled === false, 8000, "disabled");
    const disabled = (await server.request("GET", `/api/webhooks/${endpoint.id}`, { as: agent })).body;
    expect(disabled.consecutive_failures).toBe(4);
    expect(disabled.disabled_reason).toStartWith("disabled after 4 failed attempts in a row; the last: HTTP 503");
    expect(receiver.received.length).toBe(4);
    const [delivery] = (await server.request("GET", `/api/webhooks/${endpoint.id}/deliveries`, { as: agent })).body;
    expect(delivery).toMatchObject({ status: "pending", attempts: 4, last_status: 503 });
  });

  test("a connection refused is retried like a 5xx", async () => {
    const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
    const endpoint = await register(agent, { events: ["message.created"] });
    const url = receiver.url;
    receiver.stop();
    const conversationId = await groupConversation(server, alice, [agent]);
    await restSend(server, alice, conversationId, "while down");
    await eventually(async () => {
      const [delivery] = (await server.request("GET", `/api/webhooks/${endpoint.id}/deliveries`, { as: agent })).body;
      return delivery?.attempts >= 1 && delivery.status === "pending" && /connection failed/.test(delivery.last_error ?? "");
    }, 3000, "a failed attempt");
    expect(url).toContain("127.0.0.1");
  });
});

describe("test events, manual retries and rotation", () => {
  test("a test event is signed and listed; a retry delivers it again under the same id", async () => {
    const agent = await server.principal({ type: "agent" });
    const endpoint = await register(agent);
    const queued = await server.request("POST", `/api/webhooks/${endpoint.id}/test`, { as: agent });
    expect(queued.status).toBe(202);
    expect(queued.body).toMatchObject({ type: "webhook.test", status: "pending" });
    const [first] = await receiver.waitFor(1);
    expect(receiver.verify(first, endpoint.secret)).toMatchObject({ type: "webhook.test", data: { endpointId: endpoint.id } });
    await eventually(async () => (await server.request("GET", `/api/webhooks/${endpoint.id}/deliveries`, { as: agent })).body[0]?.status === "delivered");
    const retried = await server.request("POST", `/api/webhooks/${endpoint.id}/deliveries/${queued.body.id}/retry`, { as: agent });
    expect([retried.status, retried.body.status]).toEqual([202, "pending"]);
    const [, again] = await receiver.waitFor(2);
    expect(again.id).toBe(first.id);
    expect(first.id).toBe(queued.body.id);
    const missing = await server.request("POST", `/api/webhooks/${endpoint.id}/deliveries/${crypto.randomUUID()}/retry`, { as: agent });
    expect(missing.status).toBe(404);
  });

  test("after a rotation both secrets sign for a while", async () => {
    const agent = await server.principal({ type: "agent" });
    const endpoint = await register(agent);
    const rotated = await server.request("PATCH", `/api/webhooks/${endpoint.id}`, { as: agent, body: { rotateSecret: true } });
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(endpoint.secret);
    await server.request("POST", `/api/webhooks/${endpoint.id}/test`, { as: agent });
    const [delivered] = await receiver.waitFor(1);
    expect(delivered.signature.split(" ")).toHaveLength(2);
    expect(receiver.verify(delivered, rotated.body.secret)).toBeTruthy();
    expect(receiver.verify(delivered, endpoint.secret)).toBeTruthy();
    expect(() => receiver.verify(delivered, "whsec_" + Buffer.from("another secret of 24 bytes").toString("base64"))).toThrow();
  });

  test("disabled by its owner, then deleted", async () => {
    const agent = await server.principal({ type: "agent" });
    const endpoint = await register(agent);
    const off = await server.request("PATCH", `/api/webhooks/${endpoint.id}`, { as: agent, body: { enabled: false, events: null, description: null } });
    expect(off.body).toMatchObject({ enabled: false, disabled_reason: "disabled by its owner", events: null, description: null });
    expect((await server.request("DELETE", `/api/webhooks/${endpoint.id}`, { as: agent })).status).toBe(204);
    expect((await server.request("GET", `/api/webhooks/${endpoint.id}`, { as: agent })).status).toBe(404);
  });
});

describe("organisation endpoints and recovery", () => {
  test("a system admin's organisation endpoint hears that organisation's conversations only", async () => {
    const org = await server.org();
    const admin = await server.principal({ superAdmin: true });
    const endpoint = await register(admin, { orgId: org, events: ["message.created"] });
    expect(endpoint).toMatchObject({ scope: "org", org_id: org, principal_id: null });
    const member = await server.principal({ orgs: [org] });
    const inOrg = await server.request("POST", "/api/conversations", { as: member, body: { type: "group", name: "org", orgId: org } });
    const outside = await groupConversation(server, member);
    await restSend(server, member, outside, "outside");
    await restSend(server, member, inOrg.body.id, "inside");
    await receiver.waitFor(1);
    await Bun.sleep(200);
    expect(receiver.of("message.created").map((r) => r.payload.data.content)).toEqual(["inside"]);
  });

  test("a message committed behind the server's back is delivered from the message log", async () => {
    const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
    const endpoint = await register(agent, { events: ["message.created"] });
    const conversationId = await groupConversation(server, alice, [agent]);
    // The first message gives the pair its cursor.
    await restSend(server, alice, conversationId, "first");
    await receiver.waitFor(1);
    const { db } = server.server.services.database;
    // As if the process died between the commit and its hint: written behind the server's back, so that
    // only the log and the pair's cursor say it is there.
    const id = Bun.randomUUIDv7();
    await db.execute(sql`update webhook_endpoints set created_at = now() - interval '1 minute', receives_since = now() - interval '1 minute', heard_periods = tstzmultirange(tstzrange(now() - interval '1 minute', null)) where id = ${endpoint.id}`);
    await db.execute(sql`update participants set joined_at = now() - interval '1 minute' where conversation_id = ${conversationId}`);
    await db.execute(sql`
      with next as (update conversations set last_sequence = last_sequence + 1, last_message_at = now() where id = ${conversationId} returning last_sequence)
      insert into messages (id, conversation_id, sender_id, sender_type, content, sequence, created_at)
      select ${id}, ${conversationId}, ${alice.id}, 'user', 'lost and found', last_sequence, now() from next`);
    const [, recovered] = await receiver.waitFor(2);
    expect(recovered.payload).toMatchObject({ type: "message.created", data: { id, content: "lost and found", sequence: 2, sender_id: alice.id } });
    expect(receiver.verify(recovered, endpoint.secret)).toBeTruthy();
  });

  test("a pair with no cursor yet is found among recently written conversations", async () => {
    const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
    const conversationId = await groupConversation(server, alice, [agent]);
    const endpoint = await register(agent, { events: ["message.created"] });
    const { db } = server.server.services.database;
    await db.execute(sql`update webhook_endpoints set created_at = now() - interval '1 minute', receives_since = now() - interval '1 minute', heard_periods = tstzmultirange(tstzrange(now() - interval '1 minute', null)) where id = ${endpoint.id}`);
    await db.execute(sql`update participants set joined_at = now() - interval '1 minute' where conversation_id = ${conversationId}`);
    const id = Bun.randomUUIDv7();
    await db.execute(sql`
      with next as (update conversations set last_sequence = last_sequence + 1, last_message_at = now() where id = ${conversationId} returning last_sequence)
      insert into messages (id, conversation_id, sender_id, sender_type, content, sequence, created_at)
      select ${id}, ${conversationId}, ${alice.id}, 'user', 'never hinted', last_sequence, now() - interval '5 seconds' from next`);
    await Bun.sleep(200);
    expect(receiver.received).toHaveLength(0);
    // What the server does at start (and every minute): cursors for the pairs that have none.
    const { services } = server.server;
    expect(await new WebhookDispatcher(services.database, services.webhooks, services.config.webhooks).discover()).toBeGreaterThanOrEqual(1);
    const [found] = await receiver.waitFor(1);
    expect(found.payload).toMatchObject({ type: "message.created", data: { id, content: "never hinted" } });
  });

  test("a run a message started is recovered from the log too, before the message", async () => {
    const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
    const endpoint = await register(agent, { events: ["message.created", "run.started"] });
    const conversationId = await groupConversation(server, alice, [agent]);
    const { db } = server.server.services.database;
    await db.execute(sql`update webhook_endpoints set created_at = now() - interval '1 minute', receives_since = now() - interval '1 minute', heard_periods = tstzmultirange(tstzrange(now() - interval '1 minute', null)) where id = ${endpoint.id}`);
    await db.execute(sql`update participants set joined_at = now() - interval '1 minute' where conversation_id = ${conversationId}`);
    // What the send statement writes for a message naming a new run, behind the listener's back.
    const id = Bun.randomUUIDv7();
    await db.execute(sql`
      with next as (update conversations set last_sequence = last_sequence + 1, last_message_at = now() where id = ${conversationId} returning last_sequence),
      started as (insert into runs (conversation_id, id, owner_id, owner_type, state, priority, interruptible, started_at, updated_at)
                  values (${conversationId}, 'lost-run', ${alice.id}, 'user', 'active', 'normal', true, now() - interval '5 seconds', now() - interval '5 seconds'))
      insert into messages (id, conversation_id, sender_id, sender_type, content, sequence, run_id, created_at)
      select ${id}, ${conversationId}, ${alice.id}, 'user', 'in a lost run', last_sequence, 'lost-run', now() - interval '5 seconds' from next`);
    const { services } = server.server;
    await new WebhookDispatcher(services.database, services.webhooks, services.config.webhooks).discover();
    const [run, message] = await receiver.waitFor(2);
    expect(run.payload).toMatchObject({ type: "run.started", data: { id: "lost-run", conversation_id: conversationId, owner_id: alice.id, state: "active" } });
    expect(run.payload.data.started_at).toBe(message.payload.data.created_at);
    expect(message.payload).toMatchObject({ type: "message.created", data: { id, run_id: "lost-run" } });
  });
});

describe("changes while a pair is in delivery", () => {
  /** A response that waits until the test lets it go. */
  function gate() {
    let open = () => {};
    const opened = new Promise<void>((resolve) => (open = resolve));
    return { open, opened };
  }

  test("a new url takes effect for the events already read, from the next one on", async () => {
    const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
    const endpoint = await register(agent, { events: ["message.created"] });
    const elsewhere = startWebhookReceiver();
    try {
      const retried = gate();
      receiver.respond = async (request, index) => {
        if (index === 0) return new Response("later", { status: 503, headers: { "retry-after": "1" } });
        if (request.payload.data?.content === "m0") await retried.opened;
        return new Response("ok");
      };
      const conversationId = await groupConversation(server, alice, [agent]);
      await restSend(server, alice, conversationId, "m0");
      await receiver.waitFor(1);
      // m0 waits for its retry; the messages behind it are read with it, in one read.
      for (let i = 1; i <= 4; i++) await restSend(server, alice, conversationId, `m${i}`);
      await receiver.waitFor(2);
      expect((await server.request("PATCH", `/api/webhooks/${endpoint.id}`, { as: agent, body: { url: elsewhere.url } })).status).toBe(200);
      retried.open();
      await elsewhere.waitFor(4);
      expect(elsewhere.received.map((r) => r.payload.data.content)).toEqual(["m1", "m2", "m3", "m4"]);
      expect(receiver.received.map((r) => r.payload.data.content)).toEqual(["m0", "m0"]);
    } finally {
      elsewhere.stop();
    }
  });

  test("the lease is extended between slow attempts, not only between reads", async () => {
    const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
    const endpoint = await register(agent, { events: ["message.created"] });
    const first = gate();
    receiver.respond = async (request) => {
      if (request.payload.data.content === "m0") await first.opened;
      else await Bun.sleep(600);
      return new Response("ok");
    };
    const conversationId = await groupConversation(server, alice, [agent]);
    await restSend(server, alice, conversationId, "m0");
    await receiver.waitFor(1);
    for (let i = 1; i <= 6; i++) await restSend(server, alice, conversationId, `m${i}`);
    first.open();
    const { db } = server.server.services.database;
    const leaseUntil = async () => {
      const result = await db.execute(sql`select lease_until from webhook_cursors where endpoint_id = ${endpoint.id} and conversation_id = ${conversationId}`);
      const [row] = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as { lease_until: string | Date }[];
      return new Date(row.lease_until).getTime();
    };
    // m1..m6 are one read; a lease of 7 s (twice the timeout plus 5 s) would run out within such a batch.
    await receiver.waitFor(3);
    const early = await leaseUntil();
    await receiver.waitFor(6);
    const later = await leaseUntil();
    expect(later - early).toBeGreaterThan(1000);
    await receiver.waitFor(7);
  });

  test("an agent removed while its pair was behind hears nothing from before it joined", async () => {
    const [alice, bob, agent] = await Promise.all([server.principal(), server.principal(), server.principal({ type: "agent" })]);
    await register(agent, { events: ["message.created", "participant.added", "participant.removed"] });
    receiver.respond = (request, index) =>
      index === 0 ? new Response("later", { status: 503, headers: { "retry-after": "1" } }) : new Response("ok");
    const conversationId = await groupConversation(server, alice, [bob]);
    await restSend(server, alice, conversationId, "before 1");
    await restSend(server, alice, conversationId, "before 2");
    await Bun.sleep(5);
    expect((await server.request("POST", `/api/conversations/${conversationId}/participants`, { as: alice, body: { userId: agent.id, userType: "agent" } })).status).toBe(201);
    // "You were added" waits for its retry: the pair's cursor is still before the join.
    await receiver.waitFor(1);
    await restSend(server, alice, conversationId, "while a member");
    expect((await server.request("DELETE", `/api/conversations/${conversationId}/participants/${agent.id}`, { as: alice })).status).toBe(204);
    await restSend(server, alice, conversationId, "after removal");
    await receiver.waitFor(1, (r) => r.status === 200 && r.payload.type === "participant.removed", 10_000);
    await Bun.sleep(200);
    const heard = receiver.received.filter((r) => r.status === 200).map((r) => r.payload.data.content ?? r.payload.type);
    expect(heard).toEqual(["participant.added", "while a member", "participant.removed"]);
  });

  test("a retry waiting for a message outlives the message's conversation", async () => {
    const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
    await register(agent, { events: ["message.created"] });
    receiver.respond = (request, index) =>
      index === 0 ? new Response("later", { status: 503, headers: { "retry-after": "1" } }) : new Response("ok");
    const conversationId = await groupConversation(server, alice, [agent]);
    const sent = await restSend(server, alice, conversationId, "kept for the retry");
    await receiver.waitFor(1);
    expect((await server.request("DELETE", `/api/conversations/${conversationId}`, { as: alice })).status).toBe(204);
    const [delivered] = await receiver.waitFor(1, (r) => r.status === 200, 10_000);
    expect(delivered.payload).toEqual({ type: "message.created", timestamp: sent.created_at, data: sent });
    expect(delivered.id).toBe(receiver.received[0].id);
  });
});
