/**
 * GET /metrics: valid Prometheus exposition, counters that move by exactly what was done (REST and
 * WebSocket sends, control events, joins, replays, closes, HTTP requests by route template), the process
 * metrics that work on Bun, and the access policy (loopback by default, the bearer token when set, a
 * listener of its own with METRICS_PORT).
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { ConfigError, loadConfig } from "../../src/config";
import { isLoopback, isMetricsPath, metricsAccess } from "../../src/http/metrics-endpoint";
import { parseExposition, type Exposition } from "../support/prometheus";
import { startTestServer, type TestServer } from "../support/server";
import { eventually, groupConversation, joinedSocket, openSocket, restSend } from "../realtime/helpers";

// End-to-end tests start servers and processes: more than the runner's 5 s default.
setDefaultTimeout(60_000);

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.stop());

async function scrape(server: TestServer = t, headers: Record<string, string> = {}): Promise<Exposition> {
  const response = await fetch(`${server.url}/metrics`, { headers });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
  return parseExposition(await response.text());
}

const MESSAGES_ROUTE = { method: "POST", route: "/api/conversations/:id/messages", status: "201" };

describe("GET /metrics", () => {
  test("is valid exposition with the server's metrics and the process metrics that work on Bun", async () => {
    const metrics = await scrape();
    for (const name of [
      "symbia_http_requests_total",
      "symbia_http_request_duration_seconds",
      "symbia_messages_sent_total",
      "symbia_ws_connections",
      "symbia_ws_closes_total",
      "symbia_db_query_duration_seconds",
      "symbia_relay_items_dropped_total",
      "symbia_event_listener_failures_total",
      "process_cpu_seconds_total",
      "process_resident_memory_bytes",
      "process_open_fds",
      "nodejs_eventloop_lag_p99_seconds",
    ]) {
      expect(metrics.types.has(name)).toBe(true);
    }
    // Collectors that report nothing true on Bun are left out.
    for (const name of ["nodejs_gc_duration_seconds", "nodejs_active_handles_total", "nodejs_heap_space_size_used_bytes", "process_heap_bytes", "nodejs_version_info"]) {
      expect(metrics.types.has(name)).toBe(false);
    }
    expect(metrics.sum("symbia_build_info")).toBe(1);
    expect(metrics.value("process_resident_memory_bytes")).toBeGreaterThan(1024 * 1024);
  });

  test("sends count by transport, exactly, and HTTP requests by route template", async () => {
    const [alice, bob] = await Promise.all([t.principal(), t.principal()]);
    const conversationId = await groupConversation(t, alice, [bob]);
    const socket = await joinedSocket(t, alice, conversationId);
    const before = await scrape();
    const N = 7;
    const M = 5;
    for (let i = 0; i < N; i++) await restSend(t, alice, conversationId, `rest ${i}`);
    for (let i = 0; i < M; i++) expect((await socket.request("message:send", { conversationId, content: `ws ${i}` })).ok).toBe(true);
    // A client id sent again stores nothing: not counted.
    const id = crypto.randomUUID();
    for (let i = 0; i < 2; i++) await t.request("POST", `/api/conversations/${conversationId}/messages`, { as: alice, body: { id, content: "once" } });
    await socket.next((f) => f.event === "message:new" && f.data.content === "once");
    const after = await scrape();
    socket.close();

    const delta = (name: string, labels: Record<string, string> = {}) => after.sum(name, labels) - before.sum(name, labels);
    expect(delta("symbia_messages_sent_total", { transport: "rest" })).toBe(N + 1);
    expect(delta("symbia_messages_sent_total", { transport: "websocket" })).toBe(M);
    expect(delta("symbia_domain_events_total", { type: "message.created" })).toBe(N + M + 1);
    expect(delta("symbia_http_requests_total", MESSAGES_ROUTE)).toBe(N + 1);
    expect(delta("symbia_http_requests_total", { ...MESSAGES_ROUTE, status: "200" })).toBe(1);
    expect(delta("symbia_http_request_duration_seconds_count", { method: "POST", route: MESSAGES_ROUTE.route })).toBe(N + 2);
    // Every send ran the hot-path statement once; each frame was published once to the topic.
    expect(delta("symbia_db_query_duration_seconds_count", { driver: t.server.services.database.kind })).toBe(N + M + 2);
    expect(delta("symbia_ws_frames_published_total")).toBe(N + M + 1);
    expect(delta("symbia_ws_frames_received_total")).toBe(M);

    // Never a concrete path or id in a label.
    const uuid = /[0-9a-f]{8}-[0-9a-f]{4}-/;
    for (const sample of after.samples) for (const value of Object.values(sample.labels)) expect(uuid.test(value)).toBe(false);
  });

  test("control events count by name, from the domain event listener", async () => {
    const owner = await t.principal({ entitlements: ["cap:messaging.interrupt"] });
    const conversationId = await groupConversation(t, owner);
    const before = await scrape();
    for (const event of ["stream.pause", "stream.resume", "stream.pause"]) {
      const sent = await t.request("POST", `/api/conversations/${conversationId}/control`, { as: owner, body: { event } });
      expect(sent.status).toBe(201);
    }
    let after = before;
    await eventually(async () => {
      after = await scrape();
      return after.sum("symbia_control_events_total") - before.sum("symbia_control_events_total") === 3;
    });
    expect(after.sum("symbia_control_events_total", { event: "stream.pause" }) - before.sum("symbia_control_events_total", { event: "stream.pause" })).toBe(2);
    expect(after.sum("symbia_control_events_total", { event: "stream.resume" }) - before.sum("symbia_control_events_total", { event: "stream.resume" })).toBe(1);
  });

  test("connections, joins, replays and close codes", async () => {
    const alice = await t.principal();
    const conversationId = await groupConversation(t, alice);
    for (let i = 0; i < 3; i++) await restSend(t, alice, conversationId, `m${i}`);
    const before = await scrape();
    const socket = await openSocket(t, alice);
    const open = (await scrape()).value("symbia_ws_connections")!;
    expect(open).toBeGreaterThanOrEqual(1);
    const joined = await socket.request("join:conversation", { conversationId, since: 1 });
    expect(joined.data.replayed).toBe(2);
    socket.ws.close(1000, "done");
    await socket.closed;
    let after = before;
    await eventually(async () => {
      after = await scrape();
      return after.value("symbia_ws_connections") === open - 1;
    });
    const delta = (name: string, labels: Record<string, string> = {}) => after.sum(name, labels) - before.sum(name, labels);
    expect(delta("symbia_ws_connections_opened_total")).toBe(1);
    expect(delta("symbia_ws_joins_total")).toBe(1);
    expect(delta("symbia_ws_replays_total")).toBe(1);
    expect(delta("symbia_ws_replayed_messages_total")).toBe(2);
    expect(delta("symbia_ws_replays_truncated_total")).toBe(0);
    expect(delta("symbia_ws_closes_total", { code: "1000" })).toBe(1);
  });

  test("the gate's refusals and unmatched paths are counted without their path", async () => {
    const before = await scrape();
    expect((await t.request("GET", "/api/conversations")).status).toBe(401);
    expect((await t.request("GET", "/no/such/route/123")).status).toBe(404);
    const after = await scrape();
    expect(after.sum("symbia_http_requests_total", { route: "gate", status: "401" }) - before.sum("symbia_http_requests_total", { route: "gate", status: "401" })).toBe(1);
    expect(after.sum("symbia_http_requests_total", { route: "unmatched", status: "404" }) - before.sum("symbia_http_requests_total", { route: "unmatched", status: "404" })).toBe(1);
  });

  test("a failing domain event listener is counted under its name", async () => {
    const alice = await t.principal();
    const conversationId = await groupConversation(t, alice);
    const off = t.server.services.domainEvents.on("always fails", (event) => {
      if (event.type === "message.created") throw new Error("listener bug");
    });
    try {
      await restSend(t, alice, conversationId, "hello");
      let failures: number | undefined;
      await eventually(async () => {
        failures = (await scrape()).value("symbia_event_listener_failures_total", { bus: "domain events", listener: "always fails" });
        return failures === 1;
      }).catch((error) => {
        throw new Error(`${error.message}: ${failures}`);
      });
    } finally {
      off();
    }
  });

  test("event-loop delay shows a stalled loop", async () => {
    await scrape(); // the delay histogram restarts at each scrape
    const until = performance.now() + 200;
    while (performance.now() < until) {
      // a 200 ms stall
    }
    await Bun.sleep(30); // the delay is recorded when the loop's next timer fires, late
    const metrics = await scrape();
    expect(metrics.value("nodejs_eventloop_lag_max_seconds")).toBeGreaterThan(0.15);
  });

  test("rate-limited frames are counted", async () => {
    const limited = await startTestServer({ WS_RATE_LIMIT: "1", WS_RATE_BURST: "2" });
    try {
      const socket = await openSocket(limited, await limited.principal());
      const before = await scrape(limited);
      const acks = await Promise.all(Array.from({ length: 4 }, () => socket.request("ping")));
      const refused = acks.filter((ack) => ack.error?.code === "rate_limited").length;
      expect(refused).toBe(2);
      const after = await scrape(limited);
      expect(after.sum("symbia_ws_frames_rate_limited_total") - before.sum("symbia_ws_frames_rate_limited_total")).toBe(refused);
      socket.close();
    } finally {
      await limited.stop();
    }
  });

  test("forwarded headers do not change who the client is", async () => {
    const response = await fetch(`${t.url}/metrics`, { headers: { "x-forwarded-for": "203.0.113.9", forwarded: "for=203.0.113.9" } });
    expect(response.status).toBe(200);
  });
});

describe("metrics access", () => {
  test("without a token: loopback only, whatever the headers", () => {
    for (const address of ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]) expect(metricsAccess(undefined, address, null)).toBe("allowed");
    for (const address of ["10.0.0.5", "192.168.1.2", "203.0.113.9", "::ffff:10.0.0.1", "fe80::1", "128.0.0.1", "unknown", undefined]) {
      expect(metricsAccess(undefined, address, "Bearer anything-at-all-here")).toBe("hidden");
    }
    expect(isLoopback("127.0.0.1.example")).toBe(false);
  });

  test("with a token: the bearer token from everyone, loopback included", () => {
    const token = "s3cret-scrape-token-0123";
    expect(metricsAccess(token, "10.0.0.5", `Bearer ${token}`)).toBe("allowed");
    expect(metricsAccess(token, "10.0.0.5", `bearer ${token}`)).toBe("allowed");
    expect(metricsAccess(token, "127.0.0.1", null)).toBe("refused");
    expect(metricsAccess(token, "10.0.0.5", `Bearer ${token}x`)).toBe("refused");
    expect(metricsAccess(token, "10.0.0.5", token)).toBe("refused");
    expect(metricsAccess(token, "10.0.0.5", `Basic ${btoa(`x:${token}`)}`)).toBe("refused");
  });

  test("a weak METRICS_TOKEN or a bad METRICS_PORT stops the server at start", () => {
    expect(() => loadConfig({ METRICS_TOKEN: "short" })).toThrow(ConfigError);
    expect(() => loadConfig({ METRICS_TOKEN: "sixteen chars but spaces" })).toThrow(ConfigError);
    expect(() => loadConfig({ METRICS_PORT: "99999" })).toThrow(ConfigError);
    expect(loadConfig({ METRICS_TOKEN: "0123456789abcdef", METRICS_PORT: "9464" })).toMatchObject({ metricsToken: "0123456789abcdef", metricsPort: 9464 });
    expect(loadConfig({})).toMatchObject({ metricsToken: undefined, metricsPort: undefined });
  });

  test("the path is /metrics exactly", () => {
    expect(isMetricsPath("http://h:1/metrics")).toBe(true);
    expect(isMetricsPath("http://h:1/metrics?x=1")).toBe(true);
    expect(isMetricsPath("http://h:1/metricsx")).toBe(false);
    expect(isMetricsPath("http://h:1/metrics/")).toBe(false);
    expect(isMetricsPath("http://h:1/api/metrics")).toBe(false);
  });

  test("METRICS_TOKEN: 403 metrics_forbidden without it, the exposition with it", async () => {
    const token = "scrape-token-for-the-test-0001";
    const server = await startTestServer({ METRICS_TOKEN: token });
    try {
      for (const headers of [{}, { authorization: "Bearer wrong-token-wrong-token" }] as Record<string, string>[]) {
        const refused = await fetch(`${server.url}/metrics`, { headers });
        expect(refused.status).toBe(403);
        expect(await refused.json()).toEqual({ error: "GET /metrics needs the METRICS_TOKEN bearer token", code: "metrics_forbidden" });
      }
      const metrics = await scrape(server, { authorization: `Bearer ${token}` });
      expect(metrics.types.has("symbia_messages_sent_total")).toBe(true);
    } finally {
      await server.stop();
    }
  });

  test("METRICS_PORT: a listener of its own, and 404 on the main port", async () => {
    const server = await startTestServer({ METRICS_PORT: "0" });
    try {
      const main = await fetch(`${server.url}/metrics`);
      expect(main.status).toBe(404);
      expect(((await main.json()) as { code: string }).code).toBe("not_found");
      const port = server.server.metricsPort!;
      const scraped = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(scraped.status).toBe(200);
      parseExposition(await scraped.text());
      const other = await fetch(`http://127.0.0.1:${port}/api/health`);
      expect(other.status).toBe(404);
      expect(((await other.json()) as { code: string }).code).toBe("not_found");
    } finally {
      await server.stop();
    }
  });
});
