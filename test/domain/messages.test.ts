/**
 * Messages: send (content types, references, priorities, idempotent client ids, scope headers), list
 * (pagination by sequence and time, read marks), edit with history, soft delete — happy paths, every error
 * status and the security cases.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestServer, type TestServer } from "../support/server";
import {
  UNKNOWN_ID,
  createConversation,
  expectError,
  expectStatus,
  listMessages,
  participantsOf,
  sendMessage,
} from "./fixtures";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.stop());

const messagesPath = (id: string, rest = "") => `/api/conversations/${id}/messages${rest}`;

/** owner, admin, two members and a stranger in a group conversation of a fresh org. */
async function room() {
  const org = await t.org();
  const [owner, admin, alice, bob, stranger] = [
    await t.principal({ orgs: [org] }),
    await t.principal({ orgs: [org] }),
    await t.principal({ orgs: [org] }),
    await t.principal({ orgs: [org] }),
    await t.principal({ orgs: [org] }),
  ];
  const { id } = await createConversation(t, owner, { orgId: org, members: [admin, alice, bob] });
  expectStatus(await t.request("PATCH", `/api/conversations/${id}/participants/${admin.id}`, { as: owner, body: { role: "admin" } }), 200);
  return { org, id, owner, admin, alice, bob, stranger };
}

