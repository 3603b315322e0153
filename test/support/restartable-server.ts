/**
 * A server process that a test kills (SIGKILL) and starts again on the same data: the data directory on
 * the embedded database, or TEST_DATABASE_URL. With a user created through the operator CLI and signed in,
 * and a JSON REST call, as the crash tests need them.
 */
import { rmSync } from "node:fs";
import { TEST_DATABASE_URL } from "./database";
import { minimalEnv, productCommand, startServer, tempDir, type ServerProcess } from "./harness";
import { runCli } from "./process";

export interface RestartableServer {
  env: Record<string, string>;
  /** Starts a server process on the shared data. */
  boot(): Promise<ServerProcess>;
  /** Creates a user (through the running server's operator socket, or the database) and signs in: its token. */
  signIn(server: ServerProcess): Promise<string>;
  /** Stops what is still running and removes the data directory. */
  cleanUp(): Promise<void>;
}

export function restartableServer(label: string, extraEnv: Record<string, string> = {}): RestartableServer {
  const dataDir = tempDir(`symbia-${label}-`);
  const started: ServerProcess[] = [];
  const env = { ...minimalEnv(), DATA_DIR: dataDir, DATABASE_URL: TEST_DATABASE_URL ?? "", LOG_LEVEL: "warn", ...extraEnv };
  return {
    env,
    async boot() {
      const server = await startServer({ command: [...productCommand(), "serve"], env, label });
      started.push(server);
      return server;
    },
    async signIn(server) {
      const email = `${label}-${crypto.randomUUID().slice(0, 8)}@crash.test`;
      const user = await runCli(["users", "create", "--email", email, "--password-stdin"], { env, stdin: "crash-test-password\n" });
      if (user.code !== 0) throw new Error(`users create: exit ${user.code}`);
      const login = await fetch(`${server.url}/api/auth/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email, password: "crash-test-password" }),
      });
      const { token } = (await login.json()) as { token?: string };
      if (typeof token !== "string") throw new Error(`login: ${login.status}`);
      return token;
    },
    async cleanUp() {
      for (const server of started) await server.stop(5000).catch(() => {});
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A JSON REST call with a bearer token. */
export async function callAs(server: ServerProcess, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}
