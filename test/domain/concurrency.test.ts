/**
 * Sequences under concurrency: hundreds of sends at once into one conversation, from several principals
 * (sessions and API keys) over many connections, with client-id replays, refused sends and control events
 * mixed in, must leave sequences 1..N with no gap and no duplicate. Also concurrent joins and adds of the
 * same principal. Runs on the embedded database and, with TEST_DATABASE_URL, on PostgreSQL with a pool.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestServer, type TestPrincipal, type TestServer } from "../support/server";
import { UNKNOWN_ID, createConversation, expectStatus, everyMessage } from "./fixtures";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.stop());

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

const allMessages = (as: TestPrincipal, conversationId: string) => everyMessage(t, as, conversationId);

/** Four users (sessions) and four agents (API keys) in one group conversation. */
async function crowd() {
  const org = await t.org();
  const owner = await t.principal({ orgs: [org] });
  const senders = [owner];
  for (let i = 0; i < 3; i++) senders.push(await t.principal({ orgs: [org] }));
  for (let i = 0; i < 4; i++) senders.push(await t.principal({ type: "agent", orgs: [org], entitlements: ["cap:messaging.interrupt"] }));
  const { id } = await createConversation(t, owner, { orgId: org, members: senders.slice(1) });
  return { org, id, owner, senders };
}

const post = (as: TestPrincipal, path: string, body?: unknown) => t.request("POST", path, { as, body });

describe("sequences under concurrent sends", () => {
  test("400 sends at once into one conversation from 8 principals: sequences are exactly 1..400", async () => {
    const { id, owner, senders } = await crowd();
    const total = 400;
    const results = await Promise.all(
      range(total).map((n) => post(senders[n % senders.length], `/api/conversations/${id}/messages`, { content: `message ${n}` })),
    );
    const failed = results.filter((r) => r.status !== 201).map((r) => `${r.status} ${JSON.stringify(r.body)}`);
    expect(failed).toEqual([]);
    expect(results.map((r) => r.body.sequence).sort((a, b) => a - b)).toEqual(range(total));

    const stored = await allMessages(owner, id);
    expect(stored.map((m) => m.sequence)).toEqual(range(total));
    expect(new Set(stored.map((m) => m.id)).size).toBe(total);
    expect(stored.map((m) => m.content).sort()).toEqual(range(total).map((n) => `message ${n}`).sort());
    // Each principal's own messages keep the order in which the database accepted them.
    for (const sender of senders) {
      const mine = stored.filter((m) => m.sender_id === sender.id);
      expect(mine).toHaveLength(total / senders.length);
    }
  });

  test("replays, refused sends and control events mixed in leave no gap and no duplicate", async () => {
    const { id, owner, senders } = await crowd();
    const other = await createConversation(t, owner);
    const foreign = await post(owner, `/api/conversations/${other.id}/messages`, { content: "elsewhere" });
    expectStatus(foreign, 201);

    const clientIds = range(50).map(() => crypto.randomUUID());
    const agents = senders.filter((_, i) => i >= 4);
    const requests: { kind: "plain" | "client" | "refused" | "control"; run: () => ReturnType<typeof post> }[] = [];
    for (const n of range(200)) {
      requests.push({ kind: "plain", run: () => post(senders[n % senders.length], `/api/conversations/${id}/messages`, { content: `p${n}` }) });
    }
    clientIds.forEach((clientId, i) => {
      const sender = senders[i % senders.length];
      // The same client id twice, at the same time: one insert, one replay.
      for (let copy = 0; copy < 2; copy++) {
        requests.push({ kind: "client", run: () => post(sender, `/api/conversations/${id}/messages`, { id: clientId, content: `c${i}` }) });
      }
    });
    for (const n of range(20)) {
      requests.push({ kind: "refused", run: () => post(senders[n % senders.length], `/api/conversations/${id}/messages`, { content: "x", replyTo: foreign.body.id }) });
      requests.push({ kind: "refused", run: () => post(senders[n % senders.length], `/api/conversations/${id}/messages`, { content: "x", replyTo: UNKNOWN_ID }) });
    }
    for (const n of range(20)) {
      requests.push({ kind: "control", run: () => post(agents[n % agents.length], `/api/conversations/${id}/control`, { event: n % 2 ? "stream.pause" : "stream.resume" }) });
    }
    // Interleave the kinds, then fire everything at once.
    requests.sort(() => Math.random() - 0.5);
    const results = await Promise.all(requests.map(async (r) => ({ kind: r.kind, res: await r.run() })));

    const statuses = (kind: string) => results.filter((r) => r.kind === kind).map((r) => r.res.status);
    expect(statuses("plain").every((s) => s === 201)).toBe(true);
    expect(statuses("control").every((s) => s === 201)).toBe(true);
    expect(statuses("refused").every((s) => s === 400)).toBe(true);
    const client = statuses("client");
    expect(client.filter((s) => s === 201)).toHaveLength(50);
    expect(client.filter((s) => s === 200)).toHaveLength(50);

    // Both answers for a client id are the same stored message.
    const byClientId = new Map<string, Set<number>>();
    for (const { kind, res } of results) {
      if (kind !== "client") continue;
      byClientId.set(res.body.id, (byClientId.get(res.body.id) ?? new Set()).add(res.body.sequence));
    }
    expect([...byClientId.keys()].sort()).toEqual([...clientIds].sort());
    expect([...byClientId.values()].every((sequences) => sequences.size === 1)).toBe(true);

    const expected = 200 + 50 + 20;
    const stored = await allMessages(owner, id);
    expect(stored.map((m) => m.sequence)).toEqual(range(expected));
    expect(new Set(stored.map((m) => m.id)).size).toBe(expected);
    expect(stored.filter((m) => m.content_type === "event")).toHaveLength(20);
  });

  test("ten conversations written at once each count from 1 on their own", async () => {
    const owner = await t.principal();
    const helper = await t.principal({ type: "agent" });
    const conversations = await Promise.all(range(10).map(() => createConversation(t, owner, { members: [helper] })));
    const results = await Promise.all(
      conversations.flatMap(({ id }) => range(30).map((n) => post(n % 2 ? owner : helper, `/api/conversations/${id}/messages`, { content: `${n}` }))),
    );
    expect(results.every((r) => r.status === 201)).toBe(true);
    for (const { id } of conversations) {
      expect((await allMessages(owner, id)).map((m) => m.sequence)).toEqual(range(30));
    }
  });
});

