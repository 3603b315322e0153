/**
 * When an instance may leave frames out. An instance that hears no other instance does not relay the
 * frames that carry a sequence (messages and control events, the bulk of the traffic): a single instance
 * on PostgreSQL does not pay for NOTIFY. Everything else (edits, deletions, membership and conversation
 * changes, typing, presence) is rare and always goes out.
 *
 * It counts as alone only while it knows no peer, has been listening for `expiryMs` (after its start or a
 * LISTEN reconnect), and hears its own heartbeats (so its LISTEN connection works and would have brought
 * others' heartbeats). On hearing an instance for the first time it greets, flagged when it left frames
 * out since its last greeting; whoever hears the flag catches up from the database.
 */
export class RelayPolicy {
  /** Until then frames are relayed even with no peer known: others may exist that have not been heard yet. */
  private relayUntil: number;
  /** A sequenced frame was not relayed since the last greeting. */
  private skipped = false;

  constructor(
    private readonly expiryMs: number,
    private readonly peerCount: () => number,
    private readonly msSinceOwnEcho: () => number,
  ) {
    this.relayUntil = Date.now() + expiryMs;
  }

  /** The LISTEN connection (re)started: peers may exist that this instance has not heard yet. */
  listening(): void {
    this.relayUntil = Date.now() + this.expiryMs;
  }

  private alone(): boolean {
    return this.peerCount() === 0 && Date.now() >= this.relayUntil && this.msSinceOwnEcho() < this.expiryMs;
  }

  /**
   * Whether every live instance has been heard: listening for longer than the expiry (every instance
   * heartbeats well within it) and hearing its own heartbeats.
   */
  peersKnown(): boolean {
    return Date.now() >= this.relayUntil && this.msSinceOwnEcho() < this.expiryMs;
  }

  /** Whether a frame with (or without) a sequence goes out now; remembers what it left out. */
  shouldRelay(sequenced: boolean): boolean {
    if (sequenced && this.alone()) {
      this.skipped = true;
      return false;
    }
    return true;
  }

  /** The greeting for a newly heard instance, flagged if frames were left out since the last one. */
  greeting(): { k: "hi"; w?: 1 } {
    const greeting: { k: "hi"; w?: 1 } = this.skipped ? { k: "hi", w: 1 } : { k: "hi" };
    this.skipped = false;
    return greeting;
  }
}
