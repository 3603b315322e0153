/**
 * The metrics' documentation and the deploy examples stay true: every metric the registry defines is in
 * docs/operations.md, and every metric an alert rule or the scrape example names exists.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { registry, startProcessMetrics } from "../../src/metrics/registry";
import { parseExposition } from "../support/prometheus";

const text = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");

async function exposedFamilies(): Promise<Set<string>> {
  startProcessMetrics();
  return new Set(parseExposition(await registry.metrics()).types.keys());
}

describe("metrics documentation", () => {
  test("docs/operations.md lists every symbia_ metric", async () => {
    const docs = text("docs/operations.md");
    for (const name of await exposedFamilies()) if (name.startsWith("symbia_")) expect(docs).toContain(`\`${name}\``);
  });

  test("every alert names metrics that exist, with a severity and a summary", async () => {
    const families = await exposedFamilies();
    const rules = (Bun.YAML.parse(text("deploy/alerts.yml")) as { groups: { rules: any[] }[] }).groups.flatMap((g) => g.rules);
    expect(rules.length).toBeGreaterThanOrEqual(4);
    for (const rule of rules) {
      expect(typeof rule.alert).toBe("string");
      expect(["page", "warn"]).toContain(rule.labels?.severity);
      expect(typeof rule.annotations?.summary).toBe("string");
      const names = String(rule.expr).match(/\b(symbia|nodejs|process)_[a-z0-9_]+/g) ?? [];
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) expect(families.has(name.replace(/_(bucket|sum|count)$/, ""))).toBe(true);
    }
  });

  test("the scrape example reads alerts.yml and scrapes /metrics", () => {
    const config = Bun.YAML.parse(text("deploy/prometheus.yml")) as { rule_files: string[]; scrape_configs: { metrics_path: string }[] };
    expect(config.rule_files).toContain("alerts.yml");
    for (const job of config.scrape_configs) expect(job.metrics_path).toBe("/metrics");
  });
});
