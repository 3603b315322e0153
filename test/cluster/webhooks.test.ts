/**
 * Webhooks with several instances on one PostgreSQL: every instance delivers, each delivery is made by
 * exactly one of them, in order per conversation. Runs only with TEST_DATABASE_URL. Deliveries outliving
 * a server killed with SIGKILL: test/system/webhook-crash.test.ts (on both databases).
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { TEST_DATABASE_URL } from "../support/database";
import { createClusterDatabase, groupConversation, restSend, startInstance, type ClusterDatabase, type Instance } from "../support/cluster";
import { startWebhookReceiver, type WebhookReceiver } from "../support/webhook-receiver";

setDefaultTimeout(90_000);

const WEBHOOK_ENV = {
  WEBHOOK_ALLOW_PRIVATE: "true",
  WEBHOOK_POLL_MS: "20",
  WEBHOOK_RETRY_BASE_MS: "50",
  WEBHOOK_RETRY_MAX_MS: "200",
  WEBHOOK_TIMEOUT_MS: "1000",
};

let cluster: ClusterDatabase;
let receiver: WebhookReceiver;

describe.skipIf(!TEST_DATABASE_URL)("webhooks on more than one instance", () => {
  beforeAll(async () => {
    cluster = await createClusterDatabase();
    receiver = startWebhookReceiver();
  }, 60_000);

  afterAll(async () => {
    receiver?.stop();
    await cluster?.drop();
  }, 30_000);

  test("two instances deliver 60 messages of three conversations: each once, in order per conversation", async () => {
    const [a, b] = await Promise.all([startInstance("A", cluster.url, WEBHOOK_ENV), startInstance("B", cluster.url, WEBHOOK_ENV)]);
    try {
      const [alice, agent] = await Promise.all([cluster.user(), cluster.user()]);
      const created = await a.request("POST", "/api/webhooks", { as: agent, body: { url: receiver.url, events: ["message.created"] } });
      expect(created.status).toBe(201);
      // B learns of the endpoint on its next check (within 5 s); until then the log repair would catch up.
      await Bun.sleep(5_500);
      const conversations = await Promise.all([1, 2, 3].map(() => groupConversation(a, alice, [agent])));
      const sends: Promise<unknown>[] = [];
      for (let i = 1; i <= 20; i++) {
        for (const [n, conversationId] of conversations.entries()) sends.push(restSend(n % 2 === 0 ? a : b, alice, conversationId, `m${i}`));
        await Promise.all(sends.splice(0));
      }
      await receiver.waitFor(60, (r) => r.status === 200, 20_000);
      await Bun.sleep(500);
      const delivered = receiver.of("message.created");
      expect(new Set(delivered.map((r) => r.id)).size).toBe(60);
      expect(delivered).toHaveLength(60);
      for (const conversationId of conversations) {
        const sequences = delivered.filter((r) => r.payload.data.conversation_id === conversationId).map((r) => r.payload.data.sequence);
        expect(sequences).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      }
      for (const request of delivered.slice(0, 5)) expect(receiver.verify(request, created.body.secret)).toBeTruthy();
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
