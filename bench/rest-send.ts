#!/usr/bin/env bun
/**
 * REST send throughput on PostgreSQL, beside a baseline that runs the same one-statement insert (the
 * counter `UPDATE … RETURNING` + `INSERT … SELECT` of src/modules/messages/send-statement.ts) straight through
 * postgres.js at the same concurrency. Two cases: every client sending into one conversation, and the
 * clients spread over many conversations.
 *
 *   bun run bench/rest-send.ts
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/symbia_bench DURATION=10 CONCURRENCY=32 bun run bench/rest-send.ts
 *
 * The database named by DATABASE_URL is DROPPED and recreated at the start (its name must contain "bench"). The server runs as a process
 * of its own (`bun run src/main.ts serve`, or the built dist/symbia-messaging with SERVER=binary), and so
 * do the load generators (this file, run as `http-load` or `sql-load`), so that no two of them share an
 * event loop. Settings: DURATION (s, 10), WARMUP (s, 2), CONCURRENCY (32), CONVERSATIONS (100),
 * POOL (connections of the server and of the baseline, 32), ROUNDS (1; each side's median run is
 * reported), CASES (single,spread), DB_CPUS and APP_CPUS (e.g. 0 and 1: PostgreSQL pinned to cores of its
 * own and this script, the server and the load generators to the others, as when the database runs on a
 * machine of its own; needs taskset and the right to change PostgreSQL's processes), and
 * PROFILE=<dir> to have the server write a CPU profile (.cpuprofile) into <dir> when it stops, and
 * SOURCE=<dir> to run the server from another checkout of the repository (to compare two versions), and
 * BINARY=<path> to run another build (implies SERVER=binary), BASELINE=off to measure the product only, and
 * RUN_IDS=1 to send every message into a run (one per client loop and conversation, started by its first
 * message), which the send statement checks.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import postgres from "postgres";
import { recreateBenchDatabase } from "./lib/bench-database";
import { formatSessionToken, hashSecret, newSecret } from "../src/auth/secrets";
import { SEND_STATEMENT, sendParameters } from "../src/modules/messages/send-statement";
import { placeOnCpus } from "./lib/cpu-placement";
import { REPOSITORY, productCommand, startServer, tempDir } from "../test/support/harness";

// ---------------------------------------------------------------- the statement under test

// The baseline runs the server's own send statement (SEND_STATEMENT), with the parameters built by the
// same function, so both sides insert the same rows with the same text.

const CONTENT = "benchmark message: a short line of text, like most chat messages";

// ---------------------------------------------------------------- measuring

interface LoadResult {
  sends: number;
  errors: number;
  firstError?: string;
  seconds: number;
  rate: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** CPU the load process itself used per measured send, in µs. */
  clientCpuUs: number;
  /** CPU of the PostgreSQL backends serving the load, per measured send, in µs (where /proc is readable). */
  postgresCpuUs?: number;
}

interface LoadConfig {
  concurrency: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** Loop i sends as principal i (mod the list) into conversation (i + n·concurrency) mod the list. */
  conversations: string[];
}

interface HttpLoadConfig extends LoadConfig {
  baseUrl: string;
  tokens: string[];
  /** Each loop sends into a run of its own (RUN_IDS=1): the first send starts it, later ones are checked against it. */
  runIds?: boolean;
}

interface SqlLoadConfig extends LoadConfig {
  databaseUrl: string;
  pool: number;
  principals: string[];
  /** Named prepared statement (postgres.js's default, and what the server does) or unnamed (re-parsed each time). */
  prepare: boolean;
}

/**
 * Runs `send` in `concurrency` closed loops; only sends that start after the warm-up are measured.
 * `backendCpu` (the baseline) reads the CPU its own PostgreSQL backends have used so far.
 */
