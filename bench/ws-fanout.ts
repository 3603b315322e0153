/**
 * WebSocket fan-out of the compiled product on PostgreSQL, beside a raw baseline in the same run.
 *
 *   bun run bench/ws-fanout.ts
 *   SOCKETS=1000 RATES=100,200,400,500,700,1000 SMALL_SOCKETS=100 SMALL_RATES=1000 DURATION=6 WARMUP=2 \
 *     RECEIVER_PROCS=2 SENDERS=16 CONTENT_BYTES=64 bun run bench/ws-fanout.ts
 *   SCENARIOS=small SENDERS=1 SERVER_ENV=CLUSTER_FANOUT=off SYSCALLS=1 bun run bench/ws-fanout.ts
 *
 * What runs, each in a process of its own:
 * - the product: dist/symbia-messaging (built when missing or older than the sources) on a fresh
 *   PostgreSQL database DB_NAME (default symbia_bench_ws, dropped and recreated; dropped at the end);
 * - the raw baseline: bench/lib/raw-publisher.ts, a bare Bun.serve publishing the same frames to a native
 *   pub/sub topic, no database;
 * - RECEIVER_PROCS client processes (bench/lib/ws-receivers.ts) holding the receiving sockets, each
 *   socket a distinct user with its own session, joined to the conversation;
 * - one sender process per server (bench/lib/ws-sender.ts): `message:send` at a fixed rate, round robin
 *   over SENDERS sockets of one member (a room's messages come from many members; one connection's
 *   frames are handled one after another, which caps what a single socket can send), the wall-clock send
 *   time in the content.
 *
 * Scenarios: `large` (SOCKETS receivers in one conversation, at each rate of RATES) and `small`
 * (SMALL_SOCKETS receivers at SMALL_RATES). For each rate, the product and then the baseline run WARMUP
 * seconds of warm-up and DURATION measured seconds. Reported per run: deliveries/s (frames received by all
 * sockets per second during the measured window), the share of the measured messages' frames that arrived
 * at all, send→receive latency percentiles (same host clock), frame size, and CPU in cores of each process
 * group (and `other`: whatever else was busy on the machine).
 *
 * Other settings: SERVER_ENV="NAME=value,..." (extra server settings), SYSCALLS=1 (count the server's
 * send(2) calls with perf), PROFILE=<dir> (run the sources under Bun's CPU profiler), BUILD=auto|always|never
 * and BINARY=<path> (which executable), POSTGRES_ADMIN_URL, OPEN_CONCURRENCY (sockets opened at once per
 * receiver process), RESULT_FILE=<path> (the figures as JSON). See bench/README.md for measured figures.
 */
import { addMembers, createUsers } from "./lib/bulk-principals";
import { backendPids, dropDatabase, freshDatabase, onExit, startProduct, startRawPublisher, track, type ServerHandle } from "./lib/bench-processes";
import { LatencyHistogram, type HistogramData, type LatencySummary } from "./lib/latency-histogram";
import { CpuWindow } from "./lib/proc-stats";
import { ClientProcess, benchContent, wallClockMs } from "./lib/ws-wire";
import { MessagingClient } from "../src/client";

const numbers = (raw: string) => raw.split(",").map((value) => Number(value.trim())).filter((value) => value > 0);
const SOCKETS = Number(process.env.SOCKETS ?? 1000);
const RATES = numbers(process.env.RATES ?? "100,200,400,500,700,1000");
const SMALL_SOCKETS = Number(process.env.SMALL_SOCKETS ?? 100);
const SMALL_RATES = numbers(process.env.SMALL_RATES ?? "1000");
const SCENARIOS = (process.env.SCENARIOS ?? "large,small").split(",");
const DURATION = Number(process.env.DURATION ?? 6);
const WARMUP = Number(process.env.WARMUP ?? 2);
const RECEIVER_PROCS = Number(process.env.RECEIVER_PROCS ?? 2);
const SENDERS = Number(process.env.SENDERS ?? 16);
const CONTENT_BYTES = Number(process.env.CONTENT_BYTES ?? 64);
const OPEN_CONCURRENCY = Number(process.env.OPEN_CONCURRENCY ?? 32);
const DB_NAME = process.env.DB_NAME ?? "symbia_bench_ws";
/**
 * The sender goes faster than the default per-connection limit (50 frames/s); receivers send one frame.
 * SERVER_ENV="NAME=value,..." adds settings (e.g. CLUSTER_FANOUT=off); the raw baseline gets them too, for
 * the socket settings they share.
 */
