/**
 * The webhook parts that need no server: which addresses are refused, the retry schedule, Retry-After,
 * an outbox that costs a send nothing, and the ids of the log's events.
 */
import { describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/config";
import type { Database } from "../../src/db/client";
import { retryAfterMs } from "../../src/webhooks/attempt";
import { retryDelayMs } from "../../src/webhooks/dispatcher";
import { logDeliveryId } from "../../src/webhooks/log-events";
import { WebhookOutbox } from "../../src/webhooks/outbox";
import { checkWebhookUrl, isBlockedAddress } from "../../src/webhooks/url-guard";

describe("the address guard", () => {
  test("loopback, private, shared, link-local, metadata, multicast and unspecified addresses are refused", () => {
    for (const address of [
      "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
      "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "198.18.0.1",
      "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1",
    ]) {
      expect([address, isBlockedAddress(address)]).toEqual([address, true]);
    }
    for (const address of ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"]) {
      expect([address, isBlockedAddress(address)]).toEqual([address, false]);
    }
  });

  test("URLs naming or resolving to such addresses are refused unless private addresses are allowed", async () => {
    for (const url of ["http://127.0.0.1:9/x", "http://[::1]/x", "http://169.254.169.254/latest/meta-data", "http://localhost/x", "https://10.0.0.8/hook"]) {
      await expect(checkWebhookUrl(url, false)).rejects.toMatchObject({ code: "webhook_url_forbidden", status: 400 });
      expect((await checkWebhookUrl(url, true)).toString()).toStartWith(url.slice(0, 8));
    }
    await expect(checkWebhookUrl("http://no-such-host.invalid/x", false)).rejects.toMatchObject({ code: "invalid_webhook_url" });
    await expect(checkWebhookUrl("file:///etc/passwd", true)).rejects.toMatchObject({ code: "invalid_webhook_url" });
  });
});

describe("retries", () => {
  const config = loadConfig({ WEBHOOK_RETRY_BASE_MS: "1000", WEBHOOK_RETRY_MAX_MS: "60000" }).webhooks;

  test("exponential steps, jittered to 50–100 %, capped; Retry-After is a floor", () => {
    expect(retryDelayMs(config, 1, undefined, 1)).toBe(1000);
    expect(retryDelayMs(config, 1, undefined, 0)).toBe(500);
    expect(retryDelayMs(config, 4, undefined, 1)).toBe(8000);
    expect(retryDelayMs(config, 30, undefined, 1)).toBe(60000);
    expect(retryDelayMs(config, 1, 120_000, 0)).toBe(120_000);
    expect(retryDelayMs(config, 1, 10 * 3600_000, 0)).toBe(3600_000);
  });

  test("Retry-After in seconds or as an HTTP date", () => {
    expect(retryAfterMs("3")).toBe(3000);
    expect(retryAfterMs(new Date(Date.now() + 10_000).toUTCString(), Date.now())).toBeGreaterThan(8000);
    expect(retryAfterMs("soon")).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
  });

  test("the default timeout is 10 s and cannot be set higher", () => {
    expect(loadConfig({}).webhooks.timeoutMs).toBe(10_000);
    expect(() => loadConfig({ WEBHOOK_TIMEOUT_MS: "60000" })).toThrow();
  });
});

describe("the outbox and sends", () => {
  /** An outbox on a database that records every statement and says whether some endpoint is enabled. */
  function countingOutbox(active: boolean) {
    const queries: unknown[] = [];
    const database = {
      db: {
        async execute(query: unknown) {
          queries.push(query);
          return [{ active, version: "1:x" }];
        },
      },
    } as unknown as Database;
    return { outbox: new WebhookOutbox(database), queries };
  }
  const sent = (conversationId: string, sequence: number) => ({
    type: "message.created" as const,
    conversationId,
    json: "{}",
    message: { id: `${conversationId}-${sequence}`, sequence, sender_id: "u", created_at: new Date().toISOString(), org_id: null } as never,
  });

  test("without endpoints, sends cost no query beyond a periodic check, and no hint", async () => {
    const { outbox, queries } = countingOutbox(false);
    const hints: unknown[] = [];
    outbox.onLogged((conversationId, sequence) => hints.push([conversationId, sequence]));
    await outbox.refresh();
    for (let i = 1; i <= 1000; i++) outbox.handle(sent("c", i));
    expect(queries).toHaveLength(1);
    expect(hints).toHaveLength(0);
  });

  test("with endpoints, a send writes nothing either: it only hints which log grew, and how far", async () => {
    const { outbox, queries } = countingOutbox(true);
    const hints: unknown[] = [];
    outbox.onLogged((conversationId, sequence) => hints.push([conversationId, sequence]));
    await outbox.refresh();
    for (const [conversation, sequence] of [["a", 1], ["a", 3], ["b", 7], ["a", 2]] as const) outbox.handle(sent(conversation, sequence));
    expect(queries).toHaveLength(1);
    expect(hints).toEqual([["a", 1], ["a", 3], ["b", 7], ["a", 2]]);
  });
});

describe("webhook ids of the log's events", () => {
  test("the same for one endpoint and event on every attempt, different across endpoints and events, UUID-shaped", () => {
    const a = logDeliveryId("e1", "message.created:m1");
    expect(a).toBe(logDeliveryId("e1", "message.created:m1"));
    expect(a).not.toBe(logDeliveryId("e2", "message.created:m1"));
    expect(a).not.toBe(logDeliveryId("e1", "message.created:m2"));
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
