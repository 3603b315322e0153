/**
 * Coalesced sends against the real databases: hundreds of concurrent senders over REST and WebSocket,
 * into one conversation and into many, written many per transaction. Every conversation counts exactly
 * 1..N, every caller gets exactly one answer, a socket's sends keep frame order, domain events come in
 * sequence order, and bad sends inside a batch get their own errors without disturbing the others.
 * Runs on the embedded database and, with TEST_DATABASE_URL, on PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Database } from "../../src/db/client";
import type { DomainEvent } from "../../src/domain/domain-events";
import { sendBatchRetries, sendBatchStatements, sendBatches } from "../../src/metrics/registry";
import { SEND_MANY_STATEMENT } from "../../src/modules/messages/send-statement";
import { openSocket, type RawSocket } from "../realtime/helpers";
import { startTestServer, type TestPrincipal, type TestServer } from "../support/server";
import { useEndToEndTimeout } from "../support/timeout";
import { createConversation, expectError, expectStatus, UNKNOWN_ID, everyMessage } from "./fixtures";

useEndToEndTimeout();

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.stop());

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const post = (as: TestPrincipal, path: string, body?: unknown) => t.request("POST", path, { as, body });
const send = (as: TestPrincipal, conversationId: string, body: Record<string, unknown>) => post(as, `/api/conversations/${conversationId}/messages`, { content: "x", ...body });

const stored = (as: TestPrincipal, conversationId: string) => everyMessage(t, as, conversationId);

/** `message.created` events as the bus emits them, in emit order. */
function recordCreated(): { events: { conversationId: string; sequence: number }[]; stop: () => void } {
  const events: { conversationId: string; sequence: number }[] = [];
  const stop = t.server.services.domainEvents.on(
    "test: created order",
    (event: DomainEvent) => {
      if (event.type === "message.created") events.push({ conversationId: event.conversationId, sequence: event.message.sequence });
    },
    { inline: true },
  );
  return { events, stop };
}

/** Sends written per transaction since `before` (batches counted by the batcher). */
const batching = () => ({ batches: sendBatches.value, statements: sendBatchStatements.value });

/** Sends `count` message:send frames without waiting, then waits for every ack. */
async function pipelined(socket: RawSocket, conversationIds: string[], count: number, tag: string) {
  for (const i of range(count)) {
    socket.send({ event: "message:send", data: { conversationId: conversationIds[i % conversationIds.length], content: `${tag} ${i}` }, ack: `${tag}:${i}` });
  }
  const deadline = Date.now() + 30_000;
  while (socket.count((f) => f.event === "ack" && String(f.ack).startsWith(`${tag}:`)) < count) {
    if (Date.now() > deadline) throw new Error(`${tag}: acks missing`);
    await Bun.sleep(10);
  }
  return socket.frames.filter((f) => f.event === "ack" && String(f.ack).startsWith(`${tag}:`));
}

/** Holds the database's statements until released, so that what is submitted meanwhile forms one batch. */
function plugDatabase(database: Database) {
  const original = { query: database.query, batch: database.batch };
  const held: (() => void)[] = [];
  database.query = async <T>(text: string, params: unknown[]) => {
    await new Promise<void>((resolve) => held.push(resolve));
    return original.query.call(database, text, params) as Promise<T[]>;
  };
  return {
    held: () => held.length,
    release() {
      database.query = original.query;
      database.batch = original.batch;
      for (const resume of held.splice(0)) resume();
    },
  };
}

async function crowd(agents = 4, people = 8) {
  const owner = await t.principal();
  const users = [owner, ...(await Promise.all(range(people - 1).map(() => t.principal())))];
  const services = await Promise.all(range(agents).map(() => t.principal({ type: "agent" })));
  return { owner, users, services, senders: [...users, ...services] };
}

