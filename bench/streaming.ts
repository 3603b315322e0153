/**
 * Streaming messages: STREAMS concurrent streams × RATE deltas/s into one conversation watched by SOCKETS
 * sockets, on the compiled product (PostgreSQL) and beside it on the raw baseline (bench/lib/raw-publisher.ts,
 * a bare Bun publish of the same `message:delta` frames, no database).
 *
 *   bun run bench/streaming.ts
 *   STREAMS=10 RATE=100 SOCKETS=100 DURATION=6 WARMUP=2 RECEIVER_PROCS=2 DELTA_BYTES=24 bun run bench/streaming.ts
 *
 * Each stream is a WebSocket of one agent (a connection's frames are handled in order, as an agent's
 * tokens are) sending `message:append` without an ack at RATE per second on a fixed schedule; each delta
 * carries its wall-clock send time (bench/lib/ws-wire.ts), so the receivers (bench/lib/ws-receivers.ts, in
 * processes of their own) measure append→delivery latency without parsing JSON.
 *
 * Reported per target: deliveries/s (delta frames received by all sockets per second in the measured
 * window) and its ratio to the raw baseline's, the share of the measured deltas that arrived, latency
 * percentiles, CPU in cores per process group; for the product also the database writes per streamed
 * message (rows of `messages` updated during the measured window, from pg_stat_user_tables, over the
 * number of streams): the flushes every STREAM_FLUSH_MS, never one per delta.
 *
 * Other settings: DB_NAME (default symbia_bench_streaming, dropped and recreated, dropped at the end),
 * SERVER_ENV="NAME=value,...", BUILD / BINARY (bench/lib/bench-processes.ts), RESULT_FILE=<path> (JSON).
 */
import postgres from "postgres";
import { addMembers, createUsers } from "./lib/bulk-principals";
import { dropDatabase, freshDatabase, startProduct, startRawPublisher, track, backendPids, type ServerHandle } from "./lib/bench-processes";
import { LatencyHistogram, type HistogramData, type LatencySummary } from "./lib/latency-histogram";
import { CpuWindow } from "./lib/proc-stats";
import { ClientProcess, benchContent, wallClockMs } from "./lib/ws-wire";
import { MessagingClient } from "../src/client";

const STREAMS = Number(process.env.STREAMS ?? 10);
const RATE = Number(process.env.RATE ?? 100);
const SOCKETS = Number(process.env.SOCKETS ?? 100);
const DURATION = Number(process.env.DURATION ?? 6);
const WARMUP = Number(process.env.WARMUP ?? 2);
const RECEIVER_PROCS = Number(process.env.RECEIVER_PROCS ?? 2);
const DELTA_BYTES = Number(process.env.DELTA_BYTES ?? 24);
const DB_NAME = process.env.DB_NAME ?? "symbia_bench_streaming";
const SERVER_ENV: Record<string, string> = Object.fromEntries(
  (process.env.SERVER_ENV ?? "").split(",").filter(Boolean).map((pair) => pair.split("=", 2) as [string, string]),
);
const RECEIVERS_SCRIPT = new URL("./lib/ws-receivers.ts", import.meta.url).pathname;

interface Result {
  target: string;
  deliveriesPerSecond: number;
  expectedPerSecond: number;
  deliveredShare: number;
  latency: LatencySummary;
  cores: Record<string, number>;
  sent: number;
  errors: number;
  /** Product only: rows of messages updated in the window per streamed message, and per second. */
  dbWritesPerMessage?: number;
  dbWritesPerMessagePerSecond?: number;
}

function log(line: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
}

/** STREAMS sockets of the agent, each holding one open stream. */
async function openStreams(server: ServerHandle, token: string, conversationId: string) {
  const streams: { ws: WebSocket; messageId: string; errors: number }[] = [];
  for (let i = 0; i < STREAMS; i++) {
    const ws = new WebSocket(server.wsUrl, { headers: { authorization: `Bearer ${token}` } } as unknown as string[]);
    const stream = { ws, messageId: "", errors: 0 };
    stream.messageId = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("stream did not open")), 10_000);
      ws.onmessage = (event) => {
        const frame = JSON.parse(String(event.data));
        if (frame.event === "session:ready") {
          ws.send(JSON.stringify({ event: "message:send", ack: "open", data: { conversationId, content: "", streaming: true } }));
        } else if (frame.event === "ack" && frame.ack === "open") {
          clearTimeout(timer);
          if (frame.ok) resolve(frame.data.id);
          else reject(new Error(`stream refused: ${frame.error?.code}`));
        }
      };
    });
    // From here on only refusals come back (appends carry no ack).
    ws.onmessage = (event) => {
      if (String(event.data).includes('"event":"error"')) stream.errors++;
    };
    streams.push(stream);
  }
  return streams;
}

/** Appends at RATE per stream on a fixed schedule (late ticks catch up), phase-tagged. */
async function stream(
  streams: Awaited<ReturnType<typeof openStreams>>,
  conversationId: string,
  seconds: number,
  phase: number,
): Promise<number> {
  const startedAt = performance.now();
  const total = Math.round(seconds * RATE);
  let sent = 0;
  for (let tick = 0; tick < total; tick++) {
    const due = startedAt + (tick * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await Bun.sleep(wait);
    for (const s of streams) {
      s.ws.send(JSON.stringify({ event: "message:append", data: { messageId: s.messageId, conversationId, delta: benchContent(phase, wallClockMs(), DELTA_BYTES) } }));
      sent++;
    }
  }
  return sent;
}

async function messagesUpdated(databaseUrl: string): Promise<number> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<{ n: string }[]>`select n_tup_upd::text as n from pg_stat_user_tables where relname = 'messages'`;
    return Number(row?.n ?? 0);
  } finally {
    await sql.end();
  }
}

