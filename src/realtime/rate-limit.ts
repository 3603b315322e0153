/**
 * Per-connection frame rate limit: a token bucket (steady rate plus a burst), and a flood detector that
 * tells the connection to close when a client keeps sending after being told to slow down.
 *
 * The budget depends on who is connected: a person types a few frames a second, while an agent or a
 * service sends in bursts (a queue relayed at once, answers to many conversations), so they get a larger
 * bucket. `message:append` frames have a bucket of their own whoever sends them.
 */
import type { Principal } from "../auth/principal";
import type { Config } from "../config";

export interface FrameBudget {
  perSecond: number;
  burst: number;
}

/** Whose budget a connection gets: a service acting for a user (X-As-User-Id) keeps the service's. */
export function frameBudgetKind(principal: Pick<Principal, "type" | "actedBy">): "person" | "service" {
  const type = principal.actedBy?.type ?? principal.type;
  return type === "user" ? "person" : "service";
}

/** The buckets of a new connection: its frames, and its `message:append` frames. */
export function frameBudgetsFor(
  config: Pick<Config, "wsRateLimitPerSecond" | "wsRateLimitBurst" | "wsServiceRateLimitPerSecond" | "wsServiceRateLimitBurst" | "wsAppendRateLimitPerSecond" | "wsAppendRateLimitBurst">,
  principal: Pick<Principal, "type" | "actedBy">,
): { frames: FrameBudget; appends: FrameBudget } {
  const frames =
    frameBudgetKind(principal) === "person"
      ? { perSecond: config.wsRateLimitPerSecond, burst: config.wsRateLimitBurst }
      : { perSecond: config.wsServiceRateLimitPerSecond, burst: config.wsServiceRateLimitBurst };
  return { frames, appends: { perSecond: config.wsAppendRateLimitPerSecond, burst: config.wsAppendRateLimitBurst } };
}

export class FrameRateLimit {
  private tokens: number;
  private refilledAt: number;
  private rejected = 0;
  private windowStartedAt = 0;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    /** Rejections tolerated within `floodWindowMs` before the client counts as flooding. */
    private readonly floodRejections = 5 * burst,
    private readonly floodWindowMs = 5_000,
    now = performance.now(),
  ) {
    this.tokens = burst;
    this.refilledAt = now;
  }

  /** Takes one token; false when the frame must be rejected. */
  take(now = performance.now()): boolean {
    const elapsed = now - this.refilledAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.perSecond) / 1000);
      this.refilledAt = now;
    }
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    if (now - this.windowStartedAt > this.floodWindowMs) {
      this.windowStartedAt = now;
      this.rejected = 0;
    }
    this.rejected += 1;
    return false;
  }

  /** True once the rejections within the current window pass the flood threshold. */
  isFlooding(): boolean {
    return this.rejected > this.floodRejections;
  }

  /** Seconds until the next frame would be accepted, for the error message. */
  retryAfterSeconds(): number {
    return Math.max(0, (1 - this.tokens) / this.perSecond);
  }
}