describe("hundreds of concurrent senders", () => {
  test("into one conversation over REST and WebSocket: sequences exactly 1..N, one answer each, frame order kept, events in sequence order", async () => {
    const { owner, users, services, senders } = await crowd();
    const { id } = await createConversation(t, owner, { members: senders.slice(1) });
    const sockets = await Promise.all(services.map((s) => openSocket(t, s)));
    const created = recordCreated();
    const before = batching();
    const restTotal = 300;
    const perSocket = 50;
    const [rest, ...acks] = await Promise.all([
      Promise.all(range(restTotal).map((n) => send(users[n % users.length], id, { content: `rest ${n}` }))),
      ...sockets.map((socket, i) => pipelined(socket, [id], perSocket, `ws${i}`)),
    ]);
    created.stop();
    const total = restTotal + perSocket * sockets.length;

    expect(rest.filter((r) => r.status !== 201).map((r) => `${r.status} ${JSON.stringify(r.body)}`)).toEqual([]);
    for (const socketAcks of acks) {
      expect(socketAcks).toHaveLength(perSocket);
      expect(socketAcks.every((f) => f.ok === true)).toBe(true);
      // A socket's sends into one conversation: sequences in frame order.
      const inFrameOrder = range(perSocket).map((i) => socketAcks.find((f) => String(f.ack).endsWith(`:${i}`))!.data.sequence);
      expect(inFrameOrder).toEqual([...inFrameOrder].sort((a, b) => a - b));
    }
    const messages = await stored(owner, id);
    expect(messages.map((m) => m.sequence)).toEqual(range(total).map((n) => n + 1));
    expect(new Set(messages.map((m) => m.id)).size).toBe(total);
    const answered = [...rest.map((r) => r.body.id), ...acks.flat().map((f) => f.data.id)];
    expect(answered.sort()).toEqual(messages.map((m) => m.id).sort());
    // Announced once each, in sequence order.
    const mine = created.events.filter((e) => e.conversationId === id).map((e) => e.sequence);
    expect(mine).toEqual(range(total).map((n) => n + 1));
    // Many sends shared a commit.
    const after = batching();
    expect(after.statements - before.statements).toBeGreaterThanOrEqual(total);
    expect(after.batches - before.batches).toBeLessThan(total);
    for (const socket of sockets) socket.close();
  });

  test("into many conversations at once: each counts 1..N on its own, events in sequence order per conversation", async () => {
    const { owner, users, services, senders } = await crowd(3, 5);
    const conversations = (await Promise.all(range(20).map(() => createConversation(t, owner, { members: senders.slice(1) })))).map((c) => c.id);
    const sockets = await Promise.all(services.map((s) => openSocket(t, s)));
    const created = recordCreated();
    const restPerConversation = 12;
    const [rest, ...acks] = await Promise.all([
      Promise.all(conversations.flatMap((id) => range(restPerConversation).map((n) => send(users[n % users.length], id, { content: `rest ${n}` })))),
      // Each socket spreads 60 frames over the 20 conversations: 3 into each.
      ...sockets.map((socket, i) => pipelined(socket, conversations, 60, `many${i}`)),
    ]);
    created.stop();
    expect(rest.every((r) => r.status === 201)).toBe(true);
    expect(acks.flat().every((f) => f.ok === true)).toBe(true);
    const perConversation = restPerConversation + 3 * sockets.length;
    for (const id of conversations) {
      const messages = await stored(owner, id);
      expect(messages.map((m) => m.sequence)).toEqual(range(perConversation).map((n) => n + 1));
      expect(created.events.filter((e) => e.conversationId === id).map((e) => e.sequence)).toEqual(range(perConversation).map((n) => n + 1));
    }
    for (const socket of sockets) socket.close();
  });
});

