/**
 * What authentication costs per request. Starts the server as a process of its own (on PostgreSQL when
 * DATABASE_URL is set, else on a fresh embedded database), creates a user and an API key with the operator
 * CLI, logs in, then drives load from another process against:
 *
 *   GET /api/health                 no credential (it runs `select 1` on the database)
 *   GET /api/auth/session           no credential (the same gate, nothing to resolve)
 *   GET /api/auth/session + Bearer  session token, resolved once then served from the credential cache
 *   GET /api/auth/session + X-API-Key
 *
 * and prints requests/s, p50 and p99 of each, and the cost ratio of the authenticated path to the
 * unauthenticated one (target: below 1.5).
 *
 *   bun run bench/auth.ts                       # embedded database
 *   DATABASE_URL=postgres://... bun run bench/auth.ts
 *   DURATION=10 CONCURRENCY=32 ROUNDS=2 bun run bench/auth.ts
 *
 * The cases run in turn, ROUNDS times, and each reports its best round: on a small shared machine other
 * work steals the CPU now and then, and interleaving keeps that from favouring one case.
 */
import { rmSync } from "node:fs";
import { minimalEnv, productCommand, runCommand, startServer, tempDir } from "../test/support/harness";
import { spawnLoad, type LoadResult } from "./lib/load";

const DURATION = Number(process.env.DURATION ?? 10);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 32);
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const PASSWORD = "bench-password";

const dataDir = tempDir("symbia-bench-");
const env: Record<string, string> = {
  ...minimalEnv(),
  DATA_DIR: dataDir,
  DATABASE_URL: process.env.DATABASE_URL ?? "",
  LOG_LEVEL: "warn",
};

async function cli(args: string[], stdin?: string): Promise<string> {
  const { code, stdout, stderr } = await runCommand([...productCommand(), ...args], { env, stdin });
  if (code !== 0) throw new Error(`${args.slice(0, 2).join(" ")} failed: ${stderr.trim()}`);
  return stdout.trim();
}

const server = await startServer({ command: [...productCommand(), "serve"], env, healthTimeoutMs: 60_000, echo: true });
const base = server.url;

try {
  const email = `bench-${Date.now()}@bench.test`;
  await cli(["users", "create", "--email", email, "--password-stdin"], PASSWORD);
  const apiKey = await cli(["keys", "create", "--principal", `service:bench-${Date.now()}`, "--type", "service"]);
  const login = await fetch(`${base}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  if (login.status !== 200) throw new Error(`login failed with ${login.status}`);
  const { token } = (await login.json()) as { token: string };

  const cases: { name: string; path: string; headers?: Record<string, string> }[] = [
    { name: "GET /api/health (anonymous)", path: "/api/health" },
    { name: "GET /api/auth/session (anonymous)", path: "/api/auth/session" },
    { name: "GET /api/auth/session (Bearer session)", path: "/api/auth/session", headers: { authorization: `Bearer ${token}` } },
    { name: "GET /api/auth/session (X-API-Key)", path: "/api/auth/session", headers: { "x-api-key": apiKey } },
  ];
  const results: LoadResult[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, c] of cases.entries()) {
      const result = await spawnLoad({ url: base + c.path, headers: c.headers, concurrency: CONCURRENCY, durationSeconds: DURATION, warmupSeconds: 1 });
      if (!results[i] || result.rps > results[i].rps) results[i] = { ...result, errors: result.errors + (results[i]?.errors ?? 0) };
    }
  }

  const database = env.DATABASE_URL ? "PostgreSQL" : "embedded PGlite";
  console.log(`\nauth benchmark: ${database}, ${CONCURRENCY} connections, best of ${ROUNDS} × ${DURATION} s per case, load from a separate process\n`);
  console.log(`${"case".padEnd(42)} ${"req/s".padStart(8)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)} ${"errors".padStart(7)}`);
  cases.forEach((c, i) => {
    const r = results[i];
    console.log(`${c.name.padEnd(42)} ${String(r.rps).padStart(8)} ${r.p50Ms.toFixed(2).padStart(8)} ${r.p99Ms.toFixed(2).padStart(8)} ${String(r.errors).padStart(7)}`);
  });
  const [health, anonymous, bearer, key] = results;
  // Cost per request is the inverse of throughput at the same concurrency.
  const ratio = (authenticated: LoadResult, baseline: LoadResult) => (baseline.rps / authenticated.rps).toFixed(2);
  console.log(`\ncost of Bearer session vs health:            ${ratio(bearer, health)}x (target < 1.5x)`);
  console.log(`cost of Bearer session vs anonymous session: ${ratio(bearer, anonymous)}x`);
  console.log(`cost of X-API-Key vs anonymous session:      ${ratio(key, anonymous)}x`);
  if (results.some((r) => r.errors > 0)) process.exitCode = 1;
} finally {
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
