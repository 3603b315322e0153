/**
 * The embedded database's data directory is private to the service's user whatever the umask it was
 * started with: DATA_DIR 0700, nothing inside readable or writable by group or others, on a first start
 * and on a restart.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { lstatSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { MAIN, freePort, tempDir, waitForHealth } from "../support/harness";

setDefaultTimeout(120_000);
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Entries (relative paths with their modes) that group or others can use. */
function openEntries(dir: string): string[] {
  const open: string[] = [];
  const visit = (path: string) => {
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) return;
    if (stat.mode & 0o077) open.push(`${path.slice(dir.length) || "/"} ${(stat.mode & 0o777).toString(8)}`);
    if (stat.isDirectory()) for (const entry of readdirSync(path)) visit(join(path, entry));
  };
  visit(dir);
  return open;
}

/** `serve` under umask 000, the most permissive an operator's shell could have. */
async function serveUnderOpenUmask(dataDir: string) {
  const port = freePort();
  const child = Bun.spawn(["sh", "-c", 'umask 000 && exec "$0" run "$1" serve', process.execPath, MAIN], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", DATA_DIR: dataDir, DATABASE_URL: "", PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "warn" },
    stdout: "ignore",
    stderr: "pipe",
  });
  const stderr = new Response(child.stderr).text();
  if (!(await waitForHealth({ url: `http://127.0.0.1:${port}`, child }, 50_000))) {
    child.kill("SIGKILL");
    throw new Error(`server did not become healthy: ${await stderr}`);
  }
  return {
    async stop() {
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    },
  };
}

describe("the data directory's modes", () => {
  test("DATA_DIR is 0700 and nothing in it is open to group or others, on a first start and a restart", async () => {
    const parent = tempDir("symbia-modes-");
    dirs.push(parent);
    const dataDir = join(parent, "data");

    let server = await serveUnderOpenUmask(dataDir);
    expect(lstatSync(dataDir).mode & 0o777).toBe(0o700);
    expect(openEntries(dataDir)).toEqual([]);
    await server.stop();
    expect(openEntries(dataDir)).toEqual([]);

    server = await serveUnderOpenUmask(dataDir);
    expect(openEntries(dataDir)).toEqual([]);
    await server.stop();
    expect(lstatSync(dataDir).mode & 0o777).toBe(0o700);
    expect(openEntries(dataDir)).toEqual([]);
    expect(readdirSync(join(dataDir, "pgdata")).length).toBeGreaterThan(10);
  });
});
