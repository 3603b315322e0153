/**
 * The layering of src/, checked from its imports (scripts/check-architecture.ts, also
 * `bun run check:architecture`): no cycles between files or folders, and no forbidden imports.
 */
import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { checkArchitecture, importGraph } from "../scripts/check-architecture";

const root = resolve(import.meta.dir, "..");

describe("architecture", () => {
  const report = checkArchitecture(root);

  test("no import cycle between files or folders", () => {
    expect(report.fileCycles).toEqual([]);
    expect(report.folderCycles).toEqual([]);
  });

  test("the core, the domain and the services import no transport; the hub no database or broker", () => {
    expect(report.violations).toEqual([]);
  });

  test("the check sees the imports it checks (multi-line and type-only ones included)", () => {
    const graph = importGraph(root);
    expect(report.files).toBeGreaterThan(50);
    expect(graph.get("src/realtime/hub.ts")).toContain("src/realtime/broker.ts");
    expect(graph.get("src/realtime/hub.ts")).toContain("src/config.ts");
    expect(graph.get("src/app.ts")).toContain("src/realtime/hub.ts");
  });
});
