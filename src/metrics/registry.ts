/**
 * Every metric the server exposes at /metrics, defined here and nowhere else. To add one: define it below
 * (Prometheus names: `symbia_<area>_<what>_<unit>`, `_total` for counters, base units such as seconds and
 * bytes), then increment it beside the code it measures (`messagesSent.rest.inc()`), or from a named
 * listener in src/listeners.ts when it counts domain events. docs/operations.md lists them.
 *
 * Labels stay bounded: route templates, never paths; event names and close codes from fixed lists; never a
 * conversation, user or connection id. On the paths that run per message or frame, take the labelled
 * instrument once (at start, or a module constant) and only call `inc()` there: see ./instruments.ts.
 *
 * This module imports nothing of the server, so that any layer (the database driver included) may use it.
 */
import { collectDefaultMetrics, Registry } from "prom-client";
import { VERSION } from "../version";
import { instrumentsOn, type Tally } from "./instruments";

export const registry = new Registry();
const define = instrumentsOn(registry);

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const QUERY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

define.gaugeReading({
  name: "symbia_build_info",
  help: "Always 1; the version of the running server and of Bun in labels.",
  labelNames: ["version", "bun"],
  read: () => [[{ version: VERSION, bun: Bun.version }, 1]],
});

// HTTP (src/http/request-metrics.ts)

/** By method, route template (`unmatched` when no route matched, `gate` when refused before routing) and status. */
export const httpRequests = define.counterSeries({
  name: "symbia_http_requests_total",
  help: "HTTP requests answered, by method, route template and status.",
  labelNames: ["method", "route", "status"],
});

export const httpRequestDuration = define.histogramSeries({
  name: "symbia_http_request_duration_seconds",
  help: "Time from a request's arrival to its answer, by method and route template.",
  labelNames: ["method", "route"],
  buckets: LATENCY_BUCKETS,
});

// Messages and control events

export const messagesSent = define.counterBy({
  name: "symbia_messages_sent_total",
  help: "Messages stored by a send (a client id sent again is not counted), by transport.",
  label: "transport",
  values: ["rest", "websocket"] as const,
});

/** Label values: the seven `stream.*` names (src/domain/control-events.ts); bound in src/listeners.ts. */
export const controlEventsSent = define.counterSeries({
  name: "symbia_control_events_total",
  help: "Control events stored, by event name.",
  labelNames: ["event"],
});

/** Label values: the domain event types (src/domain/domain-events.ts). */
export const domainEvents = define.counterSeries({
  name: "symbia_domain_events_total",
  help: "Domain events emitted after a committed write, by type.",
  labelNames: ["type"],
});

// Domain event listeners (src/core/event-bus.ts counts their failures; src/listeners.ts watches the buses)

interface FailureCounts {
  readonly busName: string;
  failures(): Record<string, number>;
}

const watchedBuses = new Set<FailureCounts>();

define.counterReading({
  name: "symbia_event_listener_failures_total",
  help: "Listeners of an event bus that threw or rejected, by bus and listener name.",
  labelNames: ["bus", "listener"],
  *read() {
    for (const bus of watchedBuses) {
      for (const [listener, failures] of Object.entries(bus.failures())) yield [{ bus: bus.busName, listener }, failures];
    }
  },
});

/** Exposes the failures a bus counts per listener; returns the function that stops it. */
export function watchListenerFailures(bus: FailureCounts): () => void {
  watchedBuses.add(bus);
  return () => watchedBuses.delete(bus);
}

// WebSocket (src/realtime/)

export const wsConnectionsOpen = define.gauge({
  name: "symbia_ws_connections",
  help: "WebSocket connections open now.",
});

export const wsConnectionsOpened = define.counter({
  name: "symbia_ws_connections_opened_total",
  help: "WebSocket connections accepted (session:ready sent).",
});

/** Close codes the protocol defines or clients commonly send (docs/protocol.md); anything else is `other`. */
export const WS_CLOSE_CODES = ["1000", "1001", "1005", "1006", "1008", "1009", "1011", "4008", "4401", "other"] as const;

export const wsCloses = define.counterBy({
  name: "symbia_ws_closes_total",
  help: "WebSocket connections closed, by close code (from either side).",
  label: "code",
  values: WS_CLOSE_CODES,
});

const closesByCode = new Map(WS_CLOSE_CODES.filter((code) => code !== "other").map((code) => [Number(code), wsCloses[code]]));

/** The close counter of a code (`other` outside the list). */
export function wsClosesOf(code: number): Tally {
  return closesByCode.get(code) ?? wsCloses.other;
}

export const wsFramesReceived = define.counter({
  name: "symbia_ws_frames_received_total",
  help: "Frames received from clients (rate-limited ones included).",
});

export const wsFramesRateLimited = define.counter({
  name: "symbia_ws_frames_rate_limited_total",
  help: "Client frames refused with rate_limited (over the connection's frame or append budget).",
});