describe("POST /api/conversations/:id/messages", () => {
  test("201 with the stored message and its defaults", async () => {
    const { id, org, alice } = await room();
    const res = await t.request("POST", messagesPath(id), { as: alice, body: { content: "hello" } });
    expectStatus(res, 201);
    expect(res.headers.get("content-type")).toStartWith("application/json");
    expect(res.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      conversation_id: id,
      sender_id: alice.id,
      sender_type: "user",
      content: "hello",
      content_type: "text/plain",
      reply_to: null,
      org_id: org,
      run_id: null,
      trace_id: null,
      sequence: 1,
      priority: "normal",
      interruptible: true,
      preempted_by: null,
      created_at: expect.stringMatching(/Z$/),
      updated_at: null,
      deleted_at: null,
      metadata: {},
      version: 1,
      data_class: null,
      policy_ref: null,
      stream_state: null,
    });
  });

  test("sequences count 1, 2, 3 across senders; agents send with their API key", async () => {
    const { id, owner, alice } = await room();
    const agent = await t.principal({ type: "agent" });
    expectStatus(await t.request("POST", `/api/conversations/${id}/participants`, { as: owner, body: { userId: agent.id, userType: "agent" } }), 201);
    const a = await sendMessage(t, alice, id);
    const b = await sendMessage(t, agent, id, { content: "beep" });
    const c = await sendMessage(t, owner, id);
    expect([a.sequence, b.sequence, c.sequence]).toEqual([1, 2, 3]);
    expect(b.sender_type).toBe("agent");
  });

  test("every field of the request is stored", async () => {
    const { id, alice } = await room();
    const first = await sendMessage(t, alice, id);
    const res = await t.request("POST", messagesPath(id), {
      as: alice,
      body: {
        content: "**bold**",
        contentType: "text/markdown",
        replyTo: first.id,
        preemptedBy: first.id,
        metadata: { lang: "en", tags: ["a"] },
        runId: "run-1",
        traceId: "trace-1",
        priority: "critical",
        interruptible: false,
      },
    });
    expectStatus(res, 201);
    expect(res.body).toMatchObject({
      content: "**bold**",
      content_type: "text/markdown",
      reply_to: first.id,
      preempted_by: first.id,
      metadata: { lang: "en", tags: ["a"] },
      run_id: "run-1",
      trace_id: "trace-1",
      priority: "critical",
      interruptible: false,
    });
  });

  test.each(["low", "normal", "high", "critical"])("priority %s is accepted", async (priority) => {
    const { id, alice } = await room();
    expect((await sendMessage(t, alice, id, { priority })).priority).toBe(priority);
  });

  test.each(["urgent", "HIGH", "", 1, null])("priority %p is 400", async (priority) => {
    const { id, alice } = await room();
    expectError(await t.request("POST", messagesPath(id), { as: alice, body: { content: "x", priority } }), 400, "invalid_input");
  });

  test("content types: JSON must parse; other media types and short tokens are stored as given", async () => {
    const { id, alice } = await room();
    const json = await sendMessage(t, alice, id, { content: '{"a":[1,2]}', contentType: "application/json" });
    expect(json.content_type).toBe("application/json");
    expect(JSON.parse(json.content)).toEqual({ a: [1, 2] });
    expect((await sendMessage(t, alice, id, { content: "{}", contentType: "application/json; charset=utf-8" })).content_type).toBe(
      "application/json; charset=utf-8",
    );
    expect((await sendMessage(t, alice, id, { contentType: "application/vnd.acme.card+json", content: "{}" })).content_type).toBe(
      "application/vnd.acme.card+json",
    );
    expect((await sendMessage(t, alice, id, { contentType: "markdown" })).content_type).toBe("markdown");
    expect((await sendMessage(t, alice, id, { contentType: "image/png" })).content_type).toBe("image/png");

    expectError(await t.request("POST", messagesPath(id), { as: alice, body: { content: "{nope", contentType: "application/json" } }), 400, "invalid_json_content");
    expectError(await t.request("POST", messagesPath(id), { as: alice, body: { content: "x", contentType: "Application/JSON" } }), 400, "invalid_json_content");
    for (const reserved of ["event", "EVENT", " event "]) {
      expectError(await t.request("POST", messagesPath(id), { as: alice, body: { content: "x", contentType: reserved } }), 400, "reserved_content_type");
    }
    for (const bad of ["not a type", "/json", "text/", "a/b/c", "x".repeat(70)]) {
      expectError(await t.request("POST", messagesPath(id), { as: alice, body: { content: "x", contentType: bad } }), 400, "invalid_content_type");
    }
  });

  test("empty content is 400; content or metadata beyond the limit is 413", async () => {
    const { id, alice } = await room();
    for (const content of ["", "   ", "\n\t"]) {
      expectError(await t.request("POST", messagesPath(id), { as: alice, body: { content } }), 400, "empty_content");
    }
    expectError(await t.request("POST", messagesPath(id), { as: alice, body: {} }), 400, "invalid_input");
    const limit = t.config.maxMessageBytes;
    expectStatus(await t.request("POST", messagesPath(id), { as: alice, body: { content: "x".repeat(limit) } }), 201);
    expectError(await t.request("POST", messagesPath(id), { as: alice, body: { content: "x".repeat(limit + 1) } }), 413, "too_large");
    // Measured in bytes: multi-byte characters count for their UTF-8 size.
    expectError(await t.request("POST", messagesPath(id), { as: alice, body: { content: "é".repeat(limit / 2 + 1) } }), 413, "too_large");
    expectError(await t.request("POST", messagesPath(id), { as: alice, body: { content: "x", metadata: { v: "x".repeat(limit) } } }), 413, "too_large");
  });

  test("replyTo and preemptedBy must name a message of the same conversation (400 otherwise)", async () => {
    const { id, alice } = await room();
    const other = await room();
    const elsewhere = await sendMessage(t, other.alice, other.id);
    const here = await sendMessage(t, alice, id);
    for (const field of ["replyTo", "preemptedBy"]) {
      expectError(await t.request("POST", messagesPath(id), { as: alice, body: { content: "x", [field]: elsewhere.id } }), 400, "invalid_reference");
      expectError(await t.request("POST", messagesPath(id), { as: alice, body: { content: "x", [field]: UNKNOWN_ID } }), 400, "invalid_reference");
      expectError(await t.request("POST", messagesPath(id), { as: alice, body: { content: "x", [field]: "not-a-uuid" } }), 400, "invalid_input");
    }
    // A refused send takes no sequence.
    expect((await sendMessage(t, alice, id, { replyTo: here.id })).sequence).toBe(here.sequence + 1);
  });

  test("a client id sent again by the same sender returns the stored message (200) without a new sequence", async () => {
    const { id, alice } = await room();
    const clientId = crypto.randomUUID();
    const first = await t.request("POST", messagesPath(id), { as: alice, body: { id: clientId, content: "once" } });
    expectStatus(first, 201);
    expect(first.body.id).toBe(clientId);
    const replay = await t.request("POST", messagesPath(id), { as: alice, body: { id: clientId, content: "once, again" } });
    expectStatus(replay, 200);
    expect(replay.body).toEqual(first.body);
    const next = await sendMessage(t, alice, id);
    expect(next.sequence).toBe(first.body.sequence + 1);
    expect((await listMessages(t, alice, id)).map((m) => m.sequence)).toEqual([1, 2]);
  });

  test("the same client id from another sender or in another conversation is 409", async () => {
    const { id, alice, bob } = await room();
    const other = await createConversation(t, alice);
    const clientId = crypto.randomUUID();
    await sendMessage(t, alice, id, { id: clientId });
    expectError(await t.request("POST", messagesPath(id), { as: bob, body: { id: clientId, content: "mine" } }), 409, "duplicate_id");
    expectError(await t.request("POST", messagesPath(other.id), { as: alice, body: { id: clientId, content: "there" } }), 409, "duplicate_id");
    // Neither attempt used up a sequence.
    expect((await sendMessage(t, bob, id)).sequence).toBe(2);
    expect((await sendMessage(t, alice, other.id)).sequence).toBe(1);
  });

  test("scope headers are recorded on the message", async () => {
    const { id, alice } = await room();
    const res = await t.request("POST", messagesPath(id), {
      as: alice,
      body: { content: "record me", metadata: { kept: true } },
      headers: { "x-service-id": "billing-bot", "x-data-class": "pii", "x-policy-ref": "policy-7" },
    });
    expectStatus(res, 201);
    expect(res.body.metadata).toEqual({ kept: true, serviceId: "billing-bot" });
    expect(res.body.data_class).toBe("pii");
    expect(res.body.policy_ref).toBe("policy-7");
    const [stored] = await listMessages(t, alice, id);
    expect(stored).toMatchObject({ data_class: "pii", policy_ref: "policy-7", metadata: { serviceId: "billing-bot" } });
    expectError(
      await t.request("POST", messagesPath(id), { as: alice, body: { content: "x" }, headers: { "x-data-class": "classified" } }),
      400,
      "invalid_header",
    );
  });

  test("a stranger, someone from another org, and a system admin who does not participate are 403", async () => {
    const { id } = await room();
    const outsider = await t.principal({ orgs: [await t.org()] });
    const superAdmin = await t.principal({ superAdmin: true });
    const { stranger } = await room();
    for (const who of [stranger, outsider, superAdmin]) {
      expectError(await t.request("POST", messagesPath(id), { as: who, body: { content: "let me in" } }), 403, "not_participant");
    }
  });

  test("unknown and malformed conversations are 404; no credentials is 401", async () => {
    const { alice } = await room();
    expectError(await t.request("POST", messagesPath(UNKNOWN_ID), { as: alice, body: { content: "x" } }), 404);
    expectError(await t.request("POST", messagesPath("xyz"), { as: alice, body: { content: "x" } }), 404);
    expectError(await t.request("POST", messagesPath(UNKNOWN_ID), { body: { content: "x" } }), 401);
  });
});

