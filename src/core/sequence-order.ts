/**
 * Keeps the frames of a conversation in sequence order on their way to sockets, and remembers which
 * sequences went out recently.
 *
 * The database hands out sequences in commit order, but the `emit` that follows a commit runs when the
 * driver's answer is processed, and answers from different pool connections can be processed in another
 * order. A client resumes from the highest sequence it has seen, so seeing 6 before 5 and then
 * disconnecting would lose 5. This stage holds a frame that arrives ahead of a missing predecessor until
 * the predecessor arrives, or for at most `holdMs`. A gap that lasts is real: a message written by another
 * instance whose notification was lost or is late. It is then read from the database (`fill`; every
 * sequence below a committed one is committed too, since the counter's row lock orders them), and only
 * if that keeps failing (a few tries, FILL_RETRY_DELAYS_MS) does the frame go out anyway.
 *
 * A conversation's state starts with the first sequenced frame seen for it (everything below counts as
 * released) and is dropped when idle. Frames without a sequence queue behind held ones, so an edit never
 * overtakes the message it edits.
 */
/** How long to wait before reading a gap again after a failed read; then the held frames go out anyway. */
const FILL_RETRY_DELAYS_MS = [100, 200, 400, 800];

/** What the stage orders: anything of a conversation, with its sequence when it has one. */
export interface Sequenced {
  conversationId: string;
  sequence?: number;
}

interface ConversationOrder<F extends Sequenced> {
  conversationId: string;
  /** Every sequence up to this one has been released (or given up on). */
  released: number;
  held: F[];
  timer?: ReturnType<typeof setTimeout>;
  /** A read of the missing sequences from the database is under way. */
  filling?: boolean;
  /** Reads of the gap that failed in a row (the database unreachable for a moment). */
  fillFailures: number;
  lastActivity: number;
}

/** Reads the frames of sequences after `after` up to `upTo` (inclusive) from the database. */
export type GapFiller<F extends Sequenced> = (conversationId: string, after: number, upTo: number) => Promise<F[]>;

export class SequenceOrder<F extends Sequenced> {
  private readonly conversations = new Map<string, ConversationOrder<F>>();

  constructor(
    private readonly release: (frame: F) => void,
    private readonly holdMs = 50,
    private readonly fill?: GapFiller<F>,
    /** Whether a sequence already went out: a frame read to fill a gap may also arrive live later. */
    private readonly alreadyReleased?: (conversationId: string, sequence: number) => boolean,
  ) {}

  /** The highest sequence released for a conversation, if it is tracked. */
  releasedUpTo(conversationId: string): number | undefined {
    return this.conversations.get(conversationId)?.released;
  }

  /**
   * Starts tracking a conversation from a known point (a join read its last committed sequence), unless it
   * is tracked already. Without it the first frame seen would set the starting point, and a lower sequence
   * arriving after it (a message of another instance, relayed later than a local one) would go out of order.
   */
  track(conversationId: string, released: number, now = Date.now()): void {
    if (!this.conversations.has(conversationId)) this.conversations.set(conversationId, { conversationId, released, held: [], lastActivity: now, fillFailures: 0 });
  }

  push(frame: F, now = Date.now()): void {
    if (frame.sequence !== undefined && this.alreadyReleased?.(frame.conversationId, frame.sequence)) return;
    let order = this.conversations.get(frame.conversationId);
    if (!order) {
      if (frame.sequence === undefined) return this.release(frame);
      order = { conversationId: frame.conversationId, released: frame.sequence - 1, held: [], lastActivity: now, fillFailures: 0 };
      this.conversations.set(frame.conversationId, order);
    }
    order.lastActivity = now;
    if (order.held.length === 0 && (frame.sequence === undefined || frame.sequence <= order.released + 1)) {
      if (frame.sequence !== undefined) order.released = Math.max(order.released, frame.sequence);
      return this.release(frame);
    }
    order.held.push(frame);
    this.flush(order, false);
    this.holdRest(order);
  }

  /** Frames still held wait for their predecessors, for at most the hold, then the gap is read. */
  private holdRest(order: ConversationOrder<F>): void {
    if (order.held.length > 0 && !order.timer && !order.filling) {
      order.timer = setTimeout(() => {
        order.timer = undefined;
        void this.fillThenFlush(order);
      }, this.holdMs);
    }
  }

  /**
   * The gap outlasted the hold: read the missing sequences, then release in order what the read closed.
   * Frames that arrived meanwhile beyond another gap keep waiting for theirs (a hold, then a read).
   */
  private async fillThenFlush(order: ConversationOrder<F>): Promise<void> {
    const firstHeld = Math.min(...order.held.filter((f) => f.sequence !== undefined).map((f) => f.sequence!));
    if (this.fill && Number.isFinite(firstHeld) && firstHeld > order.released + 1) {
      order.filling = true;
      let read = false;
      try {
        const found = await this.fill(order.conversationId, order.released, firstHeld - 1);
        for (const frame of found) {
          const known = order.held.some((f) => f.sequence === frame.sequence);
          if (frame.sequence !== undefined && frame.sequence > order.released && !known) {
            order.held.push(frame);
          }
        }
        read = true;
      } catch {
        // The database is unreachable: read again shortly (its connections are usually back within
        // moments), and only after a few tries release what is held rather than hold it forever.
      } finally {
        order.filling = false;
      }
      if (this.conversations.get(order.conversationId) !== order) return; // forgotten meanwhile
      if (read) {
        order.fillFailures = 0;
        this.flush(order, false, firstHeld - 1);
        this.holdRest(order);
        return;
      }
      if (order.fillFailures < FILL_RETRY_DELAYS_MS.length && order.held.length > 0 && !order.timer) {
        order.timer = setTimeout(() => {
          order.timer = undefined;
          void this.fillThenFlush(order);
        }, FILL_RETRY_DELAYS_MS[order.fillFailures++]);
        return;
      }
      order.fillFailures = 0;
    }
    this.flush(order, true);
  }