describe("bad sends inside a batch", () => {
  test("replays, foreign client ids, strangers, bad replies and runs paused or ended get their own answers; the good ones 1..N", async () => {
    const { owner, users, services, senders } = await crowd(2, 4);
    const agent = services[0];
    const other = services[1];
    const { id } = await createConversation(t, owner, { members: senders.slice(1) });
    const elsewhere = await createConversation(t, owner);
    const foreign = await send(owner, elsewhere.id, { content: "elsewhere" });
    expectStatus(foreign, 201);
    const stranger = await t.principal();
    const earlier = await send(owner, id, { id: crypto.randomUUID(), content: "earlier" });
    expectStatus(earlier, 201);
    const paused = (await post(agent, `/api/conversations/${id}/runs`, {})).body.id as string;
    const ended = (await post(agent, `/api/conversations/${id}/runs`, {})).body.id as string;
    const active = (await post(agent, `/api/conversations/${id}/runs`, {})).body.id as string;
    expectStatus(await post(agent, `/api/conversations/${id}/control`, { event: "stream.pause", runId: paused }), 201);
    expectStatus(await post(owner, `/api/conversations/${id}/control`, { event: "stream.cancel", runId: ended }), 201);
    const before = (await stored(owner, id)).length;

    const reused = crypto.randomUUID();
    const kinds: { kind: string; expect: [number, string?, Record<string, unknown>?]; run: () => ReturnType<typeof send> }[] = [];
    for (const n of range(40)) kinds.push({ kind: "good", expect: [201], run: () => send(users[n % users.length], id, { content: `good ${n}` }) });
    for (const n of range(5)) kinds.push({ kind: "into active run", expect: [201], run: () => send(agent, id, { runId: active, content: `run ${n}` }) });
    kinds.push({ kind: "replay", expect: [200], run: () => send(owner, id, { id: earlier.body.id, content: "earlier" }) });
    kinds.push({ kind: "id of another sender", expect: [409, "duplicate_id"], run: () => send(users[1], id, { id: earlier.body.id, content: "mine?" }) });
    kinds.push({ kind: "id of another conversation", expect: [409, "duplicate_id"], run: () => send(owner, id, { id: foreign.body.id, content: "moved?" }) });
    kinds.push({ kind: "stranger", expect: [403, "not_participant"], run: () => send(stranger, id, { content: "let me in" }) });
    kinds.push({ kind: "reply elsewhere", expect: [400, "invalid_reference"], run: () => send(users[2], id, { replyTo: foreign.body.id }) });
    kinds.push({ kind: "reply to nothing", expect: [400, "invalid_reference"], run: () => send(users[2], id, { replyTo: UNKNOWN_ID }) });
    kinds.push({ kind: "paused run", expect: [409, "run_paused", { state: "paused" }], run: () => send(agent, id, { runId: paused }) });
    kinds.push({ kind: "ended run", expect: [409, "run_ended", { state: "cancelled" }], run: () => send(agent, id, { runId: ended }) });
    kinds.push({ kind: "someone else's run", expect: [409, "not_run_owner", { state: "active" }], run: () => send(other, id, { runId: active }) });
    // The same new client id twice: one stores it, the other is its replay.
    kinds.push({ kind: "same id twice", expect: [0], run: () => send(owner, id, { id: reused, content: "twice" }) });
    kinds.push({ kind: "same id twice", expect: [0], run: () => send(owner, id, { id: reused, content: "twice" }) });
    kinds.sort(() => Math.random() - 0.5);

    // Everything reaches the batcher while a send is held: the next batch carries all of them together.
    const batchesBefore = batching();
    const { database } = t.server.services;
    const written: string[][] = [];
    const batch = database.batch;
    database.batch = <T>(statements: readonly { text: string; params: unknown[] }[]) => {
      written.push(statements.map((s) => s.text));
      return batch.call(database, statements) as Promise<T[][]>;
    };
    const plug = plugDatabase(database);
    const plugged = send(owner, id, { content: "plug" });
    let results: { kind: string; expect: [number, string?, Record<string, unknown>?]; res: Awaited<ReturnType<typeof send>> }[];
    try {
      const answers = kinds.map(async (k) => ({ kind: k.kind, expect: k.expect, res: await k.run() }));
      const deadline = Date.now() + 10_000;
      while (t.server.services.sends.waiting < kinds.length && Date.now() < deadline) await Bun.sleep(5);
      expect(t.server.services.sends.waiting).toBe(kinds.length);
      plug.release();
      results = await Promise.all(answers);
    } finally {
      plug.release();
    }
    database.batch = batch;
    expectStatus(await plugged, 201);
    // One batch for all of them (more only if something failed and was written again): one transaction
    // where the plain sends went as statements of many rows, and the others one statement each.
    expect(sendBatches.value - batchesBefore.batches).toBe(2);
    expect(written).toHaveLength(1);
    expect(written[0].filter((text) => text === SEND_MANY_STATEMENT).length).toBeGreaterThanOrEqual(1);
    expect(written[0].length).toBeLessThan(kinds.length);

    for (const { kind, expect: [status, code, details], res } of results.filter((r) => r.kind !== "same id twice")) {
      if (code) expectError(res, status, code, details);
      else if (res.status !== status) throw new Error(`${kind}: expected ${status}, got ${res.status} ${JSON.stringify(res.body)}`);
    }
    const twice = results.filter((r) => r.kind === "same id twice").map((r) => r.res);
    expect(twice.map((r) => r.status).sort()).toEqual([200, 201]);
    expect(twice[0].body.sequence).toBe(twice[1].body.sequence);

    const messages = await stored(owner, id);
    const added = 1 + 40 + 5 + 1;
    expect(messages.map((m) => m.sequence)).toEqual(range(before + added).map((n) => n + 1));
    expect(new Set(messages.map((m) => m.id)).size).toBe(messages.length);
  });

  test("a send and a reply to it, pipelined on one socket, land in the same batch and both succeed", async () => {
    const { owner, services, senders } = await crowd(1, 1);
    const { id } = await createConversation(t, owner, { members: senders.slice(1) });
    const socket = await openSocket(t, services[0]);
    const plug = plugDatabase(t.server.services.database);
    const plugged = send(owner, id, { content: "plug" });
    try {
      const parent = crypto.randomUUID();
      socket.send({ event: "message:send", data: { conversationId: id, id: parent, content: "question" }, ack: "parent" });
      socket.send({ event: "message:send", data: { conversationId: id, replyTo: parent, content: "follow-up" }, ack: "reply" });
      const deadline = Date.now() + 10_000;
      while (t.server.services.sends.waiting < 2 && Date.now() < deadline) await Bun.sleep(5);
      plug.release();
      const reply = await socket.next((f) => f.event === "ack" && f.ack === "reply", 10_000);
      const first = await socket.next((f) => f.event === "ack" && f.ack === "parent", 10_000);
      expect(first.ok).toBe(true);
      expect(reply.ok).toBe(true);
      expect(reply.data.reply_to).toBe(parent);
      expect(reply.data.sequence).toBe(first.data.sequence + 1);
    } finally {
      plug.release();
    }
    expectStatus(await plugged, 201);
    socket.close();
  });

  test("a batch that fails as a whole is written again one send at a time: nothing lost, nothing doubled, no gap", async () => {
    const { owner, users } = await crowd(0, 4);
    const { id } = await createConversation(t, owner, { members: users.slice(1) });
    const { database } = t.server.services;
    const original = { batch: database.batch, query: database.query };
    let failures = 0;
    const deadlock = () => {
      failures++;
      return Promise.reject(Object.assign(new Error("deadlock detected"), { code: "40P01" }));
    };
    // Every write of more than one send fails: a transaction of several statements, or one statement of many rows.
    database.batch = deadlock;
    database.query = <T>(text: string, params: unknown[]) => (text === SEND_MANY_STATEMENT ? deadlock() : (original.query.call(database, text, params) as Promise<T[]>));
    const retriesBefore = sendBatchRetries.value;
    const parent = await send(users[0], id, { content: "parent" });
    try {
      const results = await Promise.all(
        range(60).map((n) => send(users[n % users.length], id, { content: `r${n}`, ...(n % 3 === 0 && { replyTo: parent.body.id }) })),
      );
      expect(results.every((r) => r.status === 201)).toBe(true);
    } finally {
      database.batch = original.batch;
      database.query = original.query;
    }
    expect(failures).toBeGreaterThan(0);
    expect(sendBatchRetries.value - retriesBefore).toBe(failures);
    const messages = await stored(owner, id);
    expect(messages.map((m) => m.sequence)).toEqual(range(61).map((n) => n + 1));
    expect(new Set(messages.map((m) => m.content)).size).toBe(61);
  });

  test("a lone send is written alone, at once", async () => {
    const { owner } = await crowd(0, 1);
    const { id } = await createConversation(t, owner);
    const before = batching();
    for (const n of range(5)) expectStatus(await send(owner, id, { content: `${n}` }), 201);
    const after = batching();
    expect(after.batches - before.batches).toBe(5);
    expect(after.statements - before.statements).toBe(5);
  });
});
