/**
 * Participants: join, leave, add, remove, change role and ownership transfer — happy paths, every error
 * status and the security cases (members acting as admins, admins acting as owners, other organisations).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestServer, type TestPrincipal, type TestServer } from "../support/server";
import { UNKNOWN_ID, createConversation, expectError, expectStatus, participantsOf, roleOf } from "./fixtures";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.stop());

const path = (id: string, rest = "") => `/api/conversations/${id}${rest}`;

/** owner, admin (conversation role), member, and a stranger, in a group conversation of a fresh org. */
async function team() {
  const org = await t.org();
  const [owner, admin, member, stranger] = [
    await t.principal({ orgs: [org] }),
    await t.principal({ orgs: [org] }),
    await t.principal({ orgs: [org] }),
    await t.principal({ orgs: [org] }),
  ];
  const { id } = await createConversation(t, owner, { orgId: org, members: [admin, member] });
  expectStatus(await t.request("PATCH", path(id, `/participants/${admin.id}`), { as: owner, body: { role: "admin" } }), 200);
  return { org, id, owner, admin, member, stranger };
}

describe("POST /api/conversations/:id/join", () => {
  test("an org member joins a group of the org (201), and again (200, the same participant)", async () => {
    const { id, stranger } = await team();
    const first = await t.request("POST", path(id, "/join"), { as: stranger });
    expectStatus(first, 201);
    expect(first.body).toMatchObject({ conversation_id: id, user_id: stranger.id, user_type: "user", role: "member" });
    const again = await t.request("POST", path(id, "/join"), { as: stranger });
    expectStatus(again, 200);
    expect(again.body.id).toBe(first.body.id);
    expect((await participantsOf(t, stranger, id)).map((p) => p.user_id)).toContain(stranger.id);
  });

  test("an existing participant gets 200 with their own role", async () => {
    const { id, owner } = await team();
    const res = await t.request("POST", path(id, "/join"), { as: owner });
    expectStatus(res, 200);
    expect(res.body.role).toBe("owner");
  });

  test("a private conversation cannot be joined (403)", async () => {
    const org = await t.org();
    const [a, b] = [await t.principal({ orgs: [org] }), await t.principal({ orgs: [org] })];
    const { id } = await createConversation(t, a, { type: "private", orgId: org });
    expectError(await t.request("POST", path(id, "/join"), { as: b }), 403, "not_joinable");
  });

  test("someone from another org, or any joiner of an org-less group, is 403", async () => {
    const { id } = await team();
    const outsider = await t.principal({ orgs: [await t.org()] });
    expectError(await t.request("POST", path(id, "/join"), { as: outsider }), 403, "org_forbidden");
    const owner = await t.principal();
    const orgless = await createConversation(t, owner);
    const refused = await t.request("POST", path(orgless.id, "/join"), { as: await t.principal() });
    expectError(refused, 403, "invitation_only");
    expect(refused.body.error).toContain("belongs to no organization");
  });

  test("unknown and malformed ids are 404; no credentials is 401", async () => {
    const someone = await t.principal();
    expectError(await t.request("POST", path(UNKNOWN_ID, "/join"), { as: someone }), 404);
    expectError(await t.request("POST", path("nope", "/join"), { as: someone }), 404);
    const { id } = await team();
    expectError(await t.request("POST", path(id, "/join")), 401);
  });
});

describe("POST /api/conversations/:id/leave", () => {
  test("a member leaves (204) and can no longer read", async () => {
    const { id, member } = await team();
    const res = await t.request("POST", path(id, "/leave"), { as: member });
    expectStatus(res, 204);
    expectError(await t.request("GET", path(id), { as: member }), 403, "not_participant");
  });

  test("the owner cannot leave (403); a stranger is 403; unknown 404; no credentials 401", async () => {
    const { id, owner, stranger } = await team();
    expectError(await t.request("POST", path(id, "/leave"), { as: owner }), 403, "owner_cannot_leave");
    expectError(await t.request("POST", path(id, "/leave"), { as: stranger }), 403, "not_participant");
    expectError(await t.request("POST", path(UNKNOWN_ID, "/leave"), { as: owner }), 404);
    expectError(await t.request("POST", path(id, "/leave")), 401);
  });
});

