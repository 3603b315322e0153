/**
 * The process harness itself, with tiny stand-in servers (a few lines of Bun), so that its bounds hold
 * whatever the product does: a server that never becomes healthy, one that dies while starting, one that
 * ignores SIGTERM, a command that hangs.
 */
import { describe, expect, test } from "bun:test";
import { minimalEnv, runCommand, startServer } from "./harness";
import { useEndToEndTimeout } from "./timeout";

useEndToEndTimeout();

/** A Bun process running `script`, which reads PORT as the product does. */
const bunScript = (script: string) => [process.execPath, "-e", script];

const HEALTHY = `Bun.serve({ port: Number(process.env.PORT), hostname: process.env.HOST, fetch: () => new Response("ok") });`;

describe("the process harness", () => {
  test("a server that dies while starting: the error says so and shows what it printed", async () => {
    const started = performance.now();
    const failure = await startServer({
      command: bunScript(`console.error("cannot open the data directory"); process.exit(3);`),
      env: minimalEnv(),
      label: "dying",
      healthTimeoutMs: 20_000,
    }).catch((error: Error) => error);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toContain("dying");
    expect((failure as Error).message).toContain("exited with 3 while starting");
    expect((failure as Error).message).toContain("cannot open the data directory");
    // It did not wait out the health timeout.
    expect(performance.now() - started).toBeLessThan(15_000);
  });

  test("a server that never answers health is killed after the bound", async () => {
    const failure = await startServer({
      command: bunScript(`console.log("still starting"); setInterval(() => {}, 1000);`),
      env: minimalEnv(),
      healthTimeoutMs: 1_000,
    }).catch((error: Error) => error);
    expect((failure as Error).message).toContain("not healthy within 1000 ms");
    expect((failure as Error).message).toContain("still starting");
  });

  test("stop: SIGTERM for a server that honours it, SIGKILL after the grace for one that does not", async () => {
    const polite = await startServer({ command: bunScript(HEALTHY), env: minimalEnv() });
    expect((await fetch(`${polite.url}/api/health`)).status).toBe(200);
    // Bun's default SIGTERM handling ends the process: 128 + 15.
    expect(await polite.stop(10_000)).toBe(143);

    const stubborn = await startServer({
      command: bunScript(`process.on("SIGTERM", () => console.log("ignoring SIGTERM")); ${HEALTHY}`),
      env: minimalEnv(),
    });
    const stopping = performance.now();
    expect(await stubborn.stop(500)).toBe(137);
    expect(performance.now() - stopping).toBeLessThan(5_000);
    expect(stubborn.output()).toContain("ignoring SIGTERM");
  });

  test("a command that hangs is killed after its timeout", async () => {
    const result = await runCommand(bunScript(`console.log("working"); setInterval(() => {}, 1000);`), { env: minimalEnv(), timeoutMs: 1_000 });
    expect(result.code).toBe(137);
    expect(result.stdout).toContain("working");
  });
});
