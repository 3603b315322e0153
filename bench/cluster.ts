#!/usr/bin/env bun
/**
 * Cross-instance fan-out on PostgreSQL (LISTEN/NOTIFY, src/broker/postgres/), in three parts.
 *
 * 1. Fan-out: SOCKETS WebSockets (1,000) joined to one conversation, held by RECEIVER_PROCS client
 *    processes; one sender socket on instance A sends RATE messages/s (open loop; each rate in turn) for
 *    WARMUP + DURATION seconds. Case "A+B": half the sockets on A, half on B (B's half hears A's messages
 *    through the relay). Case "A only": every socket on A, B still running. Reports deliveries/s
 *    (messages sent in the measured window × sockets that received them, per second), the share of
 *    expected deliveries that arrived, and p50/p99/max latency from the sender's send to a receiver's read
 *    (both clocks are this host's).
 * 2. Durable sends/s of one instance, cross-instance fan-out on (the default) and off (CLUSTER_FANOUT=off):
 *    32 closed-loop REST clients POSTing messages (each answer is after commit), into one conversation and
 *    spread over a hundred. A listening peer (see startListeningPeer) stands for the other instances, since
 *    an instance that hears none relays nothing.
 * 3. The CPU a send costs the server and its PostgreSQL backends, fan-out on and off, at a fixed SEND_RATE
 *    into a hundred conversations: with the same work per second on both sides, this separates the relay's
 *    cost from the noise of a busy machine, which throughput at saturation mixes in.
 *
 *   bun run bench/cluster.ts
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/symbia_bench_cluster RATE=20,100 bun run bench/cluster.ts
 *
 * The database named by DATABASE_URL (default symbia_bench_cluster on 127.0.0.1) is DROPPED and recreated;
 * its name must contain "bench". The servers run as processes of their own (`bun run src/main.ts serve`,
 * or with SERVER=binary the compiled dist/symbia-messaging, built first when missing or older than src/),
 * and so do the clients (this file, run as `receivers`, `sender` or `sends`), so that no two share an
 * event loop. Settings:
 *   SOCKETS (1000), RECEIVER_PROCS (4), RATE (messages/s, a list: 20,100), CONTENT_BYTES (200),
 *   DURATION (s, 10), WARMUP (s, 2), CONCURRENCY (32), POOL (server pool, 20),
 *   ROUNDS (fan-out rounds per case, 2), SEND_ROUNDS (rounds per side of parts 2 and 3, 3): sides run
 *     interleaved, A B B A A B…; part 1 reports each case's better round, part 2 the best round, the range
 *     and the medians of CPU per send (read from /proc), part 3 medians,
 *   SEND_CASES (conversations part 2 sends into: 1,100), SEND_RATE (sends/s of part 3, 2500),
 *   PARTS (fanout,sends,cpu), SOURCE=<dir> to run the servers from another checkout (to compare versions).
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import postgres from "postgres";
import { recreateBenchDatabase } from "./lib/bench-database";
import { REPOSITORY, minimalEnv, productCommand, startServer as startProcess, tempDir } from "../test/support/harness";
import { formatSessionToken, hashSecret, newSecret } from "../src/auth/secrets";
import { EVENTS_CHANNEL } from "../src/broker/postgres/postgres-broker";

const env = process.env;
const num = (name: string, fallback: number) => (env[name] === undefined || env[name] === "" ? fallback : Number(env[name]));
/** Wall-clock milliseconds with sub-millisecond precision, comparable between processes on one host. */
const now = () => performance.timeOrigin + performance.now();
const MARK = "@@";

// ---------------------------------------------------------------- client processes

interface ReceiverSpec {
  wsUrl: string;
  tokens: string[];
  conversationId: string;
  /** Where the latencies of the measured window are written (Float32Array, ms). */
  out: string;
}

/**
 * Opens one socket per token, joins, prints "ready", then records the send time and latency of every
 * message:new until a "stop <from> <to>" line arrives on stdin; writes the latencies of messages sent in
 * [from, to) and prints {deliveries, closes}.
 */
