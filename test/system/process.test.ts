/**
 * The executable as an operator meets it: start-up, persistence across restarts, the data-directory lock,
 * concurrent migrations, and configuration errors. These spawn real server processes.
 */
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { TEST_DATABASE_URL } from "../support/database";

// End-to-end tests start servers and processes: more than the runner's 5 s default.
setDefaultTimeout(60_000);

const MAIN = join(import.meta.dir, "../../src/main.ts");
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "symbia-proc-"));
  dirs.push(dir);
  return dir;
}

function freePort(): number {
  const probe = Bun.serve({ port: 0, fetch: () => new Response() });
  const port = probe.port!;
  probe.stop(true);
  return port;
}

/** Every process a test started; a failed test must not leave its server running. */
const spawned: ReturnType<typeof Bun.spawn>[] = [];
afterAll(() => spawned.forEach((proc) => proc.exitCode === null && proc.kill("SIGKILL")));

function spawnMain(args: string[], env: Record<string, string>) {
  const proc = Bun.spawn(["bun", "run", MAIN, ...args], {
    env: { ...process.env, LOG_LEVEL: "warn", DATABASE_URL: "", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  spawned.push(proc);
  return proc;
}

async function waitHealthy(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${url}/api/health`)).status === 200) return;
    } catch {
      // not yet listening
    }
    await Bun.sleep(50);
  }
  throw new Error(`not healthy within ${timeoutMs} ms`);
}

describe("the server process", () => {
  test("embedded database: data survives a restart, a second process is refused, SIGTERM exits 0", async () => {
    const dataDir = tempDir();
    const port = freePort();
    const env = { DATA_DIR: dataDir, PORT: String(port), HOST: "127.0.0.1", SYMBIA_ADMIN_EMAIL: "root@example.test", SYMBIA_ADMIN_PASSWORD: "a long admin password" };
    const url = `http://127.0.0.1:${port}`;
    let server = spawnMain(["serve"], env);
    await waitHealthy(url, 20_000);

    const second = spawnMain(["serve"], { ...env, PORT: String(freePort()) });
    expect(await second.exited).toBe(1);
    const refusal = await new Response(second.stderr).text();
    expect(refusal.trim().split("\n")).toHaveLength(1);
    expect(refusal).toContain("in use by process");

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

    server = spawnMain(["serve"], env);
    const restartedAt = performance.now();
    await waitHealthy(url, 10_000);
    expect(performance.now() - restartedAt).toBeLessThan(5_000);
    const after = await fetch(`${url}/api/conversations/${id}`, { headers: { authorization: `Bearer ${token}` } });
    expect(after.status).toBe(200);
    expect(((await after.json()) as { name: string }).name).toBe("kept");
    server.kill("SIGTERM");
    expect(await server.exited).toBe(0);
  }, 60_000);

  test("an unreachable DATABASE_URL exits 1 with one line", async () => {
    const proc = spawnMain(["serve"], { DATABASE_URL: "postgres://nobody@127.0.0.1:1/x", PORT: String(freePort()) });
    expect(await proc.exited).toBe(1);
    const stderr = await new Response(proc.stderr).text();
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toContain("cannot reach PostgreSQL at 127.0.0.1:1");
  });

  test.each([
    [["serve"], { PORT: "not-a-port" }, "PORT must be a whole number"],
    [["serve"], { SYMBIA_ENV: "production" }, "SYMBIA_ENV must be one of"],
    [["nonsense"], {}, 'unknown command "nonsense"'],
    [["serve", "--bogus"], {}, "serve takes no arguments"],
  ])("bad configuration %p %p exits 1 saying %s", async (args, env, message) => {
    const proc = spawnMain(args as string[], { DATA_DIR: tempDir(), ...(env as Record<string, string>) });
    expect(await proc.exited).toBe(1);
    const stderr = await new Response(proc.stderr).text();
    expect(stderr).toContain(message);
    expect(stderr).not.toContain("    at ");
  });

  test("version and --help", async () => {
    const version = spawnMain(["version"], {});
    expect(await version.exited).toBe(0);
    expect((await new Response(version.stdout).text()).trim()).toMatch(/^\d+\.\d+\.\d+/);
    const help = spawnMain(["--help"], {});
    expect(await help.exited).toBe(0);
    expect(await new Response(help.stdout).text()).toContain("migrate");
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
      const runs = [spawnMain(["migrate"], { DATABASE_URL: url.toString() }), spawnMain(["migrate"], { DATABASE_URL: url.toString() })];
      expect(await Promise.all(runs.map((r) => r.exited))).toEqual([0, 0]);
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
