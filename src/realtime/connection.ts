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
  /** Frames received and not started yet, in arrival order. */
  private readonly waiting: ScheduledFrame[] = [];
  private sendsRunning = 0;
  /** A frame other than a send is running: nothing else starts until it ends. */
  private exclusiveRunning = false;

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
    /** `message:send` frames that may be in flight at once (WS_SEND_WINDOW). */
    readonly sendWindow = 1,
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

  /** Sends started and not yet answered. */
  get sendsInFlight(): number {
    return this.sendsRunning;
  }

  /**
   * Runs `task` in frame order; the returned promise ends with it and never rejects.
   *
   * A `message:send` (`send` true) may start while earlier sends are still running, up to `sendWindow`
   * of them, so that a client streaming messages is not held to one database round trip per message.
   * Sends start in frame order, and the domain writes sends in the order they start (`sendMessage` hands
   * its statement to the send batcher before its first await), so sends into one conversation get
   * sequences in the order of their frames. Any other frame waits for every earlier frame to end and holds back every later one, as
   * if the connection handled one frame at a time: a join, an edit or an append after a send sees that
   * send done, and a send after a leave or a join runs after it.
   */
  schedule(task: () => Promise<void>, send = false): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waiting.push({ task, send, done: resolve });
      this.startWaiting();
    });
  }

  /** Starts the waiting frames that may start now, in arrival order. */
  private startWaiting(): void {
    while (this.waiting.length > 0 && !this.exclusiveRunning) {
      const next = this.waiting[0];
      if (next.send ? this.sendsRunning >= this.sendWindow : this.sendsRunning > 0) return;
      this.waiting.shift();
      if (next.send) this.startSend(next);
      else this.startExclusive(next);
    }
  }

  private startExclusive(frame: ScheduledFrame): void {
    this.exclusiveRunning = true;
    void runToEnd(frame.task).then(() => {
      this.exclusiveRunning = false;
      frame.done();
      this.startWaiting();
    });
  }

  private startSend(frame: ScheduledFrame): void {
    this.sendsRunning++;
    void runToEnd(frame.task).then(() => {
      this.sendsRunning--;
      frame.done();
      this.startWaiting();
    });
  }
}

interface ScheduledFrame {
  task: () => Promise<void>;
  send: boolean;
  done: () => void;
}

async function runToEnd(task: () => Promise<void>): Promise<void> {
  try {
    await task();
  } catch {
    // The task answers the client itself; a failure here has nobody left to tell.
  }
}
