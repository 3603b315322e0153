/**
 * Waiting out the server's `rate_limited` answers instead of surfacing them. A refused request was not
 * handled, so sending it again is safe; the server says how long to wait (REST: Retry-After in seconds;
 * WebSocket: the ack error's message, "retry in 0.12 s"). Attempts are bounded, and so is the wait: a
 * delay longer than `maxDelayMs` (a login lockout of minutes) is surfaced at once.
 */

export interface RetryOptions {
  /** Retries of one request after `rate_limited` (default 5); 0 surfaces the first refusal. */
  attempts?: number;
  /** Longest advertised delay worth waiting for (default 10 s); a longer one is surfaced at once. */
  maxDelayMs?: number;
}

export const DEFAULT_RETRY: Required<RetryOptions> = { attempts: 10, maxDelayMs: 10_000 };

export function retryOptions(options: RetryOptions | false | undefined): Required<RetryOptions> {
  if (options === false) return { ...DEFAULT_RETRY, attempts: 0 };
  return { ...DEFAULT_RETRY, ...options };
}

/** Used when the server gave no delay: 100 ms doubling per attempt. */
export const fallbackDelayMs = (attempt: number) => 100 * 2 ** attempt;

/** The delay in an ack error: an explicit `retryAfter` (seconds) if present, else "retry in N s" in the message. */
export function ackRetryDelayMs(error: { message?: string; retryAfter?: unknown } | undefined): number | undefined {
  // At least 10 ms: a refusal rounded to "0.00 s" still means "not yet".
  if (typeof error?.retryAfter === "number" && Number.isFinite(error.retryAfter)) return Math.max(10, error.retryAfter * 1000);
  const match = /retry in ([0-9]+(?:\.[0-9]+)?) ?s\b/.exec(error?.message ?? "");
  return match ? Math.max(10, Number(match[1]) * 1000) : undefined;
}

/** Retry-After as seconds (the API's form) or an HTTP date. */
export function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Paces a connection's frames once the server refused one. Without it, every refused request would come
 * back at the same moment and be refused again, and a server counts repeated refusals as flooding (it
 * closes with 1008). After a refusal, frames leave one per advertised delay — the time the server needs
 * to grant one more frame — until the connection has been quiet for a second.
 */
export class FramePacer {
  private notBefore = 0;
  private spacingMs = 0;

  /** Resolves when the next frame may leave. */
  async turn(): Promise<void> {
    const now = Date.now();
    if (this.spacingMs === 0 && now >= this.notBefore) return;
    if (now > this.notBefore + 1000) {
      this.spacingMs = 0;
      this.notBefore = 0;
      return;
    }
    const slot = Math.max(now, this.notBefore);
    this.notBefore = slot + this.spacingMs;
    if (slot > now) await sleep(slot - now);
  }

  /** The server refused a frame and asked for `delayMs`. */
  refused(delayMs: number): void {
    // The smallest advertised delay is about one frame's worth of refill; at least 1 ms, at most 1 s.
    const spacing = Math.min(1000, Math.max(1, delayMs));
    this.spacingMs = this.spacingMs === 0 ? spacing : Math.max(this.spacingMs, spacing);
    this.notBefore = Math.max(this.notBefore, Date.now() + delayMs);
  }
}
