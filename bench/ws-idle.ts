/**
 * Memory per idle WebSocket connection: the compiled product on PostgreSQL against a bare Bun.serve.
 *
 *   bun run bench/ws-idle.ts
 *   CONNECTIONS=10000 CLIENT_PROCS=4 SETTLE=5 bun run bench/ws-idle.ts
 *
 * Starts dist/symbia-messaging (built when missing or older than the sources) on a fresh database DB_NAME
 * (default symbia_bench_ws_idle, dropped and recreated, dropped at the end) and the raw baseline
 * (bench/lib/raw-publisher.ts), creates CONNECTIONS users with a session each, then, for each server in
 * turn, from CLIENT_PROCS client processes (bench/lib/ws-receivers.ts):
 *
 *   1. opens and closes WARMUP_CONNECTIONS sockets, so that code paths and pools are warm;
 *   2. reads the server's RSS (VmRSS in /proc/<pid>/status) after SETTLE seconds of quiet;
 *   3. opens half of the connections, each authenticated with its own session and waiting for
 *      `session:ready`, lets it settle and reads the RSS; then the other half, and again;
 *   4. closes them all and reads the RSS once more.
 *
 * Reported: RSS at each step, bytes per connection over the whole (RSS at N − RSS before) / N, and the
 * marginal cost of the second half ((RSS at N − RSS at N/2) / (N/2)), which leaves out one-time growth.
 * Every connection of the product is a distinct user, so the per-connection figure includes that user's
 * entry in the credential cache, as it would in production. RESULT_FILE=<path> writes the figures as JSON.
 */
import { createUsers } from "./lib/bulk-principals";
import { dropDatabase, freshDatabase, startProduct, startRawPublisher, track, type ServerHandle } from "./lib/bench-processes";
import { openFileLimit, rssBytes } from "./lib/proc-stats";
import { ClientProcess } from "./lib/ws-wire";

const CONNECTIONS = Number(process.env.CONNECTIONS ?? 10_000);
const CLIENT_PROCS = Number(process.env.CLIENT_PROCS ?? 4);
const WARMUP_CONNECTIONS = Number(process.env.WARMUP_CONNECTIONS ?? 200);
const SETTLE = Number(process.env.SETTLE ?? 5);
const OPEN_CONCURRENCY = Number(process.env.OPEN_CONCURRENCY ?? 32);
const DB_NAME = process.env.DB_NAME ?? "symbia_bench_ws_idle";
const RECEIVERS_SCRIPT = new URL("./lib/ws-receivers.ts", import.meta.url).pathname;

interface IdleResult {
  target: string;
  connections: number;
  rssBeforeMiB: number;
  rssHalfMiB: number;
  rssFullMiB: number;
  rssAfterCloseMiB: number;
  /** (RSS at N − RSS before) / N, in KiB. */
  kibPerConnection: number;
  /** (RSS at N − RSS at N/2) / (N/2), in KiB. */
  marginalKibPerConnection: number;
  openSeconds: number;
}

const log = (line: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
const mib = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

/** The server's RSS once it has been quiet for SETTLE seconds: the median of samples over the last half of that. */
async function settledRss(pid: number): Promise<number> {
  await Bun.sleep((SETTLE * 1000) / 2);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(rssBytes(pid) ?? NaN);
    await Bun.sleep((SETTLE * 1000) / 10);
  }
  samples.sort((a, b) => a - b);
  return samples[2];
}

async function openAll(clients: ClientProcess[], server: ServerHandle, tokens: string[]): Promise<number> {
  const per = Math.ceil(tokens.length / clients.length);
  let pending = clients.map((_, i) => tokens.slice(i * per, (i + 1) * per));
  let opened = 0;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const answers = await Promise.all(
      clients.map((client, i) =>
        client.call<{ opened: number; failedTokens: string[]; errors: Record<string, number> }>(
          "open",
          { url: server.wsUrl, tokens: pending[i], concurrency: OPEN_CONCURRENCY, timeoutMs: 30_000 },
          300_000,
        ),
      ),
    );
    opened += answers.reduce((sum, a) => sum + a.opened, 0);
    pending = answers.map((a) => a.failedTokens);
    const failed = pending.reduce((sum, p) => sum + p.length, 0);
    if (failed === 0) break;
    log(`${server.name}: ${failed} connections failed (attempt ${attempt}): ${JSON.stringify(answers.map((a) => a.errors))}`);
    if (attempt === 3) throw new Error(`${failed} connections could not be opened to ${server.name}`);
    await Bun.sleep(2_000);
  }
  return opened;
}

