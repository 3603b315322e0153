/**
 * The publishable SDK (packages/client): its browser bundle pulls in nothing Node-only, its Node entry
 * alone loads `ws`, and its sources use no Bun API (the declaration build has no Bun types to lean on).
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { useEndToEndTimeout } from "../support/timeout";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BunPlugin } from "bun";

useEndToEndTimeout();

const root = join(import.meta.dir, "../..");
const packageDir = join(root, "packages/client");

/** Every import specifier the bundler meets, in any file. */
function recordImports(into: string[]): BunPlugin {
  return {
    name: "record-imports",
    setup(build) {
      build.onResolve({ filter: /.*/ }, (args) => {
        if (!args.kind.startsWith("entry-point")) into.push(args.path);
        return undefined;
      });
    },
  };
}

const nodeOnly = (specifier: string) =>
  specifier.startsWith("node:") || specifier === "ws" || specifier.startsWith("ws/") || specifier.startsWith("bun") || builtinModules.includes(specifier.split("/")[0]!);

beforeAll(async () => {
  // The package as `bun run build:sdk` makes it.
  const build = Bun.spawn(["bun", "run", join(packageDir, "build.ts")], { cwd: root, stdout: "pipe", stderr: "pipe" });
  const [code, err] = await Promise.all([build.exited, new Response(build.stderr).text()]);
  if (code !== 0) throw new Error(`build:sdk failed: ${err}`);
});

describe("browser bundle", () => {
  test("bundling the package for the browser brings in nothing Node-only", async () => {
    const dir = mkdtempSync(join(tmpdir(), "symbia-browser-"));
    try {
      // An application importing the package by name, as a user's bundler would see it.
      const entry = join(import.meta.dir, `.browser-entry-${process.pid}.ts`);
      writeFileSync(entry, 'import { MessagingClient } from "@symbia/messaging-client";\n(globalThis as any).client = new MessagingClient({ baseUrl: location.origin });\n');
      const imports: string[] = [];
      try {
        const result = await Bun.build({ entrypoints: [entry], target: "browser", outdir: dir, plugins: [recordImports(imports)] });
        expect(result.success).toBe(true);
        const output = await result.outputs[0]!.text();
        expect(imports).toContain("@symbia/messaging-client");
        expect(imports.filter(nodeOnly)).toEqual([]);
        expect(output).not.toMatch(/from\s*["'](node:|ws["'])|require\(/);
        expect(output).toContain("class RealtimeClient");
      } finally {
        rmSync(entry, { force: true });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the SDK's sources import nothing but each other", async () => {
    const imports: string[] = [];
    const result = await Bun.build({ entrypoints: [join(root, "src/client/index.ts")], target: "browser", plugins: [recordImports(imports)] });
    expect(result.success).toBe(true);
    expect(imports.filter((specifier) => !specifier.startsWith("./"))).toEqual([]);
  });
});

describe("package", () => {
  test("exports: types for all, the browser/Bun/Deno build by default, the ws build on Node only", async () => {
    const manifest = await Bun.file(join(packageDir, "package.json")).json();
    const entry = manifest.exports["."];
    expect(Object.keys(entry)).toEqual(["types", "browser", "deno", "bun", "node", "default"]);
    for (const condition of ["browser", "deno", "bun", "default"]) expect(entry[condition]).toBe("./dist/index.js");
    expect(entry.node).toBe("./dist/node.js");
    expect(manifest.dependencies).toEqual({ ws: expect.any(String) });

    const browser = await Bun.file(join(packageDir, "dist/index.js")).text();
    const node = await Bun.file(join(packageDir, "dist/node.js")).text();
    expect(browser).not.toContain('from "ws"');
    expect(node).toContain('import WebSocket from "ws"');
    expect(await Bun.file(join(packageDir, "dist/index.d.ts")).exists()).toBe(true);
  });

  test("Bun resolves the package to the global-WebSocket build, and it loads", async () => {
    expect(Bun.resolveSync("@symbia/messaging-client", root)).toBe(join(packageDir, "dist/index.js"));
    const sdk = await import("@symbia/messaging-client" as string);
    expect(Object.keys(sdk).sort()).toEqual(["ApiError", "MessagingClient", "RealtimeClient", "RealtimeError", "RestClient", "RunHandle", "SequenceTracker", "setDefaultWebSocket"]);
  });
});
