/**
 * The SDK waits out `rate_limited` instead of surfacing it: REST after Retry-After, WebSocket after the
 * delay in the ack error, paced so that the retries are not taken for flooding, with bounded attempts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { useEndToEndTimeout } from "../support/timeout";
import { ApiError, MessagingClient, RealtimeClient, RealtimeError, type Message } from "../../src/client";
import { ackRetryDelayMs, retryAfterMs } from "../../src/client/rate-limit";
import { startTestServer, type TestServer } from "../support/server";
import { sdkClient } from "../realtime/helpers";

// End-to-end tests start servers and processes: more than the runner's 5 s default.
useEndToEndTimeout();

const BURST = 10;
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ WS_RATE_LIMIT: "20", WS_RATE_BURST: String(BURST), LOGIN_MAX_FAILURES: "1", LOGIN_WINDOW_SECONDS: "1" });
});
afterAll(() => server.stop());

/** A fetch that answers 429 with `retryAfter` for the first `refusals` calls, then passes through. */
function refusingFetch(refusals: number, retryAfter: string) {
  const calls: { method: string; body?: string }[] = [];
  const fetchImpl = async (input: string, init: RequestInit) => {
    calls.push({ method: init.method!, body: init.body as string | undefined });
    if (calls.length <= refusals) {
      return Response.json({ error: "Too many requests", code: "rate_limited" }, { status: 429, headers: { "retry-after": retryAfter } });
    }
    return fetch(input, init);
  };
  return { calls, fetchImpl };
}

describe("REST", () => {
  test("a 429 is retried after its Retry-After, with the same request", async () => {
    const who = await server.principal();
    const { calls, fetchImpl } = refusingFetch(2, "0");
    const client = new MessagingClient({ baseUrl: server.url, token: who.token, fetch: fetchImpl });
    const conversation = await client.createConversation({ type: "group", name: "retried" });
    expect(conversation.name).toBe("retried");
    expect(calls).toHaveLength(3);
    expect(new Set(calls.map((c) => c.body)).size).toBe(1);
    expect((await client.listConversations()).filter((c) => c.id === conversation.id)).toHaveLength(1);
  });

  test("the login lockout is waited out when it is short, and surfaced when it is long", async () => {
    const password = "correct horse battery staple";
    const who = await server.principal({ password });
    const client = new MessagingClient({ baseUrl: server.url });
    expect(await client.login(who.email!, "wrong").catch((e) => e)).toMatchObject({ status: 401 });
    // One failure locks the account for the rest of the 1 s window: the SDK waits and logs in.
    const started = Date.now();
    const login = await client.login(who.email!, password);
    expect(login.user.id).toBe(who.id);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);

    const impatient = new MessagingClient({ baseUrl: server.url, retry: { maxDelayMs: 100 } });
    expect(await impatient.login(who.email!, "wrong").catch((e) => e)).toMatchObject({ status: 401 });
    const refused = await impatient.login(who.email!, password).catch((e) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ status: 429, code: "rate_limited", retryAfter: 1 });
  });

  test("attempts are bounded, and retry: false surfaces the first refusal", async () => {
    const who = await server.principal();
    const bounded = refusingFetch(100, "0");
    const client = new MessagingClient({ baseUrl: server.url, token: who.token, fetch: bounded.fetchImpl, retry: { attempts: 2 } });
    expect(await client.listConversations().catch((e) => e)).toMatchObject({ status: 429, code: "rate_limited" });
    expect(bounded.calls).toHaveLength(3);

    const never = refusingFetch(100, "0");
    const off = new MessagingClient({ baseUrl: server.url, token: who.token, fetch: never.fetchImpl, retry: false });
    expect(await off.listConversations().catch((e) => e)).toMatchObject({ status: 429 });
    expect(never.calls).toHaveLength(1);
  });
});

describe("WebSocket", () => {
  test("a burst past the server's limit is paced and retried: every message lands, once, and the socket stays", async () => {
    const who = await server.principal();
    const client = sdkClient(server, who);
    const conversation = await client.createConversation({ type: "group", name: "burst" });
    const socket = client.realtime();
    const closes: number[] = [];
    socket.on("close", (c) => closes.push(c.code));
    await socket.connect();
    await socket.join(conversation.id);
    const count = 3 * BURST;
    const sent = await Promise.all(Array.from({ length: count }, (_, i) => socket.send(conversation.id, { content: `m${i}` })));
    expect(sent.map((m: Message) => m.sequence).sort((a, b) => a - b)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    expect(socket.stats.rateLimitedRetries).toBeGreaterThan(0);
    expect(closes).toEqual([]);
    expect(socket.connected).toBe(true);
    expect(await client.listMessages(conversation.id, { limit: 100 })).toHaveLength(count);
    socket.close();
  });

  test("with retry: false the refusal reaches the caller with the advertised delay", async () => {
    const who = await server.principal();
    const socket = sdkClient(server, who).realtime({ retry: false });
    await socket.connect();
    const results = await Promise.all(Array.from({ length: BURST + 3 }, () => socket.ping().catch((e) => e)));
    const refused = results.filter((r) => r instanceof RealtimeError);
    expect(refused).toHaveLength(3);
    expect(refused[0]).toMatchObject({ code: "rate_limited", event: "ping" });
    expect(refused[0].retryAfterMs).toBeGreaterThan(0);
    expect(refused[0].retryAfterMs).toBeLessThanOrEqual(50);
    socket.close();
  });

  test("attempts are bounded, and a delay past maxDelayMs is surfaced at once", async () => {
    let delaySeconds = 0.01;
    let frames = 0;
    const fake = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: (request, srv) => (srv.upgrade(request) ? undefined : new Response("no", { status: 400 })),
      websocket: {
        open: (ws) => {
          ws.send(JSON.stringify({ event: "session:ready", data: { connectionId: "c", user: { id: "u", type: "user" }, heartbeatMs: 30_000, serverTime: new Date().toISOString() } }));
        },
        message: (ws, text) => {
          frames += 1;
          const { ack } = JSON.parse(String(text));
          ws.send(JSON.stringify({ event: "ack", ack, ok: false, error: { code: "rate_limited", message: `Too many frames; retry in ${delaySeconds.toFixed(2)} s` } }));
        },
      },
    });
    try {
      const socket = new RealtimeClient({ url: `ws://127.0.0.1:${fake.port}/api/ws`, credentials: () => ({ headers: {} }), retry: { attempts: 3, maxDelayMs: 1000 } });
      await socket.connect();
      expect(await socket.ping().catch((e) => e)).toMatchObject({ code: "rate_limited" });
      expect(frames).toBe(4);

      delaySeconds = 5;
      frames = 0;
      const started = Date.now();
      expect(await socket.ping().catch((e) => e)).toMatchObject({ code: "rate_limited", retryAfterMs: 5000 });
      expect(frames).toBe(1);
      expect(Date.now() - started).toBeLessThan(1000);
      socket.close();
    } finally {
      fake.stop(true);
    }
  });
});

describe("delays", () => {
  test("parsed from the ack error and from Retry-After", () => {
    expect(ackRetryDelayMs({ message: "Too many frames; retry in 0.12 s" })).toBeCloseTo(120);
    expect(ackRetryDelayMs({ message: "x", retryAfter: 2 })).toBe(2000);
    expect(ackRetryDelayMs({ message: "Too many frames" })).toBeUndefined();
    expect(retryAfterMs("3")).toBe(3000);
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs(new Date(Date.now() + 60_000).toUTCString())).toBeGreaterThan(50_000);
  });
});