const PRODUCT_ENV: Record<string, string> = {
  WS_RATE_LIMIT: "100000",
  WS_RATE_BURST: "100000",
  ...Object.fromEntries((process.env.SERVER_ENV ?? "").split(",").filter(Boolean).map((pair) => pair.split("=", 2) as [string, string])),
};

/** SYSCALLS=1: count the server's send(2) calls during the measured window with `perf stat` (needs perf). */
const SYSCALLS = process.env.SYSCALLS === "1";

const RECEIVERS_SCRIPT = new URL("./lib/ws-receivers.ts", import.meta.url).pathname;
const SENDER_SCRIPT = new URL("./lib/ws-sender.ts", import.meta.url).pathname;

interface Snapshot {
  total: number;
  atMs: number;
  open: number;
  otherFrames: number;
  closeCodes: Record<string, number>;
}

interface RunResult {
  scenario: string;
  target: "product" | "raw";
  sockets: number;
  rate: number;
  sent: number;
  ackErrors: Record<string, number>;
  firstError?: string;
  expectedPerSecond: number;
  deliveriesPerSecond: number;
  /** Frames of the measured messages that arrived (by the end of the drain), over sent × sockets. */
  deliveredShare: number;
  latency: LatencySummary;
  frameBytes: number;
  cores: Record<string, number>;
  /** Server CPU per delivered frame, µs. */
  serverUsPerDelivery: number;
  socketsClosed: Record<string, number>;
  /** With SYSCALLS=1: the server's send(2) calls per delivered frame. */
  sendCallsPerDelivery?: number;
  slowConsumerCloses: number;
  senderMaxLagMs: number;
  /** Delivered at least 98 % of the offered frames per second with p99 under 250 ms: no backlog building up. */
  keptUp: boolean;
}

const results: RunResult[] = [];
let phaseCounter = 0;

function log(line: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
}

async function snapshot(receivers: ClientProcess[]): Promise<Snapshot[]> {
  return Promise.all(receivers.map((receiver) => receiver.call<Snapshot>("snapshot")));
}

function closedSince(before: Snapshot[], after: Snapshot[]): Record<string, number> {
  const closed: Record<string, number> = {};
  after.forEach((snap, i) => {
    for (const [code, count] of Object.entries(snap.closeCodes)) {
      const delta = count - (before[i].closeCodes[code] ?? 0);
      if (delta > 0) closed[code] = (closed[code] ?? 0) + delta;
    }
  });
  return closed;
}

