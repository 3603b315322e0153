/**
 * The product as operators run it: `bun run src/main.ts serve` as a real process on a free port with its
 * own data directory (and the test PostgreSQL when TEST_DATABASE_URL is set), and CLI commands run as
 * separate processes against it. Every wait is bounded.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { TEST_DATABASE_URL } from "./database";

export const MAIN = resolve(import.meta.dir, "../../src/main.ts");
const REPOSITORY = resolve(import.meta.dir, "../..");

export function freePort(): number {
  const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = probe.port!;
  probe.stop(true);
  return port;
}

/** A short temporary directory: unix socket paths must stay under 108 bytes. */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(args: string[], options: { env: Record<string, string>; stdin?: string; timeoutMs?: number }): Promise<CliResult> {
  const child = Bun.spawn([process.execPath, "run", MAIN, ...args], {
    cwd: REPOSITORY,
    env: options.env,
    stdin: options.stdin === undefined ? "ignore" : Buffer.from(options.stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
  try {
    const [stdout, stderr, code] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.exited,
    ]);
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `GET /api/health` until it answers 200 (true), the process exits or the time is up (false). */
export async function becomesHealthy(url: string, child: { exitCode: number | null }, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline && child.exitCode === null) {
    try {
      if ((await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(1000) })).status === 200) return true;
    } catch {
      // not listening yet
    }
    await Bun.sleep(100);
  }
  return false;
}

export interface ServerProcess {
  url: string;
  dataDir: string;
  socketPath: string;
  /** Environment under which CLI commands reach this server (same DATA_DIR and database). */
  env: Record<string, string>;
  /** SIGTERM, then the exit code (SIGKILL after the timeout). */
  stop(): Promise<number>;
}

export async function startServerProcess(extraEnv: Record<string, string> = {}, timeoutMs = 60_000): Promise<ServerProcess> {
  const dataDir = tempDir("symbia-");
  const port = freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/tmp",
    DATA_DIR: dataDir,
    DATABASE_URL: TEST_DATABASE_URL ?? "",
    LOG_LEVEL: "warn",
    ...extraEnv,
  };
  const child = Bun.spawn([process.execPath, "run", MAIN, "serve"], {
    cwd: REPOSITORY,
    env: { ...env, PORT: String(port), HOST: "127.0.0.1" },
    stdout: "ignore",
    stderr: "pipe",
  });
  const stderr = new Response(child.stderr).text();
  const url = `http://127.0.0.1:${port}`;
  if (!(await becomesHealthy(url, child, timeoutMs))) {
    child.kill("SIGKILL");
    await child.exited;
    throw new Error(`server did not become healthy within ${timeoutMs} ms:\n${await stderr}`);
  }
  return {
    url,
    dataDir,
    socketPath: join(dataDir, "admin.sock"),
    env,
    async stop() {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      const code = await child.exited;
      clearTimeout(timer);
      rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}
