/**
 * The per-connection frame rate limit: a token bucket and a flood detector. Time is passed in, so nothing
 * here waits.
 */
import { describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/config";
import { FrameRateLimit, frameBudgetKind, frameBudgetsFor } from "../../src/realtime/rate-limit";

describe("FrameRateLimit", () => {
  test("a burst, then the steady rate; flooding after enough rejections", () => {
    const limit = new FrameRateLimit(10, 5, 3, 5000, 0);
    for (let i = 0; i < 5; i++) expect(limit.take(0)).toBe(true);
    expect(limit.take(0)).toBe(false);
    expect(limit.take(100)).toBe(true);
    expect(limit.take(100)).toBe(false);
    expect(limit.isFlooding()).toBe(false);
    limit.take(100);
    limit.take(100);
    expect(limit.isFlooding()).toBe(true);
  });

  test("tokens refill at the steady rate, in fractions, never above the burst", () => {
    const limit = new FrameRateLimit(10, 3, 100, 5000, 0);
    for (let i = 0; i < 3; i++) expect(limit.take(0)).toBe(true);
    // Half a token after 50 ms is not a frame; the other half at 100 ms is.
    expect(limit.take(50)).toBe(false);
    expect(limit.take(100)).toBe(true);
    expect(limit.take(100)).toBe(false);
    // A long quiet spell gives back the burst and no more.
    for (let i = 0; i < 3; i++) expect(limit.take(60_000)).toBe(true);
    expect(limit.take(60_000)).toBe(false);
  });

  test("retryAfterSeconds says how long until the next token", () => {
    const limit = new FrameRateLimit(10, 1, 100, 5000, 0);
    expect(limit.retryAfterSeconds()).toBe(0);
    expect(limit.take(0)).toBe(true);
    expect(limit.retryAfterSeconds()).toBeCloseTo(0.1, 10);
    expect(limit.take(50)).toBe(false);
    expect(limit.retryAfterSeconds()).toBeCloseTo(0.05, 10);
    expect(limit.take(100)).toBe(true);
  });

  test("flooding is more than the tolerated rejections within one window; a new window starts the count again", () => {
    // Practically no refill: every frame after the first is rejected.
    const limit = new FrameRateLimit(0.001, 1, 3, 5000, 0);
    expect(limit.take(0)).toBe(true);
    for (let i = 0; i < 3; i++) expect(limit.take(1000)).toBe(false);
    expect(limit.isFlooding()).toBe(false);
    // The window has passed: the next rejection is the first of a new window.
    expect(limit.take(6000)).toBe(false);
    expect(limit.isFlooding()).toBe(false);
    for (let i = 0; i < 2; i++) limit.take(6000);
    expect(limit.isFlooding()).toBe(false);
    limit.take(6000);
    expect(limit.isFlooding()).toBe(true);
  });

  test("by default five bursts' worth of rejections are tolerated", () => {
    const limit = new FrameRateLimit(0.001, 2, undefined, 5000, 0);
    expect(limit.take(0)).toBe(true);
    expect(limit.take(0)).toBe(true);
    for (let i = 0; i < 10; i++) expect(limit.take(1)).toBe(false);
    expect(limit.isFlooding()).toBe(false);
    limit.take(1);
    expect(limit.isFlooding()).toBe(true);
  });
});

describe("frame budgets by principal kind", () => {
  const config = loadConfig({});

  test("people get WS_RATE_LIMIT / WS_RATE_BURST, agents and services the larger service budget", () => {
    expect(frameBudgetsFor(config, { type: "user" }).frames).toEqual({ perSecond: 50, burst: 100 });
    for (const type of ["agent", "service"] as const) {
      expect(frameBudgetsFor(config, { type }).frames).toEqual({ perSecond: 1000, burst: 2000 });
    }
    // Appends keep a bucket of their own, the same for everyone.
    expect(frameBudgetsFor(config, { type: "user" }).appends).toEqual({ perSecond: 1000, burst: 2000 });
    expect(frameBudgetsFor(config, { type: "agent" }).appends).toEqual({ perSecond: 1000, burst: 2000 });
  });

  test("a service acting for a user keeps the service's budget; a user never gets it", () => {
    expect(frameBudgetKind({ type: "user", actedBy: { id: "svc", type: "service" } })).toBe("service");
    expect(frameBudgetKind({ type: "agent", actedBy: { id: "u", type: "user" } })).toBe("person");
    expect(frameBudgetKind({ type: "user" })).toBe("person");
  });

  test("every budget is configurable and validated", () => {
    const custom = loadConfig({ WS_SERVICE_RATE_LIMIT: "300", WS_SERVICE_RATE_BURST: "600", WS_RATE_LIMIT: "5", WS_RATE_BURST: "7" });
    expect(frameBudgetsFor(custom, { type: "service" }).frames).toEqual({ perSecond: 300, burst: 600 });
    expect(frameBudgetsFor(custom, { type: "user" }).frames).toEqual({ perSecond: 5, burst: 7 });
    expect(() => loadConfig({ WS_SERVICE_RATE_BURST: "0" })).toThrow(/WS_SERVICE_RATE_BURST/);
    expect(() => loadConfig({ WS_SERVICE_RATE_LIMIT: "fast" })).toThrow(/WS_SERVICE_RATE_LIMIT/);
  });
});