async function receiverProcess(spec: ReceiverSpec): Promise<void> {
  let sent = new Float64Array(1 << 20);
  let latency = new Float64Array(1 << 20);
  let count = 0;
  let stopping = false;
  const closes: Record<string, number> = {};
  const record = (data: string, at: number) => {
    // Only the send time is read out of the frame; parsing the whole JSON would cost more than the server.
    if (!data.startsWith('{"event":"message:new"')) return;
    const start = data.indexOf(MARK);
    if (start < 0) return;
    const sentAt = Number(data.slice(start + MARK.length, data.indexOf(MARK, start + MARK.length)));
    if (count === sent.length) {
      const [s, l] = [new Float64Array(count * 2), new Float64Array(count * 2)];
      s.set(sent);
      l.set(latency);
      [sent, latency] = [s, l];
    }
    sent[count] = sentAt;
    latency[count++] = at - sentAt;
  };
  const sockets: WebSocket[] = [];
  const open = (token: string) =>
    new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(spec.wsUrl, { headers: { authorization: `Bearer ${token}` } } as any);
      sockets.push(ws);
      const timer = setTimeout(() => reject(new Error("join timed out")), 30_000);
      ws.onmessage = (event) => {
        const data = String(event.data);
        if (data.startsWith('{"event":"session:ready"')) {
          ws.send(JSON.stringify({ event: "join:conversation", data: { conversationId: spec.conversationId }, ack: "join" }));
        } else if (data.startsWith('{"event":"ack"')) {
          clearTimeout(timer);
          if (!data.includes('"ok":true')) return reject(new Error(`join refused: ${data}`));
          ws.onmessage = (message) => record(String(message.data), now());
          resolve();
        }
      };
      ws.onclose = (event) => {
        clearTimeout(timer);
        if (!stopping) closes[event.code] = (closes[event.code] ?? 0) + 1;
        reject(new Error(`closed ${event.code} before joining`));
      };
    });
  for (let i = 0; i < spec.tokens.length; i += 25) await Promise.all(spec.tokens.slice(i, i + 25).map(open));
  process.stdout.write("ready\n");
  for await (const line of console) {
    const [word, from, to] = line.trim().split(" ");
    if (word !== "stop") continue;
    stopping = true;
    const window: number[] = [];
    for (let i = 0; i < count; i++) if (sent[i] >= Number(from) && sent[i] < Number(to)) window.push(latency[i]);
    writeFileSync(spec.out, new Uint8Array(Float32Array.from(window).buffer));
    process.stdout.write(JSON.stringify({ deliveries: window.length, closes }) + "\n");
    for (const ws of sockets) ws.close();
    process.exit(0);
  }
}

interface SenderSpec {
  wsUrl: string;
  token: string;
  conversationId: string;
  rate: number;
  startAt: number;
  seconds: number;
  contentBytes: number;
}

/** Sends `rate` messages/s from `startAt` for `seconds` over one socket, without waiting for acks. */
async function senderProcess(spec: SenderSpec): Promise<void> {
  const ws = new WebSocket(spec.wsUrl, { headers: { authorization: `Bearer ${spec.token}` } } as any);
  let acked = 0;
  let failed = 0;
  let firstError: string | undefined;
  await new Promise<void>((resolve, reject) => {
    ws.onmessage = (event) => String(event.data).startsWith('{"event":"session:ready"') && resolve();
    ws.onclose = (event) => reject(new Error(`sender socket closed ${event.code}`));
  });
  ws.onmessage = (event) => {
    const data = String(event.data);
    if (!data.startsWith('{"event":"ack"')) return;
    if (data.includes('"ok":true')) acked++;
    else {
      failed++;
      firstError ??= data.slice(0, 300);
    }
  };
  const total = Math.round(spec.rate * spec.seconds);
  const padding = "x".repeat(Math.max(0, spec.contentBytes - 24));
  let sent = 0;
  await Bun.sleep(Math.max(0, spec.startAt - now()));
  while (sent < total) {
    const due = spec.startAt + (sent * 1000) / spec.rate;
    const wait = due - now();
    if (wait > 1) await Bun.sleep(wait);
    const at = now();
    ws.send(`{"event":"message:send","data":{"conversationId":"${spec.conversationId}","content":"${MARK}${at.toFixed(3)}${MARK} ${padding}"},"ack":${sent}}`);
    sent++;
  }
  const deadline = now() + 15_000;
  while (acked + failed < sent && now() < deadline) await Bun.sleep(10);
  process.stdout.write(JSON.stringify({ sent, acked, failed, firstError }) + "\n");
  ws.close();
  process.exit(0);
}

