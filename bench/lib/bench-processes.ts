/**
 * Processes of the WebSocket benchmarks: the compiled product on a fresh PostgreSQL database, the raw
 * Bun.serve baseline, and the bookkeeping that kills every process a benchmark started when it ends, fails
 * or is interrupted.
 */
import type { Subprocess } from "bun";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import postgres from "postgres";
import type { ClientProcess } from "./ws-wire";

export const REPOSITORY = resolve(import.meta.dir, "../..");
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

/** SIGTERM, then SIGKILL if the process has not exited within `graceMs`. */
export async function stopProcess(child: Subprocess, graceMs = 10_000): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  const code = await child.exited;
  clearTimeout(timer);
  children.delete(child);
  return code;
}

// ---------------------------------------------------------------- helpers

export function freePort(): number {
  const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = probe.port!;
  probe.stop(true);
  return port;
}

async function waitHealthy(url: string, child: Subprocess, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline && child.exitCode === null) {
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(1_000) })).status === 200) return;
    } catch {
      // not listening yet
    }
    await Bun.sleep(100);
  }
  child.kill("SIGKILL");
  throw new Error(`${url} not healthy within ${timeoutMs} ms (exit ${child.exitCode}):\n${output()}`);
}

/** Keeps the tail of a process's stderr, echoes it, and counts lines that match `counted`. */
function watchStderr(child: Subprocess, label: string, counted?: RegExp) {
  const state = { tail: "", matches: 0 };
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr as ReadableStream<Uint8Array>) {
      const text = decoder.decode(chunk);
      state.tail = (state.tail + text).slice(-8_000);
      if (counted) state.matches += text.split("\n").filter((line) => counted.test(line)).length;
      if (process.env.VERBOSE) process.stderr.write(text.replace(/^(?=.)/gm, `[${label}] `));
    }
  })();
  return state;
}

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
  stop(): Promise<number | null>;
}

/**
 * The compiled product, `serve`, as an operator runs it: PostgreSQL at `databaseUrl`, no admin socket,
 * its own data directory, warnings only in the log. `env` adds or overrides settings. With PROFILE=<dir>
 * the sources run instead of the executable, under Bun's CPU profiler (a .cpuprofile lands in <dir>).
 */
export async function startProduct(databaseUrl: string, env: Record<string, string> = {}): Promise<ServerHandle> {
  // PROFILE=<dir>: run the sources instead, with Bun's CPU profiler writing a .cpuprofile there on exit.
  const command = process.env.PROFILE
    ? [process.execPath, "--cpu-prof", `--cpu-prof-dir=${resolve(process.env.PROFILE)}`, "run", join(REPOSITORY, "src/main.ts"), "serve"]
    : [ensureBinary(), "serve"];
  const dataDir = mkdtempSync(join(tmpdir(), "symbia-wsbench-"));
  onExit(() => rmSync(dataDir, { recursive: true, force: true }));
  const port = freePort();
  const child = track(
    Bun.spawn(command, {
      cwd: process.env.PROFILE ? REPOSITORY : dataDir,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "/tmp",
        DATA_DIR: dataDir,
        DATABASE_URL: databaseUrl,
        ADMIN_SOCKET: "off",
        PORT: String(port),
        HOST: "127.0.0.1",
        LOG_LEVEL: "warn",
        ...env,
      },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    }),
  );
  const log = watchStderr(child, "product", /slow consumer/);
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(`${url}/api/health`, child, 60_000, () => log.tail);
  return {
    name: "product",
    pid: child.pid,
    url,
    wsUrl: `ws://127.0.0.1:${port}/api/ws`,
    counted: () => log.matches,
    stop: () => stopProcess(child),
  };
}

/** The raw baseline (raw-publisher.ts) in a process of its own, with the product's socket settings. */
export async function startRawPublisher(template: unknown, env: Record<string, string> = {}): Promise<ServerHandle> {
  const port = freePort();
  const child = track(
    Bun.spawn([process.execPath, "run", join(import.meta.dir, "raw-publisher.ts")], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", PORT: String(port), TEMPLATE: JSON.stringify(template), ...env },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    }),
  );
  const log = watchStderr(child, "raw");
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(`${url}/health`, child, 30_000, () => log.tail);
  return {
    name: "raw",
    pid: child.pid,
    url,
    wsUrl: `ws://127.0.0.1:${port}/api/ws`,
    counted: () => 0,
    stop: () => stopProcess(child),
  };
}
