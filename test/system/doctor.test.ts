/**
 * `symbia-messaging doctor` as an operator runs it: a healthy embedded database, one the running server
 * holds, data files open to others, an unreachable PostgreSQL and an invalid setting, with secrets kept
 * out of the output.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, lstatSync, rmSync } from "node:fs";
import { join } from "node:path";
import { hidePassword, visibleSettings } from "../../src/cli/doctor";
import { loadConfig } from "../../src/config";
import { TEST_DATABASE_URL } from "../support/database";
import { freePort, MAIN, tempDir, waitForHealth } from "../support/harness";
import { runCli } from "../support/process";

setDefaultTimeout(120_000);

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const baseEnv = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", LOG_LEVEL: "warn" };

describe("doctor", () => {
  test("embedded database: up to date, then a file open to others, then held by the running server", async () => {
    const parent = tempDir("symbia-doc-");
    dirs.push(parent);
    const port = freePort();
    const env = { ...baseEnv, DATA_DIR: join(parent, "data"), DATABASE_URL: "", PORT: String(port), HOST: "127.0.0.1" };

    const fresh = await runCli(["doctor"], { env });
    expect(fresh.code).toBe(0);
    expect(fresh.stdout).toContain("does not exist yet");

    expect((await runCli(["migrate"], { env })).code).toBe(0);
    const good = await runCli(["doctor"], { env: { ...env, SYMBIA_ADMIN_EMAIL: "root@example.test", SYMBIA_ADMIN_PASSWORD: "a very secret admin password" } });
    expect(good.stderr).toBe("");
    expect(good.code).toBe(0);
    expect(good.stdout).toContain("embedded PostgreSQL");
    expect(good.stdout).toContain("(mode 0700)");
    expect(good.stdout).toMatch(/migrations\s+\d+ applied, \d+ in this executable: up to date/);
    expect(good.stdout).toMatch(/adminPassword\s+\(set\)/);
    expect(good.stdout).not.toContain("a very secret admin password");
    expect(good.stdout).toContain("no problems found");

    // A file with a loose mode behind the private directory: worth a note, not a failure.
    const file = join(parent, "data/pgdata/PG_VERSION");
    chmodSync(file, 0o644);
    const loose = await runCli(["doctor"], { env });
    expect(loose.code).toBe(0);
    expect(loose.stdout).toMatch(/note\s+data directory .*pgdata\/PG_VERSION \(0644\)/);
    // The directory itself open to others: a problem.
    chmodSync(env.DATA_DIR, 0o755);
    const open = await runCli(["doctor"], { env });
    expect(open.code).toBe(1);
    expect(open.stdout).toMatch(/WARN\s+data directory .*\(mode 0755\) is open to group or others, and so are \d+ of the \d+ entries inside \(e\.g\. .*pgdata\/PG_VERSION \(0644\)/);
    // It reports; it does not change them.
    expect(lstatSync(file).mode & 0o777).toBe(0o644);
    expect(lstatSync(env.DATA_DIR).mode & 0o777).toBe(0o755);

    const server = Bun.spawn([process.execPath, "run", MAIN, "serve"], { env, stdout: "ignore", stderr: "ignore" });
    try {
      expect(await waitForHealth({ url: `http://127.0.0.1:${port}`, child: server }, 60_000)).toBe(true);
      const held = await runCli(["doctor", "--json"], { env });
      expect(held.code).toBe(0);
      const report = JSON.parse(held.stdout) as { healthy: boolean; checks: { status: string; name: string; detail: string }[] };
      expect(report.healthy).toBe(true);
      expect(report.checks.find((c) => c.name === "reachable")?.detail).toContain(`running server (process ${server.pid})`);
      // The server made the directory private again at its start.
      expect(report.checks.find((c) => c.name === "data directory")?.detail).toContain("(mode 0700)");
    } finally {
      server.kill("SIGTERM");
      await server.exited;
    }
  });

  test("an unreachable PostgreSQL fails, with the password hidden", async () => {
    const url = `postgres://symbia:hunter2-secret@127.0.0.1:${freePort()}/nothing`;
    const result = await runCli(["doctor"], { env: { ...baseEnv, DATABASE_URL: url } });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/FAIL\s+reachable\s+cannot reach PostgreSQL/);
    expect(result.stdout).toContain("postgres://symbia:*****@127.0.0.1");
    expect(result.stdout).not.toContain("hunter2-secret");
    expect(result.stdout).toContain("1 problem found");
  });

  test("an invalid setting fails before any database is touched", async () => {
    const result = await runCli(["doctor"], { env: { ...baseEnv, PORT: "not-a-port", DATA_DIR: join(tempDir("symbia-doc-"), "never") } });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/FAIL\s+configuration\s+PORT must be a whole number/);
  });

  test.skipIf(!TEST_DATABASE_URL)("PostgreSQL: reachable and migrated", async () => {
    const env = { ...baseEnv, DATABASE_URL: TEST_DATABASE_URL! };
    expect((await runCli(["migrate"], { env })).code).toBe(0);
    const result = await runCli(["doctor"], { env });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/ok\s+reachable\s+answered in \d+ ms/);
    expect(result.stdout).toContain("up to date");
  });

  test("settings hide secrets and URL passwords", () => {
    expect(hidePassword("postgres://u:p@h:5432/d")).toBe("postgres://u:*****@h:5432/d");
    expect(hidePassword("postgres://h/d")).toBe("postgres://h/d");
    expect(hidePassword("./data")).toBe("./data");
    const settings = visibleSettings(
      loadConfig({ DATABASE_URL: "postgres://u:pw@db/x", SYMBIA_ADMIN_EMAIL: "a@b.c", SYMBIA_ADMIN_PASSWORD: "pw-pw-pw-pw", IDENTITY_URL: "https://id:tok@identity" }),
    );
    expect(settings.databaseUrl).toBe("postgres://u:*****@db/x");
    expect(settings.adminPassword).toBe("(set)");
    expect(settings.identityUrl).toBe("https://id:*****@identity/");
    expect(JSON.stringify(settings)).not.toContain("pw-pw-pw-pw");
  });
});
