/**
 * A service acting for its agents: X-As-User-Id (REST) and ?asUserId= (WebSocket), honoured only with
 * messaging:act-as (or its prefix form) and only for enabled principals of the caller's organisations;
 * refused with 403 act_as_forbidden otherwise, never ignored. Messages record who acted.
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { startTestServer, uniq, type TestPrincipal, type TestServer } from "../support/server";
import { RawSocket, groupConversation } from "../realtime/helpers";

setDefaultTimeout(60_000);

let server: TestServer;
let org: string;
let owner: TestPrincipal;
let service: TestPrincipal;
let agent: TestPrincipal;
let conversationId: string;

const as = (principalId: string) => ({ "x-as-user-id": principalId });

beforeAll(async () => {
  server = await startTestServer();
  org = await server.org();
  owner = await server.principal({ orgs: [org] });
  service = await server.principal({ type: "service", orgs: [org], entitlements: ["messaging:act-as"] });
  agent = await server.principal({ type: "agent", id: `assistant:${uniq()}`, orgs: [org] });
  conversationId = await groupConversation(server, owner, [agent]);
});
afterAll(() => server.stop());

function send(who: TestPrincipal, headers: Record<string, string>, body: unknown = { content: "hello" }) {
  return server.request("POST", `/api/conversations/${conversationId}/messages`, { as: who, headers, body });
}

describe("acting for another principal over REST", () => {
  test("the message is the agent's and records the service in metadata.actedBy", async () => {
    const sent = await send(service, as(agent.id), { content: "from the agent", metadata: { k: 1 } });
    expect(sent.status).toBe(201);
    expect(sent.body).toMatchObject({ sender_id: agent.id, sender_type: "agent", metadata: { k: 1, actedBy: { id: service.id, type: "service" } } });
    const me = await server.request("GET", "/api/auth/me", { as: service, headers: as(agent.id) });
    expect(me.body).toMatchObject({ id: agent.id, type: "agent", actedBy: { id: service.id, type: "service" } });
    expect((await server.request("GET", "/api/auth/me", { as: agent })).body.actedBy).toBeUndefined();
  });

  test("without the entitlement the header is refused, not ignored", async () => {
    const plain = await server.principal({ type: "service", orgs: [org] });
    for (const who of [plain, owner]) {
      const refused = await send(who, as(agent.id));
      expect(refused.status).toBe(403);
      expect(refused.body.code).toBe("act_as_forbidden");
    }
    const health = await server.request("GET", "/api/health", { headers: as(agent.id) });
    expect(health.body.code).toBe("act_as_forbidden");
  });

  test("asUserId as a REST query parameter is refused, not ignored", async () => {
    const refused = await server.request("POST", `/api/conversations/${conversationId}/messages?asUserId=${encodeURIComponent(agent.id)}`, { as: service, body: { content: "whose?" } });
    expect([refused.status, refused.body.code]).toEqual([400, "invalid_input"]);
    expect(refused.body.error).toContain("X-As-User-Id");
  });

  test("a prefix entitlement allows only ids with that prefix", async () => {
    const limited = await server.principal({ type: "service", orgs: [org], entitlements: ["messaging:act-as:assistant:"] });
    expect((await send(limited, as(agent.id))).status).toBe(201);
    const other = await server.principal({ type: "agent", id: `bot:${uniq()}`, orgs: [org] });
    await server.request("POST", `/api/conversations/${conversationId}/participants`, { as: owner, body: { userId: other.id, userType: "agent" } });
    const refused = await send(limited, as(other.id));
    expect([refused.status, refused.body.code]).toEqual([403, "act_as_forbidden"]);
  });

  test("only enabled principals of the caller's organisations; the same answer for unknown ones", async () => {
    const foreign = await server.principal({ type: "agent", orgs: [await server.org()] });
    const orgless = await server.principal({ type: "agent" });
    const disabled = await server.principal({ type: "agent", orgs: [org] });
    await server.admin.disableUser(disabled.id);
    for (const target of [foreign.id, orgless.id, disabled.id, "agent:nobody"]) {
      const refused = await send(service, as(target));
      expect([target, refused.status, refused.body]).toEqual([target, 403, { error: "You may act only for an enabled principal of your organisations", code: "act_as_forbidden" }]);
    }
    const empty = await send(service, as(" "));
    expect([empty.status, empty.body.code]).toEqual([400, "invalid_header"]);
  });

  test("the acting principal cannot use the caller's admin grant", async () => {
    const adminService = await server.principal({ type: "service", orgs: [org], entitlements: ["messaging:act-as", "messaging:admin"] });
    expect((await server.request("GET", "/api/admin/stats", { as: adminService })).status).toBe(200);
    const acting = await server.request("GET", "/api/admin/stats", { as: adminService, headers: as(agent.id) });
    expect([acting.status, acting.body.code]).toEqual([403, "admin_required"]);
  });

  test("edits: metadata.actedBy tells who wrote the current version, the history who wrote each", async () => {
    const sent = await send(agent, {}, { content: "v1 by the agent", metadata: { k: 1 } });
    const path = `/api/conversations/${conversationId}/messages/${sent.body.id}`;
    const byService = await server.request("PATCH", path, { as: service, headers: as(agent.id), body: { content: "v2 for the agent" } });
    expect(byService.status).toBe(200);
    expect(byService.body.metadata).toEqual({ k: 1, actedBy: { id: service.id, type: "service" } });
    const byAgent = await server.request("PATCH", path, { as: agent, body: { content: "v3 by the agent" } });
    expect(byAgent.body.metadata).toEqual({ k: 1 });
    // Over the socket, acting from its upgrade, like REST.
    const socket = new RawSocket(new WebSocket(`${server.wsUrl}?asUserId=${encodeURIComponent(agent.id)}`, { headers: service.headers } as any));
    await socket.next("session:ready");
    const edited = await socket.request("message:edit", { messageId: sent.body.id, content: "v4 for the agent" });
    expect(edited).toMatchObject({ ok: true, data: { version: 4, metadata: { k: 1, actedBy: { id: service.id, type: "service" } } } });
    socket.close();
    const history = await server.request("GET", `${path}/history`, { as: owner });
    expect(history.body.versions.map((v: { version: number; edited_by: string; acted_by: unknown }) => [v.version, v.edited_by, v.acted_by])).toEqual([
      [1, agent.id, null],
      [2, agent.id, { id: service.id, type: "service" }],
      [3, agent.id, null],
      [4, agent.id, { id: service.id, type: "service" }],
    ]);
  });

  test("a caller's own metadata.actedBy is dropped", async () => {
    const sent = await send(owner, {}, { content: "claims", metadata: { actedBy: { id: "someone" }, keep: true } });
    expect(sent.status).toBe(201);
    expect(sent.body.metadata).toEqual({ keep: true });
  });

  test("a control event that moves a run records who acted, and drops a claimed actedBy", async () => {
    const controller = await server.principal({ type: "service", orgs: [org], entitlements: ["messaging:act-as", "cap:messaging.interrupt"] });
    const run = await server.request("POST", `/api/conversations/${conversationId}/runs`, { as: controller, headers: as(agent.id), body: {} });
    expect([run.status, run.body.owner_id]).toEqual([201, agent.id]);
    const control = (who: TestPrincipal, headers: Record<string, string>, event: string) =>
      server.request("POST", `/api/conversations/${conversationId}/control`, {
        as: who,
        headers,
        body: { event, runId: run.body.id, metadata: { actedBy: { id: "someone" }, keep: true } },
      });
    const paused = await control(controller, as(agent.id), "stream.pause");
    expect(paused.status).toBe(201);
    expect(paused.body.metadata).toMatchObject({ keep: true, actedBy: { id: controller.id, type: "service" } });
    const resumed = await control(agent, {}, "stream.resume");
    expect(resumed.status).toBe(201);
    expect(resumed.body.metadata.actedBy).toBeUndefined();
    expect(resumed.body.metadata.keep).toBe(true);
  });
});

describe("acting reaches no further than the caller's organisations", () => {
  test("the conversations of another organisation the principal is in stay closed, over REST and the WebSocket", async () => {
    const elsewhere = await server.org();
    const member = await server.principal({ orgs: [elsewhere] });
    const both = await server.principal({ type: "agent", orgs: [org, elsewhere] });
    const created = await server.request("POST", "/api/conversations", {
      as: member,
      body: { type: "group", name: "elsewhere", orgId: elsewhere, participants: [{ userId: both.id, userType: "agent" }] },
    });
    const foreignId = created.body.id;
    const refusals = [
      await server.request("GET", `/api/conversations/${foreignId}`, { as: service, headers: as(both.id) }),
      await server.request("GET", `/api/conversations/${foreignId}/messages`, { as: service, headers: as(both.id) }),
      await server.request("POST", `/api/conversations/${foreignId}/messages`, { as: service, headers: as(both.id), body: { content: "in" } }),
      await server.request("POST", `/api/conversations/${foreignId}/runs`, { as: service, headers: as(both.id), body: {} }),
    ];
    expect(refusals.map((r) => [r.status, r.body.code])).toEqual(Array(refusals.length).fill([403, "org_forbidden"]));
    const listed = await server.request("GET", "/api/conversations", { as: service, headers: as(both.id) });
    expect(listed.body.map((c: { id: string }) => c.id)).not.toContain(foreignId);

    const socket = new RawSocket(new WebSocket(`${server.wsUrl}?asUserId=${encodeURIComponent(both.id)}`, { headers: service.headers } as any));
    await socket.next("session:ready");
    const join = await socket.request("join:conversation", { conversationId: foreignId });
    expect([join.ok, join.error?.code]).toEqual([false, "org_forbidden"]);
    socket.close();

    // The principal itself still reaches it, and the caller's organisation stays open to the acting.
    expect((await server.request("POST", `/api/conversations/${foreignId}/messages`, { as: both, body: { content: "mine" } })).status).toBe(201);
    const home = (await server.request("POST", "/api/conversations", {
      as: owner,
      body: { type: "group", name: "home", orgId: org, participants: [{ userId: both.id, userType: "agent" }] },
    })).body.id;
    expect((await server.request("POST", `/api/conversations/${home}/messages`, { as: service, headers: as(both.id), body: { content: "home" } })).status).toBe(201);
  });
});

describe("principal notifications on a socket acting for the principal", () => {
  test("it hears of conversations in the caller's organisations only; the principal's own socket hears of all", async () => {
    const elsewhere = await server.org();
    const member = await server.principal({ orgs: [elsewhere] });
    const both = await server.principal({ type: "agent", orgs: [org, elsewhere] });
    const acting = new RawSocket(new WebSocket(`${server.wsUrl}?asUserId=${encodeURIComponent(both.id)}`, { headers: service.headers } as any));
    await acting.next("session:ready");
    const own = new RawSocket(new WebSocket(server.wsUrl, { headers: both.headers } as any));
    await own.next("session:ready");
    const create = (who: TestPrincipal, orgId: string) =>
      server.request("POST", "/api/conversations", {
        as: who,
        body: { type: "group", name: "notified", orgId, participants: [{ userId: both.id, userType: "agent" }] },
      });
    const foreign = (await create(member, elsewhere)).body.id;
    const home = (await create(owner, org)).body.id;
    const addedTo = (id: string) => (f: { event: string; data?: any }) => f.event === "conversation:added" && f.data.conversation.id === id;
    await own.next(addedTo(foreign));
    await own.next(addedTo(home));
    await acting.next(addedTo(home));
    expect(acting.count(addedTo(foreign))).toBe(0);
    // Removals too: from both conversations; the acting socket hears only of the one it reaches.
    const removedFrom = (id: string) => (f: { event: string; data?: any }) => f.event === "conversation:removed" && f.data.conversationId === id;
    for (const [who, id] of [[member, foreign], [owner, home]] as const) {
      expect((await server.request("DELETE", `/api/conversations/${id}/participants/${both.id}`, { as: who })).status).toBe(204);
    }
    await own.next(removedFrom(foreign));
    await own.next(removedFrom(home));
    await acting.next(removedFrom(home));
    expect(acting.count(removedFrom(foreign))).toBe(0);
    acting.close();
    own.close();
  });

  test("addedSince on an acting socket tells only of the conversations the caller reaches", async () => {
    const elsewhere = await server.org();
    const member = await server.principal({ orgs: [elsewhere] });
    const both = await server.principal({ type: "agent", orgs: [org, elsewhere] });
    const since = new Date(Date.now() - 1000).toISOString();
    const create = async (who: TestPrincipal, orgId: string) =>
      (await server.request("POST", "/api/conversations", {
        as: who,
        body: { type: "group", name: "while away", orgId, participants: [{ userId: both.id, userType: "agent" }] },
      })).body.id as string;
    const foreign = await create(member, elsewhere);
    const home = await create(owner, org);
    const open = (headers: Record<string, string>, asUser = "") =>
      new RawSocket(new WebSocket(`${server.wsUrl}?addedSince=${encodeURIComponent(since)}${asUser}`, { headers } as any));
    const acting = open(service.headers, `&asUserId=${encodeURIComponent(both.id)}`);
    const own = open(both.headers);
    const told = async (socket: RawSocket, last: string) => {
      await socket.next((f) => f.event === "conversation:added" && f.data.conversation.id === last);
      await Bun.sleep(100);
      return socket.frames.filter((f) => f.event === "conversation:added").map((f) => f.data.conversation.id);
    };
    expect(await told(own, home)).toEqual([foreign, home]);
    expect(await told(acting, home)).toEqual([home]);
    acting.close();
    own.close();
  });
});

describe("acting for another principal over the WebSocket", () => {
  const open = (who: TestPrincipal, query: string) => new RawSocket(new WebSocket(`${server.wsUrl}?${query}`, { headers: who.headers } as any));

  test("asUserId on the upgrade makes the connection the agent's", async () => {
    const socket = open(service, `asUserId=${encodeURIComponent(agent.id)}`);
    const ready = await socket.next("session:ready");
    expect(ready.data.user).toEqual({ id: agent.id, type: "agent" });
    expect(ready.data.actedBy).toEqual({ id: service.id, type: "service" });
    expect((await socket.request("join:conversation", { conversationId })).ok).toBe(true);
    const ack = await socket.request("message:send", { conversationId, content: "over the socket" });
    expect(ack.data).toMatchObject({ sender_id: agent.id, metadata: { actedBy: { id: service.id, type: "service" } } });
    socket.close();
  });

  test("asUserId in a frame is refused, not ignored: acting is the connection's", async () => {
    const socket = open(service, "");
    await socket.next("session:ready");
    const ack = await socket.request("message:send", { conversationId, content: "whose?", asUserId: agent.id });
    expect(ack).toMatchObject({ ok: false, error: { code: "invalid_input" } });
    socket.close();
  });

  test("without the entitlement the upgrade is refused with 403", async () => {
    const response = await fetch(`${server.url}/api/ws?asUserId=${encodeURIComponent(agent.id)}`, {
      headers: { ...owner.headers, connection: "upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" },
    });
    expect(response.status).toBe(403);
    expect(((await response.json()) as { code: string }).code).toBe("act_as_forbidden");
  });

  test("disabling the principal acted for closes the socket", async () => {
    const target = await server.principal({ type: "agent", orgs: [org] });
    const socket = open(service, `asUserId=${encodeURIComponent(target.id)}`);
    await socket.next("session:ready");
    await server.admin.disableUser(target.id);
    expect((await socket.closed).code).toBe(4401);
  });
});
