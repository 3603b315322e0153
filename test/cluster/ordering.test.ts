/**
 * The ordering stage as several instances stress it: frames of other instances arrive late and in bursts,
 * gaps are read from the database while more frames arrive. No database needed: the gap filler is a stub.
 */
import { describe, expect, test } from "bun:test";
import type { TopicFrame } from "../../src/realtime/frames";
import { SequenceOrder } from "../../src/core/sequence-order";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

const conversationId = "c1";
const frame = (sequence: number): TopicFrame => ({ conversationId, frame: `f${sequence}`, sequence });

describe("SequenceOrder across instances", () => {
  test("a conversation tracked from its join: a local frame that overtakes another instance's earlier one waits for it", () => {
    const out: string[] = [];
    const order = new SequenceOrder<TopicFrame>((f) => out.push(f.frame), 1_000);
    order.track(conversationId, 0);
    order.push(frame(2)); // local, committed after the remote 1 whose notification is still on its way
    expect(out).toEqual([]);
    order.push(frame(1));
    expect(out).toEqual(["f1", "f2"]);
  });

  test("tracking does not move a conversation already tracked", () => {
    const out: string[] = [];
    const order = new SequenceOrder<TopicFrame>((f) => out.push(f.frame), 1_000);
    order.push(frame(5));
    order.track(conversationId, 0);
    order.push(frame(6));
    expect(out).toEqual(["f5", "f6"]);
  });

  test("a gap read from the database releases what it closed; a later gap that opened meanwhile still waits", async () => {
    const out: string[] = [];
    let finishRead!: () => void;
    const reads: [number, number][] = [];
    const order = new SequenceOrder<TopicFrame>(
      (f) => out.push(f.frame),
      10,
      async (_id, after, upTo) => {
        reads.push([after, upTo]);
        if (reads.length === 1) await new Promise<void>((resolve) => (finishRead = resolve));
        const found: TopicFrame[] = [];
        for (let s = after + 1; s <= upTo; s++) if (s !== 4) found.push(frame(s)); // 4 is still on its way live
        return found;
      },
    );
    order.track(conversationId, 0);
    order.push(frame(3)); // 1 and 2 missing
    await Bun.sleep(30); // the hold passes: 1..2 are being read
    expect(reads).toEqual([[0, 2]]);
    order.push(frame(5)); // arrives during the read, with 4 missing
    finishRead();
    await Bun.sleep(0);
    expect(out).toEqual(["f1", "f2", "f3"]);
    order.push(frame(4)); // live, within the hold
    expect(out).toEqual(["f1", "f2", "f3", "f4", "f5"]);
  });

  test("a later gap that does not close is read in turn", async () => {
    const out: string[] = [];
    const order = new SequenceOrder<TopicFrame>((f) => out.push(f.frame), 10, async (_id, after, upTo) => {
      const found: TopicFrame[] = [];
      for (let s = after + 1; s <= upTo; s++) found.push(frame(s));
      return found;
    });
    order.track(conversationId, 0);
    order.push(frame(2));
    await Bun.sleep(5);
    order.push(frame(4));
    for (let waited = 0; out.length < 4 && waited < 1000; waited += 10) await Bun.sleep(10);
    expect(out).toEqual(["f1", "f2", "f3", "f4"]);
  });

  test("a watched conversation is not pruned, so its starting point is kept", () => {
    const out: string[] = [];
    const order = new SequenceOrder<TopicFrame>((f) => out.push(f.frame), 1_000);
    order.track(conversationId, 7, 0);
    order.prune(120_000, 60_000, (id) => id === conversationId);
    order.push(frame(9));
    expect(out).toEqual([]);
    order.push(frame(8));
    expect(out).toEqual(["f8", "f9"]);
  });
});