describe("GET /api/conversations/:id/messages", () => {
  let ctx: Awaited<ReturnType<typeof room>>;
  let sent: Awaited<ReturnType<typeof sendMessage>>[];
  beforeAll(async () => {
    ctx = await room();
    sent = [];
    for (let i = 1; i <= 12; i++) {
      sent.push(await sendMessage(t, i % 2 ? ctx.alice : ctx.bob, ctx.id, { content: `m${i}` }));
      // Distinct milliseconds, so that time cursors separate every message.
      await Bun.sleep(3);
    }
  });

  const seqs = (list: { sequence: number }[]) => list.map((m) => m.sequence);
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  test("ascending sequence; without cursors the newest `limit`", async () => {
    expect(seqs(await listMessages(t, ctx.alice, ctx.id))).toEqual(range(1, 12));
    expect(seqs(await listMessages(t, ctx.alice, ctx.id, "limit=5"))).toEqual(range(8, 12));
  });

  test("before a sequence: the newest page below the cursor, still ascending", async () => {
    expect(seqs(await listMessages(t, ctx.alice, ctx.id, "before=9&limit=3"))).toEqual([6, 7, 8]);
    expect(seqs(await listMessages(t, ctx.alice, ctx.id, "before=3&limit=10"))).toEqual([1, 2]);
    expect(seqs(await listMessages(t, ctx.alice, ctx.id, "before=1"))).toEqual([]);
    expect(seqs(await listMessages(t, ctx.alice, ctx.id, "before=9999999999&limit=2"))).toEqual([11, 12]);
  });

  test("after a sequence: the oldest page above it; both cursors bound a window", async () => {
    expect(seqs(await listMessages(t, ctx.alice, ctx.id, "after=3&limit=2"))).toEqual([4, 5]);
    expect(seqs(await listMessages(t, ctx.alice, ctx.id, "after=10"))).toEqual([11, 12]);
    expect(seqs(await listMessages(t, ctx.alice, ctx.id, "after=12"))).toEqual([]);
    expect(seqs(await listMessages(t, ctx.alice, ctx.id, "after=2&before=9"))).toEqual(range(3, 8));
    expect(seqs(await listMessages(t, ctx.alice, ctx.id, "after=2&before=9&limit=2"))).toEqual([7, 8]);
  });

  test("ISO times work as cursors, a message's own created_at excluding it", async () => {
    const at = (n: number) => encodeURIComponent(sent[n - 1].created_at);
    expect(seqs(await listMessages(t, ctx.alice, ctx.id, `before=${at(5)}`))).toEqual(range(1, 4));
    expect(seqs(await listMessages(t, ctx.alice, ctx.id, `after=${at(9)}`))).toEqual([10, 11, 12]);
    expect(seqs(await listMessages(t, ctx.alice, ctx.id, `after=${at(3)}&limit=2`))).toEqual([4, 5]);
    expect(seqs(await listMessages(t, ctx.alice, ctx.id, `after=${at(2)}&before=${at(6)}`))).toEqual([3, 4, 5]);
    expect(seqs(await listMessages(t, ctx.alice, ctx.id, "after=2000-01-01&limit=1"))).toEqual([1]);
    expect(seqs(await listMessages(t, ctx.alice, ctx.id, "before=2000-01-01T00:00:00Z"))).toEqual([]);
  });

  test("limit bounds: 1..200, whole numbers", async () => {
    expect(seqs(await listMessages(t, ctx.alice, ctx.id, "limit=1"))).toEqual([12]);
    expect(seqs(await listMessages(t, ctx.alice, ctx.id, "limit=200"))).toEqual(range(1, 12));
    for (const limit of ["0", "201", "-1", "1.5", "abc", ""]) {
      expectError(await t.request("GET", messagesPath(ctx.id, `?limit=${limit}`), { as: ctx.alice }), 400, "invalid_input");
    }
  });

  test("malformed cursors are 400", async () => {
    for (const cursor of ["abc", "-1", "12345678901", "2024-13-45", "0000-01-01", "2024-01-01T25:00:00Z", "yesterday", "1e3"]) {
      expectError(await t.request("GET", messagesPath(ctx.id, `?before=${cursor}`), { as: ctx.alice }), 400);
      expectError(await t.request("GET", messagesPath(ctx.id, `?after=${cursor}`), { as: ctx.alice }), 400);
    }
  });

  test("reading marks last_read_at for the reader only", async () => {
    const { id, owner, alice, bob } = await room();
    await sendMessage(t, bob, id);
    const before = await participantsOf(t, owner, id);
    expect(before.find((p) => p.user_id === alice.id)?.last_read_at).toBeNull();
    const started = Date.now();
    await listMessages(t, alice, id);
    const after = await participantsOf(t, owner, id);
    const mark = after.find((p) => p.user_id === alice.id)?.last_read_at;
    expect(mark).not.toBeNull();
    expect(Date.parse(mark!)).toBeGreaterThanOrEqual(started - 1000);
    expect(after.find((p) => p.user_id === bob.id)?.last_read_at).toBeNull();
  });

  test("system admins in scope read without a read mark; strangers and other orgs are 403", async () => {
    const { id, org, owner, stranger } = await room();
    await sendMessage(t, owner, id);
    const orgAdmin = await t.principal({ orgs: [org], entitlements: ["messaging:admin"] });
    expect(await listMessages(t, orgAdmin, id)).toHaveLength(1);
    expect((await participantsOf(t, owner, id)).map((p) => p.user_id)).not.toContain(orgAdmin.id);
    const foreignAdmin = await t.principal({ orgs: [await t.org()], entitlements: ["messaging:admin"] });
    expectError(await t.request("GET", messagesPath(id), { as: foreignAdmin }), 403, "not_participant");
    expectError(await t.request("GET", messagesPath(id), { as: stranger }), 403, "not_participant");
  });

  test("unknown and malformed conversations are 404; no credentials is 401", async () => {
    expectError(await t.request("GET", messagesPath(UNKNOWN_ID), { as: ctx.alice }), 404);
    expectError(await t.request("GET", messagesPath("1234"), { as: ctx.alice }), 404);
    expectError(await t.request("GET", messagesPath(ctx.id)), 401);
  });
});

