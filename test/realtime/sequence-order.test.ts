/**
 * The ordering stage between committed frames and sockets (SequenceOrder), and the log of sequences that
 * went out (ReleaseLog). No server: frames are pushed by hand, the database read that fills a gap is a
 * function of the test, and time is passed in where the stage takes it.
 */
import { describe, expect, test } from "bun:test";
import type { TopicFrame } from "../../src/realtime/frames";
import { ReleaseLog, SequenceOrder, type GapFiller } from "../../src/core/sequence-order";
import { eventually } from "./helpers";

const conversationId = "0190d3c4-0000-7000-8000-000000000001";
const other = "0190d3c4-0000-7000-8000-000000000002";

const frame = (sequence?: number, name = `f${sequence}`, conversation = conversationId): TopicFrame => ({
  conversationId: conversation,
  frame: name,
  sequence,
});

/** A read of the database that answers when the test says so, recording what it was asked. */
function deferredFill() {
  const asked: [number, number][] = [];
  let answer: ((frames: TopicFrame[]) => void) | undefined;
  let fail: ((error: Error) => void) | undefined;
  const fill: GapFiller<TopicFrame> = (_conversation, after, upTo) => {
    asked.push([after, upTo]);
    return new Promise<TopicFrame[]>((resolve, reject) => {
      answer = resolve;
      fail = reject;
    });
  };
  return {
    fill,
    asked,
    answer: (frames: TopicFrame[]) => answer!(frames),
    fail: (error: Error) => fail!(error),
  };
}