describe("POST /api/conversations/:id/participants", () => {
  test("the owner and a conversation admin add participants (201) with a type", async () => {
    const { id, owner, admin } = await team();
    const agent = await t.principal({ type: "agent" });
    const byOwner = await t.request("POST", path(id, "/participants"), { as: owner, body: { userId: agent.id, userType: "agent" } });
    expectStatus(byOwner, 201);
    expect(byOwner.body).toMatchObject({ conversation_id: id, user_id: agent.id, user_type: "agent", role: "member" });
    const byAdmin = await t.request("POST", path(id, "/participants"), { as: admin, body: { userId: "assistant:support" } });
    expectStatus(byAdmin, 201);
    expect(byAdmin.body).toMatchObject({ user_id: "assistant:support", user_type: "user", role: "member" });
  });

  test("a member or a stranger is 403", async () => {
    const { id, member, stranger } = await team();
    expectError(await t.request("POST", path(id, "/participants"), { as: member, body: { userId: "x" } }), 403, "insufficient_role");
    expectError(await t.request("POST", path(id, "/participants"), { as: stranger, body: { userId: "x" } }), 403, "not_participant");
  });

  test("adding a participant twice is 409; a full private conversation is 409", async () => {
    const { id, owner, member } = await team();
    expectError(await t.request("POST", path(id, "/participants"), { as: owner, body: { userId: member.id } }), 409, "already_participant");
    const [a, b] = [await t.principal(), await t.principal()];
    const dm = await createConversation(t, a, { type: "private", members: [b] });
    expectError(await t.request("POST", path(dm.id, "/participants"), { as: a, body: { userId: "third" } }), 409, "conversation_full");
    const solo = await createConversation(t, a, { type: "private" });
    expectStatus(await t.request("POST", path(solo.id, "/participants"), { as: a, body: { userId: b.id } }), 201);
  });

  test("invalid bodies are 400; unknown conversation 404; no credentials 401", async () => {
    const { id, owner } = await team();
    expectError(await t.request("POST", path(id, "/participants"), { as: owner, body: {} }), 400);
    expectError(await t.request("POST", path(id, "/participants"), { as: owner, body: { userId: "" } }), 400);
    expectError(await t.request("POST", path(id, "/participants"), { as: owner, body: { userId: "x".repeat(256) } }), 400);
    expectError(await t.request("POST", path(id, "/participants"), { as: owner, body: { userId: "x", userType: "robot" } }), 400);
    expectError(await t.request("POST", path(UNKNOWN_ID, "/participants"), { as: owner, body: { userId: "x" } }), 404);
    expectError(await t.request("POST", path(id, "/participants"), { body: { userId: "x" } }), 401);
  });
});

describe("DELETE /api/conversations/:id/participants/:userId", () => {
  test("the owner removes a member (204), who loses access", async () => {
    const { id, owner, member } = await team();
    expectStatus(await t.request("DELETE", path(id, `/participants/${member.id}`), { as: owner }), 204);
    expectError(await t.request("GET", path(id), { as: member }), 403, "not_participant");
    expectError(await t.request("DELETE", path(id, `/participants/${member.id}`), { as: owner }), 404);
  });

  test("an admin removes members and themself, but not another admin nor the owner", async () => {
    const { id, owner, admin, member } = await team();
    const secondAdmin = await t.principal();
    expectStatus(await t.request("POST", path(id, "/participants"), { as: owner, body: { userId: secondAdmin.id } }), 201);
    expectStatus(await t.request("PATCH", path(id, `/participants/${secondAdmin.id}`), { as: owner, body: { role: "admin" } }), 200);

    expectError(await t.request("DELETE", path(id, `/participants/${secondAdmin.id}`), { as: admin }), 403, "insufficient_role");
    expectError(await t.request("DELETE", path(id, `/participants/${owner.id}`), { as: admin }), 403, "owner_cannot_be_removed");
    expectStatus(await t.request("DELETE", path(id, `/participants/${member.id}`), { as: admin }), 204);
    expectStatus(await t.request("DELETE", path(id, `/participants/${admin.id}`), { as: admin }), 204);
    // The owner removes admins.
    expectStatus(await t.request("DELETE", path(id, `/participants/${secondAdmin.id}`), { as: owner }), 204);
  });

  test("a member removing someone, or a stranger, is 403", async () => {
    const { id, admin, member, stranger } = await team();
    expectError(await t.request("DELETE", path(id, `/participants/${admin.id}`), { as: member }), 403, "insufficient_role");
    expectError(await t.request("DELETE", path(id, `/participants/${member.id}`), { as: stranger }), 403, "not_participant");
  });

  test("unknown participant or conversation is 404; no credentials 401", async () => {
    const { id, owner, member } = await team();
    expectError(await t.request("DELETE", path(id, "/participants/nobody"), { as: owner }), 404);
    expectError(await t.request("DELETE", path(UNKNOWN_ID, `/participants/${member.id}`), { as: owner }), 404);
    expectError(await t.request("DELETE", path(id, `/participants/${member.id}`)), 401);
  });
});

