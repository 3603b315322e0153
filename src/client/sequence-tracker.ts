/**
 * What a client has seen of one conversation's sequence: everything up to `resumeFrom` without a gap,
 * plus the sequences seen above it. Resuming from the gap-free point never loses a message, even if
 * frames arrived out of order before a disconnect; the set above it recognises what would be a duplicate.
 */
export class SequenceTracker {
  /** The resume point: every sequence up to it has been seen, or lies before where watching started. */
  private contiguous?: number;
  /** Up to here the server vouched for delivery: another copy is a duplicate. */
  private vouched?: number;
  private readonly above = new Set<number>();

  constructor(
    /** A `since` the application already has everything up to. */
    start?: number,
    /** Bound on remembered out-of-order sequences, should a sequence never arrive. */
    private readonly maxAbove = 10_000,
  ) {
    this.contiguous = start;
    this.vouched = start;
  }

  /** The `since` to resume with (undefined: nothing known yet). */
  get resumeFrom(): number | undefined {
    return this.contiguous;
  }

  /** The highest sequence seen. */
  get highest(): number | undefined {
    let highest = this.contiguous;
    for (const sequence of this.above) if (highest === undefined || sequence > highest) highest = sequence;
    return highest;
  }

  /** Records a sequence; false when it was seen before (a duplicate to drop). */
  see(sequence: number): boolean {
    if ((this.vouched !== undefined && sequence <= this.vouched) || this.above.has(sequence)) return false;
    // At or below a starting point that was not vouched for: new to the application, nothing to record.
    if (this.contiguous !== undefined && sequence <= this.contiguous) return true;
    this.above.add(sequence);
    this.advance();
    if (this.above.size > this.maxAbove) {
      const lowest = Math.min(...this.above);
      this.above.delete(lowest);
      this.moveTo(lowest);
      this.advance();
    }
    return true;
  }

  /** The server vouches that everything up to `sequence` has been delivered (the ack of a join with `since`). */
  coveredUpTo(sequence: number): void {
    if (this.contiguous === undefined || sequence > this.contiguous) this.moveTo(sequence);
    this.vouched = this.contiguous;
    for (const seen of this.above) if (seen <= this.contiguous!) this.above.delete(seen);
    this.advance();
  }

  /**
   * Watching starts at `sequence` (the ack of a join without `since`): later messages come live. Frames
   * of messages committed just before may still arrive; they are delivered, not taken for duplicates.
   */
  startFrom(sequence: number): void {
    if (this.contiguous === undefined || sequence > this.contiguous) this.moveTo(sequence);
    for (const seen of this.above) if (seen <= this.contiguous!) this.above.delete(seen);
    this.advance();
  }

  private moveTo(sequence: number): void {
    const wasVouched = this.vouched !== undefined && this.vouched === this.contiguous;
    this.contiguous = sequence;
    if (wasVouched) this.vouched = sequence;
  }

  private advance(): void {
    if (this.contiguous === undefined) return;
    while (this.above.delete(this.contiguous + 1)) this.moveTo(this.contiguous + 1);
  }
}