async function runTarget(
  server: ServerHandle,
  databaseUrl: string | undefined,
  token: string,
  receiverTokens: string[],
  conversationId: string,
): Promise<Result> {
  const receivers = Array.from({ length: RECEIVER_PROCS }, (_, i) => track(new ClientProcess(RECEIVERS_SCRIPT, `receivers-${server.name}-${i}`)));
  const per = Math.ceil(receiverTokens.length / receivers.length);
  await Promise.all(
    receivers.map((r, i) =>
      r.call("open", { url: server.wsUrl, tokens: receiverTokens.slice(i * per, (i + 1) * per), conversationId, concurrency: 16, timeoutMs: 30_000 }, 120_000),
    ),
  );
  const streams = await openStreams(server, token, conversationId);
  log(`${server.name}: ${receiverTokens.length} sockets joined, ${streams.length} streams open`);
  await stream(streams, conversationId, WARMUP, 1);

  const snapshot = () => Promise.all(receivers.map((r) => r.call<{ total: number; atMs: number }>("snapshot")));
  const pids = databaseUrl ? await backendPids(DB_NAME) : [];
  const cpu = new CpuWindow({ server: [server.pid], postgres: pids, receivers: receivers.map((r) => r.pid) });
  const updatedBefore = databaseUrl ? await messagesUpdated(databaseUrl) : 0;
  const before = await snapshot();
  cpu.start();
  const sent = await stream(streams, conversationId, DURATION, 2);
  const after = await snapshot();
  const cores = cpu.stop();
  // Let the last deltas arrive, and the statistics collector catch up with the last flushes.
  await Bun.sleep(1500);
  const updatedAfter = databaseUrl ? await messagesUpdated(databaseUrl) : 0;
  const stats = await Promise.all(receivers.map((r) => r.call<{ count: number; bytes: number; histogram: HistogramData }>("phase", { phase: 2 })));
  const histogram = new LatencyHistogram();
  let count = 0;
  for (const s of stats) {
    histogram.merge(s.histogram);
    count += s.count;
  }
  const deliveriesPerSecond = Math.round(after.reduce((sum, snap, i) => sum + (snap.total - before[i].total) / ((snap.atMs - before[i].atMs) / 1000), 0));
  const writes = updatedAfter - updatedBefore;
  const result: Result = {
    target: server.name,
    deliveriesPerSecond,
    expectedPerSecond: STREAMS * RATE * receiverTokens.length,
    deliveredShare: Math.round((count / (sent * receiverTokens.length)) * 10_000) / 10_000,
    latency: histogram.summary(),
    cores,
    sent,
    errors: streams.reduce((sum, s) => sum + s.errors, 0),
    ...(databaseUrl && {
      dbWritesPerMessage: Math.round((writes / STREAMS) * 10) / 10,
      dbWritesPerMessagePerSecond: Math.round((writes / STREAMS / DURATION) * 10) / 10,
    }),
  };
  const l = result.latency;
  log(
    `${server.name.padEnd(7)} ${STREAMS} streams × ${RATE} deltas/s → ${receiverTokens.length} sockets: ${deliveriesPerSecond} deliveries/s ` +
      `(expected ${result.expectedPerSecond}, ${(result.deliveredShare * 100).toFixed(2)} % arrived), p50 ${l.p50Ms} p99 ${l.p99Ms} max ${l.maxMs} ms, ` +
      `cores ${JSON.stringify(cores)}` +
      (result.dbWritesPerMessage !== undefined ? `, DB writes per streamed message ${result.dbWritesPerMessage} in ${DURATION} s (${result.dbWritesPerMessagePerSecond}/s; ${sent / STREAMS} deltas each)` : "") +
      (result.errors ? `, ${result.errors} refusals` : ""),
  );
  for (const s of streams) s.ws.close();
  await Promise.all(receivers.map((r) => r.call("close").catch(() => {})));
  for (const r of receivers) r.kill();
  return result;
}

const databaseUrl = await freshDatabase(DB_NAME);
const results: Result[] = [];
try {
  const product = await startProduct(databaseUrl, SERVER_ENV);
  log(`product pid ${product.pid} at ${product.url} on PostgreSQL database ${DB_NAME}`);
  const [agent, ...members] = await createUsers(databaseUrl, SOCKETS + 1, "streaming");
  const client = new MessagingClient({ baseUrl: product.url, token: agent.token });
  const conversation = await client.createConversation({ type: "group", name: "streaming bench" });
  await addMembers(databaseUrl, conversation.id, members.map((m) => m.id));
  const template = await client.sendMessage(conversation.id, { content: "template" });
  const raw = await startRawPublisher(template, SERVER_ENV);
  log(`raw baseline pid ${raw.pid} at ${raw.url}`);
  const tokens = members.map((m) => m.token);
  results.push(await runTarget(product, databaseUrl, agent.token, tokens, conversation.id));
  results.push(await runTarget(raw, undefined, agent.token, tokens, conversation.id));
  const [p, r] = results;
  log(`deliveries/s product/raw ${(p.deliveriesPerSecond / Math.max(1, r.deliveriesPerSecond)).toFixed(3)}; p99 product ${p.latency.p99Ms} ms vs raw ${r.latency.p99Ms} ms`);
  if (process.env.RESULT_FILE) await Bun.write(process.env.RESULT_FILE, JSON.stringify({ settings: { STREAMS, RATE, SOCKETS, DURATION, DELTA_BYTES }, results }, null, 2));
  await product.stop();
  await raw.stop();
} finally {
  await dropDatabase(DB_NAME).catch((error) => console.error(`could not drop ${DB_NAME}: ${error}`));
}
process.exit(0);