async function runOnce(
  scenario: string,
  server: ServerHandle,
  sender: ClientProcess,
  receivers: ClientProcess[],
  conversationId: string,
  sockets: number,
  rate: number,
): Promise<RunResult> {
  const warmupPhase = ++phaseCounter;
  const phase = ++phaseCounter;
  const postgresPids = server.name === "product" ? await backendPids(DB_NAME) : [];
  const cpu = new CpuWindow({
    server: [server.pid],
    postgres: postgresPids,
    receivers: receivers.map((r) => r.pid),
    sender: [sender.pid],
  });
  const slowBefore = server.counted();
  const running = sender.call<{ sent: number; errors: Record<string, number>; firstError?: string; maxLagMs: number }>(
    "run",
    { conversationId, rate, warmupSeconds: WARMUP, seconds: DURATION, warmupPhase, phase, contentBytes: CONTENT_BYTES },
    (WARMUP + DURATION + 60) * 1000,
  );
  await Bun.sleep(WARMUP * 1000);
  const before = await snapshot(receivers);
  cpu.start();
  const sendCalls = SYSCALLS ? countSendCalls(server.pid, DURATION) : undefined;
  await Bun.sleep(DURATION * 1000);
  const after = await snapshot(receivers);
  const cores = cpu.stop();
  const sendCallCount = await sendCalls;
  const sent = await running;

  // Let frames still on their way arrive: until the count stops moving (or everything is in).
  const expected = sent.sent * sockets;
  const drainDeadline = performance.now() + 10_000;
  let last = -1;
  let stats: { count: number; bytes: number; histogram: HistogramData }[] = [];
  for (;;) {
    stats = await Promise.all(receivers.map((r) => r.call<{ count: number; bytes: number; histogram: HistogramData }>("phase", { phase })));
    const count = stats.reduce((sum, s) => sum + s.count, 0);
    if (count >= expected || count === last || performance.now() > drainDeadline) break;
    last = count;
    await Bun.sleep(500);
  }
  const histogram = new LatencyHistogram();
  let count = 0;
  let bytes = 0;
  for (const s of stats) {
    histogram.merge(s.histogram);
    count += s.count;
    bytes += s.bytes;
  }
  const deliveriesPerSecond = Math.round(
    after.reduce((sum, snap, i) => sum + (snap.total - before[i].total) / ((snap.atMs - before[i].atMs) / 1000), 0),
  );
  const result: RunResult = {
    scenario,
    target: server.name as RunResult["target"],
    sockets,
    rate,
    sent: sent.sent,
    ackErrors: sent.errors,
    firstError: sent.firstError,
    expectedPerSecond: rate * sockets,
    deliveriesPerSecond,
    deliveredShare: expected ? Math.round((count / expected) * 10_000) / 10_000 : 0,
    latency: histogram.summary(),
    frameBytes: count ? Math.round(bytes / count) : 0,
    cores,
    serverUsPerDelivery: deliveriesPerSecond ? Math.round(((cores.server * 1e6) / deliveriesPerSecond) * 100) / 100 : 0,
    socketsClosed: closedSince(before, await snapshot(receivers)),
    slowConsumerCloses: server.counted() - slowBefore,
    sendCallsPerDelivery:
      sendCallCount !== undefined && deliveriesPerSecond ? Math.round((sendCallCount / DURATION / deliveriesPerSecond) * 1000) / 1000 : undefined,
    senderMaxLagMs: sent.maxLagMs,
    keptUp: false,
  };
  result.keptUp = result.deliveriesPerSecond >= 0.98 * result.expectedPerSecond && result.latency.p99Ms < 250;
  results.push(result);
  const l = result.latency;
  log(
    `${scenario} ${result.target.padEnd(7)} ${sockets} sockets × ${rate} msg/s: ${deliveriesPerSecond} deliveries/s ` +
      `(expected ${result.expectedPerSecond}, ${(result.deliveredShare * 100).toFixed(2)} % arrived), ` +
      `p50 ${l.p50Ms} p90 ${l.p90Ms} p99 ${l.p99Ms} max ${l.maxMs} ms, frame ${result.frameBytes} B, cores ${JSON.stringify(cores)}` +
      (result.sendCallsPerDelivery !== undefined ? `, send(2) calls per delivery ${result.sendCallsPerDelivery}` : "") +
      (Object.keys(result.socketsClosed).length ? `, closed ${JSON.stringify(result.socketsClosed)}` : "") +
      (Object.keys(sent.errors).length ? `, send errors ${JSON.stringify(sent.errors)} (${sent.firstError})` : ""),
  );
  return result;
}

/** How many send(2) calls a process makes in the next `seconds` (perf's syscall tracepoint). */
async function countSendCalls(pid: number, seconds: number): Promise<number | undefined> {
  const perf = track(
    Bun.spawn(["perf", "stat", "-x", ",", "-e", "syscalls:sys_enter_sendto", "-p", String(pid), "--", "sleep", String(seconds)], {
      stdout: "ignore",
      stderr: "pipe",
    }),
  );
  const [text] = await Promise.all([new Response(perf.stderr).text(), perf.exited]);
  const count = Number(text.split("\n").find((line) => line.includes("sys_enter_sendto"))?.split(",")[0]);
  return Number.isFinite(count) ? count : undefined;
}

