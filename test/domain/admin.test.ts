/**
 * The admin API (/api/admin/...): who counts as a system admin, org-scoped admins, pagination, detail,
 * participant management and stats. The database may be shared with other runs, so every query that
 * could see other rows filters by a fresh org.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestServer, type TestPrincipal, type TestServer } from "../support/server";
import { UNKNOWN_ID, createConversation, expectError, expectStatus, participantsOf, roleOf, sendMessage } from "./fixtures";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.stop());

const ADMIN = "messaging:admin";

/** Every admin route, with a body where one is needed, for the access checks. */
function adminRoutes(conversationId: string, userId: string): [string, string, unknown?][] {
  return [
    ["GET", "/api/admin/conversations"],
    ["GET", `/api/admin/conversations/${conversationId}`],
    ["DELETE", `/api/admin/conversations/${conversationId}`],
    ["GET", `/api/admin/users/${userId}/conversations`],
    ["POST", `/api/admin/conversations/${conversationId}/participants`, { userId: "someone", role: "member" }],
    ["DELETE", `/api/admin/conversations/${conversationId}/participants/${userId}`],
    ["GET", "/api/admin/stats"],
  ];
}

describe("who may use the admin API", () => {
  test("without credentials 401; users, org admins and conversation owners are 403", async () => {
    const org = await t.org();
    const owner = await t.principal({ orgs: [{ id: org, role: "admin" }] });
    const member = await t.principal({ orgs: [org] });
    const agent = await t.principal({ type: "agent", entitlements: ["cap:messaging.interrupt", "cap:messaging.route"] });
    const { id } = await createConversation(t, owner, { orgId: org, members: [member] });
    for (const [method, path, body] of adminRoutes(id, member.id)) {
      expectError(await t.request(method, path, { body }), 401);
      for (const who of [owner, member, agent]) {
        expectError(await t.request(method, path, { as: who, body }), 403, "admin_required");
      }
    }
    // Nothing was changed by the refused calls.
    expect((await participantsOf(t, owner, id)).map((p) => p.user_id).sort()).toEqual([owner.id, member.id].sort());
  });

  test("super admins, users holding messaging:admin and API keys scoped messaging:admin are admitted", async () => {
    const org = await t.org();
    const owner = await t.principal({ orgs: [org] });
    await createConversation(t, owner, { orgId: org });
    const admins = [
      await t.principal({ superAdmin: true }),
      await t.principal({ entitlements: [ADMIN] }),
      await t.principal({ type: "service", entitlements: [ADMIN] }),
    ];
    for (const admin of admins) {
      const res = await t.request("GET", `/api/admin/conversations?orgId=${org}`, { as: admin });
      expectStatus(res, 200);
      expect(res.body.total).toBe(1);
    }
  });
});

describe("GET /api/admin/conversations", () => {
  let org: string;
  let ids: string[];
  let admin: TestPrincipal;
  beforeAll(async () => {
    org = await t.org();
    admin = await t.principal({ superAdmin: true });
    const owner = await t.principal({ orgs: [org] });
    const other = await t.principal({ orgs: [org] });
    ids = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await createConversation(t, owner, { orgId: org, name: `g${i}` })).id);
      await Bun.sleep(3);
    }
    ids.push((await createConversation(t, owner, { orgId: org, type: "private", members: [other] })).id);
    ids.reverse(); // newest first, as listed
  });

  test("{items, limit, offset, total}, newest first, paginated", async () => {
    const res = await t.request("GET", `/api/admin/conversations?orgId=${org}`, { as: admin });
    expectStatus(res, 200);
    expect(Object.keys(res.body).sort()).toEqual(["items", "limit", "offset", "total"]);
    expect(res.body).toMatchObject({ limit: 50, offset: 0, total: 6 });
    expect(res.body.items.map((c: any) => c.id)).toEqual(ids);
    expect(res.body.items[0]).toMatchObject({ org_id: org, type: "private" });
    expect(res.body.items[0]).not.toHaveProperty("participants");

    const page = await t.request("GET", `/api/admin/conversations?orgId=${org}&limit=2&offset=2`, { as: admin });
    expect(page.body).toMatchObject({ limit: 2, offset: 2, total: 6 });
    expect(page.body.items.map((c: any) => c.id)).toEqual(ids.slice(2, 4));
    const past = await t.request("GET", `/api/admin/conversations?orgId=${org}&offset=100`, { as: admin });
    expect(past.body).toMatchObject({ items: [], total: 6 });
  });

  test("filters by type and by X-Org-Id", async () => {
    const groups = await t.request("GET", `/api/admin/conversations?orgId=${org}&type=group`, { as: admin });
    expect(groups.body.total).toBe(5);
    expect(groups.body.items.every((c: any) => c.type === "group")).toBe(true);
    const privates = await t.request("GET", "/api/admin/conversations?type=private", { as: admin, headers: { "x-org-id": org } });
    expect(privates.body.total).toBe(1);
    expect(privates.body.items[0].id).toBe(ids[0]);
  });

  test("limit 1..200, offset ≥ 0, type private|group (400 otherwise)", async () => {
    for (const query of ["limit=0", "limit=201", "limit=x", "offset=-1", "offset=0.5", "type=channel"]) {
      expectError(await t.request("GET", `/api/admin/conversations?orgId=${org}&${query}`, { as: admin }), 400, "invalid_input");
    }
    expectStatus(await t.request("GET", `/api/admin/conversations?orgId=${org}&limit=200`, { as: admin }), 200);
  });
});