describe("PATCH /api/conversations/:id/messages/:mid (edit)", () => {
  test("the sender edits; each edit keeps the previous version", async () => {
    const { id, alice, bob } = await room();
    const original = await sendMessage(t, alice, id, { content: "v1" });
    const edit1 = await t.request("PATCH", messagesPath(id, `/${original.id}`), { as: alice, body: { content: "v2" } });
    expectStatus(edit1, 200);
    expect(edit1.body).toMatchObject({ id: original.id, content: "v2", version: 2, sequence: original.sequence, content_type: "text/plain" });
    expect(edit1.body.updated_at).not.toBeNull();
    const edit2 = await t.request("PATCH", messagesPath(id, `/${original.id}`), {
      as: alice,
      body: { content: '{"v":3}', contentType: "application/json" },
    });
    expect(edit2.body).toMatchObject({ content: '{"v":3}', content_type: "application/json", version: 3 });

    // Any participant reads the history.
    const history = await t.request("GET", messagesPath(id, `/${original.id}/history`), { as: bob });
    expectStatus(history, 200);
    expect(history.body.message_id).toBe(original.id);
    expect(history.body.versions.map((v: any) => [v.version, v.content, v.content_type, v.edited_by, v.current])).toEqual([
      [1, "v1", "text/plain", alice.id, false],
      [2, "v2", "text/plain", alice.id, false],
      [3, '{"v":3}', "application/json", alice.id, true],
    ]);
    for (const v of history.body.versions) expect(Date.parse(v.created_at)).not.toBeNaN();
    expect(history.body.versions[0].created_at).toBe(original.created_at);

    const listed = (await listMessages(t, bob, id)).find((m) => m.id === original.id)!;
    expect(listed).toMatchObject({ content: '{"v":3}', version: 3 });
  });

  test("someone else's message cannot be edited, not even by the owner (403)", async () => {
    const { id, owner, admin, alice, bob, stranger } = await room();
    const message = await sendMessage(t, alice, id);
    for (const who of [bob, admin, owner]) {
      expectError(await t.request("PATCH", messagesPath(id, `/${message.id}`), { as: who, body: { content: "hijack" } }), 403, "not_sender");
    }
    expectError(await t.request("PATCH", messagesPath(id, `/${message.id}`), { as: stranger, body: { content: "hijack" } }), 403, "not_participant");
    const superAdmin = await t.principal({ superAdmin: true });
    expectError(await t.request("PATCH", messagesPath(id, `/${message.id}`), { as: superAdmin, body: { content: "hijack" } }), 403);
  });

  test("a sender who left can no longer edit (403)", async () => {
    const { id, alice } = await room();
    const message = await sendMessage(t, alice, id);
    expectStatus(await t.request("POST", `/api/conversations/${id}/leave`, { as: alice }), 204);
    expectError(await t.request("PATCH", messagesPath(id, `/${message.id}`), { as: alice, body: { content: "late" } }), 403, "not_participant");
  });

  test("a deleted message cannot be edited (409); a control event cannot be edited (403)", async () => {
    const { id, alice } = await room();
    const message = await sendMessage(t, alice, id);
    expectStatus(await t.request("DELETE", messagesPath(id, `/${message.id}`), { as: alice }), 204);
    expectError(await t.request("PATCH", messagesPath(id, `/${message.id}`), { as: alice, body: { content: "undead" } }), 409, "message_deleted");

    const operator = await t.principal({ entitlements: ["cap:messaging.interrupt"] });
    const org = await room();
    expectStatus(await t.request("POST", `/api/conversations/${org.id}/participants`, { as: org.owner, body: { userId: operator.id } }), 201);
    const control = await t.request("POST", `/api/conversations/${org.id}/control`, { as: operator, body: { event: "stream.pause" } });
    expectStatus(control, 201);
    expectError(
      await t.request("PATCH", messagesPath(org.id, `/${control.body.id}`), { as: operator, body: { content: "changed" } }),
      403,
      "not_editable",
    );
  });

  test("invalid edits are 400, oversized 413", async () => {
    const { id, alice } = await room();
    const message = await sendMessage(t, alice, id);
    const edit = (body: unknown) => t.request("PATCH", messagesPath(id, `/${message.id}`), { as: alice, body });
    expectError(await edit({ content: "" }), 400, "empty_content");
    expectError(await edit({}), 400, "invalid_input");
    expectError(await edit({ content: "{", contentType: "application/json" }), 400, "invalid_json_content");
    expectError(await edit({ content: "x", contentType: "event" }), 400, "reserved_content_type");
    expectError(await edit({ content: "x".repeat(t.config.maxMessageBytes + 1) }), 413, "too_large");
    // Nothing of that changed the message.
    const [stored] = await listMessages(t, alice, id);
    expect(stored).toMatchObject({ content: "hello", version: 1 });
  });

  test("a message of another conversation, unknown or malformed ids are 404; no credentials 401", async () => {
    const { id, alice } = await room();
    const mine = await createConversation(t, alice);
    const elsewhere = await sendMessage(t, alice, mine.id);
    expectError(await t.request("PATCH", messagesPath(id, `/${elsewhere.id}`), { as: alice, body: { content: "x" } }), 404);
    expectError(await t.request("PATCH", messagesPath(id, `/${UNKNOWN_ID}`), { as: alice, body: { content: "x" } }), 404);
    expectError(await t.request("PATCH", messagesPath(id, "/bad-id"), { as: alice, body: { content: "x" } }), 404);
    expectError(await t.request("PATCH", messagesPath("bad-id", `/${elsewhere.id}`), { as: alice, body: { content: "x" } }), 404);
    expectError(await t.request("PATCH", messagesPath(mine.id, `/${elsewhere.id}`), { body: { content: "x" } }), 401);
  });
});