async function openReceivers(
  receivers: ClientProcess[],
  server: ServerHandle,
  tokens: string[],
  conversationId: string,
): Promise<number> {
  const started = performance.now();
  const per = Math.ceil(tokens.length / receivers.length);
  let pending = receivers.map((_, i) => tokens.slice(i * per, (i + 1) * per));
  let total = 0;
  // A socket that could not open or join (the shared PostgreSQL out of connections for a moment, say) is
  // tried again, twice at most.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const opened = await Promise.all(
      receivers.map((receiver, i) =>
        receiver.call<{ opened: number; failedTokens: string[]; errors: Record<string, number> }>(
          "open",
          { url: server.wsUrl, tokens: pending[i], conversationId, concurrency: OPEN_CONCURRENCY, timeoutMs: 30_000 },
          300_000,
        ),
      ),
    );
    total += opened.reduce((sum, o) => sum + o.opened, 0);
    pending = opened.map((o) => o.failedTokens);
    const failed = pending.reduce((sum, p) => sum + p.length, 0);
    if (failed === 0) break;
    log(`${server.name}: ${failed} sockets failed to open (attempt ${attempt}): ${JSON.stringify(opened.map((o) => o.errors))}`);
    if (attempt === 3) throw new Error(`${failed} receiving sockets failed to open on ${server.name}`);
    await Bun.sleep(2_000);
  }
  log(`${server.name}: ${total} sockets open and joined in ${Math.round(performance.now() - started)} ms`);
  return total;
}

// ---------------------------------------------------------------- the run

const startedAt = performance.now();
const databaseUrl = await freshDatabase(DB_NAME);
let dropped = false;
onExit(() => {
  // Synchronous exit path: dropping needs a connection, so it is left to the normal end below.
  if (!dropped) console.error(`database ${DB_NAME} left in place`);
});

try {
  const product = await startProduct(databaseUrl, PRODUCT_ENV);
  log(`product pid ${product.pid} at ${product.url} on PostgreSQL database ${DB_NAME}`);
  const receiverCount = Math.max(SCENARIOS.includes("large") ? SOCKETS : 0, SCENARIOS.includes("small") ? SMALL_SOCKETS : 0);
  const [owner, ...members] = await createUsers(databaseUrl, receiverCount + 1, "fanout");
  const ownerClient = new MessagingClient({ baseUrl: product.url, token: owner.token });
  const conversations: Record<string, { id: string; sockets: number; rates: number[] }> = {};
  for (const scenario of SCENARIOS) {
    const sockets = scenario === "large" ? SOCKETS : SMALL_SOCKETS;
    const rates = scenario === "large" ? RATES : SMALL_RATES;
    const conversation = await ownerClient.createConversation({ type: "group", name: `fan-out ${scenario}` });
    await addMembers(databaseUrl, conversation.id, members.slice(0, sockets).map((m) => m.id));
    conversations[scenario] = { id: conversation.id, sockets, rates };
  }
  // One real message: its JSON is the raw baseline's template, so both servers publish frames of one shape.
  const firstConversation = Object.values(conversations)[0].id;
  const template = await ownerClient.sendMessage(firstConversation, { content: benchContent(0, wallClockMs(), CONTENT_BYTES) });
  const raw = await startRawPublisher(template, PRODUCT_ENV);
  log(`raw baseline pid ${raw.pid} at ${raw.url}`);

  const senders = new Map<ServerHandle, ClientProcess>();
  for (const server of [product, raw]) {
    const sender = track(new ClientProcess(SENDER_SCRIPT, `sender-${server.name}`));
    await sender.call("open", { url: server.wsUrl, token: owner.token, connections: SENDERS });
    senders.set(server, sender);
  }

  for (const scenario of SCENARIOS) {
    const { id: conversationId, sockets, rates } = conversations[scenario];
    const receivers = Array.from({ length: RECEIVER_PROCS }, (_, i) => track(new ClientProcess(RECEIVERS_SCRIPT, `receivers-${i}`)));
    const tokens = members.slice(0, sockets).map((m) => m.token);
    const open = { product: await openReceivers(receivers, product, tokens, conversationId), raw: await openReceivers(receivers, raw, tokens, conversationId) };
    // Joins announce presence to the room; let that settle before measuring.
    await Bun.sleep(2_000);
    for (const rate of rates) {
      for (const server of [product, raw]) {
        await runOnce(scenario, server, senders.get(server)!, receivers, conversationId, open[server.name as "product" | "raw"], rate);
      }
    }
    await Promise.all(receivers.map((r) => r.call("close").catch(() => undefined)));
    for (const r of receivers) r.kill();
  }

  for (const sender of senders.values()) sender.kill();
  await product.stop();
  await raw.stop();
} finally {
  await dropDatabase(DB_NAME).then(
    () => (dropped = true),
    (error) => console.error(`could not drop ${DB_NAME}: ${error}`),
  );
}

