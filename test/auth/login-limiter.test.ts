/**
 * The failed-login policy, on the limiter alone with a clock of its own: one source is shut out of the
 * account it guesses; the account itself is only slowed down, and never for addresses its owner logs in
 * from.
 */
import { describe, expect, test } from "bun:test";
import { LoginLimiter, MAX_DELAY_MS } from "../../src/auth/login-limiter";

const WINDOW = 15 * 60_000;
const EMAIL = "ada@example.test";

describe("login limiter", () => {
  test("one address guessing one account is stopped after the limit, until the window ends", () => {
    const limiter = new LoginLimiter(5, WINDOW);
    const t0 = 1_000_000;
    for (let i = 0; i < 5; i++) {
      expect(limiter.retryAfterSeconds(EMAIL, "203.0.113.9", t0 + i)).toBe(0);
      limiter.recordFailure(EMAIL, "203.0.113.9", t0 + i);
    }
    expect(limiter.retryAfterSeconds(EMAIL, "203.0.113.9", t0 + 10)).toBe(WINDOW / 1000);
    expect(limiter.retryAfterSeconds(EMAIL.toUpperCase(), "203.0.113.9", t0 + 10)).toBeGreaterThan(0);
    expect(limiter.retryAfterSeconds(EMAIL, "203.0.113.9", t0 + WINDOW + 10)).toBe(0);
  });

  test("a lockout from one address does not reach the owner's address", () => {
    const limiter = new LoginLimiter(5, WINDOW);
    const t0 = 1_000_000;
    limiter.recordSuccess(EMAIL, "198.51.100.7", t0);
    for (let i = 0; i < 50; i++) limiter.recordFailure(EMAIL, `203.0.113.${i}`, t0 + i);
    expect(limiter.retryAfterSeconds(EMAIL, "198.51.100.7", t0 + 100)).toBe(0);
  });

  test("from other addresses the account slows down progressively, capped, instead of locking", () => {
    const limiter = new LoginLimiter(5, WINDOW);
    let now = 1_000_000;
    const waits: number[] = [];
    for (let i = 0; i < 12; i++) {
      const ip = `203.0.113.${i}`;
      const wait = limiter.retryAfterSeconds(EMAIL, ip, now);
      waits.push(wait);
      now += wait * 1000;
      limiter.recordFailure(EMAIL, ip, now);
    }
    expect(waits).toEqual([0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, MAX_DELAY_MS / 1000]);
    // A newcomer waits at most the cap, then may try.
    const wait = limiter.retryAfterSeconds(EMAIL, "192.0.2.1", now);
    expect(wait).toBeLessThanOrEqual(MAX_DELAY_MS / 1000);
    expect(limiter.retryAfterSeconds(EMAIL, "192.0.2.1", now + wait * 1000)).toBe(0);
  });

  test("one address spraying many accounts is stopped at four times the limit", () => {
    const limiter = new LoginLimiter(5, WINDOW);
    for (let i = 0; i < 20; i++) limiter.recordFailure(`user${i}@example.test`, "203.0.113.9", 1000 + i);
    expect(limiter.retryAfterSeconds("someone@example.test", "203.0.113.9", 2000)).toBeGreaterThan(0);
    expect(limiter.retryAfterSeconds("someone@example.test", "203.0.113.10", 2000)).toBe(0);
  });

  test("success clears that address's count for the account", () => {
    const limiter = new LoginLimiter(5, WINDOW);
    for (let i = 0; i < 4; i++) limiter.recordFailure(EMAIL, "198.51.100.7", 1000);
    limiter.recordSuccess(EMAIL, "198.51.100.7", 1001);
    for (let i = 0; i < 4; i++) limiter.recordFailure(EMAIL, "198.51.100.7", 1002);
    expect(limiter.retryAfterSeconds(EMAIL, "198.51.100.7", 1003)).toBe(0);
  });
});