describe("DELETE /api/conversations/:id/messages/:mid (soft delete)", () => {
  test("the sender deletes: lists leave it out, sequences stay", async () => {
    const { id, alice, bob } = await room();
    const [m1, m2, m3] = [await sendMessage(t, alice, id), await sendMessage(t, alice, id), await sendMessage(t, bob, id)];
    const res = await t.request("DELETE", messagesPath(id, `/${m2.id}`), { as: alice });
    expectStatus(res, 204);
    const list = await listMessages(t, bob, id);
    expect(list.map((m) => m.id)).toEqual([m1.id, m3.id]);
    expect(list.map((m) => m.sequence)).toEqual([1, 3]);
    expect((await sendMessage(t, bob, id)).sequence).toBe(4);
    expectError(await t.request("GET", messagesPath(id, `/${m2.id}/history`), { as: alice }), 404);
    expectError(await t.request("DELETE", messagesPath(id, `/${m2.id}`), { as: alice }), 404);
  });

  test("the owner and a conversation admin delete others' messages; a member cannot (403)", async () => {
    const { id, owner, admin, alice, bob, stranger } = await room();
    const [a, b, c] = [await sendMessage(t, alice, id), await sendMessage(t, alice, id), await sendMessage(t, alice, id)];
    expectError(await t.request("DELETE", messagesPath(id, `/${a.id}`), { as: bob }), 403, "not_allowed");
    expectError(await t.request("DELETE", messagesPath(id, `/${a.id}`), { as: stranger }), 403, "not_participant");
    expectStatus(await t.request("DELETE", messagesPath(id, `/${a.id}`), { as: owner }), 204);
    expectStatus(await t.request("DELETE", messagesPath(id, `/${b.id}`), { as: admin }), 204);
    expect((await listMessages(t, alice, id)).map((m) => m.id)).toEqual([c.id]);
  });

  test("unknown, malformed or foreign message ids are 404; no credentials 401", async () => {
    const { id, alice } = await room();
    const other = await createConversation(t, alice);
    const elsewhere = await sendMessage(t, alice, other.id);
    expectError(await t.request("DELETE", messagesPath(id, `/${elsewhere.id}`), { as: alice }), 404);
    expectError(await t.request("DELETE", messagesPath(id, `/${UNKNOWN_ID}`), { as: alice }), 404);
    expectError(await t.request("DELETE", messagesPath(id, "/0"), { as: alice }), 404);
    expectError(await t.request("DELETE", messagesPath(other.id, `/${elsewhere.id}`)), 401);
  });
});

describe("GET /api/conversations/:id/messages/:mid/history", () => {
  test("an unedited message has one current version; strangers are 403; unknown 404; no credentials 401", async () => {
    const { id, alice, stranger } = await room();
    const message = await sendMessage(t, alice, id, { content: "only" });
    const res = await t.request("GET", messagesPath(id, `/${message.id}/history`), { as: alice });
    expectStatus(res, 200);
    expect(res.body.versions).toEqual([
      { version: 1, content: "only", content_type: "text/plain", edited_by: alice.id, acted_by: null, created_at: message.created_at, current: true },
    ]);
    expectError(await t.request("GET", messagesPath(id, `/${message.id}/history`), { as: stranger }), 403, "not_participant");
    expectError(await t.request("GET", messagesPath(id, `/${UNKNOWN_ID}/history`), { as: alice }), 404);
    expectError(await t.request("GET", messagesPath(UNKNOWN_ID, `/${message.id}/history`), { as: alice }), 404);
    expectError(await t.request("GET", messagesPath(id, `/${message.id}/history`)), 401);
  });
});