export const wsFramesPublished = define.counter({
  name: "symbia_ws_frames_published_total",
  help: "Frames published to a conversation topic with subscribers on this instance (one per frame, not per socket).",
});

export const wsJoins = define.counter({
  name: "symbia_ws_joins_total",
  help: "join:conversation frames that subscribed the socket.",
});

export const wsReplays = define.counter({
  name: "symbia_ws_replays_total",
  help: "Joins that replayed at least one message (join with since).",
});

export const wsReplayedMessages = define.counter({
  name: "symbia_ws_replayed_messages_total",
  help: "Messages sent as replay on joins.",
});

export const wsReplaysTruncated = define.counter({
  name: "symbia_ws_replays_truncated_total",
  help: "Joins whose replay stopped early (REPLAY_LIMIT or the byte budget): the client pages the rest over REST.",
});

export const wsSlowConsumerCloses = define.counter({
  name: "symbia_ws_slow_consumer_closes_total",
  help: "Connections closed with 4008 because their send buffer passed WS_BACKPRESSURE_BYTES.",
});

// Database (src/db/client.ts)

/** Label: `driver` (postgres, pglite). */
export const dbQueryDuration = define.histogramSeries({
  name: "symbia_db_query_duration_seconds",
  help: "Hot-path statements (Database.query: the message send), waiting for a pooled connection included.",
  labelNames: ["driver"],
  buckets: QUERY_BUCKETS,
});

export const dbQueriesInFlight = define.gaugeBy({
  name: "symbia_db_queries_in_flight",
  help: "Hot-path statements started and not yet answered; above DATABASE_POOL_SIZE they queue for a connection.",
  label: "driver",
  values: ["postgres", "pglite"] as const,
});

// Coalesced sends (src/db/statement-batcher.ts)

export const sendBatches = define.counter({
  name: "symbia_send_batches_total",
  help: "Writes of send statements: one per transaction, whether it carried one send or many.",
});

export const sendBatchStatements = define.counter({
  name: "symbia_send_batch_statements_total",
  help: "Send statements written; divided by symbia_send_batches_total, the mean batch size.",
});

export const sendBatchRetries = define.counter({
  name: "symbia_send_batch_retries_total",
  help: "Batches rolled back by one failing statement and written again one statement at a time.",
});

// Relay between instances (src/broker/postgres/); label `channel`: symbia_events, symbia_auth (bound once per
// NotifyChannel)

export const relayQueueDepth = define.gaugeSeries({
  name: "symbia_relay_queued_items",
  help: "Items waiting to be sent to the other instances.",
  labelNames: ["channel"],
});

export const relayBatches = define.counterSeries({
  name: "symbia_relay_batches_total",
  help: "Batches handed to PostgreSQL (one coalesced send of everything queued).",
  labelNames: ["channel"],
});

export const relayItemsSent = define.counterSeries({
  name: "symbia_relay_items_sent_total",
  help: "Items sent to the other instances.",
  labelNames: ["channel"],
});

export const relayItemsReceived = define.counterSeries({
  name: "symbia_relay_items_received_total",
  help: "Items received from the other instances.",
  labelNames: ["channel"],
});

/** Reasons: `queue_full` (PostgreSQL not keeping up), `send_failed` (database unreachable). */
export const relayItemsDropped = define.counterSeries({
  name: "symbia_relay_items_dropped_total",
  help: "Items that never reached the other instances, by channel and reason; receivers read missed messages back by sequence.",
  labelNames: ["channel", "reason"],
});

export const relayPeers = define.gauge({
  name: "symbia_relay_peers",
  help: "Other instances this one hears on symbia_events (heartbeat within the expiry).",
});

// Process: prom-client's collectors, less those that report nothing true on Bun (docs/operations.md)

/**
 * Measured on Bun 1.4: always 0 (active handles, requests and resources), all-zero per space (heap
 * spaces), never observed (GC durations, no `gc` performance entries), the Node.js version Bun emulates
 * (version info; symbia_build_info carries Bun's), and VmData, which on Bun is gigabytes of reserved
 * address space rather than a heap (process_heap_bytes).
 */
const MISLEADING_ON_BUN = [
  "nodejs_active_handles",
  "nodejs_active_handles_total",
  "nodejs_active_requests",
  "nodejs_active_requests_total",
  "nodejs_active_resources",
  "nodejs_active_resources_total",
  "nodejs_heap_space_size_total_bytes",
  "nodejs_heap_space_size_used_bytes",
  "nodejs_heap_space_size_available_bytes",
  "nodejs_gc_duration_seconds",
  "nodejs_version_info",
  "process_heap_bytes",
];

let processMetrics = false;

/** CPU, memory, file descriptors and event-loop delay of the process; once per process, at server start. */
export function startProcessMetrics(): void {
  if (processMetrics) return;
  processMetrics = true;
  collectDefaultMetrics({ register: registry });
  for (const name of MISLEADING_ON_BUN) registry.removeSingleMetric(name);
}

export const METRICS_CONTENT_TYPE = registry.contentType;