describe("PATCH /api/conversations/:id/participants/:userId", () => {
  test("the owner promotes and demotes", async () => {
    const { id, owner, member } = await team();
    const up = await t.request("PATCH", path(id, `/participants/${member.id}`), { as: owner, body: { role: "admin" } });
    expectStatus(up, 200);
    expect(up.body).toMatchObject({ user_id: member.id, role: "admin" });
    const down = await t.request("PATCH", path(id, `/participants/${member.id}`), { as: owner, body: { role: "member" } });
    expect(down.body.role).toBe("member");
  });

  test("role owner transfers ownership: the previous owner becomes admin", async () => {
    const { id, owner, member } = await team();
    const res = await t.request("PATCH", path(id, `/participants/${member.id}`), { as: owner, body: { role: "owner" } });
    expectStatus(res, 200);
    expect(res.body.role).toBe("owner");
    expect(await roleOf(t, owner, id, owner.id)).toBe("admin");
    expect((await participantsOf(t, owner, id)).filter((p) => p.role === "owner").map((p) => p.user_id)).toEqual([member.id]);
    // The rules follow the new roles.
    expectError(await t.request("POST", path(id, "/leave"), { as: member }), 403, "owner_cannot_leave");
    expectError(await t.request("PATCH", path(id, `/participants/${member.id}`), { as: owner, body: { role: "member" } }), 403, "insufficient_role");
    expectError(await t.request("DELETE", path(id), { as: owner }), 403);
    expectStatus(await t.request("POST", path(id, "/leave"), { as: owner }), 204);
  });

  test("only the owner changes roles: an admin or member is 403, a stranger 403", async () => {
    const { id, admin, member, stranger } = await team();
    expectError(await t.request("PATCH", path(id, `/participants/${member.id}`), { as: admin, body: { role: "admin" } }), 403, "insufficient_role");
    expectError(await t.request("PATCH", path(id, `/participants/${member.id}`), { as: member, body: { role: "owner" } }), 403, "insufficient_role");
    expectError(await t.request("PATCH", path(id, `/participants/${member.id}`), { as: stranger, body: { role: "admin" } }), 403, "not_participant");
  });

  test("own role, a bad role, an unknown participant and no credentials", async () => {
    const { id, owner, member } = await team();
    expectError(await t.request("PATCH", path(id, `/participants/${owner.id}`), { as: owner, body: { role: "member" } }), 400, "invalid_role_change");
    expectError(await t.request("PATCH", path(id, `/participants/${member.id}`), { as: owner, body: { role: "king" } }), 400);
    expectError(await t.request("PATCH", path(id, `/participants/${member.id}`), { as: owner, body: {} }), 400);
    expectError(await t.request("PATCH", path(id, "/participants/nobody"), { as: owner, body: { role: "admin" } }), 404);
    expectError(await t.request("PATCH", path(UNKNOWN_ID, `/participants/${member.id}`), { as: owner, body: { role: "admin" } }), 404);
    expectError(await t.request("PATCH", path(id, `/participants/${member.id}`), { body: { role: "admin" } }), 401);
  });
});