describe("SequenceOrder", () => {
  test("frames in order pass at once", () => {
    const out: string[] = [];
    const order = new SequenceOrder<TopicFrame>((f) => out.push(f.frame));
    for (const s of [3, 4, 5]) order.push(frame(s));
    expect(out).toEqual(["f3", "f4", "f5"]);
  });

  test("a frame ahead of its predecessor waits for it; unsequenced frames queue behind", () => {
    const out: string[] = [];
    const order = new SequenceOrder<TopicFrame>((f) => out.push(f.frame));
    order.push(frame(1));
    order.push(frame(3));
    order.push(frame(undefined, "edit"));
    expect(out).toEqual(["f1"]);
    order.push(frame(2));
    expect(out).toEqual(["f1", "f2", "f3", "edit"]);
  });

  test("a gap that never fills is given up after the hold", async () => {
    const out: string[] = [];
    const order = new SequenceOrder<TopicFrame>((f) => out.push(f.frame), 20);
    order.push(frame(1));
    order.push(frame(4));
    order.push(frame(3));
    expect(out).toEqual(["f1"]);
    await Bun.sleep(40);
    expect(out).toEqual(["f1", "f3", "f4"]);
    order.push(frame(5));
    expect(out.at(-1)).toBe("f5");
  });

  test("forget releases what is held; idle conversations are pruned", () => {
    const out: string[] = [];
    const order = new SequenceOrder<TopicFrame>((f) => out.push(f.frame));
    order.push(frame(1));
    order.push(frame(3));
    order.forget(conversationId);
    expect(out).toEqual(["f1", "f3"]);
    order.push(frame(10), 0);
    order.prune(60_001, 60_000);
    // Pruned: the next frame starts a fresh state instead of waiting for 11.
    order.push(frame(20));
    expect(out.at(-1)).toBe("f20");
  });

  test("an unsequenced frame of an untracked conversation passes at once and starts no state", () => {
    const out: string[] = [];
    const order = new SequenceOrder<TopicFrame>((f) => out.push(f.frame));
    order.push(frame(undefined, "typing"));
    expect(out).toEqual(["typing"]);
    expect(order.releasedUpTo(conversationId)).toBeUndefined();
  });

  test("the first sequenced frame is the starting point; releasedUpTo follows what went out", () => {
    const out: string[] = [];
    const order = new SequenceOrder<TopicFrame>((f) => out.push(f.frame), 60_000);
    order.push(frame(7));
    expect(order.releasedUpTo(conversationId)).toBe(7);
    order.push(frame(9));
    expect(order.releasedUpTo(conversationId)).toBe(7);
    order.push(frame(8));
    expect(out).toEqual(["f7", "f8", "f9"]);
    expect(order.releasedUpTo(conversationId)).toBe(9);
  });

  test("track sets the starting point, so that a lower sequence arriving later is not overtaken", () => {
    const out: string[] = [];
    const order = new SequenceOrder<TopicFrame>((f) => out.push(f.frame), 60_000);
    // Untracked, the first frame seen is the start and a lower one arriving after it goes out behind it.
    order.push(frame(5, "f5", other));
    order.push(frame(4, "f4", other));
    expect(out).toEqual(["f5", "f4"]);

    out.length = 0;
    order.track(conversationId, 3);
    order.push(frame(5));
    expect(out).toEqual([]);
    order.push(frame(4));
    expect(out).toEqual(["f4", "f5"]);
    // Tracking a conversation that is tracked already changes nothing.
    order.track(conversationId, 100);
    order.push(frame(6));
    expect(out).toEqual(["f4", "f5", "f6"]);
    expect(order.releasedUpTo(conversationId)).toBe(6);
  });

  test("a gap that outlasts the hold is read from the database, and the late live frame is dropped", async () => {
    const log = new ReleaseLog();
    const out: string[] = [];
    const asked: [number, number][] = [];
    const order = new SequenceOrder<TopicFrame>(
      (f) => {
        out.push(f.frame);
        if (f.sequence !== undefined) log.record(f.conversationId, f.sequence);
      },
      10,
      async (conversation, after, upTo) => {
        asked.push([after, upTo]);
        expect(conversation).toBe(conversationId);
        return [frame(2, "f2 read")];
      },
      (conversation, sequence) => log.has(conversation, sequence),
    );
    order.push(frame(1));
    order.push(frame(3));
    expect(out).toEqual(["f1"]);
    await eventually(() => out.length === 3, 3000, "the gap read");
    expect(out).toEqual(["f1", "f2 read", "f3"]);
    expect(asked).toEqual([[1, 2]]);
    order.push(frame(2, "f2 live, late"));
    order.push(frame(4));
    expect(out).toEqual(["f1", "f2 read", "f3", "f4"]);
  });

  test("what a read returns that is already released or already held goes out once", async () => {
    const out: string[] = [];
    const order = new SequenceOrder<TopicFrame>((f) => out.push(f.frame), 10, async () => [frame(1, "f1 again"), frame(2, "f2 read"), frame(3, "f3 read")]);
    order.push(frame(1));
    order.push(frame(3));
    await eventually(() => out.length === 3, 3000, "the gap read");
    await Bun.sleep(30);
    expect(out).toEqual(["f1", "f2 read", "f3"]);
  });

  test("a read that does not close the gap releases past it: what the database lacks is not waited for", async () => {
    const out: string[] = [];
    const reads = deferredFill();
    const order = new SequenceOrder<TopicFrame>((f) => out.push(f.frame), 10, reads.fill);
    order.push(frame(1));
    order.push(frame(4));
    await eventually(() => reads.asked.length === 1, 3000, "the gap read");
    expect(reads.asked).toEqual([[1, 3]]);
    reads.answer([frame(2)]);
    await eventually(() => out.length === 3, 3000, "the release");
    expect(out).toEqual(["f1", "f2", "f4"]);
    expect(order.releasedUpTo(conversationId)).toBe(4);
    expect(reads.asked).toHaveLength(1);
  });

  test("a failed read is tried again shortly; one that succeeds then keeps the order", async () => {
    const out: string[] = [];
    const reads = deferredFill();
    const order = new SequenceOrder<TopicFrame>((f) => out.push(f.frame), 10, reads.fill);
    order.push(frame(1));
    order.push(frame(3));
    await eventually(() => reads.asked.length === 1, 3000, "the gap read");
    reads.fail(new Error("database unreachable"));
    await eventually(() => reads.asked.length === 2, 3000, "the second read");
    expect(out).toEqual(["f1"]);
    expect(reads.asked).toEqual([[1, 2], [1, 2]]);
    reads.answer([frame(2)]);
    await eventually(() => out.length === 3, 3000, "the release");
    expect(out).toEqual(["f1", "f2", "f3"]);
  });

  test("reads that keep failing release what is held rather than holding it forever", async () => {
    const out: string[] = [];
    const reads = deferredFill();
    const order = new SequenceOrder<TopicFrame>((f) => out.push(f.frame), 10, reads.fill);
    order.push(frame(1));
    order.push(frame(3));
    order.push(frame(undefined, "edit"));
    // The first read and four more, 100 + 200 + 400 + 800 ms apart.
    for (let attempt = 1; attempt <= 5; attempt++) {
      await eventually(() => reads.asked.length === attempt, 3000, `read ${attempt}`);
      expect(out).toEqual(["f1"]);
      reads.fail(new Error("database unreachable"));
    }
    await eventually(() => out.length === 3, 3000, "the release");
    expect(out).toEqual(["f1", "f3", "edit"]);
    expect(reads.asked).toHaveLength(5);
    order.push(frame(4));
    expect(out.at(-1)).toBe("f4");
  });

  test("frames beyond another gap that arrive during a read wait for a hold and a read of their own", async () => {
    const out: string[] = [];
    const reads = deferredFill();
    const order = new SequenceOrder<TopicFrame>((f) => out.push(f.frame), 10, reads.fill);
    order.push(frame(1));
    order.push(frame(3));
    await eventually(() => reads.asked.length === 1, 3000, "the first read");
    order.push(frame(6));
    reads.answer([frame(2)]);
    await eventually(() => out.length === 3, 3000, "the first release");
    expect(out).toEqual(["f1", "f2", "f3"]);
    await eventually(() => reads.asked.length === 2, 3000, "the second read");
    expect(reads.asked).toEqual([
      [1, 2],
      [3, 5],
    ]);
    expect(out).toEqual(["f1", "f2", "f3"]);
    reads.answer([frame(4), frame(5)]);
    await eventually(() => out.length === 6, 3000, "the second release");
    expect(out).toEqual(["f1", "f2", "f3", "f4", "f5", "f6"]);
  });

  test("a conversation forgotten during a read: the read's frames are dropped", async () => {
    const out: string[] = [];
    const reads = deferredFill();
    const order = new SequenceOrder<TopicFrame>((f) => out.push(f.frame), 10, reads.fill);
    order.push(frame(1));
    order.push(frame(3));
    await eventually(() => reads.asked.length === 1, 3000, "the gap read");
    order.forget(conversationId);
    expect(out).toEqual(["f1", "f3"]);
    reads.answer([frame(2)]);
    await Bun.sleep(30);
    expect(out).toEqual(["f1", "f3"]);
    expect(order.releasedUpTo(conversationId)).toBeUndefined();
  });

  test("releasing a frame may end the conversation: nothing held goes out twice", () => {
    const out: string[] = [];
    const order: SequenceOrder<TopicFrame> = new SequenceOrder<TopicFrame>((f) => {
      out.push(f.frame);
      if (f.frame === "f2") order.forget(conversationId);
    }, 60_000);
    order.push(frame(1));
    order.push(frame(3));
    order.push(frame(undefined, "edit"));
    order.push(frame(2));
    expect(out).toEqual(["f1", "f2", "f3", "edit"]);
    // Forgotten: the next frame starts a fresh state.
    expect(order.releasedUpTo(conversationId)).toBeUndefined();
    order.push(frame(10));
    expect(out.at(-1)).toBe("f10");
  });

  test("prune spares conversations still watched and those holding frames", () => {
    const out: string[] = [];
    const order = new SequenceOrder<TopicFrame>((f) => out.push(f.frame), 60_000);
    order.push(frame(10), 0);
    order.push(frame(1, "o1", other), 0);
    order.push(frame(3, "o3", other), 0);
    order.prune(120_000, 60_000, (conversation) => conversation === conversationId);
    expect(order.releasedUpTo(conversationId)).toBe(10);
    expect(order.releasedUpTo(other)).toBe(1);
    // Still tracked from 10: 12 waits for 11.
    order.push(frame(12));
    expect(out).toEqual(["f10", "o1"]);
    order.push(frame(2, "o2", other));
    expect(out).toEqual(["f10", "o1", "o2", "o3"]);
    order.forget(conversationId);
    expect(out.at(-1)).toBe("f12");
  });
});

