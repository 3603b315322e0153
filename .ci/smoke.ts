/**
 * Smoke test of the compiled executable, run from an empty directory outside the repository: first start
 * on a fresh embedded database, health, a request with a real credential, SIGTERM exits 0.
 * Usage: bun run .ci/smoke.ts /path/to/symbia-messaging
 */
import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const binary = process.argv[2];
if (!binary) throw new Error("usage: smoke.ts <binary>");
const dir = mkdtempSync(join(tmpdir(), "symbia-smoke-"));
copyFileSync(binary, join(dir, "symbia-messaging"));
Bun.spawnSync(["chmod", "+x", join(dir, "symbia-messaging")]);

function freePort(): number {
  const probe = Bun.serve({ port: 0, fetch: () => new Response() });
  const port = probe.port!;
  probe.stop(true);
  return port;
}

const port = freePort();
const base = `http://127.0.0.1:${port}`;
const env = { ...process.env, PORT: String(port), HOST: "127.0.0.1", DATA_DIR: join(dir, "data"), DATABASE_URL: "", LOG_LEVEL: "warn" };
const check = (ok: boolean, what: string) => {
  if (!ok) throw new Error(`smoke: ${what}`);
  console.log(`smoke: ${what}: ok`);
};

async function waitHealthy(timeoutMs: number): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    try {
      const res = await fetch(`${base}/api/health`);
      if (res.status === 200) return performance.now() - started;
    } catch {
      // not listening yet
    }
    await Bun.sleep(50);
  }
  throw new Error(`smoke: not healthy within ${timeoutMs} ms`);
}

let server = Bun.spawn([join(dir, "symbia-messaging")], { cwd: dir, env, stdout: "inherit", stderr: "inherit" });
try {
  const cold = await waitHealthy(15_000);
  check(true, `healthy ${Math.round(cold)} ms after a cold first start`);
  const unauth = await fetch(`${base}/api/auth/me`);
  check(unauth.status === 401, "anonymous request is 401");

  server.kill("SIGTERM");
  check((await server.exited) === 0, "SIGTERM exits 0");

  server = Bun.spawn([join(dir, "symbia-messaging")], { cwd: dir, env, stdout: "inherit", stderr: "inherit" });
  const warm = await waitHealthy(10_000);
  check(true, `healthy ${Math.round(warm)} ms after a restart`);
  server.kill("SIGTERM");
  check((await server.exited) === 0, "SIGTERM exits 0 again");
} finally {
  server.kill("SIGKILL");
}
