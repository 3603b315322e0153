/**
 * Keeps password guessing expensive without letting a stranger lock anyone out. Failed logins are
 * counted three ways within a window (LOGIN_WINDOW_SECONDS):
 *
 * - per account and address: past LOGIN_MAX_FAILURES, that address may not try that account again until
 *   the window ends. This stops one source guessing one account, and shuts out only that source.
 * - per address, over all accounts: past four times that (many people may share one NAT address), the
 *   address may not log in at all until the window ends. This stops one source spraying many accounts.
 * - per account, over all addresses: past LOGIN_MAX_FAILURES, the account is slowed down, not locked:
 *   each further attempt must wait 1 s, 2 s, 4 s, … (at most MAX_DELAY_MS) after the last failure. A
 *   guesser spread over many addresses gets a few dozen guesses an hour at most.
 *
 * Addresses from which an account logged in successfully are exempt from the account's slow-down (never
 * from their own per-address limits), so its owner is not delayed by someone else's failures from
 * elsewhere. Success clears that address's count for the account. The state is in memory, per instance.
 * Local and remote identity both use it: with a remote Identity service, guesses stop here.
 */
import { rateLimited } from "../core/errors";
import type { AuthReply } from "./identity";

export function rateLimitedReply(waitSeconds: number): AuthReply {
  const error = rateLimited(waitSeconds, "Too many failed logins; try again later");
  return { status: error.status, body: error.toBody(), setCookies: [], headers: error.headers };
}

/** The longest slow-down of an account between two attempts from an address it was not used from. */
export const MAX_DELAY_MS = 60_000;
/** How long an address is remembered as one an account logs in from. */
const KNOWN_ADDRESS_MS = 30 * 24 * 3600 * 1000;
/** Entries kept before expired ones are swept (each map). */
const SWEEP_AT = 100_000;

interface Count {
  failures: number;
  resetAt: number;
  lastFailureAt: number;
}

const accountOf = (email: string) => email.trim().toLowerCase();

export class LoginLimiter {
  private readonly pairs = new Map<string, Count>();
  private readonly addresses = new Map<string, Count>();
  private readonly accounts = new Map<string, Count>();
  /** `account\naddress` → until when that address is known for that account. */
  private readonly known = new Map<string, number>();

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
  ) {}

  /** Seconds to wait before this address may try this account, or 0 when it may try now. */
  retryAfterSeconds(email: string, ip: string, now = Date.now()): number {
    const account = accountOf(email);
    const pairKey = `${account}\n${ip}`;
    let waitMs = 0;
    const pair = this.live(this.pairs, pairKey, now);
    if (pair && pair.failures >= this.maxFailures) waitMs = Math.max(waitMs, pair.resetAt - now);
    const address = this.live(this.addresses, ip, now);
    if (address && address.failures >= this.maxFailures * 4) waitMs = Math.max(waitMs, address.resetAt - now);
    const overall = this.live(this.accounts, account, now);
    if (overall && overall.failures >= this.maxFailures && !this.isKnown(pairKey, now)) {
      const delay = Math.min(MAX_DELAY_MS, 1000 * 2 ** (overall.failures - this.maxFailures));
      waitMs = Math.max(waitMs, overall.lastFailureAt + delay - now);
    }
    return waitMs > 0 ? Math.ceil(waitMs / 1000) : 0;
  }

  recordFailure(email: string, ip: string, now = Date.now()): void {
    const account = accountOf(email);
    this.count(this.pairs, `${account}\n${ip}`, now);
    this.count(this.addresses, ip, now);
    this.count(this.accounts, account, now);
  }

  recordSuccess(email: string, ip: string, now = Date.now()): void {
    const pairKey = `${accountOf(email)}\n${ip}`;
    this.pairs.delete(pairKey);
    this.known.delete(pairKey);
    this.known.set(pairKey, now + KNOWN_ADDRESS_MS);
    if (this.known.size > SWEEP_AT) {
      for (const [key, until] of this.known) if (until <= now) this.known.delete(key);
      // Still full of live entries: forget the oldest (Maps iterate in insertion order).
      for (const key of this.known.keys()) {
        if (this.known.size <= SWEEP_AT) break;
        this.known.delete(key);
      }
    }
  }

  private isKnown(pairKey: string, now: number): boolean {
    const until = this.known.get(pairKey);
    return until !== undefined && until > now;
  }

  private live(map: Map<string, Count>, key: string, now: number): Count | undefined {
    const count = map.get(key);
    if (count && count.resetAt <= now) {
      map.delete(key);
      return undefined;
    }
    return count;
  }

  private count(map: Map<string, Count>, key: string, now: number): void {
    const count = this.live(map, key, now);
    if (count) {
      count.failures++;
      count.lastFailureAt = now;
    } else {
      map.set(key, { failures: 1, resetAt: now + this.windowMs, lastFailureAt: now });
    }
    if (map.size > SWEEP_AT) for (const [k, c] of map) if (c.resetAt <= now) map.delete(k);
  }
}