describe("ReleaseLog", () => {
  test("keeps released sequences as ranges and forgets ranges idle for its window", () => {
    const log = new ReleaseLog(1000);
    for (const sequence of [1, 2, 3, 7, 5, 9]) log.record(conversationId, sequence, 0);
    for (const [sequence, released] of [[0, false], [1, true], [3, true], [4, false], [5, true], [6, false], [7, true], [8, false], [9, true], [10, false]] as const) {
      expect(log.has(conversationId, sequence)).toBe(released);
    }
    // Filling the holes joins the ranges; a repeated sequence changes nothing.
    log.record(conversationId, 4, 0);
    log.record(conversationId, 6, 0);
    log.record(conversationId, 8, 0);
    log.record(conversationId, 5, 0);
    for (let sequence = 1; sequence <= 9; sequence++) expect(log.has(conversationId, sequence)).toBe(true);
    // A range still being extended stays; one not extended for the window goes.
    log.record("other", 1, 0);
    log.record(conversationId, 10, 900);
    log.prune(1500);
    expect(log.has(conversationId, 1)).toBe(true);
    expect(log.has(conversationId, 10)).toBe(true);
    expect(log.has("other", 1)).toBe(false);
    log.prune(2000);
    expect(log.has(conversationId, 10)).toBe(false);
  });
  test("answers like a set of every recorded sequence, whatever the order", () => {
    for (let round = 0; round < 20; round++) {
      const log = new ReleaseLog(1000);
      const recorded = new Set<number>();
      const sequences = Array.from({ length: 120 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
      for (const sequence of sequences.slice(0, 80)) {
        log.record(conversationId, sequence, 0);
        recorded.add(sequence);
        for (let probe = 0; probe <= 121; probe++) expect(log.has(conversationId, probe)).toBe(recorded.has(probe));
      }
    }
  });

  test("conversations are independent, and forgetting one keeps the others", () => {
    const log = new ReleaseLog(1000);
    for (const sequence of [1, 2, 3]) log.record(conversationId, sequence, 0);
    log.record(other, 5, 0);
    expect(log.has(other, 1)).toBe(false);
    expect(log.has(conversationId, 5)).toBe(false);
    log.forget(conversationId);
    expect(log.has(conversationId, 1)).toBe(false);
    expect(log.has(other, 5)).toBe(true);
  });

  test("a range last extended a whole window ago is forgotten; a younger range of the same conversation stays", () => {
    const log = new ReleaseLog(1000);
    log.record(conversationId, 1, 0);
    log.record(conversationId, 5, 500);
    log.prune(999);
    expect(log.has(conversationId, 1)).toBe(true);
    log.prune(1000);
    expect(log.has(conversationId, 1)).toBe(false);
    expect(log.has(conversationId, 5)).toBe(true);
    log.prune(1500);
    expect(log.has(conversationId, 5)).toBe(false);
  });
});
