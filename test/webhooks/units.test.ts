/**
 * The webhook parts that need no server: which addresses are refused, the retry schedule, Retry-After,
 * and an outbox that costs nothing while no endpoint is enabled.
 */
import { describe, expect, test } from "bun:test";
import type { SQL } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import { loadConfig } from "../../src/config";
import type { Database } from "../../src/db/client";
import { retryAfterMs } from "../../src/webhooks/attempt";
import { retryDelayMs } from "../../src/webhooks/dispatcher";
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

describe("the outbox without endpoints", () => {
  test("domain events cost no query beyond a periodic check", async () => {
    const queries: unknown[] = [];
    const database = {
      db: {
        async execute(query: unknown) {
          queries.push(query);
          return [{ active: false }];
        },
      },
    } as unknown as Database;
    const outbox = new WebhookOutbox(database);
    await outbox.refresh();
    const message = { id: "m", sequence: 1, sender_id: "u", created_at: new Date().toISOString(), org_id: null } as never;
    for (let i = 0; i < 1000; i++) outbox.handle({ type: "message.created", conversationId: "c", message, json: "{}" });
    await outbox.settled();
    expect(queries).toHaveLength(1);
  });
});

describe("the outbox after commit", () => {
  /** An outbox on a database that records the events of every ENQUEUE and says some endpoint is enabled. */
  function recordingOutbox() {
    const batches: string[][] = [];
    const database = {
      db: {
        async execute(query: SQL) {
          const { sql: text, params } = new PgDialect().sqlToQuery(query);
          if (/insert into webhook_deliveries/.test(text)) batches.push((JSON.parse(params[0] as string) as { key: string }[]).map((r) => r.key));
          return [{ active: true }];
        },
      },
    } as unknown as Database;
    return { outbox: new WebhookOutbox(database), batches };
  }
  const sent = (conversationId: string, sequence: number) => ({
    type: "message.created" as const,
    conversationId,
    json: "{}",
    message: { id: `${conversationId}-${sequence}`, sequence, sender_id: "u", created_at: new Date().toISOString(), org_id: null } as never,
  });

  test("events read out of order are enqueued in sequence order, in one statement per turn", async () => {
    const { outbox, batches } = recordingOutbox();
    await outbox.refresh();
    for (const [conversation, sequence] of [["a", 1], ["a", 3], ["b", 7], ["a", 2], ["a", 4]] as const) outbox.handle(sent(conversation, sequence));
    await outbox.settled();
    expect(batches).toEqual([["message.created:a-1", "message.created:b-7", "message.created:a-2", "message.created:a-3", "message.created:a-4"]]);
  });

  test("a missing predecessor is waited for briefly, then the event goes anyway", async () => {
    const { outbox, batches } = recordingOutbox();
    await outbox.refresh();
    outbox.handle(sent("c", 1));
    await Bun.sleep(5);
    // 2 went through another instance: 3 waits for it, then goes.
    outbox.handle(sent("c", 3));
    await Bun.sleep(5);
    expect(batches.flat()).toEqual(["message.created:c-1"]);
    await Bun.sleep(100);
    expect(batches.flat()).toEqual(["message.created:c-1", "message.created:c-3"]);
  });
});
