/**
 * More conversations with work than an instance delivers to at once (WEBHOOK_CONCURRENCY): busy
 * conversations take turns with the others instead of holding the room for as long as they stay busy.
 */
import { afterAll, beforeAll, expect, test, setDefaultTimeout } from "bun:test";
import { sql } from "drizzle-orm";
import { startTestServer, type TestServer } from "../support/server";
import { startWebhookReceiver, type WebhookReceiver } from "../support/webhook-receiver";
import { groupConversation, restSend } from "../realtime/helpers";

setDefaultTimeout(60_000);

let server: TestServer;
let receiver: WebhookReceiver;
let endpointId: string | undefined;

beforeAll(async () => {
  server = await startTestServer({ WEBHOOK_ALLOW_PRIVATE: "true", WEBHOOK_POLL_MS: "1000", WEBHOOK_CONCURRENCY: "2" });
  receiver = startWebhookReceiver();
});
afterAll(async () => {
  receiver.stop();
  if (endpointId) await server.server.services.database.db.execute(sql`delete from webhook_endpoints where id = ${endpointId}`);
  await server.stop();
});

/** Keeps two conversations busy until the returned stop is called. */
function keepBusy(alice: Parameters<typeof restSend>[1], conversations: [string, string]) {
  let sending = true;
  const done = (async () => {
    for (let i = 0; sending; i++) {
      await Promise.all([restSend(server, alice, conversations[0], `a${i}`), restSend(server, alice, conversations[1], `b${i}`)]);
      await Bun.sleep(20);
    }
  })();
  return async () => {
    sending = false;
    await done;
  };
}

test("two conversations kept busy do not hold back the others' deliveries while they stay busy", async () => {
  const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
  const created = await server.request("POST", "/api/webhooks", { as: agent, body: { url: receiver.url, events: ["message.created"] } });
  expect(created.status).toBe(201);
  endpointId = created.body.id;
  const [busyA, busyB, quietA, quietB] = await Promise.all([1, 2, 3, 4].map(() => groupConversation(server, alice, [agent])));
  const contentOf = (conversationId: string) => receiver.of("message.created").filter((r) => r.payload.data.conversation_id === conversationId).map((r) => r.payload.data.content);

  // The two busy conversations take the room first, and keep sending.
  let sending = true;
  const busy = (async () => {
    for (let i = 0; sending; i++) {
      await Promise.all([restSend(server, alice, busyA, `a${i}`), restSend(server, alice, busyB, `b${i}`)]);
      await Bun.sleep(20);
    }
  })();
  await receiver.waitFor(4, (r) => r.payload.data?.conversation_id === busyA || r.payload.data?.conversation_id === busyB);
  await restSend(server, alice, quietA, "quiet a");
  await restSend(server, alice, quietB, "quiet b");
  try {
    // Well within the time the busy ones keep going: a turn is a second.
    await receiver.waitFor(2, (r) => r.payload.data?.conversation_id === quietA || r.payload.data?.conversation_id === quietB, 6000);
  } finally {
    sending = false;
    await busy;
  }
  expect(contentOf(quietA)).toEqual(["quiet a"]);
  expect(contentOf(quietB)).toEqual(["quiet b"]);
  // Every busy message still arrives, once and in order.
  const sent = (await server.request("GET", `/api/conversations/${busyA}/messages?limit=100`, { as: alice })).body;
  const count = (sent.messages ?? sent).length;
  await receiver.waitFor(count, (r) => r.payload.data?.conversation_id === busyA, 10_000);
  const delivered = contentOf(busyA);
  expect(delivered).toEqual(Array.from({ length: delivered.length }, (_, i) => `a${i}`));
});

test("while busy conversations fill the room, one written behind this instance's back (no hint) is found by the sweep", async () => {
  const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
  const created = await server.request("POST", "/api/webhooks", { as: agent, body: { url: receiver.url, events: ["message.created"] } });
  expect(created.status).toBe(201);
  const { db } = server.server.services.database;
  try {
    const [busyA, busyB, elsewhere] = await Promise.all([1, 2, 3].map(() => groupConversation(server, alice, [agent])));
    await restSend(server, alice, elsewhere, "its cursor exists");
    await receiver.waitFor(1, (r) => r.payload.data?.conversation_id === elsewhere);
    const stop = keepBusy(alice, [busyA, busyB]);
    try {
      await receiver.waitFor(4, (r) => r.payload.data?.conversation_id === busyA || r.payload.data?.conversation_id === busyB);
      // What another instance's send writes: the message, and nothing this instance hears of.
      const id = Bun.randomUUIDv7();
      await db.execute(sql`
        with next as (update conversations set last_sequence = last_sequence + 1, last_message_at = now() where id = ${elsewhere} returning last_sequence)
        insert into messages (id, conversation_id, sender_id, sender_type, content, sequence)
        select ${id}, ${elsewhere}, ${alice.id}, 'user', 'written elsewhere', last_sequence from next`);
      const [found] = await receiver.waitFor(1, (r) => r.payload.data?.id === id, 6000);
      expect(found.payload.data.content).toBe("written elsewhere");
    } finally {
      await stop();
    }
  } finally {
    await db.execute(sql`delete from webhook_endpoints where id = ${created.body.id}`);
  }
});

test("a backlog over more pairs than the room is delivered without pairs idling on their places", async () => {
  const [alice, agent] = await Promise.all([server.principal(), server.principal({ type: "agent" })]);
  const created = await server.request("POST", "/api/webhooks", { as: agent, body: { url: receiver.url, events: ["message.created"] } });
  expect(created.status).toBe(201);
  const { db } = server.server.services.database;
  try {
    const conversations = await Promise.all([1, 2, 3, 4, 5, 6].map(() => groupConversation(server, alice, [agent])));
    for (const conversationId of conversations) await restSend(server, alice, conversationId, "first");
    await receiver.waitFor(6, (r) => conversations.includes(r.payload.data?.conversation_id));
    // Wait until the sessions of those six pairs have given them back (idle), then write behind the instance's back.
    await Bun.sleep(2500);
    for (const conversationId of conversations) {
      await db.execute(sql`
        with next as (update conversations set last_sequence = last_sequence + 2, last_message_at = now() where id = ${conversationId} returning last_sequence)
        insert into messages (id, conversation_id, sender_id, sender_type, content, sequence)
        select gen_random_uuid(), ${conversationId}, ${alice.id}, 'user', 'behind ' || n, last_sequence - 2 + n from next, generate_series(1, 2) n`);
    }
    const started = Date.now();
    await receiver.waitFor(12, (r) => conversations.includes(r.payload.data?.conversation_id) && r.payload.data.content.startsWith("behind"), 10_000);
    // Two at a time, three rounds: idling 2 s after each round would take seconds.
    expect(Date.now() - started).toBeLessThan(1500);
  } finally {
    await db.execute(sql`delete from webhook_endpoints where id = ${created.body.id}`);
  }
});