async function closedLoops(
  config: LoadConfig,
  send: (loop: number, conversationId: string) => Promise<string | undefined>,
  backendCpu?: () => number | undefined,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const measureFrom = start + config.warmupSeconds * 1000;
  const end = measureFrom + config.durationSeconds * 1000;
  let cpuAtMeasure: NodeJS.CpuUsage | undefined;
  let backendCpuAtMeasure: number | undefined;
  const warmupTimer = setTimeout(() => {
    cpuAtMeasure = process.cpuUsage();
    backendCpuAtMeasure = backendCpu?.();
  }, config.warmupSeconds * 1000);

  await Promise.all(
    Array.from({ length: config.concurrency }, async (_, loop) => {
      for (let n = 0; ; n++) {
        const began = performance.now();
        if (began >= end) return;
        const conversationId = config.conversations[(loop + n * config.concurrency) % config.conversations.length];
        const error = await send(loop, conversationId);
        if (began < measureFrom) continue;
        if (error) {
          errors++;
          firstError ??= error;
        } else {
          latencies.push(performance.now() - began);
        }
      }
    }),
  );
  clearTimeout(warmupTimer);
  const cpu = process.cpuUsage(cpuAtMeasure);
  const backendCpuAtEnd = backendCpu?.();
  const seconds = (performance.now() - measureFrom) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : 0);
  const round = (ms: number) => Math.round(ms * 100) / 100;
  return {
    sends: latencies.length,
    errors,
    ...(firstError && { firstError }),
    seconds: round(seconds),
    rate: Math.round(latencies.length / seconds),
    p50Ms: round(at(0.5)),
    p99Ms: round(at(0.99)),
    maxMs: round(latencies.at(-1) ?? 0),
    clientCpuUs: latencies.length ? Math.round((cpu.user + cpu.system) / latencies.length) : 0,
    ...(backendCpuAtMeasure !== undefined &&
      backendCpuAtEnd !== undefined &&
      latencies.length > 0 && { postgresCpuUs: Math.round(((backendCpuAtEnd - backendCpuAtMeasure) * 1e6) / latencies.length) }),
  };
}

/** The product: POST /api/conversations/:id/messages over keep-alive connections, one session per loop. */
async function httpLoad(config: HttpLoadConfig): Promise<LoadResult> {
  const plain = JSON.stringify({ content: CONTENT });
  const bodies = new Map<number, string>();
  const bodyOf = (loop: number) =>
    config.runIds ? (bodies.get(loop) ?? bodies.set(loop, JSON.stringify({ content: CONTENT, runId: `bench-${loop}` })).get(loop)!) : plain;
  const headers = config.tokens.map((token) => ({ authorization: `Bearer ${token}`, "content-type": "application/json" }));
  return closedLoops(config, async (loop, conversationId) => {
    const response = await fetch(`${config.baseUrl}/api/conversations/${conversationId}/messages`, {
      method: "POST",
      headers: headers[loop % headers.length],
      body: bodyOf(loop),
    });
    const text = await response.text();
    return response.status === 201 ? undefined : `${response.status} ${text.slice(0, 200)}`;
  });
}

