/**
 * The executable as an operator meets it: start-up, persistence across restarts, the data-directory lock,
 * concurrent migrations, and configuration errors. These spawn real server processes.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import postgres from "postgres";
import { TEST_DATABASE_URL } from "../support/database";
import { freePort, productCommand, runCommand, startServer, tempDir } from "../support/harness";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A data directory of its own, removed after the file. */
function newDataDir(): string {
  const dir = tempDir("symbia-proc-");
  dirs.push(dir);
  return dir;
}

/** The environment of these processes: the developer's, on the embedded database unless a test says otherwise. */
const envWith = (env: Record<string, string>) => ({ ...process.env, LOG_LEVEL: "warn", DATABASE_URL: "", ...env }) as Record<string, string>;

/** A command of the product run to its end. */
const runMain = (args: string[], env: Record<string, string>) => runCommand([...productCommand(), ...args], { env: envWith(env) });

/** `serve` on `port`, healthy within `timeoutMs`. */
const serve = (env: Record<string, string>, port: number, timeoutMs: number) =>
  startServer({ command: [...productCommand(), "serve"], env: envWith(env), port, healthTimeoutMs: timeoutMs });

describe("the server process", () => {
  test("embedded database: data survives a restart, a second process is refused, SIGTERM exits 0", async () => {
    const dataDir = newDataDir();
    const port = freePort();
    const env = { DATA_DIR: dataDir, SYMBIA_ADMIN_EMAIL: "root@example.test", SYMBIA_ADMIN_PASSWORD: "a long admin password" };
    let server = await serve(env, port, 20_000);
    const { url } = server;

    const second = await runMain(["serve"], { ...env, PORT: String(freePort()), HOST: "127.0.0.1" });
    expect(second.code).toBe(1);
    expect(second.stderr.trim().split("\n")).toHaveLength(1);
    expect(second.stderr).toContain("in use by process");

    const login = async () =>
      fetch(`${url}/api/auth/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: "root@example.test", password: "a long admin password" }),
      });
    const first = await login();
    expect(first.status).toBe(200);
    const { token } = (await first.json()) as { token: string };
    const created = await fetch(`${url}/api/conversations`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ type: "group", name: "kept" }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };

    server.kill("SIGTERM");
    expect(await server.exited).toBe(0);

    const restartedAt = performance.now();
    server = await serve(env, port, 10_000);
    expect(performance.now() - restartedAt).toBeLessThan(5_000);
    const after = await fetch(`${url}/api/conversations/${id}`, { headers: { authorization: `Bearer ${token}` } });
    expect(after.status).toBe(200);
    expect(((await after.json()) as { name: string }).name).toBe("kept");
    server.kill("SIGTERM");
    expect(await server.exited).toBe(0);
  }, 60_000);

  test("an unreachable DATABASE_URL exits 1 with one line", async () => {
    const { code, stderr } = await runMain(["serve"], { DATABASE_URL: "postgres://nobody@127.0.0.1:1/x", PORT: String(freePort()) });
    expect(code).toBe(1);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toContain("cannot reach PostgreSQL at 127.0.0.1:1");
  });

  test.each([
    [["serve"], { PORT: "not-a-port" }, "PORT must be a whole number"],
    [["serve"], { SYMBIA_ENV: "production" }, "SYMBIA_ENV must be one of"],
    [["nonsense"], {}, 'unknown command "nonsense"'],
    [["serve", "--bogus"], {}, "serve takes no arguments"],
  ])("bad configuration %p %p exits 1 saying %s", async (args, env, message) => {
    const { code, stderr } = await runMain(args as string[], { DATA_DIR: newDataDir(), ...(env as Record<string, string>) });
    expect(code).toBe(1);
    expect(stderr).toContain(message);
    expect(stderr).not.toContain("    at ");
  });

  test("version and --help", async () => {
    const version = await runMain(["version"], {});
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const help = await runMain(["--help"], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("migrate");
  });
});

describe.skipIf(!TEST_DATABASE_URL)("migrations on PostgreSQL", () => {
  test("two processes migrating one empty database at once both succeed, and each migration runs once", async () => {
    const admin = postgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {} });
    const name = `symbia_migrate_${Math.random().toString(36).slice(2, 10)}`;
    await admin.unsafe(`create database ${name}`);
    try {
      const url = new URL(TEST_DATABASE_URL!);
      url.pathname = `/${name}`;
      const runs = [runMain(["migrate"], { DATABASE_URL: url.toString() }), runMain(["migrate"], { DATABASE_URL: url.toString() })];
      expect((await Promise.all(runs)).map((r) => r.code)).toEqual([0, 0]);
      const db = postgres(url.toString(), { max: 1, onnotice: () => {} });
      const rows = await db`select tag, count(*)::int as n from symbia_migrations group by tag`;
      await db.end();
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) expect(row.n).toBe(1);
    } finally {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    }
  }, 60_000);
});
