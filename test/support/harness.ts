/**
 * Server processes for the tests, the benchmarks and the CI smoke test alike: a free port, the product
 * spawned from the sources or as the compiled executable with the environment the caller gives, a bounded
 * wait for its health, a bounded stop (SIGTERM, then SIGKILL) and the tail of what it printed, for failure
 * messages. Nothing here knows about databases or fixtures, so that .ci/ and bench/ can use it as it is.
 */
import type { Subprocess } from "bun";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const REPOSITORY = resolve(import.meta.dir, "../..");
export const MAIN = join(REPOSITORY, "src/main.ts");

/** How long a process may take to shut down after SIGTERM before it gets SIGKILL. */
const STOP_GRACE_MS = 10_000;
/** How much of a process's output is kept for failure messages. */
const OUTPUT_TAIL_CHARS = 16_000;
/** How long after its exit the rest of a process's output may take to arrive. */
const OUTPUT_DRAIN_MS = 1_000;

/**
 * A port nobody listens on right now, so that the server under test is configured with PORT as in
 * production. The probe closes before the server binds: should another process take the port in between,
 * the server fails to start and startServer says so with its output.
 */
export function freePort(): number {
  const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = probe.port!;
  probe.stop(true);
  return port;
}

/** A short temporary directory: unix socket paths (the admin socket lives in DATA_DIR) stay under 108 bytes. */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** PATH and HOME only: a server should see the settings a test gives it, not the developer's shell. */
export function minimalEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" };
}

export interface ProductFrom {
  /** A compiled executable; without it the sources run under this Bun. */
  binary?: string;
  /** The checkout whose src/main.ts runs (default: this one), e.g. another version to compare. */
  source?: string;
  /** Flags for Bun itself before `run` (e.g. the CPU profiler); sources only. */
  bunFlags?: string[];
}

/** The command line that runs the product, before its own arguments (`serve`, `users create`, ...). */
export function productCommand(from: ProductFrom = {}): string[] {
  if (from.binary) return [from.binary];
  return [process.execPath, ...(from.bunFlags ?? []), "run", join(from.source ?? REPOSITORY, "src/main.ts")];
}

// Whatever a test or benchmark does (a failed assertion, an exception, Ctrl-C), no server it started
// outlives it: a stray server keeps its port, its data directory lock and its database connections.
const running = new Set<Subprocess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export interface ServerOptions {
  /** The full command line, e.g. `[...productCommand(), "serve"]`. */
  command: string[];
  /** The environment of the process; the harness adds PORT and HOST. */
  env: Record<string, string>;
  cwd?: string;
  /** Default: a free one. */
  port?: number;
  /** Answers 200 once the server is ready (default /api/health). */
  healthPath?: string;
  /** How long startServer waits for health (default 30 s). */
  healthTimeoutMs?: number;
  /** Names the process in failure messages and echoed output. */
  label?: string;
  /** Also write its output to this process's stderr, each line prefixed with the label. */
  echo?: boolean;
  /** Called with every line it prints (stdout and stderr), e.g. to count log lines of one kind. */
  onLine?: (line: string) => void;
}

export interface ServerProcess {
  label: string;
  port: number;
  url: string;
  wsUrl: string;
  pid: number;
  child: Subprocess;
  /** Its exit code once it has exited and its output has been read. */
  exited: Promise<number>;
  /** The last lines it printed (stdout and stderr interleaved). */
  output(): string;
  kill(signal: "SIGTERM" | "SIGKILL" | "SIGINT"): void;
  /** SIGTERM, then SIGKILL when it has not exited within `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number>;
}

/** Starts the process without waiting for it (e.g. to see it refuse to start). */
export function spawnServer(options: ServerOptions): ServerProcess {
  const port = options.port ?? freePort();
  const label = options.label ?? "server";
  const child = Bun.spawn(options.command, {
    cwd: options.cwd ?? REPOSITORY,
    env: { ...options.env, PORT: String(port), HOST: "127.0.0.1" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  running.add(child);
  void child.exited.then(() => running.delete(child));

  let tail = "";
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    let partial = "";
    for await (const chunk of stream) {
      const text = decoder.decode(chunk, { stream: true });
      tail = (tail + text).slice(-OUTPUT_TAIL_CHARS);
      if (options.echo) process.stderr.write(text.replace(/^(?=.)/gm, `[${label}] `));
      if (options.onLine) {
        const lines = (partial + text).split("\n");
        partial = lines.pop()!;
        for (const line of lines) options.onLine(line);
      }
    }
    if (partial) options.onLine?.(partial);
  };
  // Both pipes are always read: a child blocked on a full pipe would stop answering.
  const drained = Promise.all([collect(child.stdout), collect(child.stderr)]).catch(() => {});
  // Once it has exited, its last words are in output() too (bounded: a grandchild may hold the pipes).
  const exited = child.exited.then(async (code) => {
    await Promise.race([drained, Bun.sleep(OUTPUT_DRAIN_MS)]);
    return code;
  });

  const url = `http://127.0.0.1:${port}`;
  return {
    label,
    port,
    url,
    wsUrl: `ws://127.0.0.1:${port}/api/ws`,
    pid: child.pid,
    child,
    exited,
    output: () => tail,
    kill: (signal) => child.kill(signal),
    stop: async (graceMs) => {
      await stopProcess(child, graceMs);
      return exited;
    },
  };
}

/** Polls the health path until it answers 200 (true), the process exits or the time is up (false). */
export async function waitForHealth(server: Pick<ServerProcess, "url" | "child">, timeoutMs: number, healthPath = "/api/health"): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline && server.child.exitCode === null) {
    try {
      const response = await fetch(server.url + healthPath, { signal: AbortSignal.timeout(1_000) });
      if (response.status === 200) return true;
    } catch {
      // not listening yet
    }
    await Bun.sleep(50);
  }
  return false;
}

/** Spawns the server and waits until it is healthy; otherwise kills it and throws with its output. */
export async function startServer(options: ServerOptions): Promise<ServerProcess> {
  const server = spawnServer(options);
  const timeoutMs = options.healthTimeoutMs ?? 30_000;
  if (!(await waitForHealth(server, timeoutMs, options.healthPath))) {
    const exitCode = server.child.exitCode;
    server.kill("SIGKILL");
    await server.exited;
    const why = exitCode === null ? `not healthy within ${timeoutMs} ms` : `exited with ${exitCode} while starting`;
    throw new Error(`${server.label} on ${server.url}: ${why}:\n${server.output()}`);
  }
  return server;
}

/** SIGTERM, then SIGKILL when the process has not exited within `graceMs`; resolves with the exit code. */
export async function stopProcess(child: Subprocess, graceMs = STOP_GRACE_MS): Promise<number> {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  try {
    return await child.exited;
  } finally {
    clearTimeout(timer);
  }
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (SIGKILL after `timeoutMs`), e.g. an operator command of the product. */
export async function runCommand(
  command: string[],
  options: { env: Record<string, string>; cwd?: string; stdin?: string; timeoutMs?: number },
): Promise<CommandResult> {
  const child = Bun.spawn(command, {
    cwd: options.cwd ?? REPOSITORY,
    env: options.env,
    stdin: options.stdin === undefined ? "ignore" : Buffer.from(options.stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  running.add(child);
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
  try {
    const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
    running.delete(child);
  }
}
