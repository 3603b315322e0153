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
  server = await startTestServer({ WEBHOOK_ALLOW_PRIVATE: "true", WEBHOOK_POLL_MS: "50", WEBHOOK_CONCURRENCY: "2" });
  receiver = startWebhookReceiver();
});
afterAll(async () => {
  receiver.stop();
  if (endpointId) await server.server.services.database.db.execute(sql`delete from webhook_endpoints where id = ${endpointId}`);
  await server.stop();
});

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