// ---------------------------------------------------------------- report

console.log(`\nws-fanout: product (compiled, PostgreSQL) vs raw Bun.serve pub/sub; ${WARMUP} s warm-up + ${DURATION} s measured per run; ${RECEIVER_PROCS} receiver processes, ${SENDERS} sender sockets; ${Math.round((performance.now() - startedAt) / 1000)} s in all\n`);
const header = ["scenario", "target", "sockets", "msg/s", "expected/s", "deliveries/s", "kept up", "arrived", "p50 ms", "p90 ms", "p99 ms", "max ms", "frame B", "server cores", "µs/delivery", "receivers", "postgres", "other"];
console.log(header.join("\t"));
for (const r of results) {
  console.log(
    [r.scenario, r.target, r.sockets, r.rate, r.expectedPerSecond, r.deliveriesPerSecond, r.keptUp ? "yes" : "no", `${(r.deliveredShare * 100).toFixed(2)}%`, r.latency.p50Ms, r.latency.p90Ms, r.latency.p99Ms, r.latency.maxMs, r.frameBytes, r.cores.server, r.serverUsPerDelivery, r.cores.receivers, r.cores.postgres, r.cores.other].join("\t"),
  );
}
console.log("");
for (const r of results.filter((x) => x.target === "product")) {
  const base = results.find((x) => x.target === "raw" && x.scenario === r.scenario && x.rate === r.rate);
  if (!base) continue;
  const ratio = base.deliveriesPerSecond ? r.deliveriesPerSecond / base.deliveriesPerSecond : 0;
  const cpuRatio = r.serverUsPerDelivery ? base.serverUsPerDelivery / r.serverUsPerDelivery : 0;
  console.log(
    `${r.scenario} ${r.sockets} sockets × ${r.rate} msg/s: product/raw deliveries/s = ${ratio.toFixed(2)} (target ≥ 0.5), ` +
      `p99 ${r.latency.p99Ms} ms vs ${base.latency.p99Ms} ms raw, server CPU per delivery raw/product = ${cpuRatio.toFixed(2)}` +
      (r.sockets === 100 && r.rate === 1000 ? ` — p99 target < 50 ms: ${r.latency.p99Ms < 50 ? "met" : "MISSED"}` : ""),
  );
}
for (const scenario of SCENARIOS) {
  const best = (target: string) =>
    Math.max(0, ...results.filter((r) => r.scenario === scenario && r.target === target && r.keptUp).map((r) => r.rate));
  const top = (target: string) =>
    Math.max(0, ...results.filter((r) => r.scenario === scenario && r.target === target).map((r) => r.deliveriesPerSecond));
  console.log(
    `${scenario}: highest rate kept up (≥ 98 % of offered deliveries/s, p99 < 250 ms): product ${best("product") || "none"} msg/s, raw ${best("raw") || "none"} msg/s; ` +
      `most deliveries/s: product ${top("product")}, raw ${top("raw")} (${(top("product") / (top("raw") || 1)).toFixed(2)})`,
  );
}
if (process.env.RESULT_FILE) await Bun.write(process.env.RESULT_FILE, JSON.stringify(results, null, 2));
process.exit(0);
