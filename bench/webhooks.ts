#!/usr/bin/env bun
/**
 * What webhooks cost a send, and how fast the dispatcher delivers, on PostgreSQL.
 *
 *   bun run bench/webhooks.ts
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/symbia_bench_webhooks DURATION=10 ROUNDS=4 bun run bench/webhooks.ts
 *
 * Durable REST sends/s (CONCURRENCY keep-alive clients, each with a session of its own, spread over
 * CONVERSATIONS conversations) with no endpoint enabled, and with one installation endpoint subscribed to
 * `message.created` whose receiver (a Bun.serve on loopback, in a process of its own) answers 200 at once.
 * The two cases alternate in the same run (ABBA: off, on, on, off, …), so that a busy moment of the shared
 * machine falls on both; each case reports its median round and the ratio. After every round with the
 * endpoint the run waits until the receiver has every delivery, and reports the deliveries/s it saw while
 * the sends went on and how long the rest took. Then the endpoint's cursors are moved back over about
 * BACKLOG messages it had (the log behind them is delivered again, under the same webhook-ids), timed
 * from the first delivery of that backlog to the last: deliveries/s of the dispatcher alone. Finally it checks that every message sent while the endpoint was
 * enabled got exactly one delivery, that every delivery arrived, and that no conversation's deliveries
 * arrived out of sequence order (exit 1 otherwise).
 *
 * The database named by DATABASE_URL is DROPPED and recreated at the start (its name must contain
 * "bench"). The server runs as `bun run src/main.ts serve`, or as the compiled executable with
 * SERVER=binary (dist/symbia-messaging) or BINARY=<path>. Settings: DURATION (s, 10), WARMUP (s, 2),
 * CONCURRENCY (32), CONVERSATIONS (100), POOL (the server's connections, 32), ROUNDS (pairs of rounds, 2),
 * BACKLOG (5000), DB_CPUS and APP_CPUS (e.g. 0 and 1: PostgreSQL pinned to cores of its own, everything else
 * to the others; bench/lib/cpu-placement.ts), and PROFILE=<dir> to have the server write a CPU profile
 * (.cpuprofile) there when it stops.
 */
import { existsSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import postgres from "postgres";
import { Webhook } from "standardwebhooks";
import { formatSessionToken, hashSecret, newSecret } from "../src/auth/secrets";
import { ACTIVE_REFRESH_MS } from "../src/webhooks/outbox";
import { REPOSITORY, productCommand, startServer, tempDir, type ServerProcess } from "../test/support/harness";
import { recreateBenchDatabase } from "./lib/bench-database";
import { placeOnCpus } from "./lib/cpu-placement";
import { cpuMs } from "./lib/proc-stats";

const CONTENT = "benchmark message: a short line of text, like most chat messages";

// ---------------------------------------------------------------- the load process

interface LoadConfig {
  baseUrl: string;
  tokens: string[];
  conversations: string[];
  concurrency: number;
  warmupSeconds: number;
  durationSeconds: number;
}

interface LoadResult {
  sends: number;
  errors: number;
  firstError?: string;
  rate: number;
  p50Ms: number;
  p99Ms: number;
}

/** Closed loops: loop i sends as client i into conversation (i + n·concurrency) mod the list. */
async function load(config: LoadConfig): Promise<LoadResult> {
  const body = JSON.stringify({ content: CONTENT });
  const headers = config.tokens.map((token) => ({ authorization: `Bearer ${token}`, "content-type": "application/json" }));
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const measureFrom = performance.now() + config.warmupSeconds * 1000;
  const end = measureFrom + config.durationSeconds * 1000;
  await Promise.all(
    Array.from({ length: config.concurrency }, async (_, loop) => {
      for (let n = 0; ; n++) {
        const began = performance.now();
        if (began >= end) return;
        const conversationId = config.conversations[(loop + n * config.concurrency) % config.conversations.length];
        const response = await fetch(`${config.baseUrl}/api/conversations/${conversationId}/messages`, { method: "POST", headers: headers[loop % headers.length], body });
        const text = await response.text();
        if (began < measureFrom) continue;
        if (response.status === 201) latencies.push(performance.now() - began);
        else {
          errors++;
          firstError ??= `${response.status} ${text.slice(0, 200)}`;
        }
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0) * 100) / 100;
  return { sends: latencies.length, errors, ...(firstError && { firstError }), rate: Math.round(latencies.length / config.durationSeconds), p50Ms: at(0.5), p99Ms: at(0.99) };
}

// ---------------------------------------------------------------- the receiver process

interface ReceiverStats {
  requests: number;
  /** Distinct `webhook-id`s: deliveries. */
  deliveries: number;
  /** Deliveries of a conversation that arrived after one with a higher sequence. */
  outOfOrder: number;
  /** Of the requests whose signature was checked (one in a hundred), those that did not verify. */
  badSignatures: number;
  /** When the first and the last request since the last order reset came (ms, this machine's clock). */
  firstAt: number;
  lastAt: number;
}

/** Answers 200 at once; counts. GET /stats answers the counts, POST /secret sets the secret to verify with. */
function receiver(): void {
  const ids = new Set<string>();
  const lastSequence = new Map<string, number>();
  const stats: ReceiverStats = { requests: 0, deliveries: 0, outOfOrder: 0, badSignatures: 0, firstAt: 0, lastAt: 0 };
  let webhook: Webhook | undefined;
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      const path = new URL(request.url).pathname;
      if (request.method === "GET" && path === "/stats") return Response.json(stats);
      // The backlog delivers messages delivered before: their order is checked on its own.
      if (path === "/order/reset") {
        lastSequence.clear();
        stats.firstAt = stats.lastAt = 0;
        return new Response("ok");
      }
      if (path === "/secret") {
        webhook = new Webhook(await request.text());
        return new Response("ok");
      }
      const body = await request.text();
      stats.requests++;
      stats.lastAt = performance.timeOrigin + performance.now();
      if (stats.firstAt === 0) stats.firstAt = stats.lastAt;
      const id = request.headers.get("webhook-id") ?? "";
      if (webhook && stats.requests % 100 === 0) {
        try {
          webhook.verify(body, Object.fromEntries(request.headers.entries()));
        } catch {
          stats.badSignatures++;
        }
      }
      if (!ids.has(id)) {
        ids.add(id);
        stats.deliveries++;
        const { data } = JSON.parse(body) as { data: { conversation_id: string; sequence: number } };
        const last = lastSequence.get(data.conversation_id) ?? 0;
        if (data.sequence < last) stats.outOfOrder++;
        lastSequence.set(data.conversation_id, Math.max(last, data.sequence));
      }
      return new Response("ok");
    },
  });
  process.stdout.write(`${server.port}\n`);
}

// ---------------------------------------------------------------- processes

async function runLoadProcess(config: LoadConfig): Promise<LoadResult> {
  const child = Bun.spawn([process.execPath, "run", import.meta.path, "load"], {
    cwd: REPOSITORY,
    env: { ...process.env, BENCH_CONFIG: JSON.stringify(config) },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  if (code !== 0) throw new Error(`load exited with ${code}: ${stderr.trim()}`);
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as LoadResult;
}

async function startReceiver(): Promise<{ pid: number; url: string; stats(): Promise<ReceiverStats>; secret(s: string): Promise<void>; resetOrder(): Promise<void>; stop(): void }> {
  const child = Bun.spawn([process.execPath, "run", import.meta.path, "receiver"], { cwd: REPOSITORY, stdout: "pipe", stderr: "inherit" });
  process.on("exit", () => child.kill("SIGKILL"));
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) throw new Error("the receiver exited before listening");
    text += new TextDecoder().decode(value);
  }
  const base = `http://127.0.0.1:${text.trim()}`;
  return {
    pid: child.pid,
    url: `${base}/hook`,
    stats: async () => (await (await fetch(`${base}/stats`)).json()) as ReceiverStats,
    secret: async (secret) => void (await fetch(`${base}/secret`, { method: "POST", body: secret })),
    resetOrder: async () => void (await fetch(`${base}/order/reset`, { method: "POST" })),
    stop: () => child.kill(),
  };
}