async function measure(server: ServerHandle, warmupTokens: string[], tokens: string[]): Promise<IdleResult> {
  const limit = openFileLimit(server.pid);
  if (limit < tokens.length + 200) throw new Error(`${server.name} may open only ${limit} files; ${tokens.length} connections need more (raise the hard limit)`);

  const warm = Array.from({ length: CLIENT_PROCS }, (_, i) => track(new ClientProcess(RECEIVERS_SCRIPT, `warmup-${server.name}-${i}`)));
  await openAll(warm, server, warmupTokens);
  await Promise.all(warm.map((c) => c.call("close")));
  for (const c of warm) c.kill();

  const clients = Array.from({ length: CLIENT_PROCS }, (_, i) => track(new ClientProcess(RECEIVERS_SCRIPT, `idle-${server.name}-${i}`)));
  const before = await settledRss(server.pid);
  log(`${server.name}: RSS ${mib(before)} MiB before`);
  const started = performance.now();
  const half = Math.floor(tokens.length / 2);
  const openedHalf = await openAll(clients, server, tokens.slice(0, half));
  const openSeconds = (performance.now() - started) / 1000;
  const atHalf = await settledRss(server.pid);
  log(`${server.name}: ${openedHalf} connections open in ${openSeconds.toFixed(1)} s, RSS ${mib(atHalf)} MiB`);
  const openedAll = openedHalf + (await openAll(clients, server, tokens.slice(half)));
  const atFull = await settledRss(server.pid);
  const snapshots = await Promise.all(clients.map((c) => c.call<{ open: number }>("snapshot")));
  const stillOpen = snapshots.reduce((sum, s) => sum + s.open, 0);
  log(`${server.name}: ${openedAll} connections open (${stillOpen} still open after settling), RSS ${mib(atFull)} MiB`);
  if (stillOpen !== openedAll) throw new Error(`${openedAll - stillOpen} connections to ${server.name} closed while idle`);
  await Promise.all(clients.map((c) => c.call("close")));
  for (const c of clients) c.kill();
  const afterClose = await settledRss(server.pid);
  log(`${server.name}: all closed, RSS ${mib(afterClose)} MiB`);
  return {
    target: server.name,
    connections: openedAll,
    rssBeforeMiB: mib(before),
    rssHalfMiB: mib(atHalf),
    rssFullMiB: mib(atFull),
    rssAfterCloseMiB: mib(afterClose),
    kibPerConnection: Math.round(((atFull - before) / openedAll / 1024) * 100) / 100,
    marginalKibPerConnection: Math.round(((atFull - atHalf) / (openedAll - openedHalf) / 1024) * 100) / 100,
    openSeconds: Math.round(openSeconds * 10) / 10,
  };
}

const startedAt = performance.now();
const results: IdleResult[] = [];
const databaseUrl = await freshDatabase(DB_NAME);
try {
  const product = await startProduct(databaseUrl);
  log(`product pid ${product.pid} at ${product.url} on PostgreSQL database ${DB_NAME}`);
  const users = await createUsers(databaseUrl, WARMUP_CONNECTIONS + CONNECTIONS, "idle");
  const warmupTokens = users.slice(0, WARMUP_CONNECTIONS).map((u) => u.token);
  const tokens = users.slice(WARMUP_CONNECTIONS).map((u) => u.token);
  results.push(await measure(product, warmupTokens, tokens));
  await product.stop();
  const raw = await startRawPublisher({});
  log(`raw baseline pid ${raw.pid} at ${raw.url}`);
  results.push(await measure(raw, warmupTokens, tokens));
  await raw.stop();
} finally {
  await dropDatabase(DB_NAME).catch((error) => console.error(`could not drop ${DB_NAME}: ${error}`));
}

console.log(`\nws-idle: ${CONNECTIONS} idle authenticated connections from ${CLIENT_PROCS} client processes; ${Math.round((performance.now() - startedAt) / 1000)} s in all\n`);
console.log(["target", "connections", "RSS before MiB", "at N/2 MiB", "at N MiB", "after close MiB", "KiB/conn", "marginal KiB/conn", "open N/2 s"].join("\t"));
for (const r of results) {
  console.log([r.target, r.connections, r.rssBeforeMiB, r.rssHalfMiB, r.rssFullMiB, r.rssAfterCloseMiB, r.kibPerConnection, r.marginalKibPerConnection, r.openSeconds].join("\t"));
}
const product = results.find((r) => r.target === "product")!;
const raw = results.find((r) => r.target === "raw")!;
console.log(
  `\nproduct: ${product.kibPerConnection} KiB per idle connection (target < 20 KB: ${product.kibPerConnection * 1.024 < 20 ? "met" : "MISSED"}); ` +
    `raw Bun.serve: ${raw.kibPerConnection} KiB; the product's own share: ${Math.round((product.kibPerConnection - raw.kibPerConnection) * 100) / 100} KiB`,
);
if (process.env.RESULT_FILE) await Bun.write(process.env.RESULT_FILE, JSON.stringify(results, null, 2));
process.exit(0);
