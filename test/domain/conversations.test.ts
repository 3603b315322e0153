/**
 * /api/conversations[/:id]: create, list, read, update, delete — happy paths, every error status and the
 * security cases (strangers, members acting as admins, other organisations, deleted conversations).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestServer, type TestPrincipal, type TestServer } from "../support/server";
import { UNKNOWN_ID, createConversation, expectError, expectStatus, listMessages, sendMessage } from "./fixtures";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.stop());

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe("POST /api/conversations", () => {
  test("a group: 201, the caller is owner, listed principals join as members", async () => {
    const org = await t.org();
    const owner = await t.principal({ orgs: [org] });
    const member = await t.principal();
    const agent = await t.principal({ type: "agent" });
    const res = await t.request("POST", "/api/conversations", {
      as: owner,
      body: {
        type: "group",
        name: "  Support  ",
        description: "triage",
        orgId: org,
        metadata: { topic: "billing", nested: { a: [1, 2] } },
        // duplicates and the creator are dropped
        participants: [{ userId: member.id }, { userId: member.id }, { userId: agent.id, userType: "agent" }, { userId: owner.id }],
        unknownField: "ignored",
      },
    });
    expectStatus(res, 201);
    expect(res.body).toMatchObject({
      type: "group",
      name: "Support",
      description: "triage",
      org_id: org,
      created_by: owner.id,
      metadata: { topic: "billing", nested: { a: [1, 2] } },
    });
    expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body.created_at).toMatch(ISO);
    expect(res.body.updated_at).toMatch(ISO);
    expect(res.body).not.toHaveProperty("last_sequence");
    const byUser = Object.fromEntries(res.body.participants.map((p: any) => [p.user_id, p]));
    expect(Object.keys(byUser).sort()).toEqual([owner.id, member.id, agent.id].sort());
    expect(byUser[owner.id]).toMatchObject({ role: "owner", user_type: "user", conversation_id: res.body.id, last_read_at: null });
    expect(byUser[member.id]).toMatchObject({ role: "member", user_type: "user" });
    expect(byUser[agent.id]).toMatchObject({ role: "member", user_type: "agent" });
    expect(byUser[owner.id].joined_at).toMatch(ISO);
  });

  test("a private conversation with one other participant", async () => {
    const [a, b] = [await t.principal(), await t.principal()];
    const res = await t.request("POST", "/api/conversations", { as: a, body: { type: "private", participants: [{ userId: b.id }] } });
    expectStatus(res, 201);
    expect(res.body.name).toBeNull();
    expect(res.body.org_id).toBeNull();
    expect(res.body.metadata).toEqual({});
    expect(res.body.participants).toHaveLength(2);
  });

  test("a private conversation holds at most two participants (400)", async () => {
    const [a, b, c] = [await t.principal(), await t.principal(), await t.principal()];
    const res = await t.request("POST", "/api/conversations", {
      as: a,
      body: { type: "private", participants: [{ userId: b.id }, { userId: c.id }] },
    });
    expectError(res, 400, "too_many_participants");
  });

  test.each([
    ["missing", {}],
    ["empty", { name: "" }],
    ["blank", { name: "   " }],
  ])("a group requires a name (%s → 400)", async (_label, extra) => {
    const owner = await t.principal();
    expectError(await t.request("POST", "/api/conversations", { as: owner, body: { type: "group", ...extra } }), 400, "name_required");
  });

  test("invalid type, or a name beyond 200 characters, is 400", async () => {
    const owner = await t.principal();
    expectError(await t.request("POST", "/api/conversations", { as: owner, body: { type: "channel", name: "x" } }), 400, "invalid_input");
    expectError(await t.request("POST", "/api/conversations", { as: owner, body: { type: "group", name: "x".repeat(201) } }), 400, "invalid_input");
  });

  test("the org comes from orgId or X-Org-Id; an org the caller is not in is 403", async () => {
    const org = await t.org();
    const other = await t.org();
    const owner = await t.principal({ orgs: [org] });
    const viaHeader = await t.request("POST", "/api/conversations", { as: owner, body: { type: "group", name: "g" }, headers: { "x-org-id": org } });
    expectStatus(viaHeader, 201);
    expect(viaHeader.body.org_id).toBe(org);
    expectError(await t.request("POST", "/api/conversations", { as: owner, body: { type: "group", name: "g", orgId: other } }), 403, "org_forbidden");
    expectError(
      await t.request("POST", "/api/conversations", { as: owner, body: { type: "group", name: "g" }, headers: { "x-org-id": other } }),
      403,
      "org_forbidden",
    );
  });

  test("metadata larger than the message limit is 413; a body over the request limit is 413", async () => {
    const owner = await t.principal();
    const big = "x".repeat(t.config.maxMessageBytes + 1);
    expectError(await t.request("POST", "/api/conversations", { as: owner, body: { type: "group", name: "g", metadata: { big } } }), 413, "too_large");
    const huge = "x".repeat(t.config.maxBodyBytes + 1);
    expectError(await t.request("POST", "/api/conversations", { as: owner, body: { type: "group", name: huge } }), 413, "too_large");
  });

  test("without credentials, or with a bad token, it is 401", async () => {
    expectError(await t.request("POST", "/api/conversations", { body: { type: "group", name: "g" } }), 401, "unauthorized");
    const res = await t.request("POST", "/api/conversations", {
      body: { type: "group", name: "g" },
      headers: { authorization: "Bearer 00000000-0000-4000-8000-000000000000.nope" },
    });
    expectError(res, 401);
  });
});

describe("GET /api/conversations", () => {
  test("only the caller's conversations, newest activity first", async () => {
    const me = await t.principal();
    const stranger = await t.principal();
    // Activity times are compared: keep the steps apart by more than the clock's resolution.
    const first = await createConversation(t, me, { name: "first" });
    await Bun.sleep(5);
    const second = await createConversation(t, me, { name: "second" });
    const theirs = await createConversation(t, stranger, { name: "theirs" });

    let res = await t.request("GET", "/api/conversations", { as: me });
    expectStatus(res, 200);
    expect(res.body.map((c: any) => c.id)).toEqual([second.id, first.id]);
    expect(res.body.map((c: any) => c.id)).not.toContain(theirs.id);
    expect(res.body[0]).not.toHaveProperty("participants");

    // A message is activity: the older conversation moves to the top.
    await Bun.sleep(5);
    await sendMessage(t, me, first.id);
    res = await t.request("GET", "/api/conversations", { as: me });
    expect(res.body.map((c: any) => c.id)).toEqual([first.id, second.id]);

    res = await t.request("GET", "/api/conversations?limit=1&offset=1", { as: me });
    expect(res.body.map((c: any) => c.id)).toEqual([second.id]);
  });

  test("each carries the caller's last_read_at and unread count: others' messages since, without control events or deleted ones", async () => {
    const me = await t.principal();
    const other = await t.principal({ entitlements: ["cap:messaging.interrupt"] });
    const conversation = await createConversation(t, me, { members: [other] });
    const summary = async () => {
      const res = await t.request("GET", "/api/conversations", { as: me });
      expectStatus(res, 200);
      return res.body.find((c: any) => c.id === conversation.id);
    };
    expect(await summary()).toMatchObject({ last_read_at: null, unread_count: 0 });

    await sendMessage(t, other, conversation.id, { content: "one" });
    const deleted = await sendMessage(t, other, conversation.id, { content: "two" });
    await sendMessage(t, other, conversation.id, { content: "three" });
    await sendMessage(t, me, conversation.id, { content: "mine" });
    expectStatus(await t.request("DELETE", `/api/conversations/${conversation.id}/messages/${deleted.id}`, { as: other }), 204);
    expectStatus(await t.request("POST", `/api/conversations/${conversation.id}/control`, { as: other, body: { event: "stream.pause" } }), 201);
    expect(await summary()).toMatchObject({ last_read_at: null, unread_count: 2 });
    // The other participant counts the caller's message only.
    const theirs = (await t.request("GET", "/api/conversations", { as: other })).body.find((c: any) => c.id === conversation.id);
    expect(theirs.unread_count).toBe(1);

    // Reading marks last_read_at; what comes after it is unread again.
    await listMessages(t, me, conversation.id);
    const read = await summary();
    expect(read.last_read_at).toMatch(ISO);
    expect(read.unread_count).toBe(0);
    await Bun.sleep(5);
    await sendMessage(t, other, conversation.id, { content: "four" });
    expect(await summary()).toMatchObject({ last_read_at: read.last_read_at, unread_count: 1 });
  });

  test("unread counts stop at 100", async () => {
    const me = await t.principal();
    const other = await t.principal();
    const conversation = await createConversation(t, me, { members: [other] });
    for (let batch = 0; batch < 101; batch += 20) {
      await Promise.all(Array.from({ length: Math.min(20, 101 - batch) }, () => sendMessage(t, other, conversation.id)));
    }
    const res = await t.request("GET", "/api/conversations", { as: me });
    expect(res.body.find((c: any) => c.id === conversation.id).unread_count).toBe(100);
  });

  test("orgId filters; an org the caller is not in is 403", async () => {
    const org = await t.org();
    const other = await t.org();
    const me = await t.principal({ orgs: [org] });
    const inOrg = await createConversation(t, me, { orgId: org });
    const noOrg = await createConversation(t, me);
    const res = await t.request("GET", `/api/conversations?orgId=${org}`, { as: me });
    expectStatus(res, 200);
    expect(res.body.map((c: any) => c.id)).toEqual([inOrg.id]);
    const viaHeader = await t.request("GET", "/api/conversations", { as: me, headers: { "x-org-id": org } });
    expect(viaHeader.body.map((c: any) => c.id)).toEqual([inOrg.id]);
    expect((await t.request("GET", "/api/conversations", { as: me })).body.map((c: any) => c.id)).toContain(noOrg.id);
    expectError(await t.request("GET", `/api/conversations?orgId=${other}`, { as: me }), 403, "org_forbidden");
  });

  test("bad limit or offset is 400; no credentials is 401", async () => {
    const me = await t.principal();
    expectError(await t.request("GET", "/api/conversations?limit=0", { as: me }), 400);
    expectError(await t.request("GET", "/api/conversations?limit=501", { as: me }), 400);
    expectError(await t.request("GET", "/api/conversations?offset=-1", { as: me }), 400);
    expectError(await t.request("GET", "/api/conversations"), 401);
  });
});

describe("GET /api/conversations/:id", () => {
  test("a participant reads the conversation with its participants", async () => {
    const [owner, member] = [await t.principal(), await t.principal()];
    const conversation = await createConversation(t, owner, { members: [member] });
    const res = await t.request("GET", `/api/conversations/${conversation.id}`, { as: member });
    expectStatus(res, 200);
    expect(res.body.id).toBe(conversation.id);
    expect(res.body.participants.map((p: any) => p.user_id).sort()).toEqual([owner.id, member.id].sort());
  });

  test("a stranger is 403, also from the same org; unknown and malformed ids are 404", async () => {
    const org = await t.org();
    const owner = await t.principal({ orgs: [org] });
    const colleague = await t.principal({ orgs: [org] });
    const outsider = await t.principal({ orgs: [await t.org()] });
    const conversation = await createConversation(t, owner, { orgId: org });
    expectError(await t.request("GET", `/api/conversations/${conversation.id}`, { as: colleague }), 403, "not_participant");
    expectError(await t.request("GET", `/api/conversations/${conversation.id}`, { as: outsider }), 403, "not_participant");
    expectError(await t.request("GET", `/api/conversations/${UNKNOWN_ID}`, { as: owner }), 404, "not_found");
    expectError(await t.request("GET", "/api/conversations/not-a-uuid", { as: owner }), 404, "not_found");
    expectError(await t.request("GET", `/api/conversations/${conversation.id}`), 401);
  });

  test("system admins read without participating, within their org scope", async () => {
    const org = await t.org();
    const owner = await t.principal({ orgs: [org] });
    const conversation = await createConversation(t, owner, { orgId: org });
    const superAdmin = await t.principal({ superAdmin: true });
    const orgAdmin = await t.principal({ orgs: [org], entitlements: ["messaging:admin"] });
    const otherOrgAdmin = await t.principal({ orgs: [await t.org()], entitlements: ["messaging:admin"] });
    expectStatus(await t.request("GET", `/api/conversations/${conversation.id}`, { as: superAdmin }), 200);
    expectStatus(await t.request("GET", `/api/conversations/${conversation.id}`, { as: orgAdmin }), 200);
    expectError(await t.request("GET", `/api/conversations/${conversation.id}`, { as: otherOrgAdmin }), 403);
  });
});

describe("PATCH /api/conversations/:id", () => {
  let owner: TestPrincipal, admin: TestPrincipal, member: TestPrincipal, stranger: TestPrincipal;
  let id: string;
  beforeAll(async () => {
    [owner, admin, member, stranger] = [await t.principal(), await t.principal(), await t.principal(), await t.principal()];
    id = (await createConversation(t, owner, { members: [admin, member], metadata: { v: 1 } })).id;
    expectStatus(await t.request("PATCH", `/api/conversations/${id}/participants/${admin.id}`, { as: owner, body: { role: "admin" } }), 200);
  });

  test("the owner updates name, description and metadata", async () => {
    const res = await t.request("PATCH", `/api/conversations/${id}`, {
      as: owner,
      body: { name: " Renamed ", description: "about", metadata: { v: 2 } },
    });
    expectStatus(res, 200);
    expect(res.body).toMatchObject({ id, name: "Renamed", description: "about", metadata: { v: 2 } });
    expect(res.body).not.toHaveProperty("participants");
    expect(Date.parse(res.body.updated_at)).toBeGreaterThanOrEqual(Date.parse(res.body.created_at));
  });

  test("a conversation admin may update; description null clears it", async () => {
    const res = await t.request("PATCH", `/api/conversations/${id}`, { as: admin, body: { description: null } });
    expectStatus(res, 200);
    expect(res.body.description).toBeNull();
    expect(res.body.name).toBe("Renamed");
  });

  test("a member is 403, a stranger is 403", async () => {
    expectError(await t.request("PATCH", `/api/conversations/${id}`, { as: member, body: { name: "mine" } }), 403, "insufficient_role");
    expectError(await t.request("PATCH", `/api/conversations/${id}`, { as: stranger, body: { name: "mine" } }), 403, "not_participant");
  });

  test("a blank name is 400, oversized metadata 413, unknown conversation 404, no credentials 401", async () => {
    expectError(await t.request("PATCH", `/api/conversations/${id}`, { as: owner, body: { name: "  " } }), 400, "name_required");
    expectError(await t.request("PATCH", `/api/conversations/${id}`, { as: owner, body: { name: "" } }), 400, "invalid_input");
    expectError(await t.request("PATCH", `/api/conversations/${id}`, { as: owner, body: { name: 7 } }), 400, "invalid_input");
    const big = "x".repeat(t.config.maxMessageBytes + 1);
    expectError(await t.request("PATCH", `/api/conversations/${id}`, { as: owner, body: { metadata: { big } } }), 413, "too_large");
    expectError(await t.request("PATCH", `/api/conversations/${UNKNOWN_ID}`, { as: owner, body: { name: "x" } }), 404);
    expectError(await t.request("PATCH", `/api/conversations/${id}`, { body: { name: "x" } }), 401);
  });
});

describe("DELETE /api/conversations/:id", () => {
  test("only the owner deletes; messages and participants go with it", async () => {
    const [owner, admin, member, stranger] = [await t.principal(), await t.principal(), await t.principal(), await t.principal()];
    const { id } = await createConversation(t, owner, { members: [admin, member] });
    expectStatus(await t.request("PATCH", `/api/conversations/${id}/participants/${admin.id}`, { as: owner, body: { role: "admin" } }), 200);
    await sendMessage(t, member, id);

    expectError(await t.request("DELETE", `/api/conversations/${id}`, { as: admin }), 403, "insufficient_role");
    expectError(await t.request("DELETE", `/api/conversations/${id}`, { as: member }), 403, "insufficient_role");
    expectError(await t.request("DELETE", `/api/conversations/${id}`, { as: stranger }), 403, "not_participant");
    expectError(await t.request("DELETE", `/api/conversations/${id}`), 401);

    const res = await t.request("DELETE", `/api/conversations/${id}`, { as: owner });
    expectStatus(res, 204);
    expect(res.body).toBeUndefined();

    // Reading a deleted conversation, in any way, is 404.
    expectError(await t.request("GET", `/api/conversations/${id}`, { as: owner }), 404);
    expectError(await t.request("GET", `/api/conversations/${id}/messages`, { as: member }), 404);
    expectError(await t.request("POST", `/api/conversations/${id}/messages`, { as: member, body: { content: "late" } }), 404);
    expectError(await t.request("DELETE", `/api/conversations/${id}`, { as: owner }), 404);
    const list = await t.request("GET", "/api/conversations", { as: member });
    expect(list.body.map((c: any) => c.id)).not.toContain(id);
  });

  test("unknown and malformed ids are 404", async () => {
    const owner = await t.principal();
    expectError(await t.request("DELETE", `/api/conversations/${UNKNOWN_ID}`, { as: owner }), 404);
    expectError(await t.request("DELETE", "/api/conversations/123", { as: owner }), 404);
  });
});