function startProduct(databaseUrl: string, pool: number): Promise<ServerProcess> {
  const binary = process.env.BINARY ? resolve(process.env.BINARY) : join(REPOSITORY, "dist/symbia-messaging");
  const useBinary = process.env.SERVER === "binary" || Boolean(process.env.BINARY);
  if (useBinary && !existsSync(binary)) throw new Error("SERVER=binary needs dist/symbia-messaging: run `bun run build` first");
  const dataDir = tempDir("symbia-bench-");
  process.on("exit", () => rmSync(dataDir, { recursive: true, force: true }));
  // PROFILE=<dir>: the server (from the sources) writes a CPU profile there when it stops.
  const bunFlags = process.env.PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${resolve(process.env.PROFILE)}`] : [];
  return startServer({
    command: [...productCommand(useBinary ? { binary } : { bunFlags }), "serve"],
    env: {
      ...(process.env as Record<string, string>),
      DATABASE_URL: databaseUrl,
      DATABASE_POOL_SIZE: String(pool),
      LOG_LEVEL: "warn",
      ADMIN_SOCKET: "off",
      DATA_DIR: dataDir,
      WEBHOOK_ALLOW_PRIVATE: "true",
    },
    healthTimeoutMs: 60_000,
    echo: true,
  });
}

// ---------------------------------------------------------------- the run

interface Principal {
  id: string;
  token: string;
  headers: Record<string, string>;
}

/** Users with sessions, inserted directly: the benchmark measures sends, not logins. */
async function createPrincipal(sql: postgres.Sql, n: number, superAdmin = false): Promise<Principal> {
  const id = crypto.randomUUID();
  const sessionId = crypto.randomUUID();
  const secret = newSecret();
  await sql`insert into principals (id, type, email, name, is_super_admin) values (${id}, 'user', ${`bench-${n}-${id.slice(0, 8)}@bench.test`}, ${`bench ${n}`}, ${superAdmin})`;
  await sql`insert into sessions (id, principal_id, token_hash, expires_at) values (${sessionId}, ${id}, ${hashSecret(secret)}, now() + interval '1 day')`;
  const token = formatSessionToken(sessionId, secret);
  return { id, token, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" } };
}

async function api(server: ServerProcess, who: Principal, method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(server.url + path, { method, headers: who.headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await Bun.sleep(20);
  }
  return performance.now() - started;
}

const setting = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
};

interface Round {
  endpoint: boolean;
  load: LoadResult;
  /** Messages the round wrote (warm-up included). */
  messages: number;
  /** With the endpoint: deliveries/s the receiver saw while the sends went on, and the time the rest took. */
  deliveriesPerSecond?: number;
  drainMs?: number;
  /** CPU per message written, in µs, from the start of the round until its deliveries arrived. */
  cpuUs: { server: number; postgres: number; receiver: number };
}

async function main(): Promise<void> {
  const databaseUrl = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/symbia_bench_webhooks";
  const durationSeconds = setting("DURATION", 10);
  const warmupSeconds = setting("WARMUP", 2);
  const concurrency = setting("CONCURRENCY", 32);
  const conversationCount = setting("CONVERSATIONS", 100);
  const pool = setting("POOL", 32);
  const pairs = setting("ROUNDS", 2);
  const backlog = setting("BACKLOG", 5000);
  const log = (line: string) => process.stderr.write(`${line}\n`);

  log(`recreating ${new URL(databaseUrl).pathname.slice(1)} and starting the server`);
  await recreateBenchDatabase(databaseUrl);
  const sql = postgres(databaseUrl, { max: 2, onnotice: () => {} });
  // DB_CPUS and APP_CPUS: PostgreSQL on cores of its own, as on a machine of its own (server, receiver and
  // load generators share the others).
  const placement =
    process.env.DB_CPUS && process.env.APP_CPUS ? await placeOnCpus(sql, process.env.DB_CPUS, process.env.APP_CPUS) : undefined;
  if (placement) log(placement.describe);
  const server = await startProduct(databaseUrl, pool);
  const hooks = await startReceiver();
  const rounds: Round[] = [];
  let backlogResult: { deliveries: number; ms: number; rate: number } | undefined;
  const problems: string[] = [];
  try {
    const clients = await Promise.all(Array.from({ length: concurrency }, (_, i) => createPrincipal(sql, i)));
    const admin = await createPrincipal(sql, -1, true);
    const [owner, ...others] = clients;
    const conversations: string[] = [];
    for (let i = 0; i < conversationCount; i++) {
      const created = await api(server, owner, "POST", "/api/conversations", { type: "group", name: `room ${i}`, participants: others.map((p) => ({ userId: p.id })) });
      conversations.push(created.id);
    }
    const endpoint = await api(server, admin, "POST", "/api/webhooks", { url: hooks.url, installation: true, events: ["message.created"] });
    await hooks.secret(endpoint.secret);
    let enabled = true;
    const setEndpoint = async (on: boolean) => {
      if (on === enabled) return;
      await api(server, admin, "PATCH", `/api/webhooks/${endpoint.id}`, { enabled: on });
      enabled = on;
      // Until its next check the server still believes an endpoint may be enabled (and tries the insert).
      if (!on) await Bun.sleep(ACTIVE_REFRESH_MS + 1000);
    };
    // CPU used so far by the server, the PostgreSQL backends of the benchmark's database, and the receiver.
    const backendPids = async () => (await sql<{ pid: number }[]>`select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`).map((r) => r.pid);
    const cpu = async (known: number[] = []) => {
      const backends = [...new Set([...known, ...(await backendPids())])];
      return { server: cpuMs(server.pid), postgres: backends.reduce((sum, pid) => sum + cpuMs(pid), 0), receiver: cpuMs(hooks.pid), backends };
    };
    const messageCount = async () => Number((await sql<{ n: string }[]>`select coalesce(sum(last_sequence), 0) as n from conversations`)[0].n);
    const logEnds = async () => sql<{ conversation_id: string; sequence: number }[]>`select id as conversation_id, last_sequence as sequence from conversations`;
    /** Each conversation's log end at the start and at the end of the last round with the endpoint: what it surely delivered. */
    let lastOnRound: { start: Map<string, number>; end: { conversation_id: string; sequence: number }[] } | undefined;
    const deliveryRows = async () => Number((await sql<{ n: string }[]>`select count(*) as n from webhook_deliveries where endpoint_id = ${endpoint.id}`)[0].n);

    const order: boolean[] = [];
    for (let pair = 0; pair < pairs; pair++) order.push(...(pair % 2 === 0 ? [false, true] : [true, false]));
    let expectedDeliveries = 0;
    for (const [index, on] of order.entries()) {
      await setEndpoint(on);
      log(`round ${index + 1} of ${order.length}: ${on ? "1 endpoint" : "0 endpoints"}, ${durationSeconds} s`);
      const before = await messageCount();
      const startEnds = on ? new Map((await logEnds()).map((r) => [r.conversation_id, Number(r.sequence)])) : undefined;
      const receivedBefore = (await hooks.stats()).deliveries;
      const cpuBefore = await cpu();
      const started = performance.now();
      const result = await runLoadProcess({ baseUrl: server.url, tokens: clients.map((c) => c.token), conversations, concurrency, warmupSeconds, durationSeconds });
      const elapsedSeconds = (performance.now() - started) / 1000;
      const messages = (await messageCount()) - before;
      const round: Round = { endpoint: on, load: result, messages, cpuUs: { server: 0, postgres: 0, receiver: 0 } };
      if (on) {
        expectedDeliveries += messages;
        const receivedDuring = (await hooks.stats()).deliveries - receivedBefore;
        round.deliveriesPerSecond = Math.round(receivedDuring / elapsedSeconds);
        round.drainMs = Math.round(await until("deliveries of the round", async () => (await hooks.stats()).deliveries >= expectedDeliveries, 300_000));
        lastOnRound = { start: startEnds!, end: await logEnds() };
      }
      const cpuAfter = await cpu(cpuBefore.backends);
      const per = (a: number, b: number) => Math.round(((a - b) * 1000) / Math.max(1, messages));
      round.cpuUs = { server: per(cpuAfter.server, cpuBefore.server), postgres: per(cpuAfter.postgres, cpuBefore.postgres), receiver: per(cpuAfter.receiver, cpuBefore.receiver) };
      rounds.push(round);
      log(
        `  ${result.rate}/s p50 ${result.p50Ms} ms p99 ${result.p99Ms} ms errors ${result.errors}${result.firstError ? ` (${result.firstError})` : ""}` +
          (on ? `; deliveries ${round.deliveriesPerSecond}/s during the sends, the rest ${round.drainMs} ms after` : "") +
          `; CPU µs per message: server ${round.cpuUs.server}, PostgreSQL ${round.cpuUs.postgres}, receiver ${round.cpuUs.receiver}`,
      );
    }

    // The dispatcher alone: the pairs' cursors moved back over messages of the last round with the endpoint
    // (delivered then), so that the log behind them is delivered again (under the same webhook-ids: counted
    // as requests), timed from the first of them to the last. What was written while the endpoint was
    // disabled stays unheard, and is skipped again.
    const perConversation = Math.ceil(backlog / conversationCount);
    await setEndpoint(true);
    // Once the dispatcher has moved every cursor over what the endpoint did not hear while disabled, and
    // given every pair back (a session would record its own place over the moved cursor).
    await until(
      "the cursors at the log's end, the pairs given back",
      async () =>
        Number(
          (
            await sql<{ n: string }[]>`
              select count(*) as n from webhook_cursors w join conversations c on c.id = w.conversation_id
               where w.endpoint_id = ${endpoint.id} and (w.lease_token is not null or w.sequence < c.last_sequence)`
          )[0].n,
        ) === 0,
      60_000,
    );
    await hooks.resetOrder();
    const requestsBefore = (await hooks.stats()).requests;
    const ranges = (lastOnRound?.end ?? []).map(({ conversation_id, sequence }) => {
      const stop = Number(sequence);
      return { conversation_id, start: Math.max(lastOnRound!.start.get(conversation_id) ?? stop, stop - perConversation), stop };
    });
    const [moved] = await sql<{ n: string }[]>`
      with moved as (
        update webhook_cursors w set sequence = v.start
          from jsonb_to_recordset(${JSON.stringify(ranges)}::text::jsonb) as v(conversation_id uuid, start int, stop int)
         where w.endpoint_id = ${endpoint.id} and w.conversation_id = v.conversation_id and v.stop > v.start
        returning v.stop - v.start as n)
      select coalesce(sum(n), 0) as n from moved`;
    const backlogDeliveries = Number(moved.n);
    log(`backlog: ${backlogDeliveries} deliveries behind the cursors`);
    await until("the backlog", async () => (await hooks.stats()).requests >= requestsBefore + backlogDeliveries, 600_000);
    // From the receiver's first request of the backlog to its last (a small backlog is gone before a poll).
    const { firstAt, lastAt } = await hooks.stats();
    const ms = Math.max(0.001, lastAt - firstAt);
    backlogResult = { deliveries: backlogDeliveries, ms: Math.round(ms), rate: Math.round((backlogDeliveries * 1000) / ms) };
    log(`  drained in ${backlogResult.ms} ms: ${backlogResult.rate} deliveries/s`);

    await Bun.sleep(500);
    const stats = await hooks.stats();
    const rows = await deliveryRows();
    if (rows !== 0) problems.push(`${rows} outbox rows: every first attempt should have delivered`);
    if (stats.deliveries !== expectedDeliveries) problems.push(`the receiver got ${stats.deliveries} distinct deliveries of ${expectedDeliveries}`);
    if (stats.requests !== expectedDeliveries + backlogDeliveries) problems.push(`the receiver got ${stats.requests} requests, ${expectedDeliveries + backlogDeliveries} expected`);
    if (stats.outOfOrder !== 0) problems.push(`${stats.outOfOrder} deliveries arrived after a later one of their conversation`);
    if (stats.badSignatures !== 0) problems.push(`${stats.badSignatures} signatures did not verify`);
    log(`checks: ${expectedDeliveries} deliveries expected, ${stats.deliveries} received (${stats.requests} requests, ${backlogDeliveries} of them the backlog), ${rows} outbox rows, ${stats.outOfOrder} out of order, ${stats.badSignatures} bad signatures`);
    for (const problem of problems) log(`FAILED: ${problem}`);
  } finally {
    hooks.stop();
    placement?.restore();
    await sql.end({ timeout: 5 });
    await server.stop(15_000);
  }

  const median = (list: Round[]) => [...list].sort((a, b) => a.load.rate - b.load.rate)[Math.floor((list.length - 1) / 2)];
  const off = median(rounds.filter((r) => !r.endpoint));
  const on = median(rounds.filter((r) => r.endpoint));
  const ratio = on.load.rate / off.load.rate;
  const lines = [
    "",
    `${concurrency} clients, ${conversationCount} conversations, ${durationSeconds} s measured after ${warmupSeconds} s of warm-up, pool ${pool}, ${rounds.length} rounds (ABBA), median per case`,
    "",
    "| Case | sends/s | p50 ms | p99 ms | errors | deliveries/s during the sends | the rest delivered after | CPU µs/message: server | PostgreSQL | receiver |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    `| 0 endpoints | ${off.load.rate.toLocaleString("en-US")} | ${off.load.p50Ms} | ${off.load.p99Ms} | ${off.load.errors} | | | ${off.cpuUs.server} | ${off.cpuUs.postgres} | ${off.cpuUs.receiver} |`,
    `| 1 endpoint | ${on.load.rate.toLocaleString("en-US")} | ${on.load.p50Ms} | ${on.load.p99Ms} | ${on.load.errors} | ${on.deliveriesPerSecond?.toLocaleString("en-US")} | ${on.drainMs} ms | ${on.cpuUs.server} | ${on.cpuUs.postgres} | ${on.cpuUs.receiver} |`,
    "",
    `1 endpoint / 0 endpoints: **${ratio.toFixed(3)}** (target ≥ 0.90). Backlog of ${backlogResult?.deliveries} deliveries drained at **${backlogResult?.rate.toLocaleString("en-US")} deliveries/s**.`,
    `Every round: ${rounds.map((r) => `${r.endpoint ? "on" : "off"} ${r.load.rate}`).join(", ")}. Checks: ${problems.length === 0 ? "every delivery arrived, once, in order" : problems.join("; ")}.`,
  ];
  process.stdout.write(lines.join("\n") + "\n");
  process.stdout.write(JSON.stringify({ concurrency, conversations: conversationCount, durationSeconds, pool, rounds, backlog: backlogResult, ratio, problems }) + "\n");
  if (problems.length > 0) process.exitCode = 1;
}

const mode = process.argv[2];
if (mode === "load") process.stdout.write(JSON.stringify(await load(JSON.parse(process.env.BENCH_CONFIG!))) + "\n");
else if (mode === "receiver") receiver();
else await main();