describe("GET /api/admin/conversations/:id", () => {
  test("the conversation, its participants and its last 50 live messages in ascending order", async () => {
    const admin = await t.principal({ entitlements: [ADMIN] });
    const [owner, member] = [await t.principal(), await t.principal()];
    const { id } = await createConversation(t, owner, { members: [member] });
    const sent = [];
    for (let i = 1; i <= 55; i++) sent.push(await sendMessage(t, i % 2 ? owner : member, id, { content: `m${i}` }));
    expectStatus(await t.request("DELETE", `/api/conversations/${id}/messages/${sent[54].id}`, { as: owner }), 204);

    const res = await t.request("GET", `/api/admin/conversations/${id}`, { as: admin });
    expectStatus(res, 200);
    expect(Object.keys(res.body).sort()).toEqual(["conversation", "participants", "recentMessages"]);
    expect(res.body.conversation.id).toBe(id);
    expect(res.body.participants.map((p: any) => p.user_id).sort()).toEqual([owner.id, member.id].sort());
    expect(res.body.recentMessages).toHaveLength(50);
    expect(res.body.recentMessages.map((m: any) => m.sequence)).toEqual(Array.from({ length: 50 }, (_, i) => i + 5));
  });

  test("unknown and malformed ids are 404", async () => {
    const admin = await t.principal({ superAdmin: true });
    expectError(await t.request("GET", `/api/admin/conversations/${UNKNOWN_ID}`, { as: admin }), 404);
    expectError(await t.request("GET", "/api/admin/conversations/zzz", { as: admin }), 404);
  });
});

describe("DELETE /api/admin/conversations/:id", () => {
  test("204; the conversation is gone for everyone", async () => {
    const admin = await t.principal({ superAdmin: true });
    const owner = await t.principal();
    const { id } = await createConversation(t, owner);
    await sendMessage(t, owner, id);
    expectStatus(await t.request("DELETE", `/api/admin/conversations/${id}`, { as: admin }), 204);
    expectError(await t.request("GET", `/api/conversations/${id}`, { as: owner }), 404);
    expectError(await t.request("GET", `/api/admin/conversations/${id}`, { as: admin }), 404);
    expectError(await t.request("DELETE", `/api/admin/conversations/${id}`, { as: admin }), 404);
  });
});

describe("GET /api/admin/users/:userId/conversations", () => {
  test("the conversations a principal participates in, optionally by org", async () => {
    const admin = await t.principal({ superAdmin: true });
    const org = await t.org();
    const user = await t.principal({ orgs: [org] });
    const owner = await t.principal({ orgs: [org] });
    const a = await createConversation(t, owner, { orgId: org, members: [user] });
    const b = await createConversation(t, user);
    await createConversation(t, owner);
    const all = await t.request("GET", `/api/admin/users/${user.id}/conversations`, { as: admin });
    expectStatus(all, 200);
    expect(all.body.map((c: any) => c.id).sort()).toEqual([a.id, b.id].sort());
    const inOrg = await t.request("GET", `/api/admin/users/${user.id}/conversations?orgId=${org}`, { as: admin });
    expect(inOrg.body.map((c: any) => c.id)).toEqual([a.id]);
    const nobody = await t.request("GET", `/api/admin/users/${encodeURIComponent("agent:nobody-" + crypto.randomUUID())}/conversations`, { as: admin });
    expect(nobody.body).toEqual([]);
    expectError(await t.request("GET", `/api/admin/users/${"x".repeat(256)}/conversations`, { as: admin }), 404);
  });
});

