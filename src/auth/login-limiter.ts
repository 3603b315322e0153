/**
 * Counts failed logins per account and per client address in a fixed window. Past the limit, login answers
 * 429 with Retry-After until the window ends, whether or not the next password would be right. Local and
 * remote identity both use it: with a remote Identity service, guesses stop here before reaching it.
 */
import { rateLimited } from "../core/errors";
import type { AuthReply } from "./identity";

/** What a login attempt is counted against: the account (its e-mail, normalised) and the client address. */
export function loginLimitKeys(email: string, ip: string): string[] {
  return [`account:${email.trim().toLowerCase()}`, `ip:${ip}`];
}

export function rateLimitedReply(waitSeconds: number): AuthReply {
  const error = rateLimited(waitSeconds, "Too many failed logins; try again later");
  return { status: error.status, body: error.toBody(), setCookies: [], headers: error.headers };
}

interface Window {
  failures: number;
  resetAt: number;
}

export class LoginLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
  ) {}

  /** Seconds to wait, or 0 when both the account and the address may try again. */
  retryAfterSeconds(keys: string[], now = Date.now()): number {
    let wait = 0;
    for (const key of keys) {
      const w = this.windows.get(key);
      if (!w) continue;
      if (w.resetAt <= now) {
        this.windows.delete(key);
        continue;
      }
      // The per-address limit is looser: many users may share one NAT address.
      const limit = key.startsWith("ip:") ? this.maxFailures * 4 : this.maxFailures;
      if (w.failures >= limit) wait = Math.max(wait, Math.ceil((w.resetAt - now) / 1000));
    }
    return wait;
  }

  recordFailure(keys: string[], now = Date.now()): void {
    for (const key of keys) {
      const w = this.windows.get(key);
      if (!w || w.resetAt <= now) this.windows.set(key, { failures: 1, resetAt: now + this.windowMs });
      else w.failures++;
    }
    if (this.windows.size > 100_000) this.sweep(now);
  }

  recordSuccess(accountKey: string): void {
    this.windows.delete(accountKey);
  }

  private sweep(now: number): void {
    for (const [key, w] of this.windows) if (w.resetAt <= now) this.windows.delete(key);
  }
}