interface SendsSpec {
  baseUrl: string;
  tokens: string[];
  conversations: string[];
  concurrency: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** Open loop at this many sends/s (at most `concurrency` × 8 in flight) instead of closed loops. */
  rate?: number;
}

/**
 * REST sends as tokens[i] into conversations[i mod n]: `concurrency` closed loops, or an open loop at a
 * fixed rate; prints the result.
 */
async function sendsProcess(spec: SendsSpec): Promise<void> {
  const measureFrom = now() + spec.warmupSeconds * 1000;
  const end = measureFrom + spec.durationSeconds * 1000;
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const body = JSON.stringify({ content: "benchmark message: a short line of text, like most chat messages" });
  const send = async (i: number) => {
    const url = `${spec.baseUrl}/api/conversations/${spec.conversations[i % spec.conversations.length]}/messages`;
    const started = now();
    let ok = false;
    try {
      const res = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${spec.tokens[i % spec.tokens.length]}`, "content-type": "application/json" }, body });
      const text = await res.text();
      ok = res.status === 201;
      if (!ok) firstError ??= `${res.status} ${text.slice(0, 200)}`;
    } catch (error) {
      firstError ??= String(error);
    }
    if (started < measureFrom) return;
    if (ok) latencies.push(now() - started);
    else errors++;
  };
  if (spec.rate) {
    const start = now();
    const inflight = new Set<Promise<void>>();
    for (let i = 0; ; i++) {
      const due = start + (i * 1000) / spec.rate;
      if (due >= end) break;
      if (due - now() > 1) await Bun.sleep(due - now());
      if (inflight.size >= spec.concurrency * 8) {
        if (due >= measureFrom) errors++; // the server fell behind: counted, not queued
        continue;
      }
      const sent: Promise<void> = send(i).finally(() => inflight.delete(sent));
      inflight.add(sent);
    }
    await Promise.all(inflight);
  } else {
    await Promise.all(
      Array.from({ length: spec.concurrency }, async (_, loop) => {
        while (now() < end) await send(loop);
      }),
    );
  }
  latencies.sort((x, y) => x - y);
  const pct = (p: number) => round2(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0);
  process.stdout.write(
    JSON.stringify({ sends: latencies.length, errors, firstError, rate: Math.round(latencies.length / spec.durationSeconds), p50Ms: pct(0.5), p99Ms: pct(0.99) }) + "\n",
  );
  process.exit(0);
}

const round2 = (x: number) => Math.round(x * 100) / 100;

// ---------------------------------------------------------------- orchestration

/** Lines of a child's stdout, as they come. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true });
    for (let newline = buffered.indexOf("\n"); newline >= 0; newline = buffered.indexOf("\n")) {
      yield buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
    }
  }
  if (buffered) yield buffered;
}

function spawnSelf(role: string, spec: unknown, stdin: "pipe" | "ignore" = "ignore") {
  return Bun.spawn([process.execPath, "run", import.meta.path, role], {
    env: { ...env, BENCH_SPEC: JSON.stringify(spec) },
    stdin,
    stdout: "pipe",
    stderr: "inherit",
  });
}

async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** The command that runs a server: the source, or the compiled executable (built when missing or stale). */
function serverCommand(): string[] {
  if (env.SOURCE) return [...productCommand({ source: resolve(env.SOURCE) }), "serve"];
  if (env.SERVER !== "binary") return [...productCommand(), "serve"];
  const binary = join(REPOSITORY, "dist/symbia-messaging");
  if (!existsSync(binary) || statSync(binary).mtimeMs < newestMtime(join(REPOSITORY, "src"))) {
    const build = Bun.spawnSync([process.execPath, "run", "build"], { cwd: REPOSITORY, stdout: "inherit", stderr: "inherit" });
    if (build.exitCode !== 0) throw new Error("bun run build failed");
  }
  return [binary];
}

interface Server {
  url: string;
  wsUrl: string;
  pid: number;
  stop(): Promise<void>;
}

async function startServer(databaseUrl: string, extra: Record<string, string> = {}): Promise<Server> {
  const dataDir = tempDir("symbia-bench-cluster-");
  const server = await startProcess({
    command: serverCommand(),
    env: {
      ...minimalEnv(),
      DATA_DIR: dataDir,
      DATABASE_URL: databaseUrl,
      DATABASE_POOL_SIZE: String(num("POOL", 20)),
      ADMIN_SOCKET: "off",
      LOG_LEVEL: "warn",
      // Only the sender writes over its socket, faster than the default per-connection limit.
      WS_RATE_LIMIT: "100000",
      WS_RATE_BURST: "100000",
      ...extra,
    },
    echo: true,
  });
  return {
    url: server.url,
    wsUrl: server.wsUrl,
    pid: server.pid,
    async stop() {
      await server.stop(15_000);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Users with sessions, written straight into the database; returns their ids and tokens. */
async function createUsers(sql: postgres.Sql, count: number): Promise<{ id: string; token: string }[]> {
  const users = Array.from({ length: count }, () => {
    const id = crypto.randomUUID();
    const sessionId = crypto.randomUUID();
    const secret = newSecret();
    return { id, sessionId, hash: hashSecret(secret), token: formatSessionToken(sessionId, secret) };
  });
  const expires = new Date(Date.now() + 24 * 3600_000);
  for (let i = 0; i < users.length; i += 500) {
    const batch = users.slice(i, i + 500);
    await sql`insert into principals ${sql(batch.map((u) => ({ id: u.id, type: "user", email: `${u.id}@bench.test`, name: "bench" })))}`;
    await sql`insert into sessions ${sql(batch.map((u) => ({ id: u.sessionId, principal_id: u.id, token_hash: u.hash, expires_at: expires })))}`;
  }
  return users.map((u) => ({ id: u.id, token: u.token }));
}

async function createConversation(sql: postgres.Sql, owner: string, members: string[]): Promise<string> {
  const [{ id }] = await sql<{ id: string }[]>`insert into conversations (type, name, created_by) values ('group', 'bench', ${owner}) returning id`;
  const rows = [owner, ...members].map((user, i) => ({ conversation_id: id, user_id: user, user_type: "user", role: i === 0 ? "owner" : "member" }));
  for (let i = 0; i < rows.length; i += 1000) await sql`insert into participants ${sql(rows.slice(i, i + 1000))}`;
  return id;
}

function percentile(sorted: Float32Array, fraction: number): number {
  return sorted.length ? round2(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]) : 0;
}

interface FanoutResult {
  case: string;
  rate: number;
  sent: number;
  acked: number;
  deliveriesPerSecond: number;
  deliveredShare: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  closes: Record<string, number>;
}

async function fanoutRound(
  label: string,
  rate: number,
  servers: Server[],
  receivers: { token: string }[],
  sender: { token: string },
  conversationId: string,
  workDir: string,
): Promise<FanoutResult> {
  const procs = num("RECEIVER_PROCS", 4);
  const warmup = num("WARMUP", 2);
  const duration = num("DURATION", 10);
  const children = Array.from({ length: procs }, (_, p) => {
    const tokens = receivers.filter((_, i) => i % procs === p).map((r) => r.token);
    const out = join(workDir, `${label.replace(/\W/g, "")}-${rate}-${p}.f32`);
    const child = spawnSelf("receivers", { wsUrl: servers[p % servers.length].wsUrl, tokens, conversationId, out } satisfies ReceiverSpec, "pipe");
    return { child, out, output: lines(child.stdout) };
  });
  await within(120_000, "receivers joining", Promise.all(children.map(async ({ output }) => ((await output.next()).value === "ready" ? undefined : Promise.reject(new Error("receiver failed"))))));
  // Let the presence announcements of a thousand joins drain before measuring.
  await Bun.sleep(3000);

  const startAt = now() + 500;
  const senderChild = spawnSelf("sender", {
    wsUrl: servers[0].wsUrl,
    token: sender.token,
    conversationId,
    rate,
    startAt,
    seconds: warmup + duration,
    contentBytes: num("CONTENT_BYTES", 200),
  } satisfies SenderSpec);
  const senderResult = JSON.parse((await within((warmup + duration + 60) * 1000, "sender", new Response(senderChild.stdout).text())).trim());
  await Bun.sleep(2000);
  // Sends are due every 1000/rate ms from startAt; the window's edges fall between two of them.
  const from = startAt + warmup * 1000 - 500 / rate;
  const to = from + duration * 1000;
  const results = await Promise.all(
    children.map(async ({ child, output }) => {
      child.stdin!.write(`stop ${from} ${to}\n`);
      child.stdin!.end();
      const line = (await within(30_000, "receiver result", output.next())).value as string;
      await child.exited;
      return JSON.parse(line) as { deliveries: number; closes: Record<string, number> };
    }),
  );
  const parts = children.map(({ out }) => new Float32Array(readFileSync(out).buffer.slice(0)));
  const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  all.sort();
  const deliveries = results.reduce((n, r) => n + r.deliveries, 0);
  const closes: Record<string, number> = {};
  for (const r of results) for (const [code, n] of Object.entries(r.closes)) closes[code] = (closes[code] ?? 0) + n;
  const expected = rate * duration * receivers.length;
  if (senderResult.failed) console.error(`  ${label}: ${senderResult.failed} sends failed, first: ${senderResult.firstError}`);
  return {
    case: label,
    rate,
    sent: senderResult.sent,
    acked: senderResult.acked,
    deliveriesPerSecond: Math.round(deliveries / duration),
    deliveredShare: round2(deliveries / expected),
    p50Ms: percentile(all, 0.5),
    p99Ms: percentile(all, 0.99),
    maxMs: percentile(all, 1),
    closes,
  };
}

const CLOCK_TICKS = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

/** CPU seconds (user + system) used so far by a process, from /proc (0 where it cannot be read). */
function cpuSeconds(pid: number | string): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds used so far by each backend serving the benchmark's database (the server's pool, its
 * LISTEN connection and its notification sender), by pid. Other databases' load on a shared PostgreSQL is
 * left out, and so are its background processes (WAL writer, checkpointer).
 */
async function backendCpuSeconds(sql: postgres.Sql): Promise<Map<number, number>> {
  const rows = await sql<{ pid: number }[]>`select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`;
  return new Map(rows.map((r) => [r.pid, cpuSeconds(r.pid)]));
}

/** CPU the backends present at both samples used between them. */
function backendCpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, cpu] of after) if (before.has(pid)) total += cpu - before.get(pid)!;
  return total;
}

/**
 * Another instance, as far as the relay can tell: it listens on the channel (so PostgreSQL delivers every
 * notification to its backend, as to another instance's) and heartbeats, but does nothing with what it
 * hears: in a deployment that work runs on a machine of its own. An instance that hears no other relays
 * nothing, so parts 2 and 3 run beside this peer.
 */
async function startListeningPeer(databaseUrl: string): Promise<{ stop(): Promise<void> }> {
  const peer = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  await peer.listen(EVENTS_CHANNEL, () => {});
  const heartbeat = JSON.stringify({ o: "benchmark-peer", i: [{ k: "hb" }] });
  const beat = () => peer`select pg_notify(${EVENTS_CHANNEL}, ${heartbeat})`.then(() => {}, () => {});
  await beat();
  const timer = setInterval(beat, 1000);
  return {
    async stop() {
      clearInterval(timer);
      await peer.end({ timeout: 2 });
    },
  };
}

async function runSends(sql: postgres.Sql, server: Server, tokens: string[], conversations: string[], rate?: number) {
  const warmup = num("WARMUP", 2);
  const duration = num("DURATION", 10);
  // CPU of the server and of its PostgreSQL backends over the measured window, per send.
  const sample = async () => ({ server: cpuSeconds(server.pid), backends: await backendCpuSeconds(sql) });
  const samples = [warmup, warmup + duration].map((at) => Bun.sleep(at * 1000).then(sample));
  const child = spawnSelf("sends", {
    baseUrl: server.url,
    tokens,
    conversations,
    concurrency: num("CONCURRENCY", 32),
    warmupSeconds: num("WARMUP", 2),
    durationSeconds: num("DURATION", 10),
    rate,
  } satisfies SendsSpec);
  const text = await within((warmup + duration + 60) * 1000, "sends", new Response(child.stdout).text());
  const cpu = await Promise.all(samples);
  const result = JSON.parse(text.trim()) as { sends: number; errors: number; firstError?: string; rate: number; p50Ms: number; p99Ms: number };
  const perSend = (seconds: number) => Math.round((seconds / result.sends) * 1e6);
  return {
    ...result,
    serverCpuUs: perSend(cpu[1].server - cpu[0].server),
    postgresCpuUs: perSend(backendCpuBetween(cpu[0].backends, cpu[1].backends)),
  };
}

function table(header: string[], rows: (string | number)[][]): string {
  const fmt = (v: string | number) => (typeof v === "number" ? v.toLocaleString("en-US") : v);
  return [`| ${header.join(" | ")} |`, `|${header.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`, ...rows.map((r) => `| ${r.map(fmt).join(" | ")} |`)].join("\n");
}

async function main(): Promise<void> {
  const databaseUrl = env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/symbia_bench_cluster";
  const parts = (env.PARTS ?? "fanout,sends,cpu").split(",");
  const rounds = num("ROUNDS", 2);
  const sendRounds = num("SEND_ROUNDS", 3);
  // A B B A A B …: drift of the machine's load over the run does not favour either side.
  const order = (a: string, b: string, n = rounds) => Array.from({ length: n * 2 }, (_, i) => (i % 4 === 0 || i % 4 === 3 ? a : b));
  const workDir = mkdtempSync(join(tmpdir(), "symbia-bench-cluster-out-"));
  await recreateBenchDatabase(databaseUrl);
  // The first server migrates the empty database.
  const migrator = await startServer(databaseUrl, { CLUSTER_FANOUT: "off" });
  await migrator.stop();
  const sql = postgres(databaseUrl, { max: 2, onnotice: () => {} });
  const started = Date.now();
  const summary: Record<string, unknown> = {
    at: new Date().toISOString(),
    server: env.SERVER === "binary" ? "binary" : "source",
    load: readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" "),
  };
  try {
    if (parts.includes("fanout")) {
      const sockets = num("SOCKETS", 1000);
      const [sender, ...receivers] = await createUsers(sql, sockets + 1);
      const conversationId = await createConversation(sql, sender.id, receivers.map((r) => r.id));
      const a = await startServer(databaseUrl);
      const b = await startServer(databaseUrl);
      const best = new Map<string, FanoutResult>();
      const all: FanoutResult[] = [];
      try {
        for (const rate of (env.RATE ?? "20,100").split(",").map(Number)) {
          for (const label of order("A+B", "A only")) {
            const servers = label === "A+B" ? [a, b] : [a];
            const result = await fanoutRound(label, rate, servers, receivers, sender, conversationId, workDir);
            console.log(JSON.stringify(result));
            all.push(result);
            const key = `${rate} ${label}`;
            const previous = best.get(key);
            // Better: more deliveries; between equals, the lower p99.
            if (!previous || result.deliveriesPerSecond > previous.deliveriesPerSecond * 1.01 || (result.deliveriesPerSecond >= previous.deliveriesPerSecond * 0.99 && result.p99Ms < previous.p99Ms)) best.set(key, result);
          }
        }
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
      const spread = (r: FanoutResult) => {
        const p99s = all.filter((x) => x.rate === r.rate && x.case === r.case).map((x) => x.p99Ms);
        return `${Math.min(...p99s)}–${Math.max(...p99s)}`;
      };
      const rows = [...best.values()].map((r) => [`${r.rate}/s, ${r.case}`, r.sent, r.deliveriesPerSecond, `${Math.round(r.deliveredShare * 100)} %`, r.p50Ms, r.p99Ms, spread(r), r.maxMs]);
      console.log(`\nFan-out: ${sockets} sockets, each rate for ${num("DURATION", 10)} s, better of ${rounds}\n`);
      console.log(table(["Rate, case", "sent", "deliveries/s", "delivered", "p50 ms", "p99 ms", "p99 range", "max ms"], rows));
      summary.fanout = [...best.values()];
    }
    const concurrency = num("CONCURRENCY", 32);
    const users = await createUsers(sql, concurrency);
    const peer = parts.includes("sends") || parts.includes("cpu") ? await startListeningPeer(databaseUrl) : undefined;
    const conversationsOf = async (count: number) => {
      const conversations: string[] = [];
      for (let i = 0; i < count; i++) conversations.push(await createConversation(sql, users[0].id, users.slice(1).map((u) => u.id)));
      return conversations;
    };
    const median = (values: number[]) => {
      const sorted = [...values].sort((x, y) => x - y);
      const mid = sorted.length >> 1;
      return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    };
    if (parts.includes("sends")) {
      const cases: [string, string[]][] = [];
      for (const count of (env.SEND_CASES ?? "1,100").split(",").map(Number)) {
        cases.push([count === 1 ? "1 conversation" : `${count} conversations`, await conversationsOf(count)]);
      }
      type SendsResult = Awaited<ReturnType<typeof runSends>>;
      const runs = new Map<string, SendsResult[]>();
      for (const [name, conversations] of cases) {
        for (const fanout of order("on", "off", sendRounds)) {
          const server = await startServer(databaseUrl, { CLUSTER_FANOUT: fanout });
          try {
            const result = await runSends(sql, server, users.map((u) => u.token), conversations);
            console.log(JSON.stringify({ case: name, fanout, ...result }));
            const key = `${name}|${fanout}`;
            runs.set(key, [...(runs.get(key) ?? []), result]);
          } finally {
            await server.stop();
          }
        }
      }
      const rows: (string | number)[][] = [];
      const ratios: Record<string, { best: number; median: number }> = {};
      for (const [name] of cases) {
        const describe = (fanout: string) => {
          const results = runs.get(`${name}|${fanout}`)!;
          const best = results.reduce((x, y) => (y.rate > x.rate ? y : x));
          const rates = results.map((r) => r.rate);
          return {
            best,
            median: median(rates),
            range: `${Math.min(...rates).toLocaleString("en-US")}–${Math.max(...rates).toLocaleString("en-US")}`,
            serverUs: Math.round(median(results.map((r) => r.serverCpuUs))),
            postgresUs: Math.round(median(results.map((r) => r.postgresCpuUs))),
          };
        };
        for (const fanout of ["off", "on"]) {
          const d = describe(fanout);
          rows.push([`${name}, fan-out ${fanout}`, d.best.rate, d.range, d.best.p50Ms, d.best.p99Ms, d.serverUs, d.postgresUs]);
        }
        const [on, off] = [describe("on"), describe("off")];
        ratios[name] = { best: round2(on.best.rate / off.best.rate), median: round2(on.median / off.median) };
      }
      console.log(`\nDurable REST sends of one instance, ${concurrency} clients, ${sendRounds} rounds of ${num("DURATION", 10)} s per side (best; CPU medians)\n`);
      console.log(table(["Case", "sends/s (best)", "range", "p50 ms", "p99 ms", "server CPU µs/send", "its backends' CPU µs/send"], rows));
      console.log("");
      console.log(table(["Case", "on / off, best (target ≥ 0.9)", "on / off, medians"], Object.entries(ratios).map(([name, r]) => [name, `**${r.best.toFixed(2)}**`, r.median.toFixed(2)])));
      summary.sends = Object.fromEntries(runs);
      summary.ratios = ratios;
    }
    if (parts.includes("cpu")) {
      // The same sends at a fixed rate below saturation: the work per second is equal on both sides, so
      // the CPU per send shows what the relay costs, apart from how busy the machine happens to be.
      const rate = num("SEND_RATE", 2500);
      const conversations = await conversationsOf(100);
      const runs: Record<string, Awaited<ReturnType<typeof runSends>>[]> = { on: [], off: [] };
      for (const fanout of order("on", "off", sendRounds)) {
        const server = await startServer(databaseUrl, { CLUSTER_FANOUT: fanout });
        try {
          const result = await runSends(sql, server, users.map((u) => u.token), conversations, rate);
          console.log(JSON.stringify({ case: `${rate}/s into 100 conversations`, fanout, ...result }));
          runs[fanout].push(result);
        } finally {
          await server.stop();
        }
      }
      const rows = (["off", "on"] as const).map((fanout) => {
        const results = runs[fanout];
        return [
          `fan-out ${fanout}`,
          Math.round(median(results.map((r) => r.rate))),
          results.reduce((n, r) => n + r.errors, 0),
          Math.round(median(results.map((r) => r.p99Ms))),
          Math.round(median(results.map((r) => r.serverCpuUs))),
          Math.round(median(results.map((r) => r.postgresCpuUs))),
        ];
      });
      console.log(`\nREST sends at ${rate}/s into 100 conversations, ${sendRounds} rounds of ${num("DURATION", 10)} s per side (medians)\n`);
      console.log(table(["Case", "sends/s", "not sent (behind)", "p99 ms", "server CPU µs/send", "its backends' CPU µs/send"], rows));
      summary.cpu = runs;
    }
    await peer?.stop();
  } finally {
    await sql.end();
    rmSync(workDir, { recursive: true, force: true });
  }
  summary.seconds = Math.round((Date.now() - started) / 1000);
  console.log("\n" + JSON.stringify(summary));
}

const role = process.argv[2];
if (role === "receivers") await receiverProcess(JSON.parse(env.BENCH_SPEC!));
else if (role === "sender") await senderProcess(JSON.parse(env.BENCH_SPEC!));
else if (role === "sends") await sendsProcess(JSON.parse(env.BENCH_SPEC!));
else await main();