describe("membership under concurrency", () => {
  test("the same principal joining 20 times at once: one 201, the rest 200, one participant", async () => {
    const org = await t.org();
    const owner = await t.principal({ orgs: [org] });
    const joiner = await t.principal({ orgs: [org] });
    const { id } = await createConversation(t, owner, { orgId: org });
    const results = await Promise.all(range(20).map(() => post(joiner, `/api/conversations/${id}/join`)));
    expect(results.map((r) => r.status).sort((a, b) => a - b)).toEqual([200, ...Array(18).fill(200), 201]);
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
  });

  test("many principals joining at once all get in", async () => {
    const org = await t.org();
    const owner = await t.principal({ orgs: [org] });
    const joiners = await Promise.all(range(25).map(() => t.principal({ orgs: [org] })));
    const { id } = await createConversation(t, owner, { orgId: org });
    const results = await Promise.all(joiners.map((j) => post(j, `/api/conversations/${id}/join`)));
    expect(results.every((r) => r.status === 201)).toBe(true);
    const res = await t.request("GET", `/api/conversations/${id}`, { as: owner });
    expect(res.body.participants).toHaveLength(26);
  });

  test("adding the same principal 20 times at once: one 201, the rest 409", async () => {
    const owner = await t.principal();
    const admin = await t.principal({ superAdmin: true });
    const { id } = await createConversation(t, owner);
    const target = await t.principal();
    const results = await Promise.all(
      range(20).map((n) =>
        n % 2
          ? post(owner, `/api/conversations/${id}/participants`, { userId: target.id })
          : post(admin, `/api/admin/conversations/${id}/participants`, { userId: target.id, role: "member" }),
      ),
    );
    expect(results.map((r) => r.status).sort((a, b) => a - b)).toEqual([201, ...Array(19).fill(409)]);
  });

  test("a private conversation filled from both sides at once still holds two", async () => {
    const a = await t.principal();
    const admin = await t.principal({ superAdmin: true });
    const { id } = await createConversation(t, a, { type: "private" });
    const results = await Promise.all(
      range(10).map((n) => post(admin, `/api/admin/conversations/${id}/participants`, { userId: `candidate-${n}`, role: "member" })),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.status === 409)).toHaveLength(9);
    const res = await t.request("GET", `/api/conversations/${id}`, { as: a });
    expect(res.body.participants).toHaveLength(2);
  });
});