  /** The conversation is gone: release what is held and forget it. */
  forget(conversationId: string): void {
    const order = this.conversations.get(conversationId);
    if (!order) return;
    this.conversations.delete(conversationId);
    this.flush(order, true);
  }

  /** Releases everything held, in order as far as it goes, and forgets every conversation (shutdown). */
  releaseAll(): void {
    for (const conversationId of [...this.conversations.keys()]) this.forget(conversationId);
  }

  /**
   * Drops conversations idle for `idleMs` with nothing held, keeping memory proportional to activity;
   * `keep` spares those still watched, whose starting point could not be known again.
   */
  prune(now: number, idleMs: number, keep?: (conversationId: string) => boolean): void {
    for (const [conversationId, order] of this.conversations) {
      if (order.held.length === 0 && now - order.lastActivity > idleMs && !keep?.(conversationId)) this.conversations.delete(conversationId);
    }
  }

  /**
   * Releases held frames in sequence order while there is no gap (or regardless of gaps when `force`),
   * then the unsequenced frames once no sequenced frame is left waiting. Sequences up to `readThrough`
   * were read from the database: one missing there is not waited for. The state is settled before
   * anything is released, because releasing a frame may end the conversation (and forget it).
   */
  private flush(order: ConversationOrder<F>, force: boolean, readThrough = 0): void {
    const sequenced = order.held.filter((f) => f.sequence !== undefined).sort((a, b) => a.sequence! - b.sequence!);
    const ready: F[] = [];
    for (const frame of sequenced) {
      if (!force && frame.sequence! > Math.max(order.released, readThrough) + 1) break;
      order.released = Math.max(order.released, frame.sequence!);
      ready.push(frame);
    }
    const waiting = new Set(sequenced.slice(ready.length));
    if (waiting.size === 0) {
      ready.push(...order.held.filter((f) => f.sequence === undefined));
      order.held = [];
      if (order.timer) clearTimeout(order.timer);
      order.timer = undefined;
    } else {
      order.held = order.held.filter((f) => f.sequence === undefined || waiting.has(f));
    }
    for (const frame of ready) this.release(frame);
  }
}

/** Sequences lo..hi (inclusive) went out; the last of them at `at`. */
interface ReleasedRange {
  lo: number;
  hi: number;
  at: number;
}

/**
 * Which sequences of which conversations went out recently. A join that replayed a recent message checks
 * here whether that message's live frame is still to come, and the ordering stage drops a live frame
 * whose sequence was already read from the database to close a gap.
 *
 * Sequences go out in order almost always, so they are kept as ranges: one range per conversation in the
 * usual case, extended in place on every release. A range not extended for `windowMs` is forgotten.
 */
export class ReleaseLog {
  /** Per conversation: disjoint, non-adjacent ranges in ascending order. */
  private readonly released = new Map<string, ReleasedRange[]>();

  constructor(private readonly windowMs = 15_000) {}

  record(conversationId: string, sequence: number, now = Date.now()): void {
    let ranges = this.released.get(conversationId);
    if (!ranges) this.released.set(conversationId, (ranges = []));
    const last = ranges.at(-1);
    if (last && sequence === last.hi + 1) {
      last.hi = sequence;
      last.at = now;
      return;
    }
    const i = ranges.findIndex((r) => r.hi >= sequence - 1);
    if (i < 0) {
      ranges.push({ lo: sequence, hi: sequence, at: now });
      return;
    }
    const range = ranges[i];
    if (sequence < range.lo - 1) {
      ranges.splice(i, 0, { lo: sequence, hi: sequence, at: now });
      return;
    }
    // Within or touching this range: widen it, and join the next one if they now touch.
    range.lo = Math.min(range.lo, sequence);
    range.hi = Math.max(range.hi, sequence);
    range.at = now;
    const next = ranges[i + 1];
    if (next && next.lo <= range.hi + 1) {
      range.hi = Math.max(range.hi, next.hi);
      ranges.splice(i + 1, 1);
    }
  }

  has(conversationId: string, sequence: number): boolean {
    const ranges = this.released.get(conversationId);
    if (!ranges) return false;
    for (let i = ranges.length - 1; i >= 0; i--) {
      if (sequence > ranges[i].hi) return false;
      if (sequence >= ranges[i].lo) return true;
    }
    return false;
  }

  forget(conversationId: string): void {
    this.released.delete(conversationId);
  }

  prune(now = Date.now()): void {
    const cutoff = now - this.windowMs;
    for (const [conversationId, ranges] of this.released) {
      const recent = ranges.filter((r) => r.at > cutoff);
      if (recent.length === 0) this.released.delete(conversationId);
      else if (recent.length < ranges.length) this.released.set(conversationId, recent);
    }
  }
}
