/**
 * The product as operators run it: `bun run src/main.ts serve` as a real process on a free port with its
 * own data directory (and the test PostgreSQL when TEST_DATABASE_URL is set), and CLI commands run as
 * separate processes against it. The processes themselves are the harness's (./harness.ts).
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { TEST_DATABASE_URL } from "./database";
import { minimalEnv, productCommand, runCommand, startServer, tempDir, type CommandResult } from "./harness";

export type CliResult = CommandResult;

export function runCli(args: string[], options: { env: Record<string, string>; stdin?: string; timeoutMs?: number }): Promise<CliResult> {
  return runCommand([...productCommand(), ...args], options);
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
  const env: Record<string, string> = {
    ...minimalEnv(),
    DATA_DIR: dataDir,
    DATABASE_URL: TEST_DATABASE_URL ?? "",
    LOG_LEVEL: "warn",
    ...extraEnv,
  };
  const server = await startServer({ command: [...productCommand(), "serve"], env, healthTimeoutMs: timeoutMs }).catch((error) => {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  });
  return {
    url: server.url,
    dataDir,
    socketPath: join(dataDir, "admin.sock"),
    env,
    async stop() {
      const code = await server.stop(15_000);
      rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}