describe("admin participant management", () => {
  test("adds with a role (201), including owner, which demotes the previous owner", async () => {
    const admin = await t.principal({ superAdmin: true });
    const owner = await t.principal();
    const { id } = await createConversation(t, owner);
    const [x, y, z] = [await t.principal(), await t.principal({ type: "agent" }), await t.principal()];
    const asAdmin = await t.request("POST", `/api/admin/conversations/${id}/participants`, { as: admin, body: { userId: x.id, role: "admin" } });
    expectStatus(asAdmin, 201);
    expect(asAdmin.body).toMatchObject({ conversation_id: id, user_id: x.id, role: "admin", user_type: "user" });
    const asMember = await t.request("POST", `/api/admin/conversations/${id}/participants`, {
      as: admin,
      body: { userId: y.id, userType: "agent", role: "member" },
    });
    expect(asMember.body).toMatchObject({ role: "member", user_type: "agent" });
    const asOwner = await t.request("POST", `/api/admin/conversations/${id}/participants`, { as: admin, body: { userId: z.id, role: "owner" } });
    expectStatus(asOwner, 201);
    expect(await roleOf(t, z, id, z.id)).toBe("owner");
    expect(await roleOf(t, z, id, owner.id)).toBe("admin");
    // The added participants take part at once.
    expectStatus(await t.request("GET", `/api/conversations/${id}`, { as: x }), 200);
  });

  test("already a participant 409; a full private conversation 409; bad bodies 400; unknown conversation 404", async () => {
    const admin = await t.principal({ superAdmin: true });
    const [a, b] = [await t.principal(), await t.principal()];
    const dm = await createConversation(t, a, { type: "private", members: [b] });
    const add = (id: string, body: unknown) => t.request("POST", `/api/admin/conversations/${id}/participants`, { as: admin, body });
    expectError(await add(dm.id, { userId: b.id, role: "member" }), 409, "already_participant");
    expectError(await add(dm.id, { userId: "third", role: "member" }), 409, "conversation_full");
    expectError(await add(dm.id, { userId: "third" }), 400, "invalid_input");
    expectError(await add(dm.id, { userId: "third", role: "superuser" }), 400, "invalid_input");
    expectError(await add(dm.id, { role: "member" }), 400, "invalid_input");
    expectError(await add(UNKNOWN_ID, { userId: "third", role: "member" }), 404);
  });

  test("removes anyone but the owner", async () => {
    const admin = await t.principal({ entitlements: [ADMIN] });
    const [owner, member] = [await t.principal(), await t.principal()];
    const { id } = await createConversation(t, owner, { members: [member] });
    expectStatus(await t.request("DELETE", `/api/admin/conversations/${id}/participants/${member.id}`, { as: admin }), 204);
    expectError(await t.request("GET", `/api/conversations/${id}`, { as: member }), 403);
    expectError(await t.request("DELETE", `/api/admin/conversations/${id}/participants/${owner.id}`, { as: admin }), 403, "owner_cannot_be_removed");
    expectError(await t.request("DELETE", `/api/admin/conversations/${id}/participants/${member.id}`, { as: admin }), 404);
    expectError(await t.request("DELETE", `/api/admin/conversations/${UNKNOWN_ID}/participants/${member.id}`, { as: admin }), 404);
  });
});

