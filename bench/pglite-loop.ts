/**
 * Does the embedded database stall the event loop (and with it every WebSocket)? PGlite executes queries
 * on the calling thread, so each query blocks the loop for its duration. This starts the server in-process
 * on PGlite, drives REST sends from a separate process, and measures the event-loop lag meanwhile.
 *
 *   bun run bench/pglite-loop.ts [seconds=5] [concurrency=32]
 *   DATABASE_URL=postgres://... bun run bench/pglite-loop.ts   (the same on PostgreSQL, for comparison)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config";
import { migrate } from "../src/db/migrate";
import { openPglite, openPostgres } from "../src/db/client";
import { startServer } from "../src/server";
import { createBenchPrincipal } from "./lib/principals";

const seconds = Number(process.argv[2] ?? 5);
const concurrency = Number(process.argv[3] ?? 32);
const dir = mkdtempSync(join(tmpdir(), "symbia-pglite-loop-"));
// DATABASE_URL runs the same measurement on PostgreSQL, for comparison.
const database = process.env.DATABASE_URL
  ? await openPostgres(process.env.DATABASE_URL, 20)
  : (await openPglite({ dataDir: dir })).database;
await migrate(database.db);
const server = await startServer(loadConfig({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn" }), { database });
const user = await createBenchPrincipal(database.db);

const created = await fetch(`${server.url}/api/conversations`, {
  method: "POST",
  headers: { authorization: `Bearer ${user.token}`, "content-type": "application/json" },
  body: JSON.stringify({ type: "group", name: "bench" }),
});
const conversationId = ((await created.json()) as { id: string }).id;

// Lag probe: a 1 ms timer; how late it fires is how long the loop was blocked.
const lags: number[] = [];
let probing = true;
let last = performance.now();
const probe = () => {
  const now = performance.now();
  lags.push(now - last - 1);
  last = now;
  if (probing) setTimeout(probe, 1);
};
setTimeout(probe, 1);

const load = Bun.spawn(["bun", "run", join(import.meta.dir, "lib/send-loop.ts")], {
  env: {
    ...process.env,
    TARGET: `${server.url}/api/conversations/${conversationId}/messages`,
    TOKEN: user.token,
    SECONDS: String(seconds),
    CONCURRENCY: String(concurrency),
  },
  stdout: "pipe",
});
const report = JSON.parse(await new Response(load.stdout).text());
probing = false;

lags.sort((a, b) => a - b);
const pct = (p: number) => lags[Math.min(lags.length - 1, Math.floor((p / 100) * lags.length))].toFixed(2);
console.log(
  JSON.stringify({
    database: database.kind,
    concurrency,
    sendsPerSecond: report.perSecond,
    sendLatencyMs: { p50: report.p50, p99: report.p99 },
    loopLagMs: { p50: pct(50), p99: pct(99), max: lags[lags.length - 1].toFixed(2) },
  }),
);
await server.stop();
rmSync(dir, { recursive: true, force: true });
