/**
 * One open WebSocket: who is on it, what it has joined, and its frame budget.
 */
import type { Credentials } from "../auth/identity";
import type { Principal } from "../auth/principal";
import type { Scope } from "../core/scope";
import type { TopicFrame } from "./frames";
import { FrameRateLimit, type FrameBudget } from "./rate-limit";

/** Close codes the server uses (docs/protocol.md, Close codes). */
export const CLOSE = {
  goingAway: 1001,
  policyViolation: 1008,
  slowConsumer: 4008,
  unauthorized: 4401,
} as const;

/**
 * The parts of Bun's ServerWebSocket the realtime layer uses (Elysia's own typing of the raw socket
 * leaves some of them out).
 */
export interface RealtimeSocket {
  send(data: string, compress?: boolean): number;
  publish(topic: string, data: string, compress?: boolean): number;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  close(code?: number, reason?: string): void;
  cork<T>(callback: () => T): T;
  /** Bytes queued by send/publish and not yet written to the network. */
  getBufferedAmount(): number;
}

/** A join between its registration and its subscription: live frames for the conversation wait here. */
export interface PendingJoin {
  buffer: TopicFrame[];
  /** Set when membership ended while the join was running; the join then fails instead of subscribing. */
  revoked?: boolean;
  /** Replayed sequences whose live frames the join waits for before subscribing. */
  awaiting?: Set<number>;
  /** Ends that wait. */
  settled?: () => void;
}

export interface JoinedConversation {
  /** Watching read-only as a system admin or observer, not as a participant: no presence is announced. */
  observer: boolean;
}

export class Connection {
  readonly id = Bun.randomUUIDv7();
  readonly joined = new Map<string, JoinedConversation>();
  readonly joining = new Map<string, PendingJoin>();
  readonly rate: FrameRateLimit;
  /** `message:append` frames only (docs/streaming.md, Limits). */
  readonly appendRate: FrameRateLimit;
  closed = false;
  /** Frames of a connection are handled one after another: a client's sends get sequences in the order it sent them. */
  private tail: Promise<void> = Promise.resolve();

  constructor(
    readonly socket: RealtimeSocket,
    /** Replaced when the principal changes (roles, entitlements) and its credential still authenticates. */
    public principal: Principal,
    /** Kept to re-authenticate the connection when its principal changes. */
    readonly credentials: Credentials,
    readonly scope: Scope,
    readonly requestId: string,
    rate: FrameBudget,
    appendRate: FrameBudget = rate,
  ) {
    this.rate = new FrameRateLimit(rate.perSecond, rate.burst);
    this.appendRate = new FrameRateLimit(appendRate.perSecond, appendRate.burst);
  }

  send(frame: string): void {
    if (!this.closed) this.socket.send(frame, false);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close(code, reason);
  }

  /** Runs `task` after the connection's earlier frames; the returned promise never rejects. */
  enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.tail.then(task, task).catch(() => {});
    this.tail = run;
    return run;
  }
}
