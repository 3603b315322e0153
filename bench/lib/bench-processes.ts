/**
 * Processes of the WebSocket benchmarks: the compiled product on a fresh PostgreSQL database, the raw
 * Bun.serve baseline (both servers of the harness in test/support, which kills them when the benchmark
 * exits), and the bookkeeping that ends the client processes and cleans up when it ends, fails or is
 * interrupted.
 */
import type { Subprocess } from "bun";
import { readdirSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import postgres from "postgres";
import { REPOSITORY, minimalEnv, productCommand, startServer, tempDir } from "../../test/support/harness";
import type { ClientProcess } from "./ws-wire";

export { REPOSITORY };
export const BINARY = process.env.BINARY || join(REPOSITORY, "dist/symbia-messaging");
/** Where databases are created and dropped; the benchmark database lives on the same server. */
export const POSTGRES_ADMIN_URL = process.env.POSTGRES_ADMIN_URL || "postgres://postgres@127.0.0.1:5432/postgres";

// ---------------------------------------------------------------- cleanup

const children = new Set<Subprocess | ClientProcess>();
const cleanups: (() => void)[] = [];

export function track<T extends Subprocess | ClientProcess>(child: T): T {
  children.add(child);
  return child;
}

/** Work to do (synchronously) when the benchmark exits, however it exits. */
export function onExit(cleanup: () => void): void {
  cleanups.push(cleanup);
}

export function killAll(): void {
  for (const child of children) {
    try {
      if ("child" in child) child.kill();
      else if (child.exitCode === null) child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  children.clear();
  for (const cleanup of cleanups.splice(0)) {
    try {
      cleanup();
    } catch {
      // best effort
    }
  }
}

process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

// ---------------------------------------------------------------- helpers

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/**
 * Builds dist/symbia-messaging with `bun run build` when it is missing or older than the sources
 * (BUILD=always rebuilds, BUILD=never uses whatever is there). BINARY=<path> names another executable,
 * which is never built.
 */
export function ensureBinary(): string {
  const mode = process.env.BUILD ?? "auto";
  if (process.env.BINARY) return BINARY;
  let reason: string | undefined;
  let built = 0;
  try {
    built = statSync(BINARY).mtimeMs;
  } catch {
    reason = "missing";
  }
  if (!reason && mode === "always") reason = "BUILD=always";
  if (!reason && mode === "auto") {
    const sources = Math.max(newestMtime(join(REPOSITORY, "src")), newestMtime(join(REPOSITORY, "drizzle")));
    if (sources > built) reason = "older than the sources";
  }
  if (reason && mode !== "never") {
    console.error(`building ${BINARY} (${reason})`);
    const result = Bun.spawnSync([process.execPath, "run", "build"], { cwd: REPOSITORY, stdout: "inherit", stderr: "inherit" });
    if (result.exitCode !== 0) throw new Error(`bun run build failed with ${result.exitCode}`);
  } else if (reason) {
    console.error(`warning: ${BINARY} is ${reason}; BUILD=never keeps it`);
  }
  return BINARY;
}

// ---------------------------------------------------------------- PostgreSQL

/** Drops and creates the database `name` on the benchmark's PostgreSQL; returns its URL. */
export async function freshDatabase(name: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain database name: ${name}`);
  const admin = postgres(POSTGRES_ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function dropDatabase(name: string): Promise<void> {
  const admin = postgres(POSTGRES_ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
  } finally {
    await admin.end();
  }
}

/** Pids of the PostgreSQL backends serving database `name` (same host: their CPU is readable in /proc). */
export async function backendPids(name: string): Promise<number[]> {
  const admin = postgres(POSTGRES_ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    const rows = await admin`select pid from pg_stat_activity where datname = ${name} and pid <> pg_backend_pid()`;
    return rows.map((row) => Number(row.pid));
  } finally {
    await admin.end();
  }
}

// ---------------------------------------------------------------- the two servers

export interface ServerHandle {
  name: string;
  pid: number;
  url: string;
  wsUrl: string;
  /** Lines of its log that matched what the caller asked to count (e.g. slow-consumer closes). */
  counted(): number;
  stop(): Promise<number>;
}

/**
 * The compiled product, `serve`, as an operator runs it: PostgreSQL at `databaseUrl`, no admin socket,
 * its own data directory, warnings only in the log. `env` adds or overrides settings. With PROFILE=<dir>
 * the sources run instead of the executable, under Bun's CPU profiler (a .cpuprofile lands in <dir>).
 */
export async function startProduct(databaseUrl: string, env: Record<string, string> = {}): Promise<ServerHandle> {
  // PROFILE=<dir>: run the sources instead, with Bun's CPU profiler writing a .cpuprofile there on exit.
  const profile = process.env.PROFILE;
  const dataDir = tempDir("symbia-wsbench-");
  onExit(() => rmSync(dataDir, { recursive: true, force: true }));
  let slowConsumerCloses = 0;
  const server = await startServer({
    command: profile
      ? [...productCommand({ bunFlags: ["--cpu-prof", `--cpu-prof-dir=${resolve(profile)}`] }), "serve"]
      : [...productCommand({ binary: ensureBinary() }), "serve"],
    cwd: profile ? REPOSITORY : dataDir,
    env: { ...minimalEnv(), DATA_DIR: dataDir, DATABASE_URL: databaseUrl, ADMIN_SOCKET: "off", LOG_LEVEL: "warn", ...env },
    label: "product",
    healthTimeoutMs: 60_000,
    echo: Boolean(process.env.VERBOSE),
    onLine: (line) => {
      if (/slow consumer/.test(line)) slowConsumerCloses++;
    },
  });
  return {
    name: "product",
    pid: server.pid,
    url: server.url,
    wsUrl: server.wsUrl,
    counted: () => slowConsumerCloses,
    stop: () => server.stop(),
  };
}

/** The raw baseline (raw-publisher.ts) in a process of its own, with the product's socket settings. */
export async function startRawPublisher(template: unknown, env: Record<string, string> = {}): Promise<ServerHandle> {
  const server = await startServer({
    command: [process.execPath, "run", join(import.meta.dir, "raw-publisher.ts")],
    env: { ...minimalEnv(), TEMPLATE: JSON.stringify(template), ...env },
    label: "raw",
    healthPath: "/health",
    echo: Boolean(process.env.VERBOSE),
  });
  return {
    name: "raw",
    pid: server.pid,
    url: server.url,
    wsUrl: server.wsUrl,
    counted: () => 0,
    stop: () => server.stop(),
  };
}