describe("GET /api/admin/stats", () => {
  test("totals of an org and its conversations active in the last 24 hours", async () => {
    const admin = await t.principal({ superAdmin: true });
    const org = await t.org();
    const [a, b, c] = [await t.principal({ orgs: [org] }), await t.principal({ orgs: [org] }), await t.principal({ orgs: [org] })];
    const empty = await t.request("GET", `/api/admin/stats?orgId=${org}`, { as: admin });
    expectStatus(empty, 200);
    expect(empty.body).toEqual({ totalConversations: 0, totalMessages: 0, uniqueParticipants: 0, activeConversations24h: 0 });

    const busy = await createConversation(t, a, { orgId: org, members: [b] });
    await createConversation(t, c, { orgId: org, members: [a] }); // quiet
    await createConversation(t, await t.principal()); // another org's (none)
    const m1 = await sendMessage(t, a, busy.id);
    await sendMessage(t, b, busy.id);
    await sendMessage(t, b, busy.id);
    expectStatus(await t.request("DELETE", `/api/conversations/${busy.id}/messages/${m1.id}`, { as: a }), 204);

    const res = await t.request("GET", `/api/admin/stats?orgId=${org}`, { as: admin });
    expect(res.body).toEqual({ totalConversations: 2, totalMessages: 2, uniqueParticipants: 3, activeConversations24h: 1 });
    const viaHeader = await t.request("GET", "/api/admin/stats", { as: admin, headers: { "x-org-id": org } });
    expect(viaHeader.body).toEqual(res.body);
  });

  test("installation-wide stats are numbers", async () => {
    const admin = await t.principal({ superAdmin: true });
    const res = await t.request("GET", "/api/admin/stats", { as: admin });
    expectStatus(res, 200);
    for (const key of ["totalConversations", "totalMessages", "uniqueParticipants", "activeConversations24h"]) {
      expect(typeof res.body[key]).toBe("number");
    }
  });
});

describe("an admin bound to org A", () => {
  test("sees and manages org A only; org B looks absent or forbidden", async () => {
    const [orgA, orgB] = [await t.org(), await t.org()];
    const adminA = await t.principal({ orgs: [orgA], entitlements: [ADMIN] });
    const ownerA = await t.principal({ orgs: [orgA] });
    const ownerB = await t.principal({ orgs: [orgB] });
    const convA = await createConversation(t, ownerA, { orgId: orgA });
    const convB = await createConversation(t, ownerB, { orgId: orgB, members: [ownerA] });
    const orgless = await createConversation(t, ownerA);
    await sendMessage(t, ownerB, convB.id);

    const list = await t.request("GET", "/api/admin/conversations?limit=200", { as: adminA });
    expectStatus(list, 200);
    expect(list.body.items.every((c: any) => c.org_id === orgA)).toBe(true);
    expect(list.body.items.map((c: any) => c.id)).toEqual([convA.id]);
    expect(list.body.total).toBe(1);
    expectError(await t.request("GET", `/api/admin/conversations?orgId=${orgB}`, { as: adminA }), 403, "org_forbidden");

    expectStatus(await t.request("GET", `/api/admin/conversations/${convA.id}`, { as: adminA }), 200);
    for (const id of [convB.id, orgless.id]) {
      expectError(await t.request("GET", `/api/admin/conversations/${id}`, { as: adminA }), 404);
      expectError(await t.request("POST", `/api/admin/conversations/${id}/participants`, { as: adminA, body: { userId: adminA.id, role: "owner" } }), 404);
      expectError(await t.request("DELETE", `/api/admin/conversations/${id}/participants/${ownerA.id}`, { as: adminA }), 404);
      expectError(await t.request("DELETE", `/api/admin/conversations/${id}`, { as: adminA }), 404);
    }
    // Nothing of org B changed.
    expect((await participantsOf(t, ownerB, convB.id)).map((p) => p.user_id).sort()).toEqual([ownerA.id, ownerB.id].sort());

    const theirs = await t.request("GET", `/api/admin/users/${ownerA.id}/conversations`, { as: adminA });
    expect(theirs.body.map((c: any) => c.id)).toEqual([convA.id]);
    expectError(await t.request("GET", `/api/admin/users/${ownerA.id}/conversations?orgId=${orgB}`, { as: adminA }), 403);

    const stats = await t.request("GET", "/api/admin/stats", { as: adminA });
    expect(stats.body).toMatchObject({ totalConversations: 1, totalMessages: 0 });
    expectError(await t.request("GET", `/api/admin/stats?orgId=${orgB}`, { as: adminA }), 403, "org_forbidden");
    // Also as a reader: an org-A admin cannot read org B's messages.
    expectError(await t.request("GET", `/api/conversations/${convB.id}/messages`, { as: adminA }), 403);
  });
});