/** The baseline: the same statement with the same parameters, one postgres.js pool, no HTTP, nothing else. */
async function sqlLoad(config: SqlLoadConfig): Promise<LoadResult> {
  const sql = postgres(config.databaseUrl, { max: config.pool, onnotice: () => {} });
  // Open every connection before measuring, and learn the backend process of each.
  const backends = await Promise.all(
    Array.from({ length: config.pool }, async () => (await sql<{ pid: number }[]>`select pg_backend_pid() as pid, pg_sleep(0.05)`)[0].pid),
  );
  const backendCpu = () => sumCpuSeconds(new Set(backends));
  const metadata = JSON.stringify({});
  try {
    return await closedLoops(config, async (loop, conversationId) => {
      const sender = config.principals[loop % config.principals.length];
      const params = sendParameters({
        id: Bun.randomUUIDv7(),
        conversationId,
        sender: { id: sender, type: "user" },
        content: CONTENT,
        contentType: "text/plain",
        replyTo: null,
        preemptedBy: null,
        runId: null,
        traceId: null,
        priority: "normal",
        interruptible: true,
        metadataJson: metadata,
        scope: {},
        streamState: null,
        orgReach: null,
      });
      try {
        const rows = await sql.unsafe(SEND_STATEMENT, params as never[], { prepare: config.prepare });
        return rows.length === 1 ? undefined : "no row inserted";
      } catch (error) {
        return error instanceof Error ? error.message : String(error);
      }
    }, backendCpu);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

// ---------------------------------------------------------------- processes

/** CPU seconds a process has used so far (user + system), from /proc; undefined where there is no /proc. */
function cpuSecondsOf(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
  }
}

/** CPU seconds used so far by a set of processes (those that still exist). */
function sumCpuSeconds(pids: Iterable<number>): number | undefined {
  let total = 0;
  for (const pid of pids) {
    const cpu = cpuSecondsOf(pid);
    if (cpu === undefined) return undefined;
    total += cpu;
  }
  return total;
}

/** Busy CPU seconds of the whole machine so far (all cores; everything but idle and iowait), from /proc/stat. */
function machineBusySeconds(): number | undefined {
  try {
    const [, ...ticks] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = ticks;
    return (user + nice + system + irq + softirq + steal) / 100;
  } catch {
    return undefined;
  }
}

async function runLoadProcess(mode: "http-load" | "sql-load", config: HttpLoadConfig | SqlLoadConfig): Promise<LoadResult> {
  const child = Bun.spawn([process.execPath, "run", import.meta.path, mode], {
    cwd: REPOSITORY,
    env: { ...process.env, BENCH_CONFIG: JSON.stringify(config) },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  if (code !== 0) throw new Error(`${mode} exited with ${code}: ${stderr.trim()}`);
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as LoadResult;
}

interface ServerProcess {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

async function startProduct(databaseUrl: string, pool: number): Promise<ServerProcess> {
  const dataDir = tempDir("symbia-bench-");
  // BINARY=<path>: another build of the product (e.g. of an earlier commit), to compare two versions.
  const binary = process.env.BINARY ? resolve(process.env.BINARY) : join(REPOSITORY, "dist/symbia-messaging");
  const useBinary = process.env.SERVER === "binary" || Boolean(process.env.BINARY);
  if (useBinary && !existsSync(binary)) throw new Error("SERVER=binary needs dist/symbia-messaging: run `bun run build` first");
  // PROFILE=<dir>: the server writes a CPU profile there when it stops (source runs only).
  const bunFlags = process.env.PROFILE ? [`--cpu-prof`, `--cpu-prof-dir=${resolve(process.env.PROFILE)}`] : [];
  // SOURCE=<dir>: run the server of another checkout (e.g. `git archive` of a commit), to compare.
  const source = resolve(process.env.SOURCE ?? REPOSITORY);
  const server = await startServer({
    command: [...productCommand(useBinary ? { binary } : { source, bunFlags }), "serve"],
    cwd: source,
    env: {
      ...(process.env as Record<string, string>),
      DATABASE_URL: databaseUrl,
      DATABASE_POOL_SIZE: String(pool),
      LOG_LEVEL: "warn",
      ADMIN_SOCKET: "off",
      DATA_DIR: dataDir,
    },
    healthTimeoutMs: 60_000,
    echo: true,
  });
  return {
    url: server.url,
    pid: server.pid,
    async stop() {
      await server.stop(15_000);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- the run

interface Principal {
  id: string;
  token: string;
}

/** Users with sessions, inserted directly: the benchmark measures sends, not logins. */
async function createPrincipals(sql: postgres.Sql, count: number): Promise<Principal[]> {
  const created: Principal[] = [];
  for (let i = 0; i < count; i++) {
    const id = crypto.randomUUID();
    const sessionId = crypto.randomUUID();
    const secret = newSecret();
    await sql`insert into principals (id, type, email, name) values (${id}, 'user', ${`bench-${i}-${id.slice(0, 8)}@bench.test`}, ${`bench ${i}`})`;
    await sql`insert into sessions (id, principal_id, token_hash, expires_at)
              values (${sessionId}, ${id}, ${hashSecret(secret)}, now() + interval '1 day')`;
    created.push({ id, token: formatSessionToken(sessionId, secret) });
  }
  return created;
}

async function createConversation(server: ServerProcess, owner: Principal, others: Principal[], name: string): Promise<string> {
  const response = await fetch(`${server.url}/api/conversations`, {
    method: "POST",
    headers: { authorization: `Bearer ${owner.token}`, "content-type": "application/json" },
    body: JSON.stringify({ type: "group", name, participants: others.map((p) => ({ userId: p.id })) }),
  });
  if (response.status !== 201) throw new Error(`creating a conversation: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}

interface CaseResult {
  name: string;
  conversations: number;
  /** CPU per send of the server process, and of the whole machine (server, load, PostgreSQL, anything else). */
  product: LoadResult & { serverCpuUs?: number; machineCpuUs?: number };
  /** The statement prepared once per connection, as the server runs it. */
  baseline: LoadResult & { machineCpuUs?: number };
  /** The statement sent unnamed, parsed and planned on every send (how Drizzle's `execute` sends raw SQL). */
  unnamed: LoadResult & { machineCpuUs?: number };
}

/** CPU seconds over warm-up and measurement alike, spread over the sends of both, in µs per send. */
function perSend(seconds: number | undefined, result: LoadResult, config: LoadConfig): number | undefined {
  if (seconds === undefined || result.sends === 0) return undefined;
  return Math.round((seconds * 1e6 * config.durationSeconds) / (result.sends * (config.durationSeconds + config.warmupSeconds)));
}

async function measureRest(sql: postgres.Sql, server: ServerProcess, config: HttpLoadConfig): Promise<CaseResult["product"]> {
  // The database side of REST: the backends of the server's pool (it opens more during the run and keeps
  // them open afterwards). Only this orchestrator's own connection is left out.
  const serverBackends = async () =>
    (await sql<{ pid: number }[]>`select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`).map((r) => r.pid);
  const backendsBefore = new Map((await serverBackends()).map((pid) => [pid, cpuSecondsOf(pid) ?? 0]));
  const serverBefore = cpuSecondsOf(server.pid);
  const machineBefore = machineBusySeconds();

  const result: CaseResult["product"] = await runLoadProcess("http-load", config);

  const serverAfter = cpuSecondsOf(server.pid);
  const machineAfter = machineBusySeconds();
  let backendSeconds: number | undefined = 0;
  for (const pid of await serverBackends()) {
    const now = cpuSecondsOf(pid);
    backendSeconds = now === undefined || backendSeconds === undefined ? undefined : backendSeconds + now - (backendsBefore.get(pid) ?? 0);
  }
  result.serverCpuUs = perSend(serverBefore === undefined || serverAfter === undefined ? undefined : serverAfter - serverBefore, result, config);
  result.machineCpuUs = perSend(machineBefore === undefined || machineAfter === undefined ? undefined : machineAfter - machineBefore, result, config);
  result.postgresCpuUs = perSend(backendSeconds, result, config);
  return result;
}

async function measureBaseline(config: SqlLoadConfig): Promise<CaseResult["baseline"]> {
  const before = machineBusySeconds();
  const result: CaseResult["baseline"] = await runLoadProcess("sql-load", config);
  const after = machineBusySeconds();
  result.machineCpuUs = perSend(before === undefined || after === undefined ? undefined : after - before, result, config);
  return result;
}

const env = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
};

async function main(): Promise<void> {
  const databaseUrl = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/symbia_bench";
  const durationSeconds = env("DURATION", 10);
  const warmupSeconds = env("WARMUP", 2);
  const concurrency = env("CONCURRENCY", 32);
  const spread = env("CONVERSATIONS", 100);
  const pool = env("POOL", 32);
  const rounds = env("ROUNDS", 1);
  const cases = (process.env.CASES ?? "single,spread").split(",");

  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(`recreating ${new URL(databaseUrl).pathname.slice(1)} and starting the server (${process.env.SERVER === "binary" ? "dist/symbia-messaging" : "bun run src/main.ts serve"})`);
  await recreateBenchDatabase(databaseUrl);
  const sql = postgres(databaseUrl, { max: 4, onnotice: () => {} });
  // DB_CPUS and APP_CPUS: PostgreSQL on cores of its own, as on a machine of its own (same for both sides).
  const placement =
    process.env.DB_CPUS && process.env.APP_CPUS ? await placeOnCpus(sql, process.env.DB_CPUS, process.env.APP_CPUS) : undefined;
  if (placement) log(placement.describe);
  const server = await startProduct(databaseUrl, pool).catch((error) => {
    placement?.restore();
    throw error;
  });
  const runs: CaseResult[] = [];
  try {
    const principals = await createPrincipals(sql, concurrency);
    const [owner, ...others] = principals;
    const single = [await createConversation(server, owner, others, "one room")];
    const many: string[] = [];
    for (let i = 0; i < spread; i++) many.push(await createConversation(server, owner, others, `room ${i}`));

    const base = { concurrency, warmupSeconds, durationSeconds };
    for (let round = 1; round <= rounds; round++) {
      for (const name of cases) {
        const conversations = name === "single" ? single : many;
        log(`round ${round}: ${name} (${conversations.length} conversation${conversations.length > 1 ? "s" : ""}): REST, then the SQL baselines, ${durationSeconds} s each`);

        const product = await measureRest(sql, server, { ...base, conversations, baseUrl: server.url, tokens: principals.map((p) => p.token), runIds: process.env.RUN_IDS === "1" });
        const baselineConfig = { ...base, conversations, databaseUrl, pool, principals: principals.map((p) => p.id) };
        // BASELINE=off: the product only (e.g. to compare two builds, whose schemas the statement may not fit).
        const skipped: LoadResult = { sends: 0, errors: 0, seconds: 0, rate: 0, p50Ms: 0, p99Ms: 0, maxMs: 0, clientCpuUs: 0 };
        const withBaseline = process.env.BASELINE !== "off";
        const baseline = withBaseline ? await measureBaseline({ ...baselineConfig, prepare: true }) : skipped;
        const unnamed = withBaseline ? await measureBaseline({ ...baselineConfig, prepare: false }) : skipped;

        runs.push({ name, conversations: conversations.length, product, baseline, unnamed });
        const line = (label: string, r: LoadResult) =>
          log(`  ${label.padEnd(17)} ${r.rate}/s p50 ${r.p50Ms} ms p99 ${r.p99Ms} ms errors ${r.errors}${r.firstError ? ` (${r.firstError})` : ""}`);
        line("REST", product);
        line("SQL, prepared", baseline);
        line("SQL, unnamed", unnamed);
      }
    }

    // Whatever the load, every conversation must count 1..N with no gap and no duplicate.
    const [check] = await sql<{ conversations: number; broken: number; messages: number }[]>`
      select count(*)::int as conversations,
             count(*) filter (where c.last_sequence <> coalesce(m.n, 0) or c.last_sequence <> coalesce(m.top, 0))::int as broken,
             coalesce(sum(m.n), 0)::int as messages
        from conversations c
        left join (select conversation_id, count(*) as n, max(sequence) as top from messages group by conversation_id) m
          on m.conversation_id = c.id`;
    log(`sequences: ${check.messages} messages in ${check.conversations} conversations, ${check.broken} with a gap or duplicate`);
    if (check.broken > 0) process.exitCode = 1;
  } finally {
    await sql.end({ timeout: 5 });
    await server.stop();
    placement?.restore();
  }

  // Each side's median run over the rounds (the lower middle one for an even count): this machine is shared.
  const median = <T extends LoadResult>(list: T[]) => [...list].sort((a, b) => a.rate - b.rate)[Math.floor((list.length - 1) / 2)];
  const results: CaseResult[] = cases
    .map((name) => runs.filter((r) => r.name === name))
    .filter((list) => list.length > 0)
    .map((list) => ({
      name: list[0].name,
      conversations: list[0].conversations,
      product: median(list.map((r) => r.product)),
      baseline: median(list.map((r) => r.baseline)),
      unnamed: median(list.map((r) => r.unnamed)),
    }));

  const row = (label: string, r: LoadResult & { machineCpuUs?: number }) =>
    `| ${label} | ${r.rate.toLocaleString("en-US")} | ${r.p50Ms} | ${r.p99Ms} | ${r.errors} | ${r.postgresCpuUs ?? "?"} | ${r.machineCpuUs ?? "?"} |`;
  const lines = [
    "",
    `${concurrency} clients, ${durationSeconds} s measured after ${warmupSeconds} s of warm-up, pool ${pool}, median of ${rounds} round${rounds > 1 ? "s" : ""}` +
      (placement ? `; ${placement.describe}` : "; every process on every core"),
    "",
    "| Case | sends/s | p50 ms | p99 ms | errors | PostgreSQL backends CPU µs/send | machine CPU µs/send |",
    "|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of results) {
    const where = `${r.conversations} conversation${r.conversations > 1 ? "s" : ""}`;
    lines.push(
      row(`${where}: REST`, r.product),
      row(`${where}: SQL baseline, prepared`, r.baseline),
      row(`${where}: SQL baseline, unnamed`, r.unnamed),
    );
  }
  lines.push(
    "",
    "| Case | REST / prepared baseline | REST / unnamed baseline | server CPU µs/send | load process CPU µs/send (REST / SQL) |",
    "|---|---:|---:|---:|---:|",
  );
  const ratio = (a: number, b: number) => (b ? (a / b).toFixed(2) : "n/a");
  for (const r of results) {
    lines.push(
      `| ${r.conversations} conversation${r.conversations > 1 ? "s" : ""} | **${ratio(r.product.rate, r.baseline.rate)}** | ${ratio(r.product.rate, r.unnamed.rate)} | ${r.product.serverCpuUs ?? "?"} | ${r.product.clientCpuUs} / ${r.baseline.clientCpuUs} |`,
    );
  }
  process.stdout.write(lines.join("\n") + "\n");
  process.stdout.write(JSON.stringify({ concurrency, durationSeconds, pool, rounds, placement: placement?.describe, results, runs }) + "\n");
}

const mode = process.argv[2];
if (mode === "http-load" || mode === "sql-load") {
  const config = JSON.parse(process.env.BENCH_CONFIG!);
  const result = mode === "http-load" ? await httpLoad(config) : await sqlLoad(config);
  process.stdout.write(JSON.stringify(result) + "\n");
} else {
  await main();
}
